//! The kernel options of bus_dma, applied to the system's DMA tag at boot.
//!
//! `dma_audit=on` turns the auditor on for the whole run (the self tests turn it on for their
//! own DMA work anyway), `dma_model=030|040` routes DMA memory accesses through the
//! stale-cache model, `dma_postread=invalidate` makes the model's POSTREAD invalidate, and
//! `dma_bug=drop-preread` breaks the driver paths that honour it (to show the auditor at work),
//! and `vq_sync=netbsd-2024` gives the disks' virtqueues NetBSD's pre-fix used-ring syncs.
#![forbid(unsafe_code)]

use crate::arch::m68k::dma::DMA;
use core::sync::atomic::{AtomicBool, Ordering};
use drivers::virtio::queue::UsedSync;

static DROP_PREREAD: AtomicBool = AtomicBool::new(false);
static VQ_SYNC_NETBSD: AtomicBool = AtomicBool::new(false);

/// The used-ring sync sequencing `vq_sync=` chose (for disks opened without their own).
pub fn vq_sync() -> UsedSync {
    if VQ_SYNC_NETBSD.load(Ordering::Relaxed) {
        UsedSync::NetBsd2024
    } else {
        UsedSync::Corrected
    }
}

/// Whether `dma_bug=drop-preread` asks driver paths to leave out their per-phase PREREAD.
pub fn bug_drop_preread() -> bool {
    DROP_PREREAD.load(Ordering::Relaxed)
}

/// Prints each audit finding as it is made.
pub fn print_report(r: &drivers::dma::audit::Report) {
    crate::println!("{r}");
}

/// Applies the kernel options (at boot).
pub fn configure(opts: &crate::kern::cmdline::Options) {
    DROP_PREREAD.store(opts.dma_bug_drop_preread, Ordering::Relaxed);
    VQ_SYNC_NETBSD.store(opts.vq_sync == UsedSync::NetBsd2024, Ordering::Relaxed);
    drivers::dma::mutant::select(opts.dma_mutant);
    if let Some(site) = drivers::dma::mutant::selected() {
        crate::println!("dma: sync site {site} left out (dma_mutant)");
    }
    if opts.dma_audit {
        DMA.set_audit(true, Some(print_report));
    }
    if let Some(cpu) = opts.dma_model {
        DMA.set_model(Some(cpu), opts.dma_postread);
    }
}
