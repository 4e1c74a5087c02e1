//! Machine-independent drivers for the devices of QEMU's m68k `virt` board.
//!
//! Drivers here know register layouts and device protocols, nothing about the m68k or the
//! wasm route: they touch registers only through [`bus::Bus`], which the kernel implements
//! with its machine-layer imports and host tests implement with a simulated device.
#![no_std]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod blk;
pub mod bus;
pub mod dma;
pub mod goldfish_pic;
pub mod goldfish_rtc;
pub mod goldfish_tty;
pub mod sync;
pub mod virt_ctrl;
pub mod virtio;
pub mod word;
