//! Event counters, kept as cheaply as the compilation route allows.
//!
//! The route (Rust to little-endian wasm, run as C on the big-endian 68k) swaps the bytes of
//! every multi-byte load and store of memory, so that memory a device reads holds its
//! little-endian values: three instructions each way for a `u32`. A counter only the CPU
//! touches does not need that order. [`Count32`] keeps its value byte-swapped; the swap it
//! undoes in Rust cancels with the route's (GCC folds the pair), and a count costs a load,
//! an add and a store.

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

impl fmt::Debug for Count32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.get().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::Count32;

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
}
