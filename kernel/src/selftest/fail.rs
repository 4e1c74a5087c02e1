//! Tests that fail on purpose, to show that failures are seen and named. Excluded from
//! `test=all`; the xtask runs them with `test=fail::` and expects every one to fail.

use crate::board::virt::irq::{self, Handled};
use crate::kern::time::{self, MILLIS, SECONDS};
use crate::selftest::harness::{Test, TestResult};
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};

pub fn tests() -> Vec<Test> {
    vec![
        Test::new("fail::assertion", assertion),
        Test::new("fail::panic", panic),
        Test::new("fail::wasm_trap", wasm_trap),
        Test::new("fail::refused_cache_op", refused_cache_op),
        Test::new("fail::stack_exhausted", stack_exhausted),
    ]
}

/// Recursion without end: the compiled kernel's stack guard (each function's prologue
/// compares the native stack pointer with a limit above the stack's bottom) must trap before
/// the stack runs into what lies below it.
fn stack_exhausted() -> TestResult {
    let depth = crate::kern::fatal::recurse_without_end();
    ensure!(false, "{depth} nested calls returned: no stack guard");
    Ok(())
}

fn assertion() -> TestResult {
    ensure!(
        1 + 1 == core::hint::black_box(3),
        "deliberate: 1 + 1 is not 3"
    );
    Ok(())
}

fn panic() -> TestResult {
    let v: Vec<u8> = Vec::new();
    let i = core::hint::black_box(5);
    let _ = v[i];
    Ok(())
}

fn wasm_trap() -> TestResult {
    // An address past the end of linear memory: the bounds check traps.
    // SAFETY: deliberately invalid; the access never happens (the wasm check traps).
    let x = unsafe { core::ptr::read_volatile(0xffff_fff0usize as *const u32) };
    ensure!(x == 0, "read past linear memory returned {x}");
    Ok(())
}

/// A cache operation the machine layer refuses must stop the caller, in the release build
/// too: silently skipped maintenance is the bug this kernel exists to prevent.
fn refused_cache_op() -> TestResult {
    // SAFETY: kind 0 names no cache (CC = 00): the machine layer refuses it before executing
    // any instruction, on every CPU.
    unsafe { crate::arch::m68k::cache::execute_encoded(0, 0) };
    ensure!(false, "a refused cache op returned to its caller");
    Ok(())
}

/// The recovery group, selected only by name and in this order: a test that panics inside an
/// interrupt handler (a timer callback, level 6), then one that needs the kernel's interrupt
/// state back as it was: not in interrupt context, handlers registrable, timers firing.
pub fn recovery_tests() -> Vec<Test> {
    vec![
        Test::new(
            "recovery::panic_in_interrupt_handler",
            panic_in_interrupt_handler,
        ),
        Test::new(
            "recovery::interrupts_work_after_a_handler_panic",
            interrupts_work_after_a_handler_panic,
        ),
    ]
}

fn panic_in_interrupt_handler() -> TestResult {
    time::after(MILLIS, || panic!("deliberate: a timer callback panics"));
    // The panic leaves this test from inside the handler; getting past the wait is the failure.
    let waited = time::wait_until(|| false, 10 * SECONDS);
    ensure!(false, "the timer never fired: {waited:?}");
    Ok(())
}

fn interrupts_work_after_a_handler_panic() -> TestResult {
    ensure!(
        !irq::in_interrupt(),
        "thread context counts {} interrupt dispatches in progress",
        irq::nesting_depth()
    );
    let id = irq::register(
        irq::FIRST_IRQ + irq::IRQ_COUNT - 1,
        "test: recovery",
        || Handled::NotMine,
    );
    ensure!(id.is_ok(), "registration refused: {:?}", id.err());
    irq::unregister(id.unwrap());
    let fired = Arc::new(AtomicBool::new(false));
    let f = fired.clone();
    time::after(MILLIS, move || f.store(true, Ordering::Relaxed));
    let waited = time::wait_until(|| fired.load(Ordering::Relaxed), 10 * SECONDS);
    ensure!(waited.is_ok(), "a timer no longer fires: {waited:?}");
    Ok(())
}

/// Never returns: selected only by name, so the xtask can show that a hung test is killed
/// by its timeout and named.
pub fn hang_forever() -> TestResult {
    loop {
        core::hint::spin_loop();
    }
}
