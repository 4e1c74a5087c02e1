//! The split virtqueue, with every ring access under bus_dma's rules and nothing trusted from
//! the device.
//!
//! Memory: one region the device reads (descriptor table, then the avail ring with
//! `used_event` at its end), one it writes (the used ring with `avail_event` at its end), and
//! optionally one of indirect descriptor tables. The free list and the chains in flight are
//! kept on the CPU side: the driver never reads back what it gave the device.
//!
//! Sync points (each names the rule that requires it):
//! - before publishing: PREWRITE of the descriptors and avail entries written (the device
//!   may read them as soon as it sees the new idx);
//! - after storing avail->idx: PREWRITE of idx, before deciding whether to notify (the device
//!   must see it no later than the notification, and the decision reads what the device wrote
//!   after seeing it);
//! - every read of the used ring (flags or avail_event at publish, idx at completion, each
//!   element, each poll, each interrupt) is its own read phase: PREREAD then POSTREAD, then
//!   the read. POSTREAD alone does not refresh a line on the 68k (docs/dma-sync.md);
//! - used_event and avail->flags written by the driver: PREWRITE.
//!
//! Device values are validated: a used id that is not a chain head in flight, a length beyond
//! the chain's writable bytes, or a used idx that moves by more than the queue size mark the
//! queue broken with the reason; every later call returns that error.

use super::mmio::need_event;
use crate::dma::{Direction, DmaError, DmaRegion, DmaTag, Platform, SyncOps, View};
use crate::word::{Count32, Table};
use alloc::vec::Vec;
use core::fmt;

const DESC_SIZE: u32 = 16;
const DESC_F_NEXT: u16 = 1;
const DESC_F_WRITE: u16 = 2;
const DESC_F_INDIRECT: u16 = 4;
/// avail->flags: the driver does not want interrupts (a hint).
pub const AVAIL_F_NO_INTERRUPT: u16 = 1;
/// used->flags: the device does not want notifications (a hint).
pub const USED_F_NO_NOTIFY: u16 = 1;
/// Buffers per indirect table.
pub const MAX_INDIRECT: usize = 16;

/// A descriptor shadow that matches no descriptor this queue writes (its flags word has bits
/// virtio 1.2 leaves reserved), so the next one is stored and pushed.
const UNKNOWN_DESC: [u32; 4] = [0, 0, 0, u32::MAX];

/// How the driver syncs the used ring around its reads (kernel option `vq_sync`).
///
/// The used ring is written by the device and read by the driver at several moments: the
/// notification decision at publish (used->flags, or avail_event with EVENT_IDX), every
/// completion check (used->idx, then the elements), every poll, every interrupt. On a cache
/// whose POSTREAD does nothing (NetBSD and Linux on m68k invalidate at PREREAD only), a line
/// the CPU read in one of those moments is returned again in the next unless a PREREAD
/// between them discarded it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UsedSync {
    /// Each read phase opens with its own PREREAD, then POSTREAD, then the read: the answer
    /// of NetBSD PR kern/60144 (docs/dma-sync.md).
    #[default]
    Corrected,
    /// What NetBSD's virtio(4) did before that fix, in its functions' order: the whole used
    /// ring gets PREREAD once at setup; `virtio_enqueue_commit` syncs it PREREAD, stores
    /// avail->idx, then POSTREAD and reads the flags (or avail_event); the completion side
    /// (`virtio_vq_intr`, the polled dequeues) syncs it POSTREAD and reads idx and the
    /// elements with no PREREAD since the last commit. A line filled by one of those reads
    /// stays in a 68030/68040 cache until the next commit: the completion is never seen
    /// (PR kern/60182, "ld@virtio sometimes hangs up").
    NetBsd2024,
}

/// One buffer of a chain, as the device will see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Buffer {
    pub addr: u32,
    pub len: u32,
    /// The device writes it (else it reads it).
    pub device_writes: bool,
}

/// Something the device did that the protocol forbids. The queue is broken afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
// A byte tag: every call tests `Option<DeviceFault>` for None, and a byte needs no swap on
// this route.
#[repr(u8)]
pub enum DeviceFault {
    /// A used element's id is not a descriptor index.
    IdOutOfRange { id: u32, size: u16 },
    /// A used element names a descriptor that heads no chain in flight (or completes one twice).
    IdNotInFlight { id: u32 },
    /// A used element reports more bytes written than the chain's writable buffers hold.
    LenTooLarge { id: u32, len: u32, writable: u32 },
    /// used->idx moved by more than the queue holds.
    IdxJump { from: u16, to: u16, size: u16 },
}

impl fmt::Display for DeviceFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DeviceFault::IdOutOfRange { id, size } => {
                write!(f, "used id {id} outside a queue of {size}")
            }
            DeviceFault::IdNotInFlight { id } => write!(
                f,
                "used id {id} is not a request in flight (duplicate completion?)"
            ),
            DeviceFault::LenTooLarge { id, len, writable } => {
                write!(
                    f,
                    "used len {len} for id {id} exceeds its {writable} writable bytes"
                )
            }
            DeviceFault::IdxJump { from, to, size } => {
                write!(f, "used idx jumped from {from} to {to}, more than the {size} entries in the queue")
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueError {
    /// Not enough free descriptors for the chain.
    Full {
        needed: usize,
        free: u16,
    },
    EmptyChain,
    /// Device-readable buffers must come before device-writable ones.
    ReadableAfterWritable,
    /// [`add_at`](SplitQueue::add_at): the head is out of range or still in flight, or the
    /// queue's heads are not fixed ([`fix_heads`](SplitQueue::fix_heads)).
    HeadUnavailable {
        head: u16,
    },
    /// [`add_at`](SplitQueue::add_at): more buffers than one indirect table holds.
    ChainTooLong {
        buffers: usize,
        max: usize,
    },
    /// The device misbehaved earlier; the queue is unusable until reset.
    Broken(DeviceFault),
    Dma(DmaError),
}

impl fmt::Display for QueueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueueError::Full { needed, free } => {
                write!(f, "queue full: {needed} descriptors needed, {free} free")
            }
            QueueError::EmptyChain => f.write_str("a chain needs at least one buffer"),
            QueueError::ReadableAfterWritable => {
                f.write_str("device-readable buffer after a device-writable one")
            }
            QueueError::HeadUnavailable { head } => {
                write!(f, "descriptor {head} is not a free fixed head")
            }
            QueueError::ChainTooLong { buffers, max } => {
                write!(
                    f,
                    "{buffers} buffers in a chain, an indirect table holds {max}"
                )
            }
            QueueError::Broken(fault) => write!(f, "device broken: {fault}"),
            QueueError::Dma(e) => write!(f, "DMA: {e}"),
        }
    }
}

impl From<DmaError> for QueueError {
    fn from(e: DmaError) -> Self {
        QueueError::Dma(e)
    }
}

/// What the driver knows of one descriptor head: the chain in flight there, if any, and at a
/// fixed head the chain its indirect table holds. One entry per head, so that queueing a
/// chain again at a fixed head and taking its completion each touch one place.
#[derive(Debug, Clone, Copy)]
struct Head {
    token: u32,
    /// Writable bytes of the chain at this head (a used length above it is a fault). Kept
    /// after completion at a fixed head (the chain its table holds, for `add_again`);
    /// `NO_CHAIN` when no whole chain is there (always, between chains, at a free-list head).
    writable: u32,
    /// Descriptors the chain holds in the table (1 when indirect; 0 at a fixed head, which
    /// goes back to its owner, not to the free list).
    descs: u16,
    in_flight: bool,
}

const NO_CHAIN: u32 = u32::MAX;

/// The counters [`QueueStats`] reports that are counted as they happen (the others are
/// derived when read), as [`Count32`]s.
#[derive(Default)]
struct Counts {
    descriptors_written: Count32,
    notifications: Count32,
    suppressed: Count32,
    used_idx_reads: Count32,
}

/// Avail entries whose contents the queue remembers (queues larger than this store every
/// entry).
const AVAIL_SHADOW: usize = 256;

/// Counters, for statistics and benchmarks. 32 bits, wrapping (a 64-bit count costs twice
/// the loads, stores and byte swaps on every request here): take differences with
/// `wrapping_sub`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct QueueStats {
    pub chains: u32,
    /// Descriptors stored (ring and indirect tables); a chain that repeats what memory
    /// already holds stores none.
    pub descriptors_written: u32,
    /// Publishes that decided whether to notify: `notifications + suppressed` (counted as
    /// those two, and summed when read).
    pub publishes: u32,
    pub notifications: u32,
    pub suppressed: u32,
    /// Chains the device returned and the driver took: `chains` less those in flight and
    /// those abandoned (derived when read, not counted per completion).
    pub completions: u32,
    pub used_idx_reads: u32,
}

pub struct SplitQueue<P: Platform> {
    index: u16,
    size: u16,
    ring: DmaRegion<P>,
    used: DmaRegion<P>,
    indirect: Option<DmaRegion<P>>,
    event_idx: bool,
    /// CPU-side free list links (never read back from the table).
    next: Vec<u16>,
    /// What memory holds in each descriptor of the ring and of the indirect tables, as last
    /// written (zero at creation, as the allocation is): a descriptor already there is
    /// neither written nor synced again, so a chain that repeats (a request slot's header,
    /// data and status) costs comparisons, not stores and cache maintenance.
    ring_mem: Vec<[u32; 4]>,
    table_mem: Vec<[u32; 4]>,
    /// What memory holds in each avail ring entry, as last written and pushed (zero at
    /// creation), for queues of up to [`AVAIL_SHADOW`] entries: a head already at its
    /// position is neither stored nor synced again (at a queue depth of one every entry
    /// holds head 0). An array in place: one load, no length to check.
    avail_mem: [u16; AVAIL_SHADOW],
    /// An avail entry was stored since the last publish (which then pushes the entries).
    avail_stored: bool,
    free_head: u16,
    num_free: u16,
    /// Every head belongs to the caller ([`fix_heads`](Self::fix_heads)): chains go in with
    /// [`add_at`](Self::add_at), the free list stays empty.
    fixed_heads: bool,
    /// Per head ([`Head`]).
    heads: Table<Head>,
    /// Next avail idx to publish, and the one last published: entries were added since the
    /// last publish exactly when they differ (at most `size` chains are queued unpublished).
    avail_idx: u16,
    published: u16,
    /// Times avail idx wrapped past 65535 (for `stats().chains`).
    avail_laps: u32,
    /// Lowest and highest descriptor written since the last publish (what it must PREWRITE).
    dirty_descs: Option<(u16, u16)>,
    last_used: u16,
    /// used->idx as last read (consumed up to last_used).
    device_used: u16,
    broken: Option<DeviceFault>,
    /// The driver asked for interrupts (with EVENT_IDX, each completion taken moves
    /// used_event along so the next one interrupts too).
    interrupts_wanted: bool,
    /// Interrupts wanted with EVENT_IDX: at the end of each batch of completions taken,
    /// used_event moves to the last one (a store only when memory holds another value: what
    /// the batch owes is derived, not flagged per completion).
    used_event_follows: bool,
    /// What memory holds in used_event and avail->flags, as last written (None: not yet):
    /// a store and its PREWRITE are skipped when the value is already there.
    used_event_mem: Option<u16>,
    avail_flags_mem: Option<u16>,
    used_sync: UsedSync,
    /// The counters counted as they happen (see [`stats`](Self::stats)).
    counts: Counts,
    /// Chains [`abandon_all`](Self::abandon_all) took out of flight (for `completions`).
    abandoned: u32,
}

/// avail_event's offset in the used ring of a queue of `size` entries (virtio 1.2, 2.7.8).
#[inline(always)]
fn avail_event_at(size: u16) -> u32 {
    4 + 8 * u32::from(size)
}

/// The read phase of used elements at [off, off + len): PREREAD, then POSTREAD (each sync
/// site can be left out alone).
#[track_caller]
#[inline(always)]
fn elements_read_phase<P: Platform>(
    used: View<'_, P>,
    off: u32,
    len: u32,
) -> Result<(), QueueError> {
    crate::sync_site!(
        "queue.elements.preread",
        used.sync(SyncOps::PREREAD, off, len)
    )?;
    crate::sync_site!(
        "queue.elements.postread",
        used.sync(SyncOps::POSTREAD, off, len)
    )?;
    Ok(())
}

impl<P: Platform> SplitQueue<P> {
    /// Allocates the rings for queue `index` of `size` entries (a power of two).
    pub fn new(
        tag: &'static DmaTag<P>,
        names: [&'static str; 3],
        index: u16,
        size: u16,
        event_idx: bool,
        indirect: bool,
    ) -> Result<Self, QueueError> {
        assert!(
            size.is_power_of_two(),
            "queue size {size} is not a power of two"
        );
        let q = u32::from(size);
        let ring = tag.alloc(
            names[0],
            DESC_SIZE * q + 6 + 2 * q,
            Direction::ToDevice,
            false,
        )?;
        let used = tag.alloc(names[1], 6 + 8 * q, Direction::FromDevice, false)?;
        let indirect = if indirect {
            Some(tag.alloc(
                names[2],
                q * MAX_INDIRECT as u32 * DESC_SIZE,
                Direction::ToDevice,
                false,
            )?)
        } else {
            None
        };
        let next = (0..size).map(|i| i.wrapping_add(1)).collect();
        let table_entries = if indirect.is_some() {
            usize::from(size) * MAX_INDIRECT
        } else {
            0
        };
        let q = SplitQueue {
            index,
            size,
            ring,
            used,
            indirect,
            event_idx,
            next,
            ring_mem: alloc::vec![[0; 4]; usize::from(size)],
            table_mem: alloc::vec![[0; 4]; table_entries],
            avail_mem: [0; AVAIL_SHADOW],
            avail_stored: false,
            free_head: 0,
            num_free: size,
            fixed_heads: false,
            heads: Table::new(alloc::vec![
                Head {
                    token: 0,
                    writable: NO_CHAIN,
                    descs: 0,
                    in_flight: false,
                };
                size as usize
            ]),
            avail_idx: 0,
            published: 0,
            avail_laps: 0,
            dirty_descs: None,
            last_used: 0,
            device_used: 0,
            broken: None,
            interrupts_wanted: false,
            used_event_follows: false,
            used_event_mem: None,
            avail_flags_mem: None,
            used_sync: UsedSync::Corrected,
            counts: Counts::default(),
            abandoned: 0,
        };
        // The whole ring starts zeroed (alloc) and goes to the device as such.
        crate::sync_site!(
            "queue.new.ring",
            q.ring.sync(SyncOps::PREWRITE, 0, q.ring.len())
        )?;
        if let Some(ind) = &q.indirect {
            crate::sync_site!(
                "queue.new.indirect",
                ind.sync(SyncOps::PREWRITE, 0, ind.len())
            )?;
        }
        // Hand the used ring to the device before it may write. Its zeroes were written by
        // the CPU (alloc): on a copyback cache they are dirty lines, which a bare PREREAD
        // would discard, leaving old heap bytes for the first used->idx read. So push them
        // first (PREWRITE) in the same sync.
        crate::sync_site!(
            "queue.new.used",
            q.used
                .sync(SyncOps::PREREAD | SyncOps::PREWRITE, 0, q.used.len())
        )?;
        Ok(q)
    }

    pub fn index(&self) -> u16 {
        self.index
    }
    pub fn size(&self) -> u16 {
        self.size
    }
    /// The queue's counters.
    pub fn stats(&self) -> QueueStats {
        let c = &self.counts;
        QueueStats {
            publishes: c.notifications.get().wrapping_add(c.suppressed.get()),
            chains: self.chains(),
            completions: self
                .chains()
                .wrapping_sub(self.in_flight() as u32)
                .wrapping_sub(self.abandoned),
            descriptors_written: c.descriptors_written.get(),
            notifications: c.notifications.get(),
            suppressed: c.suppressed.get(),
            used_idx_reads: c.used_idx_reads.get(),
        }
    }
    /// Chains added so far (wrapping at 2^32): avail idx and its laps.
    fn chains(&self) -> u32 {
        self.chains_total() as u32
    }
    /// Chains added so far, all of them (2^48 before it wraps): avail idx and its laps.
    pub fn chains_total(&self) -> u64 {
        u64::from(self.avail_laps) << 16 | u64::from(self.avail_idx)
    }
    pub fn num_free(&self) -> u16 {
        self.num_free
    }
    pub fn in_flight(&self) -> usize {
        self.heads.iter().filter(|h| h.in_flight).count()
    }
    pub fn broken(&self) -> Option<DeviceFault> {
        self.broken
    }
    /// (descriptor table, avail ring, used ring) physical addresses, for the transport.
    pub fn addresses(&self) -> (u32, u32, u32) {
        (
            self.ring.phys(),
            self.ring.phys() + self.avail_off(),
            self.used.phys(),
        )
    }
    pub fn event_idx(&self) -> bool {
        self.event_idx
    }
    /// Completions the device has published (used->idx in memory, read past any cache) that
    /// this driver has not taken: after a timeout, non-zero means the driver was looking at
    /// a stale line (PR kern/60182), zero that the device never finished (or never heard).
    pub fn unseen_completions(&self) -> u16 {
        let mut idx = [0u8; 2];
        self.used.peek_memory(2, &mut idx);
        u16::from_le_bytes(idx).wrapping_sub(self.last_used)
    }

    /// How the used ring's read phases are synced (default [`UsedSync::Corrected`]).
    pub fn set_used_sync(&mut self, s: UsedSync) {
        self.used_sync = s;
    }
    pub fn used_sync(&self) -> UsedSync {
        self.used_sync
    }

    pub(crate) fn avail_off(&self) -> u32 {
        DESC_SIZE * u32::from(self.size)
    }
    pub(crate) fn avail_ring_off(&self, slot: u16) -> u32 {
        self.avail_off() + 4 + 2 * u32::from(slot & (self.size - 1))
    }
    pub(crate) fn used_event_off(&self) -> u32 {
        self.avail_off() + 4 + 2 * u32::from(self.size)
    }
    pub(crate) fn used_elem_off(&self, slot: u16) -> u32 {
        4 + 8 * u32::from(slot & (self.size - 1))
    }

    fn check(&self) -> Result<(), QueueError> {
        match self.broken {
            Some(f) => Err(QueueError::Broken(f)),
            None => Ok(()),
        }
    }

    fn fault(&mut self, f: DeviceFault) -> QueueError {
        self.broken = Some(f);
        QueueError::Broken(f)
    }

    fn note_dirty_desc(&mut self, d: u16) {
        self.dirty_descs = Some(match self.dirty_descs {
            Some((lo, hi)) => (lo.min(d), hi.max(d)),
            None => (d, d),
        });
    }

    /// One descriptor (virtio 1.2, 2.7.5: {le64 addr, le32 len, le16 flags, le16 next}),
    /// field by field, unless `mem` (what memory holds there) says it is already there;
    /// true if written. The device reads it only after the publish that follows.
    #[inline]
    fn write_desc(
        region: &DmaRegion<P>,
        mem: &mut [u32; 4],
        off: u32,
        b: &Buffer,
        flags: u16,
        next: u16,
    ) -> bool {
        let flags = flags | if b.device_writes { DESC_F_WRITE } else { 0 };
        // addr: 32-bit physical addresses here, so its high half is 0; flags and next are
        // the two little-endian halves of the last word.
        let (addr, len, last) = (b.addr, b.len, u32::from(flags) | u32::from(next) << 16);
        // Word by word: an array value would be built in linear memory to be compared.
        if mem[0] == addr && mem[1] == 0 && mem[2] == len && mem[3] == last {
            return false;
        }
        region.write_u32s_le(off, [addr, 0, len, last]);
        *mem = [addr, 0, len, last];
        true
    }

    /// Stores `bufs` (1..=MAX_INDIRECT, checked by the caller) as head's indirect table
    /// and the ring descriptor at `head` pointing to it, each only where memory does not
    /// hold it already; pushes the table entries stored (the ring descriptor is pushed at
    /// publish).
    fn store_indirect(&mut self, head: u16, bufs: &[Buffer]) -> Result<(), QueueError> {
        let table = self
            .indirect
            .as_ref()
            .expect("chains with tables need them");
        let first = usize::from(head) * MAX_INDIRECT;
        let base = first as u32 * DESC_SIZE;
        let last = bufs.len() - 1;
        // The entries written (first, last), for the PREWRITE.
        let mut written: Option<(u32, u32)> = None;
        for (i, (b, mem)) in bufs.iter().zip(&mut self.table_mem[first..]).enumerate() {
            let (flags, next) = if i == last {
                (0, 0)
            } else {
                (DESC_F_NEXT, i as u16 + 1)
            };
            if Self::write_desc(table, mem, base + i as u32 * DESC_SIZE, b, flags, next) {
                let i = i as u32;
                written = Some(written.map_or((i, i), |(lo, _)| (lo, i)));
                self.counts.descriptors_written.add(1);
            }
        }
        // Rule: the table reaches memory before the device can follow the descriptor.
        if let Some((lo, hi)) = written {
            let pushed = crate::sync_site!(
                "queue.add.indirect",
                table.sync(
                    SyncOps::PREWRITE,
                    base + lo * DESC_SIZE,
                    (hi - lo + 1) * DESC_SIZE
                )
            );
            if let Err(e) = pushed {
                // Memory may lack what the shadow says: forget it, so the next chain
                // stores and pushes these entries again.
                let (lo, hi) = (first + lo as usize, first + hi as usize);
                self.table_mem[lo..=hi].fill(UNKNOWN_DESC);
                return Err(e.into());
            }
        }
        let whole = Buffer {
            addr: table.phys() + base,
            len: bufs.len() as u32 * DESC_SIZE,
            device_writes: false,
        };
        if Self::write_desc(
            &self.ring,
            &mut self.ring_mem[usize::from(head)],
            u32::from(head) * DESC_SIZE,
            &whole,
            DESC_F_INDIRECT,
            0,
        ) {
            self.note_dirty_desc(head);
            self.counts.descriptors_written.add(1);
        }
        Ok(())
    }

    /// Queues a chain (not yet visible to the device: see [`publish`](Self::publish)).
    /// `token` comes back with its completion.
    ///
    /// Errors: `EmptyChain`, `ReadableAfterWritable` (virtio 1.2 2.7.4.2), `Full`, or the
    /// queue's broken state.
    ///
    /// # Safety
    ///
    /// The device will read each buffer's `[addr, addr + len)`, and write it where
    /// `device_writes`, at any time until the chain's completion is popped or the device is
    /// reset. So each must be DMA memory given to the device for that (a
    /// [`DeviceOwned`](crate::dma::DeviceOwned)'s segments, or a region the caller owns and has
    /// synced for the device), that stays allocated and untouched by the CPU in the device's
    /// direction until then.
    pub unsafe fn add(&mut self, bufs: &[Buffer], token: u32) -> Result<u16, QueueError> {
        self.check()?;
        if bufs.is_empty() {
            return Err(QueueError::EmptyChain);
        }
        if bufs
            .windows(2)
            .any(|w| w[0].device_writes && !w[1].device_writes)
        {
            return Err(QueueError::ReadableAfterWritable);
        }
        let writable: u32 = bufs.iter().filter(|b| b.device_writes).map(|b| b.len).sum();
        let use_indirect = self.indirect.is_some() && bufs.len() > 1 && bufs.len() <= MAX_INDIRECT;
        let needed = if use_indirect { 1 } else { bufs.len() };
        if usize::from(self.num_free) < needed {
            return Err(QueueError::Full {
                needed,
                free: self.num_free,
            });
        }
        let head = self.free_head;
        if use_indirect {
            self.store_indirect(head, bufs)?;
            self.free_head = self.next[head as usize];
        } else {
            let mut d = head;
            for (i, b) in bufs.iter().enumerate() {
                let last = i + 1 == bufs.len();
                let next = self.next[d as usize];
                if Self::write_desc(
                    &self.ring,
                    &mut self.ring_mem[usize::from(d)],
                    u32::from(d) * DESC_SIZE,
                    b,
                    if last { 0 } else { DESC_F_NEXT },
                    next,
                ) {
                    self.note_dirty_desc(d);
                    self.counts.descriptors_written.add(1);
                }
                if last {
                    self.free_head = next;
                } else {
                    d = next;
                }
            }
        }
        self.num_free -= needed as u16;
        self.enqueue(head, token, needed as u16, writable);
        Ok(head)
    }

    /// A chain written at `head`: in flight, and its avail entry stored (pushed at publish).
    #[inline]
    fn enqueue(&mut self, head: u16, token: u32, descs: u16, writable: u32) {
        self.heads[usize::from(head)] = Head {
            token,
            writable,
            descs,
            in_flight: true,
        };
        self.push_avail(head);
    }

    /// The avail entry for a chain at `head` (pushed to memory at publish).
    #[inline(always)]
    fn push_avail(&mut self, head: u16) {
        let pos = self.avail_idx & (self.size - 1);
        let at = self.avail_ring_off(pos);
        let mem = &mut self.avail_mem[usize::from(pos) % AVAIL_SHADOW];
        if *mem != head || usize::from(self.size) > AVAIL_SHADOW {
            self.ring.write_u16_le(at, head);
            *mem = head;
            self.avail_stored = true;
        }
        // `chains` is derived (`stats`): avail idx counts them, and its laps past 65535.
        let idx = self.avail_idx.wrapping_add(1);
        self.avail_idx = idx;
        if idx == 0 {
            self.avail_laps = self.avail_laps.wrapping_add(1);
        }
    }

    /// Gives every descriptor head to the caller, one per request slot it keeps: from here
    /// on chains go in with [`add_at`](Self::add_at), each through its head's own indirect
    /// table, and [`add`](Self::add) finds the queue full. A slot that always sends the same
    /// buffers finds its table and its ring descriptor already in memory (the descriptor
    /// shadow), where a shared free list would hand it another slot's table.
    ///
    /// Returns false (and changes nothing) without indirect tables or once a chain was added.
    pub fn fix_heads(&mut self) -> bool {
        if self.indirect.is_none() || self.chains_total() != 0 || self.num_free != self.size {
            return false;
        }
        self.fixed_heads = true;
        self.num_free = 0;
        true
    }

    /// Queues again, at `head`, the chain the last successful [`add_at`](Self::add_at) there
    /// stored: its table and ring descriptor are in memory already, so this stores only the
    /// avail entry (no descriptor, no sync until publish). For a caller that knows its
    /// buffers are the same ones (a request slot whose data length and direction did not
    /// change).
    ///
    /// Errors: `HeadUnavailable` (out of range, in flight, heads not fixed, or no chain
    /// stored at `head`), or the queue's broken state.
    ///
    /// # Safety
    ///
    /// As for [`add_at`](Self::add_at), for the buffers of the chain last added at `head`:
    /// each is given to the device again (synced for it) and stays so until completion.
    #[inline(always)]
    pub unsafe fn add_again(&mut self, head: u16, token: u32) -> Result<(), QueueError> {
        self.check()?;
        // A head has a whole chain and is not in flight only at a fixed head after its
        // completion (a free-list head's `writable` is NO_CHAIN outside its flight).
        match self.heads.get_mut(usize::from(head)) {
            Some(h) if h.writable != NO_CHAIN && !h.in_flight => {
                (h.token, h.in_flight) = (token, true);
            }
            _ => return Err(QueueError::HeadUnavailable { head }),
        }
        self.push_avail(head);
        Ok(())
    }

    /// Queues a chain at descriptor `head` (a queue whose heads are fixed: see
    /// [`fix_heads`](Self::fix_heads)), through head's indirect table. Not yet visible to the
    /// device: see [`publish`](Self::publish). `token` comes back with its completion.
    ///
    /// Errors: `EmptyChain`, `ChainTooLong` (more than [`MAX_INDIRECT`] buffers),
    /// `ReadableAfterWritable` (virtio 1.2 2.7.4.2), `HeadUnavailable` (out of range, in
    /// flight, or heads not fixed), or the queue's broken state.
    ///
    /// # Safety
    ///
    /// As for [`add`](Self::add): every buffer is DMA memory given to the device for the
    /// chain's lifetime.
    pub unsafe fn add_at(
        &mut self,
        head: u16,
        bufs: &[Buffer],
        token: u32,
    ) -> Result<(), QueueError> {
        self.check()?;
        let n = bufs.len();
        if n == 0 {
            return Err(QueueError::EmptyChain);
        }
        if n > MAX_INDIRECT {
            return Err(QueueError::ChainTooLong {
                buffers: n,
                max: MAX_INDIRECT,
            });
        }
        let h = usize::from(head);
        if !self.fixed_heads || head >= self.size || self.heads[h].in_flight {
            return Err(QueueError::HeadUnavailable { head });
        }
        // All checks before the first store: a refused chain leaves memory and the shadow
        // as they were.
        let mut writable = 0u32;
        let mut device_writes = false;
        for b in bufs {
            if b.device_writes {
                writable += b.len;
                device_writes = true;
            } else if device_writes {
                return Err(QueueError::ReadableAfterWritable);
            }
        }
        // Until this chain is whole in memory, `add_again` has none to repeat here.
        self.heads[h].writable = NO_CHAIN;
        self.store_indirect(head, bufs)?;
        self.enqueue(head, token, 0, writable);
        Ok(())
    }

    /// One read phase of the used ring at [off, off + 2): PREREAD, POSTREAD, read
    /// (`NetBsd2024`: the whole ring POSTREAD, then the read). Audit findings name the
    /// read phase's caller.
    #[track_caller]
    #[inline(always)]
    fn used_read_u16(&self, off: u32) -> Result<u16, QueueError> {
        match self.used_sync {
            // The two syncs and the read in one call (`read_phase_u16`); each sync site can
            // still be left out alone.
            UsedSync::Corrected => Ok(self.used.read_phase_u16(
                off,
                !crate::dma::mutant::skip("queue.read.preread"),
                !crate::dma::mutant::skip("queue.read.postread"),
            )?),
            UsedSync::NetBsd2024 => {
                self.used.sync(SyncOps::POSTREAD, 0, self.used.len())?;
                Ok(self.used.read_u16_le(off))
            }
        }
    }

    /// Makes every added chain visible to the device; returns whether it wants a
    /// notification (the caller then writes QueueNotify). Several chains, one decision.
    #[track_caller]
    #[inline(always)]
    pub fn publish(&mut self) -> Result<bool, QueueError> {
        self.check()?;
        // Copies: a field is reloaded after every DMA store and opaque call, a local is not.
        let (avail_idx, published, size) = (self.avail_idx, self.published, self.size);
        if avail_idx == published {
            return Ok(false);
        }
        let avail = DESC_SIZE * u32::from(size);
        // Rule: descriptors and avail entries reach memory before the new idx does. Only
        // what was written since the last publish.
        let ring = self.ring.view();
        if let Some((lo, hi)) = self.dirty_descs {
            let (lo, hi) = (u32::from(lo), u32::from(hi));
            // Kept until pushed: a publish that fails here pushes them when retried (the
            // chains that name them are queued already).
            crate::sync_site!(
                "queue.publish.descs",
                ring.sync(SyncOps::PREWRITE, lo * DESC_SIZE, (hi - lo + 1) * DESC_SIZE)
            )?;
            self.dirty_descs = None;
        }
        // The entries of [published, avail_idx), if any was stored (else memory holds them
        // all already): one piece, two where the ring wraps. Written out, not through a
        // closure: its captures live in linear memory.
        if self.avail_stored {
            let size = u32::from(size);
            let n = u32::from(avail_idx.wrapping_sub(published)).min(size);
            let start = u32::from(published) & (size - 1);
            let first = n.min(size - start);
            let base = avail + 4;
            crate::sync_site!(
                "queue.publish.avail",
                ring.sync(SyncOps::PREWRITE, base + 2 * start, 2 * first)
            )?;
            if n > first {
                crate::sync_site!(
                    "queue.publish.avail",
                    ring.sync(SyncOps::PREWRITE, base, 2 * (n - first))
                )?;
            }
            self.avail_stored = false;
        }
        let (used_sync, event_idx) = (self.used_sync, self.event_idx);
        if used_sync == UsedSync::NetBsd2024 {
            // virtio_enqueue_commit: the used ring's one PREREAD per commit.
            self.used.sync(SyncOps::PREREAD, 0, self.used.len())?;
        }
        let idx_off = avail + 2;
        ring.write_u16_le(idx_off, avail_idx);
        // Rule: idx reaches memory before the notification decision and the notification.
        crate::sync_site!(
            "queue.publish.idx",
            ring.sync(SyncOps::PREWRITE, idx_off, 2)
        )?;
        // Rule: the device, on another host thread, must see the new idx before this driver
        // reads whether it wants a notification (it re-checks idx after re-enabling them).
        let tag = ring.region().tag();
        tag.paravirt_membar();
        if tag.watched() {
            self.ring.device_start(0, self.ring.len());
            if let Some(t) = &self.indirect {
                t.device_start(0, t.len());
            }
        }
        // Rule: reading used->flags / avail_event is its own read phase. `published` moves
        // only once the decision is made: a publish that fails here is redone whole by the
        // next (the same idx stored and pushed again, the decision taken), so its
        // notification is not lost.
        let notify = if event_idx {
            let event = self.used_read_u16(avail_event_at(size))?;
            need_event(event, avail_idx, published)
        } else {
            self.used_read_u16(0)? & USED_F_NO_NOTIFY == 0
        };
        self.published = avail_idx;
        if notify {
            self.counts.notifications.add(1);
        } else {
            self.counts.suppressed.add(1);
        }
        Ok(notify)
    }

    /// Whether the device has completions the driver has not taken (a read phase of idx).
    #[track_caller]
    pub fn has_used(&mut self) -> Result<bool, QueueError> {
        self.check()?;
        self.refresh_used_idx()?;
        Ok(self.device_used != self.last_used)
    }

    #[track_caller]
    fn refresh_used_idx(&mut self) -> Result<(), QueueError> {
        // Rule: each poll, each interrupt reads used->idx in a read phase of its own.
        let idx = self.used_read_u16(2)?;
        self.counts.used_idx_reads.add(1);
        if idx.wrapping_sub(self.last_used) > self.size {
            return Err(self.fault(DeviceFault::IdxJump {
                from: self.last_used,
                to: idx,
                size: self.size,
            }));
        }
        // Rule: the elements idx announces (written before it) are read in a read phase of
        // their own, opened here for all of them at once: their lines may hold elements of
        // the previous lap, read before.
        // (`NetBsd2024`: the POSTREAD before idx covered the whole ring, and nothing more.)
        // Written out, not through a closure over the ring's pieces: that was a call of its
        // own (~160 guest instructions), on every poll that finds a completion.
        let n = u32::from(idx.wrapping_sub(self.last_used));
        if self.used_sync == UsedSync::Corrected && n > 0 {
            let used = self.used.view();
            let size = u32::from(self.size);
            let start = u32::from(self.last_used) & (size - 1);
            let first = n.min(size - start);
            elements_read_phase(used, 4 + 8 * start, 8 * first)?;
            if n > first {
                elements_read_phase(used, 4, 8 * (n - first))?;
            }
        }
        self.device_used = idx;
        Ok(())
    }

    /// Takes the next completion: (token, bytes the device wrote). Ok(None) when there is
    /// none. Reads used->idx only when everything it announced earlier has been taken.
    ///
    /// With interrupts wanted and EVENT_IDX, the pop that finds no more moves used_event past
    /// the completions taken (one store and push per batch); take completions until `None`
    /// (or re-arm with [`enable_interrupts`](Self::enable_interrupts)) before waiting for an
    /// interrupt.
    #[track_caller]
    pub fn pop_used(&mut self) -> Result<Option<(u32, u32)>, QueueError> {
        self.pop(true)
    }

    /// As [`pop_used`](Self::pop_used), but only what the last used->idx read announced:
    /// Ok(None) once those are taken, without a new read phase of idx (a caller that has
    /// just read it, or will read it again before waiting, saves one per batch).
    #[track_caller]
    pub fn pop_seen(&mut self) -> Result<Option<(u32, u32)>, QueueError> {
        self.pop(false)
    }

    #[track_caller]
    #[inline(always)]
    fn pop(&mut self, read_idx: bool) -> Result<Option<(u32, u32)>, QueueError> {
        self.check()?;
        if self.device_used == self.last_used {
            if !read_idx {
                self.settle_used_event()?;
                return Ok(None);
            }
            self.refresh_used_idx()?;
            if self.device_used == self.last_used {
                self.settle_used_event()?;
                return Ok(None);
            }
        }
        // Rule: the element (written before idx) is read in a read phase of its own: its line
        // may hold an element of the previous lap, read before.
        // The element's read phase was opened when idx was read (refresh_used_idx).
        let off = self.used_elem_off(self.last_used);
        let used = self.used.view();
        let (id, len) = (used.read_u32_le(off), used.read_u32_le(off + 4));
        // One entry per head: the lookup is the range check (each is a compare and a load
        // here). Taken in one indexing; put back if the length is refused, so that
        // `abandon_all` still reports the chain.
        let Some(entry) = self.heads.get_mut(id as usize) else {
            return Err(self.fault(DeviceFault::IdOutOfRange {
                id,
                size: self.size,
            }));
        };
        let chain = *entry;
        if !chain.in_flight {
            return Err(self.fault(DeviceFault::IdNotInFlight { id }));
        }
        if len > chain.writable {
            return Err(self.fault(DeviceFault::LenTooLarge {
                id,
                len,
                writable: chain.writable,
            }));
        }
        entry.in_flight = false;
        // Return the chain's descriptors to the free list (CPU-side links only); a fixed
        // head (no descriptors counted) is its owner's again, its chain still in the table.
        if chain.descs > 0 {
            entry.writable = NO_CHAIN;
            let head = id as u16;
            let mut tail = head;
            for _ in 1..chain.descs {
                tail = self.next[tail as usize];
            }
            self.next[tail as usize] = self.free_head;
            self.free_head = head;
            self.num_free += chain.descs;
        }
        // Interrupt again at the next completion (as Linux's virtqueue_get_buf does), once
        // per batch: used_event is stored and pushed when a pop finds no more
        // (`settle_used_event`).
        self.last_used = self.last_used.wrapping_add(1);
        Ok(Some((chain.token, len)))
    }

    /// Asks the device not to interrupt (a hint: interrupts may still come).
    pub fn disable_interrupts(&mut self) -> Result<(), QueueError> {
        self.interrupts_wanted = false;
        self.used_event_follows = false;
        if !self.event_idx {
            self.set_avail_flags(AVAIL_F_NO_INTERRUPT)?;
        }
        // With EVENT_IDX, used_event is simply not advanced.
        Ok(())
    }

    /// Asks for an interrupt at the next completion, then re-checks the used ring: a
    /// completion that arrived before the request took effect raises no interrupt, so the
    /// caller must process it. Returns whether completions are waiting.
    pub fn enable_interrupts(&mut self) -> Result<bool, QueueError> {
        self.request_interrupts(true)
    }

    /// As [`enable_interrupts`](Self::enable_interrupts), but with EVENT_IDX for the next
    /// completion only: used_event stays where this puts it while completions are taken, so
    /// a completion the driver finds before it next waits raises no interrupt. For a driver
    /// that arms before every sleep (as `VirtioBlk::wait`): used_event is stored when it is
    /// about to sleep, while the device works, not after every batch it takes. Returns
    /// whether completions are waiting.
    pub fn arm_interrupt(&mut self) -> Result<bool, QueueError> {
        self.request_interrupts(false)
    }

    fn request_interrupts(&mut self, follow: bool) -> Result<bool, QueueError> {
        self.check()?;
        self.interrupts_wanted = true;
        if self.event_idx {
            self.used_event_follows = follow;
            self.set_used_event(self.last_used)?;
        } else {
            self.set_avail_flags(0)?;
        }
        // Rule: the device must see the re-arm before this driver re-checks used->idx (else a
        // completion between the check and the re-arm raises no interrupt and is not seen).
        self.ring.tag().paravirt_membar();
        self.has_used()
    }

    /// Completions the last used->idx read announced that are not taken yet: what
    /// [`pop_seen`](Self::pop_seen) would still return.
    #[inline]
    pub fn seen_pending(&self) -> u16 {
        self.device_used.wrapping_sub(self.last_used)
    }

    /// Ends a batch of pops that stopped before one returned `None` (see
    /// [`seen_pending`](Self::seen_pending)): used_event follows the completions taken, if
    /// interrupts are wanted, as that last pop would have done.
    #[inline(always)]
    pub fn settle_used_event(&mut self) -> Result<(), QueueError> {
        if self.used_event_follows {
            self.set_used_event(self.last_used)?;
        }
        Ok(())
    }

    /// Stores used_event (read by the device) and pushes it, unless memory holds it already
    /// (that test inline, the store out of line).
    #[inline(always)]
    fn set_used_event(&mut self, v: u16) -> Result<(), QueueError> {
        if self.used_event_mem != Some(v) {
            self.store_used_event(v)?;
        }
        Ok(())
    }

    #[inline(never)]
    fn store_used_event(&mut self, v: u16) -> Result<(), QueueError> {
        let off = self.used_event_off();
        self.ring.write_u16_le(off, v);
        // Rule: the device reads it.
        crate::sync_site!(
            "queue.used_event",
            self.ring.sync(SyncOps::PREWRITE, off, 2)
        )?;
        self.used_event_mem = Some(v);
        Ok(())
    }

    /// Stores avail->flags (read by the device) and pushes it, unless memory holds it already.
    fn set_avail_flags(&mut self, v: u16) -> Result<(), QueueError> {
        if self.avail_flags_mem != Some(v) {
            let off = self.avail_off();
            self.ring.write_u16_le(off, v);
            // Rule: the device reads it.
            crate::sync_site!(
                "queue.avail_flags",
                self.ring.sync(SyncOps::PREWRITE, off, 2)
            )?;
            self.avail_flags_mem = Some(v);
        }
        Ok(())
    }

    /// Tokens of every chain still in flight, forgotten (after a reset or when broken).
    pub fn abandon_all(&mut self) -> Vec<u32> {
        let mut tokens = Vec::new();
        for h in self.heads.iter_mut().filter(|h| h.in_flight) {
            h.in_flight = false;
            if h.descs > 0 {
                h.writable = NO_CHAIN;
            }
            tokens.push(h.token);
        }
        self.abandoned = self.abandoned.wrapping_add(tokens.len() as u32);
        tokens
    }

    /// The ring regions, for a simulated device (test builds only).
    #[cfg(test)]
    pub(crate) fn regions(&self) -> (&DmaRegion<P>, &DmaRegion<P>, Option<&DmaRegion<P>>) {
        (&self.ring, &self.used, self.indirect.as_ref())
    }
}
