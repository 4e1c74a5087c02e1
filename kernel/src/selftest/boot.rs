//! What boot set up: bootinfo, linear memory, heap.
#![forbid(unsafe_code)]

use crate::arch::m68k::machine;
use crate::board::virt::memmap;
use crate::selftest::harness::{Failure, Test, TestResult};
use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;

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
    let info = crate::kern::boot::boot_info();
    ensure_eq!(info.require_virt(), Ok(()));
    let tty = info.tty.unwrap();
    // The layout QEMU 7.2 documents for the virt board.
    ensure_eq!(tty.base, memmap::TTY_BASE);
    ensure_eq!(tty.irq, memmap::TTY_IRQ);
    ensure_eq!(info.pic.unwrap().base, memmap::PIC_BASE);
    ensure_eq!(info.rtc.unwrap().base, memmap::RTC0_BASE);
    ensure_eq!(info.rtc.unwrap().irq, memmap::RTC0_IRQ);
    ensure_eq!(info.ctrl.unwrap().base, memmap::CTRL_BASE);
    ensure_eq!(info.virtio.unwrap().base, memmap::VIRTIO_BASE);
    ensure_eq!(info.virtio.unwrap().irq, memmap::VIRTIO_IRQ);
    ensure!(info.qemu_version.is_some(), "no VIRT_QEMU_VERSION record");
    ensure!(info.command_line.is_some(), "no COMMAND_LINE record");
    Ok(())
}

fn linear_memory_reaches_end_of_ram() -> TestResult {
    let info = crate::kern::boot::boot_info();
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
    // The bounds checks compare with a size patched in at boot (boot/runtime.c): the last
    // bytes of linear memory must read without a trap (fault=wasmtrap checks that the first
    // byte past it traps).
    let _ = crate::kern::heap::read_linear_memory_end();
    Ok(())
}

fn heap_allocates_and_frees() -> TestResult {
    let (used_before, _) = crate::kern::heap::usage();
    {
        let big = vec![0x5au8; 4 << 20];
        ensure!(
            big.iter().all(|&b| b == 0x5a),
            "4 MiB block reads back wrong"
        );
        let (used, _) = crate::kern::heap::usage();
        ensure!(
            used >= used_before + (4 << 20),
            "usage did not grow: {used}"
        );
    }
    let (used_after, _) = crate::kern::heap::usage();
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
