/* boot/cpu.S: model-specific privileged instructions: CACR, the 68040's transparent
 * translation registers and cache lines/pages, and the probes that tell models apart.
 *
 * Owns: only the instructions. Which one is safe on which CPU, and when to use it, is decided
 * in Rust (kernel/src/arch/m68k/cpu.rs, kernel/src/arch/m68k/cache.rs): on a 68020/68030 the 68040 instructions
 * below take an F-line trap (and under QEMU on the 68060 too), so Rust calls them only where
 * the probes below found them working. The 68060's PCR is never touched here (movec PCR
 * aborts QEMU 7.2 and 10.0.2).
 *
 * Calling convention: GCC's m68k ABI (arguments on the stack, result in %d0; d0-d1/a0-a1
 * may be clobbered).
 */
    .arch   68040
    .text

/* u32 machine_cacr_read(void) */
    .globl  machine_cacr_read
machine_cacr_read:
    movec   %cacr, %d0
    rts

/* void machine_cacr_write(u32 value) */
    .globl  machine_cacr_write
machine_cacr_write:
    move.l  4(%sp), %d0
    movec   %d0, %cacr
    rts

/* u32 machine_cacr_probe(void): the CACR's writable bits (write all ones, read back), with
 * the caches left off (CACR = 0). Interrupts must be masked: the caches are briefly on in
 * whatever mode the ones select. The mask identifies the model: 68020 0x0000000f,
 * 68030 0x00003f1f, 68040 0x80008000, 68060 0xf8e0e000 under QEMU 7.2 and 10.0.2. */
    .globl  machine_cacr_probe
machine_cacr_probe:
    moveq   #-1, %d0
    movec   %d0, %cacr
    movec   %cacr, %d0
    moveq   #0, %d1
    movec   %d1, %cacr
    rts

/* 68040 transparent translation registers (movec 0x004-0x007). 68040 and 68060 only. */
    .globl  machine_ttr_read
machine_ttr_read:                   /* u32 machine_ttr_read(u32 which): 0 itt0 .. 3 dtt1 */
    move.l  4(%sp), %d1
    cmp.l   #1, %d1
    beq.s   1f
    bhi.s   2f
    movec   %itt0, %d0
    rts
1:  movec   %itt1, %d0
    rts
2:  cmp.l   #2, %d1
    bne.s   3f
    movec   %dtt0, %d0
    rts
3:  movec   %dtt1, %d0
    rts

    .globl  machine_ttr_write
machine_ttr_write:                  /* void machine_ttr_write(u32 which, u32 value) */
    move.l  4(%sp), %d1
    move.l  8(%sp), %d0
    cmp.l   #1, %d1
    beq.s   1f
    bhi.s   2f
    movec   %d0, %itt0
    rts
1:  movec   %d0, %itt1
    rts
2:  cmp.l   #2, %d1
    bne.s   3f
    movec   %d0, %dtt0
    rts
3:  movec   %d0, %dtt1
    rts

/* u32 machine_cache_op(u32 kind, u32 physical_address): one 68040 CINV or CPUSH, or 1 when
 * `kind` names none. `kind` is the opcode's middle byte, cache<<6 | push<<5 | scope<<3
 * (MC68040UM 9.1: 1111 0100 CC P SS RRR; CC 01 data, 10 instruction, 11 both; SS 01 line,
 * 10 page, 11 all); Rust's cache::Step::encoding is its one producer. The opcode is not
 * spelled here instance by instance: the table below holds one 8-byte entry per multiple of 8,
 * `.word 0xF400 | kind` (register field 0: the address is in %a0) where CC and SS are both
 * non-zero, a refusal elsewhere. So the instruction executed is, by construction, the one
 * whose middle byte is `kind`. Interrupts are not masked: each instruction is atomic. */
    .globl  machine_cache_op
machine_cache_op:
    move.l  4(%sp), %d0
    move.l  8(%sp), %a0
    cmp.l   #0xf8, %d0
    bhi.s   1f
    moveq   #7, %d1
    and.l   %d0, %d1
    bne.s   1f
    lea     cacheop_table(%pc), %a1
    jmp     0(%a1,%d0.l)
1:  moveq   #1, %d0
    rts

    .balign 2
cacheop_table:
    .set    kind, 0
    .rept   32
    .if     ((kind >> 6) & 3) && ((kind >> 3) & 3)
    .word   0xf400 + kind          /* not "|": that starts a comment in m68k gas */
    moveq   #0, %d0
    rts
    nop
    .else
    moveq   #1, %d0
    rts
    nop
    nop
    .endif
    .set    kind, kind + 8
    .endr
cacheop_table_end:
    .if     cacheop_table_end - cacheop_table - 256
    .error  "cacheop_table entries must be 8 bytes each"
    .endif

/* void Z_machineZ_dc_op(M *m, u32 op, u32 physical_address): the wasm import `machine.dc_op`,
 * entered straight from the kernel (no C wrapper, no refusal): one 68040 data-cache
 * instruction. `op` is masked to its low three bits, bit 0 push, bit 1 page, bit 2 the whole
 * cache, so every value names one of the eight entries below and none is refused:
 *   0 cinvl dc   1 cpushl dc   2 cinvp dc   3 cpushp dc   4-7 cpusha dc
 * (with bit 2 only the push-all: a whole-cache invalidate would discard what others wrote).
 * Line and page forms take the address in %a0 (register field 0); the push-all ignores it.
 * Each entry is 4 bytes, the instruction and rts; xtask/src/machine_code.rs checks the
 * dispatch and the entries as linked. The benchmark's floor issues its per-request syncs
 * through this (kernel::arch::m68k::machine::dc_op); Rust calls it only on a CPU that has
 * the instructions. Interrupts are not masked: each instruction is atomic. */
    .globl  Z_machineZ_dc_op
Z_machineZ_dc_op:
    move.l  8(%sp), %d0
    move.l  12(%sp), %a0
    and.l   #7, %d0
    jmp     dcop_table(%pc,%d0.l*4)
dcop_table:
    cinvl   %dc, (%a0)
    rts
    cpushl  %dc, (%a0)
    rts
    cinvp   %dc, (%a0)
    rts
    cpushp  %dc, (%a0)
    rts
    .rept   4
    cpusha  %dc
    rts
    .endr
dcop_table_end:
    .if     dcop_table_end - dcop_table - 32
    .error  "dcop_table entries must be 4 bytes each"
    .endif

/* u64 Z_machineZ_rtc_read(M *m, u32 base): the wasm import `machine.rtc_read`, entered
 * straight from the kernel: a goldfish RTC's 64-bit time read whole, TIME_LOW (which latches
 * TIME_HIGH) then TIME_HIGH, with interrupts masked between them (a handler reading the RTC
 * would re-latch). The benchmark's window clock (kern::time::raw_ns): few instructions on
 * either side of the latching load, since under -icount they are counted in the window.
 * Result in %d0 (high) and %d1 (low), GCC's m68k convention for a u64. */
    .globl  Z_machineZ_rtc_read
Z_machineZ_rtc_read:
    move.l  8(%sp), %a0
    move.w  %sr, %d1
    ori.w   #0x0700, %sr
    move.l  (%a0)+, %a1
    move.l  (%a0), %d0
    move.w  %d1, %sr
    move.l  %a1, %d1
    rts

/* void machine_cache_off_040(void): push and invalidate both caches, then turn them off, with
 * interrupts masked and no memory write between the CPUSHA and the CACR write. Done as two
 * calls from C or Rust, the return address and locals written after the push would sit dirty
 * in a cache that no longer answers once CACR is 0, and be lost (as would an interrupt
 * handler's writes in between). */
    .globl  machine_cache_off_040
machine_cache_off_040:
    move.w  %sr, %d1
    ori.w   #0x0700, %sr
    cpusha  %bc
    moveq   #0, %d0
    movec   %d0, %cacr
    move.w  %d1, %sr
    rts

/* u32 machine_probe_fpu(void): 1 if an FPU answers, 0 if reading FPCR takes an F-line trap.
 * machine_trap resumes a faulting probe at machine_probe_resume with machine_probe_faulted
 * set. Runs before the exception stub saves FPU state (machine_fpu_present is still 0). */
    .globl  machine_probe_fpu
machine_probe_fpu:
    clr.b   machine_probe_faulted
    lea     1f, %a0
    move.l  %a0, machine_probe_resume
    fmove.l %fpcr, %d0
1:  clr.l   machine_probe_resume
    moveq   #1, %d0
    tst.b   machine_probe_faulted
    beq.s   2f
    moveq   #0, %d0
2:  rts

/* Probes: each instruction runs inside a probe window (machine_probe_resume set), so an
 * F-line or illegal-instruction trap resumes at the next label with machine_probe_faulted
 * set. Return 1 if none trapped. Only for CPUs with a format-0/2 frame (QEMU >= 9.0 for the
 * 68060; Rust refuses it on older QEMU before probing). */
    .macro  PROBE_START
    clr.b   machine_probe_faulted
    .endm
    .macro  PROBE insn
    lea     9f, %a0
    move.l  %a0, machine_probe_resume
    \insn
9:
    .endm
    .macro  PROBE_END
    clr.l   machine_probe_resume
    moveq   #1, %d0
    tst.b   machine_probe_faulted
    beq.s   9f
    moveq   #0, %d0
9:  rts
    .endm

/* u32 machine_probe_cache_insns(void): CPUSHA and CINVA on both caches. Call only while the
 * caches are off (nothing cached, nothing lost). */
    .globl  machine_probe_cache_insns
machine_probe_cache_insns:
    PROBE_START
    PROBE   "cpusha %bc"
    PROBE   "cinva %bc"
    PROBE_END

/* u32 machine_probe_ttrs(void): read each of ITT0-1/DTT0-1 and write the value back. */
    .globl  machine_probe_ttrs
machine_probe_ttrs:
    PROBE_START
    moveq   #0, %d1
    PROBE   "movec %itt0, %d1"
    PROBE   "movec %d1, %itt0"
    PROBE   "movec %itt1, %d1"
    PROBE   "movec %d1, %itt1"
    PROBE   "movec %dtt0, %d1"
    PROBE   "movec %d1, %dtt0"
    PROBE   "movec %dtt1, %d1"
    PROBE   "movec %d1, %dtt1"
    PROBE_END
