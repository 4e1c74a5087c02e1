/* boot/machine.h: declarations shared by the machine layer's C files.
 *
 * The machine layer is the only native code besides the generated kernel: it provides the
 * wasm2c runtime and the `machine` imports through which Rust touches hardware.
 */
#ifndef BOOT_MACHINE_H
#define BOOT_MACHINE_H

#include <stdint.h>
#include <stddef.h>

typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;

/* entry.S */
u32 machine_get_sr(void);
void machine_set_sr(u32 sr);
void machine_stop(void);
void machine_illegal(void);
void machine_divzero(void);
extern u8 machine_fpu_present;

/* cpu.S */
u32 machine_cacr_read(void);
void machine_cacr_write(u32 value);
void machine_cache_off_040(void);
u32 machine_cacr_probe(void);
u32 machine_ttr_read(u32 which);
void machine_ttr_write(u32 which, u32 value);
u32 machine_probe_fpu(void);
u32 machine_probe_cache_insns(void);
u32 machine_probe_ttrs(void);
extern u32 machine_probe_resume;
extern u8 machine_probe_faulted;
u32 machine_cache_op(u32 kind, u32 addr);

/* linker.ld */
extern u8 __linear_memory_base[];
/* The native stack guard's limit (boot/entry.S): the compiled kernel's functions trap when
 * entered below it; the fatal trap path lowers it to the reserve. */
extern char *w2k_stack_limit;
extern char w2k_stack_reserve[];
extern u8 _end[];
extern u8 __stack_top[];
extern u8 __min_ram[];

/* runtime.c: what the machine layer needs to know about linear memory and traps. */
void machine_memory_set_limit(u32 physical_end);
u32 machine_memory_limit(void);

/* machine.c: last-resort output, usable before Rust runs and when Rust cannot. */
void machine_fallback_puts(const char *s);
void machine_fallback_hex(u32 v);
void machine_fallback_dec(u32 v);
void machine_fallback_exit_failure(void) __attribute__((noreturn));
void machine_wasm_trap(u32 code, u32 pc) __attribute__((noreturn));

#define SR_IPL_MASK 0x0700u

#endif
