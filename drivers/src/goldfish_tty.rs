//! Goldfish TTY: the board's console.
//!
//! Output uses PUT_CHAR, which is synchronous and needs no DMA, so it works from any context
//! (panic, exception) and never involves the data cache. Input arrives in a 128-byte FIFO that
//! raises a level interrupt while non-empty; READ_BUFFER copies bytes out of it into guest
//! memory by DMA (the caller does the cache maintenance).
use crate::bus::Bus;

const PUT_CHAR: u32 = 0x00;
const BYTES_READY: u32 = 0x04;
const CMD: u32 = 0x08;
const DATA_PTR: u32 = 0x10;
const DATA_LEN: u32 = 0x14;
const DATA_PTR_HIGH: u32 = 0x18;

const CMD_INT_DISABLE: u32 = 0;
const CMD_INT_ENABLE: u32 = 1;
const CMD_READ_BUFFER: u32 = 3;

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

    /// Bytes waiting in the receive FIFO.
    pub fn bytes_ready(&self) -> u32 {
        self.bus.read32(self.base + BYTES_READY)
    }

    /// Turns the receive interrupt (level, up while the FIFO is non-empty) on or off.
    pub fn set_rx_interrupt(&self, on: bool) {
        let cmd = if on { CMD_INT_ENABLE } else { CMD_INT_DISABLE };
        self.bus.write32(self.base + CMD, cmd);
    }

    /// Moves up to `len` received bytes to physical address `phys` (the device copies at most
    /// what is ready; ask `bytes_ready` first).
    ///
    /// # Safety
    ///
    /// `[phys, phys + len)` must be memory the device may overwrite, with the data cache
    /// prepared for a device write (PREREAD) and not touched by the CPU until this returns.
    pub unsafe fn read_buffer(&self, phys: u32, len: u32) {
        self.bus.write32(self.base + DATA_PTR_HIGH, 0);
        self.bus.write32(self.base + DATA_PTR, phys);
        self.bus.write32(self.base + DATA_LEN, len);
        self.bus.write32(self.base + CMD, CMD_READ_BUFFER);
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
    fn read_buffer_programs_pointer_and_length_before_the_command() {
        use crate::bus::fake::Access;
        // SAFETY: the fake bus has no real device behind any address.
        let tty = unsafe { GoldfishTty::new(FakeBus::default(), 0xff00_8000) };
        // SAFETY: nothing is written by a fake device.
        unsafe { tty.read_buffer(0x0090_0000, 64) };
        assert_eq!(
            &tty.bus.log.borrow()[..],
            &[
                Access::Write(0xff00_8018, 0),
                Access::Write(0xff00_8010, 0x0090_0000),
                Access::Write(0xff00_8014, 64),
                Access::Write(0xff00_8008, 3),
            ]
        );
    }

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
