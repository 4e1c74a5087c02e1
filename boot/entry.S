/* boot/entry.S: the first instructions, the vector table and the one exception stub.
 *
 * Owns: supervisor state at entry (SR, stack, .bss, VBR) and saving what C clobbers around
 * every exception and interrupt. It makes no decisions: machine.c reads the frame and Rust
 * decides what to do with it.
 *
 * QEMU starts us in supervisor mode with SR = 0x2700, A7 = 0 (no stack), VBR = 0, caches and
 * MMU off. The bootinfo list sits right after _end, so nothing here may write past __bss_end.
 */

    .section .text.entry, "ax"
    .globl  _start
_start:
    move.w  #0x2700, %sr            | supervisor, all interrupts masked until Rust says so
    lea     __stack_top, %sp
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
