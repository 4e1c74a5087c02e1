//! Machine-independent kernel services: console and log, heap, command line, time and
//! timers, console input, the disks, verifying a disk, and how the kernel ends.
#[cfg(target_arch = "wasm32")]
pub mod boot;
pub mod cmdline;
pub mod line_editor;
pub mod time;
pub mod units;
#[cfg(target_arch = "wasm32")]
#[macro_use]
pub mod console;
#[cfg(target_arch = "wasm32")]
pub mod disks;
#[cfg(target_arch = "wasm32")]
pub mod dma;
#[cfg(target_arch = "wasm32")]
pub mod fatal;
#[cfg(target_arch = "wasm32")]
pub mod heap;
#[cfg(target_arch = "wasm32")]
pub mod tty;
#[cfg(target_arch = "wasm32")]
pub mod verify;
