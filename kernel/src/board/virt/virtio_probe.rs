//! virtio-mmio devices on the virt board: all 128 slots probed at boot, the findings kept for
//! drivers and printed in the banner.

use crate::arch::m68k::machine::MachineBus;
use alloc::string::String;
use alloc::vec::Vec;
use drivers::virtio::mmio::{self, DeviceInfo, SLOTS, SLOT_SIZE};

/// What one occupied (or unreadable) slot holds.
#[derive(Debug, Clone)]
pub enum Slot {
    Device(DeviceInfo),
    /// Present but unusable (bad magic, legacy transport), with why.
    Refused {
        slot: u32,
        base: u32,
        why: String,
    },
}

static FOUND: spin::Once<Vec<Slot>> = spin::Once::new();

pub fn device_name(id: u32) -> &'static str {
    match id {
        1 => "network card",
        2 => "block device",
        3 => "console",
        4 => "entropy source",
        5 => "memory balloon",
        8 => "SCSI host",
        9 => "9p transport",
        16 => "GPU",
        18 => "input",
        19 => "socket",
        _ => "device",
    }
}

/// Probes every slot from `base` (slot i at base + i * SLOT_SIZE, irq `irq0` + i), once: later
/// calls return the first answer and read no register.
///
/// # Safety
///
/// `base` must be the virtio-mmio window bootinfo reports (`SLOTS` slots of `SLOT_SIZE`
/// bytes): the probe reads each slot's identification registers.
pub unsafe fn probe_all(base: u32, irq0: u32) -> &'static [Slot] {
    FOUND.call_once(|| {
        let mut found = Vec::new();
        // SAFETY: `base` is the virtio window (this function's contract); the probe reads
        // only each slot's identification registers, before any driver owns one.
        let bus = unsafe { MachineBus::new() };
        for slot in 0..SLOTS {
            let b = base + slot * SLOT_SIZE;
            match mmio::probe(&bus, b, irq0 + slot, slot) {
                Ok(None) => {}
                Ok(Some(info)) if info.version != 2 => found.push(Slot::Refused {
                    slot,
                    base: b,
                    why: alloc::format!(
                        "virtio-mmio version {} (legacy): only version 2 is supported",
                        info.version
                    ),
                }),
                Ok(Some(info)) => found.push(Slot::Device(info)),
                Err(e) => found.push(Slot::Refused {
                    slot,
                    base: b,
                    why: alloc::format!("{e}"),
                }),
            }
        }
        found
    })
}

/// The usable devices found at boot.
pub fn devices() -> impl Iterator<Item = &'static DeviceInfo> {
    FOUND
        .get()
        .map_or(&[][..], |v| &v[..])
        .iter()
        .filter_map(|s| match s {
            Slot::Device(d) => Some(d),
            Slot::Refused { .. } => None,
        })
}

/// The slots the boot probe found nothing in (no device, not even a refused one).
pub fn empty_slots() -> impl DoubleEndedIterator<Item = u32> {
    let found = FOUND.get().map_or(&[][..], |v| &v[..]);
    (0..SLOTS).filter(move |&slot| {
        !found.iter().any(|s| match s {
            Slot::Device(d) => d.slot == slot,
            Slot::Refused { slot: r, .. } => *r == slot,
        })
    })
}

/// Every slot the probe found a device in or refused, in slot order.
pub fn found() -> &'static [Slot] {
    FOUND.get().map_or(&[][..], |v| &v[..])
}
