//! virtio-blk back end, shaped like NetBSD's ld_virtio: a pool of pre-allocated request slots
//! sized from the queue, each with its request block (its header in one cache line, its status
//! byte in the next, never sharing a line with CPU-written fields) and its data buffer.
//!
//! Per request, the bus_dma sequence (the reason for each is the rule in docs/dma-sync.md):
//! - submit: one sync of the request block, PREWRITE|PREREAD: the header's line pushed (the
//!   device reads it), the status line pushed with its sentinel (the device writes it); data
//!   PREWRITE for a write, PREREAD for a read (inside `give_to_device`);
//! - completion: one sync of the request block, POSTWRITE|POSTREAD; data POSTWRITE/POSTREAD
//!   (inside `take_back`); then the status byte is read and checked.
//!
//! Completion modes: interrupt (the kernel registers [`IrqShared::handle`] on the disk's line;
//! it reads InterruptStatus, acks, and wakes the waiter; "not mine" when the status is clear)
//! or polled (the used ring is polled, each turn its own PREREAD/POSTREAD read phase inside
//! the virtqueue). Every wait is bounded by the request timeout, and an interrupt-mode wait
//! re-checks the used ring at its deadline: a lost interrupt delays a completion, it never
//! turns it into a timeout.
//!
//! The interrupt is wired during [`VirtioBlk::open`], by a step the caller supplies, before
//! the first request: a completion interrupt can then never reach a line with no handler
//! (the dispatcher would count it unclaimed and disable the line).

use super::config::{feature, offset, BlkConfig};
use super::request::{
    self as req, segment_bytes, HEADER_LEN, HEADER_RESERVED_AT, HEADER_SECTOR_AT, HEADER_TYPE_AT,
    SEGMENT_LEN, VIRTIO_BLK_ID_BYTES, VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_OK, VIRTIO_BLK_S_UNSUPP,
};
use super::{
    check_range, BlkError, BlockDevice, CompletionMode, Count64, DiskStats, Waiter, SECTOR,
};
use crate::bus::Bus;
use crate::dma::{DeviceOwned, Direction, DmaBuffer, DmaRegion, DmaTag, Limits, Platform, SyncOps};
use crate::virtio::mmio::{self, DeviceInfo, MmioTransport};
use crate::virtio::queue::{Buffer, QueueError, SplitQueue, UsedSync};
use crate::word::{Table, Word32, Word64};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::mem::ManuallyDrop;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

/// The one virtqueue, requestq (virtio 1.2 5.2.2: queue 0 without VIRTIO_BLK_F_MQ, which
/// this driver does not negotiate).
const REQUEST_QUEUE: u16 = 0;

/// Written before each request; a device that completes without writing status leaves it.
const S_UNWRITTEN: u8 = 0xff;

/// A request's descriptors: header, data segments, status. Up to 8 live on the stack (no
/// allocation for the common request); more spill to the heap.
type BufList = smallvec::SmallVec<[Buffer; 8]>;

/// Bytes per slot's request block: the header's 16-byte cache line, then the status byte's.
const SLOT_STRIDE: u32 = 32;
/// The status byte's offset in a request block: a cache line of its own (16-byte lines on
/// every m68k with a data cache; checked at open against the platform's).
const STATUS_AT: u32 = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Read,
    Write,
    Flush,
    GetId,
    /// The range may be dropped by the device (contents afterwards unspecified).
    Discard,
    /// The range reads as zeros afterwards.
    WriteZeroes,
}

impl Op {
    /// Every op, in discriminant order.
    const ALL: [Op; 6] = [
        Op::Read,
        Op::Write,
        Op::Flush,
        Op::GetId,
        Op::Discard,
        Op::WriteZeroes,
    ];
    fn kind(self) -> u32 {
        match self {
            Op::Read => req::VIRTIO_BLK_T_IN,
            Op::Write => req::VIRTIO_BLK_T_OUT,
            Op::Flush => req::VIRTIO_BLK_T_FLUSH,
            Op::GetId => req::VIRTIO_BLK_T_GET_ID,
            Op::Discard => req::VIRTIO_BLK_T_DISCARD,
            Op::WriteZeroes => req::VIRTIO_BLK_T_WRITE_ZEROES,
        }
    }
    fn direction(self) -> Direction {
        match self {
            Op::Write | Op::Discard | Op::WriteZeroes => Direction::ToDevice,
            _ => Direction::FromDevice,
        }
    }
    /// Its bit in [`VirtioBlk`]'s admitted ops.
    fn bit(self) -> u8 {
        1 << self as u8
    }
    /// Whether it changes the disk (refused on a read-only one).
    fn writes(self) -> bool {
        matches!(self, Op::Write | Op::Discard | Op::WriteZeroes)
    }
}

/// How to open a disk.
#[derive(Debug, Clone, Copy)]
pub struct OpenOptions {
    pub mode: CompletionMode,
    pub event_idx: bool,
    pub indirect: bool,
    /// Requests in flight at most (also bounded by the queue).
    pub queue_depth: u16,
    /// Bytes per request at most (also bounded by SIZE_MAX x SEG_MAX).
    pub max_transfer: u32,
    pub timeout_ns: u64,
    /// The used ring's read-phase syncs; None: [`UsedSync::Corrected`] (the kernel fills in
    /// its `vq_sync` option).
    pub vq_sync: Option<UsedSync>,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            mode: CompletionMode::Interrupt,
            event_idx: true,
            indirect: true,
            queue_depth: 32,
            max_transfer: 64 * 1024,
            timeout_ns: 5_000_000_000,
            vq_sync: None,
        }
    }
}

/// What the interrupt handler shares with the driver: the device's interrupt registers and
/// flags. Safe to call from interrupt context; touches no ring memory.
pub struct IrqShared<B: Bus> {
    regs: MmioTransport<B>,
    pending: AtomicBool,
    needs_reset: AtomicBool,
    config_changed: AtomicBool,
    interrupts: AtomicU32,
}

impl<B: Bus> IrqShared<B> {
    /// The interrupt handler: true when this device raised the line.
    pub fn handle(&self) -> bool {
        let Some(cause) = self.regs.take_interrupt() else {
            return false;
        };
        if cause.needs_reset {
            self.needs_reset.store(true, Ordering::Relaxed);
        }
        if cause.config_changed {
            self.config_changed.store(true, Ordering::Relaxed);
        }
        self.interrupts.fetch_add(1, Ordering::Relaxed);
        self.pending.store(true, Ordering::Relaxed);
        true
    }
}

/// A slot's request as one word: its data bytes times eight plus its op. Data lengths stay
/// below [`MAX_REQUEST_BYTES`] (`open` caps `max_transfer` there), so the product fits and
/// the op is the low three bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Req(u32);

impl Req {
    #[inline(always)]
    fn new(op: Op, data_len: u32) -> Req {
        debug_assert!(data_len < MAX_REQUEST_BYTES);
        Req(data_len << 3 | op as u32)
    }
    #[inline(always)]
    fn op(self) -> Op {
        match self.0 & 7 {
            0 => Op::Read,
            1 => Op::Write,
            2 => Op::Flush,
            3 => Op::GetId,
            4 => Op::Discard,
            _ => Op::WriteZeroes,
        }
    }
    /// Data bytes.
    #[inline(always)]
    fn len(self) -> u32 {
        self.0 >> 3
    }
}

/// Data bytes per request stay below this (256 MiB; each slot's buffer is allocated at
/// `max_transfer`, so no machine here comes near it).
const MAX_REQUEST_BYTES: u32 = 1 << 28;

/// No chain stored at the slot's head (no [`Req`] has op bits 7).
const NO_CHAIN: u32 = u32::MAX;

/// The free request slots: slots 0..32 as the bits of one word (taking or returning one is
/// a load and a store of it), any others in a list.
struct FreeSlots {
    low: u32,
    high: Vec<u16>,
}

impl FreeSlots {
    /// Slots 0..depth, all free.
    fn all(depth: u16) -> Self {
        FreeSlots {
            low: if depth >= 32 {
                u32::MAX
            } else {
                (1u32 << depth) - 1
            },
            high: (32..depth).rev().collect(),
        }
    }

    /// A free slot (the lowest of 0..32 while there is one), now taken.
    #[inline(always)]
    fn take(&mut self) -> Option<u16> {
        let low = self.low;
        if low != 0 {
            self.low = low & (low - 1);
            return Some(low.trailing_zeros() as u16);
        }
        self.high.pop()
    }

    /// Returns a slot taken with [`take`](Self::take).
    #[inline(always)]
    fn put(&mut self, slot: u16) {
        if slot < 32 {
            self.low |= 1 << slot;
        } else {
            self.high.push(slot);
        }
    }

    fn len(&self) -> usize {
        self.low.count_ones() as usize + self.high.len()
    }

    fn is_empty(&self) -> bool {
        self.low == 0 && self.high.is_empty()
    }
}

struct Slot<P: Platform> {
    buffer: Option<DmaBuffer<P>>,
    inflight: Option<DeviceOwned<P>>,
    /// The slot's last request (in flight, or the last one filled): its op, whose type
    /// field the slot's header holds (memory starts zeroed: IN, `Req(0)`'s), and its data
    /// bytes. Its sector is in the header (read back for an I/O error). The words here are
    /// the CPU's alone ([`Word32`]: no byte swaps on this route).
    req: Word32,
    token: Word64,
    /// The [`Req`] of the chain last queued at this slot's fixed head (its data length and
    /// direction follow from it): the same again is queued with `add_again` (its
    /// descriptors are in memory already). [`NO_CHAIN`] when none is stored, and always
    /// without fixed heads.
    chain: Word32,
}

/// What [`DiskStats`] reports, kept as cheaply as each is counted: the per-request ones as
/// [`Count64`]; interrupts are the handler's own count; requests are the queue's chains
/// plus those that took a slot and never reached the queue.
#[derive(Default)]
struct Counters {
    unqueued: u64,
    bytes_read: Count64,
    bytes_written: Count64,
    kicks: Count64,
    errors: u64,
    polls: u64,
}

pub struct VirtioBlk<B: Bus + Clone, P: Platform> {
    transport: MmioTransport<B>,
    shared: Arc<IrqShared<B>>,
    // The memory the device can reach (rings, headers, status bytes, the slots' buffers) is
    // freed by `Drop` only once a reset has stopped the device, and leaked otherwise.
    queue: ManuallyDrop<SplitQueue<P>>,
    features: u64,
    config: BlkConfig,
    /// The slots' request blocks, slot s at s * SLOT_STRIDE.
    requests: ManuallyDrop<DmaRegion<P>>,
    /// A [`Table`]: indexing loads no swapped pointer or length.
    slots: ManuallyDrop<Table<Slot<P>>>,
    free: FreeSlots,
    limits: Limits,
    /// Bytes per request at most (a multiple of `block`). The words `submit`'s fast test
    /// reads are [`Word32`]/[`Word64`]s (no byte swaps on this route).
    max_transfer: Word32,
    /// `config.capacity` in sectors, for `submit`'s fast test.
    capacity: Word64,
    opts: OpenOptions,
    waiter: &'static dyn Waiter,
    serial: [u8; 20],
    has_serial: bool,
    stats: Counters,
    /// Tags each synchronous operation's tokens, so that completions of an operation that
    /// gave up (timeout) are never taken for another's.
    generation: u64,
    /// A publish asked for a notification that has not been written yet (see
    /// [`publish`](VirtioBlk::publish)): the next kick writes it whatever its own decision,
    /// since with EVENT_IDX the device asks only once per avail_event.
    notify_owed: bool,
    /// Slot s's chain goes in at descriptor head s ([`SplitQueue::fix_heads`]).
    fixed_heads: bool,
    /// Bit [`Op::bit`] set: the device does the op and this disk takes it (a read-only one
    /// takes no write), from the features at open.
    admit: u8,
    /// The logical block size in bytes: BLK_SIZE's value, else 512 (a power of two:
    /// config.rs), decided at open.
    block: Word32,
}

/// Token layout for the synchronous paths: generation above bit 40, byte offset below.
const GEN_SHIFT: u32 = 40;
const OFFSET_MASK: u64 = (1 << GEN_SHIFT) - 1;

impl<B: Bus + Clone, P: Platform> VirtioBlk<B, P> {
    /// Resets and initialises the device in `info`'s slot (a block device).
    ///
    /// `attach` wires the device's interrupt: it gets the interrupt side and must register
    /// [`IrqShared::handle`] on `info.irq` and enable the line. It runs once the device is
    /// live and before the first request (GET_ID here), whatever the mode, so that no
    /// completion interrupt ever reaches a line without its handler and the mode can be
    /// switched later. An error from it fails the device and the open.
    ///
    /// # Safety
    ///
    /// `info` must describe a virtio-mmio slot that nothing else drives.
    pub unsafe fn open(
        tag: &'static DmaTag<P>,
        bus: B,
        info: DeviceInfo,
        opts: OpenOptions,
        waiter: &'static dyn Waiter,
        attach: impl FnOnce(Arc<IrqShared<B>>) -> Result<(), BlkError>,
    ) -> Result<Self, BlkError> {
        if info.device_id != 2 {
            return Err(BlkError::NoDevice);
        }
        // SAFETY: `open`'s caller vouched that `info` is a probed slot this driver alone
        // drives with `bus`: `MmioTransport::new`'s contract, passed on unchanged.
        let transport = unsafe { MmioTransport::new(bus.clone(), info) }.map_err(BlkError::Init)?;
        // SAFETY: the same slot, for the interrupt side: it touches only InterruptStatus,
        // InterruptACK and Status, registers the transport above does not hold state for.
        let regs = unsafe { MmioTransport::new(bus, info) }.map_err(BlkError::Init)?;
        let mut wanted = feature::all_supported();
        if !opts.event_idx {
            wanted &= !feature::EVENT_IDX;
        }
        if !opts.indirect {
            wanted &= !feature::INDIRECT_DESC;
        }
        let features = transport
            .begin_init(|offered| offered & wanted)
            .map_err(BlkError::Init)?;
        let mut raw = [0u8; offset::LEN];
        transport.read_config(0, &mut raw).map_err(BlkError::Init)?;
        let config = match BlkConfig::parse(&raw, features) {
            Ok(c) => c,
            Err(e) => {
                transport.fail();
                return Err(BlkError::Config(e));
            }
        };
        let max = transport.queue_max(REQUEST_QUEUE).min(256);
        if max == 0 {
            transport.fail();
            return Err(BlkError::Init(mmio::TransportError::QueueUnavailable {
                queue: REQUEST_QUEUE,
            }));
        }
        let size = 1u16 << (15 - max.leading_zeros());
        let mut queue = SplitQueue::new(
            tag,
            ["vblk ring", "vblk used", "vblk indirect"],
            REQUEST_QUEUE,
            size,
            features & feature::EVENT_IDX != 0,
            features & feature::INDIRECT_DESC != 0,
        )?;
        queue.set_used_sync(opts.vq_sync.unwrap_or_default());
        // Request limits: SEG_MAX counts data segments; SIZE_MAX bounds each.
        let seg_max = config.seg_max.unwrap_or(1).min(64) as usize;
        let size_max = config.size_max.unwrap_or(u32::MAX);
        let limits = Limits {
            max_segments: seg_max,
            max_segment_size: size_max,
            boundary: 0,
        };
        let by_limits = u64::from(size_max)
            .saturating_mul(seg_max as u64)
            .min(u64::from(u32::MAX)) as u32;
        // Whole logical blocks per request (BLK_SIZE: 512..64 KiB, a power of two).
        let block = config.blk_size.unwrap_or(SECTOR);
        let max_transfer =
            opts.max_transfer.min(by_limits).min(MAX_REQUEST_BYTES - 1) / block * block;
        if max_transfer == 0 {
            // Not even one logical block fits a request: no read or write could be sent.
            transport.fail();
            return Err(BlkError::TooLarge {
                limit: "max_transfer (bytes)",
                max: opts.max_transfer.min(by_limits).into(),
                asked: block.into(),
            });
        }
        // Without indirect descriptors a request takes 2 + its data segments: the data
        // buffer is one physically contiguous allocation, so only SIZE_MAX splits it.
        let descs_per_request = if features & feature::INDIRECT_DESC != 0 {
            1
        } else {
            let segments = max_transfer.max(SECTOR).div_ceil(size_max.max(1));
            2 + segments.min(seg_max as u32) as u16
        };
        let depth = opts.queue_depth.min(size / descs_per_request).max(1);
        // With indirect tables every request fits one (header, data segments, status):
        // slot s then always uses head s and its table, already in memory when it repeats.
        let most_segments = max_transfer.div_ceil(size_max.max(1)).min(seg_max as u32);
        let fixed_heads = features & feature::INDIRECT_DESC != 0
            && 2 + most_segments as usize <= crate::virtio::queue::MAX_INDIRECT
            && queue.fix_heads();
        // The status byte alone in its line: the CPU never writes that line while the
        // device owns it, and a PREREAD of it discards nothing the CPU wrote elsewhere.
        const _: () = assert!(STATUS_AT >= HEADER_LEN && STATUS_AT < SLOT_STRIDE);
        // A property of the platform, checked when the driver is built for it.
        const {
            assert!(
                P::LINE <= STATUS_AT && SLOT_STRIDE.is_multiple_of(P::LINE),
                "a cache line wider than 16 bytes would put a request's status byte beside its header"
            )
        };
        let requests = tag.alloc(
            "vblk requests",
            u32::from(depth) * SLOT_STRIDE,
            Direction::Bidirectional,
            false,
        )?;
        let mut slots = Vec::with_capacity(depth.into());
        for _ in 0..depth {
            slots.push(Slot {
                buffer: Some(tag.buffer("vblk data", max_transfer.max(SECTOR))?),
                inflight: None,
                req: Word32::new(Req::new(Op::Read, 0).0),
                token: Word64::new(0),
                chain: Word32::new(NO_CHAIN),
            });
        }
        let shared = Arc::new(IrqShared {
            regs,
            pending: AtomicBool::new(false),
            needs_reset: AtomicBool::new(false),
            config_changed: AtomicBool::new(false),
            interrupts: AtomicU32::new(0),
        });
        let (d, a, u) = queue.addresses();
        // SAFETY: the three areas are `queue`'s DMA regions, sized by `SplitQueue::new` for
        // `size` entries (virtio 1.2 2.7). They move into the driver below, whose `Drop`
        // frees them only after a reset took; the one error path in between (attach) resets
        // the device first, and leaks the queue if that fails. Everything else is allocated
        // already, so nothing else can fail in between.
        unsafe { transport.setup_queue(REQUEST_QUEUE, size, d, a, u) }.map_err(BlkError::Init)?;
        transport.driver_ok();
        if let Err(e) = attach(shared.clone()) {
            transport.fail();
            if transport.reset().is_err() {
                core::mem::forget(queue);
            }
            return Err(e);
        }
        let mut blk = VirtioBlk {
            transport,
            shared,
            queue: ManuallyDrop::new(queue),
            features,
            config,
            requests: ManuallyDrop::new(requests),
            slots: ManuallyDrop::new(Table::new(slots)),
            free: FreeSlots::all(depth),
            limits,
            max_transfer: Word32::new(max_transfer),
            capacity: Word64::new(config.capacity),
            opts,
            waiter,
            serial: [0; 20],
            has_serial: false,
            stats: Counters::default(),
            generation: 0,
            notify_owed: false,
            fixed_heads,
            admit: 0,
            block: Word32::new(block),
        };
        for op in Op::ALL {
            if blk.supports(op) && !(op.writes() && blk.read_only()) {
                blk.admit |= op.bit();
            }
        }
        blk.set_mode(opts.mode)?;
        // GET_ID is optional (no feature bit guards it): a device without serial support
        // answers UNSUPP, and some answer IOERR (a read-only backend). That costs the serial,
        // not the disk; anything else (broken ring, timeout) still fails the open.
        match blk.get_id() {
            Ok(id) => {
                blk.serial = id;
                blk.has_serial = true;
            }
            Err(BlkError::Unsupported | BlkError::Io { .. }) => {}
            Err(e) => return Err(e),
        }
        Ok(blk)
    }

    /// The interrupt side, for the kernel to register on the disk's line.
    pub fn irq_shared(&self) -> Arc<IrqShared<B>> {
        self.shared.clone()
    }
    pub fn info(&self) -> DeviceInfo {
        self.transport.info()
    }
    pub fn features(&self) -> u64 {
        self.features
    }
    pub fn config(&self) -> &BlkConfig {
        &self.config
    }
    pub fn serial(&self) -> &[u8] {
        let end = self
            .serial
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(self.serial.len());
        &self.serial[..end]
    }
    pub fn mode(&self) -> CompletionMode {
        self.opts.mode
    }
    pub fn queue_depth(&self) -> usize {
        self.slots.len()
    }
    pub fn max_transfer(&self) -> u32 {
        self.max_transfer.get()
    }
    /// The used ring's read-phase syncs from now on (see [`UsedSync`]).
    pub fn set_vq_sync(&mut self, s: UsedSync) {
        self.queue.set_used_sync(s);
    }

    /// One completion check outside [`wait`](Self::wait), as an early poll or an interrupt
    /// on a shared line makes: a read phase of used->idx. True when completions wait.
    pub fn poll_used(&mut self) -> Result<bool, BlkError> {
        Ok(self.queue.has_used()?)
    }

    /// Completions in memory the driver has not taken (see
    /// [`SplitQueue::unseen_completions`]).
    pub fn unseen_completions(&self) -> u16 {
        self.queue.unseen_completions()
    }

    pub fn queue_stats(&self) -> crate::virtio::queue::QueueStats {
        self.queue.stats()
    }

    /// Sets how long a wait for a completion may take.
    pub fn set_timeout(&mut self, timeout_ns: u64) {
        self.opts.timeout_ns = timeout_ns;
    }

    /// Switches completion mode; no request may be in flight.
    pub fn set_mode(&mut self, mode: CompletionMode) -> Result<(), BlkError> {
        self.opts.mode = mode;
        match mode {
            CompletionMode::Polled => self.queue.disable_interrupts()?,
            CompletionMode::Interrupt => {
                // `wait` arms again before it sleeps.
                self.queue.arm_interrupt()?;
            }
        }
        Ok(())
    }

    fn supports(&self, op: Op) -> bool {
        match op {
            Op::Flush => self.features & feature::FLUSH != 0,
            Op::Discard => self.features & feature::DISCARD != 0,
            Op::WriteZeroes => self.features & feature::WRITE_ZEROES != 0,
            _ => true,
        }
    }

    /// Why [`submit`](Self::submit) cannot queue `op` (its fast test failed), or Ok for a
    /// discard / write-zeroes within its limits. Every check in full, each with its error.
    #[cold]
    #[inline(never)]
    fn refusal(&self, op: Op, sector: u64, len: u32) -> Result<(), BlkError> {
        if self.queue.broken().is_some() || self.shared.needs_reset.load(Ordering::Relaxed) {
            return Err(self
                .queue
                .broken()
                .map_or(BlkError::NeedsReset, BlkError::Broken));
        }
        if !self.supports(op) {
            return Err(BlkError::Unsupported);
        }
        if op.writes() && self.read_only() {
            return Err(BlkError::ReadOnly);
        }
        if !matches!(op, Op::Flush | Op::GetId) {
            // Every request with a range (for discard and write-zeroes `len` is its size in
            // bytes too) lies on the disk and on whole logical blocks.
            check_range(
                sector,
                len as usize,
                self.config.capacity,
                self.block_size(),
            )?;
        }
        if matches!(op, Op::Discard | Op::WriteZeroes) {
            let (name, max) = self.range_limit(op);
            if len / SECTOR > max {
                return Err(BlkError::TooLarge {
                    limit: name,
                    max: max.into(),
                    asked: (len / SECTOR).into(),
                });
            }
        }
        if matches!(op, Op::Read | Op::Write) && len > self.max_transfer.get() {
            return Err(BlkError::TooLarge {
                limit: "max_transfer (bytes)",
                max: self.max_transfer.get().into(),
                asked: len.into(),
            });
        }
        Ok(())
    }

    /// Queues one request (not yet visible to the device: see [`kick`](Self::kick)).
    /// `fill` writes a write's data into the request's buffer. Returns the slot.
    pub fn submit(
        &mut self,
        op: Op,
        sector: u64,
        len: u32,
        token: u64,
        fill: impl FnOnce(&mut [u8]),
    ) -> Result<u16, BlkError> {
        // The common case in a few loads: the device usable, the op admitted (bits decided at
        // open), a read or write's range inside the disk on whole blocks and within
        // max_transfer. Anything else takes `refusal`, which names the reason (or admits a
        // discard / write-zeroes after its own limit).
        let usable = self.queue.broken().is_none()
            && !self.shared.needs_reset.load(Ordering::Relaxed)
            && self.admit & op.bit() != 0;
        let fast = usable
            && match op {
                Op::Read | Op::Write => {
                    let block = self.block.get();
                    len != 0
                        && len <= self.max_transfer.get()
                        && len & (block - 1) == 0
                        && (sector as u32) & (block / SECTOR - 1) == 0
                        && sector
                            .checked_add(u64::from(len / SECTOR))
                            .is_some_and(|end| end <= self.capacity.get())
                }
                Op::Flush | Op::GetId => true,
                Op::Discard | Op::WriteZeroes => false,
            };
        if !fast {
            self.refusal(op, sector, len)?;
        }
        let slot =
            self.free
                .take()
                .ok_or(BlkError::Queue(crate::virtio::queue::QueueError::Full {
                    needed: 1,
                    free: 0,
                }))?;
        let result = self.fill_slot(slot, op, sector, len, token, fill);
        if result.is_err() {
            self.release_unsubmitted(slot);
            self.stats.unqueued += 1;
        }
        result
    }

    /// [`submit`](Self::submit)'s work on the slot it took: header, status, data and the
    /// chain. A method of its own, not a closure: a closure's captures live in linear memory
    /// on this route, and every use of one is a load.
    fn fill_slot(
        &mut self,
        slot: u16,
        op: Op,
        sector: u64,
        len: u32,
        token: u64,
        fill: impl FnOnce(&mut [u8]),
    ) -> Result<u16, BlkError> {
        let s = u32::from(slot);
        let at = s * SLOT_STRIDE;
        // Disjoint fields, borrowed once: each `self.` path is a load on this route.
        let requests = self.requests.view();
        let entry = &mut self.slots[slot as usize];
        let data_len = match op {
            Op::Read | Op::Write => len,
            Op::GetId => VIRTIO_BLK_ID_BYTES,
            Op::Flush => 0,
            // One discard / write-zeroes segment.
            Op::Discard | Op::WriteZeroes => SEGMENT_LEN,
        };
        let req = Req::new(op, data_len);
        // Header: written by the CPU field by field (5.2.6), read by the device. Its type
        // and reserved words hold the slot's last request's (`entry.req`'s op: zero memory
        // is an IN header); only what differs is stored.
        const _: () =
            assert!(HEADER_TYPE_AT == 0 && HEADER_RESERVED_AT == 4 && HEADER_SECTOR_AT == 8);
        let last = Req(entry.req.get());
        if last.op() == op {
            requests.write_u32s_le(at + 8, [sector as u32, (sector >> 32) as u32]);
        } else {
            requests.write_u32s_le(at, [op.kind(), 0, sector as u32, (sector >> 32) as u32]);
        }
        // From here the slot's request (what reap reads, what the header's type holds).
        if last != req {
            entry.req = Word32::new(req.0);
        }
        // Status: a sentinel the device must overwrite.
        requests.write_u8(at + STATUS_AT, S_UNWRITTEN);
        // One sync over both lines: PREWRITE pushes the header (the device reads it) and
        // the status line with its sentinel; PREREAD makes the status line the device's
        // (pushed, not discarded: PREWRITE is asked too).
        crate::sync_site!(
            "blk.request.pre",
            requests.sync(SyncOps::PREWRITE | SyncOps::PREREAD, at, SLOT_STRIDE)
        )?;
        if requests.region().tag().watched() {
            requests.region().device_start_transfer(at, HEADER_LEN);
            requests.region().device_start_writing(at + STATUS_AT, 1);
        }
        let mut buf = entry.buffer.take().expect("a free slot holds its buffer");
        match op {
            Op::Write => fill(&mut buf.as_mut_slice()[..len as usize]),
            Op::Discard | Op::WriteZeroes => {
                let flags = if op == Op::WriteZeroes {
                    req::VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP
                } else {
                    0
                };
                buf.as_mut_slice()[..SEGMENT_LEN as usize].copy_from_slice(&segment_bytes(
                    sector,
                    len / SECTOR,
                    flags,
                ));
            }
            _ => {}
        }
        let dir = op.direction();
        // The chain is the slot's header, its data's segments (a function of the length
        // and direction: one allocation per slot) and its status. The same again (the chain
        // stored at the slot's fixed head) repeats the buffer's last transfer too: a chain
        // is stored only after its transfer was handed over, and a transfer that is not
        // followed by its chain leaves the slot with none (`NO_CHAIN` below).
        // (Without fixed heads `chain` stays NO_CHAIN: no repeat is ever found.)
        let again = entry.chain == Word32::new(req.0);
        let owned = if data_len > 0 {
            // Data: PREWRITE (write) or PREREAD (read) inside the hand-over.
            let given = if again {
                buf.give_again()
            } else {
                buf.give_to_device(dir, data_len, &self.limits)
            };
            let owned = given.map_err(|(b, e)| {
                entry.buffer = Some(b);
                BlkError::Dma(e)
            })?;
            Some(owned)
        } else {
            entry.buffer = Some(buf);
            None
        };
        entry.token = Word64::new(token);
        if again {
            entry.inflight = owned;
            // SAFETY: the chain last added at this slot's head: this slot's header and
            // status and its data buffer's segments for the same length, each synced for
            // the device above and untouched by the CPU until `reap` pops the chain or the
            // device is reset (`Drop` resets it before the regions go).
            unsafe { self.queue.add_again(slot, s)? };
            return Ok(slot);
        }
        let mut bufs = BufList::new();
        bufs.push(Buffer {
            addr: self.requests.phys() + at,
            len: HEADER_LEN,
            device_writes: false,
        });
        if let Some(owned) = &owned {
            for seg in owned.segments() {
                bufs.push(Buffer {
                    addr: seg.addr,
                    len: seg.len,
                    device_writes: dir == Direction::FromDevice,
                });
            }
        }
        bufs.push(Buffer {
            addr: self.requests.phys() + at + STATUS_AT,
            len: 1,
            device_writes: true,
        });
        entry.inflight = owned;
        entry.chain = Word32::new(NO_CHAIN);
        // SAFETY: the chain is this slot's header and status (its request block, a region
        // the driver owns, synced PREWRITE|PREREAD above, the status read only after the
        // block's POST sync at completion) and the data segments of `owned`, given to the
        // device by `give_to_device` and kept in the slot until `reap` pops this chain or
        // the device is reset (`Drop` resets it before the regions go): the CPU touches
        // none of them meanwhile.
        unsafe {
            if self.fixed_heads {
                self.queue.add_at(slot, bufs.as_slice(), s)?;
                self.slots[slot as usize].chain = Word32::new(req.0);
            } else {
                self.queue.add(bufs.as_slice(), s)?;
            }
        }
        Ok(slot)
    }

    /// Puts a slot whose request never reached the queue back in the pool.
    fn release_unsubmitted(&mut self, slot: u16) {
        let entry = &mut self.slots[slot as usize];
        if let Some(owned) = entry.inflight.take() {
            // SAFETY: the chain never reached the queue (`add` failed or was not called), so
            // the device has no descriptor for the buffer.
            entry.buffer = Some(unsafe { owned.take_back() });
        }
        if entry.buffer.is_some() {
            self.free.put(slot);
        }
    }

    /// Makes the queued requests visible and notifies the device if it wants it.
    pub fn kick(&mut self) -> Result<(), BlkError> {
        // This publish's decision, or one an earlier `publish` left owed.
        if self.queue.publish()? || self.notify_owed {
            // A constant: no conversion of the index per notification.
            self.transport.notify(REQUEST_QUEUE);
            // A store, not a test and a store: whatever was owed is written now.
            self.notify_owed = false;
            self.stats.kicks.add(1);
        }
        Ok(())
    }

    /// Makes the queued requests visible without notifying the device; the notification it
    /// asks for is owed and written by the next [`kick`](Self::kick). An idle device does not
    /// look at the ring unnotified, so such a request cannot complete until then (a test
    /// uses this for a timeout that does not depend on the device's speed).
    pub fn publish(&mut self) -> Result<(), BlkError> {
        if self.queue.publish()? {
            self.notify_owed = true;
        }
        Ok(())
    }

    pub fn in_flight(&self) -> usize {
        self.slots.len() - self.free.len()
    }
    pub fn free_slots(&self) -> usize {
        self.free.len()
    }

    /// Waits (bounded) until at least one completion can be reaped.
    pub fn wait(&mut self) -> Result<(), BlkError> {
        let start = self.waiter.now_ns();
        let timeout = self.opts.timeout_ns;
        let shared = self.shared.clone();
        let queue = &mut self.queue;
        let mut failure = None;
        let mut polls = 0u64;
        let met = match self.opts.mode {
            CompletionMode::Polled => self.waiter.spin_until(
                &mut || {
                    polls += 1;
                    match queue.has_used() {
                        Ok(true) => true,
                        Ok(false) if shared.regs.needs_reset() => {
                            shared.needs_reset.store(true, Ordering::Relaxed);
                            true
                        }
                        Ok(false) => false,
                        Err(e) => {
                            failure = Some(BlkError::from(e));
                            true
                        }
                    }
                },
                timeout,
            ),
            CompletionMode::Interrupt => {
                match wait_for_interrupt(
                    queue,
                    &shared.pending,
                    &shared.needs_reset,
                    self.waiter,
                    timeout,
                ) {
                    Ok(met) => met,
                    Err(e) => {
                        failure = Some(BlkError::from(e));
                        true
                    }
                }
            }
        };
        self.stats.polls += polls;
        if let Some(e) = failure {
            self.stats.errors += 1;
            return Err(e);
        }
        if self.shared.needs_reset.load(Ordering::Relaxed) {
            self.stats.errors += 1;
            return Err(BlkError::NeedsReset);
        }
        if !met {
            self.stats.errors += 1;
            return Err(BlkError::Timeout {
                waited_us: (self.waiter.now_ns() - start) / 1000,
            });
        }
        Ok(())
    }

    /// Takes the completions the last used->idx read announced ([`wait`](Self::wait) reads
    /// it), reading it once if that announced none: `done(token, op, result)` gets a read's
    /// data as a slice. Completions the device publishes meanwhile are the next call's (the
    /// next `wait` returns at once for them): one read phase of idx per batch, not two.
    pub fn reap(
        &mut self,
        mut done: impl FnMut(u64, Op, Result<&[u8], BlkError>),
    ) -> Result<usize, BlkError> {
        let mut n = 0;
        let mut next = self.queue.pop_used()?;
        while let Some((slot, written)) = next {
            // Asked right after the pop, whose indices the compiler still has (later, after
            // the stores below, they would be loaded again).
            let more = self.queue.seen_pending() > 0;
            let at = slot * SLOT_STRIDE;
            // Disjoint fields, borrowed once: each `self.` path is a load on this route.
            let requests = self.requests.view();
            // The device has read the header and written the status: one POST sync over
            // both lines, then the status is read. The range is the slot's, which its PRE
            // sync at submit admitted (the status read below is bounds-checked again).
            crate::sync_site!(
                "blk.request.post",
                requests.sync_admitted(SyncOps::POSTWRITE | SyncOps::POSTREAD, at, SLOT_STRIDE)
            )?;
            let status = requests.read_u8(at + STATUS_AT);
            let entry = &mut self.slots[slot as usize];
            // Data: POSTREAD/POSTWRITE inside take_back.
            let buf = match entry.inflight.take() {
                // SAFETY: `pop_used` returned this slot's chain: the device is done with it.
                Some(owned) => unsafe { owned.take_back() },
                None => entry.buffer.take().expect("a slot owns its buffer"),
            };
            let (req, token) = (Req(entry.req.get()), entry.token.get());
            let (op, len) = (req.op(), req.len());
            // A read's used length counts its data and the status byte. A modern device
            // must report it exactly (virtio 1.2, 2.7.8); the driver must not use bytes past
            // it. A disk read reported short fails (its data is not the device's word); a
            // short GET_ID keeps what was reported; other requests write only the status
            // byte, so their length says nothing the status does not.
            let data_written = written.saturating_sub(1);
            let result = match status {
                VIRTIO_BLK_S_OK if op == Op::Read && data_written < len => {
                    Err(BlkError::ShortTransfer {
                        expected: len,
                        got: data_written,
                    })
                }
                VIRTIO_BLK_S_OK => Ok(()),
                VIRTIO_BLK_S_IOERR => Err(BlkError::Io {
                    // The header the device read (POSTWRITE above): the CPU's own words.
                    sector: requests.region().read_u64_le(at + HEADER_SECTOR_AT),
                }),
                VIRTIO_BLK_S_UNSUPP => Err(BlkError::Unsupported),
                other => Err(BlkError::BadStatus { status: other }),
            };
            match result {
                Ok(()) => {
                    match op {
                        Op::Read => self.stats.bytes_read.add(len),
                        Op::Write => self.stats.bytes_written.add(len),
                        _ => {}
                    }
                    let data_len = match op {
                        Op::Read => len as usize,
                        Op::GetId => data_written.min(len) as usize,
                        _ => 0,
                    };
                    done(token, op, Ok(&buf.as_slice()[..data_len]));
                }
                Err(e) => {
                    self.stats.errors += 1;
                    done(token, op, Err(e));
                }
            }
            // The slot indexed once (`entry`, a borrow of `slots` alone): each indexing is
            // the table's pointer, length and a bounds check.
            entry.buffer = Some(buf);
            self.free.put(slot as u16);
            n += 1;
            next = if more {
                self.queue.pop_seen()?
            } else {
                // The batch is taken: what a pop finding none would do, without the call.
                self.queue.settle_used_event()?;
                None
            };
        }
        Ok(n)
    }

    /// One request, start to finish.
    fn run_one(
        &mut self,
        op: Op,
        sector: u64,
        len: u32,
        fill: impl FnOnce(&mut [u8]),
        mut out: impl FnMut(&[u8]),
    ) -> Result<(), BlkError> {
        self.generation += 1;
        let me = self.generation << GEN_SHIFT;
        self.submit(op, sector, len, me, fill)?;
        self.kick()?;
        let mut result = None;
        while result.is_none() {
            self.wait()?;
            self.reap(|token, _, r| {
                if token == me {
                    result = Some(r.map(&mut out));
                }
            })?;
        }
        result.expect("loop ends when set")
    }

    /// The logical block size in bytes: BLK_SIZE's value, else 512. Every request starts
    /// and ends on one (a device fails a request that does not, with IOERR).
    pub fn block_size(&self) -> u32 {
        self.block.get()
    }

    /// The per-request sector limit of a discard or write-zeroes (its config field's name
    /// and value), also bounded so that the range's size in bytes fits a request's u32.
    fn range_limit(&self, op: Op) -> (&'static str, u32) {
        let (name, limit) = match op {
            Op::Discard => ("max_discard_sectors", self.config.max_discard_sectors),
            _ => (
                "max_write_zeroes_sectors",
                self.config.max_write_zeroes_sectors,
            ),
        };
        (name, limit.unwrap_or(0).min(u32::MAX / SECTOR))
    }

    /// A discard or write-zeroes of any size: checked whole against the disk, then split
    /// into requests of at most the device's per-request limit, one after the other.
    fn range_op(&mut self, op: Op, sector: u64, sectors: u64) -> Result<(), BlkError> {
        if !self.supports(op) {
            return Err(BlkError::Unsupported);
        }
        if self.read_only() {
            return Err(BlkError::ReadOnly);
        }
        let block = self.block_size();
        let per_block = u64::from(block / SECTOR);
        if sectors == 0 {
            return Err(BlkError::Empty);
        }
        if !sector.is_multiple_of(per_block) || !sectors.is_multiple_of(per_block) {
            return Err(BlkError::Unaligned {
                sector,
                len: sectors.saturating_mul(SECTOR.into()) as usize,
                block,
            });
        }
        match sector.checked_add(sectors) {
            Some(end) if end <= self.config.capacity => {}
            _ => {
                return Err(BlkError::OutOfRange {
                    sector,
                    sectors,
                    capacity: self.config.capacity,
                })
            }
        }
        let (name, max) = self.range_limit(op);
        // Each piece a whole number of logical blocks; a limit below one block leaves the
        // device unable to take any request of this kind.
        let step = u64::from(max) / per_block * per_block;
        if step == 0 {
            return Err(BlkError::TooLarge {
                limit: name,
                max: max.into(),
                asked: per_block,
            });
        }
        let mut done = 0u64;
        while done < sectors {
            let n = (sectors - done).min(step) as u32;
            self.run_one(op, sector + done, n * SECTOR, |_| {}, |_| {})?;
            done += u64::from(n);
        }
        Ok(())
    }

    /// Discards `sectors` sectors from `sector` (contents afterwards unspecified), in as many
    /// requests as max_discard_sectors needs.
    pub fn discard(&mut self, sector: u64, sectors: u32) -> Result<(), BlkError> {
        self.range_op(Op::Discard, sector, sectors.into())
    }

    /// Makes `sectors` sectors from `sector` read as zeros, in as many requests as
    /// max_write_zeroes_sectors needs.
    pub fn write_zeroes(&mut self, sector: u64, sectors: u32) -> Result<(), BlkError> {
        self.range_op(Op::WriteZeroes, sector, sectors.into())
    }

    /// The device's serial (GET_ID), up to 20 bytes; a device that reports writing fewer
    /// leaves the rest zero (it is not the device's word).
    pub fn get_id(&mut self) -> Result<[u8; 20], BlkError> {
        let mut id = [0u8; 20];
        self.run_one(
            Op::GetId,
            0,
            VIRTIO_BLK_ID_BYTES,
            |_| {},
            |d| id[..d.len()].copy_from_slice(d),
        )?;
        Ok(id)
    }

    /// Whether the device answered GET_ID (false: it has no serial to give).
    pub fn has_serial(&self) -> bool {
        self.has_serial
    }

    /// Reads or writes `buf` in requests of at most `max_transfer`, as many in flight as
    /// the pool allows.
    fn transfer(
        &mut self,
        op: Op,
        sector: u64,
        read_into: Option<&mut [u8]>,
        write_from: Option<&[u8]>,
    ) -> Result<(), BlkError> {
        let len = read_into
            .as_ref()
            .map(|b| b.len())
            .or(write_from.map(|b| b.len()))
            .unwrap_or(0);
        check_range(sector, len, self.config.capacity, self.block_size())?;
        let chunk = self.max_transfer.get() as usize;
        self.generation += 1;
        let gen = self.generation << GEN_SHIFT;
        let mut next = 0usize;
        let mut outstanding = 0usize;
        let mut first_error = None;
        let mut read_into = read_into;
        while next < len || outstanding > 0 {
            while next < len && !self.free.is_empty() && first_error.is_none() {
                let n = chunk.min(len - next);
                let s = sector + (next / SECTOR as usize) as u64;
                let src = write_from.map(|w| &w[next..next + n]);
                self.submit(op, s, n as u32, gen | next as u64, |dst| {
                    if let Some(src) = src {
                        dst.copy_from_slice(src);
                    }
                })?;
                next += n;
                outstanding += 1;
            }
            self.kick()?;
            if outstanding == 0 {
                break;
            }
            self.wait()?;
            let dst = &mut read_into;
            let mut mine = 0;
            self.reap(|token, _, r| {
                // A completion of an earlier operation that gave up is not ours.
                if token & !OFFSET_MASK != gen {
                    return;
                }
                mine += 1;
                match r {
                    Ok(data) => {
                        if let Some(dst) = dst.as_mut() {
                            let at = (token & OFFSET_MASK) as usize;
                            dst[at..at + data.len()].copy_from_slice(data);
                        }
                    }
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
            })?;
            outstanding -= mine;
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// The interrupt-mode wait: true once completions are waiting (or the device asked for a
/// reset), false when `timeout` has passed with the used ring still empty. Each turn re-arms
/// and then re-checks the used ring (a completion that landed before the re-arm took effect
/// raises no interrupt; the ack may have swallowed it too), and the re-check also runs after
/// the deadline: an interrupt that never arrives (lost, or its line not serviced) costs the
/// wait its timeout but does not turn a completed request into a timeout.
fn wait_for_interrupt<P: Platform>(
    queue: &mut SplitQueue<P>,
    pending: &AtomicBool,
    needs_reset: &AtomicBool,
    waiter: &dyn Waiter,
    timeout: u64,
) -> Result<bool, QueueError> {
    let start = waiter.now_ns();
    loop {
        // Armed here, before each sleep, not after each batch reaped: a completion found
        // without sleeping raises no interrupt, and the store lands while the device works.
        if needs_reset.load(Ordering::Relaxed) || queue.arm_interrupt()? {
            return Ok(true);
        }
        let waited = waiter.now_ns().saturating_sub(start);
        if waited >= timeout {
            return Ok(false);
        }
        // Woken by this device's interrupt or at the deadline; either way, round again.
        waiter.sleep_until(
            &mut || pending.swap(false, Ordering::Relaxed),
            timeout - waited,
        );
    }
}

impl<B: Bus + Clone, P: Platform> BlockDevice for VirtioBlk<B, P> {
    fn capacity(&self) -> u64 {
        self.config.capacity
    }
    fn read_only(&self) -> bool {
        self.features & feature::RO != 0
    }
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), BlkError> {
        self.transfer(Op::Read, sector, Some(buf), None)
    }
    fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), BlkError> {
        if self.read_only() {
            return Err(BlkError::ReadOnly);
        }
        self.transfer(Op::Write, sector, None, Some(buf))
    }
    fn flush(&mut self) -> Result<(), BlkError> {
        if !self.supports(Op::Flush) {
            // No FLUSH feature: the device has no volatile write cache to flush.
            return Ok(());
        }
        self.run_one(Op::Flush, 0, 0, |_| {}, |_| {})
    }
    fn stats(&self) -> DiskStats {
        let c = &self.stats;
        DiskStats {
            // Every request that took a slot: queued (one chain each) or not.
            requests: self.queue.chains_total() + c.unqueued,
            bytes_read: c.bytes_read.get(),
            bytes_written: c.bytes_written.get(),
            errors: c.errors,
            interrupts: u64::from(self.shared.interrupts.load(Ordering::Relaxed)),
            polls: c.polls,
            kicks: c.kicks.get(),
        }
    }
}

impl<B: Bus + Clone, P: Platform> Drop for VirtioBlk<B, P> {
    fn drop(&mut self) {
        if self.transport.reset().is_err() {
            // The device did not stop: it may still read or write every ring, header, status
            // byte and in-flight buffer. Leaked, they can never be reused under it.
            return;
        }
        // Buffers of requests still in flight (a timeout) are the device's no more.
        for slot in self.slots.iter_mut() {
            if let Some(owned) = slot.inflight.take() {
                // SAFETY: the reset completed: the device no longer touches the queue or any
                // buffer it points to (virtio 1.2 2.4.1).
                slot.buffer = Some(unsafe { owned.take_back() });
            }
        }
        // SAFETY: each field is dropped once, here, and never used again (`self` is being
        // dropped); the reset completed, so the device no longer touches any of them
        // (virtio 1.2 2.4.1).
        unsafe {
            ManuallyDrop::drop(&mut self.slots);
            ManuallyDrop::drop(&mut self.requests);
            ManuallyDrop::drop(&mut self.queue);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dma::sim::SimCache;
    use crate::dma::sim::{tag, SimPlatform};
    use crate::dma::PostRead;
    use crate::virtio::sim::SimDevice;
    use core::sync::atomic::AtomicU64;

    /// A clock that moves only when the driver sleeps, and a device that completes the
    /// request during the first sleep without its interrupt ever arriving (`pending` is never
    /// set): the interrupt is lost.
    struct LostInterrupt {
        now: AtomicU64,
        sleeps: AtomicU32,
        /// Where the device writes: the used ring's memory, the element's offset, the head.
        used: usize,
        elem_off: u32,
        head: u32,
    }

    impl LostInterrupt {
        fn device_write(&self, off: u32, bytes: &[u8]) {
            for (i, &b) in bytes.iter().enumerate() {
                // SAFETY: offsets inside the used ring region, which outlives the test.
                unsafe { core::ptr::write_volatile((self.used + off as usize + i) as *mut u8, b) };
            }
        }
    }

    impl Waiter for LostInterrupt {
        fn now_ns(&self) -> u64 {
            self.now.load(Ordering::Relaxed)
        }
        fn sleep_until(&self, cond: &mut dyn FnMut() -> bool, timeout_ns: u64) -> bool {
            if self.sleeps.fetch_add(1, Ordering::Relaxed) == 0 {
                // The device completes the request (element, then idx) straight to memory.
                self.device_write(self.elem_off, &self.head.to_le_bytes());
                self.device_write(self.elem_off + 4, &1u32.to_le_bytes());
                self.device_write(2, &1u16.to_le_bytes());
            }
            self.now.fetch_add(timeout_ns, Ordering::Relaxed);
            cond()
        }
        fn spin_until(&self, _: &mut dyn FnMut() -> bool, _: u64) -> bool {
            unreachable!("interrupt mode sleeps")
        }
    }

    fn queue_with_one_request() -> (SplitQueue<SimPlatform>, SimDevice, u16) {
        let tag = tag();
        tag.set_audit(true, None);
        tag.set_model(Some(SimCache::Copyback), PostRead::NoOp);
        let mut q =
            SplitQueue::new(tag, ["ring", "used", "indirect"], 0, 8, false, false).expect("queue");
        let bufs = [Buffer {
            addr: 0x10_0000,
            len: 1,
            device_writes: true,
        }];
        // SAFETY: the simulated device here only reads the rings; 0x10_0000 is never touched.
        unsafe { q.add(&bufs, 7) }.expect("room");
        q.publish().expect("publish");
        let mut dev = SimDevice::default();
        let chains = dev.fetch(&q, tag.platform());
        let head = chains[0].head;
        (q, dev, head)
    }

    fn waiter_for(q: &SplitQueue<SimPlatform>, head: u16) -> LostInterrupt {
        let (_, used, _) = q.regions();
        LostInterrupt {
            now: AtomicU64::new(1_000),
            sleeps: AtomicU32::new(0),
            used: used.raw_pointer() as usize,
            elem_off: q.used_elem_off(0),
            head: head.into(),
        }
    }

    #[test]
    fn free_slots_hand_out_each_free_slot_once_as_a_set_would() {
        use std::collections::BTreeSet;
        for depth in [1u16, 2, 31, 32, 33, 64, 100] {
            let mut free = FreeSlots::all(depth);
            let mut model: BTreeSet<u16> = (0..depth).collect();
            let mut taken = Vec::new();
            // A fixed pseudo-random walk of takes and returns (xorshift), ending empty.
            let mut x = 0x9e37_79b9u32 ^ u32::from(depth);
            for _ in 0..2000 {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                assert_eq!(free.len(), model.len(), "depth {depth}");
                assert_eq!(free.is_empty(), model.is_empty(), "depth {depth}");
                if !x.is_multiple_of(3) || taken.is_empty() {
                    match free.take() {
                        Some(s) => {
                            assert!(model.remove(&s), "depth {depth}: slot {s} was not free");
                            taken.push(s);
                        }
                        None => assert!(model.is_empty(), "depth {depth}: none while free"),
                    }
                } else {
                    let s = taken.swap_remove(x as usize % taken.len());
                    free.put(s);
                    model.insert(s);
                }
            }
            while let Some(s) = free.take() {
                assert!(model.remove(&s), "depth {depth}: slot {s} was not free");
            }
            assert!(
                model.is_empty(),
                "depth {depth}: {model:?} never handed out"
            );
        }
    }

    #[test]
    fn a_request_word_gives_back_its_op_and_length_and_is_never_no_chain() {
        let lens = [0, 1, 16, 20, 512, 4096, 65536, MAX_REQUEST_BYTES - 1];
        let mut seen = std::collections::BTreeSet::new();
        for op in Op::ALL {
            for len in lens {
                let r = Req::new(op, len);
                assert_eq!((r.op(), r.len()), (op, len));
                assert_ne!(r.0, NO_CHAIN, "{op:?} {len}");
                assert!(seen.insert(r.0), "{op:?} {len} packs like another");
            }
        }
        // A fresh slot's word: a read of nothing, whose header type (IN) zeroed memory holds.
        assert_eq!(Req(0).op().kind(), req::VIRTIO_BLK_T_IN);
    }

    #[test]
    fn a_completion_whose_interrupt_is_lost_is_found_at_the_deadline() {
        let (mut q, _dev, head) = queue_with_one_request();
        let waiter = waiter_for(&q, head);
        let (pending, needs_reset) = (AtomicBool::new(false), AtomicBool::new(false));
        let met = wait_for_interrupt(&mut q, &pending, &needs_reset, &waiter, 5_000);
        assert_eq!(met, Ok(true), "the deadline re-check found the completion");
        assert_eq!(
            waiter.sleeps.load(Ordering::Relaxed),
            1,
            "slept to the deadline"
        );
        assert_eq!(q.pop_used(), Ok(Some((7, 1))));
    }

    #[test]
    fn an_empty_used_ring_at_the_deadline_is_a_timeout() {
        let (mut q, _dev, head) = queue_with_one_request();
        let waiter = waiter_for(&q, head);
        // The device never completes: its first sleep is spent already.
        waiter.sleeps.store(1, Ordering::Relaxed);
        let (pending, needs_reset) = (AtomicBool::new(false), AtomicBool::new(false));
        let met = wait_for_interrupt(&mut q, &pending, &needs_reset, &waiter, 5_000);
        assert_eq!(met, Ok(false));
        assert_eq!(
            waiter.now_ns(),
            6_000,
            "gave up at the deadline, not before"
        );
    }
}
