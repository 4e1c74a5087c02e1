//! bus_dma in Rust's terms: DMA memory, device-visible segments, and syncs, with the sync
//! discipline checked (auditor) and made visible under QEMU (stale-cache model).
//!
//! Machine-independent: the CPU-specific part (which cache instructions a sync needs, how to
//! run them, where memory is) comes from a [`Platform`]. Drivers use:
//! - [`DmaRegion`]: long-lived shared memory such as virtqueue rings, read and written through
//!   accessors (so the auditor and the cache model see every CPU access) and synced on
//!   sub-ranges with [`DmaRegion::sync`];
//! - [`DmaBuffer`] / [`DeviceOwned`]: streaming buffers whose ownership is in the type. A
//!   buffer handed to the device ([`DmaBuffer::give_to_device`], which does the PRE sync) has
//!   no data accessor; [`DeviceOwned::take_back`] does the POST sync and returns it. So a read
//!   without POSTREAD, or a transfer without its PRE sync, does not compile.
//!
//! Rules (NetBSD's bus_dma(9)): PREREAD before the device writes memory, POSTREAD after it
//! did and before the CPU reads; PREWRITE after the CPU wrote and before the device reads,
//! POSTWRITE after the device read. PRE and POST never in one call. "Coherent" memory is a
//! hint only: every sync is still made. Each new read phase of device-written memory needs its
//! own PREREAD (docs/dma-sync.md).

pub mod audit;
pub mod model;
pub mod mutant;

use crate::sync::{InterruptMask, IrqMutex};
use crate::word::Word32;
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;
use core::mem::ManuallyDrop;
use core::panic::Location;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU32, AtomicU8, Ordering};

use audit::{Auditor, Violation};
use model::{CacheModel, Geometry};

bitflags::bitflags! {
    /// What a sync prepares for (combinable, but never PRE with POST).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct SyncOps: u8 {
        const PREREAD = 1;
        const PREWRITE = 2;
        const POSTREAD = 4;
        const POSTWRITE = 8;
        const PRE = Self::PREREAD.bits() | Self::PREWRITE.bits();
        const POST = Self::POSTREAD.bits() | Self::POSTWRITE.bits();
    }
}

/// One cache-maintenance operation, as CPU sync implementations emit them. Applied to the
/// real cache by the platform, and to the software model when it is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStep {
    /// Discard every data-cache line (68030 CACR CD; no dirty lines exist there).
    InvalidateAll,
    /// Write back dirty lines, then discard all (68040 CPUSHA DC).
    PushInvalidateAll,
    /// One line: CPUSHL (push and invalidate) or CINVL.
    Line { addr: u32, push: bool },
    /// One 4 KiB page: CPUSHP or CINVP.
    Page { addr: u32, push: bool },
}

/// A kind of CPU data cache, defined by the platform: selects its sync implementation
/// ([`Platform::sync_steps`]) and the cache model's [`Geometry`]. This crate knows no CPU.
pub trait CacheKind: Copy + PartialEq + fmt::Debug + Send + 'static {
    /// Size, associativity, line size and write policy, for the software model.
    fn geometry(self) -> Geometry;
    /// A short name for reports, such as "68040 copyback".
    fn name(self) -> &'static str;
}

/// What POSTREAD does in the cache model (the experiment of docs/dma-sync.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostRead {
    /// Nothing, as NetBSD and Linux do on the m68k.
    NoOp,
    /// Invalidate the range, as some other ports do.
    Invalidate,
}

/// A device-visible piece of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub addr: u32,
    pub len: u32,
}

/// What a device can take, supplied by its driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_segments: usize,
    pub max_segment_size: u32,
    /// Segments may not cross a multiple of this (0: no boundary).
    pub boundary: u32,
}

impl Limits {
    pub const NONE: Limits = Limits {
        max_segments: usize::MAX,
        max_segment_size: u32::MAX,
        boundary: 0,
    };

    /// Splits [phys, phys + len) into segments that respect these limits.
    pub fn segments(&self, phys: u32, len: u32) -> Result<Vec<Segment>, DmaError> {
        let mut out = Vec::new();
        let (mut addr, end) = (u64::from(phys), u64::from(phys) + u64::from(len));
        while addr < end {
            let mut stop = end.min(addr + u64::from(self.max_segment_size.max(1)));
            if self.boundary != 0 {
                let b = u64::from(self.boundary);
                stop = stop.min((addr / b + 1) * b);
            }
            out.push(Segment {
                addr: addr as u32,
                len: (stop - addr) as u32,
            });
            addr = stop;
        }
        if out.len() > self.max_segments {
            return Err(DmaError::TooManySegments {
                needed: out.len(),
                max: self.max_segments,
            });
        }
        Ok(out)
    }
}

/// Who writes a region or buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The device reads it (a disk write's data, descriptors).
    ToDevice,
    /// The device writes it (a disk read's data, the used ring, a status byte).
    FromDevice,
    Bidirectional,
}

impl Direction {
    fn pre(self) -> SyncOps {
        match self {
            Direction::ToDevice => SyncOps::PREWRITE,
            Direction::FromDevice => SyncOps::PREREAD,
            Direction::Bidirectional => SyncOps::PRE,
        }
    }
    fn post(self) -> SyncOps {
        match self {
            Direction::ToDevice => SyncOps::POSTWRITE,
            Direction::FromDevice => SyncOps::POSTREAD,
            Direction::Bidirectional => SyncOps::POST,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DmaError {
    OutOfMemory {
        bytes: usize,
    },
    PreMixedWithPost,
    OutsideRegion {
        offset: u32,
        len: u32,
        region_len: u32,
    },
    TooManySegments {
        needed: usize,
        max: usize,
    },
}

impl fmt::Display for DmaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DmaError::OutOfMemory { bytes } => {
                write!(f, "no memory for {bytes} bytes of DMA memory")
            }
            DmaError::PreMixedWithPost => f.write_str("PRE and POST operations in one sync"),
            DmaError::OutsideRegion {
                offset,
                len,
                region_len,
            } => {
                write!(
                    f,
                    "range {offset:#x}+{len:#x} outside a region of {region_len:#x} bytes"
                )
            }
            DmaError::TooManySegments { needed, max } => {
                write!(f, "buffer needs {needed} segments, the device takes {max}")
            }
        }
    }
}

/// The machine-dependent half of bus_dma.
///
/// # Safety
///
/// `alloc` must return memory that is physically contiguous, at `physical(ptr)`, reachable
/// by devices; `pointer(physical(p)) == p` for such memory; `execute` must perform the cache
/// operation it is given on the CPU's real data cache; `barrier` must keep the compiler from
/// moving memory accesses across it; `mask` must keep interrupt handlers from running while
/// its guard lives.
pub unsafe trait Platform: InterruptMask + Sync + 'static {
    fn alloc(&self, size: usize, align: usize) -> Option<NonNull<u8>>;
    /// # Safety
    ///
    /// `ptr` came from `alloc(size, align)` and is not used afterwards.
    unsafe fn free(&self, ptr: NonNull<u8>, size: usize, align: usize);
    fn physical(&self, ptr: *const u8) -> u32;
    fn pointer(&self, phys: u32) -> *mut u8;
    /// The CPU's data cache line size in bytes (a power of two): the auditor's unit of
    /// ownership.
    const LINE: u32;
    /// The cache kinds this platform syncs for (and the model can simulate).
    type Cache: CacheKind;
    /// The CPU whose real cache `execute` maintains; None on a coherent machine.
    fn cpu(&self) -> Option<Self::Cache>;
    /// The cache steps `ops` needs on `cpu` for [phys, phys + len): its sync implementation.
    fn sync_steps(
        &self,
        cpu: Self::Cache,
        ops: SyncOps,
        phys: u32,
        len: u32,
        emit: &mut dyn FnMut(CacheStep),
    );
    /// Performs one cache step on the CPU's real data cache.
    ///
    /// # Safety
    ///
    /// The step is one [`sync_steps`](Self::sync_steps) plans for the CPU [`cpu`](Self::cpu)
    /// names (a platform may run it without asking again whether the CPU has the
    /// instruction). A step that invalidates without pushing discards the CPU's writes to its
    /// lines: the caller must know nobody needs them, as bus_dma's PREREAD does for a buffer
    /// the device is about to write (the steps of `sync_steps` for a range the caller owns,
    /// which push partial lines at its edges).
    unsafe fn execute(&self, step: CacheStep);
    /// Runs on the real cache every step [`sync_steps`](Self::sync_steps) plans for `ops`
    /// over [phys, phys + len), in its order, each as [`execute`](Self::execute) does. The
    /// default is exactly that; a platform overrides it to skip the planner and the per-step
    /// callback for the shapes a request path syncs (one line, one page, a POST that needs
    /// nothing), and must show by a test that it issues the planner's steps for every shape.
    ///
    /// # Safety
    ///
    /// `cpu` is what [`cpu`](Self::cpu) answers, and as [`execute`](Self::execute) for each
    /// step of the plan: the caller syncs a range it owns under the bus_dma rules.
    ///
    /// It is a compiler barrier before its first step and after its last, as
    /// [`barrier`](Self::barrier) is, whatever steps it runs (none included): the sync's
    /// callers rely on it (toolchain.md rule 3). A step that is an opaque call (a cache
    /// instruction in the machine layer) is one already; an override that runs no step must
    /// call `barrier` itself.
    unsafe fn sync_cache(&self, cpu: Self::Cache, ops: SyncOps, phys: u32, len: u32) {
        self.barrier();
        self.sync_steps(cpu, ops, phys, len, &mut |s| {
            // SAFETY: a step of the plan for the caller's range: its contract.
            unsafe { self.execute(s) }
        });
        self.barrier();
    }
    fn barrier(&self);
    /// True when POSTREAD and POSTWRITE need no cache step on any CPU of this platform
    /// (`sync_steps` plans none for them): with the auditor and the model off such a sync is
    /// then its bounds check and a compiler barrier. They still reach both when on.
    const POST_NOOP: bool = false;
    /// A full memory barrier as a paravirtual device sees it (Linux's `virtio_mb`, NetBSD's
    /// `paravirt_membar_sync`): every store before it is visible to a device running on
    /// another host thread before any load after it. Needed between a driver's store that
    /// re-arms the device (avail->idx, used_event, avail->flags) and its load of what the
    /// device answers (used->flags, avail_event, used->idx), even on one CPU. Platforms whose
    /// host needs none leave the default: a compiler barrier.
    fn paravirt_membar(&self) {
        self.barrier();
    }
}

const AUDIT: u8 = 1;
const MODEL: u8 = 2;

struct State<C> {
    auditor: Option<Auditor>,
    model: Option<(C, CacheModel, PostRead)>,
}

/// Tags whose auditor or model is on (any flag set), system-wide: the accessors' fast paths
/// load this one global instead of the region's tag and then its flags.
static WATCHED_TAGS: AtomicU32 = AtomicU32::new(0);

/// A system's DMA tag: the platform plus the optional auditor and cache model.
pub struct DmaTag<P: Platform> {
    /// AUDIT | MODEL. The accessors look at it only while some tag is watched
    /// ([`WATCHED_TAGS`]); when none is, that global is all they load.
    flags: AtomicU8,
    /// With the platform, whose interrupt mask the lock raises.
    state: IrqMutex<State<P::Cache>, P>,
    next_id: AtomicU32,
}

/// Copies `buf.len()` bytes from memory at `src` in the widest naturally aligned volatile
/// units (4, 2, then 1 bytes). A device reads and writes its 16- and 32-bit ring fields
/// whole, concurrently with the CPU: a field accessed byte by byte can be seen torn (an
/// avail->idx half-written, a used->idx half-read), so aligned fields must move in one access.
///
/// # Safety
///
/// `[src, src + buf.len())` must be readable memory.
unsafe fn copy_from_memory(src: *const u8, buf: &mut [u8]) {
    let mut i = 0;
    while i < buf.len() {
        let p = src.wrapping_add(i);
        let left = buf.len() - i;
        if left >= 4 && (p as usize).is_multiple_of(4) {
            // SAFETY: in range (caller), aligned (checked).
            let v = unsafe { core::ptr::read_volatile(p as *const u32) };
            buf[i..i + 4].copy_from_slice(&v.to_ne_bytes());
            i += 4;
        } else if left >= 2 && (p as usize).is_multiple_of(2) {
            // SAFETY: `p` is inside the caller's readable range with 2 bytes left, and even.
            let v = unsafe { core::ptr::read_volatile(p as *const u16) };
            buf[i..i + 2].copy_from_slice(&v.to_ne_bytes());
            i += 2;
        } else {
            // SAFETY: `p` is inside the caller's readable range (i < len); a byte has no
            // alignment.
            buf[i] = unsafe { core::ptr::read_volatile(p) };
            i += 1;
        }
    }
}

/// Copies `data` to memory at `dst` in the widest naturally aligned volatile units.
///
/// # Safety
///
/// `[dst, dst + data.len())` must be writable memory.
unsafe fn copy_to_memory(dst: *mut u8, data: &[u8]) {
    let mut i = 0;
    while i < data.len() {
        let p = dst.wrapping_add(i);
        let left = data.len() - i;
        if left >= 4 && (p as usize).is_multiple_of(4) {
            let v = u32::from_ne_bytes([data[i], data[i + 1], data[i + 2], data[i + 3]]);
            // SAFETY: in range (caller), aligned (checked).
            unsafe { core::ptr::write_volatile(p as *mut u32, v) };
            i += 4;
        } else if left >= 2 && (p as usize).is_multiple_of(2) {
            // SAFETY: `p` is inside the caller's writable range with 2 bytes left, and even.
            unsafe {
                core::ptr::write_volatile(p as *mut u16, u16::from_ne_bytes([data[i], data[i + 1]]))
            };
            i += 2;
        } else {
            // SAFETY: `p` is inside the caller's writable range (i < len); a byte has no
            // alignment.
            unsafe { core::ptr::write_volatile(p, data[i]) };
            i += 1;
        }
    }
}

/// Physical memory through the platform, for the cache model.
struct PlatformMemory<'a, P: Platform>(&'a P);

impl<P: Platform> model::Memory for PlatformMemory<'_, P> {
    fn read(&self, phys: u32, buf: &mut [u8]) {
        // SAFETY: the model fills only lines of live DMA allocations (region accessors,
        // allocation zeroing, buffers handed back: all inside their allocation, rounded to
        // whole lines), and a region's lines leave the model before its memory is freed
        // (`DmaRegion::drop`); nothing else can plant a line (`with_model` is read-only).
        unsafe { copy_from_memory(self.0.pointer(phys), buf) }
    }
    fn write(&self, phys: u32, data: &[u8]) {
        // SAFETY: a write-back or write-through of such a line: memory of a live DMA
        // allocation (see `read`), which the model's owner may write.
        unsafe { copy_to_memory(self.0.pointer(phys), data) }
    }
}

impl<P: Platform> DmaTag<P> {
    pub const fn new(platform: P) -> Self {
        DmaTag {
            flags: AtomicU8::new(0),
            state: IrqMutex::new(
                platform,
                State {
                    auditor: None,
                    model: None,
                },
            ),
            next_id: AtomicU32::new(1),
        }
    }

    pub fn platform(&self) -> &P {
        self.state.mask_source()
    }

    /// Turns the auditor on (keeping findings already made) or off (dropping them).
    /// Regions allocated while it was off (or before it was restarted) are tracked from
    /// their first sync or access, with their real length.
    pub fn set_audit(&self, on: bool, sink: Option<audit::Sink>) {
        let mut st = self.state.lock();
        if on {
            let a = st.auditor.get_or_insert_with(|| Auditor::new(P::LINE));
            a.set_sink(sink);
            self.update_flags(AUDIT, 0);
        } else {
            st.auditor = None;
            self.update_flags(0, AUDIT);
        }
    }

    /// Routes CPU accesses to DMA memory through a model of `cpu`'s data cache (None: off,
    /// memory is coherent). The model starts empty.
    pub fn set_model(&self, cpu: Option<P::Cache>, postread: PostRead) {
        let mut st = self.state.lock();
        // The old model's dirty lines are CPU writes: they reach memory before it goes (its
        // lines all belong to live DMA allocations: see `PlatformMemory`).
        if let Some((_, model, _)) = st.model.as_mut() {
            model.apply(
                CacheStep::PushInvalidateAll,
                &PlatformMemory(self.platform()),
            );
        }
        st.model = cpu.map(|c| (c, CacheModel::new(c.geometry()), postread));
        if cpu.is_some() {
            self.update_flags(MODEL, 0);
        } else {
            self.update_flags(0, MODEL);
        }
    }

    /// The model in use, if any.
    pub fn model(&self) -> Option<(P::Cache, PostRead)> {
        self.state.lock().model.as_ref().map(|(c, _, p)| (*c, *p))
    }

    /// Runs `f` on the auditor (None when auditing is off), under the tag's lock with
    /// interrupts masked: `f` must not touch DMA memory or sync (that takes the lock again).
    pub fn with_auditor<R>(&self, f: impl FnOnce(Option<&mut Auditor>) -> R) -> R {
        let mut st = self.state.lock();
        f(st.auditor.as_mut())
    }

    /// The auditor's findings as text (host tests assert there are none).
    #[cfg(test)]
    pub fn audit_findings(&self) -> std::vec::Vec<std::string::String> {
        self.with_auditor(|a| {
            a.expect("the auditor is on")
                .reports()
                .iter()
                .map(|r| std::format!("{r}"))
                .collect()
        })
    }

    /// Runs `f` on the cache model (None when it is off), read-only: a line planted by hand
    /// would be written back to whatever memory its address names. Under the tag's lock, as
    /// [`with_auditor`](Self::with_auditor): `f` must not touch DMA memory.
    pub fn with_model<R>(&self, f: impl FnOnce(Option<&CacheModel>) -> R) -> R {
        let st = self.state.lock();
        f(st.model.as_ref().map(|(_, m, _)| m))
    }

    /// A CPU write through the cache model at any address (tests of what a line shared with
    /// other data does).
    #[cfg(test)]
    fn model_write(&self, phys: u32, data: &[u8]) {
        let mut st = self.state.lock();
        let (_, model, _) = st.model.as_mut().expect("the model is on");
        model.write(phys, data, &PlatformMemory(self.platform()));
    }

    /// Allocates a page-aligned, physically contiguous region of `len` bytes, zeroed.
    /// `coherent` is a hint only: it changes no sync the driver must make.
    ///
    /// The allocation is rounded up to whole cache lines (`Platform::LINE`), so no line of the
    /// region is shared with other memory the CPU writes while the device owns it: a PREREAD
    /// pushes partial edge lines, and a neighbour's dirty copy pushed later would land on the
    /// device's data. The zeroing is a CPU write like any other: with the cache model on it
    /// goes through the model (dirty lines on a copyback cache, memory unchanged until they
    /// are pushed), so a device-written region needs PREREAD|PREWRITE before its first use.
    pub fn alloc(
        &'static self,
        name: &'static str,
        len: u32,
        dir: Direction,
        coherent: bool,
    ) -> Result<DmaRegion<P>, DmaError> {
        self.alloc_zeroed(name, len, dir, coherent, false)
    }

    /// `alloc`; `streaming`: a streaming buffer, whose plain slices the model never sees, so
    /// its zeroing is a write to memory itself (the model's lines over it are written back
    /// and dropped first, so none can later land on the slice's data) and the auditor takes
    /// it as the CPU's until a PREREAD; else a region, whose zeroing is a CPU write through
    /// the model like any accessor's.
    fn alloc_zeroed(
        &'static self,
        name: &'static str,
        len: u32,
        dir: Direction,
        coherent: bool,
        streaming: bool,
    ) -> Result<DmaRegion<P>, DmaError> {
        let size = alloc_size::<P>(len);
        let ptr = self
            .platform()
            .alloc(size, DMA_ALIGN)
            .ok_or(DmaError::OutOfMemory { bytes: size })?;
        let phys = self.platform().physical(ptr.as_ptr());
        let modelled = self.flags_now() & MODEL != 0 && {
            let mut st = self.state.lock();
            match st.model.as_mut() {
                Some((_, model, _)) if !streaming => {
                    let mem = PlatformMemory(self.platform());
                    let zeros = [0u8; 64];
                    for off in (0..size).step_by(zeros.len()) {
                        let n = zeros.len().min(size - off);
                        model.write(phys + off as u32, &zeros[..n], &mem);
                    }
                    true
                }
                Some((_, model, _)) => {
                    let mem = PlatformMemory(self.platform());
                    for off in (0..size as u32).step_by(P::LINE as usize) {
                        model.apply(
                            CacheStep::Line {
                                addr: phys + off,
                                push: true,
                            },
                            &mem,
                        );
                    }
                    false
                }
                None => false,
            }
        };
        if !modelled {
            // SAFETY: `size` fresh bytes; zeroed so no stale data reaches a device.
            unsafe { core::ptr::write_bytes(ptr.as_ptr(), 0, size) };
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        if self.flags_now() & AUDIT != 0 {
            if let Some(a) = self.state.lock().auditor.as_mut() {
                // A streaming buffer is the device's to write only once handed over (PREREAD).
                a.add_region(id, name, len, !streaming && dir != Direction::ToDevice);
                // The zeroing is a CPU write like any other: it needs a PREWRITE (or, for
                // device-written memory, PREWRITE|PREREAD) before the device sees the lines.
                a.on_write(id, 0, len, Location::caller());
            }
        }
        Ok(DmaRegion {
            tag_addr: (self as *const DmaTag<P>).expose_provenance().swap_bytes(),
            _tag: core::marker::PhantomData,
            id,
            addr: ptr.as_ptr().expose_provenance().swap_bytes(),
            phys: Word32::new(phys),
            len: Word32::new(len),
            name,
            coherent,
        })
    }

    /// Allocates a streaming buffer, owned by the CPU.
    pub fn buffer(&'static self, name: &'static str, len: u32) -> Result<DmaBuffer<P>, DmaError> {
        let region = self.alloc_zeroed(name, len, Direction::Bidirectional, false, true)?;
        let phys = region.phys();
        Ok(DmaBuffer {
            inner: Box::new(Streaming {
                region,
                dir: Direction::Bidirectional,
                len: Word32::new(0),
                segments: Segments::One(Segment { addr: phys, len: 0 }),
            }),
        })
    }

    /// The platform's paravirtual store-before-load barrier (see [`Platform::paravirt_membar`]).
    pub fn paravirt_membar(&self) {
        self.platform().paravirt_membar();
    }

    /// Sets `set` and clears `clear` in the flags (under the state lock), keeping
    /// [`WATCHED_TAGS`] the count of tags with any flag set.
    fn update_flags(&self, set: u8, clear: u8) {
        let old = self.flags.load(Ordering::Relaxed);
        let new = (old | set) & !clear;
        self.flags.store(new, Ordering::Relaxed);
        match (old != 0, new != 0) {
            (false, true) => {
                WATCHED_TAGS.fetch_add(1, Ordering::Relaxed);
            }
            (true, false) => {
                WATCHED_TAGS.fetch_sub(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }

    /// AUDIT | MODEL as set now: one load of a global while no tag in the system is watched
    /// (the request path's case), the tag's own flags otherwise.
    #[inline(always)]
    fn flags_now(&self) -> u8 {
        if WATCHED_TAGS.load(Ordering::Relaxed) == 0 {
            0
        } else {
            self.flags.load(Ordering::Relaxed)
        }
    }

    /// Whether the auditor or the model is on: a caller may skip hand-over notices
    /// (`device_start*`) that only they read, with one test instead of one per notice.
    #[inline]
    pub fn watched(&self) -> bool {
        self.flags_now() != 0
    }

    /// What every sync does whoever watches: the PRE/POST and bounds checks and the
    /// platform's steps on the real cache, which are a compiler barrier before and after
    /// (toolchain.md rule 3; `Platform::sync_cache`'s contract, or `barrier` on a coherent
    /// machine), for [offset, offset + len) of the region at `phys` of `region_len` bytes.
    /// The checked path adds the auditor, the model and one more barrier.
    #[inline(always)]
    fn real_cache_steps(
        &self,
        phys: u32,
        region_len: u32,
        ops: SyncOps,
        offset: u32,
        len: u32,
    ) -> Result<(), DmaError> {
        if ops.intersects(SyncOps::PRE) && ops.intersects(SyncOps::POST) {
            return Err(DmaError::PreMixedWithPost);
        }
        check_in(offset, len, region_len)?;
        // SAFETY: a range of the caller's region (checked above) with PRE and POST not mixed,
        // which the caller syncs under the bus_dma rules.
        unsafe { self.cache_steps(ops, phys + offset, len) };
        Ok(())
    }

    /// The platform's cache steps for `ops` over [phys, phys + len), between compiler
    /// barriers; nothing checked.
    ///
    /// # Safety
    ///
    /// The range lies in one region of this tag, `ops` does not mix PRE with POST, and the
    /// caller syncs it under the bus_dma rules: an invalidate covers only lines of the
    /// region the device owns (partial edge lines are pushed by the plan, not discarded).
    #[inline(always)]
    unsafe fn cache_steps(&self, ops: SyncOps, phys: u32, len: u32) {
        match self.platform().cpu() {
            // SAFETY: the platform's steps, for the CPU it names, over a range this
            // function's caller vouches for.
            Some(cpu) => unsafe { self.platform().sync_cache(cpu, ops, phys, len) },
            None => self.platform().barrier(),
        }
    }

    /// [`View::sync`] with the auditor or the model on: both see the sync.
    #[cold]
    fn sync_range_checked(
        &self,
        region: &DmaRegion<P>,
        ops: SyncOps,
        offset: u32,
        len: u32,
        caller: &'static Location<'static>,
        flags: u8,
    ) -> Result<(), DmaError> {
        let (id, phys, region_len) = (region.id, region.phys(), region.len());
        if flags & AUDIT != 0 {
            if let Some(a) = self.state.lock().auditor.as_mut() {
                a.learn_region(id, region.name, region_len);
                a.check_sync(id, ops, offset, len, caller)
                    .map_err(|v| match v {
                        Violation::PreMixedWithPost => DmaError::PreMixedWithPost,
                        _ => DmaError::OutsideRegion {
                            offset,
                            len,
                            region_len,
                        },
                    })?;
            }
        }
        self.real_cache_steps(phys, region_len, ops, offset, len)?;
        let start = phys + offset;
        {
            let mut st = self.state.lock();
            let st = &mut *st;
            if let Some(a) = st.auditor.as_mut() {
                a.on_sync(id, ops, offset, len);
            }
            if let Some((cpu, model, postread)) = st.model.as_mut() {
                let mem = PlatformMemory(self.platform());
                self.platform()
                    .sync_steps(*cpu, ops, start, len, &mut |s| model.apply(s, &mem));
                if ops.contains(SyncOps::POSTREAD) && *postread == PostRead::Invalidate {
                    self.platform()
                        .sync_steps(*cpu, SyncOps::PREREAD, start, len, &mut |s| {
                            model.apply(s, &mem)
                        });
                }
            }
        }
        self.platform().barrier();
        Ok(())
    }
}

/// Ok when [offset, offset + len) lies in a region of `region_len` bytes.
#[inline(always)]
fn check_in(offset: u32, len: u32, region_len: u32) -> Result<(), DmaError> {
    match offset.checked_add(len) {
        Some(end) if end <= region_len => Ok(()),
        _ => Err(DmaError::OutsideRegion {
            offset,
            len,
            region_len,
        }),
    }
}

/// A [`DmaRegion`]'s placement (base, physical address, length) copied out of it, for a run
/// of accesses and syncs: each is the region's own accessor (the auditor and the model see
/// it when on), minus the reloads. On this route the region's fields live in linear memory,
/// and a store to DMA memory may alias them as far as the compiler knows, so the region's
/// accessors reload them after every store; a view's copies are locals.
pub struct View<'a, P: Platform> {
    region: &'a DmaRegion<P>,
    ptr: NonNull<u8>,
    phys: u32,
    len: u32,
}

// Not derived: a derive would ask `P: Copy` of the platform.
impl<P: Platform> Clone for View<'_, P> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<P: Platform> Copy for View<'_, P> {}

impl<'a, P: Platform> View<'a, P> {
    /// The region viewed.
    pub fn region(&self) -> &'a DmaRegion<P> {
        self.region
    }
    pub fn phys(&self) -> u32 {
        self.phys
    }

    /// The address of a naturally aligned `T` at `offset` when the access may skip the
    /// auditor and the model (both off) and lies in the region; None sends it the long way.
    #[inline(always)]
    fn direct<T>(&self, offset: u32) -> Option<*mut T> {
        let (size, align) = (
            core::mem::size_of::<T>() as u32,
            core::mem::align_of::<T>() as u32,
        );
        // The region starts on a page (DMA_ALIGN), so an aligned offset is an aligned address.
        let fits = offset.is_multiple_of(align) && offset.checked_add(size)? <= self.len;
        (fits && self.region.tag().flags_now() == 0)
            // SAFETY: `offset + size <= len`, the region's own length: inside its allocation.
            .then(|| unsafe { self.ptr.as_ptr().add(offset as usize) }.cast::<T>())
    }

    /// As [`DmaRegion::sync`].
    #[track_caller]
    #[inline(always)]
    pub fn sync(&self, ops: SyncOps, offset: u32, len: u32) -> Result<(), DmaError> {
        let tag = self.region.tag();
        let flags = tag.flags_now();
        if flags != 0 {
            return tag.sync_range_checked(
                self.region,
                ops,
                offset,
                len,
                Location::caller(),
                flags,
            );
        }
        if P::POST_NOOP && !ops.intersects(SyncOps::PRE) {
            // Nothing for the cache to do (the platform says so): the bounds, and the compiler
            // barrier every sync is (toolchain.md rule 3).
            check_in(offset, len, self.len)?;
            tag.platform().barrier();
            return Ok(());
        }
        tag.real_cache_steps(self.phys, self.len, ops, offset, len)
    }

    /// [`sync`](Self::sync) of a range these bounds admitted before (a transfer handed over
    /// and taken back): a POST the platform does nothing for, with nobody watching, is then
    /// the compiler barrier alone.
    #[track_caller]
    #[inline(always)]
    pub(crate) fn sync_admitted(
        &self,
        ops: SyncOps,
        offset: u32,
        len: u32,
    ) -> Result<(), DmaError> {
        let tag = self.region.tag();
        if P::POST_NOOP && !ops.intersects(SyncOps::PRE) && tag.flags_now() == 0 {
            tag.platform().barrier();
            return Ok(());
        }
        self.sync(ops, offset, len)
    }

    #[track_caller]
    #[inline(always)]
    pub fn read_u8(&self, offset: u32) -> u8 {
        if let Some(p) = self.direct::<u8>(offset) {
            // SAFETY: in bounds (`direct`); a byte has no alignment.
            return unsafe { core::ptr::read_volatile(p) };
        }
        let mut b = [0u8; 1];
        self.region.read(offset, &mut b);
        b[0]
    }
    #[track_caller]
    #[inline(always)]
    pub fn read_u16_le(&self, offset: u32) -> u16 {
        if let Some(p) = self.direct::<u16>(offset) {
            // SAFETY: in bounds and aligned (`direct`): one access, as a device's is.
            return u16::from_le(unsafe { core::ptr::read_volatile(p) });
        }
        let mut b = [0u8; 2];
        self.region.read(offset, &mut b);
        u16::from_le_bytes(b)
    }
    #[track_caller]
    #[inline(always)]
    pub fn read_u32_le(&self, offset: u32) -> u32 {
        if let Some(p) = self.direct::<u32>(offset) {
            // SAFETY: in bounds and aligned (`direct`): one access, as a device's is.
            return u32::from_le(unsafe { core::ptr::read_volatile(p) });
        }
        let mut b = [0u8; 4];
        self.region.read(offset, &mut b);
        u32::from_le_bytes(b)
    }
    #[track_caller]
    #[inline(always)]
    pub fn write_u8(&self, offset: u32, v: u8) {
        if let Some(p) = self.direct::<u8>(offset) {
            // SAFETY: in bounds (`direct`); a byte has no alignment.
            return unsafe { core::ptr::write_volatile(p, v) };
        }
        self.region.write(offset, &[v]);
    }
    #[track_caller]
    #[inline(always)]
    pub fn write_u16_le(&self, offset: u32, v: u16) {
        if let Some(p) = self.direct::<u16>(offset) {
            // SAFETY: in bounds and aligned (`direct`): one access, as a device's is.
            return unsafe { core::ptr::write_volatile(p, v.to_le()) };
        }
        self.region.write(offset, &v.to_le_bytes());
    }
    #[track_caller]
    #[inline(always)]
    pub fn write_u32_le(&self, offset: u32, v: u32) {
        if let Some(p) = self.direct::<u32>(offset) {
            // SAFETY: in bounds and aligned (`direct`): one access, as a device's is.
            return unsafe { core::ptr::write_volatile(p, v.to_le()) };
        }
        self.region.write(offset, &v.to_le_bytes());
    }
    /// As [`DmaRegion::write_u32s_le`].
    #[track_caller]
    #[inline(always)]
    pub fn write_u32s_le<const N: usize>(&self, offset: u32, words: [u32; N]) {
        if let Some(p) = self.direct::<[u32; N]>(offset) {
            let p = p.cast::<u32>();
            for (i, w) in words.into_iter().enumerate() {
                // SAFETY: `direct` checked [offset, offset + 4N) in bounds and offset 4-aligned
                // (the array's alignment is its element's): word i is inside and aligned.
                unsafe { core::ptr::write_volatile(p.add(i), w.to_le()) };
            }
            return;
        }
        let mut b = [0u8; 64];
        assert!(N <= 16, "at most 16 words per call");
        for (i, w) in words.into_iter().enumerate() {
            b[4 * i..4 * i + 4].copy_from_slice(&w.to_le_bytes());
        }
        self.region.write(offset, &b[..4 * N]);
    }
}

/// [`DmaRegion::read_phase_u16_fast`]'s "take the full path" (no u16 has bit 16).
const NOT_FAST: u32 = 1 << 16;

/// Alignment of every DMA allocation (a page: page-granular cache operations stay inside).
const DMA_ALIGN: usize = 4096;

/// Bytes allocated for a region of `len`: at least one, rounded up to whole cache lines.
fn alloc_size<P: Platform>(len: u32) -> usize {
    (len.max(1) as usize).next_multiple_of(P::LINE as usize)
}

/// Long-lived DMA memory shared with a device, accessed through audited accessors.
pub struct DmaRegion<P: Platform> {
    /// The tag's address, held as `addr` is (loaded by every sync; exposed when the region
    /// was made from a `&'static DmaTag`).
    tag_addr: usize,
    _tag: core::marker::PhantomData<&'static DmaTag<P>>,
    id: u32,
    /// The allocation's address, byte-swapped like the words below (a view loads it for every
    /// run of accesses) and exposed when allocated: [`ptr`](Self::ptr) rebuilds the pointer
    /// with the allocation's provenance.
    addr: usize,
    /// The words a [`view`](DmaRegion::view) copies: [`Word32`]s (no byte swaps on this
    /// route).
    phys: Word32,
    len: Word32,
    name: &'static str,
    coherent: bool,
}

// SAFETY: the region owns its memory; every access goes through volatile operations or the
// tag's lock, and the hardware does not care which context issues them.
unsafe impl<P: Platform> Send for DmaRegion<P> {}
// SAFETY: shared references only reach the memory through volatile accesses of the
// accessors or under the tag's lock (auditor, model), so concurrent `&self` calls from a
// handler and a thread race like two CPU accesses to device memory, with no Rust reference
// into the bytes.
unsafe impl<P: Platform> Sync for DmaRegion<P> {}

impl<P: Platform> DmaRegion<P> {
    /// The allocation (its address exposed when it was allocated).
    #[inline(always)]
    fn ptr(&self) -> NonNull<u8> {
        let p = core::ptr::with_exposed_provenance_mut::<u8>(self.addr.swap_bytes());
        // SAFETY: the address of the allocation, a `NonNull` when the region was made.
        unsafe { NonNull::new_unchecked(p) }
    }

    pub fn phys(&self) -> u32 {
        self.phys.get()
    }
    pub fn len(&self) -> u32 {
        self.len.get()
    }
    pub fn is_empty(&self) -> bool {
        self.len.get() == 0
    }
    pub fn name(&self) -> &'static str {
        self.name
    }
    pub fn is_coherent_hint(&self) -> bool {
        self.coherent
    }
    /// The tag the region belongs to.
    #[inline(always)]
    pub fn tag(&self) -> &'static DmaTag<P> {
        let p = core::ptr::with_exposed_provenance::<DmaTag<P>>(self.tag_addr.swap_bytes());
        // SAFETY: the address of the `&'static DmaTag` this region was allocated from: valid
        // and shared for the rest of the program.
        unsafe { &*p }
    }

    /// The segments of [offset, offset + len) under `limits`.
    pub fn segments(
        &self,
        offset: u32,
        len: u32,
        limits: &Limits,
    ) -> Result<Vec<Segment>, DmaError> {
        self.check(offset, len)?;
        limits.segments(self.phys.get() + offset, len)
    }

    #[inline]
    fn check(&self, offset: u32, len: u32) -> Result<(), DmaError> {
        check_in(offset, len, self.len.get())
    }

    #[track_caller]
    fn in_bounds(&self, offset: u32, len: usize) {
        if let Err(e) = self.check(offset, len as u32) {
            panic!("DMA region {}: access {e}", self.name);
        }
    }

    /// Syncs [offset, offset + len) for `ops`.
    #[track_caller]
    #[inline(always)]
    pub fn sync(&self, ops: SyncOps, offset: u32, len: u32) -> Result<(), DmaError> {
        self.view().sync(ops, offset, len)
    }

    /// This region's placement copied into locals, for a run of accesses and syncs (see
    /// [`View`]).
    #[inline(always)]
    pub fn view(&self) -> View<'_, P> {
        View {
            region: self,
            ptr: self.ptr(),
            phys: self.phys.get(),
            len: self.len.get(),
        }
    }

    /// One read phase of a device-written 16-bit field: PREREAD (when `pre`), POSTREAD (when
    /// `post`), then the read, as those two [`sync`](Self::sync)s and
    /// [`read_u16_le`](Self::read_u16_le) would do them, with one bounds check and one look at
    /// the tag's flags when neither the auditor nor the model watches and the platform's POST
    /// syncs do nothing (a used ring's idx, flags or avail_event, read on every poll). `pre`
    /// and `post` are false only when a sync site is left out on purpose (`dma::mutant`).
    ///
    /// Errors: `OutsideRegion` (the field past the region's end).
    #[track_caller]
    #[inline(always)]
    pub fn read_phase_u16(&self, offset: u32, pre: bool, post: bool) -> Result<u16, DmaError> {
        if P::POST_NOOP && pre {
            let v = self.read_phase_u16_fast(offset);
            if v != NOT_FAST {
                return Ok(v as u16);
            }
        }
        self.read_phase_u16_full(offset, pre, post)
    }

    /// [`read_phase_u16`](Self::read_phase_u16) where nobody watches and POST syncs do
    /// nothing: the PREREAD (a compiler barrier, standing for the POSTREAD's barrier too:
    /// its only effect here) and the read, as the low half; [`NOT_FAST`] when the auditor or
    /// the model is on, or the field is out of bounds or misaligned (the full path then says
    /// why). One word, not an `Option` or a `Result` (on this route those went through
    /// linear memory while it was out of line). Inlined since round 8 (-11 per 4 KiB QD1
    /// request, -15 per GET_ID: the call and its register saves; round 5 found it mixed).
    #[inline(always)]
    fn read_phase_u16_fast(&self, offset: u32) -> u32 {
        let Some(p) = self.view().direct::<u16>(offset) else {
            return NOT_FAST;
        };
        // SAFETY: two bytes of this region (`direct` checked them), PREREAD alone, on a
        // field the device writes: the caller's read phase.
        unsafe {
            self.tag()
                .cache_steps(SyncOps::PREREAD, self.phys.get() + offset, 2)
        };
        // SAFETY: in bounds and aligned (`direct`): one access, as a device's is.
        u32::from(u16::from_le(unsafe { core::ptr::read_volatile(p) }))
    }

    #[track_caller]
    #[inline(never)]
    fn read_phase_u16_full(&self, offset: u32, pre: bool, post: bool) -> Result<u16, DmaError> {
        if pre {
            self.sync(SyncOps::PREREAD, offset, 2)?;
        }
        if post {
            self.sync(SyncOps::POSTREAD, offset, 2)?;
        }
        Ok(self.read_u16_le(offset))
    }

    /// Tells the auditor the device may read [offset, offset + len) from now on (call before
    /// a notify): lines the CPU wrote since their last PREWRITE are reported.
    #[track_caller]
    pub fn device_start(&self, offset: u32, len: u32) {
        self.audit_device(offset, len, Auditor::on_device_start);
    }

    /// As [`device_start`](Self::device_start) for a transfer the device reads (a request
    /// header): until the POSTWRITE, a CPU write to these lines is a finding.
    #[track_caller]
    pub fn device_start_transfer(&self, offset: u32, len: u32) {
        self.audit_device(offset, len, Auditor::on_device_start_transfer);
    }

    /// The device may write [offset, offset + len) from now on: the auditor checks every
    /// line had a PREREAD since its last POSTREAD.
    /// The auditor's check of a CPU read of the whole region (a streaming buffer's slice).
    #[cold]
    #[inline(never)]
    fn audit_read_owned(&self, caller: &'static Location<'static>) {
        if let Some(a) = self.tag().state.lock().auditor.as_mut() {
            a.learn_region(self.id, self.name, self.len.get());
            a.on_read_owned(self.id, 0, self.len.get(), caller);
        }
    }

    #[track_caller]
    pub fn device_start_writing(&self, offset: u32, len: u32) {
        self.audit_device(offset, len, Auditor::on_device_start_writing);
    }

    #[track_caller]
    fn audit_device(
        &self,
        offset: u32,
        len: u32,
        check: fn(&mut Auditor, u32, u32, u32, &'static Location<'static>),
    ) {
        if self.tag().flags_now() & AUDIT != 0 {
            if let Some(a) = self.tag().state.lock().auditor.as_mut() {
                a.learn_region(self.id, self.name, self.len.get());
                check(a, self.id, offset, len, Location::caller());
            }
        }
    }

    /// Reads `buf.len()` bytes at `offset` as the CPU sees them.
    #[track_caller]
    pub fn read(&self, offset: u32, buf: &mut [u8]) {
        self.in_bounds(offset, buf.len());
        let flags = self.tag().flags_now();
        if flags == 0 {
            // SAFETY: in bounds of this region's memory (checked above).
            unsafe { copy_from_memory(self.ptr().as_ptr().add(offset as usize), buf) };
            return;
        }
        self.read_slow(offset, buf, flags, Location::caller());
    }

    #[cold]
    fn read_slow(
        &self,
        offset: u32,
        buf: &mut [u8],
        flags: u8,
        caller: &'static Location<'static>,
    ) {
        let mut st = self.tag().state.lock();
        let st = &mut *st;
        if flags & AUDIT != 0 {
            if let Some(a) = st.auditor.as_mut() {
                a.learn_region(self.id, self.name, self.len.get());
                a.on_read(self.id, offset, buf.len() as u32, caller);
            }
        }
        match st.model.as_mut() {
            Some((_, model, _)) => model.read(
                self.phys.get() + offset,
                buf,
                &PlatformMemory(self.tag().platform()),
            ),
            None => {
                // SAFETY: in bounds (checked by the caller).
                unsafe { copy_from_memory(self.ptr().as_ptr().add(offset as usize), buf) };
            }
        }
    }

    /// Writes `data` at `offset` as the CPU does.
    #[track_caller]
    pub fn write(&self, offset: u32, data: &[u8]) {
        self.in_bounds(offset, data.len());
        let flags = self.tag().flags_now();
        if flags == 0 {
            // SAFETY: in bounds of this region's memory (checked above).
            unsafe { copy_to_memory(self.ptr().as_ptr().add(offset as usize), data) };
            return;
        }
        self.write_slow(offset, data, flags, Location::caller());
    }

    #[cold]
    fn write_slow(&self, offset: u32, data: &[u8], flags: u8, caller: &'static Location<'static>) {
        let mut st = self.tag().state.lock();
        let st = &mut *st;
        if flags & AUDIT != 0 {
            if let Some(a) = st.auditor.as_mut() {
                a.learn_region(self.id, self.name, self.len.get());
                a.on_write(self.id, offset, data.len() as u32, caller);
            }
        }
        match st.model.as_mut() {
            Some((_, model, _)) => model.write(
                self.phys.get() + offset,
                data,
                &PlatformMemory(self.tag().platform()),
            ),
            None => {
                // SAFETY: in bounds (checked by the caller).
                unsafe { copy_to_memory(self.ptr().as_ptr().add(offset as usize), data) };
            }
        }
    }

    #[track_caller]
    #[inline]
    pub fn read_u8(&self, offset: u32) -> u8 {
        self.view().read_u8(offset)
    }
    #[track_caller]
    #[inline]
    pub fn read_u16_le(&self, offset: u32) -> u16 {
        self.view().read_u16_le(offset)
    }
    #[track_caller]
    #[inline]
    pub fn read_u32_le(&self, offset: u32) -> u32 {
        self.view().read_u32_le(offset)
    }
    #[track_caller]
    pub fn read_u64_le(&self, offset: u32) -> u64 {
        let mut b = [0u8; 8];
        self.read(offset, &mut b);
        u64::from_le_bytes(b)
    }
    #[track_caller]
    #[inline]
    pub fn write_u8(&self, offset: u32, v: u8) {
        self.view().write_u8(offset, v)
    }
    #[track_caller]
    #[inline]
    pub fn write_u16_le(&self, offset: u32, v: u16) {
        self.view().write_u16_le(offset, v)
    }
    #[track_caller]
    #[inline]
    pub fn write_u32_le(&self, offset: u32, v: u32) {
        self.view().write_u32_le(offset, v)
    }
    /// Writes `N` little-endian 32-bit words from `offset` (4-aligned): a descriptor or a
    /// request header in one bounds check and `N` stores.
    #[track_caller]
    #[inline]
    pub fn write_u32s_le<const N: usize>(&self, offset: u32, words: [u32; N]) {
        self.view().write_u32s_le(offset, words)
    }
    #[track_caller]
    pub fn write_u64_le(&self, offset: u32, v: u64) {
        self.write(offset, &v.to_le_bytes());
    }

    /// Reads `buf.len()` bytes at `offset` from memory itself, past the cache model and
    /// unseen by the auditor: what the device sees (diagnostics: a driver whose accessor
    /// returns something else is reading a stale line). Panics outside the region.
    pub fn peek_memory(&self, offset: u32, buf: &mut [u8]) {
        self.in_bounds(offset, buf.len());
        // SAFETY: in bounds of this region's memory (checked above).
        unsafe { copy_from_memory(self.ptr().as_ptr().add(offset as usize), buf) };
    }

    /// What the device sees: memory itself, past any cache (for simulated devices and tests).
    pub fn raw_pointer(&self) -> *mut u8 {
        self.ptr().as_ptr()
    }

    /// Replaces what the CPU would see of [offset, offset + len) with the cache model's view
    /// (used when ownership of a buffer returns to the CPU: its plain slice accessors do not
    /// go through the model).
    fn materialize_model_view(&self, offset: u32, len: u32) {
        if self.tag().flags_now() & MODEL == 0 || len == 0 {
            return;
        }
        let mut st = self.tag().state.lock();
        if let Some((_, model, _)) = st.model.as_mut() {
            let mem = PlatformMemory(self.tag().platform());
            for i in 0..len {
                let phys = self.phys.get() + offset + i;
                if model.holds(phys) {
                    let mut b = [0u8];
                    model.read(phys, &mut b, &mem);
                    // SAFETY: in bounds of the region.
                    unsafe {
                        core::ptr::write_volatile(
                            self.ptr().as_ptr().add((offset + i) as usize),
                            b[0],
                        )
                    };
                }
            }
        }
    }
}

impl<P: Platform> Drop for DmaRegion<P> {
    fn drop(&mut self) {
        if self.tag().flags_now() & MODEL != 0 {
            // The model's lines over this memory are written back and dropped while it is
            // still the region's: none may land later on whoever is given it next.
            let mut st = self.tag().state.lock();
            if let Some((_, model, _)) = st.model.as_mut() {
                let mem = PlatformMemory(self.tag().platform());
                for off in (0..alloc_size::<P>(self.len.get()) as u32).step_by(P::LINE as usize) {
                    model.apply(
                        CacheStep::Line {
                            addr: self.phys.get() + off,
                            push: true,
                        },
                        &mem,
                    );
                }
            }
        }
        if self.tag().flags_now() & AUDIT != 0 {
            if let Some(a) = self.tag().state.lock().auditor.as_mut() {
                a.remove_region(self.id);
            }
        }
        // SAFETY: allocated by `alloc` with this size and alignment; the region is gone.
        unsafe {
            self.tag()
                .platform()
                .free(self.ptr(), alloc_size::<P>(self.len.get()), DMA_ALIGN)
        };
    }
}

/// A streaming buffer the CPU owns: plain slice access. It holds a pointer to its state
/// (allocated with the buffer, once), so handing it to the device and back moves one word:
/// moving the region itself moved a dozen, each a bounds-checked load and store on this route.
pub struct DmaBuffer<P: Platform> {
    inner: Box<Streaming<P>>,
}

/// A streaming buffer's region and its transfer: the last one given to the device.
struct Streaming<P: Platform> {
    region: DmaRegion<P>,
    dir: Direction,
    /// A [`Word32`]: no byte swaps on this route.
    len: Word32,
    segments: Segments,
}

impl<P: Platform> fmt::Debug for DmaBuffer<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "DmaBuffer({} at {:#x}, {} bytes)",
            self.inner.region.name,
            self.inner.region.phys(),
            self.inner.region.len()
        )
    }
}

impl<P: Platform> fmt::Debug for DeviceOwned<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "DeviceOwned({:?}, {} segments)",
            self.direction(),
            self.segments().len()
        )
    }
}

impl<P: Platform> DmaBuffer<P> {
    pub fn len(&self) -> u32 {
        self.inner.region.len()
    }
    pub fn is_empty(&self) -> bool {
        self.inner.region.len() == 0
    }
    /// The buffer's bytes as the CPU reads them. The auditor checks each line the device may
    /// have written had its POSTREAD (repeated reads of a buffer the CPU owns are fine).
    #[track_caller]
    #[inline(always)]
    pub fn as_slice(&self) -> &[u8] {
        let r = &self.inner.region;
        if r.tag().flags_now() & AUDIT != 0 {
            r.audit_read_owned(Location::caller());
        }
        // SAFETY: the CPU owns the buffer (no device transfer in flight: that needs `self`).
        unsafe { core::slice::from_raw_parts(r.ptr().as_ptr(), r.len() as usize) }
    }
    /// The buffer's bytes for the CPU to write. The auditor takes every line as written (the
    /// slice itself is plain memory): the next transfer to the device needs its PREWRITE.
    #[track_caller]
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        let r = &self.inner.region;
        if r.tag().flags_now() & AUDIT != 0 {
            if let Some(a) = r.tag().state.lock().auditor.as_mut() {
                a.learn_region(r.id, r.name, r.len());
                a.on_write(r.id, 0, r.len(), Location::caller());
            }
        }
        // SAFETY: the CPU owns the buffer (a device transfer consumes `self`), the region's
        // `len` bytes are its allocation, and `&mut self` excludes every other reference.
        unsafe { core::slice::from_raw_parts_mut(r.ptr().as_ptr(), r.len() as usize) }
    }

    /// Hands [0, len) to the device for a transfer in `dir`, after its PRE sync (PREWRITE if
    /// the device reads, PREREAD if it writes). The CPU cannot touch the data until
    /// [`DeviceOwned::take_back`].
    #[track_caller]
    #[inline(always)]
    pub fn give_to_device(
        mut self,
        dir: Direction,
        len: u32,
        limits: &Limits,
    ) -> Result<DeviceOwned<P>, (Self, DmaError)> {
        // One segment (the common case) is kept inline: no allocation per transfer.
        let phys = self.inner.region.phys();
        let fits_one = len <= limits.max_segment_size
            && limits.max_segments >= 1
            && (limits.boundary == 0
                || phys / limits.boundary == (phys + len.max(1) - 1) / limits.boundary);
        let segments = if fits_one && len <= self.inner.region.len() {
            Segments::One(Segment { addr: phys, len })
        } else {
            match self.inner.region.segments(0, len, limits) {
                Ok(s) => Segments::Many(s),
                Err(e) => return Err((self, e)),
            }
        };
        if let Err(e) = self.pre_sync_and_notices(dir, len) {
            return Err((self, e));
        }
        // Stored only once handed over: a refused transfer leaves the last one described
        // (what `give_again` repeats).
        let s = &mut *self.inner;
        (s.dir, s.len, s.segments) = (dir, Word32::new(len), segments);
        Ok(DeviceOwned {
            inner: ManuallyDrop::new(self.inner),
        })
    }

    /// Hands the device the transfer the last successful
    /// [`give_to_device`](Self::give_to_device) described again (its direction, length and
    /// segments, which the buffer keeps; before any, an empty one), after its PRE sync: for
    /// a caller that sends the same transfer again (a request slot whose chain repeats),
    /// nothing is computed or stored but the sync and the auditor's notices.
    #[track_caller]
    #[inline(always)]
    pub fn give_again(self) -> Result<DeviceOwned<P>, (Self, DmaError)> {
        let (dir, len) = (self.inner.dir, self.inner.len.get());
        if let Err(e) = self.pre_sync_and_notices(dir, len) {
            return Err((self, e));
        }
        Ok(DeviceOwned {
            inner: ManuallyDrop::new(self.inner),
        })
    }

    /// The PRE sync of [0, len) for `dir`, then the hand-over as the auditor sees it.
    #[track_caller]
    #[inline(always)]
    fn pre_sync_and_notices(&self, dir: Direction, len: u32) -> Result<(), DmaError> {
        let region = &self.inner.region;
        crate::sync_site!("dma.give.pre", region.sync(dir.pre(), 0, len))?;
        // The device reads CPU-written lines only after their PREWRITE, and writes only lines
        // handed to it with PREREAD.
        if dir != Direction::FromDevice {
            region.device_start_transfer(0, len);
        }
        if dir != Direction::ToDevice {
            region.device_start_writing(0, len);
        }
        Ok(())
    }
}

/// A buffer in the device's hands: its segments can be given to the device; its data cannot
/// be read until [`take_back`](Self::take_back). Dropped without being taken back, its memory
/// is leaked rather than reused (the device may still write it).
#[must_use = "take the buffer back after the device is done, or its memory leaks"]
pub struct DeviceOwned<P: Platform> {
    /// Moved out only by `take_back`; dropped any other way it is leaked (`ManuallyDrop`, and
    /// no `Drop` of its own), as the device may still write it. One word, and `None` still
    /// fits in it where a slot keeps an `Option<DeviceOwned>`.
    inner: ManuallyDrop<Box<Streaming<P>>>,
}

enum Segments {
    One(Segment),
    Many(Vec<Segment>),
}

impl<P: Platform> DeviceOwned<P> {
    pub fn segments(&self) -> &[Segment] {
        match &self.inner.segments {
            Segments::One(s) => core::slice::from_ref(s),
            Segments::Many(v) => v,
        }
    }
    pub fn direction(&self) -> Direction {
        self.inner.dir
    }

    /// After the device is done: the POST sync, then the CPU owns the buffer again.
    ///
    /// # Safety
    ///
    /// The device must be done with the buffer: its request completed (the used element was
    /// seen), or the device reset, or the buffer never given to it (no descriptor names it).
    /// Otherwise it may still write memory the CPU now owns, or that is freed and reused.
    #[track_caller]
    #[inline(always)]
    pub unsafe fn take_back(self) -> DmaBuffer<P> {
        let DeviceOwned { inner } = self;
        let inner = ManuallyDrop::into_inner(inner);
        let (region, dir, len) = (&inner.region, inner.dir, inner.len.get());
        // The range `give_to_device` checked (it stores a transfer only once handed over).
        crate::sync_site!(
            "dma.take.post",
            region.view().sync_admitted(dir.post(), 0, len)
        )
        .expect("a range that passed give_to_device is valid");
        if dir != Direction::ToDevice && region.tag().flags_now() & MODEL != 0 {
            region.materialize_model_view(0, len);
        }
        DmaBuffer { inner }
    }
}

#[cfg(test)]
pub(crate) mod sim {
    //! A host platform for tests: an arena of "physical" memory at 0x0100_0000 and a simple
    //! line-granular sync implementation (PREWRITE pushes, PREREAD invalidates whole lines and
    //! pushes partial ones), so that the model and auditor can be exercised on the host.
    use super::*;
    use core::sync::atomic::AtomicUsize;

    pub const PHYS_BASE: u32 = 0x0100_0000;
    const ARENA: usize = 1 << 20;
    /// The host platform's line size (the same as the m68k's, so tests keep their numbers).
    const LINE: u32 = 16;

    /// The host tests' cache kinds, with the 68030's and 68040's numbers.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum SimCache {
        /// 256 bytes, direct-mapped, write-through.
        WriteThrough,
        /// 4 KiB, 4-way, copyback.
        Copyback,
    }

    impl CacheKind for SimCache {
        fn geometry(self) -> Geometry {
            match self {
                SimCache::WriteThrough => model::tests::WRITE_THROUGH_256,
                SimCache::Copyback => model::tests::COPYBACK_4K,
            }
        }
        fn name(self) -> &'static str {
            match self {
                SimCache::WriteThrough => "write-through",
                SimCache::Copyback => "copyback",
            }
        }
    }

    pub struct SimPlatform {
        arena: usize,
        next: AtomicUsize,
        pub frees: AtomicUsize,
        /// `paravirt_membar` calls so far.
        pub membars: AtomicUsize,
    }

    impl SimPlatform {
        pub fn new() -> Self {
            let layout = core::alloc::Layout::from_size_align(ARENA, 4096).unwrap();
            // SAFETY: non-zero size; leaked for the test's lifetime.
            let arena = unsafe { std::alloc::alloc(layout) } as usize;
            // Old heap bytes, as a real allocator hands out: memory the CPU never zeroed
            // must not read as zeros.
            // SAFETY: the arena's own `ARENA` bytes.
            unsafe { core::ptr::write_bytes(arena as *mut u8, 0xa5, ARENA) };
            SimPlatform {
                arena,
                next: AtomicUsize::new(0),
                frees: AtomicUsize::new(0),
                membars: AtomicUsize::new(0),
            }
        }
    }

    // Tests are single-threaded: there are no interrupt handlers to mask.
    impl InterruptMask for SimPlatform {
        type Guard = ();
        fn mask(&self) {}
    }

    // SAFETY: the arena is real memory; "physical" addresses map 1:1 onto it; the host has no
    // cache to maintain; tests are single-threaded, so `mask` has nothing to do.
    unsafe impl Platform for SimPlatform {
        fn alloc(&self, size: usize, align: usize) -> Option<NonNull<u8>> {
            let start = self.next.load(Ordering::Relaxed).next_multiple_of(align);
            if start + size > ARENA {
                return None;
            }
            self.next.store(start + size, Ordering::Relaxed);
            NonNull::new((self.arena + start) as *mut u8)
        }
        unsafe fn free(&self, _ptr: NonNull<u8>, _size: usize, _align: usize) {
            self.frees.fetch_add(1, Ordering::Relaxed);
        }
        fn physical(&self, ptr: *const u8) -> u32 {
            PHYS_BASE + (ptr as usize - self.arena) as u32
        }
        fn pointer(&self, phys: u32) -> *mut u8 {
            (self.arena + (phys - PHYS_BASE) as usize) as *mut u8
        }
        const LINE: u32 = LINE;
        type Cache = SimCache;
        fn cpu(&self) -> Option<SimCache> {
            None
        }

        fn sync_steps(
            &self,
            _cpu: SimCache,
            ops: SyncOps,
            phys: u32,
            len: u32,
            emit: &mut dyn FnMut(CacheStep),
        ) {
            let (start, end) = (phys, phys + len);
            let mut line = start & !(LINE - 1);
            while line < end {
                let whole = line >= start && line + LINE <= end;
                if ops.contains(SyncOps::PREWRITE) || (ops.contains(SyncOps::PREREAD) && !whole) {
                    emit(CacheStep::Line {
                        addr: line,
                        push: true,
                    });
                } else if ops.contains(SyncOps::PREREAD) {
                    emit(CacheStep::Line {
                        addr: line,
                        push: false,
                    });
                }
                line += LINE;
            }
        }
        unsafe fn execute(&self, _step: CacheStep) {}
        fn barrier(&self) {}
        fn paravirt_membar(&self) {
            self.membars.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn tag() -> &'static DmaTag<SimPlatform> {
        std::boxed::Box::leak(std::boxed::Box::new(DmaTag::new(SimPlatform::new())))
    }

    /// [`SimPlatform`] with a copyback CPU whose POST syncs do nothing (as the m68k's), and
    /// which logs every cache step and barrier it is asked for: for comparing a fast path
    /// (taken only when neither auditor nor model watches) with the general one.
    pub struct LoggingPlatform {
        inner: SimPlatform,
        pub log: std::sync::Mutex<Vec<Logged>>,
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Logged {
        Step(CacheStep),
        Barrier,
    }

    impl InterruptMask for LoggingPlatform {
        type Guard = ();
        fn mask(&self) {}
    }

    // SAFETY: as SimPlatform's, which does the memory work; steps are only logged.
    unsafe impl Platform for LoggingPlatform {
        fn alloc(&self, size: usize, align: usize) -> Option<NonNull<u8>> {
            self.inner.alloc(size, align)
        }
        unsafe fn free(&self, ptr: NonNull<u8>, size: usize, align: usize) {
            // SAFETY: the caller's contract, passed on.
            unsafe { self.inner.free(ptr, size, align) }
        }
        fn physical(&self, ptr: *const u8) -> u32 {
            self.inner.physical(ptr)
        }
        fn pointer(&self, phys: u32) -> *mut u8 {
            self.inner.pointer(phys)
        }
        const LINE: u32 = LINE;
        type Cache = SimCache;
        fn cpu(&self) -> Option<SimCache> {
            Some(SimCache::Copyback)
        }
        fn sync_steps(
            &self,
            cpu: SimCache,
            ops: SyncOps,
            phys: u32,
            len: u32,
            emit: &mut dyn FnMut(CacheStep),
        ) {
            self.inner.sync_steps(cpu, ops, phys, len, emit)
        }
        unsafe fn execute(&self, step: CacheStep) {
            self.log.lock().unwrap().push(Logged::Step(step));
        }
        fn barrier(&self) {
            self.log.lock().unwrap().push(Logged::Barrier);
        }
        const POST_NOOP: bool = true;
    }

    pub fn logging_tag() -> &'static DmaTag<LoggingPlatform> {
        std::boxed::Box::leak(std::boxed::Box::new(DmaTag::new(LoggingPlatform {
            inner: SimPlatform::new(),
            log: std::sync::Mutex::new(Vec::new()),
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::sim::{tag, PHYS_BASE};
    use super::*;

    /// `read_phase_u16`'s fast path (nothing watching, POST syncs no-ops) asks the platform
    /// for exactly the cache steps of the PREREAD and POSTREAD syncs it stands for, with a
    /// barrier after them, and reads what memory holds.
    #[test]
    fn a_read_phase_takes_the_steps_of_its_two_syncs() {
        use sim::Logged;
        let t = sim::logging_tag();
        let r = t.alloc("used", 64, Direction::FromDevice, false).unwrap();
        let take = || core::mem::take(&mut *t.platform().log.lock().unwrap());
        for off in [0u32, 2, 14, 16, 30] {
            // SAFETY: in bounds of the region's memory; the "device" writes the field.
            unsafe {
                core::ptr::write_volatile(
                    r.raw_pointer().add(off as usize).cast::<[u8; 2]>(),
                    (0x1234u16 + off as u16).to_le_bytes(),
                )
            };
            take();
            r.sync(SyncOps::PREREAD, off, 2).unwrap();
            r.sync(SyncOps::POSTREAD, off, 2).unwrap();
            let general = take();
            let v = r.read_phase_u16(off, true, true).unwrap();
            let fast = take();
            assert_eq!(v, 0x1234 + off as u16, "offset {off}");
            let steps = |l: &[Logged]| {
                l.iter()
                    .filter(|e| matches!(e, Logged::Step(_)))
                    .copied()
                    .collect::<Vec<_>>()
            };
            assert!(!steps(&general).is_empty(), "offset {off}: {general:?}");
            assert_eq!(steps(&fast), steps(&general), "offset {off}");
            assert_eq!(
                fast.last(),
                Some(&Logged::Barrier),
                "offset {off}: {fast:?}"
            );
            // Without the PREREAD (a mutant): no step at all, still the closing barrier.
            r.read_phase_u16(off, false, true).unwrap();
            assert_eq!(take(), [Logged::Barrier], "offset {off}");
        }
        assert!(r.read_phase_u16(63, true, true).is_err(), "past the end");
    }

    fn device_write(r: &DmaRegion<sim::SimPlatform>, offset: u32, bytes: &[u8]) {
        for (i, &b) in bytes.iter().enumerate() {
            // SAFETY: in bounds of the region's memory.
            unsafe { core::ptr::write_volatile(r.raw_pointer().add(offset as usize + i), b) };
        }
    }

    #[test]
    fn segments_respect_every_limit() {
        let l = Limits {
            max_segments: 8,
            max_segment_size: 0x800,
            boundary: 0x1000,
        };
        let s = l.segments(0x0fff_0f00, 0x1200).unwrap();
        assert_eq!(
            s,
            [
                Segment {
                    addr: 0x0fff_0f00,
                    len: 0x100
                },
                Segment {
                    addr: 0x0fff_1000,
                    len: 0x800
                },
                Segment {
                    addr: 0x0fff_1800,
                    len: 0x800
                },
                Segment {
                    addr: 0x0fff_2000,
                    len: 0x100
                },
            ]
        );
        let tight = Limits {
            max_segments: 3,
            ..l
        };
        assert_eq!(
            tight.segments(0x0fff_0f00, 0x1200),
            Err(DmaError::TooManySegments { needed: 4, max: 3 })
        );
        assert_eq!(Limits::NONE.segments(0, 0), Ok(std::vec![]));
        assert_eq!(Limits::NONE.segments(0xffff_f000, 0x1000).unwrap().len(), 1);
    }

    #[test]
    fn regions_are_page_aligned_and_zeroed_with_physical_addresses() {
        let t = tag();
        let a = t.alloc("a", 100, Direction::ToDevice, false).unwrap();
        let b = t.alloc("b", 100, Direction::ToDevice, true).unwrap();
        assert_eq!(a.phys() % 4096, 0);
        assert_eq!(b.phys(), a.phys() + 4096);
        assert!(a.phys() >= PHYS_BASE && b.is_coherent_hint());
        assert_eq!(a.read_u32_le(96), 0);
        assert!(a.segments(90, 20, &Limits::NONE).is_err(), "past the end");
    }

    #[test]
    fn accessors_are_little_endian_and_bounded() {
        let t = tag();
        let r = t.alloc("r", 32, Direction::Bidirectional, false).unwrap();
        r.write_u32_le(4, 0x1122_3344);
        r.write_u16_le(8, 0xaabb);
        r.write_u64_le(16, 0x0102_0304_0506_0708);
        let mut b = [0u8; 4];
        r.read(4, &mut b);
        assert_eq!(b, [0x44, 0x33, 0x22, 0x11]);
        assert_eq!(r.read_u16_le(8), 0xaabb);
        assert_eq!(r.read_u64_le(16), 0x0102_0304_0506_0708);
        assert!(
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| r.read_u32_le(30))).is_err(),
            "out of bounds must panic"
        );
    }

    #[test]
    fn word_writes_land_little_endian_on_both_paths() {
        // virtio's fields are little-endian (1.2, 1.4): 0x04030201 is stored 01 02 03 04.
        let expected = [0u8, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0];
        for audit in [false, true] {
            let t = tag();
            t.set_audit(audit, None);
            let r = t.alloc("desc", 16, Direction::ToDevice, false).unwrap();
            r.write_u32s_le(4, [0x0403_0201, 0x0807_0605]);
            let mut got = [0u8; 16];
            r.peek_memory(0, &mut got);
            assert_eq!(got, expected, "audit {audit}");
            if audit {
                // The auditor saw the write: reading it back is no finding, pushing it to the
                // device without a PREWRITE is one.
                r.device_start(0, 16);
                assert_eq!(t.audit_findings().len(), 1, "{:?}", t.audit_findings());
            }
            t.set_audit(false, None);
        }
    }

    #[test]
    #[should_panic(expected = "outside")]
    fn word_writes_past_the_region_panic() {
        let r = tag().alloc("desc", 16, Direction::ToDevice, false).unwrap();
        r.write_u32s_le(8, [1, 2, 3]);
        unreachable!("12 bytes at 8 of a 16-byte region: refused");
    }

    #[test]
    fn sync_errors_and_audit_through_the_accessors() {
        let t = tag();
        t.set_audit(true, None);
        let r = t.alloc("used", 64, Direction::FromDevice, false).unwrap();
        assert_eq!(
            r.sync(SyncOps::PREREAD | SyncOps::POSTWRITE, 0, 4),
            Err(DmaError::PreMixedWithPost)
        );
        assert!(matches!(
            r.sync(SyncOps::PREREAD, 60, 8),
            Err(DmaError::OutsideRegion { .. })
        ));
        r.sync(SyncOps::PREREAD, 0, 64).unwrap();
        r.sync(SyncOps::POSTREAD, 0, 4).unwrap();
        let _ = r.read_u16_le(0);
        r.sync(SyncOps::POSTREAD, 0, 4).unwrap();
        let _ = r.read_u16_le(2);
        let kinds: std::vec::Vec<Violation> =
            t.with_auditor(|a| a.unwrap().reports().iter().map(|r| r.violation).collect());
        assert_eq!(
            kinds,
            [
                Violation::PreMixedWithPost,
                Violation::SyncOutsideRegion,
                Violation::RereadWithoutPreRead
            ]
        );
        let text = t.with_auditor(|a| std::format!("{}", a.unwrap().reports()[2]));
        assert!(
            text.contains("in used at offset 0x2, by drivers/src/dma/mod.rs:"),
            "{text}"
        );
    }

    #[test]
    fn a_tag_is_watched_exactly_while_its_auditor_or_model_is_on() {
        // Other tests' tags come and go in parallel: only this tag's own count is certain.
        let tag = sim::tag();
        assert!(!tag.watched());
        tag.set_audit(true, None);
        assert!(tag.watched());
        tag.set_model(Some(sim::SimCache::Copyback), PostRead::NoOp);
        tag.set_audit(false, None);
        assert!(tag.watched(), "the model is still on");
        tag.set_model(None, PostRead::NoOp);
        assert!(!tag.watched());
        tag.set_model(Some(sim::SimCache::WriteThrough), PostRead::NoOp);
        assert!(tag.watched());
        tag.set_model(None, PostRead::NoOp);
    }

    #[test]
    fn a_region_outliving_an_auditor_restart_is_still_synced_and_audited() {
        // The TTY receive region is allocated at boot; a DMA self-test then restarts the
        // auditor (off, then on), which forgets every region it knew.
        for audit_at_alloc in [false, true] {
            let t = tag();
            t.set_audit(audit_at_alloc, None);
            let r = t.alloc("tty-rx", 64, Direction::FromDevice, false).unwrap();
            t.set_audit(false, None);
            t.set_audit(true, None);
            assert_eq!(r.sync(SyncOps::PREREAD, 0, 64), Ok(()));
            assert_eq!(r.sync(SyncOps::POSTREAD, 0, 64), Ok(()));
            let _ = r.read_u8(0);
            // still audited after the restart: a re-read in a new phase is found, and the
            // range is checked against the region's real length
            r.sync(SyncOps::POSTREAD, 0, 64).unwrap();
            let _ = r.read_u8(0);
            assert!(matches!(
                r.sync(SyncOps::PREREAD, 32, 64),
                Err(DmaError::OutsideRegion { region_len: 64, .. })
            ));
            let kinds: std::vec::Vec<Violation> =
                t.with_auditor(|a| a.unwrap().reports().iter().map(|r| r.violation).collect());
            assert_eq!(
                kinds,
                [
                    Violation::RereadWithoutPreRead,
                    Violation::SyncOutsideRegion
                ]
            );
        }
    }

    #[test]
    fn the_model_makes_a_missing_preread_visible() {
        let t = tag();
        t.set_model(Some(sim::SimCache::WriteThrough), PostRead::NoOp);
        let r = t.alloc("poll", 16, Direction::FromDevice, false).unwrap();
        r.sync(SyncOps::PREREAD, 0, 16).unwrap();
        r.sync(SyncOps::POSTREAD, 0, 16).unwrap();
        assert_eq!(r.read_u8(0), 0);
        device_write(&r, 0, &[1]);
        r.sync(SyncOps::POSTREAD, 0, 16).unwrap();
        assert_eq!(
            r.read_u8(0),
            0,
            "stale: no PREREAD since the line was filled"
        );
        r.sync(SyncOps::PREREAD, 0, 16).unwrap();
        r.sync(SyncOps::POSTREAD, 0, 16).unwrap();
        assert_eq!(r.read_u8(0), 1);
        t.set_model(Some(sim::SimCache::WriteThrough), PostRead::Invalidate);
        device_write(&r, 0, &[2]);
        let _ = r.read_u8(0); // fills
        device_write(&r, 0, &[3]);
        r.sync(SyncOps::POSTREAD, 0, 16).unwrap();
        assert_eq!(
            r.read_u8(0),
            3,
            "an invalidating POSTREAD hides the mistake"
        );
    }

    #[test]
    fn ownership_moves_with_the_syncs() {
        let t = tag();
        t.set_audit(true, None);
        let mut buf = t.buffer("data", 64).unwrap();
        buf.as_mut_slice().copy_from_slice(&[7; 64]);
        let out = buf
            .give_to_device(Direction::FromDevice, 64, &Limits::NONE)
            .unwrap();
        assert_eq!(
            out.segments(),
            &[Segment {
                addr: out.segments()[0].addr,
                len: 64
            }]
        );
        // SAFETY: no device here: the buffer was never named in a descriptor.
        let buf = unsafe { out.take_back() };
        assert_eq!(buf.len(), 64);
        let too_small = Limits {
            max_segments: 1,
            max_segment_size: 16,
            boundary: 0,
        };
        let (buf, e) = buf
            .give_to_device(Direction::ToDevice, 64, &too_small)
            .err()
            .unwrap();
        assert_eq!(e, DmaError::TooManySegments { needed: 4, max: 1 });
        let frees_before = t.platform().frees.load(Ordering::Relaxed);
        let lost = buf
            .give_to_device(Direction::ToDevice, 64, &Limits::NONE)
            .unwrap();
        drop(lost);
        assert_eq!(
            t.platform().frees.load(Ordering::Relaxed),
            frees_before,
            "a buffer dropped in the device's hands is leaked, never reused"
        );
        assert_eq!(t.with_auditor(|a| a.unwrap().total()), 0);
    }

    /// `give_again` hands over exactly the last transfer `give_to_device` handed over: the
    /// same cache steps (read from the logging platform, against a fresh `give_to_device` of
    /// the same transfer), direction and segments; a refused `give_to_device` leaves that
    /// transfer as it was; a buffer never given repeats an empty one (no step).
    #[test]
    fn give_again_repeats_the_last_transfer_handed_over() {
        use sim::Logged;
        let t = sim::logging_tag();
        let take = || core::mem::take(&mut *t.platform().log.lock().unwrap());
        let steps = |l: Vec<Logged>| {
            l.into_iter()
                .filter(|e| matches!(e, Logged::Step(_)))
                .collect::<Vec<_>>()
        };
        let buf = t.buffer("data", 4096).unwrap();
        take();
        let out = buf.give_again().unwrap();
        assert!(steps(take()).is_empty(), "nothing handed over yet: no step");
        assert_eq!(
            out.segments(),
            &[Segment {
                addr: out.segments()[0].addr,
                len: 0
            }]
        );
        // SAFETY: no device here: the buffer was never named in a descriptor.
        let buf = unsafe { out.take_back() };
        let mut buf = buf;
        for (dir, len) in [(Direction::FromDevice, 4096), (Direction::ToDevice, 100)] {
            take();
            let out = buf.give_to_device(dir, len, &Limits::NONE).unwrap();
            let reference = steps(take());
            assert!(!reference.is_empty(), "{dir:?} {len}");
            let seg = out.segments().to_vec();
            // SAFETY: as above.
            let b = unsafe { out.take_back() };
            let again = b.give_again().unwrap();
            assert_eq!(steps(take()), reference, "{dir:?} {len}");
            assert_eq!((again.segments(), again.direction()), (&seg[..], dir));
            // SAFETY: as above.
            let b = unsafe { again.take_back() };
            let too_small = Limits {
                max_segments: 1,
                max_segment_size: 16,
                boundary: 0,
            };
            let (b, _) = b
                .give_to_device(Direction::Bidirectional, 64, &too_small)
                .err()
                .unwrap();
            take();
            let again = b.give_again().unwrap();
            assert_eq!(
                steps(take()),
                reference,
                "after a refused one: {dir:?} {len}"
            );
            assert_eq!((again.segments(), again.direction()), (&seg[..], dir));
            // SAFETY: as above.
            buf = unsafe { again.take_back() };
        }
    }

    /// E2: a region owns its last cache line. The used ring is 6 + 8q bytes; if the
    /// allocator may place CPU data right after it (here: a heap neighbour taken from the same
    /// allocator with byte alignment), the neighbour's dirty line covers the ring's tail, the
    /// next read phase's PREREAD pushes that partial edge line, and the CPU's stale copy of
    /// the ring's last bytes lands on what the device wrote.
    #[test]
    fn a_region_shares_no_line_with_a_heap_neighbour() {
        let t = tag();
        t.set_model(Some(sim::SimCache::Copyback), PostRead::NoOp);
        let used = t
            .alloc("used ring", 38, Direction::FromDevice, false)
            .unwrap();
        used.sync(SyncOps::PREREAD | SyncOps::PREWRITE, 0, 38)
            .unwrap();
        let neighbour = t.platform().alloc(8, 1).unwrap();
        let n_phys = t.platform().physical(neighbour.as_ptr());
        // The CPU writes its neighbour (through the cache), then the device the ring's tail.
        t.model_write(n_phys, &[1; 8]);
        device_write(&used, 32, &[0x77; 6]);
        // The next read phase.
        used.sync(SyncOps::PREREAD, 0, 38).unwrap();
        used.sync(SyncOps::POSTREAD, 0, 38).unwrap();
        let mut tail = [0u8; 6];
        used.read(32, &mut tail);
        assert_eq!(
            tail, [0x77; 6],
            "the neighbour at {n_phys:#x} pushed a stale tail"
        );
        assert!(
            n_phys >= used.phys() + 48,
            "neighbour inside the ring's last line"
        );
    }

    /// The allocation's zeroing and a buffer's mutable slice are CPU writes: handing such
    /// lines to the device without PREWRITE is a finding; give_to_device's own PRE sync
    /// makes the hand-over clean.
    #[test]
    fn zeroing_and_slices_are_writes_the_device_must_not_see_unpushed() {
        let t = tag();
        t.set_audit(true, None);
        let r = t.alloc("header", 16, Direction::ToDevice, false).unwrap();
        r.device_start(0, 16);
        assert!(t.audit_findings()[0].contains("device started on a line the CPU wrote"));
        t.with_auditor(|a| a.unwrap().clear_reports());
        let mut b = t.buffer("data", 64).unwrap();
        b.as_mut_slice()[0] = 1;
        let out = b
            .give_to_device(Direction::ToDevice, 64, &Limits::NONE)
            .unwrap();
        assert!(t.audit_findings().is_empty(), "{:?}", t.audit_findings());
        // SAFETY: no device here: the buffer was never named in a descriptor.
        drop(unsafe { out.take_back() });
    }

    /// Switching the cache model off (or to another) keeps the CPU's writes the old one held.
    #[test]
    fn switching_models_keeps_the_cpus_writes() {
        let t = tag();
        t.set_model(Some(sim::SimCache::Copyback), PostRead::NoOp);
        let r = t.alloc("region", 64, Direction::FromDevice, false).unwrap();
        r.write_u32_le(0, 0x1234_5678);
        t.set_model(None, PostRead::NoOp);
        assert_eq!(r.read_u32_le(0), 0x1234_5678);
        assert_eq!(r.read_u32_le(4), 0, "the allocation's zeroing");
    }

    /// A region's zeroing is a CPU write through the (copyback) model: memory keeps its old
    /// bytes until a push; a streaming buffer's is a write to memory itself (its slices never
    /// go through the model), and the auditor takes the buffer as the CPU's.
    #[test]
    fn region_zeroing_is_cached_buffer_zeroing_is_not() {
        let t = tag();
        t.set_audit(true, None);
        t.set_model(Some(sim::SimCache::Copyback), PostRead::NoOp);
        let r = t.alloc("region", 16, Direction::FromDevice, false).unwrap();
        let mut mem = [0u8; 4];
        r.peek_memory(0, &mut mem);
        assert_eq!(mem, [0xa5; 4], "memory before the push");
        r.sync(SyncOps::PREREAD | SyncOps::PREWRITE, 0, 16).unwrap();
        r.peek_memory(0, &mut mem);
        assert_eq!(mem, [0; 4], "memory after the push");
        let b = t.buffer("buffer", 16).unwrap();
        b.inner.region.peek_memory(0, &mut mem);
        assert_eq!(mem, [0; 4]);
        // Never handed to the device: reading it is no finding.
        assert_eq!(b.as_slice()[0], 0);
        assert!(t.audit_findings().is_empty(), "{:?}", t.audit_findings());
    }
}
