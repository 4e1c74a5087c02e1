//! In-guest tests of the virtio transport and virtqueue against QEMU's virtio-blk, with the
//! bus_dma auditor on and under each stale-cache model, in both completion styles.
//!
//! The requests here are the bare minimum a virtqueue test needs (GET_ID, reads, a write);
//! the block driver proper lives elsewhere. The xtask attaches the scratch disks
//! (`console_proto::scratch`: their fill pattern, serials) and passes their slots as `disks=`.

use crate::arch::m68k::dma::{M68kPlatform, DMA};
use crate::arch::m68k::dma_sync::CpuCache;
use crate::arch::m68k::machine::MachineBus;
use crate::board::virt::irq::{self, Handled};
use crate::board::virt::virtio_probe;
use crate::kern::time::{self, SECONDS};
use crate::selftest::harness::{Failure, Test, TestResult};
use alloc::format;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::mem::ManuallyDrop;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use drivers::blk::config::{feature::BLK_SIZE, offset};
use drivers::blk::request::{
    header_bytes, HEADER_LEN, VIRTIO_BLK_ID_BYTES, VIRTIO_BLK_S_OK, VIRTIO_BLK_T_GET_ID,
    VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT,
};
use drivers::dma::{CacheKind, Direction, DmaBuffer, DmaRegion, Limits, PostRead, SyncOps};
use drivers::virtio::mmio::{feature, DeviceInfo, MmioTransport};
use drivers::virtio::queue::{Buffer, SplitQueue};

/// How long one request may take: a guard against a hang, far above any completion time.
const REQUEST_TIMEOUT: u64 = 5 * SECONDS;

pub fn tests() -> Vec<Test> {
    vec![
        Test::new(
            "virtio::probe_finds_the_attached_disks",
            probe_finds_the_attached_disks,
        ),
        Test::new("virtio::blk_requests_polled", blk_requests_polled),
        Test::new("virtio::blk_requests_interrupt", blk_requests_interrupt),
        Test::new(
            "virtio::needs_reset_is_detected_and_recovered",
            needs_reset_is_detected_and_recovered,
        ),
        Test::new(
            "virtio::timed_out_request_frees_nothing_the_device_may_write",
            timed_out_request_frees_nothing_the_device_may_write,
        ),
    ]
}

fn err(e: impl core::fmt::Display) -> Failure {
    Failure::Failed(format!("{e}"))
}

fn expected_disks() -> u128 {
    crate::kern::boot::options().disks
}

fn probe_finds_the_attached_disks() -> TestResult {
    let expected = expected_disks();
    if expected == 0 {
        return Err(Failure::Skipped(
            "no disks= option (cargo xtask test attaches disks and passes their slots)".into(),
        ));
    }
    let virtio = crate::kern::boot::boot_info().virtio.unwrap();
    let mut found = 0u128;
    for d in virtio_probe::devices().filter(|d| d.device_id == 2) {
        ensure_eq!(d.base, virtio.base + d.slot * 0x200);
        ensure_eq!(d.irq, virtio.irq + d.slot);
        ensure_eq!(d.version, 2);
        found |= 1 << d.slot;
    }
    // disks= names only the runner's scratch disks: other disks (--disk, extra QEMU
    // arguments) may sit in any other slot and are no error.
    let missing = expected & !found;
    ensure!(
        missing == 0,
        "no block device in scratch slot(s) {missing:#x} (block devices found in {found:#x})"
    );
    Ok(())
}

fn pattern(sector: u64, i: usize) -> u8 {
    console_proto::scratch::pattern(sector, i as u64)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Polled,
    Interrupt,
}

/// A block device opened just far enough to run requests one at a time.
struct Blk {
    transport: MmioTransport<MachineBus>,
    // What the device can reach is freed by Drop only after a reset took (leaked otherwise).
    queue: ManuallyDrop<SplitQueue<M68kPlatform>>,
    header: ManuallyDrop<DmaRegion<M68kPlatform>>,
    status: ManuallyDrop<DmaRegion<M68kPlatform>>,
    mode: Mode,
    /// The logical block in bytes (blk_size when BLK_SIZE is offered, else 512): the device
    /// fails a request that is not whole blocks with IOERR.
    block: u32,
    interrupted: Arc<AtomicBool>,
    interrupts: Arc<AtomicU32>,
    /// Set from the interrupt handler when the device asked for a reset.
    needs_reset: Arc<AtomicBool>,
    handler: Option<irq::HandlerId>,
    /// Reset after a timed-out request: the queue is gone, no request may be made.
    stopped: bool,
    /// Exclusive use of the slot while this helper drives it (released last).
    _claim: crate::kern::disks::SlotClaim,
}

impl Blk {
    fn open(info: DeviceInfo, event_idx: bool, mode: Mode) -> Result<Blk, Failure> {
        let claim = crate::kern::disks::claim(info.slot).map_err(err)?;
        // SAFETY: the slot was found by the boot probe and is claimed by this helper (no Disk
        // or other claim drives it), so the bus reaches only that slot's registers.
        let transport = unsafe { MmioTransport::new(MachineBus::new(), info) }.map_err(err)?;
        let want = if event_idx { feature::EVENT_IDX } else { 0 };
        // BLK_SIZE taken when offered: it only tells the block size, which requests must follow.
        let features = transport
            .begin_init(|offered| want | (offered & BLK_SIZE))
            .map_err(err)?;
        ensure_eq_f(features & feature::EVENT_IDX, want)?;
        let block = if features & BLK_SIZE != 0 {
            let mut b = [0u8; 4];
            transport
                .read_config(offset::BLK_SIZE as u32, &mut b)
                .map_err(err)?;
            u32::from_le_bytes(b)
        } else {
            512
        };
        ensure!(
            block.is_power_of_two() && (512..=64 * 1024).contains(&block),
            "blk_size {block}"
        );
        let size = transport.queue_max(0).min(64);
        let size = 1u16 << (15 - size.leading_zeros());
        let queue = SplitQueue::new(
            &DMA,
            ["blk ring", "blk used", "blk indirect"],
            0,
            size,
            event_idx,
            false,
        )
        .map_err(err)?;
        // Everything allocated before the device learns the rings: no error return between
        // `setup_queue` and the Blk that owns them.
        let header = DMA
            .alloc("blk header", HEADER_LEN, Direction::ToDevice, false)
            .map_err(err)?;
        let status = DMA
            .alloc("blk status", 16, Direction::FromDevice, false)
            .map_err(err)?;
        let (d, a, u) = queue.addresses();
        // SAFETY: `queue`'s own DMA regions, sized for `size` entries by `SplitQueue::new`;
        // they move into this Blk just below (no error return in between), whose Drop frees
        // them only after a reset took and leaks them otherwise. A setup error leaves the
        // queue not ready: the device never learned its areas.
        unsafe { transport.setup_queue(0, size, d, a, u) }.map_err(err)?;
        transport.driver_ok();
        let mut blk = Blk {
            transport,
            queue: ManuallyDrop::new(queue),
            header: ManuallyDrop::new(header),
            status: ManuallyDrop::new(status),
            mode,
            block,
            interrupted: Arc::new(AtomicBool::new(false)),
            interrupts: Arc::new(AtomicU32::new(0)),
            needs_reset: Arc::new(AtomicBool::new(false)),
            handler: None,
            stopped: false,
            _claim: claim,
        };
        if mode == Mode::Interrupt {
            // SAFETY: the same slot (probed, owned by this test), used by the handler for
            // InterruptStatus/ACK only.
            let regs = unsafe { MmioTransport::new(MachineBus::new(), info) }.map_err(err)?;
            let (flag, count, reset) = (
                blk.interrupted.clone(),
                blk.interrupts.clone(),
                blk.needs_reset.clone(),
            );
            let id = irq::register(info.irq, "test: virtio-blk", move || {
                // Read InterruptStatus and ack; the waiter processes and re-checks the ring.
                let Some(cause) = regs.take_interrupt() else {
                    return Handled::NotMine;
                };
                if cause.needs_reset {
                    reset.store(true, Ordering::Relaxed);
                }
                count.fetch_add(1, Ordering::Relaxed);
                flag.store(true, Ordering::Relaxed);
                Handled::Yes
            })
            .map_err(err)?;
            blk.handler = Some(id);
            irq::enable(info.irq).map_err(err)?;
            blk.queue.enable_interrupts().map_err(err)?;
        } else {
            blk.queue.disable_interrupts().map_err(err)?;
        }
        Ok(blk)
    }

    fn capacity(&self) -> Result<u64, Failure> {
        let mut b = [0u8; 8];
        self.transport.read_config(0, &mut b).map_err(err)?;
        Ok(u64::from_le_bytes(b))
    }

    /// Runs one request; returns the status byte and the data buffer back.
    fn request(
        &mut self,
        kind: u32,
        sector: u64,
        data: DmaBuffer<M68kPlatform>,
        dir: Direction,
    ) -> Result<(u8, DmaBuffer<M68kPlatform>), Failure> {
        self.request_at(kind, sector, data, dir, Fault::None)
            .map_err(|e| match e {
                Outcome::Failed(f) => f,
                Outcome::NeedsReset => err("the device asked for a reset"),
                Outcome::TimedOut(e) => err(format!("request type {kind} not completed: {e}")),
            })
    }

    /// As `request`, with a deliberate `fault`. A device that sets DEVICE_NEEDS_RESET ends
    /// the wait at once.
    fn request_at(
        &mut self,
        kind: u32,
        sector: u64,
        data: DmaBuffer<M68kPlatform>,
        dir: Direction,
        fault: Fault,
    ) -> Result<(u8, DmaBuffer<M68kPlatform>), Outcome> {
        if self.stopped {
            return Err(Outcome::Failed(err(
                "the device was reset after a timeout; open it again",
            )));
        }
        let (bogus_len, kick, timeout) = match fault {
            Fault::None => (None, true, REQUEST_TIMEOUT),
            Fault::BogusLen(len) => (Some(len), true, REQUEST_TIMEOUT),
            Fault::Unannounced { timeout_ns } => (None, false, timeout_ns),
        };
        self.header.write(0, &header_bytes(kind, sector));
        self.header
            .sync(SyncOps::PREWRITE, 0, HEADER_LEN)
            .map_err(err)?;
        self.status.sync(SyncOps::PREREAD, 0, 1).map_err(err)?;
        let len = data.len();
        let inflight = data
            .give_to_device(dir, len, &Limits::NONE)
            .map_err(|(_, e)| err(e))?;
        let mut bufs = vec![Buffer {
            addr: self.header.phys(),
            len: HEADER_LEN,
            device_writes: false,
        }];
        for s in inflight.segments() {
            bufs.push(Buffer {
                addr: s.addr,
                // A fault may shorten a buffer (0 bytes: QEMU's NEEDS_RESET), never lengthen
                // it past the memory given to the device.
                len: bogus_len.map_or(s.len, |l| l.min(s.len)),
                device_writes: dir == Direction::FromDevice,
            });
        }
        bufs.push(Buffer {
            addr: self.status.phys(),
            len: 1,
            device_writes: true,
        });
        // SAFETY: header and status are this helper's own regions (PREWRITE and PREREAD
        // above), the data segments `inflight`'s, given to the device just now, each at most
        // as long as its memory; all stay allocated and untouched by the CPU until the
        // completion below, or the reset after a timeout (or leaked if that fails).
        unsafe { self.queue.add(&bufs, 1) }.map_err(|e| Outcome::Failed(err(e)))?;
        if self.queue.publish().map_err(|e| Outcome::Failed(err(e)))? && kick {
            self.transport.notify(0);
        }
        let queue = &mut self.queue;
        let transport = &self.transport;
        let needs_reset = &self.needs_reset;
        let mut done = None;
        let waited = match self.mode {
            Mode::Polled => time::spin_until(
                || match queue.pop_used() {
                    Ok(None) if transport.needs_reset() => {
                        needs_reset.store(true, Ordering::Relaxed);
                        true
                    }
                    Ok(Some(c)) => {
                        done = Some(Ok(c));
                        true
                    }
                    Ok(None) => false,
                    Err(e) => {
                        done = Some(Err(e));
                        true
                    }
                },
                timeout,
            ),
            Mode::Interrupt => {
                let start = time::now();
                loop {
                    if needs_reset.load(Ordering::Relaxed) {
                        break Ok(());
                    }
                    match queue.pop_used() {
                        Ok(Some(c)) => {
                            done = Some(Ok(c));
                            break Ok(());
                        }
                        Ok(None) => {}
                        Err(e) => {
                            done = Some(Err(e));
                            break Ok(());
                        }
                    }
                    // Re-arm, then re-check: a completion that landed before the re-arm took
                    // effect raises no interrupt. This runs after the deadline too, so a lost
                    // interrupt is not taken for a request that never completed.
                    match queue.enable_interrupts() {
                        Ok(true) => continue,
                        Ok(false) => {}
                        Err(e) => {
                            done = Some(Err(e));
                            break Ok(());
                        }
                    }
                    let waited = time::now() - start;
                    if waited >= timeout {
                        break Err(time::TimedOut { waited });
                    }
                    let flag = &self.interrupted;
                    let _ =
                        time::wait_until(|| flag.swap(false, Ordering::Relaxed), timeout - waited);
                }
            }
        };
        if self.needs_reset.load(Ordering::Relaxed) {
            // The device gave up on the ring: what is in flight will never complete. Its
            // buffer is not taken back (DeviceOwned leaks it rather than reuse memory the
            // device may still write).
            drop(inflight);
            // Seen by the wait (it ends the wait), not found only after a timeout.
            return Err(match waited {
                Ok(()) => Outcome::NeedsReset,
                Err(e) => Outcome::Failed(err(format!(
                    "DEVICE_NEEDS_RESET is set, but the wait ran to its timeout ({e})"
                ))),
            });
        }
        if let Err(e) = waited {
            // The device has not answered, but may still: until it is stopped, the buffer
            // is its to write, and freeing it lets a late completion write whatever is
            // allocated there next. Leaking it alone would not do: the request would stay in
            // the ring, to complete later into this helper's one header and status slot,
            // taken by then for the next request. So the device is reset, which ends its use
            // of the queue and of everything the queue points to: once status reads 0 it may
            // not touch the queues until re-initialised (virtio 1.2, 2.4.1; QEMU finishes or
            // drops in-flight requests before the reset completes). Only then is the buffer
            // taken back and freed. A reset that does not complete leaves the device live:
            // the buffer is then leaked (dropping DeviceOwned does that), not freed.
            self.stopped = true;
            if self.transport.reset().is_ok() {
                // SAFETY: the reset completed: the device no longer touches the queue or
                // anything it points to (virtio 1.2 2.4.1).
                drop(unsafe { inflight.take_back() });
            } else {
                drop(inflight);
            }
            return Err(Outcome::TimedOut(e));
        }
        let (_token, _len) = match done.expect("set on success") {
            Ok(c) => c,
            Err(e) => {
                // The queue broke (the device broke the protocol): the chain may still be the
                // device's. As after a timeout: reset it, then free; leak if it will not stop.
                self.stopped = true;
                if self.transport.reset().is_ok() {
                    // SAFETY: the reset completed: the device no longer touches the queue or
                    // anything it points to (virtio 1.2 2.4.1).
                    drop(unsafe { inflight.take_back() });
                } else {
                    drop(inflight);
                }
                return Err(Outcome::Failed(err(e)));
            }
        };
        // SAFETY: `pop_used` returned this request's chain (the helper has one in flight):
        // the device is done with it.
        let data = unsafe { inflight.take_back() };
        self.header
            .sync(SyncOps::POSTWRITE, 0, HEADER_LEN)
            .map_err(|e| Outcome::Failed(err(e)))?;
        self.status
            .sync(SyncOps::POSTREAD, 0, 1)
            .map_err(|e| Outcome::Failed(err(e)))?;
        Ok((self.status.read_u8(0), data))
    }
}

/// How a request ended, when not with a status byte.
enum Outcome {
    Failed(Failure),
    NeedsReset,
    /// No completion by the deadline.
    TimedOut(time::TimedOut),
}

/// Deliberate misbehaviour, for the failure tests.
#[derive(Clone, Copy)]
enum Fault {
    None,
    /// Every data descriptor gets this length (0 makes QEMU give up on the ring).
    BogusLen(u32),
    /// The request is made available but not notified: QEMU does not look at the ring
    /// until a later notification, so the wait (`timeout_ns`) times out whatever the
    /// host's speed, and the request is still there for a late device to serve.
    Unannounced {
        timeout_ns: u64,
    },
}

impl From<Failure> for Outcome {
    fn from(f: Failure) -> Self {
        Outcome::Failed(f)
    }
}

impl Drop for Blk {
    fn drop(&mut self) {
        if let Some(id) = self.handler.take() {
            let _ = irq::disable(id.irq);
            irq::unregister(id);
        }
        if self.transport.reset().is_err() {
            // The device may still use the rings, header and status: leaked, never reused.
            return;
        }
        // SAFETY: each field is dropped once, here, and `self` is going away; the reset
        // completed, so the device no longer touches them (virtio 1.2 2.4.1).
        unsafe {
            ManuallyDrop::drop(&mut self.status);
            ManuallyDrop::drop(&mut self.header);
            ManuallyDrop::drop(&mut self.queue);
        }
    }
}

fn ensure_eq_f(a: u64, b: u64) -> Result<(), Failure> {
    if a == b {
        Ok(())
    } else {
        Err(err(format!("negotiated {a:#x}, wanted {b:#x}")))
    }
}

/// GET_ID, a read of 8 sectors (at least a block) checked against the pattern, a write of a
/// block and its read-back. Sectors 8 and 1000 are block-aligned up to 4 KiB blocks.
fn exercise(blk: &mut Blk, slot: u32) -> TestResult {
    ensure!(
        blk.capacity()? >= 2048,
        "capacity {} sectors",
        blk.capacity()?
    );
    let id = DMA
        .buffer("test get-id", VIRTIO_BLK_ID_BYTES)
        .map_err(err)?;
    let (status, id) = blk.request(VIRTIO_BLK_T_GET_ID, 0, id, Direction::FromDevice)?;
    ensure_eq!(status, VIRTIO_BLK_S_OK);
    let serial = console_proto::scratch::disk(slot)
        .ok_or_else(|| err(format!("slot {slot} holds no scratch disk")))?
        .serial;
    ensure!(
        id.as_slice().starts_with(serial.as_bytes()),
        "serial {:?}",
        &id.as_slice()[..serial.len()]
    );
    ensure!(
        blk.block <= 4096,
        "blk_size {} above this test's 4 KiB",
        blk.block
    );
    let buf = DMA
        .buffer("test read", blk.block.max(8 * 512))
        .map_err(err)?;
    let (status, buf) = blk.request(VIRTIO_BLK_T_IN, 8, buf, Direction::FromDevice)?;
    ensure_eq!(status, VIRTIO_BLK_S_OK);
    for (i, &b) in buf.as_slice().iter().enumerate() {
        let (s, o) = (8 + (i / 512) as u64, i % 512);
        ensure!(
            b == pattern(s, o),
            "sector {s} byte {o}: {b:#x}, expected {:#x}",
            pattern(s, o)
        );
    }
    // Write sector 1000 with a fresh pattern and read it back.
    let mut out = DMA.buffer("test write", blk.block).map_err(err)?;
    let stamp = time::now() as u8;
    for (i, b) in out.as_mut_slice().iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(3) ^ stamp;
    }
    let (status, _) = blk.request(VIRTIO_BLK_T_OUT, 1000, out, Direction::ToDevice)?;
    ensure_eq!(status, VIRTIO_BLK_S_OK);
    let back = DMA.buffer("test read-back", blk.block).map_err(err)?;
    let (status, back) = blk.request(VIRTIO_BLK_T_IN, 1000, back, Direction::FromDevice)?;
    ensure_eq!(status, VIRTIO_BLK_S_OK);
    ensure!(
        back.as_slice()
            .iter()
            .enumerate()
            .all(|(i, &b)| b == (i as u8).wrapping_mul(3) ^ stamp),
        "read-back differs from what was written"
    );
    Ok(())
}

/// The first scratch disk the runner attached (and so may be written).
fn scratch_disk() -> Result<DeviceInfo, Failure> {
    let expected = expected_disks();
    if expected == 0 {
        return Err(Failure::Skipped(
            "no disks attached (cargo xtask test attaches them)".into(),
        ));
    }
    virtio_probe::devices()
        .find(|d| d.device_id == 2 && expected & (1 << d.slot) != 0)
        .copied()
        .ok_or_else(|| err("no attached disk was found"))
}

fn blk_requests(mode: Mode) -> TestResult {
    let info = scratch_disk()?;
    for model in [None, Some(CpuCache::M68030), Some(CpuCache::M68040)] {
        for event_idx in [false, true] {
            let label = format!(
                "model {}, EVENT_IDX {}",
                model.map_or("coherent", |m| m.name()),
                if event_idx { "on" } else { "off" }
            );
            crate::selftest::dma::with_dma(model, PostRead::NoOp, true, || {
                let mut blk = Blk::open(info, event_idx, mode)?;
                exercise(&mut blk, info.slot)?;
                if mode == Mode::Interrupt && blk.interrupts.load(Ordering::Relaxed) == 0 {
                    return Err(err("interrupt mode completed without a single interrupt"));
                }
                let findings = DMA.with_auditor(|a| a.map_or(0, |a| a.total()));
                ensure!(
                    findings == 0,
                    "the auditor reported {findings} finding(s) (printed above)"
                );
                Ok(())
            })
            .map_err(|e| match e {
                Failure::Failed(why) => Failure::Failed(format!("{label}: {why}")),
                other => other,
            })?;
        }
    }
    Ok(())
}

fn blk_requests_polled() -> TestResult {
    blk_requests(Mode::Polled)
}

fn blk_requests_interrupt() -> TestResult {
    blk_requests(Mode::Interrupt)
}

/// A zero-length buffer makes QEMU's device give up on the ring ("zero sized buffers are not
/// allowed": virtio_error sets DEVICE_NEEDS_RESET and raises a config interrupt). The driver
/// must see it, fail the request instead of waiting out its timeout (the wait ends because of
/// it: `request_at` says so when the wait timed out instead), reset and carry on.
fn needs_reset_is_detected_and_recovered() -> TestResult {
    let info = scratch_disk()?;
    for mode in [Mode::Interrupt, Mode::Polled] {
        let mut blk = Blk::open(info, false, mode)?;
        let buf = DMA.buffer("test bogus", 512).map_err(err)?;
        match blk.request_at(
            VIRTIO_BLK_T_IN,
            0,
            buf,
            Direction::FromDevice,
            Fault::BogusLen(0),
        ) {
            Err(Outcome::NeedsReset) => {}
            Err(Outcome::Failed(f)) => return Err(f),
            Err(Outcome::TimedOut(e)) => {
                return Err(err(format!("DEVICE_NEEDS_RESET not seen: {e}")))
            }
            Ok((status, _)) => {
                return Err(err(format!(
                    "a bogus buffer completed with status {status}"
                )))
            }
        }
        ensure!(blk.transport.needs_reset(), "DEVICE_NEEDS_RESET not set");
        drop(blk);
        // Reset and re-initialise: the device works again.
        let mut blk = Blk::open(info, false, mode)?;
        exercise(&mut blk, info.slot)?;
    }
    Ok(())
}

/// A request past its deadline may still be served: until the device is stopped, its data
/// buffer is the device's, and handing it back to the heap lets a late completion write
/// into whatever is allocated there next. The request here is never notified, so it times
/// out whatever the host's speed; the test then fills the memory's next owner with a
/// sentinel and, if the device is still live, notifies it, as a slow device would take the
/// request, and waits for the completion. The sentinel must survive. (A helper that keeps
/// the buffer passes too: its memory is not handed out again, and the test says so.)
fn timed_out_request_frees_nothing_the_device_may_write() -> TestResult {
    const LEN: u32 = 4096;
    const SENTINEL: u8 = 0x3c;
    let info = scratch_disk()?;
    let mut blk = Blk::open(info, false, Mode::Polled)?;
    // QEMU 10 looks at the ring without a notification while its virtqueue handler starts
    // (the first kick after DRIVER_OK) and while it polls after a completion: one announced
    // request first, then a pause well past that polling (microseconds of host time), so
    // that only a notification could make the device see the next one. (A faster request
    // path once published the unannounced request inside that window: it completed.)
    let warm = DMA.buffer("test warm-up", LEN).map_err(err)?;
    match blk.request_at(VIRTIO_BLK_T_IN, 0, warm, Direction::FromDevice, Fault::None) {
        Ok((0, _)) => {}
        Ok((status, _)) => return Err(err(format!("the warm-up read failed (status {status})"))),
        Err(Outcome::Failed(f)) => return Err(f),
        Err(_) => return Err(err("the warm-up read did not complete")),
    }
    time::sleep(20 * time::MILLIS);
    let buf = DMA.buffer("test timed out", LEN).map_err(err)?;
    let at = buf.as_slice().as_ptr() as usize;
    let fault = Fault::Unannounced {
        timeout_ns: time::MILLIS,
    };
    match blk.request_at(VIRTIO_BLK_T_IN, 8, buf, Direction::FromDevice, fault) {
        Err(Outcome::TimedOut(_)) => {}
        Err(Outcome::Failed(f)) => return Err(f),
        Err(Outcome::NeedsReset) => return Err(err("the device asked for a reset")),
        Ok((status, _)) => {
            return Err(err(format!(
                "a request never notified completed (status {status})"
            )))
        }
    }
    // The heap is first-fit: the freed pages are among the first a page-aligned
    // allocation of the same size can take. Hold every probe until the end.
    let mut probes = Vec::new();
    let mut reused = None;
    for _ in 0..8 {
        let mut p = DMA.buffer("test probe", LEN).map_err(err)?;
        p.as_mut_slice().fill(SENTINEL);
        let hit = p.as_slice().as_ptr() as usize == at;
        probes.push(p);
        if hit {
            reused = Some(probes.len() - 1);
            break;
        }
    }
    if blk.transport.status() != 0 {
        // Still live: a late device may take the request now. Let it, and wait for it.
        blk.transport.notify(0);
        let queue = &mut blk.queue;
        time::spin_until(|| !matches!(queue.pop_used(), Ok(None)), REQUEST_TIMEOUT)
            .map_err(|e| err(format!("the late request did not complete: {e}")))?;
    }
    let Some(i) = reused else {
        return Err(Failure::Skipped(
            "the timed-out buffer's memory was not handed out again (kept, or the heap \
             chose other pages): nothing to check"
                .into(),
        ));
    };
    let changed = probes[i]
        .as_slice()
        .iter()
        .filter(|&&b| b != SENTINEL)
        .count();
    ensure!(
        changed == 0,
        "the device wrote {changed} bytes into memory freed on the timeout and now another \
         buffer's"
    );
    Ok(())
}
