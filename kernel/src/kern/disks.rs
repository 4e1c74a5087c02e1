//! Block devices on this machine: the virtio-blk driver wired to the kernel's DMA tag, clock
//! and interrupts.

use crate::arch::m68k::dma::{M68kPlatform, DMA};
use crate::arch::m68k::machine::{self, IrqMutex, MachineBus};
use crate::board::virt::irq::{self, Handled, HandlerId};
use crate::board::virt::virtio_probe;
use crate::kern::time;
use alloc::string::String;
use alloc::sync::Arc;
use core::ops::{Deref, DerefMut};
use drivers::blk::config::feature;
use drivers::blk::virtio_blk::{IrqShared, OpenOptions, VirtioBlk};
use drivers::blk::{BlkError, BlockDevice, CompletionMode, Waiter};
use drivers::virtio::mmio::DeviceInfo;

/// The kernel's clock and waits, for drivers.
pub struct KernelWaiter;

impl Waiter for KernelWaiter {
    fn now_ns(&self) -> u64 {
        time::now()
    }
    fn sleep_until(&self, cond: &mut dyn FnMut() -> bool, timeout_ns: u64) -> bool {
        time::wait_until(cond, timeout_ns).is_ok()
    }
    fn spin_until(&self, cond: &mut dyn FnMut() -> bool, timeout_ns: u64) -> bool {
        time::spin_until(cond, timeout_ns).is_ok()
    }
}

pub static WAITER: KernelWaiter = KernelWaiter;

pub type VirtioDisk = VirtioBlk<MachineBus, M68kPlatform>;

/// An open disk with its interrupt handler registered (removed on drop).
pub struct Disk {
    /// Always `Some` until drop, which resets the device before its handler goes.
    blk: Option<VirtioDisk>,
    handler: Option<HandlerId>,
    /// The slot's claim, released (after the device and handler) when the Disk drops.
    _claim: SlotClaim,
}

/// Slots with an open [`Disk`] or another [`SlotClaim`], one bit each (128 virtio slots):
/// the driver's obligation that nothing else drives a slot it opens, kept here rather than
/// left to callers.
static OPEN: IrqMutex<u128> = machine::irq_mutex(0);

/// Exclusive use of a virtio slot by code that drives it without a [`Disk`] (the self tests'
/// raw queue, the benchmark's floor); released on drop.
pub struct SlotClaim {
    slot: u32,
}

impl Drop for SlotClaim {
    fn drop(&mut self) {
        *OPEN.lock() &= !(1u128 << self.slot);
    }
}

/// Claims `slot` (0..128) for exclusive use. Errors: `NoDevice` outside 0..128, `InUse`
/// while a [`Disk`] or another claim holds it.
pub fn claim(slot: u32) -> Result<SlotClaim, BlkError> {
    if slot >= 128 {
        return Err(BlkError::NoDevice);
    }
    let mut open = OPEN.lock();
    if *open & (1u128 << slot) != 0 {
        return Err(BlkError::InUse);
    }
    *open |= 1u128 << slot;
    Ok(SlotClaim { slot })
}

impl Deref for Disk {
    type Target = VirtioDisk;
    fn deref(&self) -> &VirtioDisk {
        self.blk
            .as_ref()
            .expect("a disk holds its device until dropped")
    }
}

impl DerefMut for Disk {
    fn deref_mut(&mut self) -> &mut VirtioDisk {
        self.blk
            .as_mut()
            .expect("a disk holds its device until dropped")
    }
}

impl Drop for Disk {
    fn drop(&mut self) {
        // The device first (its drop resets it: no more completions, its interrupt status
        // cleared), then the line and the handler: an interrupt between the two would find
        // no handler, be counted unclaimed, and leave the line disabled.
        drop(self.blk.take());
        if let Some(id) = self.handler.take() {
            detach(id);
        }
    }
}

fn detach(id: HandlerId) {
    let _ = irq::disable(id.irq);
    irq::unregister(id);
}

/// Opens the virtio-blk device the boot probe found in virtio slot `slot` (0..128). Its
/// interrupt handler is registered on the slot's line (shared-line safe: "not mine" when its
/// InterruptStatus is clear) and the line enabled during the open, before the driver's first
/// request, whatever the mode: an interrupt-mode request never completes onto a line without
/// its handler, and the mode can be switched later.
///
/// Errors: `NoDevice` when the probe found no device in `slot` (or a refused one),
/// `InUse` while another [`Disk`] holds the slot; otherwise the driver's open errors.
pub fn open(slot: u32, mut opts: OpenOptions) -> Result<Disk, BlkError> {
    // The kernel's `vq_sync` option, unless the caller chose.
    opts.vq_sync = opts.vq_sync.or(Some(crate::kern::dma::vq_sync()));
    let info = *virtio_probe::devices()
        .find(|d| d.slot == slot)
        .ok_or(BlkError::NoDevice)?;
    open_claimed(info, opts, claim(slot)?)
}

/// [`open`] once `info.slot` is claimed.
fn open_claimed(info: DeviceInfo, opts: OpenOptions, claim: SlotClaim) -> Result<Disk, BlkError> {
    let mut handler = None;
    let attach = |shared: Arc<IrqShared<MachineBus>>| {
        let id = irq::register(info.irq, "virtio-blk", move || {
            if shared.handle() {
                Handled::Yes
            } else {
                Handled::NotMine
            }
        })
        .map_err(|_| BlkError::NoDevice)?;
        handler = Some(id);
        irq::enable(info.irq).map_err(|_| BlkError::NoDevice)
    };
    // SAFETY: `info` is a slot the boot probe found (its registers at the address the probe
    // read), and `claim` shows nothing else holds it, so the bus reaches only registers
    // this driver owns and nothing else drives the slot.
    let opened = unsafe { VirtioBlk::open(&DMA, MachineBus::new(), info, opts, &WAITER, attach) };
    match opened {
        Ok(blk) => Ok(Disk {
            blk: Some(blk),
            handler,
            _claim: claim,
        }),
        Err(e) => {
            // The device was reset or failed by the open; now its handler goes.
            if let Some(id) = handler {
                detach(id);
            }
            Err(e)
        }
    }
}

/// Feature names negotiated, for the banner.
pub fn feature_names(features: u64) -> String {
    let mut s = String::new();
    for (bit, name) in feature::SUPPORTED {
        if features & bit != 0 {
            if !s.is_empty() {
                s.push(' ');
            }
            s.push_str(name);
        }
    }
    s
}

/// Opens every block device briefly (GET_ID only: nothing is written) and prints it.
pub fn print_banner() {
    for info in crate::board::virt::virtio_probe::devices().filter(|d| d.device_id == 2) {
        let opts = OpenOptions {
            mode: CompletionMode::Polled,
            ..OpenOptions::default()
        };
        match open(info.slot, opts) {
            Ok(d) => {
                // A device without GET_ID support still serves its sectors.
                let serial = if d.has_serial() {
                    alloc::format!("serial \"{}\"", String::from_utf8_lossy(d.serial()))
                } else {
                    String::from("no serial")
                };
                crate::println!(
                    "disk slot {} irq {}: {} sectors ({}){}, {}-byte blocks, {serial}, queue depth {}, {} KiB per request, modes interrupt+polled",
                    info.slot,
                    info.irq,
                    d.capacity(),
                    crate::kern::units::Bytes(d.capacity().saturating_mul(512)),
                    if d.read_only() { ", read-only" } else { "" },
                    d.block_size(),
                    d.queue_depth(),
                    d.max_transfer() / 1024
                );
                crate::println!("  features: {}", feature_names(d.features()));
            }
            Err(e) => crate::println!("disk slot {} irq {}: cannot open: {e}", info.slot, info.irq),
        }
    }
}
