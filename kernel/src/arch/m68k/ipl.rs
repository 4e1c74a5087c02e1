//! The interrupt priority level (the 68k's SR I2-I0) and a guard that raises it.
//!
//! A guard never lowers the level: raising to 3 inside a section already at 5 stays at 5.
//! Dropping a guard puts back exactly the level it found, so guards must drop in the reverse
//! order of their raises (as nested scopes do). One dropped out of order would put back a
//! level that is no longer right (an outer guard's restore undone by an inner one's, leaving
//! interrupts masked for good, or unmasked under a held lock), so a drop that finds the level
//! not at what its guard raised it to panics, naming both. The level logic is generic over
//! [`IplControl`] so host tests can check nesting.

/// Reads and writes the processor's interrupt mask level (0..=7).
pub trait IplControl {
    fn get(&self) -> u8;
    /// Sets the level. Raising is what [`IplGuard::raise`] does safely; this is the raw form.
    ///
    /// # Safety
    ///
    /// Lowering the level lets handlers of the levels above it run: the caller must hold
    /// nothing they take (no lock whose holder relies on the mask, no state mid-update that
    /// a handler reads), as at the end of a guard's scope or at boot once every handler and
    /// its state are set up.
    unsafe fn set(&self, level: u8);
}

/// Raised interrupt mask for the guard's lifetime.
#[must_use = "the level drops back when the guard is dropped"]
pub struct IplGuard<'a, C: IplControl> {
    ctl: &'a C,
    previous: u8,
    /// The level in force while this guard is the innermost one.
    raised: u8,
}

impl<'a, C: IplControl> IplGuard<'a, C> {
    /// Masks interrupts of `level` and below (7 masks all but QEMU's NMI).
    #[inline]
    pub fn raise(ctl: &'a C, level: u8) -> Self {
        let previous = ctl.get();
        let raised = previous.max(level.min(7));
        if raised > previous {
            // SAFETY: a raise; it only keeps handlers from running.
            unsafe { ctl.set(raised) };
        }
        IplGuard {
            ctl,
            previous,
            raised,
        }
    }

    /// The level this guard will restore.
    pub fn previous(&self) -> u8 {
        self.previous
    }
}

impl<C: IplControl> Drop for IplGuard<'_, C> {
    #[inline]
    fn drop(&mut self) {
        let now = self.ctl.get();
        if now != self.raised {
            panic!(
                "interrupt mask guards dropped out of order: IPL {now} where this guard raised it to {}",
                self.raised
            );
        }
        // SAFETY: the level this guard found, restored at the end of its scope: the IPL is
        // where this guard raised it (checked above), so every guard raised later has
        // dropped, and with them anything they protected.
        unsafe { self.ctl.set(self.previous) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::cell::Cell;

    struct FakeSr(Cell<u8>);
    impl IplControl for FakeSr {
        fn get(&self) -> u8 {
            self.0.get()
        }
        unsafe fn set(&self, level: u8) {
            self.0.set(level)
        }
    }

    #[test]
    fn raises_and_restores() {
        let sr = FakeSr(Cell::new(0));
        {
            let g = IplGuard::raise(&sr, 7);
            assert_eq!(sr.get(), 7);
            assert_eq!(g.previous(), 0);
        }
        assert_eq!(sr.get(), 0);
    }

    #[test]
    fn never_lowers_and_nests() {
        let sr = FakeSr(Cell::new(2));
        let outer = IplGuard::raise(&sr, 5);
        assert_eq!(sr.get(), 5);
        {
            let inner = IplGuard::raise(&sr, 3);
            assert_eq!(sr.get(), 5, "a lower request keeps the higher level");
            let innermost = IplGuard::raise(&sr, 7);
            assert_eq!(sr.get(), 7);
            drop(innermost);
            assert_eq!(sr.get(), 5);
            drop(inner);
        }
        assert_eq!(sr.get(), 5);
        drop(outer);
        assert_eq!(sr.get(), 2);
    }

    /// What a block's tail temporary does in edition 2021: the outer guard drops first.
    #[test]
    #[should_panic(
        expected = "interrupt mask guards dropped out of order: IPL 0 where this guard raised it to 7"
    )]
    fn out_of_order_drop_is_refused() {
        let sr = FakeSr(Cell::new(0));
        let outer = IplGuard::raise(&sr, 7);
        let inner = IplGuard::raise(&sr, 7);
        drop(outer);
        drop(inner);
    }

    #[test]
    fn level_is_clamped_to_seven() {
        let sr = FakeSr(Cell::new(0));
        let _g = IplGuard::raise(&sr, 9);
        assert_eq!(sr.get(), 7);
    }
}
