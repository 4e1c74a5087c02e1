//! Register access, in the spirit of NetBSD's bus_space(9): a driver holds a `Bus` and the
//! physical base of its register block, and names registers by offset.

/// Register reads and writes at physical addresses, in the CPU's view of the bus's byte
/// lanes, plus little-endian accessors for devices whose registers are little-endian (virtio).
///
/// # Safety
///
/// Implementations must perform exactly one access of the given width at the given physical
/// address per call, in program order with respect to every other call (no caching,
/// merging or reordering), because device registers have side effects.
pub unsafe trait Bus {
    /// Whether a 16- or 32-bit access puts the byte at the lowest address in the most
    /// significant position (true on the m68k's buses). A little-endian register then reads
    /// byte-swapped, which [`Bus::read32_le`] and [`Bus::write32_le`] undo.
    const BIG_ENDIAN: bool;

    fn read8(&self, addr: u32) -> u8;
    fn read16(&self, addr: u32) -> u16;
    fn read32(&self, addr: u32) -> u32;
    fn write8(&self, addr: u32, value: u8);
    fn write16(&self, addr: u32, value: u16);
    fn write32(&self, addr: u32, value: u32);

    /// Reads a little-endian 32-bit register: one `read32`.
    fn read32_le(&self, addr: u32) -> u32 {
        let v = self.read32(addr);
        if Self::BIG_ENDIAN {
            v.swap_bytes()
        } else {
            v
        }
    }
    /// Writes a little-endian 32-bit register: one `write32`.
    fn write32_le(&self, addr: u32, value: u32) {
        self.write32(
            addr,
            if Self::BIG_ENDIAN {
                value.swap_bytes()
            } else {
                value
            },
        )
    }
}

// SAFETY: forwards each call to the referenced bus, one access per call.
unsafe impl<B: Bus> Bus for &B {
    const BIG_ENDIAN: bool = B::BIG_ENDIAN;
    fn read8(&self, addr: u32) -> u8 {
        (**self).read8(addr)
    }
    fn read16(&self, addr: u32) -> u16 {
        (**self).read16(addr)
    }
    fn read32(&self, addr: u32) -> u32 {
        (**self).read32(addr)
    }
    fn write8(&self, addr: u32, value: u8) {
        (**self).write8(addr, value)
    }
    fn write16(&self, addr: u32, value: u16) {
        (**self).write16(addr, value)
    }
    fn write32(&self, addr: u32, value: u32) {
        (**self).write32(addr, value)
    }
}

#[cfg(test)]
pub(crate) mod fake {
    //! A recording bus for host tests: a register file plus the log of every access.
    use super::Bus;
    use core::cell::RefCell;
    use std::collections::BTreeMap;
    use std::vec::Vec;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Access {
        Read(u32),
        Write(u32, u32),
    }

    /// A big-endian bus, as on the m68k: tests store little-endian register values swapped.
    #[derive(Default)]
    pub struct FakeBus {
        pub regs: RefCell<BTreeMap<u32, u32>>,
        pub log: RefCell<Vec<Access>>,
    }

    impl FakeBus {
        pub fn writes_to(&self, addr: u32) -> Vec<u32> {
            self.log
                .borrow()
                .iter()
                .filter_map(|a| match *a {
                    Access::Write(x, v) if x == addr => Some(v),
                    _ => None,
                })
                .collect()
        }
        fn read(&self, addr: u32) -> u32 {
            self.log.borrow_mut().push(Access::Read(addr));
            *self.regs.borrow().get(&addr).unwrap_or(&0)
        }
        fn write(&self, addr: u32, value: u32) {
            self.log.borrow_mut().push(Access::Write(addr, value));
            self.regs.borrow_mut().insert(addr, value);
        }
    }

    // SAFETY: a host-side simulation; every call is one logged access, in order.
    unsafe impl Bus for FakeBus {
        const BIG_ENDIAN: bool = true;
        fn read8(&self, addr: u32) -> u8 {
            self.read(addr) as u8
        }
        fn read16(&self, addr: u32) -> u16 {
            self.read(addr) as u16
        }
        fn read32(&self, addr: u32) -> u32 {
            self.read(addr)
        }
        fn write8(&self, addr: u32, value: u8) {
            self.write(addr, value.into())
        }
        fn write16(&self, addr: u32, value: u16) {
            self.write(addr, value.into())
        }
        fn write32(&self, addr: u32, value: u32) {
            self.write(addr, value)
        }
    }
}
