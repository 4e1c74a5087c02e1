/* boot/entry.S: the first instructions, the vector table and the one exception stub.
 *
 * Owns: supervisor state at entry (SR, stack, .bss, VBR) and saving what C clobbers around
 * every exception and interrupt. It makes no decisions: machine.c reads the frame and Rust
 * decides what to do with it.
 *
 * QEMU starts us in supervisor mode with SR = 0x2700, A7 = 0 (no stack), VBR = 0, caches and
 * MMU off. The bootinfo list sits right after _end, so nothing here may write past __bss_end.
 *
 * The CPU gate runs first: the kernel (GCC -m68020-60) needs a 68020 or later, and QEMU's
 * virt board also accepts the 68000, 68010 and ColdFire cores, on which that code would die
 * in confusing ways or hang. Until the gate has passed, only instructions that the 68000,
 * the 68010 and ColdFire all decode alike may run here (no DBcc, no MOVEC, no byte/word
 * immediates on data registers, no 32-bit branches).
 */

    .section .text.entry, "ax"
    .globl  _start
_start:
    move.w  #0x2700, %sr            | supervisor, all interrupts masked until Rust says so
    lea     __stack_top, %sp
    /* Every vector of the VBR = 0 table (RAM 0-0x3ff: the 68000 has no VBR, ColdFire and
     * the 68010 start with 0) goes to cpu_gate_fail while the probes run: whatever trap an
     * older core takes, and whatever its frame looks like, it lands there. */
    lea     cpu_gate_fail, %a1
    suba.l  %a0, %a0
    lea     0x400, %a2
1:  move.l  %a1, (%a0)+
    cmpa.l  %a2, %a0
    bne.s   1b
    /* %d7 says which probe ran, for cpu_gate_fail's report. */
    moveq   #1, %d7                 | DBcc: every 680x0 has it, ColdFire does not
    moveq   #0, %d0
    dbra    %d0, 2f
2:  moveq   #2, %d7                 | MOVEC from a control register: 68010 and later
    movec   %vbr, %d0
    moveq   #3, %d7                 | bit-field instructions: 68020 and later
    bfextu  %d0{#0:#8}, %d0
    /* A 68020 or later: give page 0 back its zeros (the real table is set below). */
    suba.l  %a0, %a0
3:  clr.l   (%a0)+
    cmpa.l  %a2, %a0
    bne.s   3b
    lea     __bss_start, %a0
    lea     __bss_end, %a1
1:  cmp.l   %a1, %a0
    bcc.s   2f
    clr.l   (%a0)+
    bra.s   1b
2:  lea     vector_table, %a0
    movec   %a0, %vbr
    jsr     machine_start           | never returns
3:  stop    #0x2700
    bra.s   3b

/* A probe of the CPU gate trapped: say why on the TTY (its fixed address: bootinfo is not
 * read yet), then virt-ctrl PANIC, which makes QEMU exit 1 under -action panic=exit-failure.
 * Runs on the 68000, 68010 and ColdFire, with whatever exception frame they pushed. */
cpu_gate_fail:
    move.w  #0x2700, %sr
    lea     __stack_top, %sp
    lea     gate_msg, %a0
    bsr.s   gate_puts
    lea     gate_found_cf, %a0
    moveq   #1, %d0
    cmp.l   %d0, %d7
    beq.s   1f
    lea     gate_found_68000, %a0
    moveq   #2, %d0
    cmp.l   %d0, %d7
    beq.s   1f
    lea     gate_found_68010, %a0
1:  bsr.s   gate_puts
    lea     0xff009004, %a1         | virt-ctrl CMD
    moveq   #3, %d0                 | PANIC
    move.l  %d0, (%a1)
2:  stop    #0x2700
    bra.s   2b

gate_puts:                          | %a0: NUL-terminated text, to goldfish TTY PUT_CHAR
    lea     0xff008000, %a1
1:  moveq   #0, %d0
    move.b  (%a0)+, %d0
    beq.s   2f
    move.l  %d0, (%a1)
    bra.s   1b
2:  rts

    .section .rodata
gate_msg:
    .asciz  "fatal: this kernel needs a 68020 or later (68020, 68030, 68040, 68060); "
gate_found_cf:
    .asciz  "this CPU has no DBcc instruction: a ColdFire core\n"
gate_found_68000:
    .asciz  "this CPU has no MOVEC instruction: a 68000\n"
gate_found_68010:
    .asciz  "this CPU has no bit-field instructions: a 68010\n"

/* Every vector enters here. The vector number is in the frame's format/vector word, so one
 * stub serves all 256 vectors. m68k GCC treats d0-d1/a0-a1 and fp0-fp1 (plus the FPU control
 * registers) as clobbered by a call: those are saved; everything else C preserves itself. */
    .text
    .globl  exc_common
exc_common:
    movem.l %d0-%d1/%a0-%a1, -(%sp)
    lea     16(%sp), %a0            | the hardware exception frame
    tst.b   machine_fpu_present
    beq.s   1f
    fmovem.x %fp0-%fp1, -(%sp)
    fmovem.l %fpcr/%fpsr/%fpiar, -(%sp)
1:  move.l  %a0, -(%sp)
    jsr     machine_trap
    addq.l  #4, %sp
    tst.b   machine_fpu_present
    beq.s   2f
    fmovem.l (%sp)+, %fpcr/%fpsr/%fpiar
    fmovem.x (%sp)+, %fp0-%fp1
2:  movem.l (%sp)+, %d0-%d1/%a0-%a1
    rte

/* Privileged instructions the C side needs, kept out of inline asm so they are easy to audit. */
    .globl  machine_get_sr
machine_get_sr:
    moveq   #0, %d0
    move.w  %sr, %d0
    rts

    .globl  machine_set_sr          | void machine_set_sr(u32 sr): only the low word is used
machine_set_sr:
    move.w  6(%sp), %sr
    rts

    .globl  machine_stop            | wait for an interrupt at IPL 0 (SR = 0x2000 afterwards)
machine_stop:
    stop    #0x2000
    rts

    .globl  machine_illegal         | deliberate illegal instruction (kernel option fault=illegal)
machine_illegal:
    illegal
    rts

    .globl  machine_divzero         | deliberate integer divide by zero (fault=divzero)
machine_divzero:
    moveq   #0, %d1
    moveq   #1, %d0
    divu.w  %d1, %d0
    rts

    .section .rodata
    .balign 4
    .globl  vector_table
vector_table:
    .rept   256
    .long   exc_common
    .endr

    .bss
    .balign 16
    .globl  __stack_bottom
__stack_bottom:
    .space  0x80000                 | 512 KiB native stack: wasm2c code keeps wasm locals here
    .globl  __stack_top
__stack_top:

/* The compiled kernel's stack guard (every function's prologue, xtask rewrite::stack_guard):
 * a function entered with %sp below w2k_stack_limit traps "call stack exhausted". 32 KiB
 * above the bottom: more than the largest frame (under 1 KiB) plus the interrupt handlers
 * that may nest on top of the function that trips it. A variable: the fatal trap path lowers
 * it to w2k_stack_reserve (4 KiB above the bottom) so that the Rust report of an exhausted
 * stack has 28 KiB to run in (boot/machine.c, machine_wasm_trap). */
    .data
    .balign 4
    .globl  w2k_stack_limit
w2k_stack_limit:
    .long   __stack_bottom + 0x8000
    .globl  w2k_stack_reserve
    .set    w2k_stack_reserve, __stack_bottom + 0x1000
