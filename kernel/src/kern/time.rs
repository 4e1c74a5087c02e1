//! Time: a monotonic nanosecond clock and one-shot timers on goldfish RTC #0, waits with
//! timeouts, and wall-clock time from RTC #1.
//!
//! Owns: the timer queue (several pending deadlines, the earliest armed in the RTC alarm),
//! `sleep`, and the two waits every wait in the kernel goes through: [`wait_until`] (sleeps
//! with `stop` between checks; the condition must become true by way of an interrupt) and
//! [`spin_until`] (polls; for conditions no interrupt announces). Both give up at a timeout
//! with an error, never hang. The queue, the wait loop and the calendar are pure and
//! host-tested.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use core::fmt;

/// Nanoseconds on the monotonic clock (since boot).
pub type Nanos = u64;

pub const MICROS: Nanos = 1_000;
pub const MILLIS: Nanos = 1_000_000;
pub const SECONDS: Nanos = 1_000_000_000;

/// A timer's handle, for cancelling it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TimerId(u64);

pub type Callback = Box<dyn FnOnce() + Send>;

/// Pending one-shot timers, ordered by deadline (ties by creation order).
#[derive(Default)]
pub struct TimerQueue {
    entries: BTreeMap<(Nanos, u64), Callback>,
    next_seq: u64,
}

impl TimerQueue {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, deadline: Nanos, callback: Callback) -> TimerId {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.entries.insert((deadline, seq), callback);
        TimerId(seq)
    }

    /// Removes a pending timer; false if it already fired or was cancelled.
    pub fn cancel(&mut self, id: TimerId) -> bool {
        let key = self.entries.keys().find(|(_, seq)| *seq == id.0).copied();
        key.is_some_and(|k| self.entries.remove(&k).is_some())
    }

    /// The deadline the alarm should be armed for.
    pub fn earliest(&self) -> Option<Nanos> {
        self.entries.keys().next().map(|(d, _)| *d)
    }

    /// Takes the earliest timer whose deadline is at or before `now`.
    pub fn pop_expired(&mut self, now: Nanos) -> Option<(Nanos, Callback)> {
        let (&(deadline, seq), _) = self.entries.iter().next()?;
        if deadline > now {
            return None;
        }
        self.entries
            .remove(&(deadline, seq))
            .map(|cb| (deadline, cb))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// A wait gave up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimedOut {
    /// How long it waited, in ns.
    pub waited: Nanos,
}

impl fmt::Display for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "timed out after {} us", self.waited / MICROS)
    }
}

/// The clock and the idle step a wait loop uses.
pub trait WaitEnv {
    fn now(&self) -> Nanos;
    /// Called between two checks of the condition.
    fn pause(&self);
}

/// Checks `cond` until it holds or `timeout` has passed (measured from the first check).
/// The condition is always checked once more after the deadline passes, so a condition that
/// became true just at the deadline is not reported as a timeout.
pub fn wait_loop(
    env: &impl WaitEnv,
    mut cond: impl FnMut() -> bool,
    timeout: Nanos,
) -> Result<(), TimedOut> {
    let start = env.now();
    loop {
        if cond() {
            return Ok(());
        }
        let now = env.now();
        if now.saturating_sub(start) >= timeout {
            return if cond() {
                Ok(())
            } else {
                Err(TimedOut {
                    waited: now - start,
                })
            };
        }
        env.pause();
    }
}

/// A calendar date and time (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateTime {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub nanos: u32,
}

impl DateTime {
    /// From nanoseconds since the Unix epoch (proleptic Gregorian calendar).
    pub fn from_unix_nanos(ns: u64) -> DateTime {
        let secs = ns / SECONDS;
        let days = (secs / 86_400) as i64;
        let rem = secs % 86_400;
        // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm, own rendering).
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        DateTime {
            year,
            month,
            day,
            hour: (rem / 3600) as u32,
            minute: (rem / 60 % 60) as u32,
            second: (rem % 60) as u32,
            nanos: (ns % SECONDS) as u32,
        }
    }
}

impl fmt::Display for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

#[cfg(target_arch = "wasm32")]
pub use clock::*;

#[cfg(target_arch = "wasm32")]
mod clock {
    use super::*;
    use crate::arch::m68k::machine::{self, IrqMutex, MachineBus};
    use crate::board::virt::irq::{self, Handled};
    use crate::board::virt::memmap;
    use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
    use drivers::goldfish_rtc::GoldfishRtc;

    static RTC0_BASE: AtomicU32 = AtomicU32::new(memmap::RTC0_BASE);
    static RTC1_BASE: AtomicU32 = AtomicU32::new(memmap::RTC1_BASE);

    /// The RTC's reading at boot and the last value `now` returned (the RTC follows the host
    /// clock, which may step back; the monotonic clock never does). Read and written only
    /// with interrupts masked: on this single CPU that makes each update whole (atomics on
    /// wasm32v1-none are plain loads and stores, toolchain.md rule 2), and it is cheaper
    /// than a lock on the path every benchmark window and timeout reads.
    static BOOT_RAW: AtomicU64 = AtomicU64::new(0);
    static LAST: AtomicU64 = AtomicU64::new(0);
    static TIMERS: IrqMutex<Option<TimerQueue>> = machine::irq_mutex(None);
    static ALARMS: AtomicU32 = AtomicU32::new(0);

    #[inline]
    fn rtc(base: &AtomicU32) -> GoldfishRtc<MachineBus> {
        // SAFETY: the base is bootinfo's RTC record (RTC #1 is RTC_STRIDE above RTC #0): the bus
        // and the driver reach only that RTC's registers, which only this module uses.
        unsafe { GoldfishRtc::new(MachineBus::new(), base.load(Ordering::Relaxed)) }
    }

    /// Starts the clock and the timer interrupt (RTC #0 on `rtc0_irq`).
    ///
    /// # Safety
    ///
    /// `rtc0_base` must be goldfish RTC #0's register block as bootinfo reports it (RTC #1
    /// sits `RTC_STRIDE` above it on the virt board): the clock reads and programs both.
    pub unsafe fn init(rtc0_base: u32, rtc0_irq: u32) -> Result<(), irq::IrqError> {
        RTC0_BASE.store(rtc0_base, Ordering::Relaxed);
        RTC1_BASE.store(rtc0_base + memmap::RTC_STRIDE, Ordering::Relaxed);
        {
            let _masked = machine::mask_interrupts();
            let r = rtc(&RTC0_BASE);
            r.disarm();
            r.clear_interrupt();
            BOOT_RAW.store(r.now_ns(), Ordering::Relaxed);
            LAST.store(0, Ordering::Relaxed);
            *TIMERS.lock() = Some(TimerQueue::new());
            r.set_interrupt_enabled(true);
        }
        irq::register(rtc0_irq, "rtc0 timer", alarm_interrupt)?;
        irq::enable(rtc0_irq)?;
        RUNNING.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// The RTC's raw reading (ns since the epoch, or guest instructions under `-icount
    /// shift=0 -rtc clock=vm`) in one machine call: for measurement windows, whose two ends
    /// are subtracted, where [`now`]'s boot offset and monotonic clamp would be part of what
    /// is measured. Not monotonic across a host clock step.
    #[inline]
    pub fn raw_ns() -> u64 {
        // SAFETY: the base is bootinfo's RTC record (see `rtc`): the call reads only that
        // RTC's time registers.
        unsafe { machine::rtc_read(RTC0_BASE.load(Ordering::Relaxed)) }
    }

    /// [`raw_ns`] with the RTC's address read once: a loop that reads the clock at each end
    /// of a measurement window keeps this in a local.
    #[derive(Clone, Copy)]
    pub struct RawClock(u32);

    impl RawClock {
        /// The boot RTC's clock.
        pub fn get() -> RawClock {
            RawClock(RTC0_BASE.load(Ordering::Relaxed))
        }
        /// As [`raw_ns`].
        #[inline(always)]
        pub fn ns(self) -> u64 {
            // SAFETY: the base is bootinfo's RTC record (see `rtc`), read from RTC0_BASE by
            // `get`: the call reads only that RTC's time registers.
            unsafe { machine::rtc_read(self.0) }
        }
    }

    /// Nanoseconds since boot; never goes backwards.
    #[inline]
    pub fn now() -> Nanos {
        // The mask keeps the RTC's two-register read and the update of LAST whole.
        machine::masked(|| {
            let raw = rtc(&RTC0_BASE).now_ns();
            let t = raw
                .saturating_sub(BOOT_RAW.load(Ordering::Relaxed))
                .max(LAST.load(Ordering::Relaxed));
            LAST.store(t, Ordering::Relaxed);
            t
        })
    }

    static RUNNING: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

    /// Wall-clock time, once `init` has run (log lines use it).
    pub fn wall_clock_if_running() -> Option<DateTime> {
        RUNNING.load(Ordering::Relaxed).then(wall_clock)
    }

    /// Wall-clock time from RTC #1.
    pub fn wall_clock() -> DateTime {
        let _masked = machine::mask_interrupts();
        DateTime::from_unix_nanos(rtc(&RTC1_BASE).now_ns())
    }

    /// How many timer interrupts have been taken.
    pub fn alarm_interrupts() -> u32 {
        ALARMS.load(Ordering::Relaxed)
    }

    /// Arms the alarm for the earliest pending timer (or disarms it). Called with the timer queue locked (interrupts masked): the arm must not race an alarm.
    fn rearm(queue: &TimerQueue) {
        let r = rtc(&RTC0_BASE);
        match queue.earliest() {
            // The RTC counts host ns since the epoch; ours start at boot.
            Some(deadline) => r.arm(deadline.saturating_add(BOOT_RAW.load(Ordering::Relaxed))),
            None => r.disarm(),
        }
    }

    fn alarm_interrupt() -> Handled {
        ALARMS.fetch_add(1, Ordering::Relaxed);
        rtc(&RTC0_BASE).clear_interrupt();
        // Run every expired timer; each callback runs at the timer's level (6), unlocked.
        loop {
            let now = now();
            let due = {
                let mut q = TIMERS.lock();
                let q = q
                    .as_mut()
                    .expect("timers are initialised before the alarm is enabled");
                let due = q.pop_expired(now);
                if due.is_none() {
                    rearm(q);
                }
                due
            };
            match due {
                Some((_, callback)) => callback(),
                None => break,
            }
        }
        Handled::Yes
    }

    /// Runs `callback` in interrupt context (level 6) once `deadline` (ns since boot) has
    /// passed. Callbacks must be short and must not wait.
    pub fn at(deadline: Nanos, callback: impl FnOnce() + Send + 'static) -> TimerId {
        let mut q = TIMERS.lock();
        let q = q.as_mut().expect("time::init runs at boot");
        let id = q.add(deadline, Box::new(callback));
        rearm(q);
        id
    }

    pub fn after(delay: Nanos, callback: impl FnOnce() + Send + 'static) -> TimerId {
        at(now().saturating_add(delay), callback)
    }

    /// Cancels a pending timer; false if it already ran.
    pub fn cancel(id: TimerId) -> bool {
        let mut q = TIMERS.lock();
        let q = q.as_mut().expect("time::init runs at boot");
        let removed = q.cancel(id);
        rearm(q);
        removed
    }

    pub fn pending_timers() -> usize {
        TIMERS.lock().as_ref().map_or(0, |q| q.len())
    }

    struct Spinning;
    impl WaitEnv for Spinning {
        fn now(&self) -> Nanos {
            now()
        }
        fn pause(&self) {
            core::hint::spin_loop();
        }
    }

    /// Waits, idle, until `cond` holds or `timeout` passes. `cond` must become true by way
    /// of an interrupt (a timer wakes the CPU at the deadline). It is checked with interrupts
    /// masked and the CPU stops in the same step (`stop` unmasks and waits in one
    /// instruction), so an interrupt that makes it true cannot slip in between. In an
    /// interrupt handler (IPL > 0) stopping would unmask lower levels, so there it polls.
    pub fn wait_until(mut cond: impl FnMut() -> bool, timeout: Nanos) -> Result<(), TimedOut> {
        let may_stop = machine::current_ipl() == 0;
        let start = now();
        let deadline_timer = after(timeout, || {});
        let result = loop {
            let masked = machine::mask_interrupts();
            if cond() {
                break Ok(());
            }
            let waited = now().saturating_sub(start);
            if waited >= timeout {
                break Err(TimedOut { waited });
            }
            if may_stop {
                // stop leaves the mask at 0, which is where the guard would put it back.
                core::mem::forget(masked);
                // SAFETY: `may_stop`: the caller runs at IPL 0, so it holds no IrqMutex
                // (their guards mask to 7); the guard taken for the check is forgotten above.
                unsafe { machine::wait_for_interrupt() };
            } else {
                drop(masked);
                core::hint::spin_loop();
            }
        };
        cancel(deadline_timer);
        result
    }

    /// Polls `cond` until it holds or `timeout` passes (no interrupt needed).
    pub fn spin_until(cond: impl FnMut() -> bool, timeout: Nanos) -> Result<(), TimedOut> {
        wait_loop(&Spinning, cond, timeout)
    }

    /// Sleeps for `duration` (at least).
    pub fn sleep(duration: Nanos) {
        let until = now().saturating_add(duration);
        // The deadline timer of wait_until wakes us; the condition re-reads the clock.
        let _ = wait_until(|| now() >= until, duration);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::cell::Cell;
    use std::vec;
    use std::vec::Vec;

    #[test]
    fn timers_come_out_in_deadline_order() {
        let mut q = TimerQueue::new();
        for d in [30u64, 10, 20, 10] {
            q.add(d, Box::new(|| {}));
        }
        assert_eq!(q.earliest(), Some(10));
        let mut order = Vec::new();
        while let Some((d, _)) = q.pop_expired(25) {
            order.push(d);
        }
        assert_eq!(order, vec![10, 10, 20]);
        assert_eq!(q.earliest(), Some(30));
        assert!(q.pop_expired(29).is_none());
        assert_eq!(q.pop_expired(30).map(|(d, _)| d), Some(30));
        assert!(q.is_empty());
    }

    #[test]
    fn equal_deadlines_keep_creation_order_and_cancel_works() {
        let mut q = TimerQueue::new();
        let a = q.add(5, Box::new(|| {}));
        let b = q.add(5, Box::new(|| {}));
        let c = q.add(1, Box::new(|| {}));
        assert!(q.cancel(c));
        assert!(!q.cancel(c), "cancelling twice");
        assert_eq!(q.earliest(), Some(5));
        assert!(q.cancel(a));
        assert_eq!(q.len(), 1);
        assert!(q.cancel(b));
        assert_eq!(q.earliest(), None);
    }

    struct FakeClock {
        t: Cell<Nanos>,
        step: Nanos,
        pauses: Cell<u32>,
    }
    impl WaitEnv for FakeClock {
        fn now(&self) -> Nanos {
            self.t.get()
        }
        fn pause(&self) {
            self.pauses.set(self.pauses.get() + 1);
            self.t.set(self.t.get() + self.step);
        }
    }

    #[test]
    fn wait_loop_times_out_with_an_error() {
        let clock = FakeClock {
            t: Cell::new(1000),
            step: 7,
            pauses: Cell::new(0),
        };
        let r = wait_loop(&clock, || false, 100);
        assert_eq!(r, Err(TimedOut { waited: 105 }));
        assert_eq!(clock.pauses.get(), 15);
    }

    #[test]
    fn wait_loop_returns_when_condition_holds() {
        let clock = FakeClock {
            t: Cell::new(0),
            step: 10,
            pauses: Cell::new(0),
        };
        let r = wait_loop(&clock, || clock.t.get() >= 50, 1000);
        assert_eq!(r, Ok(()));
        assert_eq!(clock.pauses.get(), 5);
        // Zero timeout still checks once.
        assert_eq!(wait_loop(&clock, || true, 0), Ok(()));
    }

    #[test]
    fn condition_true_at_the_deadline_is_not_a_timeout() {
        let clock = FakeClock {
            t: Cell::new(0),
            step: 100,
            pauses: Cell::new(0),
        };
        let r = wait_loop(&clock, || clock.t.get() >= 100, 100);
        assert_eq!(r, Ok(()));
    }

    #[test]
    fn calendar() {
        assert_eq!(
            std::format!("{}", DateTime::from_unix_nanos(0)),
            "1970-01-01 00:00:00 UTC"
        );
        // 2026-11-24 08:21:23 UTC
        let t = 1_795_508_483u64 * SECONDS + 5;
        let d = DateTime::from_unix_nanos(t);
        assert_eq!(std::format!("{d}"), "2026-11-24 08:21:23 UTC");
        assert_eq!(d.nanos, 5);
        // leap day
        assert_eq!(
            std::format!("{}", DateTime::from_unix_nanos(951_782_400 * SECONDS)),
            "2000-02-29 00:00:00 UTC"
        );
        assert_eq!(
            std::format!("{}", DateTime::from_unix_nanos(4_102_444_799 * SECONDS)),
            "2099-12-31 23:59:59 UTC"
        );
    }
}
