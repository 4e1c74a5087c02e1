//! The m68k sync implementations: which cache steps each bus_dma sync needs, per CPU.
//!
//! Matches NetBSD and Linux on the m68k, and nothing weaker:
//! - 68030 (write-through data cache): PREREAD clears the whole data cache (CACR CD); PREWRITE
//!   has nothing to push; POSTREAD and POSTWRITE do nothing.
//! - 68040 (copyback): PREWRITE pushes the range's lines/pages; PREREAD pushes partial edge
//!   lines and invalidates the rest; PREREAD|PREWRITE pushes (and so invalidates) everything
//!   in the range; POSTREAD and POSTWRITE do nothing.
//!
//! The same steps drive the real cache (dma_m68k.rs) and the stale-cache model, so the model
//! shows exactly what this implementation does and does not do. Pure; host-tested below.
#![forbid(unsafe_code)]

use crate::arch::m68k::cache::{
    plan_040, Caches, DcOp, RangeOp, Scope, Step, LINE, PAGE, PAGE_OP_MIN_LINES,
};
use drivers::dma::model::{Geometry, WritePolicy};
use drivers::dma::{CacheKind, CacheStep, SyncOps};

/// Whose cache behaviour: selects a sync implementation here and a cache model in
/// `drivers::dma` (the kernel option `dma_model=030|040`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuCache {
    M68030,
    M68040,
}

impl CacheKind for CpuCache {
    fn geometry(self) -> Geometry {
        match self {
            // MC68030 User's Manual 6.1: 256 bytes, 16 lines of four longwords (16 bytes),
            // direct-mapped, write-through, filled on read.
            CpuCache::M68030 => Geometry {
                sets: 16,
                ways: 1,
                line: LINE,
                policy: WritePolicy::WriteThrough,
            },
            // MC68040 User's Manual 4.1: 4 KiB, 64 sets of four 16-byte lines, copyback
            // (the mode the kernel's TTRs select for RAM).
            CpuCache::M68040 => Geometry {
                sets: 64,
                ways: 4,
                line: LINE,
                policy: WritePolicy::Copyback,
            },
        }
    }
    fn name(self) -> &'static str {
        match self {
            CpuCache::M68030 => "68030 write-through",
            CpuCache::M68040 => "68040 copyback",
        }
    }
}

fn to_cache_step(s: Step) -> CacheStep {
    match s.scope {
        Scope::Line => CacheStep::Line {
            addr: s.addr,
            push: s.push,
        },
        Scope::Page => CacheStep::Page {
            addr: s.addr,
            push: s.push,
        },
        Scope::All => CacheStep::PushInvalidateAll,
    }
}

/// POSTREAD and POSTWRITE plan no step on any CPU here (`sync_steps`; tested): the
/// platform declares them no-ops ([`drivers::dma::Platform::POST_NOOP`]).
pub const POST_SYNCS_DO_NOTHING: bool = true;

/// The steps `ops` needs on `cpu` for [phys, phys + len).
pub fn sync_steps(
    cpu: CpuCache,
    ops: SyncOps,
    phys: u32,
    len: u32,
    emit: &mut dyn FnMut(CacheStep),
) {
    if len == 0 {
        return;
    }
    match cpu {
        CpuCache::M68030 => {
            if ops.contains(SyncOps::PREREAD) {
                emit(CacheStep::InvalidateAll);
            }
        }
        CpuCache::M68040 => {
            let op = match (
                ops.contains(SyncOps::PREREAD),
                ops.contains(SyncOps::PREWRITE),
            ) {
                (true, true) => RangeOp::PushInvalidate,
                (true, false) => RangeOp::Invalidate,
                (false, true) => RangeOp::Push,
                (false, false) => return,
            };
            plan_040(op, Caches::Data, phys, len, &mut |s| emit(to_cache_step(s)));
        }
    }
}

/// What a sync needs on the real cache, decided without the planner for the shapes a request
/// path syncs; [`Fast::Plan`] for every other shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fast {
    /// A POST, an empty range, a PREWRITE on the 68030: nothing.
    Nothing,
    /// One line (a header, a status byte, a ring field): CPUSHL when `push`, else CINVL.
    /// (Flat variants, not one holding a `CacheStep`: LLVM packed that nested enum into a
    /// 64-bit word, which the 68k then unpacked with shifts on every sync.)
    Line { addr: u32, push: bool },
    /// One whole page (a 4 KiB data buffer): CPUSHP when `push`, else CINVP.
    Page { addr: u32, push: bool },
    /// The 68030's whole data cache.
    InvalidateAll,
    /// A line step for each line of [first, first + 16 * count): pushed where the range
    /// covers only part of it (at `start` or before `end`) or `push` says so.
    Lines {
        first: u32,
        count: u32,
        start: u32,
        end: u32,
        push: bool,
    },
    /// The planner's steps ([`sync_steps`]).
    Plan,
}

impl Fast {
    /// The data-cache instruction for line `k` of a [`Fast::Lines`], and its address.
    #[inline(always)]
    pub fn line_op(first: u32, k: u32, start: u32, end: u32, push: bool) -> (DcOp, u32) {
        let addr = first + k * LINE;
        let whole = addr >= start && end - addr >= LINE;
        (DcOp::data(push || !whole, false), addr)
    }
}

/// The 68040 data-cache instruction that performs a planned step, and its address; None for
/// the whole-cache steps (the 68030's invalidate, the 68040's push-all), which the platform
/// runs through its whole-cache entry.
#[inline(always)]
pub fn step_op(step: CacheStep) -> Option<(DcOp, u32)> {
    match step {
        CacheStep::InvalidateAll | CacheStep::PushInvalidateAll => None,
        CacheStep::Line { addr, push } => Some((DcOp::data(push, false), addr)),
        CacheStep::Page { addr, push } => Some((DcOp::data(push, true), addr)),
    }
}

/// Runs a [`Fast`] decision: `op => E` for each data-cache instruction (with `$op` and
/// `$addr` bound to a [`DcOp`] and its address), `all => E` for the whole data cache,
/// `plan => E` for [`Fast::Plan`], `nothing => E` for [`Fast::Nothing`].
///
/// A macro so that the platform's `sync_cache` and the test that holds the fast path to the
/// planner expand the same dispatch (each shape's step written out: a shared `Fast ->
/// CacheStep` helper let LLVM pack the step into 64 bits, +39 per 4 KiB read; a generic
/// function taking closures stopped inlining them once, +500).
#[cfg_attr(not(target_arch = "wasm32"), allow(unused_macros))]
macro_rules! run_fast {
    ($fast:expr,
     op($op:ident, $addr:ident) => $run:expr,
     all => $all:expr,
     plan => $plan:expr,
     nothing => $nothing:expr $(,)?) => {
        match $fast {
            $crate::arch::m68k::dma_sync::Fast::Nothing => $nothing,
            $crate::arch::m68k::dma_sync::Fast::Line { addr, push } => {
                let ($op, $addr) = ($crate::arch::m68k::cache::DcOp::data(push, false), addr);
                $run
            }
            $crate::arch::m68k::dma_sync::Fast::Page { addr, push } => {
                let ($op, $addr) = ($crate::arch::m68k::cache::DcOp::data(push, true), addr);
                $run
            }
            $crate::arch::m68k::dma_sync::Fast::InvalidateAll => $all,
            $crate::arch::m68k::dma_sync::Fast::Lines {
                first,
                count,
                start,
                end,
                push,
            } => {
                for k in 0..count {
                    let ($op, $addr) =
                        $crate::arch::m68k::dma_sync::Fast::line_op(first, k, start, end, push);
                    $run
                }
            }
            $crate::arch::m68k::dma_sync::Fast::Plan => $plan,
        }
    };
}
// The platform (wasm32 only) uses it by path; the tests here by textual scope.
#[cfg_attr(not(target_arch = "wasm32"), allow(unused_imports))]
pub(crate) use run_fast;

/// The fast path's decision for `ops` over [phys, phys + len) on `cpu`: exactly the steps of
/// [`sync_steps`] (`tests::the_fast_path_issues_the_planners_steps` holds it to that).
#[inline(always)]
pub fn fast_shape(cpu: CpuCache, ops: SyncOps, phys: u32, len: u32) -> Fast {
    let (read, write) = (
        ops.contains(SyncOps::PREREAD),
        ops.contains(SyncOps::PREWRITE),
    );
    if len == 0 || !(read || write) {
        return Fast::Nothing;
    }
    match cpu {
        CpuCache::M68030 if read => Fast::InvalidateAll,
        CpuCache::M68030 => Fast::Nothing,
        CpuCache::M68040 => {
            let line = phys & !(LINE - 1);
            if len <= LINE && (phys - line) + len <= LINE {
                // One line: pushed unless the range is all of it and only read (PREREAD
                // alone discards a line only when every byte of it is the device's).
                let whole = phys == line && len == LINE;
                Fast::Line {
                    addr: line,
                    push: write || !whole,
                }
            } else if len == PAGE && phys & (PAGE - 1) == 0 {
                Fast::Page {
                    addr: phys,
                    push: write,
                }
            } else {
                // Fewer lines than a page step takes (and so fewer than a push-all): the
                // planner would emit one line step each, in address order.
                match phys.checked_add(len) {
                    Some(end) if (end - line).div_ceil(LINE) < PAGE_OP_MIN_LINES => Fast::Lines {
                        first: line,
                        count: (end - line).div_ceil(LINE),
                        start: phys,
                        end,
                        push: write,
                    },
                    _ => Fast::Plan,
                }
            }
        }
    }
}

/// What the platform's `sync_cache` runs on the real cache for a sync, as a list for the
/// tests: the same [`run_fast`] dispatch, each step recorded instead of executed.
#[cfg(test)]
fn sync_fast(cpu: CpuCache, ops: SyncOps, phys: u32, len: u32) -> std::vec::Vec<Ran> {
    let mut ran = std::vec::Vec::new();
    run_fast!(fast_shape(cpu, ops, phys, len),
        op(op, addr) => ran.push(Ran::Op(op, addr)),
        all => ran.push(Ran::All),
        plan => sync_steps(cpu, ops, phys, len, &mut |s| match step_op(s) {
            Some((op, addr)) => ran.push(Ran::Op(op, addr)),
            None => ran.push(Ran::All),
        }),
        nothing => {},
    );
    ran
}

/// One thing the platform runs: a data-cache instruction at an address, or the whole cache.
#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ran {
    Op(DcOp, u32),
    All,
}

#[cfg(test)]
mod tests {
    use super::*;
    use drivers::dma::audit::{Auditor, Violation};
    use drivers::dma::model::{CacheModel, Memory, SimMemory};
    use drivers::dma::PostRead;
    use std::vec::Vec;

    const BASE: u32 = 0x0010_0000;
    const CPUS: [CpuCache; 2] = [CpuCache::M68030, CpuCache::M68040];

    fn apply(
        cpu: CpuCache,
        ops: SyncOps,
        phys: u32,
        len: u32,
        model: &mut CacheModel,
        mem: &SimMemory,
    ) {
        sync_steps(cpu, ops, phys, len, &mut |s| model.apply(s, mem));
    }

    fn read(model: &mut CacheModel, mem: &SimMemory, phys: u32, len: usize) -> Vec<u8> {
        let mut b = std::vec![0u8; len];
        model.read(phys, &mut b, mem);
        b
    }

    /// Range shapes: aligned, partial lines at either end, single byte, multi-page, long.
    fn shapes() -> Vec<(u32, u32)> {
        let mut v = Vec::new();
        for start in [0u32, 1, 7, 15, 16, 0xff8, 0x1000] {
            for len in [1u32, 2, 15, 16, 17, 48, 100, 4096, 5000, 9000, 20000] {
                v.push((BASE + start, len));
            }
        }
        v
    }

    /// Every shape of [`shapes`] plus the edges of the fast path's own shapes (the first and
    /// last line of a page, ranges one byte short of or past a line or a page, a page one
    /// line off), at both ends of 32-bit memory.
    fn fast_path_shapes() -> Vec<(u32, u32)> {
        let mut v = shapes();
        for base in [BASE, 0, 0xffff_e000] {
            for start in [0u32, 1, 8, 15, 16, 0xff0, 0xfff, 0x1000 - 8] {
                for len in [
                    0u32, 1, 2, 8, 15, 16, 17, 31, 32, 48, 100, 495, 496, 497, 511, 512, 513, 4095,
                    4096, 4097, 8192,
                ] {
                    if u64::from(base) + u64::from(start) + u64::from(len) <= 1 << 32 {
                        v.push((base + start, len));
                    }
                }
            }
        }
        v
    }

    /// A planned step's instruction, from the MC68040 User's Manual (CINVL/CPUSHL act on
    /// a line, CINVP/CPUSHP on a page; push writes dirty data back) and the 68030's only
    /// data-cache clear (CACR CD), run like the 68040's CPUSHA through the whole-cache
    /// entry: written out here, independent of `step_op` and `DcOp::data`.
    fn manual(s: CacheStep) -> Ran {
        match s {
            CacheStep::Line { addr, push: true } => Ran::Op(DcOp::PushLine, addr),
            CacheStep::Line { addr, push: false } => Ran::Op(DcOp::InvalidateLine, addr),
            CacheStep::Page { addr, push: true } => Ran::Op(DcOp::PushPage, addr),
            CacheStep::Page { addr, push: false } => Ran::Op(DcOp::InvalidatePage, addr),
            CacheStep::InvalidateAll | CacheStep::PushInvalidateAll => Ran::All,
        }
    }

    #[test]
    fn the_fast_path_issues_the_planners_steps() {
        let all_ops = [
            SyncOps::PREREAD,
            SyncOps::PREWRITE,
            SyncOps::PRE,
            SyncOps::POSTREAD,
            SyncOps::POSTWRITE,
            SyncOps::POST,
            SyncOps::empty(),
        ];
        let (mut fast_shapes, mut lines_shapes) = (0, 0);
        for cpu in CPUS {
            for ops in all_ops {
                for (phys, len) in fast_path_shapes() {
                    let mut planned = Vec::new();
                    sync_steps(cpu, ops, phys, len, &mut |s| planned.push(manual(s)));
                    let fast = sync_fast(cpu, ops, phys, len);
                    assert_eq!(fast, planned, "{cpu:?} {ops:?} {phys:#x}+{len}");
                    match fast_shape(cpu, ops, phys, len) {
                        Fast::Line { .. } | Fast::Page { .. } | Fast::InvalidateAll => {
                            fast_shapes += 1
                        }
                        Fast::Lines { .. } => lines_shapes += 1,
                        _ => {}
                    }
                }
            }
        }
        // The one-step and few-line shapes were exercised, not only the fallback.
        assert!(fast_shapes > 500, "{fast_shapes}");
        assert!(lines_shapes > 500, "{lines_shapes}");
    }

    #[test]
    fn post_syncs_emit_nothing() {
        // What lets the platform skip them (POST_NOOP): no step for any shape on any CPU.
        let mut steps = Vec::new();
        for cpu in CPUS {
            for ops in [SyncOps::POSTREAD, SyncOps::POSTWRITE, SyncOps::POST] {
                for (phys, len) in fast_path_shapes() {
                    sync_steps(cpu, ops, phys, len, &mut |s| steps.push((cpu, ops, s)));
                }
            }
        }
        assert_eq!(POST_SYNCS_DO_NOTHING, steps.is_empty(), "{steps:?}");
    }

    #[test]
    fn prewrite_makes_every_cpu_write_visible_to_the_device() {
        for cpu in CPUS {
            for (phys, len) in shapes() {
                let mem = SimMemory::new(BASE - 0x1000, 64 * 1024);
                let mut model = CacheModel::new(cpu.geometry());
                let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8 + 1).collect();
                model.write(phys, &data, &mem);
                apply(cpu, SyncOps::PREWRITE, phys, len, &mut model, &mem);
                for (i, &d) in data.iter().enumerate() {
                    assert_eq!(
                        mem.get(phys + i as u32),
                        d,
                        "{cpu:?} {phys:#x}+{len}: byte {i}"
                    );
                }
            }
        }
    }

    #[test]
    fn preread_makes_device_writes_visible_and_keeps_neighbours() {
        for cpu in CPUS {
            for (phys, len) in shapes() {
                let mem = SimMemory::new(BASE - 0x1000, 64 * 1024);
                let mut model = CacheModel::new(cpu.geometry());
                // The CPU has the range cached and wrote the bytes just outside it, which share
                // its edge lines (on the 68040 they are dirty in the cache).
                let _ = read(&mut model, &mem, phys, len as usize);
                let before = phys - 1;
                let after = phys + len;
                model.write(before, &[0xaa], &mem);
                model.write(after, &[0xbb], &mem);
                apply(cpu, SyncOps::PREREAD, phys, len, &mut model, &mem);
                // The device writes the range.
                let dev: Vec<u8> = (0..len).map(|i| (i % 253) as u8 ^ 0x5a).collect();
                mem.device_write(phys, &dev);
                apply(cpu, SyncOps::POSTREAD, phys, len, &mut model, &mem);
                assert_eq!(
                    read(&mut model, &mem, phys, len as usize),
                    dev,
                    "{cpu:?} {phys:#x}+{len}"
                );
                // The CPU's neighbouring writes survive (pushed, never discarded).
                assert_eq!(
                    read(&mut model, &mem, before, 1),
                    [0xaa],
                    "{cpu:?} {phys:#x}+{len} before"
                );
                assert_eq!(
                    read(&mut model, &mem, after, 1),
                    [0xbb],
                    "{cpu:?} {phys:#x}+{len} after"
                );
                assert_eq!(
                    model.discarded_dirty, 0,
                    "{cpu:?} {phys:#x}+{len}: dirty data discarded"
                );
            }
        }
    }

    #[test]
    fn bidirectional_pre_pushes_then_invalidates() {
        for cpu in CPUS {
            for (phys, len) in shapes() {
                let mem = SimMemory::new(BASE - 0x1000, 64 * 1024);
                let mut model = CacheModel::new(cpu.geometry());
                let data: Vec<u8> = (0..len).map(|i| (i % 249) as u8 | 1).collect();
                model.write(phys, &data, &mem);
                apply(cpu, SyncOps::PRE, phys, len, &mut model, &mem);
                assert_eq!(
                    mem.bytes.borrow()[(phys - BASE + 0x1000) as usize..][..len as usize],
                    data[..]
                );
                let dev: Vec<u8> = std::vec![0x33; len as usize];
                mem.device_write(phys, &dev);
                assert_eq!(
                    read(&mut model, &mem, phys, len as usize),
                    dev,
                    "{cpu:?} {phys:#x}+{len}"
                );
            }
        }
    }

    // ---- device-write interleavings ------------------------------------------------------

    /// What a driver does, one step at a time.
    #[derive(Clone, Copy, Debug)]
    enum Act {
        Sync(SyncOps),
        /// Read the u16 at this offset of the device region; the value is recorded.
        Read(u32),
    }

    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    enum Sequencing {
        /// NetBSD 2024: POSTREAD before each read, no PREREAD between read phases.
        Naive,
        /// A PREREAD before each new read phase.
        Corrected,
    }

    struct Run {
        reads: Vec<u16>,
        audit: Vec<Violation>,
    }

    /// Runs `acts` with device writes (offset, value) inserted before act index `at[k]`.
    fn run(
        model_cpu: Option<CpuCache>,
        postread: PostRead,
        acts: &[Act],
        device: &[(u32, u16)],
        at: &[usize],
    ) -> Run {
        let mem = SimMemory::new(BASE, 4096);
        let mut model = model_cpu.map(|c| CacheModel::new(c.geometry()));
        let mut audit = Auditor::new(LINE);
        audit.add_region(1, "used", 64, true);
        let mut reads = Vec::new();
        let here = core::panic::Location::caller();
        for (i, act) in acts.iter().enumerate() {
            for (k, &pos) in at.iter().enumerate() {
                if pos == i {
                    mem.device_write(BASE + device[k].0, &device[k].1.to_le_bytes());
                }
            }
            match *act {
                Act::Sync(ops) => {
                    audit.on_sync(1, ops, 0, 64);
                    if let (Some(cpu), Some(m)) = (model_cpu, model.as_mut()) {
                        apply(cpu, ops, BASE, 64, m, &mem);
                        if ops.contains(SyncOps::POSTREAD) && postread == PostRead::Invalidate {
                            apply(cpu, SyncOps::PREREAD, BASE, 64, m, &mem);
                        }
                    }
                }
                Act::Read(off) => {
                    audit.on_read(1, off, 2, here);
                    let mut b = [0u8; 2];
                    match model.as_mut() {
                        Some(m) => m.read(BASE + off, &mut b, &mem),
                        None => mem.read(BASE + off, &mut b),
                    }
                    reads.push(u16::from_le_bytes(b));
                }
            }
        }
        Run {
            reads,
            audit: audit.reports().iter().map(|r| r.violation).collect(),
        }
    }

    /// PREREAD; then `iterations` of { POSTREAD; read ready word [; PREREAD] }.
    fn polling_loop(seq: Sequencing, iterations: usize) -> Vec<Act> {
        let mut acts = std::vec![Act::Sync(SyncOps::PREREAD)];
        for _ in 0..iterations {
            acts.push(Act::Sync(SyncOps::POSTREAD));
            acts.push(Act::Read(2));
            if seq == Sequencing::Corrected {
                acts.push(Act::Sync(SyncOps::PREREAD));
            }
        }
        acts
    }

    const MODELS: [Option<CpuCache>; 3] = [Some(CpuCache::M68030), Some(CpuCache::M68040), None];
    const POSTREADS: [PostRead; 2] = [PostRead::NoOp, PostRead::Invalidate];

    #[test]
    fn polling_loop_every_interleaving() {
        let iterations = 4;
        for seq in [Sequencing::Naive, Sequencing::Corrected] {
            let acts = polling_loop(seq, iterations);
            for model in MODELS {
                for postread in POSTREADS {
                    let mut some_stale = false;
                    // The device sets the ready word before any act (or never: at = len).
                    for at in 0..acts.len() {
                        let r = run(model, postread, &acts, &[(2, 1)], &[at]);
                        // A read whose act comes after the device write must see it, unless
                        // the cache legitimately keeps the old value.
                        let reads_after: Vec<u16> = acts[..]
                            .iter()
                            .enumerate()
                            .filter(|(_, a)| matches!(a, Act::Read(_)))
                            .zip(&r.reads)
                            .filter(|((i, _), _)| *i > at)
                            .map(|(_, &v)| v)
                            .collect();
                        let sees_it = reads_after.last().is_none_or(|&v| v == 1);
                        if !sees_it {
                            some_stale = true;
                        }
                        // Nothing ever reads a value the device did not write.
                        assert!(r.reads.iter().all(|&v| v <= 1));
                        match seq {
                            Sequencing::Corrected => {
                                assert!(sees_it, "corrected loop stale: {model:?} {postread:?} write before act {at}");
                                assert!(
                                    r.audit.is_empty(),
                                    "corrected loop flagged: {:?}",
                                    r.audit
                                );
                            }
                            Sequencing::Naive => assert!(
                                r.audit.contains(&Violation::RereadWithoutPreRead),
                                "naive loop not flagged: {model:?} {postread:?} {at}"
                            ),
                        }
                    }
                    let expect_stale =
                        seq == Sequencing::Naive && postread == PostRead::NoOp && model.is_some();
                    assert_eq!(some_stale, expect_stale, "{seq:?} {model:?} {postread:?}");
                }
            }
        }
    }

    /// Setup PREREAD; submit: POSTREAD, read flags(0) [PREREAD]; completion: POSTREAD, read
    /// idx(2), read element(4) (same line).
    fn two_phase(seq: Sequencing) -> Vec<Act> {
        let mut acts = std::vec![
            Act::Sync(SyncOps::PREREAD),
            Act::Sync(SyncOps::POSTREAD),
            Act::Read(0)
        ];
        if seq == Sequencing::Corrected {
            acts.push(Act::Sync(SyncOps::PREREAD));
        }
        acts.extend([Act::Sync(SyncOps::POSTREAD), Act::Read(2), Act::Read(4)]);
        acts
    }

    #[test]
    fn two_phase_read_every_interleaving() {
        // The device writes the element (offset 4) then idx (offset 2): two steps, anywhere.
        for seq in [Sequencing::Naive, Sequencing::Corrected] {
            let acts = two_phase(seq);
            let completion_read = acts.len() - 2;
            for model in MODELS {
                for postread in POSTREADS {
                    let mut some_stale = false;
                    for p1 in 0..=acts.len() {
                        for p2 in p1..=acts.len() {
                            let r = run(model, postread, &acts, &[(4, 0x77), (2, 1)], &[p1, p2]);
                            let idx = r.reads[r.reads.len() - 2];
                            let elem = r.reads[r.reads.len() - 1];
                            // Completion seen => the element written before it is seen too.
                            if idx == 1 {
                                assert_eq!(
                                    elem, 0x77,
                                    "{seq:?} {model:?} {postread:?} {p1} {p2}: torn"
                                );
                            }
                            let device_done_before_read = p2 <= completion_read;
                            if device_done_before_read && idx != 1 {
                                some_stale = true;
                                assert!(
                                    seq == Sequencing::Naive,
                                    "corrected stale: {model:?} {postread:?} {p1} {p2}"
                                );
                            }
                            match seq {
                                Sequencing::Corrected => {
                                    assert!(r.audit.is_empty(), "{:?}", r.audit)
                                }
                                Sequencing::Naive => {
                                    assert!(r.audit.contains(&Violation::RereadWithoutPreRead))
                                }
                            }
                        }
                    }
                    let expect_stale =
                        seq == Sequencing::Naive && postread == PostRead::NoOp && model.is_some();
                    assert_eq!(some_stale, expect_stale, "{seq:?} {model:?} {postread:?}");
                }
            }
        }
    }
}
