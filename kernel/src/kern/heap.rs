//! The kernel heap: `linked_list_allocator` over the free part of linear memory.
//!
//! Interrupt-safe by masking, not by its lock: atomics on wasm32v1-none are plain loads and
//! stores, so a spin lock taken by an interrupt handler while the interrupted code holds it
//! would spin forever. The lock is kept only to satisfy `Sync`; it is never contended.

use crate::arch::m68k::machine;
use core::alloc::{GlobalAlloc, Layout};
use core::ptr::{self, NonNull};
use linked_list_allocator::Heap;

pub struct KernelHeap(spin::Mutex<Heap>);

/// The most bytes ever in use at once: what the minimum RAM (linker.ld) is judged by.
struct Peak(core::cell::UnsafeCell<usize>);
// SAFETY: read and written only with interrupts masked on the one CPU.
unsafe impl Sync for Peak {}
static PEAK: Peak = Peak(core::cell::UnsafeCell::new(0));

#[global_allocator]
static HEAP: KernelHeap = KernelHeap(spin::Mutex::new(Heap::empty()));

// SAFETY: every access to the heap happens with interrupts masked and under the lock, and
// the allocator returns blocks that satisfy the layout or null.
unsafe impl GlobalAlloc for KernelHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _masked = machine::mask_interrupts();
        let mut heap = self.0.lock();
        let p = heap
            .allocate_first_fit(layout)
            .map_or(ptr::null_mut(), |p| p.as_ptr());
        let used = heap.used();
        // SAFETY: PEAK is only touched with interrupts masked (single CPU), as here.
        unsafe {
            let peak = &mut *PEAK.0.get();
            *peak = (*peak).max(used);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let _masked = machine::mask_interrupts();
        if let Some(p) = NonNull::new(ptr) {
            // SAFETY: the caller returns a block this allocator gave out with this layout.
            unsafe { self.0.lock().deallocate(p, layout) }
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
    let _masked = machine::mask_interrupts();
    // SAFETY: the caller's contract.
    unsafe { HEAP.0.lock().init(start, size) }
}

/// (bytes in use, bytes free).
pub fn usage() -> (usize, usize) {
    let _masked = machine::mask_interrupts();
    let heap = HEAP.0.lock();
    (heap.used(), heap.free())
}

/// The most bytes in use at once since boot.
pub fn peak() -> usize {
    let _masked = machine::mask_interrupts();
    // SAFETY: interrupts are masked, so no allocation runs concurrently.
    unsafe { *PEAK.0.get() }
}

/// The heap's first address and size.
pub fn region() -> (usize, usize) {
    let _masked = machine::mask_interrupts();
    let heap = HEAP.0.lock();
    (heap.bottom() as usize, heap.size())
}
