//! QEMU's m68k `virt` board: its device addresses and interrupt numbers, the bootinfo list
//! that describes them, interrupt dispatch over its six goldfish PICs, and the virtio-mmio
//! slot probe.
pub mod bootinfo;
pub mod irq;
pub mod memmap;
pub mod qemu;
#[cfg(target_arch = "wasm32")]
pub mod virtio_probe;
