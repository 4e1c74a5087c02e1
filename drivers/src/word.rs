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

use core::fmt;

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
    use super::{Count32, Word32, Word64};

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
}
