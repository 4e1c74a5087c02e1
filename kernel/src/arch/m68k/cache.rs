//! Cache control: one interface, the cheapest correct sequence for the identified CPU.
//!
//! Owns: the CACR enable bits per model and mode, the 68040 transparent translation registers
//! (the cache mode of RAM and of the device window, with the MMU off), and range/whole-cache
//! maintenance. The range planner for the 68040 is pure and host-tested; the executor runs
//! its steps with machine-layer instructions.
//!
//! Rules the planner keeps:
//! - CINV (discard) only on memory entirely inside the range: a partial line or page at an
//!   edge may hold CPU data outside the range, so it is pushed (CPUSH), never discarded.
//! - CPUSH on the 68040 writes dirty lines back *and* invalidates them, so a push is also a
//!   push+invalidate; pushing more than asked is only slower, never wrong.
//! - Never CINVA for a range (it would drop other dirty data): long ranges use CPUSHA.
//!
//! The 68030's data cache is write-through (push has nothing to do) and can only be cleared
//! whole (CACR CD). The 68020 has an instruction cache only: data maintenance is nothing.
//! The 68060 has the 68040's CINV/CPUSH (CPUSH also invalidates while CACR DPI is 0, which
//! is how it is run), so it shares the 68040 planner; QEMU's 68060 traps them (F-line) and
//! rejects ITT/DTT, so both are probed at boot and skipped where they trap (QEMU models no
//! caches, so nothing is lost). Its PCR is never touched (movec PCR aborts QEMU).

use crate::arch::m68k::cpu::Model;

pub const LINE: u32 = 16;
pub const PAGE: u32 = 4096;
/// A fully covered page costs about as much to maintain by page as this many line ops.
pub const PAGE_OP_MIN_LINES: u32 = 32;
/// From this many bytes on, one whole-cache push beats page-by-page work (4x the 68040's
/// 4 KiB data cache).
pub const ALL_OP_MIN_BYTES: u32 = 16 * 1024;

/// One 68040 data-cache instruction: the operand of `machine::dc_op`. The discriminants are the
/// machine layer's selector (bit 0 push, bit 1 page, bit 2 the whole cache; boot/cpu.S,
/// `Z_machineZ_dc_op`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u32)]
pub enum DcOp {
    /// CINVL DC: discard the line.
    InvalidateLine = 0,
    /// CPUSHL DC: write the line back if dirty, then discard it.
    PushLine = 1,
    /// CINVP DC: discard the page's lines.
    InvalidatePage = 2,
    /// CPUSHP DC: write the page's dirty lines back, then discard them.
    PushPage = 3,
    /// CPUSHA DC: write every dirty line back, then discard them all (the address is
    /// ignored).
    PushAll = 4,
}

impl DcOp {
    /// The line (`page` false) or page instruction of one data-cache step: CPUSH when
    /// `push`, else CINV. The selector is boot/cpu.S's bit 0 push, bit 1 page.
    #[inline(always)]
    pub fn data(push: bool, page: bool) -> DcOp {
        match (push, page) {
            (false, false) => DcOp::InvalidateLine,
            (true, false) => DcOp::PushLine,
            (false, true) => DcOp::InvalidatePage,
            (true, true) => DcOp::PushPage,
        }
    }
}

/// What a range operation must achieve for the data at [addr, addr + len).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeOp {
    /// Make memory hold the CPU's writes (before a device reads it).
    Push,
    /// Make the CPU's next read come from memory (before/after a device writes it).
    Invalidate,
    /// Both.
    PushInvalidate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caches {
    Data,
    Instruction,
    Both,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Line,
    Page,
    All,
}

/// One 68040 cache instruction: CPUSH when `push`, else CINV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub push: bool,
    pub scope: Scope,
    pub caches: Caches,
    /// Physical address (ignored for Scope::All).
    pub addr: u32,
}

impl Step {
    /// The middle byte of the instruction's encoding (cache<<6 | push<<5 | scope<<3).
    pub fn encoding(&self) -> u32 {
        let cache = match self.caches {
            Caches::Data => 1,
            Caches::Instruction => 2,
            Caches::Both => 3,
        };
        let scope = match self.scope {
            Scope::Line => 1,
            Scope::Page => 2,
            Scope::All => 3,
        };
        cache << 6 | u32::from(self.push) << 5 | scope << 3
    }
}

/// Plans `op` over [addr, addr + len) on the 68040's `caches`, calling `emit` per instruction.
pub fn plan_040(op: RangeOp, caches: Caches, addr: u32, len: u32, emit: &mut dyn FnMut(Step)) {
    if len == 0 {
        return;
    }
    // u64: a range may end exactly at 4 GiB.
    let (start, end) = (u64::from(addr), u64::from(addr) + u64::from(len));
    let (line_size, page_size) = (u64::from(LINE), u64::from(PAGE));
    // The I-cache holds no dirty data: discarding it anywhere is safe, pushing it is moot.
    let discard_anywhere = caches == Caches::Instruction;
    if len >= ALL_OP_MIN_BYTES {
        emit(Step {
            push: !discard_anywhere,
            scope: Scope::All,
            caches,
            addr: 0,
        });
        return;
    }
    let mut page = start & !(page_size - 1);
    while page < end {
        let page_end = page + page_size;
        let lo = start.max(page);
        let hi = end.min(page_end);
        let first_line = lo & !(line_size - 1);
        let lines = (hi - first_line).div_ceil(line_size);
        if lines >= u64::from(PAGE_OP_MIN_LINES) {
            // Discard a page only when all of it is inside the range.
            let whole_page = lo == page && hi == page_end;
            let push = !discard_anywhere && (op != RangeOp::Invalidate || !whole_page);
            emit(Step {
                push,
                scope: Scope::Page,
                caches,
                addr: page as u32,
            });
        } else {
            let mut line = first_line;
            while line < hi {
                let whole_line = line >= start && line + line_size <= end;
                let push = !discard_anywhere && (op != RangeOp::Invalidate || !whole_line);
                emit(Step {
                    push,
                    scope: Scope::Line,
                    caches,
                    addr: line as u32,
                });
                line += line_size;
            }
        }
        page = page_end;
    }
}

/// Cache mode for RAM (kernel option `cache=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Copyback,
    WriteThrough,
    Off,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Copyback => "copyback",
            Mode::WriteThrough => "writethrough",
            Mode::Off => "off",
        }
    }
}

pub mod cacr030 {
    pub const EI: u32 = 0x0001;
    pub const FI: u32 = 0x0002;
    pub const CEI: u32 = 0x0004;
    pub const CI: u32 = 0x0008;
    pub const IBE: u32 = 0x0010;
    pub const ED: u32 = 0x0100;
    pub const FD: u32 = 0x0200;
    pub const CED: u32 = 0x0400;
    pub const CD: u32 = 0x0800;
    pub const DBE: u32 = 0x1000;
    pub const WA: u32 = 0x2000;
}

/// MC68020 user's manual 7.3.1: E(nable), F(reeze), CE (clear entry), C (clear all).
pub mod cacr020 {
    pub const EI: u32 = 0x0001;
    pub const FI: u32 = 0x0002;
    pub const CEI: u32 = 0x0004;
    pub const CI: u32 = 0x0008;
}

pub mod cacr040 {
    pub const DE: u32 = 0x8000_0000;
    pub const IE: u32 = 0x0000_8000;
}

/// MC68060 user's manual 5.3.1.
pub mod cacr060 {
    /// Enable data cache.
    pub const EDC: u32 = 1 << 31;
    /// No allocate (data cache).
    pub const NAD: u32 = 1 << 30;
    /// Enable store buffer (used only for write-through and imprecise cache-inhibited pages:
    /// the device window is precise, DTT0 below).
    pub const ESB: u32 = 1 << 29;
    /// Disable CPUSH invalidation: kept 0, the planner counts on CPUSH invalidating.
    pub const DPI: u32 = 1 << 28;
    /// Half data cache mode.
    pub const FOC: u32 = 1 << 27;
    /// Enable branch cache.
    pub const EBC: u32 = 1 << 23;
    /// Clear all branch cache entries (strobe).
    pub const CABC: u32 = 1 << 22;
    /// Clear user branch cache entries (strobe).
    pub const CUBC: u32 = 1 << 21;
    /// Enable instruction cache.
    pub const EIC: u32 = 1 << 15;
    pub const NAI: u32 = 1 << 14;
    pub const FIC: u32 = 1 << 13;
}

/// The CACR value that enables the caches in `mode` (burst fill and write-allocate on the
/// 68030, whose data cache is write-through whatever `mode` says; the 68020 has only an
/// instruction cache; the 68060's store buffer and branch cache are on, CPUSH invalidates).
pub fn cacr_enable_bits(model: Model, mode: Mode) -> u32 {
    match (model, mode) {
        (_, Mode::Off) => 0,
        (Model::M68020, _) => cacr020::EI,
        (Model::M68030, _) => {
            use cacr030::*;
            EI | IBE | ED | DBE | WA
        }
        (Model::M68040, _) => cacr040::DE | cacr040::IE,
        (Model::M68060, _) => {
            use cacr060::*;
            EDC | ESB | EBC | EIC
        }
    }
}

/// The CACR's clear strobes: written with the enable bits to start from empty caches, kept
/// by QEMU once written (silicon reads them as zero), so never part of what is compared.
pub fn cacr_strobes(model: Model) -> u32 {
    match model {
        Model::M68020 => cacr020::CEI | cacr020::CI,
        Model::M68030 => cacr030::CEI | cacr030::CI | cacr030::CED | cacr030::CD,
        Model::M68040 => 0,
        Model::M68060 => cacr060::CABC | cacr060::CUBC,
    }
}

/// The strobes `enable` writes with the enable bits (clear every cache it cannot clear with
/// an instruction).
pub fn cacr_clear_on_enable(model: Model) -> u32 {
    match model {
        Model::M68020 => cacr020::CI,
        Model::M68030 => cacr030::CD | cacr030::CI,
        Model::M68040 => 0,
        Model::M68060 => cacr060::CABC,
    }
}

/// Whether a data cache exists at all (bus_dma syncs on a CPU without one are barriers).
pub fn has_data_cache(model: Model) -> bool {
    model != Model::M68020
}

/// 68040 transparent translation register values, with the MMU off:
/// (ITT0, ITT1, DTT0, DTT1) (MC68040UM 3.3.1: base byte 31-24, mask 23-16, E 15, S 14-13,
/// CM 6-5).
///
/// DTT0 maps the board's device window, the 16 MiB from `device_window` (its top byte is the
/// TTR's base, mask 0), cache-inhibited, serialized (device registers must be neither cached
/// nor reordered); DTT1 maps 0x00000000-0x7fffffff (RAM) in `mode`. ITT0 lets instructions be
/// cached from RAM; ITT1 keeps the device window uncached. All match supervisor and user
/// accesses (S field = ignore). Low 24 bits of `device_window` are ignored.
pub fn ttr_values(mode: Mode, device_window: u32) -> [u32; 4] {
    const ENABLE: u32 = 0x8000;
    const S_IGNORE: u32 = 0x4000;
    const CM_WRITETHROUGH: u32 = 0x00;
    const CM_COPYBACK: u32 = 0x20;
    const CM_INHIBIT_SERIALIZED: u32 = 0x40;
    let ram = 0x007f_0000 | ENABLE | S_IGNORE; // base 0x00, mask 0x7f
    let devices = (device_window & (0xff << 24)) | ENABLE | S_IGNORE; // its base byte, mask 0x00
    let ram_mode = match mode {
        Mode::Copyback => CM_COPYBACK,
        Mode::WriteThrough => CM_WRITETHROUGH,
        Mode::Off => CM_INHIBIT_SERIALIZED,
    };
    [
        ram | CM_WRITETHROUGH,
        devices | CM_INHIBIT_SERIALIZED,
        devices | CM_INHIBIT_SERIALIZED,
        ram | ram_mode,
    ]
}

#[cfg(target_arch = "wasm32")]
pub use exec::*;

#[cfg(target_arch = "wasm32")]
mod exec {
    use super::*;
    use crate::arch::m68k::machine;
    use core::sync::atomic::{AtomicU32, Ordering};

    /// The CACR enable bits as programmed (the 68030's CD/CI strobes are not kept).
    static ENABLED: AtomicU32 = AtomicU32::new(0);
    /// The mode last given to `enable` (Off after `disable`); a lock that masks, like every
    /// lock of state an interrupt handler might read.
    static MODE: machine::IrqMutex<Mode> = machine::irq_mutex(Mode::Off);

    fn model() -> Model {
        crate::arch::m68k::cpu::identity().model
    }

    /// Whether CINV/CPUSH run here: the 68040, and a 68060 whose probe did not trap.
    #[inline(always)]
    fn cache_insns() -> bool {
        crate::arch::m68k::cpu::cache_insns()
    }

    /// The four transparent translation registers (ITT0, ITT1, DTT0, DTT1), or `None` on a
    /// CPU without them (68020, 68030; QEMU's 68060, whose movec to them is illegal).
    pub fn read_ttrs() -> Option<[u32; 4]> {
        if !crate::arch::m68k::cpu::identity().ttrs {
            return None;
        }
        // SAFETY: identification found the TTRs on this CPU (checked just above); reading one
        // has no effect on the machine.
        Some([0, 1, 2, 3].map(|which| unsafe { machine::ttr_read(which) }))
    }

    /// Sets the RAM/device cache modes (68040, 68060 where its ITT/DTT exist) and enables the
    /// caches in `mode` (`Mode::Off`: [`disable`], then RAM's mode); `device_window` is the
    /// 16 MiB-aligned start of the board's device registers (see [`ttr_values`]).
    ///
    /// # Safety
    ///
    /// `device_window` must be the board's device window (`board::virt::memmap::DEVICE_WINDOW`):
    /// every device register must lie in the 16 MiB from it, or a register would be cached.
    pub unsafe fn enable(mode: Mode, device_window: u32) {
        let id = crate::arch::m68k::cpu::identity();
        let set_ttrs = || {
            if id.ttrs {
                for (which, value) in ttr_values(mode, device_window).into_iter().enumerate() {
                    // SAFETY: identification found the TTRs; `ttr_values` keeps RAM cacheable
                    // in `mode` and the device window (this function's contract)
                    // cache-inhibited, serialized (tested against the manual's fields).
                    unsafe { machine::ttr_write(which as u32, value) };
                }
            }
        };
        if mode == Mode::Off {
            // Off first (pushed, masked), then RAM inhibited: inhibiting RAM while dirty lines
            // exist would make reads bypass the newest data.
            disable();
            set_ttrs();
            return;
        }
        set_ttrs();
        if id.cache_insns {
            // Nothing may be cached from before the modes were set.
            // SAFETY: CINV/CPUSH work here (identified); a push-all discards nothing.
            unsafe {
                execute(Step {
                    push: true,
                    scope: Scope::All,
                    caches: Caches::Both,
                    addr: 0,
                })
            };
        }
        let bits = cacr_enable_bits(id.model, mode);
        ENABLED.store(bits, Ordering::Relaxed);
        *MODE.lock() = mode;
        // SAFETY: bits the model defines (`cacr_enable_bits`, tested against the manuals);
        // enabling loses nothing, and the clear bits (68020/68030) only drop lines of a cache
        // that was off and write-through.
        unsafe { machine::cacr_write(bits | cacr_clear_on_enable(id.model)) };
    }

    /// How [`disable`] turns the caches off on a model.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(super) enum Off {
        /// One machine-layer routine: CPUSHA %bc and CACR = 0 with interrupts masked and no
        /// memory write between (a copyback line dirtied after a separate push would be left
        /// in a cache that no longer answers).
        PushAndOff,
        /// CACR = 0: the 68020/68030 data caches write through, so nothing can be lost.
        CacrZero,
    }

    pub(super) fn off_for(has_040_cache_insns: bool) -> Off {
        if has_040_cache_insns {
            Off::PushAndOff
        } else {
            Off::CacrZero
        }
    }

    /// Pushes everything and turns the caches off.
    pub fn disable() {
        ENABLED.store(0, Ordering::Relaxed);
        *MODE.lock() = Mode::Off;
        match off_for(cache_insns()) {
            // SAFETY: `cache_insns` says CPUSHA works here.
            Off::PushAndOff => unsafe { machine::cache_off_040() },
            // SAFETY: 0 is valid on every model, and these caches hold no dirty data.
            Off::CacrZero => unsafe { machine::cacr_write(0) },
        }
    }

    /// The mode the caches are in (as last enabled; Off after `disable`).
    pub fn mode() -> Mode {
        *MODE.lock()
    }

    /// The CACR enable bits last programmed.
    pub fn enabled_bits() -> u32 {
        ENABLED.load(Ordering::Relaxed)
    }

    /// Executes `step` (only where `cache_insns()`; the callers check).
    ///
    /// # Safety
    ///
    /// An invalidate without push discards the lines it covers: nobody may need their data.
    #[inline(always)]
    unsafe fn execute(step: Step) {
        // SAFETY: the callers check `cache_insns()`; what the step may discard is this
        // function's caller's contract.
        unsafe { execute_encoded(step.encoding(), step.addr) }
    }

    /// Executes the cache instruction whose opcode middle byte is `kind` (see
    /// [`Step::encoding`]). A kind the machine layer refuses is a kernel bug that would
    /// silently skip cache maintenance, so it ends the kernel, release build or not.
    ///
    /// # Safety
    ///
    /// As [`machine::cache_op`]: only where CINV/CPUSH run, and an invalidate discards the
    /// lines it covers, so nobody may need their data. (A refused kind executes nothing.)
    #[inline(always)]
    pub unsafe fn execute_encoded(kind: u32, addr: u32) {
        // SAFETY: the caller's contract is `cache_op`'s.
        let refused = unsafe { machine::cache_op(kind, addr) };
        if refused {
            refused_op(kind, addr);
        }
    }

    // Out of line: formatting `kind` and `addr` in the caller would give them addresses, and
    // every cache instruction would store both to linear memory first.
    #[cold]
    #[inline(never)]
    fn refused_op(kind: u32, addr: u32) -> ! {
        panic!("machine layer refused cache op {kind:#04x} at {addr:#010x}")
    }

    /// Runs one 68040-style data-cache step (from a plan) on the real cache. A compiler
    /// barrier whether or not the CPU has the instruction (DMA syncs rely on it).
    ///
    /// # Safety
    ///
    /// Without `push`, the line or page at `addr` is discarded: nobody may need the CPU's
    /// writes to it (bus_dma PREREAD: the device owns it and is about to write it).
    #[inline(always)]
    pub unsafe fn execute_040_data(push: bool, scope: Scope, addr: u32) {
        if !cache_insns() {
            machine::compiler_barrier();
            return;
        }
        // Line and page steps (every step a request's sync takes) go straight to the machine
        // layer's data-cache entry, which has nothing to refuse; the whole cache through the
        // checked table.
        let op = match scope {
            Scope::Line => DcOp::data(push, false),
            Scope::Page => DcOp::data(push, true),
            Scope::All => {
                // SAFETY: CINV/CPUSH work here (checked); the discard is the caller's contract.
                unsafe {
                    execute(Step {
                        push,
                        scope,
                        caches: Caches::Data,
                        addr,
                    })
                };
                return;
            }
        };
        // SAFETY: CINV/CPUSH work here (checked above); what an invalidate discards is this
        // function's caller's contract.
        unsafe { machine::dc_op(op, addr) };
    }

    /// # Safety
    ///
    /// For `RangeOp::Invalidate`, nobody may need the CPU's writes in [addr, addr + len)
    /// (the planner pushes partial lines at the edges, so only whole lines inside are lost).
    unsafe fn data_range(op: RangeOp, addr: u32, len: u32) {
        match model() {
            Model::M68040 | Model::M68060 if cache_insns() => {
                plan_040(op, Caches::Data, addr, len, &mut |s| {
                    // SAFETY: CINV/CPUSH work here; the plan discards only whole lines inside
                    // the range (tested), which the caller's contract covers.
                    unsafe { execute(s) }
                })
            }
            // Write-through: memory already has every write; only discarding remains, and
            // the 68030 can only clear its whole (256-byte) data cache.
            Model::M68030 if op != RangeOp::Push && len != 0 => {
                // SAFETY: the enabled bits plus CD, valid on the 68030; its write-through
                // data cache holds nothing memory lacks, so clearing it loses nothing.
                unsafe { machine::cacr_write(ENABLED.load(Ordering::Relaxed) | cacr030::CD) };
            }
            // A 68030 push (nothing to do), no data cache (68020), or QEMU's 68060 whose
            // CINV/CPUSH trap (it models no caches, so there is nothing to maintain).
            _ => {}
        }
    }

    /// Writes the CPU's cached writes in [addr, addr + len) (physical) back to memory.
    pub fn push_range(addr: u32, len: u32) {
        // SAFETY: a push writes the CPU's newest data to memory and keeps it: no line is
        // dropped, so no write can be lost.
        unsafe { data_range(RangeOp::Push, addr, len) };
    }

    /// Makes the CPU's next reads of [addr, addr + len) come from memory. Partial lines at
    /// the edges are pushed first, never discarded.
    ///
    /// # Safety
    ///
    /// The CPU's writes to whole lines inside the range are discarded: nobody may need them.
    pub unsafe fn invalidate_range(addr: u32, len: u32) {
        // SAFETY: what the invalidate may discard is exactly what this function's caller
        // vouched nobody needs; `data_range` pushes the partial lines at the edges.
        unsafe { data_range(RangeOp::Invalidate, addr, len) };
    }

    /// Pushes the range, then invalidates it: memory keeps every write.
    pub fn push_invalidate_range(addr: u32, len: u32) {
        // SAFETY: every line is pushed before it is invalidated: nothing is lost.
        unsafe { data_range(RangeOp::PushInvalidate, addr, len) };
    }

    /// Pushes and invalidates the whole data cache. A compiler barrier whatever the CPU
    /// (DMA syncs rely on it).
    pub fn push_invalidate_all() {
        match model() {
            // SAFETY: CINV/CPUSH work here, and a push-all discards nothing.
            Model::M68040 | Model::M68060 if cache_insns() => unsafe {
                execute(Step {
                    push: true,
                    scope: Scope::All,
                    caches: Caches::Data,
                    addr: 0,
                })
            },
            // SAFETY: the enabled bits plus CD on a 68030, whose write-through data cache
            // holds nothing memory lacks.
            Model::M68030 => unsafe {
                machine::cacr_write(ENABLED.load(Ordering::Relaxed) | cacr030::CD)
            },
            _ => machine::compiler_barrier(),
        }
    }

    /// Discards the whole instruction cache (after writing code, e.g. a loaded module).
    pub fn invalidate_instruction_all() {
        match model() {
            // SAFETY: CINV/CPUSH work here; the instruction cache holds no writes to lose.
            Model::M68040 | Model::M68060 if cache_insns() => unsafe {
                execute(Step {
                    push: false,
                    scope: Scope::All,
                    caches: Caches::Instruction,
                    addr: 0,
                })
            },
            // SAFETY: the enabled bits plus CI (68030 layout); an instruction cache clear
            // loses no data.
            Model::M68030 => unsafe {
                machine::cacr_write(ENABLED.load(Ordering::Relaxed) | cacr030::CI)
            },
            // SAFETY: the enabled bits plus CI (68020 layout); the 68020 has only an
            // instruction cache, so no data can be lost.
            Model::M68020 => unsafe {
                machine::cacr_write(ENABLED.load(Ordering::Relaxed) | cacr020::CI)
            },
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;
    use std::vec::Vec;

    fn plan(op: RangeOp, addr: u32, len: u32) -> Vec<Step> {
        let mut v = Vec::new();
        plan_040(op, Caches::Data, addr, len, &mut |s| v.push(s));
        v
    }

    fn line(push: bool, addr: u32) -> Step {
        Step {
            push,
            scope: Scope::Line,
            caches: Caches::Data,
            addr,
        }
    }

    /// Every byte of the range is covered by some step, for every shape.
    fn covers(steps: &[Step], addr: u32, len: u32) -> bool {
        (addr..addr + len).all(|b| {
            steps.iter().any(|s| match s.scope {
                Scope::All => true,
                Scope::Page => b & !(PAGE - 1) == s.addr,
                Scope::Line => b & !(LINE - 1) == s.addr,
            })
        })
    }

    /// No step discards a byte outside the range.
    fn discards_only_inside(steps: &[Step], addr: u32, len: u32) -> bool {
        steps.iter().filter(|s| !s.push).all(|s| match s.scope {
            Scope::All => false,
            Scope::Page => s.addr >= addr && s.addr + PAGE <= addr + len,
            Scope::Line => s.addr >= addr && s.addr + LINE <= addr + len,
        })
    }

    #[test]
    fn empty_range_does_nothing() {
        assert!(plan(RangeOp::Invalidate, 0x1000, 0).is_empty());
    }

    #[test]
    fn single_byte_invalidate_pushes_its_line() {
        assert_eq!(
            plan(RangeOp::Invalidate, 0x1003, 1),
            vec![line(true, 0x1000)]
        );
    }

    #[test]
    fn aligned_lines_are_discarded_partial_edges_pushed() {
        assert_eq!(
            plan(RangeOp::Invalidate, 0x2008, 0x30),
            vec![
                line(true, 0x2000),
                line(false, 0x2010),
                line(false, 0x2020),
                line(true, 0x2030)
            ]
        );
        assert_eq!(
            plan(RangeOp::Invalidate, 0x2000, 0x20),
            vec![line(false, 0x2000), line(false, 0x2010)]
        );
    }

    #[test]
    fn push_uses_cpush_everywhere() {
        assert!(plan(RangeOp::Push, 0x2000, 0x100).iter().all(|s| s.push));
        assert!(plan(RangeOp::PushInvalidate, 0x2004, 0x100)
            .iter()
            .all(|s| s.push));
    }

    #[test]
    fn whole_pages_use_page_ops_and_may_be_discarded() {
        let steps = plan(RangeOp::Invalidate, 0x3000, 2 * PAGE);
        assert_eq!(
            steps,
            vec![
                Step {
                    push: false,
                    scope: Scope::Page,
                    caches: Caches::Data,
                    addr: 0x3000
                },
                Step {
                    push: false,
                    scope: Scope::Page,
                    caches: Caches::Data,
                    addr: 0x4000
                },
            ]
        );
    }

    #[test]
    fn long_partial_page_is_pushed_by_page_not_discarded() {
        // 0x3800..0x4c00: half of one page (128 lines) and a quarter of the next (64 lines).
        let steps = plan(RangeOp::Invalidate, 0x3800, 0x1400);
        assert_eq!(steps.len(), 2);
        assert!(steps.iter().all(|s| s.scope == Scope::Page && s.push));
    }

    #[test]
    fn long_ranges_push_all_never_discard_all() {
        for op in [RangeOp::Push, RangeOp::Invalidate, RangeOp::PushInvalidate] {
            assert_eq!(
                plan(op, 0x10_0000, ALL_OP_MIN_BYTES),
                vec![Step {
                    push: true,
                    scope: Scope::All,
                    caches: Caches::Data,
                    addr: 0
                }]
            );
        }
    }

    #[test]
    fn instruction_cache_is_discarded_anywhere() {
        let mut v = Vec::new();
        plan_040(
            RangeOp::Invalidate,
            Caches::Instruction,
            0x1003,
            0x20,
            &mut |s| v.push(s),
        );
        assert!(v.iter().all(|s| !s.push && s.caches == Caches::Instruction));
        assert_eq!(v.len(), 3);
    }

    #[test]
    fn every_shape_is_covered_and_discards_stay_inside() {
        let starts = [0x1000u32, 0x1001, 0x100f, 0x1010, 0x17f8, 0x1ff0, 0x1fff];
        let lens = [
            1u32, 2, 15, 16, 17, 31, 33, 511, 512, 513, 4095, 4096, 4097, 8191, 12288, 16383,
        ];
        for &a in &starts {
            for &l in &lens {
                for op in [RangeOp::Push, RangeOp::Invalidate, RangeOp::PushInvalidate] {
                    let steps = plan(op, a, l);
                    assert!(covers(&steps, a, l), "{op:?} {a:#x}+{l}: {steps:?}");
                    assert!(
                        discards_only_inside(&steps, a, l),
                        "{op:?} {a:#x}+{l}: {steps:?}"
                    );
                    if op != RangeOp::Invalidate {
                        assert!(steps.iter().all(|s| s.push), "{op:?} {a:#x}+{l}");
                    }
                }
            }
        }
    }

    #[test]
    fn range_at_top_of_memory_terminates() {
        let steps = plan(RangeOp::Push, 0xffff_fff0, 0x10);
        assert_eq!(steps, vec![line(true, 0xffff_fff0)]);
    }

    #[test]
    fn encodings_match_the_reference() {
        // cpushl %dc,(a0) = 0xF468; cinva %bc = 0xF4D8; cinvp %ic = 0xF490
        assert_eq!(0xf400 | line(true, 0).encoding(), 0xf468);
        let all = Step {
            push: false,
            scope: Scope::All,
            caches: Caches::Both,
            addr: 0,
        };
        assert_eq!(0xf400 | all.encoding(), 0xf4d8);
        let page = Step {
            push: false,
            scope: Scope::Page,
            caches: Caches::Instruction,
            addr: 0,
        };
        assert_eq!(0xf400 | page.encoding(), 0xf490);
    }

    #[test]
    fn enable_bits_and_ttrs() {
        assert_eq!(cacr_enable_bits(Model::M68040, Mode::Copyback), 0x8000_8000);
        assert_eq!(cacr_enable_bits(Model::M68030, Mode::Copyback), 0x3111);
        assert_eq!(cacr_enable_bits(Model::M68030, Mode::Off), 0);
        // MC68020 UM: E is bit 0. MC68060 UM: EDC 31, ESB 29, EBC 23, EIC 15; DPI (28) off.
        assert_eq!(cacr_enable_bits(Model::M68020, Mode::Copyback), 0x1);
        assert_eq!(cacr_enable_bits(Model::M68020, Mode::Off), 0);
        assert_eq!(cacr_enable_bits(Model::M68060, Mode::Copyback), 0xa080_8000);
        assert_eq!(cacr_enable_bits(Model::M68060, Mode::Off), 0);
        // Every enable bit is one the model implements (QEMU's masks, cpu::cacr_mask), and
        // no strobe is an enable bit.
        for (model, mask) in [
            (Model::M68020, crate::arch::m68k::cpu::cacr_mask::M68020),
            (Model::M68030, crate::arch::m68k::cpu::cacr_mask::M68030),
            (Model::M68040, crate::arch::m68k::cpu::cacr_mask::M68040),
            (Model::M68060, crate::arch::m68k::cpu::cacr_mask::M68060),
        ] {
            for mode in [Mode::Copyback, Mode::WriteThrough] {
                let bits = cacr_enable_bits(model, mode);
                assert_eq!(bits & !mask, 0, "{model:?}");
                assert_eq!(bits & cacr_strobes(model), 0, "{model:?}");
            }
            assert_eq!(cacr_clear_on_enable(model) & !cacr_strobes(model), 0);
            assert_eq!(cacr_strobes(model) & !mask, 0, "{model:?}");
        }
        assert!(!has_data_cache(Model::M68020) && has_data_cache(Model::M68060));
        // From the manual's fields: base byte, mask byte, E = 0x8000, S = ignore 0x4000,
        // CM: 0x00 write-through, 0x20 copyback, 0x40 inhibited serialized.
        let window = 0xfe << 24;
        let devices = 0xfe00_0000 | 0x8000 | 0x4000 | 0x40;
        let [itt0, itt1, dtt0, dtt1] = ttr_values(Mode::Copyback, window | 0x12_3456);
        assert_eq!(dtt0, devices, "devices: cache-inhibited, serialized");
        assert_eq!(dtt1, 0x007f_c020, "RAM: copyback");
        assert_eq!(ttr_values(Mode::WriteThrough, window)[3], 0x007f_c000);
        assert_eq!((itt0, itt1), (0x007f_c000, devices));
    }
}
