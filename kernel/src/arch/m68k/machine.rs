//! Bindings to the machine layer (`boot/`): the only way Rust reaches hardware.
//!
//! Owns: the `machine` wasm imports and their safe wrappers (register access, interrupt mask,
//! idle, physical addresses of linear memory, catching a failing test, deliberate faults).
//! Policy lives in the callers; nothing here decides anything.

use crate::arch::m68k::ipl::{IplControl, IplGuard};
use drivers::bus::Bus;
use drivers::sync::InterruptMask;

#[link(wasm_import_module = "machine")]
extern "C" {
    fn mmio_read8(addr: u32) -> u32;
    fn mmio_read16(addr: u32) -> u32;
    fn mmio_read32(addr: u32) -> u32;
    fn mmio_write8(addr: u32, value: u32);
    fn mmio_write16(addr: u32, value: u32);
    fn mmio_write32(addr: u32, value: u32);
    fn ipl_get() -> u32;
    fn ipl_set(level: u32);
    fn idle();
    fn linear_base() -> u32;
    fn ram_end() -> u32;
    fn bootinfo_read(dst: *mut u8, offset: u32, len: u32) -> u32;
    fn set_fallback_devices(tty: u32, ctrl: u32);
    fn catch_test(index: u32) -> u32;
    fn unwind();
    fn last_trap_pc() -> u32;
    fn fault(kind: u32);
    #[link_name = "deliver_interrupt_vector"]
    fn machine_deliver_interrupt_vector(vector: u32) -> u32;
    fn barrier();
    fn cpu_cacr_read() -> u32;
    fn cpu_cacr_write(value: u32);
    fn cpu_cacr_probe() -> u32;
    fn cpu_fpu_present() -> u32;
    fn cpu_probe_cache_insns() -> u32;
    fn cpu_probe_ttrs() -> u32;
    fn cpu_ttr_read(which: u32) -> u32;
    fn cpu_ttr_write(which: u32, value: u32);
    #[link_name = "cache_op"]
    fn machine_cache_op(kind: u32, addr: u32) -> u32;
}

/// Register access through the machine layer's volatile loads and stores.
#[derive(Clone, Copy, Default)]
pub struct MachineBus;

// SAFETY: each method is one call of a machine-layer import that performs exactly one
// volatile access of that width; import calls are opaque to the compiler, so they stay in
// program order.
unsafe impl Bus for MachineBus {
    // The 68k is big-endian and the virt board wires its devices' byte lanes straight.
    const BIG_ENDIAN: bool = true;
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

/// The processor's interrupt mask, through the machine layer.
pub struct MachineIpl;

impl IplControl for MachineIpl {
    fn get(&self) -> u8 {
        // SAFETY: reads SR.
        unsafe { ipl_get() as u8 }
    }
    fn set(&self, level: u8) {
        // SAFETY: changes only SR's interrupt mask.
        unsafe { ipl_set(level.into()) }
    }
}

pub static MACHINE_IPL: MachineIpl = MachineIpl;

/// A raised interrupt mask; see [`crate::arch::m68k::ipl::IplGuard`].
pub type IrqGuard = IplGuard<'static, MachineIpl>;

/// Masks every interrupt until the guard drops. Needed around anything shared with
/// interrupt handlers, because atomics on wasm32v1-none are plain loads and stores.
pub fn mask_interrupts() -> IrqGuard {
    IplGuard::raise(&MACHINE_IPL, 7)
}

/// Masks every interrupt: what an [`IrqMutex`] raises before it locks.
impl InterruptMask for MachineIpl {
    type Guard = IrqGuard;
    fn mask(&self) -> IrqGuard {
        mask_interrupts()
    }
}

/// A lock for state shared with interrupt handlers: taking it masks every interrupt first,
/// and its guard unlocks before it unmasks (see [`drivers::sync`]).
pub type IrqMutex<T> = drivers::sync::IrqMutex<T, MachineIpl>;

/// An [`IrqMutex`] holding `value` (a `const fn`, for statics).
pub const fn irq_mutex<T>(value: T) -> IrqMutex<T> {
    IrqMutex::new(MachineIpl, value)
}

/// Masks interrupts of `level` and below until the guard drops.
pub fn raise_ipl(level: u8) -> IrqGuard {
    IplGuard::raise(&MACHINE_IPL, level)
}

pub fn current_ipl() -> u8 {
    MACHINE_IPL.get()
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

/// Copies bytes of the bootinfo list from `offset` on into `buf`; returns the bytes copied
/// (fewer near the start of linear memory, where what QEMU wrote has been overwritten).
pub fn read_bootinfo(offset: usize, buf: &mut [u8]) -> usize {
    // SAFETY: the machine layer checks the range against linear memory and writes at most
    // buf.len() bytes into it.
    unsafe { bootinfo_read(buf.as_mut_ptr(), offset as u32, buf.len() as u32) as usize }
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
        code => {
            // SAFETY: reads a value stored by the trap.
            let pc = unsafe { last_trap_pc() };
            Caught::Trapped { code: code - 2, pc }
        }
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

/// Interrupt vectors: 24 is the spurious interrupt, 25..=31 the autovectors of levels 1..=7
/// (MC68040UM table 8-1).
pub const SPURIOUS_VECTOR: u32 = 24;

/// Enters the machine layer's trap path as the CPU would for interrupt `vector` (24..=31),
/// with interrupts masked, so the kernel can test routing of a vector QEMU never raises.
/// Returns false, doing nothing, for any other vector.
pub fn deliver_interrupt_vector(vector: u32) -> bool {
    let _masked = mask_interrupts();
    // SAFETY: the machine layer refuses every vector but 24..=31, which go to the interrupt
    // dispatch exactly as a real interrupt would; the mask held here keeps real interrupts
    // from nesting under the simulated one, as the CPU's own IPL raise would.
    unsafe { machine_deliver_interrupt_vector(vector) == 0 }
}

/// The CACR as the CPU holds it.
pub fn cacr_read() -> u32 {
    // SAFETY: reading a control register has no effect.
    unsafe { cpu_cacr_read() }
}

/// Writes the CACR. Callers (the cache module) choose bits valid for the identified model.
pub fn cacr_write(value: u32) {
    // SAFETY: the CACR only controls caches, which do not change memory contents when
    // enabled, disabled or cleared in write-through mode; copyback users push first.
    unsafe { cpu_cacr_write(value) }
}

/// The CACR's writable bits (all ones written, read back, caches left off).
pub fn cacr_probe() -> u32 {
    // SAFETY: runs with interrupts masked and leaves the caches off; called before they are
    // ever enabled, so no dirty line can be lost.
    unsafe { cpu_cacr_probe() }
}

/// Whether the boot-time FPU probe found an FPU.
pub fn fpu_present() -> bool {
    // SAFETY: reads a flag set at start-up.
    unsafe { cpu_fpu_present() != 0 }
}

/// Whether CINV/CPUSH execute (false: they took an F-line trap). Only for a CPU that has
/// them architecturally (68040, 68060), before its caches are enabled.
pub fn probe_cache_insns() -> bool {
    // Called at identification, before any cache is enabled: no line, dirty or not, exists.
    // SAFETY: CPUSHA/CINVA with interrupts masked and no cache enabled lose nothing; a trap
    // is resumed after the instruction by the machine layer.
    unsafe { cpu_probe_cache_insns() != 0 }
}

/// Whether movec from/to ITT0-1 and DTT0-1 executes (false: illegal instruction). Only for
/// a 68040 or 68060: on the 68020/68030 these encodings are not these registers.
pub fn probe_ttrs() -> bool {
    // SAFETY: the probe only reads the four registers and writes back what it read, with
    // interrupts masked; a trap is resumed after the instruction by the machine layer.
    unsafe { cpu_probe_ttrs() != 0 }
}

/// Reads a 68040 transparent translation register (0 ITT0, 1 ITT1, 2 DTT0, 3 DTT1).
/// Only where `cpu::Identity::ttrs` is true (68040; 68060 on silicon).
pub fn ttr_read(which: u32) -> u32 {
    // SAFETY: the callers (cache module, banner, tests) check Identity::ttrs first.
    unsafe { cpu_ttr_read(which) }
}

/// Writes a 68040 transparent translation register; only where `Identity::ttrs` is true.
pub fn ttr_write(which: u32, value: u32) {
    // SAFETY: as ttr_read; the values only set cache modes with the MMU off.
    unsafe { cpu_ttr_write(which, value) }
}

/// Executes one 68040 cache instruction (encoding byte from `cache::Step::encoding`).
/// Returns true when the machine layer refused an unknown encoding.
pub fn cache_op(kind: u32, addr: u32) -> bool {
    // SAFETY: the cache module calls this only where Identity::cache_insns is true, with
    // steps that never discard data outside the caller's range.
    unsafe { machine_cache_op(kind, addr) != 0 }
}

/// A compiler barrier: an opaque call into the machine layer, across which GCC cannot move
/// loads or stores of linear memory (toolchain.md rule 3). Every DMA sync makes one.
pub fn compiler_barrier() {
    // SAFETY: an empty function.
    unsafe { barrier() }
}
