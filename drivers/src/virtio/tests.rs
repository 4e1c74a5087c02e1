//! Host tests of the split virtqueue against a simulated device, with the bus_dma auditor on
//! and every driver access going through a copyback cache model: a missing PREWRITE would
//! leave the device reading zeros, a missing PREREAD would leave the driver reading stale
//! lines, and either would also be reported.
// Unsafe only in `add`, the one call whose contract the simulated device meets.
#![deny(unsafe_code)]

use super::queue::{Buffer, DeviceFault, QueueError, SplitQueue, UsedSync, AVAIL_F_NO_INTERRUPT};
use super::sim::SimDevice;
use crate::dma::sim::SimCache;
use crate::dma::sim::{tag, SimPlatform};
use crate::dma::{DmaTag, PostRead};
use std::vec;
use std::vec::Vec;

struct Rig {
    tag: &'static DmaTag<SimPlatform>,
    q: SplitQueue<SimPlatform>,
    dev: SimDevice,
}

fn rig(size: u16, event_idx: bool, indirect: bool) -> Rig {
    let tag = tag();
    tag.set_audit(true, None);
    tag.set_model(Some(SimCache::Copyback), PostRead::NoOp);
    let q = SplitQueue::new(
        tag,
        ["vq ring", "vq used", "vq indirect"],
        0,
        size,
        event_idx,
        indirect,
    )
    .unwrap();
    Rig {
        tag,
        q,
        dev: SimDevice::default(),
    }
}

impl Rig {
    fn assert_clean(&self) {
        let reports = self.tag.audit_findings();
        assert!(reports.is_empty(), "auditor: {reports:#?}");
    }
    fn fetch(&mut self) -> Vec<super::sim::Chain> {
        self.dev.fetch(&self.q, self.tag.platform())
    }
    fn drain(&mut self) -> Vec<(u32, u32)> {
        let mut v = Vec::new();
        while let Some(c) = self.q.pop_used().unwrap() {
            v.push(c);
        }
        v
    }
}

/// `SplitQueue::add` for these tests.
#[allow(unsafe_code)]
fn add(q: &mut SplitQueue<SimPlatform>, bufs: &[Buffer], token: u32) -> Result<u16, QueueError> {
    // SAFETY: the simulated device (sim.rs) reads and writes only the queue's ring memory,
    // never the buffers' addresses, which therefore need not be real memory.
    unsafe { q.add(bufs, token) }
}

/// A request-like chain: `n` buffers, the last device-writable.
fn req(n: usize, base: u32) -> Vec<Buffer> {
    (0..n)
        .map(|i| Buffer {
            addr: base + i as u32 * 0x1000,
            len: 512,
            device_writes: i + 1 == n,
        })
        .collect()
}

#[test]
fn in_order_completion() {
    let mut r = rig(8, false, false);
    let heads: Vec<u16> = (0..2)
        .map(|t| add(&mut r.q, &req(3, 0x10_0000 * (t + 1)), 100 + t).unwrap())
        .collect();
    assert_eq!(r.q.num_free(), 2);
    assert!(
        r.q.publish().unwrap(),
        "notify: the device did not suppress"
    );
    let chains = r.fetch();
    assert_eq!(chains.len(), 2);
    assert_eq!(
        chains[0].bufs,
        req(3, 0x10_0000),
        "the device reads what the driver wrote"
    );
    assert_eq!(chains[1].head, heads[1]);
    for c in &chains {
        r.dev.complete(&r.q, c.head, 200);
    }
    assert_eq!(r.drain(), vec![(100, 200), (101, 200)]);
    assert_eq!(r.q.num_free(), 8);
    assert_eq!(r.q.pop_used().unwrap(), None);
    r.assert_clean();
}

#[test]
fn out_of_order_completion() {
    let mut r = rig(8, false, false);
    for t in 0..4 {
        add(&mut r.q, &req(2, 0x20_0000 * (t + 1)), t).unwrap();
    }
    r.q.publish().unwrap();
    let chains = r.fetch();
    for i in [2usize, 0, 3, 1] {
        r.dev.complete(&r.q, chains[i].head, i as u32);
    }
    assert_eq!(r.drain(), vec![(2, 2), (0, 0), (3, 3), (1, 1)]);
    // Descriptors freed out of order are reused correctly.
    for t in 0..4 {
        add(&mut r.q, &req(2, 0x30_0000), 10 + t).unwrap();
    }
    r.q.publish().unwrap();
    let chains = r.fetch();
    assert_eq!(chains.len(), 4);
    assert!(chains.iter().all(|c| c.bufs == req(2, 0x30_0000)));
    r.assert_clean();
}

#[test]
fn a_batch_is_one_publish_and_one_notification() {
    let mut r = rig(16, false, false);
    for t in 0..5 {
        add(&mut r.q, &req(1, 0x1000 * (t + 1)), t).unwrap();
    }
    assert!(r.q.publish().unwrap());
    assert_eq!((r.q.stats().publishes, r.q.stats().notifications), (1, 1));
    assert!(!r.q.publish().unwrap(), "nothing new: no notification");
    assert_eq!(r.fetch().len(), 5);
    r.assert_clean();
}

#[test]
fn completions_written_piecemeal_are_taken_only_after_idx() {
    let mut r = rig(8, false, false);
    add(&mut r.q, &req(2, 0x4000), 7).unwrap();
    r.q.publish().unwrap();
    let c = r.fetch();
    // Step 1: the element only. The driver must not take it yet.
    r.dev.write_element(&r.q, 0, c[0].head.into(), 64);
    assert_eq!(r.q.pop_used().unwrap(), None);
    assert!(!r.q.has_used().unwrap());
    // Step 2: idx. Now it is there, with the element written in step 1.
    r.dev.write_used_idx(&r.q, 1);
    assert_eq!(r.q.pop_used().unwrap(), Some((7, 64)));
    r.assert_clean();
}

#[test]
fn indices_wrap_past_65535() {
    let mut r = rig(8, true, false);
    let mut next_token = 0u32;
    let mut seen = 0u32;
    while seen < 70_000 {
        for _ in 0..3 {
            add(&mut r.q, &req(2, 0x8000), next_token).unwrap();
            next_token += 1;
        }
        r.q.publish().unwrap();
        for c in r.fetch() {
            r.dev.complete(&r.q, c.head, 1);
        }
        for (token, len) in r.drain() {
            assert_eq!(
                (token, len),
                (seen, 1),
                "completions in order across the wrap"
            );
            seen += 1;
        }
    }
    assert!(
        r.dev.used_idx < 8000,
        "used idx wrapped ({})",
        r.dev.used_idx
    );
    assert_eq!(r.q.num_free(), 8);
    // Counted by the test, past avail idx's wrap: every chain added, every one taken.
    let stats = r.q.stats();
    assert_eq!((stats.chains, stats.completions), (next_token, seen));
    r.assert_clean();
}

#[test]
fn event_idx_decides_notifications() {
    let mut r = rig(8, true, false);
    r.dev.set_avail_event(&r.q, 0);
    add(&mut r.q, &req(1, 0x1000), 0).unwrap();
    assert!(r.q.publish().unwrap(), "avail_event 0 crossed by 0 -> 1");
    r.dev.set_avail_event(&r.q, 5);
    add(&mut r.q, &req(1, 0x1000), 1).unwrap();
    assert!(
        !r.q.publish().unwrap(),
        "avail_event 5 not crossed by 1 -> 2"
    );
    add(&mut r.q, &req(1, 0x1000), 2).unwrap();
    add(&mut r.q, &req(1, 0x1000), 3).unwrap();
    add(&mut r.q, &req(1, 0x1000), 4).unwrap();
    add(&mut r.q, &req(1, 0x1000), 5).unwrap();
    assert!(r.q.publish().unwrap(), "avail_event 5 crossed by 2 -> 6");
    assert_eq!((r.q.stats().notifications, r.q.stats().suppressed), (2, 1));
    // used_event tells the device where to interrupt.
    for c in r.fetch() {
        r.dev.complete(&r.q, c.head, 0);
    }
    assert_eq!(r.drain().len(), 6);
    assert!(!r.q.enable_interrupts().unwrap());
    assert_eq!(r.dev.used_event(&r.q), 6);
    // With interrupts wanted, every completion taken moves used_event along.
    add(&mut r.q, &req(1, 0x1000), 6).unwrap();
    r.q.publish().unwrap();
    for c in r.fetch() {
        r.dev.complete(&r.q, c.head, 0);
    }
    assert_eq!(r.drain().len(), 1);
    assert_eq!(r.dev.used_event(&r.q), 7);
    // Armed for the next completion only: taking it leaves used_event where it was.
    assert!(!r.q.arm_interrupt().unwrap());
    assert_eq!(r.dev.used_event(&r.q), 7);
    add(&mut r.q, &req(1, 0x1000), 7).unwrap();
    r.q.publish().unwrap();
    for c in r.fetch() {
        r.dev.complete(&r.q, c.head, 0);
    }
    assert_eq!(r.drain().len(), 1);
    assert_eq!(r.dev.used_event(&r.q), 7, "arm_interrupt does not follow");
    // Armed again: it moves to the completions taken.
    assert!(!r.q.arm_interrupt().unwrap());
    assert_eq!(r.dev.used_event(&r.q), 8);
    r.assert_clean();
}

#[test]
fn suppression_flags_both_ways() {
    let mut r = rig(8, false, false);
    r.dev.set_no_notify(&r.q, true);
    add(&mut r.q, &req(1, 0x1000), 0).unwrap();
    assert!(!r.q.publish().unwrap(), "device said NO_NOTIFY");
    r.dev.set_no_notify(&r.q, false);
    add(&mut r.q, &req(1, 0x1000), 1).unwrap();
    assert!(r.q.publish().unwrap());
    r.q.disable_interrupts().unwrap();
    assert_eq!(r.dev.avail_flags(&r.q), AVAIL_F_NO_INTERRUPT);
    // A completion lands while interrupts are off: enabling them must report it.
    let c = r.fetch();
    r.dev.complete(&r.q, c[0].head, 0);
    assert!(
        r.q.enable_interrupts().unwrap(),
        "the re-check after enabling must see the completion"
    );
    assert_eq!(r.dev.avail_flags(&r.q), 0);
    r.dev.complete(&r.q, c[1].head, 0);
    assert_eq!(r.drain().len(), 2);
    r.assert_clean();
}

/// Runs one chain through add, publish, the device and pop; returns the descriptors the
/// queue stored for it and what the device read.
fn round_trip(r: &mut Rig, bufs: &[Buffer], token: u32) -> (u32, Vec<Buffer>) {
    let before = r.q.stats().descriptors_written;
    add(&mut r.q, bufs, token).unwrap();
    r.q.publish().unwrap();
    let chains = r.fetch();
    assert_eq!(chains.len(), 1);
    r.dev.complete(&r.q, chains[0].head, 0);
    assert_eq!(r.drain(), [(token, 0)]);
    (
        r.q.stats().descriptors_written - before,
        chains[0].bufs.clone(),
    )
}

#[test]
fn a_repeated_chain_is_not_stored_again_and_a_changed_one_is() {
    for indirect in [true, false] {
        let mut r = rig(4, false, indirect);
        let a = req(3, 0x50_0000);
        // Indirect: the three table entries and the ring's descriptor; direct: three.
        let first = if indirect { 4 } else { 3 };
        assert_eq!(
            round_trip(&mut r, &a, 1),
            (first, a.clone()),
            "indirect {indirect}"
        );
        // The same chain again (the free list hands back the same head): nothing stored,
        // and the device still reads it whole (from memory, past the cache model).
        assert_eq!(
            round_trip(&mut r, &a, 2),
            (0, a.clone()),
            "indirect {indirect}"
        );
        // Only the middle buffer's length changes: that descriptor alone.
        let mut b = a.clone();
        b[1].len = 4096;
        assert_eq!(
            round_trip(&mut r, &b, 3),
            (1, b.clone()),
            "indirect {indirect}"
        );
        // A shorter chain: its last entry loses NEXT.
        let c = req(2, 0x50_0000);
        let (n, seen) = round_trip(&mut r, &c, 4);
        assert_eq!(seen, c, "indirect {indirect}");
        assert!(n >= 1, "indirect {indirect}: {n}");
        r.assert_clean();
    }
}

#[test]
fn indirect_chains_take_one_descriptor() {
    let mut r = rig(4, false, true);
    for t in 0..4 {
        add(&mut r.q, &req(5, 0x50_0000 + t * 0x10_0000), t).unwrap();
    }
    assert_eq!(r.q.num_free(), 0);
    r.q.publish().unwrap();
    let chains = r.fetch();
    assert_eq!(
        chains[3].bufs,
        req(5, 0x80_0000),
        "the device follows the indirect table"
    );
    for c in &chains {
        r.dev.complete(&r.q, c.head, 512);
    }
    assert_eq!(r.drain().len(), 4);
    assert_eq!(r.q.num_free(), 4);
    // One buffer needs no table.
    add(&mut r.q, &req(1, 0x1000), 9).unwrap();
    assert_eq!(r.q.num_free(), 3);
    r.assert_clean();
}

#[test]
fn bad_chains_are_refused() {
    let mut r = rig(4, false, false);
    assert_eq!(add(&mut r.q, &[], 0), Err(QueueError::EmptyChain));
    let bad = [
        Buffer {
            addr: 0x1000,
            len: 4,
            device_writes: true,
        },
        Buffer {
            addr: 0x2000,
            len: 4,
            device_writes: false,
        },
    ];
    assert_eq!(
        add(&mut r.q, &bad, 0),
        Err(QueueError::ReadableAfterWritable)
    );
    add(&mut r.q, &req(3, 0x1000), 0).unwrap();
    assert_eq!(
        add(&mut r.q, &req(2, 0x1000), 1),
        Err(QueueError::Full { needed: 2, free: 1 })
    );
    r.assert_clean();
}

/// Publishes one request and returns the rig and its head.
fn one_in_flight(writable: u32) -> (Rig, u16) {
    let mut r = rig(8, false, false);
    let bufs = [
        Buffer {
            addr: 0x1000,
            len: 16,
            device_writes: false,
        },
        Buffer {
            addr: 0x2000,
            len: writable,
            device_writes: true,
        },
    ];
    add(&mut r.q, &bufs, 42).unwrap();
    r.q.publish().unwrap();
    let head = r.fetch()[0].head;
    (r, head)
}

fn assert_broken(r: &mut Rig, fault: DeviceFault) {
    assert_eq!(r.q.pop_used(), Err(QueueError::Broken(fault)));
    assert_eq!(r.q.broken(), Some(fault));
    assert_eq!(
        add(&mut r.q, &req(1, 0x1000), 1),
        Err(QueueError::Broken(fault)),
        "stays broken"
    );
    assert_eq!(
        r.q.abandon_all(),
        vec![42],
        "requests in flight can be failed"
    );
}

#[test]
fn used_id_out_of_range() {
    let (mut r, _) = one_in_flight(512);
    r.dev.write_element(&r.q, 0, 9, 0);
    r.dev.write_used_idx(&r.q, 1);
    assert_broken(&mut r, DeviceFault::IdOutOfRange { id: 9, size: 8 });
}

#[test]
fn used_id_not_in_flight() {
    let (mut r, head) = one_in_flight(512);
    let other = (head + 1) % 8; // a descriptor inside the chain, not its head
    r.dev.write_element(&r.q, 0, other.into(), 0);
    r.dev.write_used_idx(&r.q, 1);
    assert_broken(&mut r, DeviceFault::IdNotInFlight { id: other.into() });
}

#[test]
fn duplicate_completion() {
    let (mut r, head) = one_in_flight(512);
    r.dev.complete(&r.q, head, 1);
    r.dev.complete(&r.q, head, 1);
    assert_eq!(r.q.pop_used(), Ok(Some((42, 1))));
    assert_eq!(
        r.q.pop_used(),
        Err(QueueError::Broken(DeviceFault::IdNotInFlight {
            id: head.into()
        }))
    );
}

#[test]
fn used_len_too_large() {
    let (mut r, head) = one_in_flight(512);
    r.dev.complete(&r.q, head, 513);
    assert_broken(
        &mut r,
        DeviceFault::LenTooLarge {
            id: head.into(),
            len: 513,
            writable: 512,
        },
    );
}

#[test]
fn used_idx_jump() {
    let (mut r, _) = one_in_flight(512);
    r.dev.write_used_idx(&r.q, 9);
    assert_broken(
        &mut r,
        DeviceFault::IdxJump {
            from: 0,
            to: 9,
            size: 8,
        },
    );
}

/// E1: the used ring's zeroes are CPU writes (alloc). On a copyback cache they are dirty
/// lines, which a bare PREREAD at creation would discard, leaving the old heap bytes in memory
/// for the device and for every later read (0xa5 in the simulated arena): used->idx would
/// jump and used->flags would say "no notify". A fresh queue of any size reads an empty used
/// ring and asks for the first notification.
#[test]
fn a_fresh_used_ring_reads_zero_under_a_copyback_cache() {
    for size in [4u16, 8, 32, 64, 256] {
        for event_idx in [false, true] {
            let mut r = rig(size, event_idx, false);
            assert_eq!(r.q.has_used(), Ok(false), "size {size}");
            add(&mut r.q, &req(2, 0x1000), 1).unwrap();
            assert_eq!(r.q.publish(), Ok(true), "size {size} event_idx {event_idx}");
            r.assert_clean();
        }
    }
}

/// One request through a queue of `sync` under the copyback model with `postread`: publish
/// (the notification decision reads the used ring), the device completes it, then the driver
/// polls used->idx `polls` times. Returns whether it ever saw the completion.
fn completion_seen(sync: UsedSync, postread: PostRead, event_idx: bool, polls: u32) -> bool {
    let mut r = rig(8, event_idx, false);
    r.tag.set_model(Some(SimCache::Copyback), postread);
    r.q.set_used_sync(sync);
    add(&mut r.q, &req(2, 0x1000), 1).unwrap();
    r.q.publish().unwrap();
    // A first completion check before the device answers (a poll, or an interrupt on a
    // shared line): it reads used->idx, filling its line.
    assert_eq!(r.q.has_used(), Ok(false));
    let chains = r.fetch();
    r.dev.complete(&r.q, chains[0].head, 0);
    (0..polls).any(|_| r.q.has_used().unwrap())
}

/// PR kern/60182 on the host: NetBSD's 2024 used-ring syncs never see a completion once a
/// read phase has cached used->idx and POSTREAD does nothing; an invalidating POSTREAD or the
/// corrected sequencing sees it at the first poll.
#[test]
fn the_netbsd_2024_sequencing_hangs_where_the_corrected_one_completes() {
    for event_idx in [false, true] {
        assert!(
            !completion_seen(UsedSync::NetBsd2024, PostRead::NoOp, event_idx, 1000),
            "event_idx {event_idx}: the stale line should hide the completion"
        );
        assert!(completion_seen(
            UsedSync::NetBsd2024,
            PostRead::Invalidate,
            event_idx,
            1
        ));
        assert!(completion_seen(
            UsedSync::Corrected,
            PostRead::NoOp,
            event_idx,
            1
        ));
    }
}

/// The store-before-load points get the platform's paravirtual barrier: after avail->idx
/// and before the notification decision's read; after re-arming interrupts and before
/// re-checking used->idx.
#[test]
fn publish_and_rearm_each_issue_the_paravirtual_barrier() {
    for event_idx in [false, true] {
        let mut r = rig(8, event_idx, false);
        let membars = || {
            r.tag
                .platform()
                .membars
                .load(core::sync::atomic::Ordering::Relaxed)
        };
        let before = membars();
        add(&mut r.q, &req(2, 0x1000), 1).unwrap();
        r.q.publish().unwrap();
        assert_eq!(membars(), before + 1, "publish");
        r.q.enable_interrupts().unwrap();
        assert_eq!(membars(), before + 2, "enable_interrupts");
    }
}

#[test]
fn pop_seen_takes_only_what_the_last_idx_read_announced() {
    let mut r = rig(8, false, false);
    for t in 0..2 {
        add(&mut r.q, &req(2, 0x10_0000 * (t + 1)), t).unwrap();
    }
    r.q.publish().unwrap();
    let chains = r.fetch();
    // Nothing announced yet: pop_seen does not look at idx.
    r.dev.complete(&r.q, chains[0].head, 7);
    assert_eq!(r.q.pop_seen().unwrap(), None);
    let reads = r.q.stats().used_idx_reads;
    assert_eq!(r.q.pop_used().unwrap(), Some((0, 7)));
    assert_eq!(r.q.stats().used_idx_reads, reads + 1);
    // The second completion lands after that read: pop_seen leaves it, with no read of idx;
    // pop_used reads idx again and takes it.
    r.dev.complete(&r.q, chains[1].head, 9);
    assert_eq!(r.q.pop_seen().unwrap(), None);
    assert_eq!(r.q.stats().used_idx_reads, reads + 1);
    assert_eq!(r.q.pop_used().unwrap(), Some((1, 9)));
    assert_eq!(r.q.pop_used().unwrap(), None);
    r.assert_clean();
}

/// `SplitQueue::add_at` for these tests.
#[allow(unsafe_code)]
fn add_at(
    q: &mut SplitQueue<SimPlatform>,
    head: u16,
    bufs: &[Buffer],
    token: u32,
) -> Result<(), QueueError> {
    // SAFETY: as `add` above: the simulated device never touches the buffers' addresses.
    unsafe { q.add_at(head, bufs, token) }
}

#[test]
fn fixed_heads_need_indirect_tables_and_an_unused_queue() {
    assert!(!rig(4, false, false).q.fix_heads());
    let mut r = rig(4, false, true);
    add(&mut r.q, &req(2, 0x1000), 1).unwrap();
    assert!(!r.q.fix_heads(), "a chain was added already");
    // Heads not fixed: add_at is refused.
    let mut r = rig(4, false, true);
    assert_eq!(
        add_at(&mut r.q, 0, &req(2, 0x1000), 1),
        Err(QueueError::HeadUnavailable { head: 0 })
    );
}

#[test]
fn fixed_heads_take_the_chosen_descriptor_and_come_back_to_their_owner() {
    let mut r = rig(4, false, true);
    assert!(r.q.fix_heads());
    // The free list is the caller's now: `add` finds the queue full.
    assert_eq!(
        add(&mut r.q, &req(2, 0x1000), 9),
        Err(QueueError::Full { needed: 1, free: 0 })
    );
    // Heads 3 and 1, out of order, each its own table.
    add_at(&mut r.q, 3, &req(3, 0x30_0000), 30).unwrap();
    add_at(&mut r.q, 1, &req(3, 0x10_0000), 10).unwrap();
    assert_eq!(
        add_at(&mut r.q, 3, &req(3, 0x40_0000), 31),
        Err(QueueError::HeadUnavailable { head: 3 }),
        "head 3 is in flight"
    );
    assert_eq!(
        add_at(&mut r.q, 4, &req(3, 0x40_0000), 40),
        Err(QueueError::HeadUnavailable { head: 4 }),
        "a queue of 4 has heads 0..3"
    );
    r.q.publish().unwrap();
    let chains = r.fetch();
    let seen: Vec<(u16, Vec<Buffer>)> = chains.iter().map(|c| (c.head, c.bufs.clone())).collect();
    assert_eq!(seen, [(3, req(3, 0x30_0000)), (1, req(3, 0x10_0000))]);
    r.dev.complete(&r.q, 1, 512);
    r.dev.complete(&r.q, 3, 512);
    assert_eq!(r.drain(), [(10, 512), (30, 512)]);
    // Completed heads are free for their owner again, and no descriptor went to the free
    // list: `add` still finds none.
    assert_eq!(r.q.num_free(), 0);
    add_at(&mut r.q, 3, &req(3, 0x30_0000), 32).unwrap();
    assert_eq!(
        add(&mut r.q, &req(2, 0x1000), 9),
        Err(QueueError::Full { needed: 1, free: 0 })
    );
    r.assert_clean();
}

#[test]
fn a_fixed_head_stores_only_what_changed_in_its_table() {
    let mut r = rig(4, false, true);
    assert!(r.q.fix_heads());
    let trip = |r: &mut Rig, head: u16, bufs: &[Buffer], token: u32| {
        let before = r.q.stats().descriptors_written;
        add_at(&mut r.q, head, bufs, token).unwrap();
        r.q.publish().unwrap();
        let chains = r.fetch();
        assert_eq!(chains.len(), 1);
        assert_eq!((chains[0].head, &chains[0].bufs[..]), (head, bufs));
        r.dev.complete(&r.q, head, 0);
        assert_eq!(r.drain(), [(token, 0)]);
        r.q.stats().descriptors_written - before
    };
    let a = req(3, 0x50_0000);
    let b = req(3, 0x60_0000);
    assert_eq!(
        trip(&mut r, 0, &a, 1),
        4,
        "three table entries and the ring's"
    );
    assert_eq!(trip(&mut r, 1, &b, 2), 4);
    // Each head still holds its own chain: nothing stored, the device reads it from memory.
    assert_eq!(trip(&mut r, 0, &a, 3), 0);
    assert_eq!(trip(&mut r, 1, &b, 4), 0);
    let mut c = a.clone();
    c[1].len = 4096;
    assert_eq!(trip(&mut r, 0, &c, 5), 1, "the data entry alone");
    // A refused chain stores nothing: the next chain at that head is compared with what
    // memory holds, not with the refused one. (Entry 0 of `bad` is entry 0 of `d`; stored
    // and never pushed, it would be skipped and the device would read `c`'s.)
    let d = req(3, 0x70_0000);
    let mut bad = d.clone();
    bad[1].device_writes = true;
    bad[2].device_writes = false;
    assert_eq!(
        add_at(&mut r.q, 0, &bad, 6),
        Err(QueueError::ReadableAfterWritable)
    );
    assert_eq!(trip(&mut r, 0, &d, 7), 3);
    let long = req(17, 0x80_0000);
    assert_eq!(
        add_at(&mut r.q, 2, &long, 8),
        Err(QueueError::ChainTooLong {
            buffers: 17,
            max: 16
        })
    );
    assert_eq!(add_at(&mut r.q, 2, &[], 8), Err(QueueError::EmptyChain));
    r.assert_clean();
}

/// `SplitQueue::add_again` for these tests.
#[allow(unsafe_code)]
fn add_again(q: &mut SplitQueue<SimPlatform>, head: u16, token: u32) -> Result<(), QueueError> {
    // SAFETY: as `add` above: the simulated device never touches the buffers' addresses.
    unsafe { q.add_again(head, token) }
}

#[test]
fn a_fixed_head_repeats_its_chain_from_memory() {
    let mut r = rig(4, false, true);
    assert!(r.q.fix_heads());
    assert_eq!(
        add_again(&mut r.q, 0, 1),
        Err(QueueError::HeadUnavailable { head: 0 }),
        "no chain stored at head 0 yet"
    );
    let a = req(3, 0x50_0000);
    add_at(&mut r.q, 0, &a, 1).unwrap();
    assert_eq!(
        add_again(&mut r.q, 0, 2),
        Err(QueueError::HeadUnavailable { head: 0 }),
        "head 0 is in flight"
    );
    r.q.publish().unwrap();
    let chains = r.fetch();
    r.dev.complete(&r.q, chains[0].head, 512);
    assert_eq!(r.drain(), [(1, 512)]);
    // Again: no descriptor stored, the device reads the same chain from memory, and the
    // used length is still checked against the chain's writable bytes (512).
    let before = r.q.stats().descriptors_written;
    add_again(&mut r.q, 0, 3).unwrap();
    r.q.publish().unwrap();
    let chains = r.fetch();
    assert_eq!((chains[0].head, &chains[0].bufs[..]), (0, &a[..]));
    assert_eq!(r.q.stats().descriptors_written, before);
    r.dev.complete(&r.q, 0, 513);
    assert_eq!(
        r.q.pop_used(),
        Err(QueueError::Broken(DeviceFault::LenTooLarge {
            id: 0,
            len: 513,
            writable: 512
        }))
    );
    r.assert_clean();
}

#[test]
fn add_again_is_refused_at_a_free_list_head_before_during_and_after_its_flight() {
    // Heads not fixed: a head's descriptors go back to the free list at completion and may
    // carry another chain next, so nothing is ever repeated from memory there.
    let mut r = rig(4, false, true);
    assert_eq!(
        add_again(&mut r.q, 0, 1),
        Err(QueueError::HeadUnavailable { head: 0 })
    );
    let head = add(&mut r.q, &req(3, 0x50_0000), 1).unwrap();
    assert_eq!(
        add_again(&mut r.q, head, 2),
        Err(QueueError::HeadUnavailable { head })
    );
    r.q.publish().unwrap();
    let chains = r.fetch();
    r.dev.complete(&r.q, chains[0].head, 512);
    assert_eq!(r.drain(), [(1, 512)]);
    assert_eq!(
        add_again(&mut r.q, head, 3),
        Err(QueueError::HeadUnavailable { head }),
        "completed at a free-list head"
    );
    r.assert_clean();
}

#[test]
fn a_publish_that_fails_pushes_its_descriptors_when_retried() {
    for fixed in [false, true] {
        let mut r = rig(4, false, fixed);
        let a = req(3, 0x50_0000);
        if fixed {
            assert!(r.q.fix_heads());
            add_at(&mut r.q, 2, &a, 1).unwrap();
        } else {
            add(&mut r.q, &a, 1).unwrap();
        }
        // The descriptors' push fails once: the chain stays queued, and the retry must push
        // them (a copyback cache keeps them from the device until then).
        crate::dma::mutant::FAIL_NEXT.with(|f| f.set(Some("queue.publish.descs")));
        assert!(r.q.publish().is_err());
        r.q.publish().unwrap();
        let chains = r.fetch();
        assert_eq!(chains.len(), 1, "fixed heads {fixed}");
        assert_eq!(chains[0].bufs, a, "fixed heads {fixed}");
        r.dev.complete(&r.q, chains[0].head, 512);
        assert_eq!(r.drain(), [(1, 512)]);
        r.assert_clean();
    }
}

/// `completions` is derived (chains less those in flight and those abandoned): it must
/// equal the completions the driver actually took, counted here pop by pop, before and
/// after chains are abandoned (a completed chain not yet taken counts as abandoned).
#[test]
fn completions_count_the_chains_taken_and_nothing_else() {
    let mut r = rig(8, false, false);
    for t in 0..3 {
        add(&mut r.q, &req(2, 0x1000 * (t + 1)), t).unwrap();
    }
    r.q.publish().unwrap();
    let chains = r.fetch();
    assert_eq!(chains.len(), 3);
    for c in &chains {
        r.dev.complete(&r.q, c.head, 1);
    }
    let mut taken = 0;
    for _ in 0..2 {
        assert!(r.q.pop_used().unwrap().is_some());
        taken += 1;
        assert_eq!(r.q.stats().completions, taken);
    }
    for t in 3..5 {
        add(&mut r.q, &req(1, 0x1000 * (t + 1)), t).unwrap();
    }
    assert_eq!((r.q.stats().chains, r.q.stats().completions), (5, taken));
    assert_eq!(
        r.q.abandon_all().len(),
        3,
        "one completed untaken, two never served"
    );
    assert_eq!((r.q.stats().chains, r.q.stats().completions), (5, taken));
}

/// The device reads, at every avail position, the head published there, whether memory held
/// it already (the queue then stores nothing) or not: in an 8-entry queue over many laps with
/// heads that repeat at a position and heads that change, and in a 512-entry one, larger than
/// the positions the queue remembers, where positions 0 and 256 take a head no other does.
#[test]
fn the_device_reads_each_avail_entry_as_published() {
    for (size, laps) in [(8u16, 40u32), (512, 2)] {
        let mut r = rig(size, false, true);
        assert!(r.q.fix_heads());
        let n = u32::from(size) * laps;
        let mut stored = std::collections::BTreeSet::new();
        for i in 0..n {
            let head = if size == 8 {
                // Runs of one head, then another: positions see both repeats and changes.
                ((i / 3) % 5) as u16
            } else {
                u16::from(i % 256 == 0)
            };
            let bufs = req(2, 0x10_0000 * (u32::from(head) + 1));
            if stored.insert(head) {
                add_at(&mut r.q, head, &bufs, i).unwrap();
            } else {
                add_again(&mut r.q, head, i).unwrap();
            }
            r.q.publish().unwrap();
            let chains = r.fetch();
            assert_eq!(chains.len(), 1);
            assert_eq!(
                (chains[0].head, &chains[0].bufs[..]),
                (head, &bufs[..]),
                "queue of {size}, chain {i} at avail position {}",
                i % u32::from(size)
            );
            r.dev.complete(&r.q, head, 512);
            assert_eq!(r.drain(), [(i, 512)]);
        }
        r.assert_clean();
    }
}

/// A publish whose push of the avail entries fails is redone whole by the next: the entries
/// (in a line of their own, not avail idx's: position 13 of 16) reach the device then, which
/// the copyback model holds back until they are pushed.
#[test]
fn a_publish_failing_at_the_avail_push_pushes_the_entries_when_retried() {
    let mut r = rig(16, false, true);
    assert!(r.q.fix_heads());
    let a = req(2, 0x50_0000);
    add_at(&mut r.q, 3, &a, 0).unwrap();
    r.q.publish().unwrap();
    r.fetch();
    r.dev.complete(&r.q, 3, 512);
    assert_eq!(r.drain(), [(0, 512)]);
    // Positions 1..13 take head 3 again (memory holds 0 there: stored each time).
    for t in 1..13 {
        add_again(&mut r.q, 3, t).unwrap();
        r.q.publish().unwrap();
        assert_eq!(r.fetch()[0].head, 3);
        r.dev.complete(&r.q, 3, 512);
        assert_eq!(r.drain(), [(t, 512)]);
    }
    add_again(&mut r.q, 3, 13).unwrap();
    crate::dma::mutant::FAIL_NEXT.with(|f| f.set(Some("queue.publish.avail")));
    assert!(r.q.publish().is_err());
    r.q.publish().unwrap();
    let chains = r.fetch();
    assert_eq!(
        (chains.len(), chains[0].head),
        (1, 3),
        "the entry at position 13"
    );
    r.dev.complete(&r.q, 3, 512);
    assert_eq!(r.drain(), [(13, 512)]);
    r.assert_clean();
}

/// `fix_heads` refuses once a chain was added, also when avail idx has wrapped back to 0
/// (65,536 chains later) with every descriptor free again.
#[test]
fn fix_heads_is_refused_after_avail_idx_wrapped_to_zero() {
    let mut r = rig(4, false, true);
    for t in 0..65_536u32 {
        add(&mut r.q, &req(1, 0x8000), t).unwrap();
        r.q.publish().unwrap();
        let c = r.fetch();
        r.dev.complete(&r.q, c[0].head, 0);
        assert_eq!(r.drain(), [(t, 0)]);
    }
    assert_eq!((r.q.num_free(), r.q.stats().chains), (4, 65_536));
    assert!(!r.q.fix_heads(), "65,536 chains were added");
}
