//! Names for what the machine layer reports: the 68020-68060 exception vectors (M68000
//! Family Programmer's Reference Manual, table B-1) and wasm2c's trap codes.
#![forbid(unsafe_code)]

/// Name of a 68020-68060 exception vector.
pub fn vector_name(vector: u32) -> &'static str {
    match vector {
        2 => "access fault (bus error)",
        3 => "address error",
        4 => "illegal instruction",
        5 => "integer divide by zero",
        6 => "CHK",
        7 => "TRAPcc/TRAPV",
        8 => "privilege violation",
        9 => "trace",
        10 => "line 1010 emulator",
        11 => "line 1111 emulator (F-line)",
        13 => "coprocessor protocol violation",
        14 => "format error",
        15 => "uninitialized interrupt",
        24 => "spurious interrupt",
        25..=31 => "autovector interrupt",
        32..=47 => "TRAP #n",
        48 => "FPU branch or set on unordered",
        49 => "FPU inexact result",
        50 => "FPU divide by zero",
        51 => "FPU underflow",
        52 => "FPU operand error",
        53 => "FPU overflow",
        54 => "FPU signaling NaN",
        55 => "FPU unimplemented data type",
        56 => "MMU configuration error",
        57 | 58 => "MMU (68851)",
        60 => "unimplemented effective address",
        61 => "unimplemented integer instruction",
        64..=255 => "user interrupt vector",
        _ => "reserved",
    }
}

/// wasm2c's trap codes (wasm-rt.h, wabt 1.0.32).
pub fn trap_name(code: u32) -> &'static str {
    match code {
        1 => "out of bounds memory access",
        2 => "integer overflow",
        3 => "integer divide by zero",
        4 => "invalid conversion to integer",
        5 => "unreachable executed",
        6 => "indirect call type mismatch",
        7 => "uncaught exception",
        8 => "call stack exhausted",
        _ => "unknown trap",
    }
}
