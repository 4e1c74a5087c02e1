//! In-guest tests of the virtio-blk driver on the runner's scratch disks (slot 0: 16 MiB,
//! slot 1: 1 MiB; `disks=` names them). They overwrite those disks.

use crate::kern::disks::{self, Disk};
use crate::selftest::harness::{Failure, Test, TestResult};
use alloc::format;
use alloc::vec;
use alloc::vec::Vec;
use console_proto::scratch;
use drivers::blk::virtio_blk::{Op, OpenOptions};
use drivers::blk::{BlkError, BlockDevice, CompletionMode, SECTOR};
use drivers::virtio::mmio::DeviceInfo;

pub fn tests() -> Vec<Test> {
    vec![
        Test::new("blk::bad_requests_are_refused", bad_requests_are_refused),
        Test::new("blk::flush_and_get_id", flush_and_get_id),
        Test::new("blk::whole_disk_pattern_interrupt", || {
            whole_disk_pattern(CompletionMode::Interrupt)
        }),
        Test::new("blk::whole_disk_pattern_polled", || {
            whole_disk_pattern(CompletionMode::Polled)
        }),
        Test::new("blk::random_io_against_shadow_interrupt", || {
            random_io(CompletionMode::Interrupt)
        }),
        Test::new("blk::random_io_against_shadow_polled", || {
            random_io(CompletionMode::Polled)
        }),
        Test::new(
            "blk::two_disks_on_one_interrupt_level",
            two_disks_on_one_interrupt_level,
        ),
        Test::new(
            "blk::read_only_disk_refuses_writes",
            read_only_disk_refuses_writes,
        ),
        Test::new("blk::injected_io_errors_interrupt", || {
            injected_io_errors(CompletionMode::Interrupt)
        }),
        Test::new("blk::injected_io_errors_polled", || {
            injected_io_errors(CompletionMode::Polled)
        }),
        Test::new("blk::discard_and_write_zeroes", discard_and_write_zeroes),
        Test::new("blk::missing_disk_is_an_error", missing_disk_is_an_error),
        Test::new("blk::seed_live_matrix", seed_live_matrix),
        Test::new("blk::a_disk_opens_once", a_disk_opens_once),
        Test::new(
            "blk::timeout_is_an_error_and_the_disk_recovers",
            timeout_is_an_error_and_the_disk_recovers,
        ),
        Test::new(
            "blk::every_disk_interrupt_is_claimed",
            every_disk_interrupt_is_claimed,
        ),
    ]
}

fn err(e: impl core::fmt::Display) -> Failure {
    Failure::Failed(format!("{e}"))
}

/// The scratch disk in `slot`, or a skip when the runner attached none.
fn scratch(slot: u32) -> Result<DeviceInfo, Failure> {
    let disks = crate::kern::boot::options().disks;
    if disks & (1 << slot) == 0 {
        return Err(Failure::Skipped(format!(
            "no scratch disk in slot {slot} (cargo xtask test attaches them)"
        )));
    }
    crate::board::virt::virtio_probe::devices()
        .find(|d| d.slot == slot && d.device_id == 2)
        .copied()
        .ok_or_else(|| err(format!("scratch disk in slot {slot} not found")))
}

fn open(slot: u32, mode: CompletionMode, event_idx: bool) -> Result<Disk, Failure> {
    let opts = OpenOptions {
        mode,
        event_idx,
        ..OpenOptions::default()
    };
    disks::open(scratch(slot)?.slot, opts).map_err(err)
}

/// Byte `i` of sector `s` for a given seed: sector number and seed mixed into every byte.
fn pattern(seed: u32, s: u64, i: usize) -> u8 {
    let h = (s as u32).wrapping_mul(2_654_435_761) ^ seed;
    (h >> ((i % 4) * 8)) as u8 ^ i as u8
}

/// The disk's logical block: its size in bytes and in 512-byte sectors.
fn block(d: &Disk) -> (usize, u64) {
    let bs = d.block_size();
    (bs as usize, u64::from(bs / SECTOR))
}

fn bad_requests_are_refused() -> TestResult {
    let mut d = open(1, CompletionMode::Interrupt, true)?;
    let cap = d.capacity();
    let (bs, spb) = block(&d);
    let mut buf = vec![0u8; 2 * bs];
    ensure_eq!(
        d.read(cap - spb, &mut buf),
        Err(BlkError::OutOfRange {
            sector: cap - spb,
            sectors: 2 * spb,
            capacity: cap
        })
    );
    ensure_eq!(
        d.read(0, &mut buf[..100]),
        Err(BlkError::Unaligned {
            sector: 0,
            len: 100,
            block: bs as u32
        })
    );
    ensure_eq!(d.write(0, &[]), Err(BlkError::Empty));
    // The last block-aligned sector number: out of range, not unaligned.
    let last = u64::MAX / spb * spb;
    ensure_eq!(
        d.read(last, &mut buf[..bs]),
        Err(BlkError::OutOfRange {
            sector: last,
            sectors: spb,
            capacity: cap
        })
    );
    if spb > 1 {
        // A 512-byte request (a whole sector, not a whole block) is refused before the device.
        ensure_eq!(
            d.read(0, &mut buf[..512]),
            Err(BlkError::Unaligned {
                sector: 0,
                len: 512,
                block: bs as u32
            })
        );
        ensure_eq!(
            d.write(1, &buf[..bs]),
            Err(BlkError::Unaligned {
                sector: 1,
                len: bs,
                block: bs as u32
            })
        );
    } else {
        // Skipped: with 512-byte blocks every whole sector is a whole block, so there is
        // no sub-block request to refuse.
        crate::log_info!("blk: 512-byte blocks: the sub-block request check does not apply");
    }
    ensure_eq!(d.stats().errors, 0);
    // Still usable.
    d.read(cap - 2 * spb, &mut buf).map_err(err)?;
    Ok(())
}

fn flush_and_get_id() -> TestResult {
    let mut d = open(0, CompletionMode::Polled, false)?;
    let serial = scratch::DISKS[0].serial.as_bytes();
    ensure_eq!(d.serial(), serial);
    ensure_eq!(d.get_id().map_err(err)?[..serial.len()], *serial);
    d.flush().map_err(err)?;
    ensure!(d.stats().errors == 0, "errors {:?}", d.stats());
    Ok(())
}

fn whole_disk_pattern(mode: CompletionMode) -> TestResult {
    let mut d = open(0, mode, true)?;
    let cap = d.capacity();
    let seed = crate::kern::time::now() as u32 | 1;
    let chunk_sectors = 2048u64; // 1 MiB per call: the driver splits it into requests
    let mut buf = vec![0u8; (chunk_sectors * 512) as usize];
    let mut s = 0;
    while s < cap {
        let n = chunk_sectors.min(cap - s);
        let b = &mut buf[..(n * 512) as usize];
        for (k, byte) in b.iter_mut().enumerate() {
            *byte = pattern(seed, s + (k / 512) as u64, k % 512);
        }
        d.write(s, b)
            .map_err(|e| err(format!("write at {s}: {e}")))?;
        s += n;
    }
    d.flush().map_err(err)?;
    let mut s = 0;
    while s < cap {
        let n = chunk_sectors.min(cap - s);
        let b = &mut buf[..(n * 512) as usize];
        b.fill(0);
        d.read(s, b).map_err(|e| err(format!("read at {s}: {e}")))?;
        for (k, &byte) in b.iter().enumerate() {
            let (sector, at) = (s + (k / 512) as u64, k % 512);
            ensure!(
                byte == pattern(seed, sector, at),
                "sector {sector} byte {at}: {byte:#x}, expected {:#x}",
                pattern(seed, sector, at)
            );
        }
        s += n;
    }
    let st = d.stats();
    ensure_eq!(st.bytes_written, cap * 512);
    ensure_eq!(st.bytes_read, cap * 512);
    if mode == CompletionMode::Interrupt {
        ensure!(st.interrupts > 0, "no interrupt in interrupt mode: {st:?}");
    } else {
        ensure!(st.polls > 0, "no poll in polled mode: {st:?}");
    }
    Ok(())
}

struct Lcg(u32);
impl Lcg {
    fn next(&mut self, below: u32) -> u32 {
        self.0 = self.0.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        (self.0 >> 8) % below
    }
}

/// Batches of 1..32 non-overlapping random reads and writes in flight at once, checked
/// against a shadow copy of the disk, with EVENT_IDX negotiated and refused.
fn random_io(mode: CompletionMode) -> TestResult {
    for event_idx in [true, false] {
        let mut d = open(1, mode, event_idx)?;
        let cap = d.capacity();
        let mut shadow = vec![0u8; (cap * 512) as usize];
        d.read(0, &mut shadow).map_err(err)?;
        let mut rng = Lcg(0x5eed ^ u32::from(event_idx));
        let (bs, spb) = block(&d);
        // Up to 32 KiB per request, in whole blocks.
        let max_blocks = (d.max_transfer() / bs as u32).min((32 * 1024 / bs as u32).max(1));
        for round in 0..60 {
            let qd = 1 + rng.next(d.queue_depth().min(32) as u32) as usize;
            let mut taken: Vec<(u64, u64)> = Vec::new();
            let mut reads: Vec<(u64, u64)> = Vec::new();
            for i in 0..qd {
                let n = (1 + u64::from(rng.next(max_blocks))) * spb;
                let s = u64::from(rng.next(((cap - n) / spb) as u32)) * spb;
                if taken.iter().any(|&(a, b)| s < b && a < s + n) {
                    continue;
                }
                taken.push((s, s + n));
                let token = i as u64;
                if rng.next(2) == 0 {
                    let fill_byte = rng.next(256) as u8;
                    let range = (s * 512) as usize..((s + n) * 512) as usize;
                    for (k, b) in shadow[range.clone()].iter_mut().enumerate() {
                        *b = fill_byte ^ (k as u8);
                    }
                    let src = &shadow[range];
                    d.submit(Op::Write, s, (n * 512) as u32, token, |dst| {
                        dst.copy_from_slice(src)
                    })
                    .map_err(err)?;
                } else {
                    d.submit(Op::Read, s, (n * 512) as u32, token, |_| {})
                        .map_err(err)?;
                    reads.push((token, s));
                }
            }
            d.kick().map_err(err)?;
            let mut outstanding = taken.len();
            let mut mismatch = None;
            while outstanding > 0 {
                d.wait().map_err(|e| err(format!("round {round}: {e}")))?;
                let shadow = &shadow;
                let reads = &reads;
                outstanding -= d
                    .reap(|token, op, r| match (op, r) {
                        (Op::Read, Ok(data)) => {
                            let s = reads
                                .iter()
                                .find(|(t, _)| *t == token)
                                .map(|(_, s)| *s)
                                .unwrap_or(0);
                            let at = (s * 512) as usize;
                            if data != &shadow[at..at + data.len()] && mismatch.is_none() {
                                mismatch = Some(format!(
                                    "read of sector {s} ({} bytes) differs from the shadow",
                                    data.len()
                                ));
                            }
                        }
                        (_, Err(e)) => mismatch = Some(format!("{op:?}: {e}")),
                        _ => {}
                    })
                    .map_err(err)?;
            }
            if let Some(m) = mismatch {
                return Err(err(format!(
                    "EVENT_IDX {event_idx}, round {round}, QD {qd}: {m}"
                )));
            }
        }
        // Whole-disk check at the end.
        let mut all = vec![0u8; (cap * 512) as usize];
        d.read(0, &mut all).map_err(err)?;
        ensure!(
            all == shadow,
            "EVENT_IDX {event_idx}: the disk differs from the shadow copy"
        );
    }
    Ok(())
}

/// Slots 0 and 1 share PIC2, so CPU level 2: one dispatch serves both disks' bits.
fn two_disks_on_one_interrupt_level() -> TestResult {
    let mut a = open(0, CompletionMode::Interrupt, true)?;
    let mut b = open(1, CompletionMode::Interrupt, true)?;
    let data_a = vec![0xa1u8; 64 * 1024];
    let data_b = vec![0xb2u8; 64 * 1024];
    for round in 0..20u64 {
        a.submit(Op::Write, round * 128, data_a.len() as u32, 1, |d| {
            d.copy_from_slice(&data_a)
        })
        .map_err(err)?;
        b.submit(Op::Write, round * 16, data_b.len() as u32, 2, |d| {
            d.copy_from_slice(&data_b)
        })
        .map_err(err)?;
        a.kick().map_err(err)?;
        b.kick().map_err(err)?;
        for d in [&mut a, &mut b] {
            let mut got = 0;
            while got == 0 {
                d.wait().map_err(err)?;
                got += d.reap(|_, _, r| assert!(r.is_ok())).map_err(err)?;
            }
        }
    }
    let mut check = vec![0u8; 64 * 1024];
    a.read(19 * 128, &mut check).map_err(err)?;
    ensure!(check == data_a, "disk 0 data wrong");
    b.read(19 * 16, &mut check).map_err(err)?;
    ensure!(check == data_b, "disk 1 data wrong");
    ensure!(
        a.stats().interrupts > 0 && b.stats().interrupts > 0,
        "{:?} {:?}",
        a.stats(),
        b.stats()
    );
    Ok(())
}

/// The byte a fresh scratch disk holds at offset i of sector s.
fn runner_pattern(s: u64, i: usize) -> u8 {
    scratch::pattern(s, i as u64)
}

fn read_only_disk_refuses_writes() -> TestResult {
    let mut d = open(scratch::READ_ONLY_SLOT, CompletionMode::Interrupt, true)?;
    ensure!(
        d.read_only(),
        "slot 2 should be the read-only scratch disk (readonly=on)"
    );
    let (bs, spb) = block(&d);
    // Block 5: sector 5 on a 512-byte disk.
    let at = 5 * spb;
    let data = vec![0x11u8; bs];
    ensure_eq!(d.write(at, &data), Err(BlkError::ReadOnly));
    ensure_eq!(d.write_zeroes(at, spb as u32), Err(BlkError::ReadOnly));
    let mut back = vec![0u8; 2 * bs];
    d.read(at, &mut back).map_err(err)?;
    ensure!(
        back.iter()
            .enumerate()
            .all(|(k, &b)| b == runner_pattern(at + (k / 512) as u64, k % 512)),
        "read-only disk content changed"
    );
    Ok(())
}

/// Slot 3 sits behind QEMU's blkdebug: reads covering sector 100 and writes covering
/// sector 200 fail with EIO (`console_proto::scratch`; 512-byte sector numbers). Requests
/// are whole blocks: on a 4 KiB-block disk the failing ones are blocks 12 (sectors 96-103)
/// and 25 (200-207).
fn injected_io_errors(mode: CompletionMode) -> TestResult {
    let mut d = open(scratch::FAULTY_SLOT, mode, true)?;
    ensure!(
        d.serial()
            == scratch::DISKS[scratch::FAULTY_SLOT as usize]
                .serial
                .as_bytes(),
        "slot {} is not the blkdebug disk",
        scratch::FAULTY_SLOT
    );
    let (bs, spb) = block(&d);
    // The blocks holding the failing sectors.
    let (bad_read, bad_write) = (
        scratch::READ_ERROR_SECTOR / spb * spb,
        scratch::WRITE_ERROR_SECTOR / spb * spb,
    );
    let mut one = vec![0u8; bs];
    ensure_eq!(
        d.read(bad_read, &mut one),
        Err(BlkError::Io { sector: bad_read })
    );
    let mut five = vec![0u8; 5 * bs];
    let before = bad_read - 2 * spb;
    ensure_eq!(
        d.read(before, &mut five),
        Err(BlkError::Io { sector: before })
    );
    for s in [bad_read - spb, bad_read + spb] {
        d.read(s, &mut one)
            .map_err(|e| err(format!("neighbour sector {s}: {e}")))?;
        ensure!(
            one.iter()
                .enumerate()
                .all(|(i, &b)| b == runner_pattern(s + (i / 512) as u64, i % 512)),
            "sector {s} content"
        );
    }
    let data = vec![0x42u8; bs];
    ensure_eq!(
        d.write(bad_write, &data),
        Err(BlkError::Io { sector: bad_write })
    );
    d.write(bad_write - spb, &data)
        .map_err(|e| err(format!("neighbour write: {e}")))?;
    d.write(bad_write + spb, &data)
        .map_err(|e| err(format!("neighbour write: {e}")))?;
    // Still usable after the errors.
    d.read(0, &mut five).map_err(err)?;
    ensure!(d.stats().errors >= 3, "errors counted: {:?}", d.stats());
    Ok(())
}

fn discard_and_write_zeroes() -> TestResult {
    let mut d = open(1, CompletionMode::Interrupt, true)?;
    let seed = 0x0bad_f00d;
    let (bs, spb) = block(&d);
    // 12 blocks from the one holding sector 300; block i starts at sector base + i * spb.
    let base = 300 / spb * spb;
    let mut buf = vec![0u8; 12 * bs];
    for (k, b) in buf.iter_mut().enumerate() {
        *b = pattern(seed, base + (k / 512) as u64, k % 512);
    }
    d.write(base, &buf).map_err(err)?;
    // Blocks 2..=4 zeroed, 8..=9 discarded: several requests each under small device limits.
    d.write_zeroes(base + 2 * spb, 3 * spb as u32)
        .map_err(err)?;
    d.discard(base + 8 * spb, 2 * spb as u32).map_err(err)?;
    let mut back = vec![0u8; 12 * bs];
    d.read(base, &mut back).map_err(err)?;
    for (k, &b) in back.iter().enumerate() {
        let s = base + (k / 512) as u64;
        let expected = match (s - base) / spb {
            2..=4 => Some(0),
            // Discarded: contents unspecified by virtio; only that it reads back.
            8..=9 => None,
            _ => Some(pattern(seed, s, k % 512)),
        };
        if let Some(e) = expected {
            ensure!(
                b == e,
                "sector {s} byte {}: {b:#x}, expected {e:#x}",
                k % 512
            );
        }
    }
    let cap = d.capacity();
    ensure_eq!(
        d.write_zeroes(cap, spb as u32),
        Err(BlkError::OutOfRange {
            sector: cap,
            sectors: spb,
            capacity: cap
        })
    );
    Ok(())
}

/// Opening a slot the boot probe found empty fails with NoDevice. The slot is one the probe
/// left empty (the highest: any slot may hold a device the runner or the user attached).
fn missing_disk_is_an_error() -> TestResult {
    let Some(slot) = crate::board::virt::virtio_probe::empty_slots().last() else {
        return Err(Failure::Skipped(
            "every virtio slot holds a device: no empty one to open".into(),
        ));
    };
    match disks::open(slot, OpenOptions::default()) {
        Err(BlkError::NoDevice) => Ok(()),
        Err(e) => Err(err(format!("expected NoDevice, got {e}"))),
        Ok(_) => Err(err("an empty slot opened as a disk")),
    }
}

/// One driver per device: a second open of an open slot is refused (the driver's contract
/// that nothing else drives its slot), and the slot opens again once the first Disk is gone.
fn a_disk_opens_once() -> TestResult {
    let first = open(1, CompletionMode::Polled, false)?;
    match disks::open(1, OpenOptions::default()) {
        Err(BlkError::InUse) => {}
        Err(e) => return Err(err(format!("expected InUse, got {e}"))),
        Ok(_) => return Err(err("slot 1 opened twice")),
    }
    drop(first);
    let again = open(1, CompletionMode::Polled, false)?;
    ensure!(again.capacity() > 0, "reopened disk has no capacity");
    Ok(())
}

/// A read published with its notification withheld cannot complete: an idle device does not
/// look at the ring unnotified. So its wait fails with Timeout (not a hang, not a silent
/// partial result) however fast or slow the host is. The next request's kick writes the owed
/// notification and the device runs both: the late completion must not land in the later
/// request, and is taken (data and count) once it comes.
fn timeout_is_an_error_and_the_disk_recovers() -> TestResult {
    // No synchronous operation uses generation 0, so no later read takes this token as its own.
    const LATE: u64 = 0;
    for mode in [CompletionMode::Interrupt, CompletionMode::Polled] {
        let mut d = open(1, mode, true)?;
        let (bs, spb) = block(&d);
        // 1000 is a multiple of 8: block-aligned up to 4 KiB blocks; b is one block.
        let b_at = 1500 / spb * spb;
        let a: Vec<u8> = (0..64 * 1024).map(|i| 0xa0 ^ i as u8).collect();
        let b: Vec<u8> = (0..bs).map(|i| 0xb0 ^ (i as u8).wrapping_mul(3)).collect();
        d.write(1000, &a).map_err(err)?;
        d.write(b_at, &b).map_err(err)?;
        let read_before = d.stats().bytes_read;
        // QEMU 10 looks at the ring unnotified while it polls after a completion (as in
        // `virtio::timed_out_request_frees_nothing_the_device_may_write`): a pause well past
        // that (microseconds of host time), so only a notification could start this read.
        crate::kern::time::sleep(20 * crate::kern::time::MILLIS);
        d.submit(Op::Read, 1000, a.len() as u32, LATE, |_| {})
            .map_err(err)?;
        d.publish().map_err(err)?;
        // Any timeout will do: nothing can complete before the notification.
        d.set_timeout(20 * crate::kern::time::MILLIS);
        match d.wait() {
            Err(BlkError::Timeout { .. }) => {}
            Ok(()) => {
                return Err(err(format!(
                    "{mode:?}: a request the device was never notified of completed"
                )))
            }
            Err(e) => return Err(err(format!("{mode:?}: expected Timeout, got {e}"))),
        }
        ensure_eq!(d.in_flight(), 1);
        d.set_timeout(OpenOptions::default().timeout_ns);
        let mut check = vec![0u8; bs];
        d.read(b_at, &mut check)
            .map_err(|e| err(format!("{mode:?} after a timeout: {e}")))?;
        ensure!(
            check == b,
            "{mode:?}: a read after a timeout returned another request's data"
        );
        // The late completion, unless the read above already passed over it.
        let mut late = None;
        while d.in_flight() > 0 {
            d.wait()
                .map_err(|e| err(format!("{mode:?}: the late completion: {e}")))?;
            d.reap(|token, _, r| {
                if token == LATE {
                    late = Some(r.map(|data| data == &a[..]));
                }
            })
            .map_err(err)?;
        }
        ensure_eq!(
            d.stats().bytes_read - read_before,
            (a.len() + b.len()) as u64
        );
        if let Some(r) = late {
            ensure!(
                r == Ok(true),
                "{mode:?}: the late completion: {r:?} (true: the data written at sector 1000)"
            );
        }
    }
    Ok(())
}

/// Every interrupt a disk raises reaches its handler. Each open of the same disk runs
/// interrupt-mode requests, the open's own GET_ID first; a line left enabled by an earlier
/// open, or a handler registered only after the first request, shows up here as an
/// unclaimed interrupt (the dispatcher then disables the line, and under QEMU >= 8.2 the
/// request waits out its timeout).
fn every_disk_interrupt_is_claimed() -> TestResult {
    let info = scratch(1)?;
    let line = |what| {
        crate::board::virt::irq::stats(info.irq)
            .ok_or_else(|| err(format!("no line {} ({what})", info.irq)))
    };
    let before = line("before")?;
    for round in 0..3u64 {
        let mut d = open(1, CompletionMode::Interrupt, round != 1)?;
        let mut buf = vec![0u8; 4096];
        d.read(round * 8, &mut buf).map_err(err)?;
        ensure!(
            d.stats().interrupts > 0,
            "round {round}: no interrupt in interrupt mode: {:?}",
            d.stats()
        );
        let now = line("open")?;
        ensure!(
            now.enabled,
            "round {round}: the open disk's line is disabled"
        );
    }
    let after = line("after")?;
    ensure!(after.count > before.count, "the line counted no interrupt");
    ensure_eq!(after.unclaimed, before.unclaimed);
    ensure!(
        !after.enabled && after.handlers == before.handlers,
        "a closed disk leaves its line {after:?} (before: {before:?})"
    );
    Ok(())
}

/// How long a cell's request may take before the cell is called hung: a request QEMU serves
/// takes well under a millisecond of guest time; a stale used ring never ends.
const LIVE_TIMEOUT_NS: u64 = 2 * crate::kern::time::SECONDS;

/// The seed's question answered by the real driver against QEMU's virtio-blk: every used-ring
/// sync sequencing x POSTREAD semantics x cache model x completion mode x EVENT_IDX, one
/// line per cell (`console_proto::seed_live`), which the xtask compares with the table in
/// docs/dma-sync.md. Each request of a cell is published, then polled once before the device
/// is notified (as an early poll or an interrupt on a shared line does), then kicked and
/// waited for: that first read phase always precedes the device's answer, so no outcome
/// depends on how fast the host runs the device. Fails here if a corrected cell is not
/// `works` with a clean audit.
fn seed_live_matrix() -> TestResult {
    use console_proto::seed_live::{Audit, Cell, Line, Sync};
    if crate::kern::boot::options().dma_model.is_some() {
        return Err(Failure::Skipped(
            "the matrix sets its own cache models (run without dma_model=)".into(),
        ));
    }
    let slot = scratch(1)?.slot;
    let mut wrong = Vec::new();
    for cell in Cell::all() {
        let (outcome, audit) = live_cell(slot, cell)?;
        let line = Line {
            cell,
            outcome,
            audit,
        };
        crate::println!("{line}");
        if cell.sync == Sync::Corrected
            && (outcome != console_proto::seed_live::Outcome::Works || audit != Audit::Clean)
        {
            wrong.push(format!("{line}"));
        }
    }
    ensure!(
        wrong.is_empty(),
        "corrected sequencing failed in {} cells: {}",
        wrong.len(),
        wrong.join("; ")
    );
    Ok(())
}

/// Runs one cell on a fresh open of the scratch disk in `slot`.
fn live_cell(
    slot: u32,
    cell: console_proto::seed_live::Cell,
) -> Result<
    (
        console_proto::seed_live::Outcome,
        console_proto::seed_live::Audit,
    ),
    Failure,
> {
    use crate::arch::m68k::dma::DMA;
    use crate::arch::m68k::dma_sync::CpuCache;
    use console_proto::seed_live::{Audit, Cache, EventIdx, Mode, PostRead, Sync};
    use drivers::virtio::queue::UsedSync;
    let model = match cell.cache {
        Cache::Coherent => None,
        Cache::M68030 => Some(CpuCache::M68030),
        Cache::M68040 => Some(CpuCache::M68040),
    };
    let postread = match cell.postread {
        PostRead::NoOp => drivers::dma::PostRead::NoOp,
        PostRead::Invalidate => drivers::dma::PostRead::Invalidate,
    };
    let mut result = Err(err("the cell did not run"));
    crate::selftest::dma::with_dma(model, postread, false, || {
        let opts = OpenOptions {
            mode: match cell.mode {
                Mode::Interrupt => CompletionMode::Interrupt,
                Mode::Polled => CompletionMode::Polled,
            },
            event_idx: cell.event_idx == EventIdx::On,
            timeout_ns: LIVE_TIMEOUT_NS,
            // The open itself (its GET_ID) runs corrected: the cell starts after it.
            vq_sync: Some(UsedSync::Corrected),
            ..OpenOptions::default()
        };
        let mut d = disks::open(slot, opts).map_err(err)?;
        d.set_vq_sync(match cell.sync {
            Sync::Corrected => UsedSync::Corrected,
            Sync::NetBsd2024 => UsedSync::NetBsd2024,
        });
        let outcome = live_requests(&mut d);
        drop(d);
        let flagged = DMA.with_auditor(|a| a.is_some_and(|a| a.total() > 0));
        result = outcome.map(|o| (o, if flagged { Audit::Flags } else { Audit::Clean }));
        Ok(())
    })?;
    result
}

/// The cell's fixed request mix: write 4 KiB, read it back, GET_ID, flush.
fn live_requests(d: &mut Disk) -> Result<console_proto::seed_live::Outcome, Failure> {
    use console_proto::seed_live::Outcome;
    let (bs, spb) = block(d);
    let len = bs.max(4096);
    let sector = 64 / spb * spb;
    let data: Vec<u8> = (0..len).map(|i| pattern(0x5eed, sector, i)).collect();
    let ops = [
        (Op::Write, sector, len as u32),
        (Op::Read, sector, len as u32),
        (Op::GetId, 0, 20),
        (Op::Flush, 0, 0),
    ];
    for (token, &(op, s, n)) in ops.iter().enumerate() {
        let token = token as u64;
        d.submit(op, s, n, token, |b| {
            if op == Op::Write {
                b.copy_from_slice(&data);
            }
        })
        .map_err(err)?;
        d.publish().map_err(err)?;
        // The read phase before the device can answer: it has not been notified.
        ensure!(
            !d.poll_used().map_err(err)?,
            "{op:?}: a completion before the device was notified"
        );
        d.kick().map_err(err)?;
        match d.wait() {
            Ok(()) => {}
            Err(BlkError::Timeout { .. }) => {
                return Ok(if d.unseen_completions() > 0 {
                    Outcome::Hangs
                } else {
                    Outcome::LostKick
                });
            }
            Err(e) => return Err(err(format!("{op:?}: {e}"))),
        }
        let mut stale = false;
        let mut done = false;
        d.reap(|t, op, r| {
            if t == token {
                done = true;
                match r {
                    Ok(got) if op == Op::Read => stale |= got != &data[..],
                    Ok(_) => {}
                    Err(_) => stale = true,
                }
            }
        })
        .map_err(err)?;
        ensure!(done, "{op:?}: woken without its completion");
        if stale {
            return Ok(Outcome::Stale);
        }
    }
    Ok(Outcome::Works)
}
