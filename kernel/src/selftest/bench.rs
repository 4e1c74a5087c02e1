//! The in-guest block I/O benchmark (kernel option `bench=quick|full`).
//!
//! For each cell of the matrix it drives the scratch disk in slot 0 (or the user's disk
//! `bench_disk=` names: read cells only, unless `,write`) for a byte or time
//! budget and logs one line (format in README "Benchmark log format"):
//!
//!   bench disk=0 impl=driver pattern=rand op=read bs=4096 qd=16 mode=intr event_idx=on
//!     ops=... bytes=... ns=... iops=... mib_s=... lat_p50_us=... lat_p99_us=...
//!     kicks_per_op=... irqs_per_op=... polls_per_op=... submit_ns_per_op=...
//!     complete_ns_per_op=... clock=rtc
//!
//! `impl=driver` is the virtio-blk driver's queued interface; `impl=floor` is the least this
//! route does per request on a copyback CPU (`run_floor`: chains built once, per request the
//! sector, status sentinel and avail entry written with their cache steps, polled, a
//! notification per batch, no accessor, no auditor), so driver overhead = driver / floor,
//! measured in the same run. `op=getid` is a null request's round trip.

use crate::arch::m68k::cache::{self, LINE};
use crate::arch::m68k::dma::{M68kPlatform, DMA};
use crate::arch::m68k::dma_sync::CpuCache;
use crate::arch::m68k::machine::{self, DcOp, MachineBus};
use crate::kern::disks;
use crate::kern::time;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use console_proto::bench::{self as line, CellSpec, Fixed, Impl, Op as BenchOp, Pattern, Record};
use drivers::blk::request::{self as req, header_bytes, HEADER_LEN, HEADER_SECTOR_AT};
use drivers::blk::virtio_blk::{Op, OpenOptions};
use drivers::blk::{BlkError, CompletionMode, SECTOR};
use drivers::dma::{CacheStep, Direction, DmaRegion, Platform, SyncOps};
use drivers::virtio::mmio::{DeviceInfo, MmioTransport};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Matrix {
    Quick,
    Full,
}

#[derive(Clone, Copy, Debug)]
struct Cell {
    imp: Impl,
    pattern: Pattern,
    op: BenchOp,
    bs: u32,
    qd: usize,
    mode: CompletionMode,
    event_idx: bool,
}

impl Cell {
    /// The cell's name as `bench_cell=` takes it.
    fn spec(&self) -> CellSpec {
        CellSpec {
            imp: self.imp,
            pattern: self.pattern,
            op: self.op,
            bs: u64::from(self.bs),
            qd: self.qd as u64,
            mode: match self.mode {
                CompletionMode::Interrupt => line::Mode::Intr,
                CompletionMode::Polled => line::Mode::Polled,
            },
            event_idx: self.event_idx,
        }
    }
}

struct Budget {
    bytes: u64,
    ns: u64,
    ops: u64,
}

fn cells(matrix: Matrix) -> Vec<Cell> {
    let (patterns, ops, sizes, qds): (&[Pattern], &[BenchOp], &[u32], &[usize]) = match matrix {
        Matrix::Quick => (&[Pattern::Rand], &[BenchOp::Read], &[4096, 65536], &[1, 16]),
        Matrix::Full => (
            &[Pattern::Seq, Pattern::Rand],
            &[BenchOp::Read, BenchOp::Write],
            &[512, 4096, 65536, 1 << 20],
            &[1, 4, 16, 32],
        ),
    };
    let mut v = Vec::new();
    for &pattern in patterns {
        for &op in ops {
            for &bs in sizes {
                for &qd in qds {
                    v.push(Cell {
                        imp: Impl::Floor,
                        pattern,
                        op,
                        bs,
                        qd,
                        mode: CompletionMode::Polled,
                        event_idx: false,
                    });
                    for mode in [CompletionMode::Interrupt, CompletionMode::Polled] {
                        let eidx: &[bool] = if matrix == Matrix::Quick {
                            &[true]
                        } else {
                            &[true, false]
                        };
                        for &event_idx in eidx {
                            v.push(Cell {
                                imp: Impl::Driver,
                                pattern,
                                op,
                                bs,
                                qd,
                                mode,
                                event_idx,
                            });
                        }
                    }
                }
            }
        }
    }
    // The null request: GET_ID at QD 1, through the floor and the driver.
    for imp in [Impl::Floor, Impl::Driver] {
        v.push(Cell {
            imp,
            pattern: Pattern::Seq,
            op: BenchOp::GetId,
            bs: 20,
            qd: 1,
            mode: CompletionMode::Polled,
            event_idx: false,
        });
    }
    v
}

#[derive(Clone, Copy)]
struct Lcg(u32);
impl Lcg {
    #[inline(always)]
    fn next(&mut self) -> u32 {
        self.0 = self.0.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        self.0
    }
}

/// Sector of the next request.
#[derive(Clone, Copy)]
struct Offsets {
    pattern: Pattern,
    /// Requests of `unit` sectors that fit the disk.
    span: u64,
    unit: u64,
    /// `span` when every sector this yields fits 32 bits (disks under 2 TiB): 32-bit
    /// arithmetic, since the m68k has no 64-bit multiply or divide (each a libgcc call).
    span32: Option<u32>,
    next: u64,
    rng: Lcg,
}

impl Offsets {
    /// Fails when not one request of `bs` bytes fits the disk (`capacity` sectors): such a
    /// cell cannot be measured on it.
    fn new(pattern: Pattern, capacity: u64, bs: u32) -> Result<Self, String> {
        let unit = u64::from(bs / SECTOR).max(1);
        let span = capacity / unit;
        if span == 0 {
            return Err(format!(
                "does not fit the disk: a {bs}-byte request needs at least {} bytes, the disk has {} bytes",
                u64::from(bs.max(SECTOR)),
                capacity * u64::from(SECTOR)
            ));
        }
        let span32 = u32::try_from(span * unit).ok().map(|_| span as u32);
        Ok(Offsets {
            pattern,
            span,
            unit,
            span32,
            next: 0,
            rng: Lcg(12345),
        })
    }
    #[inline(always)]
    fn take(&mut self) -> u64 {
        if let Some(span) = self.span32 {
            // `k * unit` < `span * unit`, which fits (checked in `new`).
            let k = match self.pattern {
                Pattern::Seq => {
                    let k = self.next as u32;
                    self.next = u64::from(if k + 1 == span { 0 } else { k + 1 });
                    k
                }
                Pattern::Rand => (self.rng.next() >> 4) % span,
            };
            return u64::from(k * self.unit as u32);
        }
        let k = match self.pattern {
            Pattern::Seq => {
                let k = self.next;
                self.next = (self.next + 1) % self.span;
                k
            }
            Pattern::Rand => u64::from(self.rng.next() >> 4) % self.span,
        };
        k * self.unit
    }
}

/// What a cell measured.
struct Measured {
    ops: u64,
    ns: u64,
    /// Time in the driver's own path: queueing requests (incl. the notification), and
    /// taking completions; waiting and polling excluded. Each window's ends are raw RTC
    /// reads (`time::raw_ns`, one machine call), so the clock adds little to what it measures.
    submit_ns: u64,
    complete_ns: u64,
    lat_ns: Vec<u64>,
    kicks: u64,
    irqs: u64,
    polls: u64,
}

fn percentile(sorted: &[u64], p: u64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() as u64 - 1) * p / 100) as usize]
}

fn run_driver(info: DeviceInfo, cell: &Cell, budget: &Budget) -> Result<Measured, String> {
    // `run_driver_inner` gathers completions as bits of a u32; every cell's depth is 1 to 32.
    if cell.qd == 0 || cell.qd > 32 {
        return Err(format!("bench: queue depth {} (1 to 32)", cell.qd));
    }
    run_driver_inner(info, cell, budget).map_err(|e| match e {
        Failed::Blk(e) => format!("{e}"),
        Failed::Other(why) => why,
    })
}

enum Failed {
    Blk(BlkError),
    Other(String),
}

impl From<BlkError> for Failed {
    fn from(e: BlkError) -> Self {
        Failed::Blk(e)
    }
}

fn run_driver_inner(info: DeviceInfo, cell: &Cell, budget: &Budget) -> Result<Measured, Failed> {
    let opts = OpenOptions {
        mode: cell.mode,
        event_idx: cell.event_idx,
        queue_depth: cell.qd as u16,
        max_transfer: cell.bs.max(SECTOR),
        ..OpenOptions::default()
    };
    let mut disk = disks::open(info.slot, opts)?;
    // The device itself, once: through the `Disk` each call would look at its `Option`.
    let d = &mut *disk;
    let cap = drivers::blk::BlockDevice::capacity(&*d);
    let mut offsets = if cell.op == BenchOp::GetId {
        None
    } else {
        Some(Offsets::new(cell.pattern, cap, cell.bs).map_err(Failed::Other)?)
    };
    let before = drivers::blk::BlockDevice::stats(&*d);
    let mut starts = vec![0u64; cell.qd];
    let mut free: Vec<usize> = (0..cell.qd).collect();
    let mut lat = Vec::new();
    let mut ops = 0u64;
    let (mut submit_ns, mut complete_ns) = (0u64, 0u64);
    let clock = time::RawClock::get();
    let t0 = time::now();
    let (op, len) = match cell.op {
        BenchOp::Read => (Op::Read, cell.bs),
        BenchOp::Write => (Op::Write, cell.bs),
        BenchOp::GetId => (Op::GetId, 20),
    };
    loop {
        let elapsed = time::now() - t0;
        let done =
            ops * u64::from(cell.bs) >= budget.bytes || elapsed >= budget.ns || ops >= budget.ops;
        if !done {
            let t = clock.ns();
            for &slot in &free {
                let sector = offsets.as_mut().map_or(0, |o| o.take());
                d.submit(op, sector, len, slot as u64, |_| {})?;
            }
            d.kick()?;
            submit_ns += clock.ns().saturating_sub(t);
            // The benchmark's own bookkeeping, outside the window (as the floor's).
            for &slot in &free {
                starts[slot] = t;
            }
            free.clear();
        }
        if free.len() == cell.qd {
            break;
        }
        d.wait()?;
        let now = clock.ns();
        let first = free.len();
        let mut err = None;
        // The slots a reap returns as bits, as the floor's completion loop keeps them (a
        // `Vec` push per completion put a length, capacity and pointer in the driver's window
        // that the floor's did not pay); the free list is refilled outside the window.
        // Tokens are slots < qd <= 32 (checked by `run_driver`).
        let mut reaped = 0u32;
        d.reap(|token, _, r| {
            if let Err(e) = r {
                err = Some(e);
            }
            debug_assert!(token < 32, "token {token}: not a slot");
            reaped |= 1 << (token as u32 & 31);
        })?;
        complete_ns += clock.ns().saturating_sub(now);
        while reaped != 0 {
            free.push(reaped.trailing_zeros() as usize);
            reaped &= reaped - 1;
        }
        for &slot in &free[first..] {
            lat.push(now.saturating_sub(starts[slot]));
            ops += 1;
        }
        if let Some(e) = err {
            return Err(e.into());
        }
    }
    let ns = time::now() - t0;
    let after = drivers::blk::BlockDevice::stats(&*d);
    Ok(Measured {
        ops,
        ns,
        submit_ns,
        complete_ns,
        lat_ns: lat,
        kicks: after.kicks - before.kicks,
        irqs: after.interrupts - before.interrupts,
        polls: after.polls - before.polls,
    })
}

/// One DMA allocation as the floor touches it per request: volatile loads and stores of
/// little-endian fields at checked offsets (its syncs are [`Prepared`] plans), seen by
/// neither the auditor nor the model (the floor's setup goes through the tag, so the model
/// holds nothing of these regions that memory lacks when the loop starts).
#[derive(Clone, Copy)]
struct Raw {
    ptr: *mut u8,
    phys: u32,
    len: u32,
}

impl Raw {
    /// Panics on a region shorter than 8 bytes (`at` relies on `len >= 8`).
    fn of(r: &DmaRegion<M68kPlatform>) -> Raw {
        assert!(r.len() >= 8);
        Raw {
            ptr: r.raw_pointer(),
            phys: r.phys(),
            len: r.len(),
        }
    }
    /// The address of a `T` at `off`; panics outside the allocation or misaligned.
    #[inline(always)]
    fn at<T>(&self, off: u32) -> *mut T {
        const { assert!(core::mem::size_of::<T>() <= 8) };
        let size = core::mem::size_of::<T>() as u32;
        // `len >= 8 >= size` (`of`, the only constructor), so `len - size` does not wrap:
        // one compare per access.
        assert!(off.is_multiple_of(size) && off <= self.len.wrapping_sub(size));
        // SAFETY: `off + size <= len` (asserted): inside the allocation, which outlives
        // `self` (the floor drops its regions only after the loop).
        unsafe { self.ptr.add(off as usize) }.cast()
    }
    #[inline(always)]
    fn write_u16(&self, off: u32, v: u16) {
        // SAFETY: in bounds and aligned (`at`); the CPU's own store, synced by the caller.
        unsafe { core::ptr::write_volatile(self.at::<u16>(off), v.to_le()) }
    }
    #[inline(always)]
    fn write_u64(&self, off: u32, v: u64) {
        // SAFETY: as `write_u16`.
        unsafe { core::ptr::write_volatile(self.at::<u64>(off), v.to_le()) }
    }
    #[inline(always)]
    fn read_u16(&self, off: u32) -> u16 {
        // SAFETY: in bounds and aligned (`at`); the caller synced it for this read.
        u16::from_le(unsafe { core::ptr::read_volatile(self.at::<u16>(off)) })
    }
    #[inline(always)]
    fn read_u32(&self, off: u32) -> u32 {
        // SAFETY: as `read_u16`.
        u32::from_le(unsafe { core::ptr::read_volatile(self.at::<u32>(off)) })
    }
    #[inline(always)]
    fn read_u8(&self, off: u32) -> u8 {
        // SAFETY: as `read_u16` (a byte has no alignment).
        unsafe { core::ptr::read_volatile(self.at::<u8>(off)) }
    }
    #[inline(always)]
    fn write_u8(&self, off: u32, v: u8) {
        // SAFETY: as `write_u16`.
        unsafe { core::ptr::write_volatile(self.at::<u8>(off), v) }
    }
}

/// One cache instruction of a floor sync, decided at setup.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Insn {
    /// CPUSHL/CINVL/CPUSHP/CINVP on the data cache at the address, or CPUSHA DC (address
    /// 0): run through the machine layer's direct entry (`machine::dc_op`).
    Op { op: DcOp, addr: u32 },
    /// The whole data cache through the cache module, where CINV/CPUSH do not run (the
    /// 68030's CACR CD).
    All,
}

/// The cache instructions of one sync over a fixed range: what the platform's planner
/// (`Platform::sync_steps`, the same plan the driver's syncs execute) issues for it on this
/// CPU, so a request pays only for the instructions themselves. Each runs between compiler
/// barriers (every machine call is opaque to GCC). Seen by neither the auditor nor the model.
#[derive(PartialEq, Eq)]
struct Prepared(Vec<Insn>);

impl Prepared {
    /// Panics outside `region`.
    fn new(cpu: Option<CpuCache>, ops: SyncOps, region: &Raw, off: u32, len: u32) -> Prepared {
        assert!(off <= region.len && region.len - off >= len);
        let mut v = Vec::new();
        let Some(cpu) = cpu else {
            return Prepared(v);
        };
        let insns = crate::arch::m68k::cpu::cache_insns();
        let op = DcOp::data;
        // The whole data cache: CPUSHA DC where CINV/CPUSH run (the address is ignored),
        // else the 68030's CACR (`Insn::All`).
        let all = || {
            if insns {
                Insn::Op {
                    op: DcOp::PushAll,
                    addr: 0,
                }
            } else {
                Insn::All
            }
        };
        DMA.platform()
            .sync_steps(cpu, ops, region.phys + off, len, &mut |s| match s {
                // As `M68kPlatform::execute`: line and page steps need CINV/CPUSH (so an
                // `Insn::Op` exists only where they run).
                CacheStep::Line { addr, push } if insns => v.push(Insn::Op {
                    op: op(push, false),
                    addr,
                }),
                CacheStep::Page { addr, push } if insns => v.push(Insn::Op {
                    op: op(push, true),
                    addr,
                }),
                CacheStep::Line { .. } | CacheStep::Page { .. } => {}
                CacheStep::InvalidateAll | CacheStep::PushInvalidateAll => v.push(all()),
            });
        Prepared(v)
    }
    #[inline(always)]
    fn run(&self) {
        for insn in &self.0 {
            match *insn {
                // SAFETY: an instruction of the planner's plan for a range the floor syncs
                // under the bus_dma rules (PREREAD only on lines the device owns: status and
                // data slots, the used ring; PREWRITE after the CPU's writes), on a CPU where
                // CINV/CPUSH run (`new` makes an `Op` only there).
                Insn::Op { op, addr } => unsafe { machine::dc_op(op, addr) },
                Insn::All => cache::push_invalidate_all(),
            }
        }
    }
}

/// A floor sync over slot (or ring position) `n` whose plan is `count` instructions of one
/// kind, `step` bytes apart from `(first + n * stride) & mask`: run from locals, with no
/// load per instruction. [`Strided::fit`] finds it from the planner's plans for every `n`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Strided {
    op: DcOp,
    first: u32,
    stride: u32,
    mask: u32,
    step: u32,
    count: u32,
}

impl Strided {
    /// The shape every plan of `plans` (plan n for the range at `first + n * stride`) has,
    /// if one does: checked instruction by instruction.
    fn fit(plans: &[Prepared], first: u32, stride: u32) -> Option<Strided> {
        let count = plans.first()?.0.len() as u32;
        // At least one instruction (`run` executes the first before it counts): a plan
        // with none stays listed.
        let (op, step) = match plans[0].0.as_slice() {
            [Insn::Op { op, .. }] => (*op, 0),
            [Insn::Op { op, addr }, Insn::Op { addr: next, .. }, ..] => {
                (*op, next.wrapping_sub(*addr))
            }
            _ => return None,
        };
        // Mask 0: every address 0, the push-all's.
        [!0, !(LINE - 1), !(cache::PAGE - 1), 0]
            .into_iter()
            .map(|mask| Strided {
                op,
                first,
                stride,
                mask,
                step,
                count,
            })
            .find(|s| {
                plans.iter().zip(0u32..).all(|(p, n)| {
                    p.0.len() as u32 == count
                        && p.0.iter().zip(0u32..).all(|(insn, k)| {
                            *insn
                                == Insn::Op {
                                    op,
                                    addr: s.addr(n).wrapping_add(k.wrapping_mul(step)),
                                }
                        })
                })
            })
    }
    #[inline(always)]
    fn addr(self, n: u32) -> u32 {
        self.first.wrapping_add(n.wrapping_mul(self.stride)) & self.mask
    }
    #[inline(always)]
    fn run(self, n: u32) {
        let mut addr = self.addr(n);
        let mut left = self.count;
        // `count` >= 1 (`fit`): the first instruction before the test.
        loop {
            // SAFETY: the planner's instructions for a range the floor syncs under the
            // bus_dma rules (as `Prepared::run`), equal to these (checked by `fit`), so on
            // a CPU where CINV/CPUSH run.
            unsafe { machine::dc_op(self.op, addr) };
            left = left.wrapping_sub(1);
            if left == 0 {
                break;
            }
            addr = addr.wrapping_add(self.step);
        }
    }
}

/// The plans of one floor sync, one per slot or ring position: strided where they all have
/// that shape (every sync on a 68040 with the floor's aligned regions), else listed.
struct Plan {
    strided: Option<Strided>,
    listed: Vec<Prepared>,
}

impl Plan {
    /// The plans of `ops` over [off + n * stride, + len) of `region`, for n in 0..count.
    #[allow(clippy::too_many_arguments)]
    fn over(
        cpu: Option<CpuCache>,
        ops: SyncOps,
        region: &Raw,
        off: u32,
        stride: u32,
        len: u32,
        count: u32,
    ) -> Plan {
        let listed: Vec<Prepared> = (0..count)
            .map(|n| Prepared::new(cpu, ops, region, off + n * stride, len))
            .collect();
        Plan {
            strided: Strided::fit(&listed, region.phys + off, stride),
            listed,
        }
    }
}

struct FloorPlans {
    header: Plan,
    data: Plan,
    status: Plan,
    avail_entry: Plan,
    avail_idx: Plan,
    used_idx: Plan,
    used_id: Plan,
}

struct FloorEnv<'a> {
    t: &'a MmioTransport<MachineBus>,
    ring: Raw,
    used: Raw,
    hdr: Raw,
    status: Raw,
    size: u16,
    qd: usize,
    bs: u32,
}

/// Runs plan `n` of `p`: the strided form `s` when there is one (a local, so no loads), else
/// the listed plan.
#[inline(always)]
fn run_plan(s: Option<Strided>, p: &Plan, n: u32) {
    match s {
        Some(s) => s.run(n),
        None => p.listed[n as usize].run(),
    }
}

// The floor's errors, out of line: a value formatted in the loop itself would be given an
// address, and kept in linear memory on every turn.
#[cold]
#[inline(never)]
fn floor_bad_id(head: u32) -> String {
    format!("floor: device returned id {head}")
}

#[cold]
#[inline(never)]
fn floor_failed(status: u8) -> String {
    format!("floor: request failed, status {status:#04x}")
}

/// The floor's request loop (see [`run_floor`]). The state a request touches is in locals
/// (no closure captures, no struct behind a reference, the sector generator a local copy, the
/// slots to submit a bit mask): on this route a load or store of linear memory costs a
/// bounds check and a byte swap, a local nothing.
fn floor_loop(
    env: &FloorEnv,
    plans: &FloorPlans,
    offsets: Option<&Offsets>,
    budget: &Budget,
) -> Result<Measured, String> {
    // A copy the loop owns (a local, so its fields stay out of linear memory): behind a
    // reference or passed by value, every sector would load and store its state there.
    let mut offsets = offsets.copied();
    // Copies, not references: a field behind a reference is reloaded after every volatile
    // store, a local is not.
    let (ring, used, hdr, status) = (env.ring, env.used, env.hdr, env.status);
    let notifier = env.t.notifier(0);
    let clock = time::RawClock::get();
    let (size, qd, bs) = (env.size, env.qd, env.bs);
    // Bit i: chain i waits to be submitted (qd <= 32, `run_floor` caps it).
    assert!(qd <= 32);
    let all: u32 = if qd == 32 { !0 } else { (1 << qd) - 1 };
    let (header_s, data_s, status_s) = (
        plans.header.strided,
        plans.data.strided,
        plans.status.strided,
    );
    let (entry_s, id_s) = (plans.avail_entry.strided, plans.used_id.strided);
    let (avail_idx_s, used_idx_s) = (plans.avail_idx.strided, plans.used_idx.strided);
    let avail = 16 * u32::from(size);
    let (budget_bytes, budget_ns, budget_ops) = (budget.bytes, budget.ns, budget.ops);
    let (mut avail_idx, mut last_used) = (0u16, 0u16);
    let mut starts = vec![0u64; qd];
    let mut pending = all;
    let mut lat = Vec::new();
    let mut outstanding = 0usize;
    let (mut ops, mut kicks, mut polls) = (0u64, 0u64, 0u64);
    let (mut submit_ns, mut complete_ns) = (0u64, 0u64);
    let t0 = time::now();
    loop {
        let stop = ops * u64::from(bs) >= budget_bytes
            || time::now() - t0 >= budget_ns
            || ops >= budget_ops;
        if !stop && pending != 0 {
            let started = clock.ns();
            // The previous avail entry's position: consecutive entries in one line are
            // pushed once.
            let mut unpushed: Option<u16> = None;
            let mut left = pending;
            while left != 0 {
                let slot = left.trailing_zeros();
                left &= left - 1;
                if let Some(o) = offsets.as_mut() {
                    hdr.write_u64(HEADER_LEN * slot + HEADER_SECTOR_AT, o.take());
                }
                run_plan(header_s, &plans.header, slot);
                run_plan(data_s, &plans.data, slot);
                // A sentinel the device must overwrite, pushed with the line's PREREAD.
                status.write_u8(LINE * slot, 0xff);
                run_plan(status_s, &plans.status, slot);
                let pos = avail_idx & (size - 1);
                ring.write_u16(avail + 4 + 2 * u32::from(pos), 3 * slot as u16);
                if let Some(prev) = unpushed {
                    let same = match entry_s {
                        Some(s) => s.addr(u32::from(prev)) == s.addr(u32::from(pos)),
                        None => {
                            plans.avail_entry.listed[usize::from(prev)]
                                == plans.avail_entry.listed[usize::from(pos)]
                        }
                    };
                    if !same {
                        run_plan(entry_s, &plans.avail_entry, u32::from(prev));
                    }
                }
                unpushed = Some(pos);
                avail_idx = avail_idx.wrapping_add(1);
                outstanding += 1;
            }
            // The entries' lines before idx moves: a line the cache evicted on its own
            // could otherwise carry the new idx to memory ahead of an entry.
            if let Some(prev) = unpushed {
                run_plan(entry_s, &plans.avail_entry, u32::from(prev));
            }
            ring.write_u16(avail + 2, avail_idx);
            run_plan(avail_idx_s, &plans.avail_idx, 0);
            notifier.notify();
            submit_ns += clock.ns().saturating_sub(started);
            kicks += 1;
            // The benchmark's own bookkeeping, outside the window.
            let mut left = pending;
            while left != 0 {
                starts[left.trailing_zeros() as usize] = started;
                left &= left - 1;
            }
            pending = 0;
        }
        if outstanding == 0 {
            break;
        }
        let idx = loop {
            polls += 1;
            run_plan(used_idx_s, &plans.used_idx, 0);
            let idx = used.read_u16(2);
            if idx != last_used {
                break idx;
            }
            // The clock every 64 polls: a poll is a line invalidate and a load, and a
            // clock read (two RTC accesses) each time would be most of it.
            if polls % 64 == 0 && time::now() - t0 > budget_ns + 5 * time::SECONDS {
                return Err("floor: no completion within 5 s".into());
            }
        };
        let now = clock.ns();
        // The chains this completion returned.
        let mut done = 0u32;
        let mut invalidated: Option<u16> = None;
        while last_used != idx {
            let pos = last_used & (size - 1);
            let fresh = match (invalidated, id_s) {
                (None, _) => true,
                (Some(prev), Some(s)) => s.addr(u32::from(prev)) != s.addr(u32::from(pos)),
                (Some(prev), None) => {
                    plans.used_id.listed[usize::from(prev)]
                        != plans.used_id.listed[usize::from(pos)]
                }
            };
            if fresh {
                run_plan(id_s, &plans.used_id, u32::from(pos));
                invalidated = Some(pos);
            }
            let head = used.read_u32(4 + 8 * u32::from(pos));
            let i = head / 3;
            if head % 3 != 0 || i >= qd as u32 {
                return Err(floor_bad_id(head));
            }
            let st = status.read_u8(LINE * i);
            if st != req::VIRTIO_BLK_S_OK {
                return Err(floor_failed(st));
            }
            done |= 1 << i;
            outstanding -= 1;
            last_used = last_used.wrapping_add(1);
        }
        complete_ns += clock.ns().saturating_sub(now);
        pending |= done;
        while done != 0 {
            lat.push(now.saturating_sub(starts[done.trailing_zeros() as usize]));
            ops += 1;
            done &= done - 1;
        }
    }
    let ns = time::now() - t0;
    Ok(Measured {
        ops,
        ns,
        submit_ns,
        complete_ns,
        lat_ns: lat,
        kicks,
        irqs: 0,
        polls,
    })
}

/// The floor: the least this route does per request on a CPU with a copyback cache. One
/// virtqueue driven by hand; chain i is descriptors 3i..3i+2 (header, data, status), built
/// once. Per request: the header's sector and the status sentinel written and pushed (one
/// line each), the data's PRE sync, the avail entry; per batch: the avail entries' lines
/// pushed, avail idx written and pushed, one notification. Completion: used idx's line
/// invalidated and read until it moves, then each used element's line and the status.
/// Every sync's cache instructions are decided here, once ([`Prepared`], [`Strided`]); the
/// loop ([`floor_loop`]) only runs them. POST syncs are left out: this platform's do
/// nothing. No allocation, no accessor, in the loop.
fn run_floor(info: DeviceInfo, cell: &Cell, budget: &Budget) -> Result<Measured, String> {
    let e = |x: &dyn core::fmt::Display| format!("{x}");
    // Declared first, dropped last: the slot stays claimed until the device is reset.
    let _claim = crate::kern::disks::claim(info.slot).map_err(|x| e(&x))?;
    // SAFETY: `info` is a slot the boot probe found, claimed just above (no Disk or other
    // claim drives it), so the bus reaches only that slot's registers.
    let t = unsafe { MmioTransport::new(MachineBus::new(), info) }.map_err(|x| e(&x))?;
    t.begin_init(|_| 0).map_err(|x| e(&x))?;
    let mut raw = [0u8; 8];
    t.read_config(0, &mut raw).map_err(|x| e(&x))?;
    let capacity = u64::from_le_bytes(raw);
    let offsets = match cell.op {
        BenchOp::GetId => None,
        _ => match Offsets::new(cell.pattern, capacity, cell.bs) {
            Ok(o) => Some(o),
            Err(why) => {
                let _ = t.reset();
                return Err(why);
            }
        },
    };
    let size = 128u16.min(t.queue_max(0));
    let size = 1u16 << (15 - size.leading_zeros());
    let q = u32::from(size);
    // At most 32 chains: the loop keeps the ones waiting to be submitted in a u32 mask (the
    // full matrix's deepest queue is 32).
    let qd = cell.qd.min((size / 3) as usize).min(32);
    let alloc = |name, len, dir| DMA.alloc(name, len, dir, false).map_err(|x| e(&x));
    let ring: DmaRegion<M68kPlatform> =
        alloc("floor ring", 16 * q + 6 + 2 * q, Direction::ToDevice)?;
    let used = alloc("floor used", 6 + 8 * q, Direction::FromDevice)?;
    let hdr = alloc("floor headers", HEADER_LEN * qd as u32, Direction::ToDevice)?;
    // Each status byte alone in its line: its PREREAD never touches a neighbour's.
    let status = alloc("floor status", LINE * qd as u32, Direction::FromDevice)?;
    let data_len = if cell.op == BenchOp::GetId {
        req::VIRTIO_BLK_ID_BYTES
    } else {
        cell.bs
    };
    // Each slot in whole lines of its own (GET_ID's 20 bytes take two): its PRE sync covers
    // them all, so a line the device writes only part of needs no push (the floor never
    // writes the rest) and every slot's sync has one shape.
    let data_stride = data_len.next_multiple_of(LINE);
    let data = alloc(
        "floor data",
        data_stride * qd as u32,
        Direction::Bidirectional,
    )?;
    let (kind, data_dev_writes) = match cell.op {
        BenchOp::Read => (req::VIRTIO_BLK_T_IN, true),
        BenchOp::Write => (req::VIRTIO_BLK_T_OUT, false),
        BenchOp::GetId => (req::VIRTIO_BLK_T_GET_ID, true),
    };
    for i in 0..qd as u32 {
        let d = 3 * i;
        let descs = [
            (hdr.phys() + HEADER_LEN * i, HEADER_LEN, 1u16, d + 1),
            (
                data.phys() + data_stride * i,
                data_len,
                1 | if data_dev_writes { 2 } else { 0 },
                d + 2,
            ),
            (status.phys() + LINE * i, 1, 2, 0),
        ];
        for (k, (addr, len, flags, next)) in descs.into_iter().enumerate() {
            let off = (d + k as u32) * 16;
            ring.write_u64_le(off, u64::from(addr));
            ring.write_u32_le(off + 8, len);
            ring.write_u16_le(off + 12, flags);
            ring.write_u16_le(off + 14, next as u16);
        }
        // The whole header once; per request only its sector changes.
        hdr.write(HEADER_LEN * i, &header_bytes(kind, 0));
    }
    // Through the tag, so that an auditor or model sees the setup; none of these regions
    // keeps a line the CPU wrote that memory lacks.
    let setup = [
        (&ring, SyncOps::PREWRITE),
        (&hdr, SyncOps::PREWRITE),
        // PREWRITE too: the allocations' zeroes are CPU writes a bare PREREAD would discard.
        (&used, SyncOps::PRE),
        (&status, SyncOps::PRE),
        (&data, SyncOps::PRE),
    ];
    for (region, ops) in setup {
        region.sync(ops, 0, region.len()).map_err(|x| e(&x))?;
    }
    // SAFETY: `ring` holds the descriptor table (16 bytes per entry) followed by the avail
    // ring, `used` the used ring, both allocated above for `size` entries; every way out of
    // the loop below resets the device before they are freed, and leaks them if it fails.
    unsafe { t.setup_queue(0, size, ring.phys(), ring.phys() + 16 * q, used.phys()) }
        .map_err(|x| e(&x))?;
    t.driver_ok();
    let cpu = DMA.platform().cpu();
    let (ring_m, used_m, hdr_m, status_m, data_m) = (
        Raw::of(&ring),
        Raw::of(&used),
        Raw::of(&hdr),
        Raw::of(&status),
        Raw::of(&data),
    );
    let data_pre = if data_dev_writes {
        SyncOps::PREREAD
    } else {
        SyncOps::PREWRITE
    };
    let avail = 16 * q;
    // Every per-request sync covers a fixed range, so its cache instructions are decided
    // here, once, by the platform's planner: slot i's header push, data PRE and status
    // push; the line of each avail entry and of avail idx; of used idx and each used id.
    let (n, pw, pr) = (qd as u32, SyncOps::PREWRITE, SyncOps::PREREAD);
    let plans = FloorPlans {
        header: Plan::over(cpu, pw, &hdr_m, 0, HEADER_LEN, HEADER_LEN, n),
        data: Plan::over(cpu, data_pre, &data_m, 0, data_stride, data_stride, n),
        status: Plan::over(cpu, SyncOps::PRE, &status_m, 0, LINE, LINE, n),
        avail_entry: Plan::over(cpu, pw, &ring_m, avail + 4, 2, 2, q),
        avail_idx: Plan::over(cpu, pw, &ring_m, avail + 2, 0, 2, 1),
        used_idx: Plan::over(cpu, pr, &used_m, 2, 0, 2, 1),
        used_id: Plan::over(cpu, pr, &used_m, 4, 8, 4, q),
    };
    let env = FloorEnv {
        t: &t,
        ring: ring_m,
        used: used_m,
        hdr: hdr_m,
        status: status_m,
        size,
        qd,
        bs: cell.bs,
    };
    // From here the device owns the rings and buffers: every way out of the loop (budget
    // spent, an error, no completion) comes back here, and the device is reset before
    // they are freed.
    let result = floor_loop(&env, &plans, offsets.as_ref(), budget);
    // A reset that took (status reads 0) means the device no longer touches the queue
    // (virtio 1.2, 2.4.1); one that did not leaves it free to write them, so they are
    // leaked rather than handed back to the heap.
    if t.reset().is_err() {
        for region in [ring, used, hdr, status, data] {
            core::mem::forget(region);
        }
    }
    result
}

fn log_line(slot: u32, cell: &Cell, r: &mut Measured) {
    r.lat_ns.sort_unstable();
    let ns = r.ns.max(1);
    let bytes = r.ops * u64::from(cell.bs);
    let ops = r.ops.max(1);
    // Fixed-point with integers only (no float formatting in the hot kernel path).
    let record = Record {
        disk: slot,
        imp: cell.imp,
        pattern: cell.pattern,
        op: cell.op,
        bs: u64::from(cell.bs),
        qd: cell.qd as u64,
        mode: match cell.mode {
            CompletionMode::Interrupt => line::Mode::Intr,
            CompletionMode::Polled => line::Mode::Polled,
        },
        event_idx: cell.event_idx,
        ops: r.ops,
        bytes,
        ns: r.ns,
        iops: r.ops * 1_000_000_000 / ns,
        mib_s: Fixed::from_scaled(bytes * 10_000_000_000 / ns / (1 << 20)),
        lat_p50_us: Fixed::ratio(percentile(&r.lat_ns, 50), 1000),
        lat_p99_us: Fixed::ratio(percentile(&r.lat_ns, 99), 1000),
        kicks_per_op: Fixed::ratio(r.kicks, ops),
        irqs_per_op: Fixed::ratio(r.irqs, ops),
        polls_per_op: Fixed::ratio(r.polls, ops),
        submit_ns_per_op: r.submit_ns / ops,
        complete_ns_per_op: r.complete_ns / ops,
        clock: line::Clock::Rtc,
    };
    println!("{record}");
}

/// Runs the matrix (only the cell `only` names, when given) on the scratch disk in slot 0,
/// or on the user's disk `bench_disk=` names (its read cells only unless
/// `bench_disk=<slot>,write`); false if a cell failed or `only` names no cell of the matrix.
/// On a user's disk, a cell whose request does not fit it is skipped with a `bench skip:`
/// line. Each cell runs between the profile markers (`machine::profile_mark_cell_begin`/
/// `end`) and is followed by a `bench window ns=N` line: the guest time across them.
pub fn run(matrix: Matrix, only: Option<CellSpec>) -> bool {
    let opts = crate::kern::boot::options();
    let (slot, writes) = match opts.bench_disk {
        Some(b) => (b.slot, b.write),
        None => (0, true),
    };
    let Some(info) = crate::board::virt::virtio_probe::devices()
        .find(|d| {
            d.slot == slot && d.device_id == 2 && (opts.bench_disk.is_some() || opts.disks & 1 != 0)
        })
        .copied()
    else {
        match opts.bench_disk {
            Some(_) => {
                println!("bench: no disk in slot {slot} (bench_disk={slot}): nothing to measure")
            }
            None => println!("bench: no scratch disk in slot 0 (disks=0): nothing to measure"),
        }
        return false;
    };
    // The disk's size, for the cells that do not fit it.
    let capacity = match disks::open(slot, OpenOptions::default()) {
        Ok(d) => drivers::blk::BlockDevice::capacity(&*d),
        Err(e) => {
            println!("{}", line::Error(format_args!("disk slot {slot}: {e}")));
            return false;
        }
    };
    let budget = match matrix {
        Matrix::Quick => Budget {
            bytes: 8 << 20,
            ns: 300 * time::MILLIS,
            ops: 20_000,
        },
        Matrix::Full => Budget {
            bytes: 64 << 20,
            ns: time::SECONDS,
            ops: 200_000,
        },
    };
    let mut all: Vec<Cell> = cells(matrix)
        .into_iter()
        .filter(|c| writes || c.op != BenchOp::Write)
        .collect();
    if let Some(spec) = only {
        all.retain(|c| c.spec() == spec);
        if all.is_empty() {
            let names: Vec<String> = cells(matrix)
                .iter()
                .map(|c| format!("{}", c.spec()))
                .collect();
            println!(
                "bench: bench_cell={spec} names no cell of the {} matrix; its cells: {}",
                if matrix == Matrix::Quick {
                    "quick"
                } else {
                    "full"
                },
                names.join(" ")
            );
            return false;
        }
    }
    let mut ok = true;
    for (n, cell) in all.iter().enumerate() {
        println!(
            "{}",
            line::Progress {
                n: n + 1,
                of: all.len()
            }
        );
        // On a user's disk a cell that does not fit is skipped; on the runner's scratch disk,
        // which is sized for the matrix, it stays an error (the cell fails below).
        if cell.op != BenchOp::GetId && opts.bench_disk.is_some() {
            if let Err(why) = Offsets::new(cell.pattern, capacity, cell.bs) {
                println!("{}", line::Skip(format_args!("{}: {why}", cell.spec())));
                continue;
            }
        }
        let w0 = time::now();
        crate::arch::m68k::machine::profile_mark_cell_begin();
        let r = match cell.imp {
            Impl::Driver => run_driver(info, cell, &budget),
            Impl::Floor => run_floor(info, cell, &budget),
        };
        crate::arch::m68k::machine::profile_mark_cell_end();
        let window = line::Window {
            ns: time::now() - w0,
        };
        match r {
            Ok(mut r) => {
                log_line(slot, cell, &mut r);
                println!("{window}");
            }
            Err(e) => {
                println!("{}", line::Error(format_args!("{}: {e}", cell.spec())));
                ok = false;
            }
        }
    }
    println!("{}", line::Done { cells: all.len() });
    ok
}
