//! Goldfish real-time clock: a 64-bit nanosecond counter and one alarm.
//!
//! TIME_LOW must be read first: it latches TIME_HIGH. ALARM_HIGH is written before ALARM_LOW,
//! whose write arms the alarm (a time already past fires at once). The interrupt is level:
//! it stays up until CLEAR_INTERRUPT.
use crate::bus::Bus;

const TIME_LOW: u32 = 0x00;
const TIME_HIGH: u32 = 0x04;
const ALARM_LOW: u32 = 0x08;
const ALARM_HIGH: u32 = 0x0c;
const IRQ_ENABLED: u32 = 0x10;
const CLEAR_ALARM: u32 = 0x14;
const ALARM_STATUS: u32 = 0x18;
const CLEAR_INTERRUPT: u32 = 0x1c;

pub struct GoldfishRtc<B: Bus> {
    bus: B,
    base: u32,
}

impl<B: Bus> GoldfishRtc<B> {
    /// # Safety
    ///
    /// `base` must be the physical base of a goldfish RTC register block.
    #[inline]
    pub const unsafe fn new(bus: B, base: u32) -> Self {
        Self { bus, base }
    }

    /// Nanoseconds since the Unix epoch (host clock, or guest time with `-rtc clock=vm`).
    /// Not atomic with respect to other readers of the same RTC: callers serialize.
    #[inline]
    pub fn now_ns(&self) -> u64 {
        let low = self.bus.read32(self.base + TIME_LOW);
        let high = self.bus.read32(self.base + TIME_HIGH);
        u64::from(high) << 32 | u64::from(low)
    }

    /// Arms the alarm for `deadline_ns` (same time base as `now_ns`).
    pub fn arm(&self, deadline_ns: u64) {
        self.bus
            .write32(self.base + ALARM_HIGH, (deadline_ns >> 32) as u32);
        self.bus.write32(self.base + ALARM_LOW, deadline_ns as u32);
    }

    pub fn disarm(&self) {
        self.bus.write32(self.base + CLEAR_ALARM, 0);
    }

    pub fn alarm_armed(&self) -> bool {
        self.bus.read32(self.base + ALARM_STATUS) != 0
    }

    pub fn set_interrupt_enabled(&self, on: bool) {
        self.bus.write32(self.base + IRQ_ENABLED, u32::from(on));
    }

    pub fn clear_interrupt(&self) {
        self.bus.write32(self.base + CLEAR_INTERRUPT, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::fake::{Access, FakeBus};
    use std::vec;

    #[test]
    fn time_reads_low_first_and_alarm_writes_high_first() {
        // SAFETY: no real device behind the fake bus.
        let rtc = unsafe { GoldfishRtc::new(FakeBus::default(), 0xff00_6000) };
        rtc.bus.regs.borrow_mut().insert(0xff00_6000, 0x89ab_cdef);
        rtc.bus.regs.borrow_mut().insert(0xff00_6004, 0x0123_4567);
        assert_eq!(rtc.now_ns(), 0x0123_4567_89ab_cdef);
        rtc.arm(0x0000_0005_0000_0007);
        let log = rtc.bus.log.borrow();
        assert_eq!(
            &log[..],
            &[
                Access::Read(0xff00_6000),
                Access::Read(0xff00_6004),
                Access::Write(0xff00_600c, 5),
                Access::Write(0xff00_6008, 7),
            ]
        );
        drop(log);
        rtc.clear_interrupt();
        assert_eq!(rtc.bus.writes_to(0xff00_601c), vec![0]);
    }
}
