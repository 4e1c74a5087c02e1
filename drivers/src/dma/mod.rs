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

use alloc::vec::Vec;
use core::fmt;
use core::panic::Location;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU32, AtomicU8, Ordering};

use audit::{Auditor, Violation};
use model::{CacheModel, Geometry};

/// The data cache line size of the 68030 and 68040.
pub const LINE: u32 = 16;

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

/// Whose cache behaviour: selects a sync implementation and a cache model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuCache {
    M68030,
    M68040,
}

impl CpuCache {
    pub fn geometry(self) -> Geometry {
        match self {
            CpuCache::M68030 => Geometry::M68030,
            CpuCache::M68040 => Geometry::M68040,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            CpuCache::M68030 => "68030 write-through",
            CpuCache::M68040 => "68040 copyback",
        }
    }
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
pub unsafe trait Platform: Sync + 'static {
    type Guard;
    fn mask(&self) -> Self::Guard;
    fn alloc(&self, size: usize, align: usize) -> Option<NonNull<u8>>;
    /// # Safety
    ///
    /// `ptr` came from `alloc(size, align)` and is not used afterwards.
    unsafe fn free(&self, ptr: NonNull<u8>, size: usize, align: usize);
    fn physical(&self, ptr: *const u8) -> u32;
    fn pointer(&self, phys: u32) -> *mut u8;
    /// The CPU whose real cache `execute` maintains; None on a coherent machine.
    fn cpu(&self) -> Option<CpuCache>;
    /// The cache steps `ops` needs on `cpu` for [phys, phys + len): its sync implementation.
    fn sync_steps(
        &self,
        cpu: CpuCache,
        ops: SyncOps,
        phys: u32,
        len: u32,
        emit: &mut dyn FnMut(CacheStep),
    );
    fn execute(&self, step: CacheStep);
    fn barrier(&self);
}

const AUDIT: u8 = 1;
const MODEL: u8 = 2;

struct State {
    auditor: Option<Auditor>,
    model: Option<(CpuCache, CacheModel, PostRead)>,
}

/// A system's DMA tag: the platform plus the optional auditor and cache model.
pub struct DmaTag<P: Platform> {
    platform: P,
    /// AUDIT | MODEL: the only thing the accessors look at when both are off.
    flags: AtomicU8,
    state: spin::Mutex<State>,
    next_id: AtomicU32,
}

/// Physical memory through the platform, for the cache model.
struct PlatformMemory<'a, P: Platform>(&'a P);

impl<P: Platform> model::Memory for PlatformMemory<'_, P> {
    fn read(&self, phys: u32, buf: &mut [u8]) {
        let p = self.0.pointer(phys);
        for (i, b) in buf.iter_mut().enumerate() {
            // SAFETY: the model only touches lines of DMA regions, which are mapped memory.
            *b = unsafe { core::ptr::read_volatile(p.add(i)) };
        }
    }
    fn write(&self, phys: u32, data: &[u8]) {
        let p = self.0.pointer(phys);
        for (i, &b) in data.iter().enumerate() {
            // SAFETY: as above.
            unsafe { core::ptr::write_volatile(p.add(i), b) };
        }
    }
}

impl<P: Platform> DmaTag<P> {
    pub const fn new(platform: P) -> Self {
        DmaTag {
            platform,
            flags: AtomicU8::new(0),
            state: spin::Mutex::new(State {
                auditor: None,
                model: None,
            }),
            next_id: AtomicU32::new(1),
        }
    }

    pub fn platform(&self) -> &P {
        &self.platform
    }

    /// Turns the auditor on (keeping findings already made) or off (dropping them).
    /// Regions allocated while it was off are not tracked.
    pub fn set_audit(&self, on: bool, sink: Option<audit::Sink>) {
        let _m = self.platform.mask();
        let mut st = self.state.lock();
        if on {
            let a = st.auditor.get_or_insert_with(Auditor::new);
            a.set_sink(sink);
            self.flags.fetch_or(AUDIT, Ordering::Relaxed);
        } else {
            st.auditor = None;
            self.flags.fetch_and(!AUDIT, Ordering::Relaxed);
        }
    }

    /// Routes CPU accesses to DMA memory through a model of `cpu`'s data cache (None: off,
    /// memory is coherent). The model starts empty.
    pub fn set_model(&self, cpu: Option<CpuCache>, postread: PostRead) {
        let _m = self.platform.mask();
        let mut st = self.state.lock();
        st.model = cpu.map(|c| (c, CacheModel::new(c.geometry()), postread));
        if cpu.is_some() {
            self.flags.fetch_or(MODEL, Ordering::Relaxed);
        } else {
            self.flags.fetch_and(!MODEL, Ordering::Relaxed);
        }
    }

    /// The model in use, if any.
    pub fn model(&self) -> Option<(CpuCache, PostRead)> {
        let _m = self.platform.mask();
        self.state.lock().model.as_ref().map(|(c, _, p)| (*c, *p))
    }

    /// Runs `f` on the auditor (None when auditing is off).
    pub fn with_auditor<R>(&self, f: impl FnOnce(Option<&mut Auditor>) -> R) -> R {
        let _m = self.platform.mask();
        let mut st = self.state.lock();
        f(st.auditor.as_mut())
    }

    /// Runs `f` on the cache model (None when it is off).
    pub fn with_model<R>(&self, f: impl FnOnce(Option<&mut CacheModel>) -> R) -> R {
        let _m = self.platform.mask();
        let mut st = self.state.lock();
        f(st.model.as_mut().map(|(_, m, _)| m))
    }

    /// Allocates a page-aligned, physically contiguous region. `coherent` is a hint only: it
    /// changes no sync the driver must make.
    pub fn alloc(
        &'static self,
        name: &'static str,
        len: u32,
        dir: Direction,
        coherent: bool,
    ) -> Result<DmaRegion<P>, DmaError> {
        const PAGE: usize = 4096;
        let size = (len as usize).max(1);
        let ptr = self
            .platform
            .alloc(size, PAGE)
            .ok_or(DmaError::OutOfMemory { bytes: size })?;
        // SAFETY: `size` fresh bytes; zeroed so no stale data reaches a device.
        unsafe { core::ptr::write_bytes(ptr.as_ptr(), 0, size) };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        if self.flags.load(Ordering::Relaxed) & AUDIT != 0 {
            let _m = self.platform.mask();
            if let Some(a) = self.state.lock().auditor.as_mut() {
                a.add_region(id, name, len, dir != Direction::ToDevice);
            }
        }
        let phys = self.platform.physical(ptr.as_ptr());
        Ok(DmaRegion {
            tag: self,
            id,
            ptr,
            phys,
            len,
            name,
            coherent,
        })
    }

    /// Allocates a streaming buffer, owned by the CPU.
    pub fn buffer(&'static self, name: &'static str, len: u32) -> Result<DmaBuffer<P>, DmaError> {
        Ok(DmaBuffer {
            region: self.alloc(name, len, Direction::Bidirectional, false)?,
        })
    }

    fn sync_range(
        &self,
        region: &DmaRegion<P>,
        ops: SyncOps,
        offset: u32,
        len: u32,
        caller: &'static Location<'static>,
    ) -> Result<(), DmaError> {
        let (id, phys, region_len) = (region.id, region.phys, region.len);
        let flags = self.flags.load(Ordering::Relaxed);
        if flags & AUDIT != 0 {
            let _m = self.platform.mask();
            if let Some(a) = self.state.lock().auditor.as_mut() {
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
        if ops.intersects(SyncOps::PRE) && ops.intersects(SyncOps::POST) {
            return Err(DmaError::PreMixedWithPost);
        }
        if offset.checked_add(len).is_none_or(|end| end > region_len) {
            return Err(DmaError::OutsideRegion {
                offset,
                len,
                region_len,
            });
        }
        let start = phys + offset;
        // Every sync is a compiler barrier, before and after (toolchain.md rule 3).
        self.platform.barrier();
        if let Some(cpu) = self.platform.cpu() {
            self.platform
                .sync_steps(cpu, ops, start, len, &mut |s| self.platform.execute(s));
        }
        if flags != 0 {
            let _m = self.platform.mask();
            let mut st = self.state.lock();
            let st = &mut *st;
            if let Some(a) = st.auditor.as_mut() {
                a.on_sync(id, ops, offset, len);
            }
            if let Some((cpu, model, postread)) = st.model.as_mut() {
                let mem = PlatformMemory(&self.platform);
                self.platform
                    .sync_steps(*cpu, ops, start, len, &mut |s| model.apply(s, &mem));
                if ops.contains(SyncOps::POSTREAD) && *postread == PostRead::Invalidate {
                    self.platform
                        .sync_steps(*cpu, SyncOps::PREREAD, start, len, &mut |s| {
                            model.apply(s, &mem)
                        });
                }
            }
        }
        self.platform.barrier();
        Ok(())
    }
}

/// Long-lived DMA memory shared with a device, accessed through audited accessors.
pub struct DmaRegion<P: Platform> {
    tag: &'static DmaTag<P>,
    id: u32,
    ptr: NonNull<u8>,
    phys: u32,
    len: u32,
    name: &'static str,
    coherent: bool,
}

// SAFETY: the region owns its memory; every access goes through volatile operations or the
// tag's lock, and the hardware does not care which context issues them.
unsafe impl<P: Platform> Send for DmaRegion<P> {}
// SAFETY: as above; accessors take &self and do single volatile accesses.
unsafe impl<P: Platform> Sync for DmaRegion<P> {}

impl<P: Platform> DmaRegion<P> {
    pub fn phys(&self) -> u32 {
        self.phys
    }
    pub fn len(&self) -> u32 {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn name(&self) -> &'static str {
        self.name
    }
    pub fn is_coherent_hint(&self) -> bool {
        self.coherent
    }

    /// The segments of [offset, offset + len) under `limits`.
    pub fn segments(
        &self,
        offset: u32,
        len: u32,
        limits: &Limits,
    ) -> Result<Vec<Segment>, DmaError> {
        self.check(offset, len)?;
        limits.segments(self.phys + offset, len)
    }

    fn check(&self, offset: u32, len: u32) -> Result<(), DmaError> {
        match offset.checked_add(len) {
            Some(end) if end <= self.len => Ok(()),
            _ => Err(DmaError::OutsideRegion {
                offset,
                len,
                region_len: self.len,
            }),
        }
    }

    #[track_caller]
    fn in_bounds(&self, offset: u32, len: usize) {
        if let Err(e) = self.check(offset, len as u32) {
            panic!("DMA region {}: access {e}", self.name);
        }
    }

    /// Syncs [offset, offset + len) for `ops`.
    #[track_caller]
    pub fn sync(&self, ops: SyncOps, offset: u32, len: u32) -> Result<(), DmaError> {
        self.tag
            .sync_range(self, ops, offset, len, Location::caller())
    }

    /// Tells the auditor the device may read [offset, offset + len) from now on (call before
    /// a notify): lines the CPU wrote since their last PREWRITE are reported.
    #[track_caller]
    pub fn device_start(&self, offset: u32, len: u32) {
        if self.tag.flags.load(Ordering::Relaxed) & AUDIT != 0 {
            let _m = self.tag.platform.mask();
            if let Some(a) = self.tag.state.lock().auditor.as_mut() {
                a.on_device_start(self.id, offset, len, Location::caller());
            }
        }
    }

    /// Reads `buf.len()` bytes at `offset` as the CPU sees them.
    #[track_caller]
    pub fn read(&self, offset: u32, buf: &mut [u8]) {
        self.in_bounds(offset, buf.len());
        let flags = self.tag.flags.load(Ordering::Relaxed);
        if flags == 0 {
            for (i, b) in buf.iter_mut().enumerate() {
                // SAFETY: in bounds of this region's memory (checked above).
                *b =
                    unsafe { core::ptr::read_volatile(self.ptr.as_ptr().add(offset as usize + i)) };
            }
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
        let _m = self.tag.platform.mask();
        let mut st = self.tag.state.lock();
        let st = &mut *st;
        if flags & AUDIT != 0 {
            if let Some(a) = st.auditor.as_mut() {
                a.on_read(self.id, offset, buf.len() as u32, caller);
            }
        }
        match st.model.as_mut() {
            Some((_, model, _)) => {
                model.read(self.phys + offset, buf, &PlatformMemory(&self.tag.platform))
            }
            None => {
                for (i, b) in buf.iter_mut().enumerate() {
                    // SAFETY: in bounds (checked by the caller).
                    *b = unsafe {
                        core::ptr::read_volatile(self.ptr.as_ptr().add(offset as usize + i))
                    };
                }
            }
        }
    }

    /// Writes `data` at `offset` as the CPU does.
    #[track_caller]
    pub fn write(&self, offset: u32, data: &[u8]) {
        self.in_bounds(offset, data.len());
        let flags = self.tag.flags.load(Ordering::Relaxed);
        if flags == 0 {
            for (i, &b) in data.iter().enumerate() {
                // SAFETY: in bounds of this region's memory (checked above).
                unsafe { core::ptr::write_volatile(self.ptr.as_ptr().add(offset as usize + i), b) };
            }
            return;
        }
        self.write_slow(offset, data, flags, Location::caller());
    }

    #[cold]
    fn write_slow(&self, offset: u32, data: &[u8], flags: u8, caller: &'static Location<'static>) {
        let _m = self.tag.platform.mask();
        let mut st = self.tag.state.lock();
        let st = &mut *st;
        if flags & AUDIT != 0 {
            if let Some(a) = st.auditor.as_mut() {
                a.on_write(self.id, offset, data.len() as u32, caller);
            }
        }
        match st.model.as_mut() {
            Some((_, model, _)) => model.write(
                self.phys + offset,
                data,
                &PlatformMemory(&self.tag.platform),
            ),
            None => {
                for (i, &b) in data.iter().enumerate() {
                    // SAFETY: in bounds (checked by the caller).
                    unsafe {
                        core::ptr::write_volatile(self.ptr.as_ptr().add(offset as usize + i), b)
                    };
                }
            }
        }
    }

    #[track_caller]
    pub fn read_u8(&self, offset: u32) -> u8 {
        let mut b = [0u8; 1];
        self.read(offset, &mut b);
        b[0]
    }
    #[track_caller]
    pub fn read_u16_le(&self, offset: u32) -> u16 {
        let mut b = [0u8; 2];
        self.read(offset, &mut b);
        u16::from_le_bytes(b)
    }
    #[track_caller]
    pub fn read_u32_le(&self, offset: u32) -> u32 {
        let mut b = [0u8; 4];
        self.read(offset, &mut b);
        u32::from_le_bytes(b)
    }
    #[track_caller]
    pub fn read_u64_le(&self, offset: u32) -> u64 {
        let mut b = [0u8; 8];
        self.read(offset, &mut b);
        u64::from_le_bytes(b)
    }
    #[track_caller]
    pub fn write_u8(&self, offset: u32, v: u8) {
        self.write(offset, &[v]);
    }
    #[track_caller]
    pub fn write_u16_le(&self, offset: u32, v: u16) {
        self.write(offset, &v.to_le_bytes());
    }
    #[track_caller]
    pub fn write_u32_le(&self, offset: u32, v: u32) {
        self.write(offset, &v.to_le_bytes());
    }
    #[track_caller]
    pub fn write_u64_le(&self, offset: u32, v: u64) {
        self.write(offset, &v.to_le_bytes());
    }

    /// What the device sees: memory itself, past any cache (for simulated devices and tests).
    pub fn raw_pointer(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Replaces what the CPU would see of [offset, offset + len) with the cache model's view
    /// (used when ownership of a buffer returns to the CPU: its plain slice accessors do not
    /// go through the model).
    fn materialize_model_view(&self, offset: u32, len: u32) {
        if self.tag.flags.load(Ordering::Relaxed) & MODEL == 0 || len == 0 {
            return;
        }
        let _m = self.tag.platform.mask();
        let mut st = self.tag.state.lock();
        if let Some((_, model, _)) = st.model.as_mut() {
            let mem = PlatformMemory(&self.tag.platform);
            for i in 0..len {
                let phys = self.phys + offset + i;
                if model.holds(phys) {
                    let mut b = [0u8];
                    model.read(phys, &mut b, &mem);
                    // SAFETY: in bounds of the region.
                    unsafe {
                        core::ptr::write_volatile(
                            self.ptr.as_ptr().add((offset + i) as usize),
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
        if self.tag.flags.load(Ordering::Relaxed) & AUDIT != 0 {
            let _m = self.tag.platform.mask();
            if let Some(a) = self.tag.state.lock().auditor.as_mut() {
                a.remove_region(self.id);
            }
        }
        // SAFETY: allocated by `alloc` with this size and alignment; the region is gone.
        unsafe {
            self.tag
                .platform
                .free(self.ptr, (self.len as usize).max(1), 4096)
        };
    }
}

/// A streaming buffer the CPU owns: plain slice access.
pub struct DmaBuffer<P: Platform> {
    region: DmaRegion<P>,
}

impl<P: Platform> DmaBuffer<P> {
    pub fn len(&self) -> u32 {
        self.region.len
    }
    pub fn is_empty(&self) -> bool {
        self.region.len == 0
    }
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: the CPU owns the buffer (no device transfer in flight: that needs `self`).
        unsafe { core::slice::from_raw_parts(self.region.ptr.as_ptr(), self.region.len as usize) }
    }
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as above, and `&mut self` excludes other references.
        unsafe {
            core::slice::from_raw_parts_mut(self.region.ptr.as_ptr(), self.region.len as usize)
        }
    }

    /// Hands [0, len) to the device for a transfer in `dir`, after its PRE sync (PREWRITE if
    /// the device reads, PREREAD if it writes). The CPU cannot touch the data until
    /// [`DeviceOwned::take_back`].
    #[track_caller]
    pub fn give_to_device(
        self,
        dir: Direction,
        len: u32,
        limits: &Limits,
    ) -> Result<DeviceOwned<P>, (Self, DmaError)> {
        let segments = match self.region.segments(0, len, limits) {
            Ok(s) => s,
            Err(e) => return Err((self, e)),
        };
        if let Err(e) = self.region.sync(dir.pre(), 0, len) {
            return Err((self, e));
        }
        Ok(DeviceOwned {
            region: Some(self.region),
            dir,
            len,
            segments,
        })
    }
}

/// A buffer in the device's hands: its segments can be given to the device; its data cannot
/// be read until [`take_back`](Self::take_back). Dropped without being taken back, its memory
/// is leaked rather than reused (the device may still write it).
#[must_use = "take the buffer back after the device is done, or its memory leaks"]
pub struct DeviceOwned<P: Platform> {
    region: Option<DmaRegion<P>>,
    dir: Direction,
    len: u32,
    segments: Vec<Segment>,
}

impl<P: Platform> DeviceOwned<P> {
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }
    pub fn direction(&self) -> Direction {
        self.dir
    }

    /// After the device is done: the POST sync, then the CPU owns the buffer again.
    #[track_caller]
    pub fn take_back(mut self) -> DmaBuffer<P> {
        let region = self
            .region
            .take()
            .expect("a DeviceOwned holds its region until taken back");
        region
            .sync(self.dir.post(), 0, self.len)
            .expect("a range that passed give_to_device is valid");
        if self.dir != Direction::ToDevice {
            region.materialize_model_view(0, self.len);
        }
        DmaBuffer { region }
    }
}

impl<P: Platform> Drop for DeviceOwned<P> {
    fn drop(&mut self) {
        if let Some(region) = self.region.take() {
            core::mem::forget(region);
        }
    }
}
