//! Bindings to the machine layer (`boot/`): the only way Rust reaches hardware.
//!
//! Owns: the `machine` wasm imports and their safe wrappers (register access, interrupt mask,
//! idle, physical addresses of linear memory, catching a failing test, deliberate faults).
//! Policy lives in the callers; nothing here decides anything.

use drivers::bus::Bus;

#[link(wasm_import_module = "machine")]
extern "C" {
    fn mmio_read8(addr: u32) -> u32;
    fn mmio_read16(addr: u32) -> u32;
    fn mmio_read32(addr: u32) -> u32;
    fn mmio_write8(addr: u32, value: u32);
    fn mmio_write16(addr: u32, value: u32);
    fn mmio_write32(addr: u32, value: u32);
    fn irq_save() -> u32;
    fn irq_restore(ipl: u32);
    fn idle();
    fn linear_base() -> u32;
    fn ram_end() -> u32;
    fn bootinfo_read(dst: *mut u8, len: u32) -> u32;
    fn set_fallback_devices(tty: u32, ctrl: u32);
    fn catch_test(index: u32) -> u32;
    fn unwind();
    fn last_trap_pc() -> u32;
    fn fault(kind: u32);
}

/// Register access through the machine layer's volatile loads and stores.
#[derive(Clone, Copy, Default)]
pub struct MachineBus;

// SAFETY: each method is one call of a machine-layer import that performs exactly one
// volatile access of that width; import calls are opaque to the compiler, so they stay in
// program order.
unsafe impl Bus for MachineBus {
    fn read8(&self, addr: u32) -> u8 {
        // SAFETY: the Bus contract: callers name addresses of their own register block.
        unsafe { mmio_read8(addr) as u8 }
    }
    fn read16(&self, addr: u32) -> u16 {
        // SAFETY: as above.
        unsafe { mmio_read16(addr) as u16 }
    }
    fn read32(&self, addr: u32) -> u32 {
        // SAFETY: as above.
        unsafe { mmio_read32(addr) }
    }
    fn write8(&self, addr: u32, value: u8) {
        // SAFETY: as above.
        unsafe { mmio_write8(addr, value.into()) }
    }
    fn write16(&self, addr: u32, value: u16) {
        // SAFETY: as above.
        unsafe { mmio_write16(addr, value.into()) }
    }
    fn write32(&self, addr: u32, value: u32) {
        // SAFETY: as above.
        unsafe { mmio_write32(addr, value) }
    }
}

/// Interrupts masked (IPL 7) for the guard's lifetime; the previous level comes back on drop,
/// so guards nest. Needed around anything shared with interrupt handlers, because atomics on
/// wasm32v1-none are plain loads and stores.
pub struct IrqGuard {
    previous: u32,
}

impl IrqGuard {
    pub fn new() -> Self {
        // SAFETY: raising the IPL has no memory effects.
        IrqGuard {
            previous: unsafe { irq_save() },
        }
    }
}

impl Default for IrqGuard {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for IrqGuard {
    fn drop(&mut self) {
        // SAFETY: restores the level irq_save returned.
        unsafe { irq_restore(self.previous) }
    }
}

/// Stops the CPU until an interrupt arrives (68k `stop #0x2000`: the IPL is 0 afterwards).
pub fn wait_for_interrupt() {
    // SAFETY: stop only waits.
    unsafe { idle() }
}

/// Physical address of wasm linear memory's byte 0.
pub fn linear_memory_base() -> u32 {
    // SAFETY: a constant of the link.
    unsafe { linear_base() }
}

/// The end of RAM as the machine layer found it (it bounds linear memory growth).
pub fn machine_ram_end() -> u32 {
    // SAFETY: a value read at start-up.
    unsafe { ram_end() }
}

/// Physical address of a Rust pointer (wasm addresses are offsets into linear memory).
pub fn physical_address<T>(ptr: *const T) -> u32 {
    linear_memory_base() + ptr as usize as u32
}

/// Copies the start of the bootinfo list into `buf`; returns the bytes copied.
pub fn read_bootinfo(buf: &mut [u8]) -> usize {
    // SAFETY: the machine layer checks the range against linear memory and writes at most
    // buf.len() bytes into it.
    unsafe { bootinfo_read(buf.as_mut_ptr(), buf.len() as u32) as usize }
}

/// Tells the machine layer's last-resort printer where the console and virt-ctrl are.
pub fn set_fallback(tty: u32, ctrl: u32) {
    // SAFETY: two addresses stored for later.
    unsafe { set_fallback_devices(tty, ctrl) }
}

/// How a caught test ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caught {
    Returned,
    Panicked,
    Trapped { code: u32, pc: u32 },
}

/// Runs the kernel export `test_run(index)` so that a panic or wasm trap inside it comes back
/// here instead of ending the kernel.
pub fn catch(index: u32) -> Caught {
    // SAFETY: the machine layer saves and restores the shadow stack pointer, call depth and
    // IPL around the call; the test's own state is abandoned if it does not return.
    match unsafe { catch_test(index) } {
        0 => Caught::Returned,
        1 => Caught::Panicked,
        // SAFETY: reads a value stored by the trap.
        code => Caught::Trapped {
            code: code - 2,
            pc: unsafe { last_trap_pc() },
        },
    }
}

/// Leaves the running caught test (from the panic handler). Returns if no test is running.
pub fn unwind_test() {
    // SAFETY: the machine layer longjmps to catch() only while one is active.
    unsafe { unwind() }
}

#[derive(Debug, Clone, Copy)]
#[repr(u32)]
pub enum MachineFault {
    IllegalInstruction = 1,
    BusError = 2,
    DivideByZero = 3,
}

/// Executes a deliberately faulting instruction.
pub fn cause_fault(kind: MachineFault) {
    // SAFETY: the exception it raises is reported and ends the kernel.
    unsafe { fault(kind as u32) }
}
