//! Verify a user's disk (kernel options `verify=`, `verify_pass=`, `verify_write=`; `cargo
//! xtask verify`): every sector read through the virtio-blk driver's queued interface in
//! each pass (completion mode x bus_dma cache model, auditor on), one CRC-32 per MiB printed
//! for the xtask to compare with the image on the host (line formats:
//! `console_proto::verify`).
//!
//! A request the device fails with an I/O error is reported (`ioerr`) and its sectors are
//! re-read one by one: each that fails again is reported (`bad`) and counts as 512 zero bytes
//! in its MiB's checksum, so every other sector of that MiB is still checked. Nothing is
//! written unless `verify_write=SEED`, which first writes `write_pattern(SEED, sector)` over
//! the whole disk (write errors handled alike) and then checks every sector read back
//! against it (`mismatch`).
#![forbid(unsafe_code)]

use crate::arch::m68k::dma::DMA;
use crate::arch::m68k::dma_sync::CpuCache;
use crate::kern::cmdline::Options;
use crate::kern::disks::{self, Disk};
use crate::kern::time;
use alloc::vec;
use alloc::vec::Vec;
use console_proto::verify::{
    mib_s, write_pattern, Body, IoOp, Line, Mode, Model, Pass, SECTORS_PER_MIB,
};
use drivers::blk::virtio_blk::{Op, OpenOptions};
use drivers::blk::{BlkError, BlockDevice, CompletionMode, SECTOR};
use drivers::dma::PostRead;

/// Bytes per request of a pass (the driver's default limit).
const REQUEST_BYTES: u32 = 64 * 1024;
/// Sectors per request.
const REQUEST_SECTORS: u64 = (REQUEST_BYTES / SECTOR) as u64;
/// Requests in flight at most.
const QUEUE_DEPTH: u16 = 16;
/// A progress line every this many MiB (disks larger than it).
const PROGRESS_MIB: u64 = 16;

/// Runs every requested pass on every disk in `opts.verify`; true when each pass completed
/// and every read-back matched the write pattern (I/O errors are reported, and judged by the
/// xtask, which knows which ones were injected).
pub fn run(opts: &Options) -> bool {
    // The auditor watches every pass (kept on if dma_audit=on already started it).
    DMA.set_audit(true, Some(crate::kern::dma::print_report));
    let mut ok = true;
    for slot in (0..128u32).filter(|s| opts.verify & (1u128 << s) != 0) {
        // Sectors the write pass could not write (each reported): not held to the pattern.
        let mut unwritten = Vec::new();
        if let Some(seed) = opts.verify_write {
            match write_pass(slot, seed) {
                Some(bad) => unwritten = bad,
                None => ok = false,
            }
        }
        let check = opts.verify_write.map(|seed| (seed, unwritten.as_slice()));
        for (i, pass) in Pass::READ_PASSES.iter().enumerate() {
            if opts.verify_passes & (1 << i) != 0 {
                ok &= read_pass(slot, *pass, check);
            }
        }
    }
    // The boot's own model setting back for whatever runs after.
    DMA.set_model(opts.dma_model, opts.dma_postread);
    ok
}

fn say(slot: u32, pass: Pass, body: Body<'_>) {
    crate::println!(
        "{}",
        Line {
            disk: slot,
            pass,
            body
        }
    );
}

/// A pass's `done` line: its `capacity` sectors moved since `t0`, and the rate.
fn say_done(slot: u32, pass: Pass, capacity: u64, t0: time::Nanos) {
    let ns = time::now() - t0;
    say(
        slot,
        pass,
        Body::Done {
            sectors: capacity,
            ns,
            mib_s: mib_s(capacity * u64::from(SECTOR), ns),
        },
    );
}

fn error(slot: u32, pass: Pass, e: &dyn core::fmt::Display) -> bool {
    let why = alloc::format!("{e}");
    say(slot, pass, Body::Error(&why));
    false
}

/// Opens `slot` for `pass`: its cache model set (DMA memory allocated by the open is behind
/// it), its completion mode.
fn open(slot: u32, pass: Pass) -> Result<Disk, BlkError> {
    let model = match pass.model {
        Model::None => None,
        Model::M68030 => Some(CpuCache::M68030),
        Model::M68040 => Some(CpuCache::M68040),
    };
    DMA.set_model(model, PostRead::NoOp);
    let mode = match pass.mode {
        Mode::Polled => CompletionMode::Polled,
        Mode::Intr | Mode::Write => CompletionMode::Interrupt,
    };
    disks::open(
        slot,
        OpenOptions {
            mode,
            queue_depth: QUEUE_DEPTH,
            max_transfer: REQUEST_BYTES,
            ..OpenOptions::default()
        },
    )
}

/// The requests of one MiB chunk: `(first sector, sectors)` for each of up to 16.
fn requests(first: u64, sectors: u64) -> impl Iterator<Item = (u64, u64)> {
    (0..sectors.div_ceil(REQUEST_SECTORS)).map(move |k| {
        let at = k * REQUEST_SECTORS;
        (first + at, REQUEST_SECTORS.min(sectors - at))
    })
}

/// Runs `op` on every request of a chunk through the queued interface (up to the pool's
/// depth in flight); a read's data lands in `buf` at the request's offset, a write's comes
/// from it. Returns the requests the device failed with an I/O error (as indices).
fn chunk(
    d: &mut Disk,
    op: Op,
    first: u64,
    sectors: u64,
    buf: &mut [u8],
) -> Result<Vec<u64>, BlkError> {
    let reqs: Vec<(u64, u64)> = requests(first, sectors).collect();
    let mut next = 0usize;
    let mut outstanding = 0usize;
    let mut failed = Vec::new();
    loop {
        while next < reqs.len() && d.free_slots() > 0 {
            let (sector, n) = reqs[next];
            let at = ((sector - first) * u64::from(SECTOR)) as usize;
            let len = (n * u64::from(SECTOR)) as usize;
            let src = &buf[at..at + len];
            d.submit(op, sector, len as u32, next as u64, |out| {
                out.copy_from_slice(src)
            })?;
            next += 1;
            outstanding += 1;
        }
        d.kick()?;
        if outstanding == 0 {
            return Ok(failed);
        }
        d.wait()?;
        let mut other = None;
        d.reap(|token, _, r| {
            outstanding -= 1;
            let (sector, n) = reqs[token as usize];
            match r {
                Ok(data) if op == Op::Read => {
                    let at = ((sector - first) * u64::from(SECTOR)) as usize;
                    buf[at..at + (n * u64::from(SECTOR)) as usize].copy_from_slice(data);
                }
                Ok(_) => {}
                Err(BlkError::Io { .. }) => failed.push(token),
                Err(e) => other = Some(e),
            }
        })?;
        if let Some(e) = other {
            return Err(e);
        }
    }
}

/// Reports each failed request, then does its sectors one at a time: those that fail again
/// are reported `bad` (a read's bytes zeroed in `buf`) and returned.
/// `(slot, pass)`: where a line is about.
type At = (u32, Pass);

fn retry_alone(
    d: &mut Disk,
    (slot, pass): At,
    op: Op,
    (first, sectors): (u64, u64),
    failed: &[u64],
    buf: &mut [u8],
) -> Result<Vec<u64>, BlkError> {
    let io_op = if op == Op::Read {
        IoOp::Read
    } else {
        IoOp::Write
    };
    let reqs: Vec<(u64, u64)> = requests(first, sectors).collect();
    let mut bad = Vec::new();
    for &token in failed {
        let (sector, n) = reqs[token as usize];
        say(
            slot,
            pass,
            Body::IoErr {
                op: io_op,
                sector,
                sectors: n,
            },
        );
        for s in sector..sector + n {
            let at = ((s - first) * u64::from(SECTOR)) as usize;
            let one = &mut buf[at..at + SECTOR as usize];
            let r = if op == Op::Read {
                d.read(s, one)
            } else {
                d.write(s, one)
            };
            match r {
                Ok(()) => {}
                Err(BlkError::Io { .. }) => {
                    say(
                        slot,
                        pass,
                        Body::Bad {
                            op: io_op,
                            sector: s,
                        },
                    );
                    if op == Op::Read {
                        one.fill(0);
                    }
                    bad.push(s);
                }
                Err(e) => return Err(e),
            }
        }
    }
    Ok(bad)
}

/// One read pass over the whole disk; with `check` (seed, sectors not written), each written
/// sector is also checked against the write pattern. False when the pass stopped or a sector
/// read back wrong.
fn read_pass(slot: u32, pass: Pass, check: Option<(u32, &[u64])>) -> bool {
    let mut d = match open(slot, pass) {
        Ok(d) => d,
        Err(e) => return error(slot, pass, &e),
    };
    let capacity = d.capacity();
    if capacity == 0 {
        return error(slot, pass, &"the disk has no sectors");
    }
    let mibs = capacity.div_ceil(SECTORS_PER_MIB);
    let mut buf = vec![0u8; (SECTORS_PER_MIB * u64::from(SECTOR)) as usize];
    let mut expected = [0u8; SECTOR as usize];
    let mut matched = true;
    let t0 = time::now();
    for mib in 0..mibs {
        let first = mib * SECTORS_PER_MIB;
        let sectors = SECTORS_PER_MIB.min(capacity - first);
        let bytes = (sectors * u64::from(SECTOR)) as usize;
        let result = chunk(&mut d, Op::Read, first, sectors, &mut buf[..bytes]).and_then(|f| {
            retry_alone(
                &mut d,
                (slot, pass),
                Op::Read,
                (first, sectors),
                &f,
                &mut buf[..bytes],
            )
        });
        let bad = match result {
            Ok(bad) => bad,
            Err(e) => return error(slot, pass, &e),
        };
        if let Some((seed, unwritten)) = check {
            for s in first..first + sectors {
                let at = ((s - first) * u64::from(SECTOR)) as usize;
                write_pattern(seed, s, &mut expected);
                if !bad.contains(&s)
                    && !unwritten.contains(&s)
                    && buf[at..at + SECTOR as usize] != expected
                {
                    say(slot, pass, Body::Mismatch { sector: s });
                    matched = false;
                }
            }
        }
        let crc32 = crc32fast::hash(&buf[..bytes]);
        say(slot, pass, Body::Crc { mib, crc32 });
        if mibs > PROGRESS_MIB && (mib + 1) % PROGRESS_MIB == 0 && mib + 1 < mibs {
            say(
                slot,
                pass,
                Body::Progress {
                    mib: mib + 1,
                    of: mibs,
                },
            );
        }
    }
    say_done(slot, pass, capacity, t0);
    matched
}

/// Writes `write_pattern(seed, sector)` over the whole disk (interrupt mode, no cache
/// model), then flushes. Returns the sectors that failed alone (each reported), or None when
/// the pass stopped.
fn write_pass(slot: u32, seed: u32) -> Option<Vec<u64>> {
    let pass = Pass::new(Mode::Write, Model::None);
    let mut d = match open(slot, pass) {
        Ok(d) => d,
        Err(e) => {
            error(slot, pass, &e);
            return None;
        }
    };
    let capacity = d.capacity();
    if d.read_only() {
        error(slot, pass, &"the disk is read-only: not written");
        return None;
    }
    let mibs = capacity.div_ceil(SECTORS_PER_MIB);
    let mut buf = vec![0u8; (SECTORS_PER_MIB * u64::from(SECTOR)) as usize];
    let mut unwritten = Vec::new();
    let t0 = time::now();
    for mib in 0..mibs {
        let first = mib * SECTORS_PER_MIB;
        let sectors = SECTORS_PER_MIB.min(capacity - first);
        let bytes = (sectors * u64::from(SECTOR)) as usize;
        for (i, sector) in buf[..bytes].chunks_exact_mut(SECTOR as usize).enumerate() {
            let sector: &mut [u8; SECTOR as usize] =
                sector.try_into().expect("chunks of one sector");
            write_pattern(seed, first + i as u64, sector);
        }
        let result = chunk(&mut d, Op::Write, first, sectors, &mut buf[..bytes]).and_then(|f| {
            retry_alone(
                &mut d,
                (slot, pass),
                Op::Write,
                (first, sectors),
                &f,
                &mut buf[..bytes],
            )
        });
        match result {
            Ok(bad) => unwritten.extend(bad),
            Err(e) => {
                error(slot, pass, &e);
                return None;
            }
        }
        if mibs > PROGRESS_MIB && (mib + 1) % PROGRESS_MIB == 0 && mib + 1 < mibs {
            say(
                slot,
                pass,
                Body::Progress {
                    mib: mib + 1,
                    of: mibs,
                },
            );
        }
    }
    if let Err(e) = d.flush() {
        error(slot, pass, &e);
        return None;
    }
    say_done(slot, pass, capacity, t0);
    Some(unwritten)
}
