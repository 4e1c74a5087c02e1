//! Ending the kernel: success, and every way of failing (panic, unexpected exception, wasm
//! trap), each with a report on the console and QEMU's exit status set through virt-ctrl.
//!
//! Report formats (the xtask and users grep for the first word):
//!   kernel panic: <message> at <file>:<line>:<col>
//!   fatal exception: vector <n> (<name>) pc=<hex> sr=<hex> format=<hex> [fault-address=<hex>]
//!   fatal wasm trap: <what> pc=<hex>

use crate::arch::m68k::machine::{self, MachineBus};
use crate::arch::m68k::traps::{trap_name, vector_name};
use crate::board::virt::memmap;
use console_proto::report::Pc;
use core::sync::atomic::{AtomicPtr, AtomicU32, Ordering};
use drivers::virt_ctrl::{Command, VirtCtrl};

/// The virt board's virt-ctrl until bootinfo says where it is.
static CTRL_BASE: AtomicU32 = AtomicU32::new(memmap::CTRL_BASE);

/// The name of the self test running now (null: none), for the panic and exception reports.
static RUNNING_TEST: AtomicPtr<&'static str> = AtomicPtr::new(core::ptr::null_mut());

/// Records which self test is running (`None`: none), so that a panic unwinds back to the
/// harness and an exception report names the test. Called by the harness around each test.
pub fn set_running_test(name: Option<&'static &'static str>) {
    let p = name.map_or(core::ptr::null_mut(), |n| n as *const _ as *mut _);
    RUNNING_TEST.store(p, Ordering::Relaxed);
}

fn running_test() -> Option<&'static str> {
    // SAFETY: RUNNING_TEST is null or was stored from a `&'static &'static str` by
    // set_running_test, so it points at a live, never-written name.
    unsafe { RUNNING_TEST.load(Ordering::Relaxed).as_ref() }.copied()
}

/// Points the exit path at the virt-ctrl device at `base` (physical).
///
/// # Safety
///
/// `base` must be virt-ctrl's register block as bootinfo reports it: exiting writes its
/// command register through the machine bus.
pub unsafe fn set_ctrl_base(base: u32) {
    CTRL_BASE.store(base, Ordering::Relaxed);
}

fn ctrl() -> VirtCtrl<MachineBus> {
    // SAFETY: CTRL_BASE holds the board's virt-ctrl base or the one bootinfo reported: the
    // bus and the driver reach only virt-ctrl's registers.
    unsafe { VirtCtrl::new(MachineBus::new(), CTRL_BASE.load(Ordering::Relaxed)) }
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
        // SAFETY: virt-ctrl was told to end the emulation; whatever a handler does until then
        // touches nothing this path still uses, and the mask guard is never dropped.
        unsafe { machine::wait_for_interrupt() };
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    let (file, line, col) = info
        .location()
        .map_or(("?", 0, 0), |l| (l.file(), l.line(), l.column()));
    if running_test().is_some() {
        // The harness printed "test NAME ... "; finish its line and go back to it.
        println!(
            "{}",
            console_proto::test_line::Failed(format_args!(
                "panicked at {file}:{line}:{col}: {}",
                info.message()
            ))
        );
        // SAFETY: the panic handler, for the running test whose failure it just reported.
        unsafe { machine::unwind_test() };
    }
    println!("\nkernel panic: {} at {file}:{line}:{col}", info.message());
    exit(false)
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
        "\nfatal exception: vector {vector} ({}) {} sr={sr:#06x} format={format:#x}",
        vector_name(vector),
        Pc(pc)
    );
    if has_fault_address != 0 {
        crate::print!(" fault-address={fault_address:#010x}");
    }
    println!();
    if let Some(name) = running_test() {
        println!("  while running test {name}");
    }
    exit(false)
}

/// Called by the machine layer for a wasm trap outside a caught test.
#[no_mangle]
pub extern "C" fn trap_entry(code: u32, pc: u32) {
    println!("\nfatal wasm trap: {} {}", trap_name(code), Pc(pc));
    exit(false)
}

/// Nests calls until the native stack guard traps (`fault=stack`, `fail::stack_exhausted`);
/// returns the depth only if nothing stopped it.
pub fn recurse_without_end() -> u32 {
    #[inline(never)]
    fn down(n: u32) -> u32 {
        if core::hint::black_box(n) == 0 {
            return 0;
        }
        // Not a tail call: the addition waits for the callee.
        down(n - 1).wrapping_add(core::hint::black_box(1))
    }
    down(core::hint::black_box(u32::MAX))
}
