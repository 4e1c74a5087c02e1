//! Goldfish programmable interrupt controller: 32 level-sensitive inputs, one output.
//!
//! The virt board has six, at consecutive 0x1000 strides; PIC n drives CPU level n. A PIC's
//! output is `pending & enabled`; there is no acknowledge register (an input drops when its
//! device clears it).
use crate::bus::Bus;

const STATUS: u32 = 0x00;
const IRQ_PENDING: u32 = 0x04;
const DISABLE_ALL: u32 = 0x08;
const DISABLE: u32 = 0x0c;
const ENABLE: u32 = 0x10;

pub struct GoldfishPic<B: Bus> {
    bus: B,
    base: u32,
}

impl<B: Bus> GoldfishPic<B> {
    /// # Safety
    ///
    /// `base` must be the physical base of a goldfish PIC register block.
    pub const unsafe fn new(bus: B, base: u32) -> Self {
        Self { bus, base }
    }

    /// Inputs that are both raised and enabled.
    pub fn pending(&self) -> u32 {
        self.bus.read32(self.base + IRQ_PENDING)
    }

    /// How many inputs are raised and enabled.
    pub fn pending_count(&self) -> u32 {
        self.bus.read32(self.base + STATUS)
    }

    pub fn enable(&self, mask: u32) {
        self.bus.write32(self.base + ENABLE, mask);
    }

    pub fn disable(&self, mask: u32) {
        self.bus.write32(self.base + DISABLE, mask);
    }

    pub fn disable_all(&self) {
        self.bus.write32(self.base + DISABLE_ALL, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::fake::FakeBus;
    use std::vec;

    #[test]
    fn registers() {
        // SAFETY: no real device behind the fake bus.
        let pic = unsafe { GoldfishPic::new(FakeBus::default(), 0xff00_1000) };
        pic.bus.regs.borrow_mut().insert(0xff00_1004, 0x8000_0001);
        assert_eq!(pic.pending(), 0x8000_0001);
        pic.enable(1 << 5);
        pic.disable(1 << 5);
        pic.disable_all();
        assert_eq!(pic.bus.writes_to(0xff00_1010), vec![1 << 5]);
        assert_eq!(pic.bus.writes_to(0xff00_100c), vec![1 << 5]);
        assert_eq!(pic.bus.writes_to(0xff00_1008), vec![0]);
    }
}
