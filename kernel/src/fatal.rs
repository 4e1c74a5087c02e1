//! Ending the kernel: success, and every way of failing (panic, unexpected exception, wasm
//! trap), each with a report on the console and QEMU's exit status set through virt-ctrl.
//!
//! Report formats (the xtask and users grep for the first word):
//!   kernel panic: <message> at <file>:<line>:<col>
//!   fatal exception: vector <n> (<name>) pc=<hex> sr=<hex> format=<hex> [fault-address=<hex>]
//!   fatal wasm trap: <what> pc=<hex>

use crate::harness;
use crate::machine::{self, MachineBus};
use core::sync::atomic::{AtomicU32, Ordering};
use drivers::virt_ctrl::{Command, VirtCtrl};

/// The virt board's virt-ctrl until bootinfo says where it is.
static CTRL_BASE: AtomicU32 = AtomicU32::new(0xff00_9000);

pub fn set_ctrl_base(base: u32) {
    CTRL_BASE.store(base, Ordering::Relaxed);
}

fn ctrl() -> VirtCtrl<MachineBus> {
    // SAFETY: CTRL_BASE holds the board's virt-ctrl base or the one bootinfo reported.
    unsafe { VirtCtrl::new(MachineBus, CTRL_BASE.load(Ordering::Relaxed)) }
}

/// Ends the emulation: QEMU exits 0 on success, 1 on failure (with -action panic=exit-failure).
pub fn exit(success: bool) -> ! {
    let _masked = machine::mask_interrupts();
    ctrl().command(if success {
        Command::Halt
    } else {
        Command::Panic
    });
    loop {
        machine::wait_for_interrupt();
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    let (file, line, col) = info
        .location()
        .map_or(("?", 0, 0), |l| (l.file(), l.line(), l.column()));
    if harness::running_test().is_some() {
        // The harness printed "test NAME ... "; finish its line and go back to it.
        println!(
            "FAILED: panicked at {file}:{line}:{col}: {}",
            info.message()
        );
        machine::unwind_test();
    }
    println!("\nkernel panic: {} at {file}:{line}:{col}", info.message());
    exit(false)
}

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

/// Called by the machine layer for every exception that is not an interrupt.
#[no_mangle]
pub extern "C" fn exception_entry(
    vector: u32,
    sr: u32,
    pc: u32,
    format: u32,
    fault_address: u32,
    has_fault_address: u32,
) {
    crate::print!(
        "\nfatal exception: vector {vector} ({}) pc={pc:#010x} sr={sr:#06x} format={format:#x}",
        vector_name(vector)
    );
    if has_fault_address != 0 {
        crate::print!(" fault-address={fault_address:#010x}");
    }
    println!();
    if let Some(name) = harness::running_test() {
        println!("  while running test {name}");
    }
    exit(false)
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

/// Called by the machine layer for a wasm trap outside a caught test.
#[no_mangle]
pub extern "C" fn trap_entry(code: u32, pc: u32) {
    println!("\nfatal wasm trap: {} pc={pc:#010x}", trap_name(code));
    exit(false)
}
