//! The kernel heap: `linked_list_allocator` over the free part of linear memory.
//!
//! Interrupt handlers allocate too, so the heap sits in an [`IrqMutex`]: every allocation
//! masks interrupts before it takes the lock (a handler spinning on a lock the interrupted
//! code holds would spin forever on one CPU).

use crate::arch::m68k::machine::{self, IrqMutex};
use core::alloc::{GlobalAlloc, Layout};
use core::ptr::{self, NonNull};
use linked_list_allocator::Heap;

struct State {
    heap: Heap,
    /// The most bytes ever in use at once: what the minimum RAM (linker.ld) is judged by.
    peak: usize,
}

pub struct KernelHeap(IrqMutex<State>);

#[global_allocator]
static HEAP: KernelHeap = KernelHeap(machine::irq_mutex(State {
    heap: Heap::empty(),
    peak: 0,
}));

// SAFETY: every access to the heap happens under its lock, taken with interrupts masked, and
// the allocator returns blocks that satisfy the layout or null.
unsafe impl GlobalAlloc for KernelHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let mut st = self.0.lock();
        let p = st
            .heap
            .allocate_first_fit(layout)
            .map_or(ptr::null_mut(), |p| p.as_ptr());
        st.peak = st.peak.max(st.heap.used());
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if let Some(p) = NonNull::new(ptr) {
            // SAFETY: the caller returns a block this allocator gave out with this layout.
            unsafe { self.0.lock().heap.deallocate(p, layout) }
        }
    }
}

/// Hands `[start, start + size)` to the heap.
///
/// # Safety
///
/// The range must be unused linear memory that nothing else will touch, and `init` must be
/// called once, before the first allocation.
pub unsafe fn init(start: *mut u8, size: usize) {
    // SAFETY: the caller's contract is the allocator's.
    unsafe { HEAP.0.lock().heap.init(start, size) }
}

/// (bytes in use, bytes free).
pub fn usage() -> (usize, usize) {
    let st = HEAP.0.lock();
    (st.heap.used(), st.heap.free())
}

/// The most bytes in use at once since boot.
pub fn peak() -> usize {
    HEAP.0.lock().peak
}

/// The heap's first address and size.
pub fn region() -> (usize, usize) {
    let st = HEAP.0.lock();
    (st.heap.bottom() as usize, st.heap.size())
}

/// Reads the last byte and the last 8 bytes of linear memory (its size from `memory.size`):
/// a trap here means the bounds checks' size, patched in at boot (boot/runtime.c), is short.
#[cfg(feature = "selftest")]
pub fn read_linear_memory_end() -> (u8, u64) {
    let last = core::arch::wasm32::memory_size(0) * 65536 - 1;
    // SAFETY: both inside linear memory and aligned for their types (the size is whole
    // pages, so `last - 7` is 8-byte aligned); only read, never written; they are the
    // heap's top, which holds nothing early in the boot tests (linked_list_allocator takes
    // the first fit from the bottom, and a few MiB are in use then), so no reference to
    // them exists.
    unsafe {
        (
            core::ptr::read_volatile(last as *const u8),
            core::ptr::read_volatile((last - 7) as *const u64),
        )
    }
}
