//! Words only the CPU touches (counters, a request slot's records), kept as cheaply as the
//! compilation route allows.
//!
//! The route (Rust to little-endian wasm, run as C on the big-endian 68k) swaps the bytes of
//! every multi-byte load and store of memory, so that memory a device reads holds its
//! little-endian values: three instructions each way for a `u32`. A counter only the CPU
//! touches does not need that order. The types here keep their value byte-swapped; the swap
//! they undo in Rust cancels with the route's (GCC folds the pair): a count costs a load, an
//! add and a store, a word a plain load or store. On a little-endian host (the tests) they
//! are swapped words and nothing else.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;
use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};

/// A wrapping 32-bit event count, held byte-swapped (see the module). Only for memory the CPU
/// alone touches: a device would read the swapped bytes.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct Count32(u32);

impl Count32 {
    /// Adds `n`, wrapping at 2^32 (as `u32::wrapping_add`); returns the new count.
    #[inline(always)]
    pub fn add(&mut self, n: u32) -> u32 {
        let v = self.0.swap_bytes().wrapping_add(n);
        self.0 = v.swap_bytes();
        v
    }

    /// The count.
    #[inline(always)]
    pub fn get(self) -> u32 {
        self.0.swap_bytes()
    }
}

/// A `u32` held byte-swapped (see the module). Only for memory the CPU alone touches.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct Word32(u32);

impl Word32 {
    #[inline(always)]
    pub const fn new(v: u32) -> Word32 {
        Word32(v.swap_bytes())
    }
    #[inline(always)]
    pub const fn get(self) -> u32 {
        self.0.swap_bytes()
    }
}

/// A `u64` held byte-swapped (see the module). Only for memory the CPU alone touches.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct Word64(u64);

impl Word64 {
    #[inline(always)]
    pub const fn new(v: u64) -> Word64 {
        Word64(v.swap_bytes())
    }
    #[inline(always)]
    pub const fn get(self) -> u64 {
        self.0.swap_bytes()
    }
}

/// A boxed slice whose pointer and length are held as the words here are (a `Vec` or a
/// `Box<[T]>` keeps them in the wasm's order, and every indexing loaded and swapped both).
/// Derefs to `[T]`; its length is fixed when it is made.
pub struct Table<T> {
    /// The elements' address, byte-swapped, exposed when the table was made so that `ptr`
    /// rebuilds the pointer with the allocation's provenance.
    addr: usize,
    len: Word32,
    _owns: PhantomData<Box<[T]>>,
}

// SAFETY: a `Table<T>` owns its elements as a `Box<[T]>` does, so it may cross threads (or be
// shared between them) exactly when that box may.
unsafe impl<T: Send> Send for Table<T> {}
// SAFETY: as above: `&Table<T>` gives out only `&[T]`.
unsafe impl<T: Sync> Sync for Table<T> {}

impl<T> Table<T> {
    /// Takes `items` (panics past 2^32 - 1 elements: a length is a `u32` here).
    pub fn new(items: Vec<T>) -> Table<T> {
        let len = u32::try_from(items.len()).expect("a table of fewer than 2^32 elements");
        let ptr = Box::into_raw(items.into_boxed_slice()).cast::<T>();
        Table {
            addr: ptr.expose_provenance().swap_bytes(),
            len: Word32::new(len),
            _owns: PhantomData,
        }
    }

    #[inline(always)]
    fn ptr(&self) -> *mut T {
        core::ptr::with_exposed_provenance_mut(self.addr.swap_bytes())
    }
}

impl<T> Deref for Table<T> {
    type Target = [T];
    #[inline(always)]
    fn deref(&self) -> &[T] {
        // SAFETY: `ptr` and `len` are the boxed slice `new` leaked, still owned by `self` (freed
        // only by `Drop`); `&self` lends it shared.
        unsafe { core::slice::from_raw_parts(self.ptr(), self.len.get() as usize) }
    }
}

impl<T> DerefMut for Table<T> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as `deref`; `&mut self` makes the loan exclusive.
        unsafe { core::slice::from_raw_parts_mut(self.ptr(), self.len.get() as usize) }
    }
}

impl<T> Drop for Table<T> {
    fn drop(&mut self) {
        let slice = core::ptr::slice_from_raw_parts_mut(self.ptr(), self.len.get() as usize);
        // SAFETY: the box `new` leaked, rebuilt once, here, from its own pointer and length.
        drop(unsafe { Box::from_raw(slice) });
    }
}

impl<T: fmt::Debug> fmt::Debug for Table<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl fmt::Debug for Word32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.get().fmt(f)
    }
}

impl fmt::Debug for Word64 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.get().fmt(f)
    }
}

impl fmt::Debug for Count32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.get().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::{Count32, Table, Word32, Word64};
    use alloc::rc::Rc;
    use alloc::vec::Vec;

    #[test]
    fn counts_wrap_as_u32_does() {
        let mut c = Count32::default();
        let mut want = 0u32;
        for n in [1, 0, 0xff, 0x100, 0x1234_5678, u32::MAX, 0x8000_0000, 7] {
            assert_eq!(c.add(n), want.wrapping_add(n));
            want = want.wrapping_add(n);
            assert_eq!(c.get(), want, "after adding {n:#x}");
        }
    }

    #[test]
    fn words_give_back_what_they_were_given() {
        for v in [0, 1, 0x1234_5678, 0x8000_0000, u32::MAX] {
            assert_eq!(Word32::new(v).get(), v);
            assert_ne!(Word32::new(v), Word32::new(v ^ 1));
        }
        for v in [0, 1, 0x0123_4567_89ab_cdef, u64::MAX] {
            assert_eq!(Word64::new(v).get(), v);
        }
    }

    #[test]
    fn a_table_holds_its_elements_and_drops_each_once() {
        let live = Rc::new(());
        let items: Vec<(u32, Rc<()>)> = (0..5).map(|i| (i * 7, live.clone())).collect();
        let mut t = Table::new(items);
        assert_eq!(t.len(), 5);
        assert_eq!(
            t.iter().map(|x| x.0).collect::<Vec<_>>(),
            [0, 7, 14, 21, 28]
        );
        t[3].0 = 99;
        assert_eq!(t.get(3).map(|x| x.0), Some(99));
        assert!(t.get(5).is_none() && t.get_mut(5).is_none());
        assert_eq!(Rc::strong_count(&live), 6);
        drop(t);
        assert_eq!(Rc::strong_count(&live), 1, "every element dropped, once");
        let empty: Table<u8> = Table::new(Vec::new());
        assert!(empty.is_empty());
    }
}
