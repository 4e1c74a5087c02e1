//! bus_dma on this machine: the platform half of `drivers::dma` (memory from the kernel heap,
//! physical = linear base + wasm address, the m68k sync implementations of `dma_sync` run on
//! the real cache) and the system's DMA tag.
//! The kernel options that configure the tag (auditor, model) are applied by `kern::dma`.

use crate::arch::m68k::cache::LINE;
use crate::arch::m68k::cpu::{self, Model};
use crate::arch::m68k::dma_sync::{run_fast, step_op, CpuCache};
use crate::arch::m68k::machine;
use core::alloc::Layout;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU32, AtomicU8, Ordering};
use drivers::bus::Bus;
use drivers::dma::{CacheStep, DmaTag, Platform, SyncOps};
use drivers::sync::InterruptMask;

pub struct M68kPlatform;

/// The register `paravirt_membar` reads (0: none set yet, the barrier is the compiler's),
/// held byte-swapped: the swap undone on each load cancels with the route's own (see
/// `drivers::word`), and it is loaded on every publish.
static MEMBAR_REGISTER: AtomicU32 = AtomicU32::new(0);

/// `Platform::cpu`'s answer once known (0: not asked yet; 1 none; 2 68030; 3 68040).
static SYNC_CPU: AtomicU8 = AtomicU8::new(0);

/// The cache whose sync steps this CPU needs (from the identity found at boot).
fn sync_cpu() -> Option<CpuCache> {
    let id = cpu::identity();
    match id.model {
        // No data cache: every sync is the barrier alone.
        Model::M68020 => None,
        Model::M68030 => Some(CpuCache::M68030),
        // The 68040's sync steps where CINV/CPUSH work (on the 68060 the same instructions,
        // CPUSH invalidating with CACR DPI clear). Where they trap (QEMU's 68060, which
        // models no caches; an emulated 68040 without them) there is nothing to run: every
        // sync is the barrier alone, and `execute` never meets a CPU without them.
        Model::M68040 | Model::M68060 if id.cache_insns => Some(CpuCache::M68040),
        Model::M68040 | Model::M68060 => None,
    }
}

/// Names the register whose read is the paravirtual store-before-load barrier.
///
/// Why a register read: the m68k has no fence instruction, and QEMU runs its m68k guest
/// without parallel TCG, so nothing the CPU executes becomes a host fence; an MMIO access
/// takes QEMU's global lock, which is one (docs/dma-sync.md). Under QEMU 8.2 and later the
/// virtio device runs on another host thread (ioeventfd), so the driver needs it.
///
/// # Safety
///
/// `addr` must be a 32-bit device register whose read has no side effect (e.g. virtio-mmio
/// MagicValue, virtio 1.2 4.2.2), valid for the rest of the run.
pub unsafe fn set_membar_register(addr: u32) {
    MEMBAR_REGISTER.store(addr.swap_bytes(), Ordering::Relaxed);
}

/// The DMA tag's lock is taken from interrupt handlers too (the TTY's receive region, disk
/// completions): it masks every level.
impl InterruptMask for M68kPlatform {
    type Guard = machine::IrqGuard;
    fn mask(&self) -> Self::Guard {
        machine::mask_interrupts()
    }
}

// SAFETY: memory comes from the kernel heap, which is linear memory: physically contiguous at
// linear base + address, reachable by devices (no IOMMU, no MMU). `execute` runs the cache
// instructions of the identified CPU (`cpu` is None where it has none that work, and
// `execute` is given only steps planned for `cpu`'s answer); `barrier` is a compiler barrier
// (the import call, which the xtask puts in place as an empty asm with a memory clobber);
// `mask` raises the interrupt mask to 7.
unsafe impl Platform for M68kPlatform {
    fn alloc(&self, size: usize, align: usize) -> Option<NonNull<u8>> {
        let layout = Layout::from_size_align(size, align).ok()?;
        // SAFETY: a non-zero size (callers ask for at least one byte).
        NonNull::new(unsafe { alloc::alloc::alloc(layout) })
    }

    unsafe fn free(&self, ptr: NonNull<u8>, size: usize, align: usize) {
        // SAFETY: the caller returns a block from `alloc` with this size and alignment.
        unsafe {
            alloc::alloc::dealloc(ptr.as_ptr(), Layout::from_size_align_unchecked(size, align))
        }
    }

    fn physical(&self, ptr: *const u8) -> u32 {
        machine::physical_address(ptr)
    }

    fn pointer(&self, phys: u32) -> *mut u8 {
        (phys - machine::linear_memory_base()) as usize as *mut u8
    }

    const LINE: u32 = LINE;
    type Cache = CpuCache;

    #[inline(always)]
    fn cpu(&self) -> Option<CpuCache> {
        // Every sync asks: the answer is kept after the first (the CPU does not change).
        match SYNC_CPU.load(Ordering::Relaxed) {
            1 => None,
            2 => Some(CpuCache::M68030),
            3 => Some(CpuCache::M68040),
            _ => {
                let c = sync_cpu();
                SYNC_CPU.store(
                    match c {
                        None => 1,
                        Some(CpuCache::M68030) => 2,
                        Some(CpuCache::M68040) => 3,
                    },
                    Ordering::Relaxed,
                );
                c
            }
        }
    }

    fn sync_steps(
        &self,
        cpu: CpuCache,
        ops: SyncOps,
        phys: u32,
        len: u32,
        emit: &mut dyn FnMut(CacheStep),
    ) {
        crate::arch::m68k::dma_sync::sync_steps(cpu, ops, phys, len, emit)
    }

    // The dispatch is `dma_sync::run_fast!`, expanded here and in dma_sync's test, not a
    // generic function taking closures: that version stopped inlining the closure and cost
    // 500 instructions per request (floor 1,603 -> 2,124, `cargo xtask bench --quick --icount`).
    #[inline(always)]
    unsafe fn sync_cache(&self, cpu: CpuCache, ops: SyncOps, phys: u32, len: u32) {
        // A compiler barrier before and after (the trait's contract): every cache step here
        // is a call into the machine layer, opaque to the compiler, even on a CPU without
        // the instruction (`cache::execute_040_data`, `push_invalidate_all`); a sync with no
        // step calls `barrier`. Each instruction `run_fast!` yields runs as it comes.
        run_fast!(crate::arch::m68k::dma_sync::fast_shape(cpu, ops, phys, len),
            // SAFETY: CINV/CPUSH run on this CPU (`cpu` is Some(M68040) only where they do,
            // `sync_cpu`), and the instruction is one of the plan for the caller's range
            // (`fast_shape` decides exactly the planner's steps, tested), which this method's
            // caller vouches for (what an invalidate discards is nothing anybody needs).
            op(op, addr) => unsafe { machine::dc_op(op, addr) },
            all => crate::arch::m68k::cache::push_invalidate_all(),
            plan => {
                // The plan may have no step (a POST): barriers around it.
                self.barrier();
                self.sync_steps(cpu, ops, phys, len, &mut |s| {
                    // SAFETY: a step of the plan for the caller's range, as above.
                    unsafe { self.execute(s) }
                });
                self.barrier();
            },
            nothing => self.barrier(),
        )
    }

    #[inline(always)]
    unsafe fn execute(&self, step: CacheStep) {
        // Line and page steps go straight to the data-cache instruction: the planner emits
        // them only for `CpuCache::M68040`, which `cpu` answers only where CINV/CPUSH work
        // (`sync_cpu`), and the caller's step is one of its plan (the trait's contract). No
        // per-step check of the CPU (`cache::execute_040_data` has one for other callers).
        // The 68030's only data-cache invalidate (write-through: it loses nothing) and the
        // 68040's push-all go through the whole-cache entry.
        let Some((op, addr)) = step_op(step) else {
            return crate::arch::m68k::cache::push_invalidate_all();
        };
        // SAFETY: CINV/CPUSH run on this CPU (above); what an invalidate discards is this
        // method's caller's contract (nothing anybody needs).
        unsafe { machine::dc_op(op, addr) }
    }

    const POST_NOOP: bool = crate::arch::m68k::dma_sync::POST_SYNCS_DO_NOTHING;

    fn barrier(&self) {
        machine::compiler_barrier();
    }

    fn paravirt_membar(&self) {
        let addr = MEMBAR_REGISTER.load(Ordering::Relaxed).swap_bytes();
        if addr != 0 {
            // SAFETY: `set_membar_register`'s caller vouched that `addr` is a register whose
            // read has no side effect; the bus is used for this one read.
            let _ = unsafe { machine::MachineBus::new() }.read32(addr);
        }
        machine::compiler_barrier();
    }
}

/// The system's DMA tag.
pub static DMA: DmaTag<M68kPlatform> = DmaTag::new(M68kPlatform);
