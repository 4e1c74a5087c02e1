//! QEMU's virt-ctrl device: the only way a virt-board guest can end the emulator.
//!
//! HALT makes QEMU exit with status 0. PANIC makes it exit with status 1, but only when QEMU
//! was started with `-action panic=exit-failure` (otherwise it also exits 0): the xtask
//! always passes that option.
use crate::bus::Bus;

const CMD: u32 = 0x04;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Command {
    Noop = 0,
    Reset = 1,
    Halt = 2,
    Panic = 3,
}

pub struct VirtCtrl<B: Bus> {
    bus: B,
    base: u32,
}

impl<B: Bus> VirtCtrl<B> {
    /// # Safety
    ///
    /// `base` must be the physical base of the virt-ctrl register block (bootinfo's
    /// VIRT_CTRL_BASE record).
    pub const unsafe fn new(bus: B, base: u32) -> Self {
        Self { bus, base }
    }

    pub fn base(&self) -> u32 {
        self.base
    }

    /// Sends `cmd`. For Halt, Panic and Reset QEMU acts on the write itself; the caller
    /// should idle afterwards, since the CPU may run a few more instructions.
    pub fn command(&self, cmd: Command) {
        self.bus.write32(self.base + CMD, cmd as u32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::fake::FakeBus;
    use std::vec;

    #[test]
    fn commands_are_written_to_cmd_register() {
        // SAFETY: the fake bus has no real device behind any address.
        let ctrl = unsafe { VirtCtrl::new(FakeBus::default(), 0xff00_9000) };
        ctrl.command(Command::Halt);
        ctrl.command(Command::Panic);
        assert_eq!(ctrl.bus.writes_to(0xff00_9004), vec![2, 3]);
    }
}
