//! The in-guest test registry: every group's tests, in the order they run.
//!
//! Add a test: write `fn name() -> TestResult` in a group below (or a new group module) and
//! list it in that group's `tests()`. Names are `group::name`; `test=<text>` selects by
//! substring.

use crate::harness::{Failure, Test, TestResult};
use alloc::boxed::Box;
use alloc::vec::Vec;

pub fn all() -> Vec<Test> {
    let mut all = Vec::new();
    all.extend(codegen::tests());
    all.extend(boot::tests());
    all.extend(crate::tests_machine::cpu_tests());
    all.extend(crate::tests_machine::irq_tests());
    all.extend(crate::tests_machine::time_tests());
    all.extend(crate::tests_machine::wallclock_tests());
    all.extend(crate::tests_machine::tty_tests());
    all.extend(crate::tests_dma::tests());
    all.extend(crate::tests_virtio::tests());
    all.extend(crate::tests_blk::tests());
    all.extend(fail::tests());
    all.push(Test::new("hang::forever", hang_forever));
    all
}

/// The compilation route's conformance checks: each case's guest result against the host's.
mod codegen {
    use super::*;
    use crate::conformance::{CASES, EXPECTED};
    use alloc::format;
    use alloc::string::String;

    pub fn tests() -> Vec<Test> {
        CASES
            .iter()
            .map(|&(name, case)| {
                let expected = EXPECTED.iter().find(|(n, _)| *n == name).map(|(_, e)| *e);
                let full: &'static str = Box::leak(format!("codegen::{name}").into_boxed_str());
                Test {
                    name: full,
                    run: Box::new(move || check(case, expected)),
                }
            })
            .collect()
    }

    fn check(case: fn() -> String, expected: Option<&str>) -> TestResult {
        let expected = expected
            .ok_or_else(|| Failure::Failed("no host value recorded for this case".into()))?;
        let got = case();
        ensure!(
            got == expected,
            "guest computed\n    {got}\n  host computed\n    {expected}"
        );
        Ok(())
    }
}

/// What boot set up: bootinfo, linear memory, heap.
mod boot {
    use super::*;
    use crate::machine;
    use alloc::collections::BTreeMap;
    use alloc::vec;

    pub fn tests() -> Vec<Test> {
        vec![
            Test::new(
                "boot::bootinfo_has_every_virt_device",
                bootinfo_has_every_virt_device,
            ),
            Test::new(
                "boot::linear_memory_reaches_end_of_ram",
                linear_memory_reaches_end_of_ram,
            ),
            Test::new("boot::heap_allocates_and_frees", heap_allocates_and_frees),
            Test::new("boot::heap_survives_many_sizes", heap_survives_many_sizes),
            Test::new(
                "boot::physical_addresses_follow_linear_base",
                physical_addresses_follow_linear_base,
            ),
        ]
    }

    fn bootinfo_has_every_virt_device() -> TestResult {
        let info = crate::boot_info();
        ensure_eq!(info.require_virt(), Ok(()));
        let tty = info.tty.unwrap();
        // The layout QEMU 7.2 documents for the virt board.
        ensure_eq!(tty.base, 0xff00_8000);
        ensure_eq!(info.pic.unwrap().base, 0xff00_0000);
        ensure_eq!(info.rtc.unwrap().irq, 168);
        ensure_eq!(info.virtio.unwrap().base, 0xff01_0000);
        ensure!(info.qemu_version.is_some(), "no VIRT_QEMU_VERSION record");
        ensure!(info.command_line.is_some(), "no COMMAND_LINE record");
        Ok(())
    }

    fn linear_memory_reaches_end_of_ram() -> TestResult {
        let info = crate::boot_info();
        let base = machine::linear_memory_base();
        let chunk = info.chunk_containing(base).ok_or_else(|| {
            Failure::Failed(alloc::format!(
                "no memory chunk holds linear base {base:#x}"
            ))
        })?;
        let size = core::arch::wasm32::memory_size(0) as u64 * 65536;
        let end = chunk.end().unwrap() as u64;
        // Linear memory grows in whole 64 KiB wasm pages: it covers every whole page below
        // the end of RAM, and only a tail of RAM smaller than a page (-m not a multiple of
        // 64 KiB) is left out.
        let whole_pages = (end - base as u64) / 65536;
        ensure_eq!(size, whole_pages * 65536);
        ensure!(
            end - (base as u64 + size) < 65536,
            "RAM ends {} bytes past linear memory",
            end - (base as u64 + size)
        );
        ensure_eq!(machine::machine_ram_end(), chunk.end().unwrap());
        Ok(())
    }

    fn heap_allocates_and_frees() -> TestResult {
        let (used_before, _) = crate::heap::usage();
        {
            let big = vec![0x5au8; 4 << 20];
            ensure!(
                big.iter().all(|&b| b == 0x5a),
                "4 MiB block reads back wrong"
            );
            let (used, _) = crate::heap::usage();
            ensure!(
                used >= used_before + (4 << 20),
                "usage did not grow: {used}"
            );
        }
        let (used_after, _) = crate::heap::usage();
        ensure_eq!(used_after, used_before);
        Ok(())
    }

    fn heap_survives_many_sizes() -> TestResult {
        let mut live: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
        let mut seed = 1u32;
        for i in 0..2000u32 {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let len = (seed >> 16) % 700;
            if seed & 0x100 != 0 {
                live.remove(&((seed >> 9) % 64));
            }
            live.insert(i % 64, (0..len).map(|x| x ^ i).collect());
        }
        for (k, v) in &live {
            ensure!(
                v.iter()
                    .enumerate()
                    .all(|(x, &y)| y == x as u32 ^ v.first().map_or(0, |f| *f)),
                "block {k} corrupted"
            );
        }
        Ok(())
    }

    fn physical_addresses_follow_linear_base() -> TestResult {
        let x = Box::new(0u64);
        let p = &*x as *const u64;
        ensure_eq!(
            machine::physical_address(p),
            machine::linear_memory_base() + p as u32
        );
        ensure!(
            machine::physical_address(p) < machine::machine_ram_end(),
            "past end of RAM"
        );
        Ok(())
    }
}

/// Never returns: selected only by name, so the xtask can show that a hung test is killed
/// by its timeout and named.
fn hang_forever() -> TestResult {
    loop {
        core::hint::spin_loop();
    }
}

/// Tests that fail on purpose, to show that failures are seen and named. Excluded from
/// `test=all`; the xtask runs them with `test=fail::` and expects every one to fail.
mod fail {
    use super::*;
    use alloc::vec;

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
}
