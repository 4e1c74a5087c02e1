//! Host tests of [`VirtioBlk`] against the simulated device in [`super::sim`], with the
//! bus_dma auditor on and a copyback cache model in the driver's path: every config a
//! conformant device may present, and every error path the driver has.

use super::config::feature as f;
use super::request::{
    VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_UNSUPP, VIRTIO_BLK_T_DISCARD, VIRTIO_BLK_T_FLUSH,
    VIRTIO_BLK_T_GET_ID, VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT, VIRTIO_BLK_T_WRITE_ZEROES,
};
use super::sim::{self, BlkSim, GetId, Knobs, Seen, BASE};
use super::virtio_blk::{IrqShared, Op, OpenOptions, VirtioBlk};
use super::{BlkError, BlockDevice, CompletionMode, Waiter};
use crate::bus::Bus;
use crate::dma::sim::SimCache;
use crate::dma::sim::{tag, SimPlatform};
use crate::dma::{DmaTag, PostRead};
use crate::virtio::mmio::{self, TransportError};
use crate::virtio::queue::DeviceFault;
use alloc::sync::Arc;
use core::cell::RefCell;
use core::sync::atomic::{AtomicU64, Ordering};
use std::vec;
use std::vec::Vec;

type Disk = VirtioBlk<&'static BlkSim, SimPlatform>;

std::thread_local! {
    /// The disk's interrupt line: the handler `attach` registered.
    static IRQ: RefCell<Option<Arc<IrqShared<&'static BlkSim>>>> = const { RefCell::new(None) };
    /// The device, for a clock turn to let it work (a deferring device completes then).
    static DEVICE: RefCell<Option<&'static BlkSim>> = const { RefCell::new(None) };
}

/// A clock that moves only when the driver waits (1 ms a turn, whether or not the turn ends
/// the wait: a line that keeps interrupting must not stop time): timeouts do not depend on
/// the host's speed. A sleep delivers the device's interrupt, as the line would.
#[derive(Default)]
struct Clock {
    now: AtomicU64,
}

impl Clock {
    fn turns(&self, cond: &mut dyn FnMut() -> bool, timeout_ns: u64, irq: bool) -> bool {
        let start = self.now_ns();
        loop {
            DEVICE.with(|d| {
                if let Some(d) = *d.borrow() {
                    d.serve();
                }
            });
            if irq {
                IRQ.with(|h| {
                    if let Some(h) = h.borrow().as_ref() {
                        h.handle();
                    }
                });
            }
            if cond() {
                self.now.fetch_add(1_000_000, Ordering::Relaxed);
                return true;
            }
            if self.now_ns() - start >= timeout_ns {
                return false;
            }
            self.now.fetch_add(1_000_000, Ordering::Relaxed);
        }
    }
}

impl Waiter for Clock {
    fn now_ns(&self) -> u64 {
        self.now.load(Ordering::Relaxed)
    }
    fn sleep_until(&self, cond: &mut dyn FnMut() -> bool, timeout_ns: u64) -> bool {
        self.turns(cond, timeout_ns, true)
    }
    fn spin_until(&self, cond: &mut dyn FnMut() -> bool, timeout_ns: u64) -> bool {
        self.turns(cond, timeout_ns, false)
    }
}

fn opts(mode: CompletionMode) -> OpenOptions {
    OpenOptions {
        mode,
        queue_depth: 4,
        max_transfer: 4096,
        timeout_ns: 50_000_000,
        ..OpenOptions::default()
    }
}

struct Rig {
    tag: &'static DmaTag<SimPlatform>,
    sim: &'static BlkSim,
}

impl Rig {
    fn new(knobs: Knobs) -> Rig {
        let tag = tag();
        tag.set_audit(true, None);
        tag.set_model(Some(SimCache::Copyback), PostRead::NoOp);
        let sim = BlkSim::new(tag, knobs);
        DEVICE.with(|d| *d.borrow_mut() = Some(sim));
        Rig { tag, sim }
    }
    fn open(&self, o: OpenOptions) -> Result<Disk, BlkError> {
        let info = mmio::probe(&self.sim, BASE, 40, 0)
            .expect("magic")
            .expect("a device");
        let clock: &'static Clock = std::boxed::Box::leak(std::boxed::Box::default());
        // SAFETY: the simulated slot is this rig's alone.
        unsafe {
            VirtioBlk::open(self.tag, self.sim, info, o, clock, |irq| {
                IRQ.with(|h| *h.borrow_mut() = Some(irq));
                Ok(())
            })
        }
    }
    /// Nothing the driver did broke the protocol or the bus_dma rules.
    fn assert_clean(&self) {
        let faults = self.sim.faults.borrow().clone();
        assert!(faults.is_empty(), "device saw: {faults:#?}");
        let reports = self.tag.audit_findings();
        assert!(reports.is_empty(), "auditor: {reports:#?}");
    }
    fn seen(&self, kind: u32) -> Vec<Seen> {
        self.sim
            .seen
            .borrow()
            .iter()
            .filter(|s| s.kind == kind)
            .cloned()
            .collect()
    }
}

fn pattern(i: usize) -> u8 {
    (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[i % 4] ^ (i / 512) as u8
}

/// Writes sectors 3..11 (two requests of 4 KiB), reads them back, and a neighbour.
fn round_trip(d: &mut Disk, sim: &BlkSim) {
    let data: Vec<u8> = (0..8 * 512).map(pattern).collect();
    d.write(3, &data).unwrap();
    assert_eq!(
        &sim.disk()[3 * 512..11 * 512],
        &data[..],
        "the device got it"
    );
    let mut back = vec![0u8; data.len()];
    d.read(3, &mut back).unwrap();
    assert_eq!(back, data);
    d.flush().unwrap();
}

const COMMON: u64 = f::FLUSH | f::EVENT_IDX | f::INDIRECT_DESC;

#[test]
fn every_mode_and_ring_option_round_trips() {
    for mode in [CompletionMode::Polled, CompletionMode::Interrupt] {
        for (event_idx, indirect) in [(false, false), (true, false), (false, true), (true, true)] {
            let r = Rig::new(Knobs::disk(COMMON | f::SEG_MAX).set32(12, 4).clone());
            let mut o = opts(mode);
            (o.event_idx, o.indirect) = (event_idx, indirect);
            o.max_transfer = 2048;
            let mut d = r.open(o).unwrap();
            assert!(d.has_serial());
            assert_eq!(d.serial(), b"sim-disk");
            round_trip(&mut d, r.sim);
            let reads = r.seen(VIRTIO_BLK_T_IN);
            assert_eq!(reads.len(), 2, "4 KiB in requests of max_transfer 2 KiB");
            assert!(reads.iter().all(|s| s.indirect == indirect));
            assert_eq!(d.stats().errors, 0);
            r.assert_clean();
        }
    }
}

#[test]
fn get_id_unsupported_costs_the_serial_only() {
    for status in [VIRTIO_BLK_S_UNSUPP, VIRTIO_BLK_S_IOERR] {
        let mut k = Knobs::disk(COMMON);
        k.get_id = GetId::Status(status);
        let r = Rig::new(k);
        let mut d = r
            .open(opts(CompletionMode::Polled))
            .expect("the disk opens");
        assert!(!d.has_serial());
        assert_eq!(d.serial(), b"");
        round_trip(&mut d, r.sim);
        r.assert_clean();
    }
}

#[test]
fn get_id_ioerr_on_a_read_only_disk_opens_read_only() {
    let mut k = Knobs::disk(COMMON | f::RO | f::WRITE_ZEROES);
    k.get_id = GetId::Status(VIRTIO_BLK_S_IOERR);
    let r = Rig::new(k);
    let mut d = r.open(opts(CompletionMode::Interrupt)).expect("opens");
    assert!(d.read_only() && !d.has_serial());
    let mut buf = [0u8; 512];
    d.read(0, &mut buf).unwrap();
    assert_eq!(d.write(0, &buf), Err(BlkError::ReadOnly));
    assert_eq!(d.write_zeroes(0, 1), Err(BlkError::ReadOnly));
    r.assert_clean();
}

#[test]
fn get_id_that_never_completes_fails_the_open_with_a_timeout() {
    let mut k = Knobs::disk(COMMON);
    k.get_id = GetId::Hang;
    let r = Rig::new(k);
    assert_eq!(
        r.open(opts(CompletionMode::Polled)).err(),
        Some(BlkError::Timeout { waited_us: 50_000 })
    );
}

#[test]
fn seg_max_zero_is_read_as_one() {
    let r = Rig::new(Knobs::disk(COMMON | f::SEG_MAX).set32(12, 0).clone());
    let mut d = r.open(opts(CompletionMode::Polled)).expect("opens");
    assert_eq!(d.config().seg_max, Some(1));
    round_trip(&mut d, r.sim);
    assert!(r.seen(VIRTIO_BLK_T_IN).iter().all(|s| s.indirect));
    r.assert_clean();
}

#[test]
fn zero_discard_and_write_zeroes_limits_mean_no_limit() {
    let mut k = Knobs::disk(COMMON | f::DISCARD | f::WRITE_ZEROES);
    k.set32(36, 0).set32(48, 0);
    let r = Rig::new(k);
    r.sim.fill_disk(|_| 0x55);
    let mut d = r.open(opts(CompletionMode::Polled)).expect("opens");
    d.write_zeroes(4, 40).unwrap();
    d.discard(50, 10).unwrap();
    assert_eq!(r.seen(VIRTIO_BLK_T_WRITE_ZEROES).len(), 1, "one request");
    assert_eq!(r.seen(VIRTIO_BLK_T_DISCARD).len(), 1, "one request");
    let disk = r.sim.disk();
    assert!(disk[4 * 512..44 * 512].iter().all(|&b| b == 0));
    assert_eq!((disk[4 * 512 - 1], disk[44 * 512]), (0x55, 0x55));
    r.assert_clean();
}

/// QEMU's `max-write-zeroes-sectors=2 max-discard-sectors=1`: the blk::discard case.
#[test]
fn discard_and_write_zeroes_are_split_to_the_device_limits() {
    let mut k = Knobs::disk(COMMON | f::DISCARD | f::WRITE_ZEROES);
    k.set32(36, 1).set32(48, 2);
    let r = Rig::new(k);
    r.sim.fill_disk(|_| 0x55);
    let mut d = r.open(opts(CompletionMode::Interrupt)).expect("opens");
    d.write_zeroes(30, 5).unwrap();
    let wz: Vec<(u64, u64)> = r
        .seen(VIRTIO_BLK_T_WRITE_ZEROES)
        .iter()
        .map(|s| (s.sector, s.size))
        .collect();
    assert_eq!(wz, [(30, 2), (32, 2), (34, 1)]);
    d.discard(40, 2).unwrap();
    assert_eq!(r.seen(VIRTIO_BLK_T_DISCARD).len(), 2);
    let disk = r.sim.disk();
    assert!(disk[30 * 512..35 * 512].iter().all(|&b| b == 0));
    assert_eq!(disk[35 * 512], 0x55);
    // The whole range is checked against the disk before anything is sent.
    assert_eq!(
        d.write_zeroes(60, 5),
        Err(BlkError::OutOfRange {
            sector: 60,
            sectors: 5,
            capacity: 64
        })
    );
    assert_eq!(r.seen(VIRTIO_BLK_T_WRITE_ZEROES).len(), 3);
    // One request over the limit is refused before the device, naming the limit.
    assert_eq!(
        d.submit(Op::WriteZeroes, 0, 3 * 512, 1, |_| {}),
        Err(BlkError::TooLarge {
            limit: "max_write_zeroes_sectors",
            max: 2,
            asked: 3
        })
    );
    assert_eq!(
        d.submit(Op::Read, 0, 8192, 1, |_| {}),
        Err(BlkError::TooLarge {
            limit: "max_transfer (bytes)",
            max: 4096,
            asked: 8192
        })
    );
    d.read(0, &mut [0u8; 512]).unwrap();
    r.assert_clean();
}

#[test]
fn discard_and_write_zeroes_not_offered_are_unsupported() {
    let r = Rig::new(Knobs::disk(COMMON));
    let mut d = r.open(opts(CompletionMode::Polled)).unwrap();
    assert_eq!(d.discard(0, 1), Err(BlkError::Unsupported));
    assert_eq!(d.write_zeroes(0, 1), Err(BlkError::Unsupported));
    assert!(r
        .sim
        .seen
        .borrow()
        .iter()
        .all(|s| s.kind == VIRTIO_BLK_T_GET_ID));
}

#[test]
fn a_short_used_len_fails_that_read_only() {
    let r = Rig::new(Knobs::disk(COMMON));
    let mut d = r.open(opts(CompletionMode::Polled)).unwrap();
    r.sim.knobs(|k| k.understate = 1);
    let mut buf = [0u8; 1024];
    assert_eq!(
        d.read(0, &mut buf),
        Err(BlkError::ShortTransfer {
            expected: 1024,
            got: 1023
        })
    );
    // Writes and flushes write the status byte only: their len says nothing more.
    r.sim.knobs(|k| k.understate = 1);
    d.write(0, &buf).unwrap();
    d.flush().unwrap();
    r.sim.knobs(|k| k.understate = 0);
    d.read(0, &mut buf).unwrap();
    r.assert_clean();
}

#[test]
fn a_short_get_id_keeps_the_bytes_reported() {
    let mut k = Knobs::disk(COMMON);
    k.understate = 18; // 20 bytes + status written, 3 reported: "si" and the status.
    let r = Rig::new(k);
    let d = r.open(opts(CompletionMode::Polled)).expect("opens");
    assert!(d.has_serial());
    assert_eq!(d.serial(), b"si");
}

#[test]
fn device_errors_fail_the_request_and_the_disk_stays_usable() {
    let r = Rig::new(Knobs::disk(COMMON));
    let mut d = r.open(opts(CompletionMode::Interrupt)).unwrap();
    let mut buf = [0u8; 512];
    r.sim
        .knobs(|k| k.force_status = Some((VIRTIO_BLK_T_IN, VIRTIO_BLK_S_IOERR)));
    assert_eq!(d.read(7, &mut buf), Err(BlkError::Io { sector: 7 }));
    r.sim
        .knobs(|k| k.force_status = Some((VIRTIO_BLK_T_FLUSH, VIRTIO_BLK_S_UNSUPP)));
    assert_eq!(d.flush(), Err(BlkError::Unsupported));
    r.sim
        .knobs(|k| k.force_status = Some((VIRTIO_BLK_T_OUT, 9)));
    assert_eq!(d.write(0, &buf), Err(BlkError::BadStatus { status: 9 }));
    r.sim.knobs(|k| {
        k.force_status = None;
        k.skip_status = true;
    });
    assert_eq!(
        d.read(0, &mut buf),
        Err(BlkError::BadStatus { status: 0xff })
    );
    r.sim.knobs(|k| k.skip_status = false);
    d.read(0, &mut buf).unwrap();
    assert_eq!(d.stats().errors, 4);
    r.assert_clean();
}

#[test]
fn no_completion_is_a_timeout_and_a_late_one_is_not_taken_for_the_next() {
    for mode in [CompletionMode::Polled, CompletionMode::Interrupt] {
        let r = Rig::new(Knobs::disk(COMMON));
        let mut d = r.open(opts(mode)).unwrap();
        r.sim.knobs(|k| k.hold = true);
        let mut buf = [0u8; 512];
        assert_eq!(
            d.read(0, &mut buf),
            Err(BlkError::Timeout { waited_us: 50_000 })
        );
        r.sim.knobs(|k| k.hold = false);
        r.sim.fill_disk(|i| (i / 512) as u8);
        r.sim.serve(); // the late completion
        d.read(5, &mut buf).unwrap();
        assert_eq!(buf, [5u8; 512], "the new read's data, not the old one's");
        r.assert_clean();
    }
}

#[test]
fn a_device_that_needs_reset_fails_requests() {
    let r = Rig::new(Knobs::disk(COMMON));
    let mut d = r.open(opts(CompletionMode::Interrupt)).unwrap();
    r.sim.knobs(|k| k.needs_reset = true);
    let mut buf = [0u8; 512];
    assert_eq!(d.read(0, &mut buf), Err(BlkError::NeedsReset));
    assert_eq!(
        d.read(0, &mut buf),
        Err(BlkError::NeedsReset),
        "stays failed"
    );
}

#[test]
fn a_bad_used_id_breaks_the_device() {
    let r = Rig::new(Knobs::disk(COMMON));
    let mut d = r.open(opts(CompletionMode::Polled)).unwrap();
    r.sim.knobs(|k| k.bad_id = Some(1000));
    let mut buf = [0u8; 512];
    let e = d.read(0, &mut buf).unwrap_err();
    assert!(
        matches!(
            e,
            BlkError::Broken(DeviceFault::IdOutOfRange { id: 1000, .. })
        ),
        "{e:?}"
    );
    r.sim.knobs(|k| k.bad_id = None);
    assert!(matches!(d.read(0, &mut buf), Err(BlkError::Broken(_))));
}

#[test]
fn open_refusals_are_distinct_errors() {
    let mut k = Knobs::disk(COMMON);
    k.device_id = 1;
    assert_eq!(
        Rig::new(k).open(opts(CompletionMode::Polled)).err(),
        Some(BlkError::NoDevice)
    );
    let mut k = Knobs::disk(COMMON);
    k.refuse_features = true;
    assert!(matches!(
        Rig::new(k).open(opts(CompletionMode::Polled)).err(),
        Some(BlkError::Init(TransportError::FeaturesRejected { .. }))
    ));
    let mut k = Knobs::disk(COMMON);
    k.queue_max = 0;
    assert_eq!(
        Rig::new(k).open(opts(CompletionMode::Polled)).err(),
        Some(BlkError::Init(TransportError::QueueUnavailable {
            queue: 0
        }))
    );
    let mut k = Knobs::disk(COMMON);
    k.features &= !sim::VERSION_1;
    assert_eq!(
        Rig::new(k).open(opts(CompletionMode::Polled)).err(),
        Some(BlkError::Init(TransportError::Legacy))
    );
    let mut k = Knobs::disk(COMMON);
    k.capacity(u64::MAX);
    assert!(matches!(
        Rig::new(k).open(opts(CompletionMode::Polled)).err(),
        Some(BlkError::Config(_))
    ));
}

#[test]
fn requests_the_disk_cannot_hold_never_reach_the_device() {
    let r = Rig::new(Knobs::disk(COMMON));
    let mut d = r.open(opts(CompletionMode::Polled)).unwrap();
    let mut buf = [0u8; 1024];
    assert!(matches!(
        d.read(63, &mut buf),
        Err(BlkError::OutOfRange { .. })
    ));
    assert_eq!(d.read(0, &mut buf[..0]), Err(BlkError::Empty));
    assert!(matches!(
        d.read(0, &mut buf[..100]),
        Err(BlkError::Unaligned { .. })
    ));
    assert_eq!(r.sim.seen.borrow().len(), 1, "GET_ID only");
}

/// Without indirect descriptors, each request reserves the descriptors it can really use:
/// its buffer is contiguous, so 2 + 1, not 2 + seg_max.
#[test]
fn queue_depth_without_indirect_counts_real_segments() {
    let mut k = Knobs::disk(COMMON | f::SEG_MAX);
    k.set32(12, 126);
    k.queue_max = 256;
    let r = Rig::new(k);
    let mut o = opts(CompletionMode::Polled);
    (o.indirect, o.queue_depth) = (false, 32);
    let mut d = r.open(o).unwrap();
    assert_eq!(d.queue_depth(), 32);
    round_trip(&mut d, r.sim);
    assert!(r.seen(VIRTIO_BLK_T_IN).iter().all(|s| s.descriptors == 3));
    r.assert_clean();
}

/// QEMU's `logical_block_size=4096`: requests start and end on 4 KiB blocks, and one that
/// does not is refused before the device (which would answer IOERR, like a media error).
#[test]
fn four_kib_logical_blocks_align_every_request() {
    let mut k = Knobs::disk(COMMON | f::BLK_SIZE | f::WRITE_ZEROES | f::DISCARD);
    k.set32(20, 4096).set32(36, 2).set32(48, 12);
    let r = Rig::new(k);
    let mut o = opts(CompletionMode::Polled);
    o.max_transfer = 6144;
    let mut d = r.open(o).expect("opens");
    assert_eq!(d.block_size(), 4096);
    assert_eq!(d.max_transfer(), 4096, "whole blocks per request");
    let mut buf = vec![0u8; 8192];
    for (sector, len) in [(0u64, 512usize), (1, 4096), (8, 6144)] {
        assert_eq!(
            d.read(sector, &mut buf[..len]),
            Err(BlkError::Unaligned {
                sector,
                len,
                block: 4096
            })
        );
    }
    assert_eq!(
        d.write_zeroes(4, 8),
        Err(BlkError::Unaligned {
            sector: 4,
            len: 4096,
            block: 4096
        })
    );
    assert_eq!(
        r.sim.seen.borrow().len(),
        1,
        "GET_ID only: nothing reached it"
    );
    round_trip_blocks(&mut d, r.sim);
    // write-zeroes limit 12 sectors: pieces of one 8-sector block.
    d.write_zeroes(16, 24).unwrap();
    let wz: Vec<(u64, u64)> = r
        .seen(VIRTIO_BLK_T_WRITE_ZEROES)
        .iter()
        .map(|s| (s.sector, s.size))
        .collect();
    assert_eq!(wz, [(16, 8), (24, 8), (32, 8)]);
    // A discard limit of 2 sectors cannot hold one block: refused, naming the limit.
    assert_eq!(
        d.discard(0, 8),
        Err(BlkError::TooLarge {
            limit: "max_discard_sectors",
            max: 2,
            asked: 8
        })
    );
    assert_eq!(d.stats().errors, 0, "no request failed at the device");
    r.assert_clean();
}

fn round_trip_blocks(d: &mut Disk, sim: &BlkSim) {
    let data: Vec<u8> = (0..8192).map(pattern).collect();
    d.write(8, &data).unwrap();
    assert_eq!(&sim.disk()[8 * 512..24 * 512], &data[..]);
    let mut back = vec![0u8; data.len()];
    d.read(8, &mut back).unwrap();
    assert_eq!(back, data);
}

#[test]
fn a_device_whose_limits_hold_no_logical_block_is_refused_at_open() {
    let mut k = Knobs::disk(COMMON | f::BLK_SIZE | f::SIZE_MAX | f::SEG_MAX);
    k.set32(20, 4096).set32(8, 1024).set32(12, 2);
    assert_eq!(
        Rig::new(k).open(opts(CompletionMode::Polled)).err(),
        Some(BlkError::TooLarge {
            limit: "max_transfer (bytes)",
            max: 2048,
            asked: 4096
        })
    );
}

#[test]
fn a_used_len_past_the_chain_breaks_the_device() {
    let r = Rig::new(Knobs::disk(COMMON));
    let mut d = r.open(opts(CompletionMode::Polled)).unwrap();
    r.sim.knobs(|k| k.overstate = 1);
    let e = d.read(0, &mut [0u8; 512]).unwrap_err();
    assert!(
        matches!(
            e,
            BlkError::Broken(DeviceFault::LenTooLarge {
                len: 514,
                writable: 513,
                ..
            })
        ),
        "{e:?}"
    );
}

#[test]
fn a_device_that_does_not_reset_fails_the_open() {
    let mut k = Knobs::disk(COMMON);
    k.stuck = true;
    let r = Rig::new(k);
    // Leave a status for the reset to clear.
    r.sim.write32(BASE + 0x70, 1u32.swap_bytes());
    assert_eq!(
        r.open(opts(CompletionMode::Polled)).err(),
        Some(BlkError::Init(TransportError::ResetTimeout))
    );
}

/// Closing a disk frees the rings, headers and buffers only once the reset took: a device
/// that ignores it may still write them, so they are leaked instead.
#[test]
fn closing_frees_device_memory_only_after_the_reset() {
    for stuck in [false, true] {
        let r = Rig::new(Knobs::disk(COMMON));
        let mut d = r.open(opts(CompletionMode::Polled)).unwrap();
        d.read(0, &mut [0u8; 512]).unwrap();
        r.sim.knobs(|k| k.stuck = stuck);
        let before = r.tag.platform().frees.load(Ordering::Relaxed);
        drop(d);
        let freed = r.tag.platform().frees.load(Ordering::Relaxed) - before;
        if stuck {
            assert_eq!(freed, 0, "freed under a device that did not reset");
        } else {
            // The ring, the used ring and the request blocks at least, and the slots' buffers.
            assert!(freed >= 4, "only {freed} regions freed after a reset");
        }
    }
}

/// A request still in flight when the disk closes (a timeout) gives its buffer back once the
/// reset took: nothing is leaked by a device that stopped.
#[test]
fn closing_with_a_request_in_flight_frees_its_buffer_after_the_reset() {
    let freed = [false, true].map(|in_flight| {
        let r = Rig::new(Knobs::disk(COMMON));
        let mut d = r.open(opts(CompletionMode::Polled)).unwrap();
        if in_flight {
            d.submit(Op::Read, 0, 512, 1, |_| {}).unwrap();
            d.publish().unwrap();
        }
        let before = r.tag.platform().frees.load(Ordering::Relaxed);
        drop(d);
        r.tag.platform().frees.load(Ordering::Relaxed) - before
    });
    assert_eq!(
        freed[0], freed[1],
        "regions freed without / with a request in flight"
    );
}

/// An open that fails after the device learned its rings (here: the interrupt cannot be
/// attached) resets the device before the rings go, and leaks them if it does not stop.
#[test]
fn a_failed_attach_frees_the_rings_only_after_the_reset() {
    let freed = [false, true].map(|stuck| {
        let r = Rig::new(Knobs::disk(COMMON));
        let info = mmio::probe(&r.sim, BASE, 40, 0)
            .expect("magic")
            .expect("a device");
        let clock: &'static Clock = std::boxed::Box::leak(std::boxed::Box::default());
        let before = r.tag.platform().frees.load(Ordering::Relaxed);
        // SAFETY: the simulated slot is this rig's alone.
        let opened = unsafe {
            VirtioBlk::open(
                r.tag,
                r.sim,
                info,
                opts(CompletionMode::Polled),
                clock,
                |_| {
                    // From here the device ignores resets, if `stuck`.
                    r.sim.knobs(|k| k.stuck = stuck);
                    Err(BlkError::NoDevice)
                },
            )
        };
        assert_eq!(opened.err(), Some(BlkError::NoDevice));
        r.tag.platform().frees.load(Ordering::Relaxed) - before
    });
    // Headers, status bytes and buffers never reached the device: freed either way. The
    // descriptor table with the avail ring, and the used ring (and an indirect table when
    // negotiated), only once the reset took.
    assert!(
        (2..=3).contains(&(freed[0] - freed[1])),
        "freed {} regions after a reset, {} under a device that ignores it",
        freed[0],
        freed[1]
    );
}

#[test]
fn a_full_pool_refuses_a_request_and_drains() {
    let r = Rig::new(Knobs::disk(COMMON));
    let mut d = r.open(opts(CompletionMode::Polled)).unwrap();
    r.sim.knobs(|k| k.hold = true);
    for t in 0..4 {
        d.submit(Op::Read, t * 8, 512, t, |_| {}).unwrap();
    }
    assert!(matches!(
        d.submit(Op::Read, 40, 512, 9, |_| {}),
        Err(BlkError::Queue(_))
    ));
    d.kick().unwrap();
    r.sim.knobs(|k| k.hold = false);
    r.sim.serve();
    let mut tokens = Vec::new();
    while tokens.len() < 4 {
        d.wait().unwrap();
        d.reap(|t, _, res| {
            assert!(res.is_ok());
            tokens.push(t)
        })
        .unwrap();
    }
    tokens.sort();
    assert_eq!(tokens, [0, 1, 2, 3]);
    assert_eq!(d.free_slots(), 4);
    r.assert_clean();
}

/// A device that completes after the notify, not inside it: in interrupt mode the wait
/// sleeps and is woken by the device's interrupt; in polled mode the poll finds it.
#[test]
fn a_device_that_completes_later_is_waited_for() {
    for mode in [CompletionMode::Interrupt, CompletionMode::Polled] {
        let mut k = Knobs::disk(COMMON);
        k.defer = true;
        let r = Rig::new(k);
        let mut d = r.open(opts(mode)).unwrap();
        round_trip(&mut d, r.sim);
        let st = d.stats();
        match mode {
            CompletionMode::Interrupt => assert!(st.interrupts > 0, "{st:?}"),
            CompletionMode::Polled => assert!(st.polls > 0, "{st:?}"),
        }
        assert_eq!(st.errors, 0);
        r.assert_clean();
    }
}

/// `submit` admits a read or write in a few loads and works out the reason only when its
/// fast test fails: every (sector, length) around the edges gets exactly the verdict of the
/// rules written out here (whole logical blocks, inside the disk, within max_transfer, no
/// write to a read-only disk), for 512- and 4096-byte blocks, a small disk, one past 2^32
/// sectors and the largest the driver opens, with sectors up to u64::MAX. The reference
/// computes in u128, so it cannot share an overflow with the driver.
#[test]
fn submit_admits_exactly_the_requests_the_rules_admit() {
    use core::mem::discriminant;
    let max = 4096u32;
    for block in [512u32, 4096] {
        for cap in [64u64, (1 << 33) + 8, super::config::MAX_CAPACITY] {
            for ro in [false, true] {
                let mut k = Knobs::disk(COMMON | if ro { f::RO } else { 0 });
                k.capacity(cap);
                if block != 512 {
                    k.features |= f::BLK_SIZE;
                    k.set32(20, block);
                }
                let r = Rig::new(k);
                let mut o = opts(CompletionMode::Polled);
                o.max_transfer = max;
                let mut d = r.open(o).expect("opens");
                let sectors = [0, 1, 7, 8, 9]
                    .into_iter()
                    .chain([16, 9, 8, 1, 0].map(|b| cap.saturating_sub(b)))
                    .chain([cap.saturating_add(8), u64::MAX - 7, u64::MAX]);
                for sector in sectors {
                    for len in [0u32, 1, 511, 512, 1024, 3584, 4096, 4608, 8192] {
                        for op in [Op::Read, Op::Write] {
                            let ends = u128::from(sector) + u128::from(len / 512);
                            let want = if ro && op == Op::Write {
                                Err(BlkError::ReadOnly)
                            } else if len == 0 {
                                Err(BlkError::Empty)
                            } else if len % block != 0
                                || (u128::from(sector) * 512) % u128::from(block) != 0
                            {
                                Err(BlkError::Unaligned {
                                    sector,
                                    len: len as usize,
                                    block,
                                })
                            } else if ends > u128::from(cap) {
                                Err(BlkError::OutOfRange {
                                    sector,
                                    sectors: 0,
                                    capacity: cap,
                                })
                            } else if len > max {
                                Err(BlkError::TooLarge {
                                    limit: "",
                                    max: 0,
                                    asked: 0,
                                })
                            } else {
                                Ok(())
                            };
                            let got = d.submit(op, sector, len, 0, |_| {}).map(|_| ());
                            assert_eq!(
                                got.as_ref().map_err(discriminant),
                                want.as_ref().map_err(discriminant),
                                "{op:?} sector {sector} len {len}, block {block}, capacity {cap}, ro {ro}: {got:?}"
                            );
                            if got.is_ok() {
                                // Admitted (the device may still answer IOERR past its store).
                                d.kick().unwrap();
                                d.wait().unwrap();
                                assert_eq!(d.reap(|_, _, _| {}).unwrap(), 1);
                            }
                        }
                    }
                }
                r.assert_clean();
            }
        }
    }
}

/// Every completion in interrupt mode is announced by an interrupt, with and without EVENT_IDX,
/// from a device that completes after the notification (as QEMU's with an ioeventfd; one that
/// completes inside the notify write is found by the wait's first re-check, before any
/// interrupt is taken). The simulated device interrupts only as used_event or avail->flags
/// allow, as a real one: a driver that does not re-arm (used_event not moved, NO_INTERRUPT
/// left set) is found here by the count, although its wait's re-check at the deadline still
/// finds the completion.
#[test]
fn every_interrupt_mode_completion_raises_an_interrupt() {
    for features in [COMMON, COMMON & !f::EVENT_IDX] {
        let r = Rig::new(Knobs::disk(features));
        let mut d = r.open(opts(CompletionMode::Polled)).unwrap();
        r.sim.knobs(|k| k.defer = true);
        d.set_mode(CompletionMode::Interrupt).unwrap();
        let before = d.stats().interrupts;
        let mut buf = [0u8; 512];
        for s in 0..5 {
            d.read(s, &mut buf).unwrap();
        }
        assert_eq!(d.stats().interrupts - before, 5, "features {features:#x}");
        r.assert_clean();
    }
}

/// With EVENT_IDX, interrupt mode arms before each sleep, not after each reap: a device that
/// completes inside the notification (before the driver waits) raises no interrupt, and one
/// that completes later raises one per request (above). Without EVENT_IDX the device may
/// interrupt at every completion (avail->flags is all there is), and does.
#[test]
fn a_completion_found_before_the_wait_raises_no_interrupt() {
    for (features, want) in [(COMMON, 0), (COMMON & !f::EVENT_IDX, 5)] {
        let r = Rig::new(Knobs::disk(features));
        let mut d = r.open(opts(CompletionMode::Interrupt)).unwrap();
        let before = r.sim.interrupts_raised();
        let mut buf = [0u8; 512];
        for s in 0..5 {
            d.read(s, &mut buf).unwrap();
        }
        assert_eq!(
            r.sim.interrupts_raised() - before,
            want,
            "features {features:#x}"
        );
        r.assert_clean();
    }
}

/// A notification `publish` owes is written by the next `kick` (the device looks at the ring
/// only after one): the request completes.
#[test]
fn a_notification_publish_owes_is_written_by_the_next_kick() {
    for mode in [CompletionMode::Polled, CompletionMode::Interrupt] {
        let r = Rig::new(Knobs::disk(COMMON));
        let mut d = r.open(opts(mode)).unwrap();
        d.submit(Op::Read, 3, 512, 7, |_| {}).unwrap();
        d.publish().unwrap();
        assert_eq!(
            d.stats().kicks,
            1,
            "{mode:?}: only the open's GET_ID kicked"
        );
        d.kick().unwrap();
        d.wait().unwrap();
        let mut got = Vec::new();
        d.reap(|t, _, r| got.push((t, r.is_ok()))).unwrap();
        assert_eq!(got, [(7, true)], "{mode:?}");
        r.assert_clean();
    }
}

/// A slot whose request has the op and length of its last one re-queues the chain memory
/// holds (no descriptor stored); another length, or another op, stores its
/// chain; the device reads the right data every time.
#[test]
fn a_repeated_request_stores_no_descriptor_and_a_changed_one_does() {
    let r = Rig::new(Knobs::disk(COMMON).clone());
    let mut o = opts(CompletionMode::Polled);
    o.queue_depth = 1;
    let mut d = r.open(o).unwrap();
    let written = |d: &Disk| d.queue_stats().descriptors_written;
    let data: Vec<u8> = (0..4096).map(pattern).collect();
    d.write(8, &data).unwrap();
    let mut back = vec![0u8; 4096];
    d.read(8, &mut back).unwrap();
    let first = written(&d);
    for i in 0..3 {
        back.fill(0);
        d.read(8, &mut back).unwrap();
        assert_eq!(back, data);
        assert_eq!(written(&d), first, "read {i} again: the same chain");
    }
    // Another length: a chain of its own.
    let mut half = vec![0u8; 2048];
    d.read(8, &mut half).unwrap();
    assert_eq!(half, data[..2048]);
    let second = written(&d);
    assert!(second > first, "a new length stores its chain");
    d.read(8, &mut half).unwrap();
    assert_eq!(written(&d), second, "and repeats it");
    // Another op of the same length (the data the other way): stored again.
    d.write(8, &data[2048..]).unwrap();
    assert!(written(&d) > second, "a write after reads stores its chain");
    d.read(8, &mut half).unwrap();
    assert_eq!(half, data[2048..]);
    r.assert_clean();
}

/// `stats().requests` counts every request that took a slot, queued or not (a hand-over the
/// platform refused), and none refused before (out of range), as the test counts them.
#[test]
fn requests_are_counted_whether_or_not_they_reach_the_queue() {
    let r = Rig::new(Knobs::disk(COMMON));
    let mut d = r.open(opts(CompletionMode::Polled)).unwrap();
    // The open's GET_ID.
    let mut expected = 1u64;
    assert_eq!(d.stats().requests, expected);
    let mut buf = [0u8; 1024];
    for i in 0..5 {
        d.read(i, &mut buf).unwrap();
        d.write(i, &buf).unwrap();
        expected += 2;
    }
    d.flush().unwrap();
    expected += 1;
    // Refused before taking a slot: not a request.
    assert!(d.read(1 << 40, &mut buf).is_err());
    // Takes a slot, never queued: its header's PRE sync fails.
    crate::dma::mutant::FAIL_NEXT.with(|f| f.set(Some("blk.request.pre")));
    assert!(d.read(0, &mut buf).is_err());
    expected += 1;
    assert_eq!(d.stats().requests, expected);
    // The slot came back: the disk still works.
    d.read(0, &mut buf).unwrap();
    assert_eq!(d.stats().requests, expected + 1);
    r.assert_clean();
}

/// One `reap` takes every completion the used->idx read before it announced (three requests
/// the device completed together), not one per call.
#[test]
fn one_reap_takes_every_completion_one_idx_read_announced() {
    for mode in [CompletionMode::Polled, CompletionMode::Interrupt] {
        let r = Rig::new(Knobs::disk(COMMON));
        let mut d = r.open(opts(mode)).unwrap();
        for t in 0..3 {
            d.submit(Op::Read, 8 * t, 4096, t, |_| {}).unwrap();
        }
        d.kick().unwrap();
        d.wait().unwrap();
        let mut got = Vec::new();
        let n = d.reap(|t, _, r| got.push((t, r.is_ok()))).unwrap();
        got.sort_unstable();
        assert_eq!(
            (n, got),
            (3, vec![(0, true), (1, true), (2, true)]),
            "{mode:?}"
        );
        r.assert_clean();
    }
}
