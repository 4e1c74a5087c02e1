//! A spin lock for state shared with interrupt handlers, whose guard masks interrupts.
//!
//! On one CPU a handler that finds such a lock taken spins forever: the code holding it
//! cannot run until the handler returns. So every holder must mask the handlers' interrupts
//! first and keep them masked until the lock is released. [`IrqMutex`] makes that order part
//! of the type: `lock` masks, then locks; its guard unlocks, then unmasks (NetBSD's
//! `mutex_init(9)` with an IPL above IPL_NONE is the same idea: a spin mutex raises the IPL).
#![forbid(unsafe_code)]
// The one wrapper of a bare spin lock (clippy.toml forbids it everywhere else).
#![allow(clippy::disallowed_types)]

use core::ops::{Deref, DerefMut};

/// What masks the interrupts whose handlers may take an [`IrqMutex`]: the kernel's IPL raise,
/// or nothing in a single-threaded host test.
pub trait InterruptMask {
    /// Keeps those interrupts masked while it lives; dropping it puts the mask back as it was.
    type Guard;
    /// Masks the interrupts (nesting: a mask inside a mask keeps the outer level).
    fn mask(&self) -> Self::Guard;
}

/// A value behind a spin lock that can only be taken with interrupts masked.
pub struct IrqMutex<T, M> {
    mask: M,
    data: spin::Mutex<T>,
}

/// The lock, held with interrupts masked. Fields drop in order: unlock, then unmask, so no
/// handler can run between the two and find the lock taken.
#[must_use = "the lock is released when the guard is dropped"]
pub struct IrqMutexGuard<'a, T, G> {
    data: spin::MutexGuard<'a, T>,
    _masked: G,
}

impl<T, M: InterruptMask> IrqMutex<T, M> {
    /// `mask` is what [`lock`](Self::lock) raises before taking the lock.
    pub const fn new(mask: M, value: T) -> Self {
        IrqMutex {
            mask,
            data: spin::Mutex::new(value),
        }
    }

    /// Masks interrupts, then takes the lock (spinning while another holder has it, which on
    /// one CPU can only be a nested holder: a bug that deadlocks, as with any spin lock).
    pub fn lock(&self) -> IrqMutexGuard<'_, T, M::Guard> {
        let masked = self.mask.mask();
        IrqMutexGuard {
            data: self.data.lock(),
            _masked: masked,
        }
    }

    /// The mask this lock raises (a DMA tag's platform, say).
    pub fn mask_source(&self) -> &M {
        &self.mask
    }
}

impl<T, G> Deref for IrqMutexGuard<'_, T, G> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.data
    }
}

impl<T, G> DerefMut for IrqMutexGuard<'_, T, G> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.data
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::vec::Vec;

    /// What happened, in order, as the fake interrupt mask and the test see it.
    #[derive(Debug, PartialEq, Eq, Clone, Copy)]
    enum Event {
        Mask { lock_was_free: bool },
        Unmask { lock_was_free: bool },
    }

    /// An interrupt mask that records each raise and restore together with whether the
    /// lock under test was free at that moment (read through a pointer the test sets).
    struct FakeMask {
        log: Mutex<Vec<Event>>,
        watched: Mutex<Option<&'static IrqMutex<u32, &'static FakeMask>>>,
    }

    struct FakeGuard(&'static FakeMask);

    impl FakeMask {
        fn lock_is_free(&self) -> bool {
            let watched = *self.watched.lock().unwrap();
            watched.is_none_or(|m| !m.data.is_locked())
        }
    }

    impl InterruptMask for &'static FakeMask {
        type Guard = FakeGuard;
        fn mask(&self) -> FakeGuard {
            let free = self.lock_is_free();
            self.log.lock().unwrap().push(Event::Mask {
                lock_was_free: free,
            });
            FakeGuard(self)
        }
    }

    impl Drop for FakeGuard {
        fn drop(&mut self) {
            let free = self.0.lock_is_free();
            self.0.log.lock().unwrap().push(Event::Unmask {
                lock_was_free: free,
            });
        }
    }

    fn setup() -> (&'static FakeMask, &'static IrqMutex<u32, &'static FakeMask>) {
        let fake: &'static FakeMask = Box::leak(Box::new(FakeMask {
            log: Mutex::new(Vec::new()),
            watched: Mutex::new(None),
        }));
        let mutex: &'static IrqMutex<u32, &'static FakeMask> =
            Box::leak(Box::new(IrqMutex::new(fake, 7)));
        *fake.watched.lock().unwrap() = Some(mutex);
        (fake, mutex)
    }

    use std::boxed::Box;

    #[test]
    fn masks_before_locking_and_unlocks_before_unmasking() {
        let (fake, mutex) = setup();
        {
            let mut g = mutex.lock();
            assert_eq!(
                fake.log.lock().unwrap().as_slice(),
                [Event::Mask {
                    lock_was_free: true
                }],
                "masked while the lock was still free"
            );
            assert!(mutex.data.is_locked());
            *g += 1;
        }
        assert_eq!(
            fake.log.lock().unwrap().as_slice(),
            [
                Event::Mask {
                    lock_was_free: true
                },
                Event::Unmask {
                    lock_was_free: true
                }
            ],
            "unmasked only after the lock was free again"
        );
        assert_eq!(*mutex.lock(), 8);
    }

    #[test]
    fn every_lock_masks_once() {
        let (fake, mutex) = setup();
        for _ in 0..3 {
            drop(mutex.lock());
        }
        assert_eq!(fake.log.lock().unwrap().len(), 6);
    }
}
