/* boot/machine.c: start-up, exception dispatch and the `machine` imports.
 *
 * Owns: instantiating the kernel module, turning hardware exception frames into calls of
 * Rust exports (with the red-zone guard), and the primitive operations Rust imports (MMIO,
 * interrupt mask, stop, catching a test that panics or traps). It decides nothing: every
 * report, exit and policy is made in Rust. The fallback printer is for the moments Rust
 * cannot run (before instantiation, or a fault while Rust is already handling one).
 */
#include "kernel.h"
#include "machine.h"

/* wasm2c names the import module's instance type; nothing in it is needed. */
struct Z_machine_instance_t { int unused; };

static Z_kernel_instance_t kernel;

/* Saved and restored around exceptions by entry.S when set; set by the FPU probe at start. */
u8 machine_fpu_present;

/* A probe that may trap (cpu.S): where to resume, and whether it trapped. */
u32 machine_probe_resume;
u8 machine_probe_faulted;

/* wasm leaf functions (the precompiled memcpy among them) use up to 128 bytes below the
 * shadow-stack pointer without moving it; Rust called from an exception must start below. */
#define RED_ZONE 256u

/* Where the last-resort printer and exit go: the virt board's fixed addresses until Rust
 * has read bootinfo and said otherwise. */
static u32 fallback_tty = 0xff008000u;
static u32 fallback_ctrl = 0xff009000u;
#define TTY_PUT_CHAR 0x00u
#define CTRL_CMD 0x04u
#define CTRL_CMD_PANIC 3u

static inline void reg_write32(u32 addr, u32 v) { *(volatile u32 *)addr = v; }

void machine_fallback_puts(const char *s)
{
    for (; *s; s++)
        reg_write32(fallback_tty + TTY_PUT_CHAR, (u8)*s);
}

void machine_fallback_hex(u32 v)
{
    static const char digits[] = "0123456789abcdef";
    char buf[11];
    int i;
    buf[0] = '0';
    buf[1] = 'x';
    for (i = 0; i < 8; i++)
        buf[2 + i] = digits[(v >> (28 - 4 * i)) & 0xf];
    buf[10] = 0;
    machine_fallback_puts(buf);
}

void machine_fallback_dec(u32 v)
{
    char buf[11];
    int i = 10;
    buf[i] = 0;
    do {
        buf[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    machine_fallback_puts(buf + i);
}

void machine_fallback_exit_failure(void)
{
    machine_set_sr(0x2700);
    reg_write32(fallback_ctrl + CTRL_CMD, CTRL_CMD_PANIC);
    for (;;)
        machine_stop();
}

/* ---- bootinfo --------------------------------------------------------------------------- */

/* QEMU puts the bootinfo list right after the image, 2-byte aligned. Linear memory, zeroed
 * when the kernel module is instantiated, starts at __linear_memory_base: whatever of the
 * list lay past it is gone by then, so reads stop there. */
static const u8 *bootinfo_start(void) { return (const u8 *)(((u32)_end + 1) & ~1u); }
static u32 bootinfo_room(void) { return (u32)__linear_memory_base - (u32)bootinfo_start(); }

/* The one bootinfo fact the machine layer needs before Rust can run: where RAM ends, so that
 * linear memory is never placed past it. Everything else is parsed (and this re-checked) by
 * the kernel's bootinfo module. */
static u32 scan_ram_end(void)
{
    const u8 *p = bootinfo_start();
    const u8 *end = p + bootinfo_room();
    while (p + 4 <= end) {
        u16 tag = (u16)(p[0] << 8 | p[1]);
        u16 size = (u16)(p[2] << 8 | p[3]);
        if (tag == 0 || size < 4 || p + size > end)
            break;
        if (tag == 0x0005 && size >= 12) { /* MEMCHUNK: u32 addr, u32 size */
            u32 addr = (u32)p[4] << 24 | (u32)p[5] << 16 | (u32)p[6] << 8 | p[7];
            u32 len = (u32)p[8] << 24 | (u32)p[9] << 16 | (u32)p[10] << 8 | p[11];
            return addr + len;
        }
        p += size; /* size includes the record's padding, as Linux reads it */
    }
    return 0;
}

/* ---- start ------------------------------------------------------------------------------ */

void machine_start(void)
{
    u32 ram_end = scan_ram_end();
    if (ram_end == 0) {
        machine_fallback_puts("fatal: no MEMCHUNK record in the bootinfo list\n");
        machine_fallback_exit_failure();
    }
    /* Below linker.ld's MIN_RAM the heap cannot hold what the kernel allocates: refuse here,
     * naming that minimum, rather than fail tests later for want of memory. */
    if (ram_end < (u32)__min_ram) {
        machine_fallback_puts("fatal: RAM is ");
        machine_fallback_dec(ram_end >> 10);
        machine_fallback_puts(" KiB; this kernel needs at least ");
        machine_fallback_dec((u32)__min_ram >> 20);
        machine_fallback_puts(" MiB: give QEMU more memory (-m ");
        machine_fallback_dec((u32)__min_ram >> 20);
        machine_fallback_puts("M or more)\n");
        machine_fallback_exit_failure();
    }
    machine_memory_set_limit(ram_end);

    machine_fpu_present = (u8)machine_probe_fpu();
    /* FPCR rounding precision = double: with it every FPU result is rounded to an IEEE double
     * (and f32 results rounded twice, which is exact for + - * / sqrt), as wasm demands. */
    if (machine_fpu_present)
        __asm__ volatile("fmove.l %0,%%fpcr" : : "d"(0x80u));

    Z_kernel_init_module();
    Z_kernel_instantiate(&kernel, NULL);
    Z_kernelZ_kernel_main(&kernel);

    machine_fallback_puts("fatal: kernel_main returned\n");
    machine_fallback_exit_failure();
}

/* ---- exceptions ------------------------------------------------------------------------- */

/* The first eight bytes of every 68020+ exception frame. m68k GCC aligns 32-bit fields to
 * 2 bytes, so this layout has no padding. */
struct frame {
    u16 sr;
    u32 pc;
    u16 format_vector;
    u8 rest[];
};

static u32 fatal_depth;

static u32 frame_fault_address(const struct frame *f, u32 format, u32 *valid)
{
    const u8 *b = (const u8 *)f;
    u32 off;
    switch (format) {
    case 0x2: /* 6-word: instruction address (trap, chk, divide by zero) */
    case 0x3: /* 68040 FP post-instruction: effective address */
    case 0x4: /* 68040 FP unimplemented / 68060 access fault: address */
        off = 0x08;
        break;
    case 0x7: /* 68040 access error: fault address */
        off = 0x14;
        break;
    case 0xa: /* 68030 short bus fault: data cycle fault address */
    case 0xb: /* 68030 long bus fault */
        off = 0x10;
        break;
    default:
        *valid = 0;
        return 0;
    }
    *valid = 1;
    return *(const u32 *)(b + off);
}

static void exception(struct frame *f, u32 vector, u32 format)
{
    u32 has_addr, addr, saved;

    if (fatal_depth++ != 0) {
        machine_fallback_puts("\nfatal: exception vector ");
        machine_fallback_hex(vector);
        machine_fallback_puts(" at pc ");
        machine_fallback_hex(f->pc);
        machine_fallback_puts(" while reporting an earlier one\n");
        machine_fallback_exit_failure();
    }
    addr = frame_fault_address(f, format, &has_addr);
    saved = kernel.w2c___stack_pointer;
    kernel.w2c___stack_pointer = saved - RED_ZONE;
    Z_kernelZ_exception_entry(&kernel, vector, f->sr, f->pc, format, addr, has_addr);
    /* Rust reports and exits; it never resumes an unexpected exception. */
    machine_fallback_puts("fatal: exception_entry returned\n");
    machine_fallback_exit_failure();
}

/* Called by entry.S for every vector, at the IPL the CPU set on entry. */
void machine_trap(struct frame *f)
{
    u32 vector = (f->format_vector & 0x0fffu) >> 2;
    u32 format = f->format_vector >> 12;

    /* A probe's expected trap (F-line or illegal): resume after the probed instruction. */
    if (machine_probe_resume && (vector == 11 || vector == 4)) {
        machine_probe_faulted = 1;
        f->pc = machine_probe_resume;
        return;
    }
    /* 24 is the spurious interrupt (no device answered the acknowledge cycle, MC68040UM
     * 9.1.2): an interrupt with no source, handed to dispatch as level 0 to be counted. 25..31
     * are the autovectors of interrupt levels 1..7. */
    if (vector >= 24 && vector <= 31) {
        u32 saved = kernel.w2c___stack_pointer;
        kernel.w2c___stack_pointer = saved - RED_ZONE;
        Z_kernelZ_irq_entry(&kernel, vector - 24);
        kernel.w2c___stack_pointer = saved;
        return;
    }
    exception(f, vector, format);
}

/* ---- catching a test that panics or traps ----------------------------------------------- */

static void *catch_buf[5];
static int catch_active;
static u32 catch_code;
static u32 last_trap_pc;

void machine_wasm_trap(u32 code, u32 pc)
{
    last_trap_pc = pc;
    if (catch_active) {
        catch_code = 2 + code;
        __builtin_longjmp(catch_buf, 1);
    }
    if (fatal_depth++ == 0) {
        /* A trap can come from an exhausted native stack: the report runs in the reserve
         * below the guard's limit (boot/entry.S). */
        w2k_stack_limit = w2k_stack_reserve;
        /* A trap can come from a shadow-stack overflow: give Rust a sane stack to report on. */
        u32 sp = kernel.w2c___stack_pointer;
        if (sp < 0x10000u || sp > kernel.w2c_memory.size)
            kernel.w2c___stack_pointer = 0x10000u;
        else
            kernel.w2c___stack_pointer = sp - RED_ZONE;
        Z_kernelZ_trap_entry(&kernel, code, pc);
    }
    machine_fallback_puts("\nfatal: wasm trap ");
    machine_fallback_hex(code);
    machine_fallback_puts(" at pc ");
    machine_fallback_hex(pc);
    machine_fallback_puts(" while reporting an earlier failure\n");
    machine_fallback_exit_failure();
}

/* ---- imports: module "machine" ----------------------------------------------------------- */

typedef struct Z_machine_instance_t M;

/* A Rust pointer (a wasm address) turned into a native one, after checking the range. */
static u8 *linear(u32 addr, u32 len)
{
    if ((u64)addr + len > kernel.w2c_memory.size)
        wasm_rt_trap(WASM_RT_TRAP_OOB);
    return kernel.w2c_memory.data + addr;
}

u32 Z_machineZ_mmio_read8(M *m, u32 a) { (void)m; return *(volatile u8 *)a; }
u32 Z_machineZ_mmio_read16(M *m, u32 a) { (void)m; return *(volatile u16 *)a; }
u32 Z_machineZ_mmio_read32(M *m, u32 a) { (void)m; return *(volatile u32 *)a; }
void Z_machineZ_mmio_write8(M *m, u32 a, u32 v) { (void)m; *(volatile u8 *)a = (u8)v; }
void Z_machineZ_mmio_write16(M *m, u32 a, u32 v) { (void)m; *(volatile u16 *)a = (u16)v; }
void Z_machineZ_mmio_write32(M *m, u32 a, u32 v) { (void)m; *(volatile u32 *)a = v; }

/* The interrupt mask level, SR bits 10-8. */
u32 Z_machineZ_ipl_get(M *m)
{
    (void)m;
    return (machine_get_sr() & SR_IPL_MASK) >> 8;
}

void Z_machineZ_ipl_set(M *m, u32 level)
{
    (void)m;
    machine_set_sr((machine_get_sr() & ~SR_IPL_MASK) | ((level << 8) & SR_IPL_MASK));
}

/* Masks every interrupt and returns the IPL it found: one import for a leaf critical section
 * (the clock read), where a guard's get/set pair on each side costs four. */
u32 Z_machineZ_ipl_raise_all(M *m)
{
    (void)m;
    u32 sr = machine_get_sr();
    machine_set_sr(sr | SR_IPL_MASK);
    return (sr & SR_IPL_MASK) >> 8;
}

/* Z_machineZ_rtc_read is in cpu.S: few instructions around the latching load (the benchmark's
 * window clock counts them). */

void Z_machineZ_idle(M *m) { (void)m; machine_stop(); }

u32 Z_machineZ_linear_base(M *m) { (void)m; return (u32)__linear_memory_base; }

u32 Z_machineZ_ram_end(M *m) { (void)m; return machine_memory_limit(); }

u32 Z_machineZ_bootinfo_read(M *m, u32 dst, u32 offset, u32 len)
{
    (void)m;
    u32 room = bootinfo_room();
    if (offset >= room)
        return 0;
    if (len > room - offset)
        len = room - offset;
    memcpy(linear(dst, len), bootinfo_start() + offset, len);
    return len;
}

void Z_machineZ_set_fallback_devices(M *m, u32 tty, u32 ctrl)
{
    (void)m;
    fallback_tty = tty;
    fallback_ctrl = ctrl;
}

/* Run test `index` (the kernel's export test_run); return 0 when it returned, 1 when it
 * called unwind() (a panic), 2 + code when it trapped. The shadow stack, call depth and IPL
 * are put back as they were; whatever Rust state the test left is the test's problem. */
u32 Z_machineZ_catch_test(M *m, u32 index)
{
    u32 saved_sp = kernel.w2c___stack_pointer;
    u32 saved_depth = wasm_rt_call_stack_depth;
    u32 saved_sr = machine_get_sr();
    (void)m;

    if (catch_active)
        return 1; /* no nesting: a test that runs tests fails */
    if (__builtin_setjmp(catch_buf) == 0) {
        catch_active = 1;
        Z_kernelZ_test_run(&kernel, index);
        catch_active = 0;
        return 0;
    }
    catch_active = 0;
    kernel.w2c___stack_pointer = saved_sp;
    wasm_rt_call_stack_depth = saved_depth;
    machine_set_sr(saved_sr);
    return catch_code;
}

/* Leave the running test (from the panic handler). Returns only when no test is running. */
void Z_machineZ_unwind(M *m)
{
    (void)m;
    if (catch_active) {
        catch_code = 1;
        __builtin_longjmp(catch_buf, 1);
    }
}

u32 Z_machineZ_last_trap_pc(M *m) { (void)m; return last_trap_pc; }

/* ---- CPU and caches ------------------------------------------------------------------------ */

u32 Z_machineZ_cpu_cacr_read(M *m) { (void)m; return machine_cacr_read(); }
void Z_machineZ_cpu_cacr_write(M *m, u32 v) { (void)m; machine_cacr_write(v); }
void Z_machineZ_cpu_cache_off_040(M *m) { (void)m; machine_cache_off_040(); }
u32 Z_machineZ_cpu_fpu_present(M *m) { (void)m; return machine_fpu_present; }

/* Runs one probe of cpu.S with interrupts masked: the probes briefly put the CPU in states
 * (caches on in odd modes, trap handlers armed) that no interrupt handler may see. */
static u32 probe_masked(u32 (*probe)(void))
{
    u32 sr = machine_get_sr(), result;
    machine_set_sr(sr | SR_IPL_MASK);
    result = probe();
    machine_set_sr(sr);
    return result;
}

u32 Z_machineZ_cpu_cacr_probe(M *m) { (void)m; return probe_masked(machine_cacr_probe); }

/* The two probes of a 68040-style CPU (cpu.S). */
u32 Z_machineZ_cpu_probe_cache_insns(M *m)
{
    (void)m;
    return probe_masked(machine_probe_cache_insns);
}

u32 Z_machineZ_cpu_probe_ttrs(M *m) { (void)m; return probe_masked(machine_probe_ttrs); }

u32 Z_machineZ_cpu_ttr_read(M *m, u32 which) { (void)m; return machine_ttr_read(which & 3); }
void Z_machineZ_cpu_ttr_write(M *m, u32 which, u32 v) { (void)m; machine_ttr_write(which & 3, v); }

/* One 68040-style cache instruction (68040, 68060): cpu.S builds it from `kind` (the middle
 * byte of its opcode) and refuses, with 1, a kind that names none. Rust calls this only on a
 * CPU that has the instruction. */
u32 Z_machineZ_cache_op(M *m, u32 kind, u32 addr)
{
    (void)m;
    return machine_cache_op(kind, addr);
}

/* The benchmark cell markers: `cargo xtask profile` gives its QEMU plugin the entry addresses
 * of these two functions (from kernel.elf's symbols) and counts guest instructions only from
 * the entry of the first to the entry of the second. Each must stay a function of its own with
 * its own address: noipa keeps GCC from inlining, cloning or merging them (identical code
 * folding), and their bodies differ anyway (the store of 1 or 2, which nothing reads). */
volatile u32 machine_profile_mark;

__attribute__((noipa)) void Z_machineZ_profile_cell_begin(M *m)
{
    (void)m;
    machine_profile_mark = 1;
}

__attribute__((noipa)) void Z_machineZ_profile_cell_end(M *m)
{
    (void)m;
    machine_profile_mark = 2;
}

/* An opaque call (this file is compiled apart from the kernel, without LTO) with a memory
 * clobber: GCC may not keep linear memory values in registers across it. DMA syncs use it.
 * The xtask replaces the kernel's calls with the memory clobber itself (xtask/src/rewrite.rs,
 * inline_barrier); this definition stays for the import's link. */
void Z_machineZ_barrier(M *m)
{
    (void)m;
    __asm__ volatile("" ::: "memory");
}

/* Enter the trap path as the CPU does for interrupt vector `vector` (24..31: spurious, levels
 * 1..7) with a format-0 frame, so the kernel can test a vector QEMU never raises. Returns 0,
 * or 1 (nothing done) for any other vector: those end the kernel. */
u32 Z_machineZ_deliver_interrupt_vector(M *m, u32 vector)
{
    /* struct frame has no padding on m68k (see above); its flexible tail is not used for
     * format 0. */
    struct frame f;
    (void)m;
    if (vector < 24 || vector > 31)
        return 1;
    f.sr = (u16)machine_get_sr();
    f.pc = 0;
    f.format_vector = (u16)(vector << 2);
    machine_trap(&f);
    return 0;
}

/* Deliberate machine faults for the kernel's fault= option. */
void Z_machineZ_fault(M *m, u32 kind)
{
    (void)m;
    switch (kind) {
    case 1:
        machine_illegal();
        break;
    case 2:
        (void)*(volatile u32 *)0xfe000000u; /* nothing is mapped there on the virt board */
        break;
    case 3:
        machine_divzero();
        break;
    default:
        break;
    }
}
