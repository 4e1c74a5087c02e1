//! In-guest tests of bus_dma: the answer to the seed question as a matrix, and the driver
//! path the auditor must find clean (and must catch when `dma_bug=drop-preread` breaks it).
//!
//! The "device" writes DMA memory directly, past the CPU and the cache model, as a DMA engine
//! would, at events the test controls (after the driver's first poll; after the submit's read
//! phase), never on a host timer: what each cell shows then depends only on the order of
//! the driver's and the device's accesses, not on how fast the host runs QEMU. Under the
//! stale-cache model QEMU behaves like incoherent hardware.

use crate::arch::m68k::dma::{M68kPlatform, DMA};
use crate::arch::m68k::dma_sync::CpuCache;
use crate::arch::m68k::ipl::IplGuard;
use crate::arch::m68k::machine;
use crate::kern::dma as kern_dma;
use crate::kern::time::{self, MILLIS};
use crate::selftest::harness::{Failure, Test, TestResult};
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt::Write;
use drivers::dma::audit::Violation;
use drivers::dma::{CacheKind, Direction, DmaRegion, Platform, PostRead, SyncOps};

pub fn tests() -> Vec<Test> {
    vec![
        Test::new("dma::seed_matrix", seed_matrix),
        Test::new(
            "dma::driver_poll_path_is_audit_clean",
            driver_poll_path_is_audit_clean,
        ),
        Test::new(
            "dma::typestate_buffer_round_trip",
            typestate_buffer_round_trip,
        ),
        Test::new("dma::bad_syncs_are_errors", bad_syncs_are_errors),
        Test::new("dma::cache_instructions_probe", cache_instructions_probe),
    ]
}

/// Syncs of known shapes, each a known number of times, with the auditor and the model off
/// (the platform's fast path, what a request runs, and the planner's). QEMU runs CINV/CPUSH
/// as no-ops, so in the guest this test checks only that the syncs succeed; `cargo xtask
/// test` boots it alone under the profile plugin and counts how often each of boot/cpu.S's
/// `dcop_table` entries ran between the profile markers, which enclose exactly the syncs,
/// with interrupts masked (nothing else runs there, however loaded the host).
fn cache_instructions_probe() -> TestResult {
    let region = DMA
        .alloc("test/cache probe", 3 * 4096, Direction::FromDevice, false)
        .map_err(err)?;
    // DMA allocations are page-aligned: [0, 4096) is one whole page, 4096 a line's start.
    ensure_eq!(region.phys() % 4096, 0);
    let opts = crate::kern::boot::options();
    DMA.set_audit(false, None);
    DMA.set_model(None, PostRead::NoOp);
    let shapes: [(SyncOps, u32, u32, u32); 10] = [
        // PREWRITE of one whole line: CPUSHL.
        (SyncOps::PREWRITE, 4096, 16, 1009),
        // PREREAD of one whole line: CINVL.
        (SyncOps::PREREAD, 4096 + 64, 16, 2003),
        // PREREAD of a whole page: CINVP.
        (SyncOps::PREREAD, 0, 4096, 307),
        // PREWRITE of a whole page: CPUSHP.
        (SyncOps::PREWRITE, 0, 4096, 401),
        // PREREAD of [8, 48) in a line-aligned block: the partial first line pushed
        // (CPUSHL), the two whole lines after it discarded (CINVL).
        (SyncOps::PREREAD, 4096 + 256 + 8, 40, 101),
        // PREREAD of [0, 40) in a line-aligned block: two whole lines discarded (CINVL),
        // the partial last line pushed (CPUSHL).
        (SyncOps::PREREAD, 4096 + 768, 40, 83),
        // PREWRITE of four whole lines: four CPUSHL (the few-lines shape).
        (SyncOps::PREWRITE, 4096 + 512, 64, 97),
        // PREREAD|PREWRITE of one whole line: CPUSHL (a push also invalidates).
        (SyncOps::PRE, 4096 + 1024, 16, 89),
        // Two whole pages, past the fast path's shapes (the planner's steps, run one by
        // one): PREWRITE two CPUSHP, PREREAD two CINVP.
        (SyncOps::PREWRITE, 0, 8192, 53),
        (SyncOps::PREREAD, 0, 8192, 61),
    ];
    let mut r = Ok(());
    {
        // Only the syncs inside the window: no handler runs in it, whatever the host does.
        let _masked = IplGuard::raise(&machine::MachineIpl, 7);
        machine::profile_mark_cell_begin();
        'all: for (ops, off, len, times) in shapes {
            for _ in 0..times {
                if let Err(e) = region.sync(ops, off, len) {
                    r = Err(err(format!("{ops:?} at {off}+{len}: {e}")));
                    break 'all;
                }
            }
        }
        machine::profile_mark_cell_end();
    }
    if opts.dma_audit {
        DMA.set_audit(true, Some(kern_dma::print_report));
    }
    DMA.set_model(opts.dma_model, opts.dma_postread);
    r
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Sequencing {
    /// NetBSD 2024: a POSTREAD before each read, no PREREAD between read phases.
    Naive,
    /// A PREREAD before each new read phase.
    Corrected,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Outcome {
    Correct,
    /// Never saw the device's write within the timeout.
    Stale,
    /// Saw completion but not the data written before it.
    Torn,
}

impl Outcome {
    fn name(self) -> &'static str {
        match self {
            Outcome::Correct => "correct",
            Outcome::Stale => "STALE",
            Outcome::Torn => "TORN",
        }
    }
}

/// How long a driver keeps looking before declaring the completion lost.
const GIVE_UP: u64 = 50 * MILLIS;

fn err(e: impl core::fmt::Display) -> Failure {
    Failure::Failed(format!("{e}"))
}

/// A device write: straight to memory, as DMA does (never through the cache model).
///
/// # Safety
///
/// `[addr, addr + bytes.len())` must lie in a live DMA region or buffer that the test, playing
/// the device, owns for writing (the CPU does not hold a reference into it meanwhile).
unsafe fn device_write(addr: usize, bytes: &[u8]) {
    for (i, &b) in bytes.iter().enumerate() {
        // SAFETY: inside the range the caller vouches for.
        unsafe { core::ptr::write_volatile((addr + i) as *mut u8, b) };
    }
}

/// One turn of a driver's polling loop on a ready word at offset 2. The corrected driver
/// re-arms with PREREAD before the next read phase (unless dma_bug=drop-preread).
fn driver_poll_once(region: &DmaRegion<M68kPlatform>, seq: Sequencing) -> bool {
    region
        .sync(SyncOps::POSTREAD, 0, 4)
        .expect("inside the region");
    let ready = region.read_u16_le(2) == 1;
    if !ready && seq == Sequencing::Corrected && !kern_dma::bug_drop_preread() {
        region
            .sync(SyncOps::PREREAD, 0, 4)
            .expect("inside the region");
    }
    ready
}

/// PREREAD; poll until ready. The device sets the ready word right after the driver's first
/// poll (which has read the line, and so holds it in a cache): every later poll must see it.
fn polling_loop(seq: Sequencing) -> Result<Outcome, Failure> {
    let region = DMA
        .alloc("seed/poll", 64, Direction::FromDevice, false)
        .map_err(err)?;
    // The allocation's zeroes are CPU writes: pushed, then the lines are the device's.
    region
        .sync(SyncOps::PREREAD | SyncOps::PREWRITE, 0, 64)
        .map_err(err)?;
    let addr = region.raw_pointer() as usize;
    let mut polls = 0u32;
    // spin_until checks once more after its deadline, so the poll after the device's write
    // always happens, however long the host stalls the guest.
    let r = time::spin_until(
        || {
            let ready = driver_poll_once(&region, seq);
            polls += 1;
            if polls == 1 {
                // SAFETY: bytes 2..4 of the 64-byte region, which the device owns (PREREAD).
                unsafe { device_write(addr + 2, &1u16.to_le_bytes()) };
            }
            ready
        },
        GIVE_UP,
    );
    ensure!(
        polls > 1,
        "the ready word read as set before the device wrote it"
    );
    Ok(if r.is_ok() {
        Outcome::Correct
    } else {
        Outcome::Stale
    })
}

/// The used ring's two read phases: `flags` at submit, `idx` (and the element) at completion.
/// Between them the device writes the element (step 1), then idx (step 2), in that order.
fn submit_then_complete(seq: Sequencing) -> Result<Outcome, Failure> {
    let region = DMA
        .alloc("seed/used", 64, Direction::FromDevice, false)
        .map_err(err)?;
    // Ring set up (its zeroes pushed): the device owns it.
    region
        .sync(SyncOps::PREREAD | SyncOps::PREWRITE, 0, 64)
        .map_err(err)?;
    // Submit: may we skip the notification? Read used->flags.
    region.sync(SyncOps::POSTREAD, 0, 4).map_err(err)?;
    let _flags = region.read_u16_le(0);
    if seq == Sequencing::Corrected && !kern_dma::bug_drop_preread() {
        region.sync(SyncOps::PREREAD, 0, 4).map_err(err)?;
    }
    // The device runs the request: element, then idx (then it would interrupt).
    let addr = region.raw_pointer() as usize;
    // SAFETY: bytes 2..8 of the 64-byte region, which the device owns (PREREAD above).
    unsafe {
        device_write(addr + 4, &7u32.to_le_bytes());
        device_write(addr + 2, &1u16.to_le_bytes());
    }
    // Completion: POSTREAD, read idx; on a hit read the element (same cache line).
    let mut element = None;
    let r = time::spin_until(
        || {
            region
                .sync(SyncOps::POSTREAD, 0, 8)
                .expect("inside the region");
            if region.read_u16_le(2) == 1 {
                element = Some(region.read_u32_le(4));
                return true;
            }
            if seq == Sequencing::Corrected && !kern_dma::bug_drop_preread() {
                region
                    .sync(SyncOps::PREREAD, 0, 8)
                    .expect("inside the region");
            }
            false
        },
        GIVE_UP,
    );
    Ok(match (r, element) {
        (Ok(()), Some(7)) => Outcome::Correct,
        (Ok(()), _) => Outcome::Torn,
        (Err(_), _) => Outcome::Stale,
    })
}

/// Sets the tag up for one experiment and puts the boot configuration back afterwards.
pub(crate) fn with_dma(
    model: Option<CpuCache>,
    postread: PostRead,
    sink: bool,
    f: impl FnOnce() -> TestResult,
) -> TestResult {
    DMA.set_audit(false, None);
    DMA.set_audit(
        true,
        if sink {
            Some(kern_dma::print_report)
        } else {
            None
        },
    );
    DMA.set_model(model, postread);
    let r = f();
    let opts = crate::kern::boot::options();
    DMA.set_audit(false, None);
    if opts.dma_audit {
        DMA.set_audit(true, Some(kern_dma::print_report));
    }
    DMA.set_model(opts.dma_model, opts.dma_postread);
    r
}

fn rereads_flagged() -> bool {
    DMA.with_auditor(|a| {
        a.is_some_and(|a| {
            a.reports()
                .iter()
                .any(|r| r.violation == Violation::RereadWithoutPreRead)
        })
    })
}

fn model_name(m: Option<CpuCache>) -> &'static str {
    m.map_or("coherent", |c| c.name())
}

fn seed_matrix() -> TestResult {
    let mut table = String::new();
    let _ = writeln!(
        table,
        "dma sync matrix (device writes in two steps; STALE = completion not seen within {} ms)",
        GIVE_UP / MILLIS
    );
    let _ = writeln!(
        table,
        "  {:<10} {:<10} {:<20} {:<13} {:<16} auditor",
        "sequencing", "POSTREAD", "cache model", "polling loop", "submit+complete"
    );
    let mut wrong = Vec::new();
    for seq in [Sequencing::Naive, Sequencing::Corrected] {
        for postread in [PostRead::NoOp, PostRead::Invalidate] {
            for model in [Some(CpuCache::M68030), Some(CpuCache::M68040), None] {
                let mut cell = None;
                with_dma(model, postread, false, || {
                    let poll = polling_loop(seq)?;
                    let two = submit_then_complete(seq)?;
                    cell = Some((poll, two, rereads_flagged()));
                    Ok(())
                })?;
                let (poll, two, flagged) = cell.expect("set by the experiment");
                let expect =
                    if seq == Sequencing::Naive && postread == PostRead::NoOp && model.is_some() {
                        Outcome::Stale
                    } else {
                        Outcome::Correct
                    };
                let expect_flagged = seq == Sequencing::Naive;
                let _ = writeln!(
                    table,
                    "  {:<10} {:<10} {:<20} {:<13} {:<16} {}",
                    if seq == Sequencing::Naive {
                        "naive"
                    } else {
                        "corrected"
                    },
                    if postread == PostRead::NoOp {
                        "no-op"
                    } else {
                        "invalidate"
                    },
                    model_name(model),
                    poll.name(),
                    two.name(),
                    if flagged { "flagged" } else { "clean" }
                );
                if poll != expect || two != expect || flagged != expect_flagged {
                    wrong.push(format!(
                        "{seq:?}/{postread:?}/{}: got {}/{}/{}, expected {}/{}/{}",
                        model_name(model),
                        poll.name(),
                        two.name(),
                        flagged,
                        expect.name(),
                        expect.name(),
                        expect_flagged
                    ));
                }
            }
        }
    }
    crate::selftest::harness::defer_report(table);
    ensure!(
        wrong.is_empty(),
        "cells differ from docs/dma-sync.md: {}",
        wrong.join("; ")
    );
    Ok(())
}

/// The corrected driver path under the 68030 model, the auditor printing what it finds: no
/// finding, no stale read. With dma_bug=drop-preread the auditor names the map and offset.
fn driver_poll_path_is_audit_clean() -> TestResult {
    with_dma(Some(CpuCache::M68030), PostRead::NoOp, true, || {
        let outcome = polling_loop(Sequencing::Corrected)?;
        let findings = DMA.with_auditor(|a| a.map_or(0, |a| a.total()));
        ensure!(
            findings == 0,
            "the auditor reported {findings} violation(s) on the driver path (printed above)"
        );
        ensure_eq!(outcome, Outcome::Correct);
        Ok(())
    })
}

fn typestate_buffer_round_trip() -> TestResult {
    with_dma(Some(CpuCache::M68040), PostRead::NoOp, true, || {
        let limits = drivers::dma::Limits {
            max_segments: 4,
            max_segment_size: 4096,
            boundary: 4096,
        };
        let mut buf = DMA.buffer("test/buffer", 8192).map_err(err)?;
        buf.as_mut_slice().fill(0x11);
        // The device reads it...
        let out = buf
            .give_to_device(Direction::ToDevice, 8192, &limits)
            .map_err(|(_, e)| err(e))?;
        ensure_eq!(out.segments().len(), 2);
        // SAFETY: no device was given the segments; the test plays the device itself.
        let buf = unsafe { out.take_back() };
        // ...then writes it.
        let inflight = buf
            .give_to_device(Direction::FromDevice, 8192, &limits)
            .map_err(|(_, e)| err(e))?;
        let seg = inflight.segments()[0];
        let ptr = DMA.platform().pointer(seg.addr);
        // SAFETY: the first 64 bytes of the buffer's first segment (at least 4096 bytes),
        // given to the device for writing just above.
        unsafe { device_write(ptr as usize, &[0x22; 64]) };
        // SAFETY: the test is the device here, and its write above is done.
        let buf = unsafe { inflight.take_back() };
        ensure!(
            buf.as_slice()[..64].iter().all(|&b| b == 0x22),
            "device data not seen"
        );
        ensure!(
            buf.as_slice()[64..].iter().all(|&b| b == 0x11),
            "untouched data changed"
        );
        let too_many = drivers::dma::Limits {
            max_segments: 1,
            ..limits
        };
        ensure!(
            buf.give_to_device(Direction::ToDevice, 8192, &too_many)
                .is_err(),
            "limits not enforced"
        );
        Ok(())
    })
}

fn bad_syncs_are_errors() -> TestResult {
    with_dma(None, PostRead::NoOp, false, || {
        let region = DMA
            .alloc("test/bad", 32, Direction::FromDevice, false)
            .map_err(err)?;
        let mixed = region.sync(SyncOps::PREREAD | SyncOps::POSTREAD, 0, 4);
        ensure_eq!(mixed, Err(drivers::dma::DmaError::PreMixedWithPost));
        let outside = region.sync(SyncOps::PREREAD, 16, 32);
        ensure!(
            matches!(outside, Err(drivers::dma::DmaError::OutsideRegion { .. })),
            "{:?}",
            outside
        );
        let kinds: Vec<Violation> = DMA.with_auditor(|a| {
            a.map_or(Vec::new(), |a| {
                a.reports().iter().map(|r| r.violation).collect()
            })
        });
        ensure_eq!(
            kinds,
            vec![Violation::PreMixedWithPost, Violation::SyncOutsideRegion]
        );
        Ok(())
    })
}
