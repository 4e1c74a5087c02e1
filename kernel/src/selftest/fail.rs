//! Tests that fail on purpose, to show that failures are seen and named. Excluded from
//! `test=all`; the xtask runs them with `test=fail::` and expects every one to fail.

use crate::selftest::harness::{Test, TestResult};
use alloc::vec;
use alloc::vec::Vec;

pub fn tests() -> Vec<Test> {
    vec![
        Test::new("fail::assertion", assertion),
        Test::new("fail::panic", panic),
        Test::new("fail::wasm_trap", wasm_trap),
    ]
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

/// Never returns: selected only by name, so the xtask can show that a hung test is killed
/// by its timeout and named.
pub fn hang_forever() -> TestResult {
    loop {
        core::hint::spin_loop();
    }
}
