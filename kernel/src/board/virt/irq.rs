//! Interrupts from the six goldfish PICs: handler registration per irq number, shared lines,
//! enable/disable per irq, level dispatch, spurious accounting, statistics.
//!
//! Numbering is Linux's and bootinfo's: irq = 8 + 32 * (pic - 1) + bit, and PIC n drives CPU
//! level n (autovector 24 + n). Dispatch for level n reads PIC n's pending register and calls
//! every handler of every pending line; a line whose handlers all say "not mine" is counted
//! as spurious and disabled (a level-sensitive line nobody clears would otherwise interrupt
//! forever). A level interrupt with nothing pending is counted as spurious for the level.
//! Higher levels preempt lower ones (the CPU raises its mask to the level it takes), so
//! handlers must only share state with other contexts under a mask guard.

pub const PICS: u32 = 6;
pub const LINES_PER_PIC: u32 = 32;
pub const FIRST_IRQ: u32 = 8;
pub const IRQ_COUNT: u32 = PICS * LINES_PER_PIC;

/// (pic 1..=6, bit 0..=31) of an irq number, or None outside the PICs' range.
pub fn locate(irq: u32) -> Option<(u32, u32)> {
    let index = irq.checked_sub(FIRST_IRQ)?;
    (index < IRQ_COUNT).then(|| (index / LINES_PER_PIC + 1, index % LINES_PER_PIC))
}

pub fn irq_number(pic: u32, bit: u32) -> u32 {
    FIRST_IRQ + (pic - 1) * LINES_PER_PIC + bit
}

/// A handler's answer: did its device raise the line?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    Yes,
    NotMine,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IrqError {
    /// Not a PIC input (valid: 8..=199).
    NoSuchIrq(u32),
    /// The line already has MAX_HANDLERS handlers.
    LineFull(u32),
    /// Registration changes the handler table, which dispatch reads at any level: only
    /// thread context (IPL 0) may do it.
    InInterruptContext,
}

impl core::fmt::Display for IrqError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            IrqError::NoSuchIrq(irq) => {
                write!(
                    f,
                    "irq {irq} is not a PIC input ({FIRST_IRQ}..={})",
                    FIRST_IRQ + IRQ_COUNT - 1
                )
            }
            IrqError::LineFull(irq) => write!(f, "irq {irq} already has {MAX_HANDLERS} handlers"),
            IrqError::InInterruptContext => {
                f.write_str("handlers are registered from thread context only")
            }
        }
    }
}

pub const MAX_HANDLERS: usize = 4;

#[cfg(target_arch = "wasm32")]
pub use dispatch::*;

#[cfg(target_arch = "wasm32")]
mod dispatch {
    use super::*;
    use crate::arch::m68k::machine::{self, MachineBus};
    use alloc::boxed::Box;
    use core::ptr;
    use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, Ordering};
    use drivers::goldfish_pic::GoldfishPic;

    pub struct Handler {
        pub name: &'static str,
        run: Box<dyn Fn() -> Handled + Send + Sync>,
    }

    struct Line {
        /// Thin pointers: one 32-bit store publishes a handler, so dispatch never sees half.
        handlers: [AtomicPtr<Handler>; MAX_HANDLERS],
        count: AtomicU32,
        unclaimed: AtomicU32,
        enabled: AtomicBool,
    }

    #[allow(clippy::declare_interior_mutable_const)]
    const LINE: Line = Line {
        handlers: [const { AtomicPtr::new(ptr::null_mut()) }; MAX_HANDLERS],
        count: AtomicU32::new(0),
        unclaimed: AtomicU32::new(0),
        enabled: AtomicBool::new(false),
    };
    static LINES: [Line; IRQ_COUNT as usize] = [LINE; IRQ_COUNT as usize];
    /// Interrupts with no source: index 0 counts the spurious vector (24), 1..=7 level
    /// interrupts that found nothing pending at their PIC (7: the monitor's `nmi`).
    static EMPTY_LEVEL: [AtomicU32; 8] = [const { AtomicU32::new(0) }; 8];
    static PIC_BASE: AtomicU32 = AtomicU32::new(memmap::PIC_BASE);
    use crate::board::virt::memmap::{self, PIC_STRIDE};

    fn pic(n: u32) -> GoldfishPic<MachineBus> {
        // SAFETY: PIC_BASE is bootinfo's PIC base; PICs are 0x1000 apart (n is 1..=6): the bus
        // and the driver reach only that PIC's registers, and dispatch is their one user.
        unsafe {
            GoldfishPic::new(
                MachineBus::new(),
                PIC_BASE.load(Ordering::Relaxed) + (n - 1) * PIC_STRIDE,
            )
        }
    }

    fn line(irq: u32) -> Result<(&'static Line, u32, u32), IrqError> {
        let (p, bit) = locate(irq).ok_or(IrqError::NoSuchIrq(irq))?;
        Ok((&LINES[(irq - FIRST_IRQ) as usize], p, bit))
    }

    /// Resets every PIC (all inputs disabled) and records where they are.
    ///
    /// # Safety
    ///
    /// `pic_base` must be PIC #1's register block as bootinfo reports it (the six PICs sit
    /// `PIC_STRIDE` apart from it): dispatch reads and writes their registers from here on.
    pub unsafe fn init(pic_base: u32) {
        let _masked = machine::mask_interrupts();
        PIC_BASE.store(pic_base, Ordering::Relaxed);
        for n in 1..=PICS {
            pic(n).disable_all();
        }
    }

    /// Identifies one registered handler, for [`unregister`].
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct HandlerId {
        pub irq: u32,
        slot: usize,
    }

    /// Adds a handler to `irq`. Several may share a line; each is called for every interrupt
    /// on it and answers whether its device raised it. Does not enable the line.
    pub fn register(
        irq: u32,
        name: &'static str,
        handler: impl Fn() -> Handled + Send + Sync + 'static,
    ) -> Result<HandlerId, IrqError> {
        if in_interrupt() {
            return Err(IrqError::InInterruptContext);
        }
        let (l, _, _) = line(irq)?;
        let boxed = Box::into_raw(Box::new(Handler {
            name,
            run: Box::new(handler),
        }));
        let _masked = machine::mask_interrupts();
        for (slot, h) in l.handlers.iter().enumerate() {
            if h.load(Ordering::Relaxed).is_null() {
                h.store(boxed, Ordering::Relaxed);
                return Ok(HandlerId { irq, slot });
            }
        }
        // SAFETY: `boxed` came from Box::into_raw above and was never published.
        drop(unsafe { Box::from_raw(boxed) });
        Err(IrqError::LineFull(irq))
    }

    /// Removes a handler. Its line stays enabled if it was. From thread context only (in an
    /// interrupt handler the slot is cleared but the handler is leaked: a dispatch below may
    /// still be running it).
    pub fn unregister(id: HandlerId) {
        let Ok((l, _, _)) = line(id.irq) else { return };
        let thread_context = !in_interrupt();
        let old = {
            let _masked = machine::mask_interrupts();
            l.handlers[id.slot].swap(ptr::null_mut(), Ordering::Relaxed)
        };
        if !old.is_null() && thread_context {
            // No dispatch can still use it: dispatches run to completion above thread
            // context, and the slot was cleared under the mask.
            // SAFETY: the pointer came from Box::into_raw in register.
            drop(unsafe { Box::from_raw(old) });
        }
    }

    pub fn enable(irq: u32) -> Result<(), IrqError> {
        let (l, p, bit) = line(irq)?;
        let _masked = machine::mask_interrupts();
        l.enabled.store(true, Ordering::Relaxed);
        pic(p).enable(1 << bit);
        Ok(())
    }

    pub fn disable(irq: u32) -> Result<(), IrqError> {
        let (l, p, bit) = line(irq)?;
        let _masked = machine::mask_interrupts();
        l.enabled.store(false, Ordering::Relaxed);
        pic(p).disable(1 << bit);
        Ok(())
    }

    /// Interrupt dispatches in progress (nested ones count once each).
    static DEPTH: AtomicU32 = AtomicU32::new(0);

    /// Whether the caller runs inside an interrupt handler.
    pub fn in_interrupt() -> bool {
        DEPTH.load(Ordering::Relaxed) != 0
    }

    /// How many interrupt dispatches are in progress (2 or more: nested).
    pub fn nesting_depth() -> u32 {
        DEPTH.load(Ordering::Relaxed)
    }

    /// Puts the dispatch count back to `depth` after a longjmp out of a handler (a panic or a
    /// wasm trap inside it, caught by the test harness's catch point, which read `depth` with
    /// [`nesting_depth`] before entering). Without it the count stays raised and the kernel
    /// takes itself for interrupt context from then on (`register` refuses, disks do not open).
    pub fn unwound_to(depth: u32) {
        DEPTH.store(depth, Ordering::Relaxed);
    }

    /// Dispatch for one CPU level (the machine layer's entry for vectors 24..=31: level 0 is
    /// the spurious vector).
    #[no_mangle]
    pub extern "C" fn irq_entry(level: u32) {
        DEPTH.fetch_add(1, Ordering::Relaxed);
        dispatch_level(level);
        DEPTH.fetch_sub(1, Ordering::Relaxed);
    }

    fn dispatch_level(level: u32) {
        if !(1..=PICS).contains(&level) {
            // Level 0 is the spurious vector; level 7 comes only from QEMU's monitor `nmi`:
            // nothing is wired to either.
            EMPTY_LEVEL[level.min(7) as usize].fetch_add(1, Ordering::Relaxed);
            return;
        }
        let pending = pic(level).pending();
        if pending == 0 {
            EMPTY_LEVEL[level as usize].fetch_add(1, Ordering::Relaxed);
            return;
        }
        let mut bits = pending;
        while bits != 0 {
            let bit = bits.trailing_zeros();
            bits &= bits - 1;
            let irq = irq_number(level, bit);
            let l = &LINES[(irq - FIRST_IRQ) as usize];
            l.count.fetch_add(1, Ordering::Relaxed);
            let mut claimed = false;
            for h in &l.handlers {
                let p = h.load(Ordering::Relaxed);
                if !p.is_null() {
                    // SAFETY: published handlers live until unregister, which cannot run
                    // while this dispatch is in progress (see unregister).
                    let handler = unsafe { &*p };
                    if (handler.run)() == Handled::Yes {
                        claimed = true;
                    }
                }
            }
            if !claimed {
                l.unclaimed.fetch_add(1, Ordering::Relaxed);
                l.enabled.store(false, Ordering::Relaxed);
                pic(level).disable(1 << bit);
            }
        }
    }

    /// Counters of one line.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct LineStats {
        pub irq: u32,
        pub count: u32,
        pub unclaimed: u32,
        pub enabled: bool,
        pub handlers: usize,
    }

    pub fn stats(irq: u32) -> Option<LineStats> {
        let (l, _, _) = line(irq).ok()?;
        Some(LineStats {
            irq,
            count: l.count.load(Ordering::Relaxed),
            unclaimed: l.unclaimed.load(Ordering::Relaxed),
            enabled: l.enabled.load(Ordering::Relaxed),
            handlers: l
                .handlers
                .iter()
                .filter(|h| !h.load(Ordering::Relaxed).is_null())
                .count(),
        })
    }

    /// Interrupts with no source: `level` 0 = spurious vector; 1..=7 = level interrupts that
    /// found nothing pending.
    pub fn empty_level_count(level: u32) -> u32 {
        EMPTY_LEVEL
            .get(level as usize)
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// Calls `f` with the name of each handler registered on `irq` (none for a bad number).
    pub fn for_each_handler_name(irq: u32, mut f: impl FnMut(&'static str)) {
        let Ok((l, _, _)) = line(irq) else { return };
        let _masked = machine::mask_interrupts();
        for h in &l.handlers {
            let p = h.load(Ordering::Relaxed);
            if !p.is_null() {
                // SAFETY: a published handler lives until `unregister`, which unpublishes it
                // with interrupts masked, as they are here.
                f(unsafe { &*p }.name);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbering_matches_bootinfo() {
        assert_eq!(
            locate(crate::board::virt::memmap::TTY_IRQ),
            Some((1, 31)),
            "goldfish TTY: PIC1 bit 31"
        );
        assert_eq!(
            locate(crate::board::virt::memmap::RTC0_IRQ),
            Some((6, 0)),
            "RTC #0: PIC6 bit 0"
        );
        assert_eq!(locate(40), Some((2, 0)), "virtio slot 0: PIC2 bit 0");
        assert_eq!(locate(8), Some((1, 0)), "virt-ctrl: PIC1 bit 0");
        assert_eq!(locate(199), Some((6, 31)));
        assert_eq!(locate(7), None);
        assert_eq!(locate(200), None);
        for irq in 8..200 {
            let (p, b) = locate(irq).unwrap();
            assert_eq!(irq_number(p, b), irq);
        }
    }
}
