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
    fn ipl_raise_all() -> u32;
    #[link_name = "rtc_read"]
    fn rtc_read_import(base: u32) -> u64;
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
    fn cpu_cache_off_040();
    fn cpu_cacr_probe() -> u32;
    fn cpu_fpu_present() -> u32;
    fn cpu_probe_cache_insns() -> u32;
    fn cpu_probe_ttrs() -> u32;
    fn cpu_ttr_read(which: u32) -> u32;
    fn cpu_ttr_write(which: u32, value: u32);
    #[link_name = "cache_op"]
    fn machine_cache_op(kind: u32, addr: u32) -> u32;
    #[link_name = "dc_op"]
    fn machine_dc_op(op: u32, addr: u32);
    fn profile_cell_begin();
    fn profile_cell_end();
}

/// Register access through the machine layer's volatile loads and stores: a capability to
/// reach device registers, so only [`MachineBus::new`] (unsafe) makes one.
///
/// The machine layer loads and stores whatever address it is given (boot/machine.c,
/// `Z_machineZ_mmio_*`): a bus in safe hands could write any byte of RAM, the kernel's own
/// code included. Holders pass it only to device drivers for register blocks the board
/// describes (bootinfo, `board::virt::memmap`, the virtio probe).
#[derive(Clone, Copy)]
pub struct MachineBus {
    _capability: (),
}

impl MachineBus {
    /// # Safety
    ///
    /// Every address the holder, or a driver it hands the bus to, passes to the `Bus`
    /// methods must be a register of a device the board describes at that address (bootinfo's
    /// records, `board::virt::memmap`, a slot the virtio probe found), owned by that holder:
    /// never RAM, never another driver's registers.
    pub const unsafe fn new() -> Self {
        MachineBus { _capability: () }
    }
}

// SAFETY: each method is one call of a machine-layer import that performs exactly one
// volatile access of that width; import calls are opaque to the compiler, so they stay in
// program order.
unsafe impl Bus for MachineBus {
    // The 68k is big-endian and the virt board wires its devices' byte lanes straight.
    const BIG_ENDIAN: bool = true;
    fn read8(&self, addr: u32) -> u8 {
        // SAFETY: this bus exists only through `MachineBus::new`, whose caller promised that
        // `addr` is a register of its own device; a byte load there touches no Rust memory.
        unsafe { mmio_read8(addr) as u8 }
    }
    fn read16(&self, addr: u32) -> u16 {
        // SAFETY: `addr` is the holder's device register (`MachineBus::new`'s contract); the
        // 16-bit load is one bus cycle of the width the device's register defines.
        unsafe { mmio_read16(addr) as u16 }
    }
    #[inline]
    fn read32(&self, addr: u32) -> u32 {
        // SAFETY: `addr` is the holder's device register (`MachineBus::new`'s contract); a
        // load there reads the device, not memory any Rust reference covers.
        unsafe { mmio_read32(addr) }
    }
    fn write8(&self, addr: u32, value: u8) {
        // SAFETY: `addr` is the holder's device register (`MachineBus::new`'s contract), so
        // the store changes that device's state and no byte of RAM.
        unsafe { mmio_write8(addr, value.into()) }
    }
    fn write16(&self, addr: u32, value: u16) {
        // SAFETY: `addr` is the holder's device register (`MachineBus::new`'s contract), so
        // the store reaches the device and no RAM.
        unsafe { mmio_write16(addr, value.into()) }
    }
    #[inline]
    fn write32(&self, addr: u32, value: u32) {
        // SAFETY: `addr` is the holder's device register (`MachineBus::new`'s contract), so
        // the store reaches the device and no RAM.
        unsafe { mmio_write32(addr, value) }
    }
}

/// The processor's interrupt mask, through the machine layer.
pub struct MachineIpl;

impl IplControl for MachineIpl {
    #[inline]
    fn get(&self) -> u8 {
        // SAFETY: the import reads SR (move from SR, privileged: the kernel runs in
        // supervisor mode) and changes nothing.
        unsafe { ipl_get() as u8 }
    }
    #[inline]
    unsafe fn set(&self, level: u8) {
        // SAFETY: the import changes only SR's interrupt mask; what lowering it lets run is
        // the caller's obligation (this trait method's contract).
        unsafe { ipl_set(level.into()) }
    }
}

pub static MACHINE_IPL: MachineIpl = MachineIpl;

/// A raised interrupt mask; see [`crate::arch::m68k::ipl::IplGuard`].
pub type IrqGuard = IplGuard<'static, MachineIpl>;

/// Masks every interrupt until the guard drops. Needed around anything shared with
/// interrupt handlers, because atomics on wasm32v1-none are plain loads and stores.
#[inline]
pub fn mask_interrupts() -> IrqGuard {
    IplGuard::raise(&MACHINE_IPL, 7)
}

/// Runs `f` with every interrupt masked and puts back the level it found: the leaf form of
/// [`mask_interrupts`] (one machine call on entry and one on exit, no guard), for short
/// sections that nest no guard of their own, such as the clock's read.
#[inline]
pub fn masked<R>(f: impl FnOnce() -> R) -> R {
    // SAFETY: raising the mask only keeps handlers from running.
    let previous = unsafe { ipl_raise_all() };
    let r = f();
    // SAFETY: the level found on entry, restored on exit: anything `f` raised it for has
    // ended (a guard raised inside `f` dropped before `f` returned), so lowering it back
    // lets run exactly what could run before the call.
    unsafe { ipl_set(previous) };
    r
}

/// A goldfish RTC's time (ns, as its TIME_LOW/TIME_HIGH pair reads) in one machine call that
/// keeps the pair whole (interrupts masked between the two loads).
///
/// # Safety
///
/// `base` must be the register block of a goldfish RTC (its first two registers are
/// TIME_LOW and TIME_HIGH, whose reads change nothing but TIME_HIGH's latch).
#[inline]
pub unsafe fn rtc_read(base: u32) -> u64 {
    // SAFETY: the caller's contract: two loads from that RTC's time registers.
    unsafe { self::rtc_read_import(base) }
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

/// Lowers the IPL to 0 and stops the CPU until an interrupt arrives, in one instruction
/// (68k `stop #0x2000`): an interrupt that became pending while the caller had them masked
/// is taken at once, not lost. The IPL is 0 afterwards.
///
/// # Safety
///
/// As [`IplControl::set`] to 0: handlers of every level run from here, so the caller holds
/// nothing they take (no `IrqMutex` guard, no state mid-update); an `IplGuard` it raised must
/// be forgotten, not dropped, since the level it would restore is no longer current.
pub unsafe fn wait_for_interrupt() {
    // SAFETY: the caller's contract covers what handlers may now see; `stop` changes only SR
    // and waits.
    unsafe { idle() }
}

/// Physical address of wasm linear memory's byte 0.
pub fn linear_memory_base() -> u32 {
    // SAFETY: the import returns a link-time address (linker.ld's __linear_memory_base) and
    // touches nothing.
    unsafe { linear_base() }
}

/// The end of RAM as the machine layer found it (it bounds linear memory growth).
pub fn machine_ram_end() -> u32 {
    // SAFETY: the import returns a value the machine layer stored once at start-up, before
    // Rust ran; reading it has no effect.
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
///
/// # Safety
///
/// `tty` and `ctrl` must be the goldfish TTY's and virt-ctrl's register blocks: the machine
/// layer writes their registers when it reports a fault Rust cannot.
pub unsafe fn set_fallback(tty: u32, ctrl: u32) {
    // SAFETY: the caller's contract covers both addresses; the import only stores them.
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
            // SAFETY: the import returns the program counter the trap stored before the
            // longjmp back to `catch_test`; reading it has no effect.
            let pc = unsafe { last_trap_pc() };
            Caught::Trapped { code: code - 2, pc }
        }
    }
}

/// Leaves the running caught test (from the panic handler). Returns if no test is running.
///
/// # Safety
///
/// The frames between here and [`catch`] are abandoned without running their destructors:
/// call it only from the panic handler, for the test whose panic it reports, after which
/// nothing of those frames is used (locks they hold stay held; the harness puts back the
/// interrupt state it saved).
pub unsafe fn unwind_test() {
    // SAFETY: the machine layer longjmps to catch() only while one is active (else this
    // returns); abandoning the frames is this function's caller's contract.
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
    // SAFETY: `movec cacr,d0` exists on every CPU this kernel runs on (entry.S refuses
    // those without a CACR) and reading it changes nothing.
    unsafe { cpu_cacr_read() }
}

/// Writes the CACR.
///
/// # Safety
///
/// `value` holds only bits the identified CPU defines (MC68040UM 7.2, MC68030UM 6.3.1), and
/// no dirty data cache line may be lost by it: before a write that disables or clears the
/// data cache in copyback mode, the caller has pushed it with interrupts masked since.
pub unsafe fn cacr_write(value: u32) {
    // SAFETY: the caller's contract covers the value and the cache contents; the import is
    // one `movec` to CACR.
    unsafe { cpu_cacr_write(value) }
}

/// Pushes and invalidates both caches and turns them off (CACR = 0) in one machine-layer
/// routine: interrupts masked, nothing written to memory between the push and the CACR
/// write, so no dirty line is left in a cache that no longer answers.
///
/// # Safety
///
/// Only where `cpu::Identity::cache_insns` is true (CPUSHA takes an F-line trap elsewhere).
pub unsafe fn cache_off_040() {
    // SAFETY: the caller checked the CPU; the routine loses no data (push before off).
    unsafe { cpu_cache_off_040() }
}

/// The CACR's writable bits (all ones written, read back, caches left off). Probed by the
/// first call only; later calls return that answer and touch no register.
pub fn cacr_probe() -> u32 {
    static MASK: spin::Once<u32> = spin::Once::new();
    *MASK.call_once(|| {
        // SAFETY: the probe writes the CACR (all ones, then 0) with interrupts masked, which
        // loses nothing while no cache was ever enabled. This is the first call of the boot:
        // `cpu::identify` makes it before anything else, and `cache::enable` cannot run
        // before identification (it needs `cpu::identity`), so no cache is on yet.
        unsafe { cpu_cacr_probe() }
    })
}

/// Whether the boot-time FPU probe found an FPU.
pub fn fpu_present() -> bool {
    // SAFETY: the import returns a flag the FPU probe set once at start-up, before Rust ran.
    unsafe { cpu_fpu_present() != 0 }
}

/// Whether CINV/CPUSH execute (false: they took an F-line trap). Only for a CPU that has
/// them architecturally (68040, 68060). Probed by the first call only; later calls return
/// that answer and execute nothing.
pub fn probe_cache_insns() -> bool {
    static FOUND: spin::Once<bool> = spin::Once::new();
    *FOUND.call_once(|| {
        // SAFETY: CPUSHA/CINVA with interrupts masked lose nothing while no cache was ever
        // enabled, and this first call is `cpu::identify`'s, which precedes any
        // `cache::enable` (that needs the identity); a trap is resumed after the instruction
        // by the machine layer.
        unsafe { cpu_probe_cache_insns() != 0 }
    })
}

/// Whether movec from/to ITT0-1 and DTT0-1 executes (false: illegal instruction). Only for
/// a 68040 or 68060: on the 68020/68030 these encodings are not these registers.
pub fn probe_ttrs() -> bool {
    // SAFETY: the probe only reads the four registers and writes back what it read, with
    // interrupts masked; a trap is resumed after the instruction by the machine layer.
    unsafe { cpu_probe_ttrs() != 0 }
}

/// Reads a 68040 transparent translation register (0 ITT0, 1 ITT1, 2 DTT0, 3 DTT1; the
/// machine layer masks `which` to 0..=3).
///
/// # Safety
///
/// Only where `cpu::Identity::ttrs` is true (68040; a 68060 on silicon): elsewhere these
/// `movec` encodings are other registers or an illegal instruction.
pub unsafe fn ttr_read(which: u32) -> u32 {
    // SAFETY: the caller checked `Identity::ttrs`; reading a TTR has no effect.
    unsafe { cpu_ttr_read(which) }
}

/// Writes a 68040 transparent translation register.
///
/// # Safety
///
/// As [`ttr_read`]; and `value` must keep every range the kernel touches reachable with the
/// cache mode its users rely on: RAM cacheable as the cache module set it, the board's device
/// window (`board::virt::memmap`) cache-inhibited and serialized (MC68040UM 3.3, 4.2), or MMIO reads would
/// hit stale lines.
pub unsafe fn ttr_write(which: u32, value: u32) {
    // SAFETY: the caller's contract; the import is one `movec` to the selected TTR.
    unsafe { cpu_ttr_write(which, value) }
}

/// Executes one 68040 cache instruction (encoding byte from `cache::Step::encoding`).
/// Returns true when the machine layer refused an unknown encoding (nothing executed).
///
/// # Safety
///
/// Only where `cpu::Identity::cache_insns` is true (else an F-line trap). An invalidate
/// (CINV) discards dirty lines: the caller must know that no line it covers holds data
/// anyone needs (pushed first, or owned by a device about to overwrite it: bus_dma PREREAD).
#[inline(always)]
pub unsafe fn cache_op(kind: u32, addr: u32) -> bool {
    // SAFETY: the caller's contract covers the CPU and what the operation may discard.
    unsafe { machine_cache_op(kind, addr) != 0 }
}

pub use super::cache::DcOp;

/// Executes one 68040 data-cache instruction straight from the import (no
/// dispatch table, nothing to refuse: every [`DcOp`] names one instruction). For hot paths
/// whose instructions were decided ahead of time (the benchmark's floor); everything else
/// goes through [`cache_op`].
///
/// # Safety
///
/// As [`cache_op`]: only where `cpu::Identity::cache_insns` is true, and an invalidate
/// discards the lines it covers, so nobody may need their data.
#[inline(always)]
pub unsafe fn dc_op(op: DcOp, addr: u32) {
    // SAFETY: the caller's contract covers the CPU and what the operation may discard.
    unsafe { machine_dc_op(op as u32, addr) }
}

/// A compiler barrier across which GCC cannot move loads or stores of linear memory
/// (toolchain.md rule 3): a call of the machine layer's import, which the xtask replaces in
/// the generated C with an empty asm with a memory clobber (`rewrite::inline_barrier`).
/// Every DMA sync makes one.
#[inline(always)]
pub fn compiler_barrier() {
    // SAFETY: an empty function.
    unsafe { barrier() }
}

/// Marks the start of a benchmark cell for `cargo xtask profile`: its plugin counts guest
/// instructions from the entry of the machine layer's `Z_machineZ_profile_cell_begin` (found
/// by that symbol in kernel.elf) up to the entry of `Z_machineZ_profile_cell_end`. Costs a
/// call and one store; nothing reads what it stores.
pub fn profile_mark_cell_begin() {
    // SAFETY: the import stores a constant to a machine-layer variable nothing reads.
    unsafe { profile_cell_begin() }
}

/// Marks the end of a benchmark cell (see [`profile_mark_cell_begin`]).
pub fn profile_mark_cell_end() {
    // SAFETY: as `profile_mark_cell_begin`.
    unsafe { profile_cell_end() }
}
