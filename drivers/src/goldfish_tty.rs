//! Goldfish TTY output: the board's console.
//!
//! PUT_CHAR is synchronous and needs no DMA, so output works from any context (panic,
//! exception) and never involves the data cache. Input (READ_BUFFER, interrupt-driven) is a
//! later addition.
use crate::bus::Bus;

const PUT_CHAR: u32 = 0x00;

pub struct GoldfishTty<B: Bus> {
    bus: B,
    base: u32,
}

impl<B: Bus> GoldfishTty<B> {
    /// # Safety
    ///
    /// `base` must be the physical base of a goldfish TTY register block (from bootinfo's
    /// VIRT_GF_TTY_BASE record), so that writes at its offsets reach that device only.
    pub const unsafe fn new(bus: B, base: u32) -> Self {
        Self { bus, base }
    }

    pub fn base(&self) -> u32 {
        self.base
    }

    /// Writes the bytes of `s`, turning "\n" into "\r\n" as a terminal expects.
    pub fn write_str(&self, s: &str) {
        for b in s.bytes() {
            if b == b'\n' {
                self.bus.write32(self.base + PUT_CHAR, u32::from(b'\r'));
            }
            self.bus.write32(self.base + PUT_CHAR, u32::from(b));
        }
    }
}

impl<B: Bus> core::fmt::Write for GoldfishTty<B> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        GoldfishTty::write_str(self, s);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::fake::FakeBus;
    use std::vec;

    #[test]
    fn newline_becomes_crlf_and_bytes_go_to_put_char() {
        // SAFETY: the fake bus has no real device behind any address.
        let tty = unsafe { GoldfishTty::new(FakeBus::default(), 0xff00_8000) };
        tty.write_str("a\nb");
        assert_eq!(
            tty.bus.writes_to(0xff00_8000),
            vec![b'a' as u32, b'\r' as u32, b'\n' as u32, b'b' as u32]
        );
    }
}
