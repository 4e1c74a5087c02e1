//! The console: `print!`/`println!` and leveled logging on the goldfish TTY.
//!
//! Output is synchronous (one PUT_CHAR per byte) and takes no lock, so it works from
//! interrupt handlers, exception reports and the panic handler. Interrupts are masked for the
//! length of one `print!` so lines from different contexts do not interleave.

use crate::arch::m68k::machine::{self, MachineBus};
use crate::kern::cmdline::Level;
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU32, AtomicU8, Ordering};
use drivers::goldfish_tty::GoldfishTty;

/// The virt board's TTY until bootinfo says where it is.
static TTY_BASE: AtomicU32 = AtomicU32::new(crate::board::virt::memmap::TTY_BASE);
static LEVEL: AtomicU8 = AtomicU8::new(Level::Info as u8);

/// Points the console at the goldfish TTY at `base` (physical).
///
/// # Safety
///
/// `base` must be the TTY's register block as bootinfo reports it: every later print writes
/// its PUT_CHAR register through the machine bus.
pub unsafe fn set_tty_base(base: u32) {
    TTY_BASE.store(base, Ordering::Relaxed);
}

pub fn set_level(level: Level) {
    LEVEL.store(level as u8, Ordering::Relaxed);
}

pub fn enabled(level: Level) -> bool {
    level as u8 <= LEVEL.load(Ordering::Relaxed)
}

#[doc(hidden)]
pub fn _print(args: fmt::Arguments) {
    let _masked = machine::mask_interrupts();
    // SAFETY: TTY_BASE holds the board's TTY base or the one bootinfo reported: the bus and
    // the driver reach only the TTY's registers (output here, input in kern::tty).
    let mut tty = unsafe { GoldfishTty::new(MachineBus::new(), TTY_BASE.load(Ordering::Relaxed)) };
    let _ = tty.write_fmt(args);
}

#[doc(hidden)]
pub fn _log(level: Level, args: fmt::Arguments) {
    if !enabled(level) {
        return;
    }
    // Wall-clock time (RTC #1) once the clock runs; before that, none.
    match crate::kern::time::wall_clock_if_running() {
        Some(t) => _print(format_args!(
            "[{:02}:{:02}:{:02}.{:03}] {}: {}\n",
            t.hour,
            t.minute,
            t.second,
            t.nanos / 1_000_000,
            level.name(),
            args
        )),
        None => _print(format_args!("{}: {}\n", level.name(), args)),
    }
}

#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::kern::console::_print(format_args!($($arg)*)) };
}

#[macro_export]
macro_rules! println {
    () => { $crate::print!("\n") };
    ($($arg:tt)*) => { $crate::kern::console::_print(format_args!("{}\n", format_args!($($arg)*))) };
}

#[macro_export]
macro_rules! log_error {
    ($($arg:tt)*) => { $crate::kern::console::_log($crate::kern::cmdline::Level::Error, format_args!($($arg)*)) };
}

#[macro_export]
macro_rules! log_warn {
    ($($arg:tt)*) => { $crate::kern::console::_log($crate::kern::cmdline::Level::Warn, format_args!($($arg)*)) };
}

#[macro_export]
macro_rules! log_info {
    ($($arg:tt)*) => { $crate::kern::console::_log($crate::kern::cmdline::Level::Info, format_args!($($arg)*)) };
}

#[macro_export]
macro_rules! log_debug {
    ($($arg:tt)*) => { $crate::kern::console::_log($crate::kern::cmdline::Level::Debug, format_args!($($arg)*)) };
}
