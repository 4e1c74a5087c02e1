//! Every fixed address and interrupt number of QEMU's m68k `virt` board, in one place.
//!
//! Source: QEMU's hw/m68k/virt.c (7.2 and 10.0 agree); the same values arrive in the
//! bootinfo list, which the kernel uses once it has parsed it. Only the early console,
//! virt-ctrl before bootinfo, and tests that check bootinfo against the board read these.
//! (boot/entry.S and boot/machine.c keep their own copies of the TTY and virt-ctrl bases for
//! the last-resort printer that runs before Rust.)
#![forbid(unsafe_code)]

/// Every device's registers lie in the 16 MiB from here to 4 GiB (hw/m68k/virt.c maps all of
/// them at 0xff000000 and above): the 68040's DTT0 makes this window cache-inhibited.
pub const DEVICE_WINDOW: u32 = 0xff00_0000;
/// Goldfish PIC 1; PIC n (1..=6) is at `PIC_BASE + (n - 1) * PIC_STRIDE`.
pub const PIC_BASE: u32 = DEVICE_WINDOW;
/// Distance between consecutive PICs and between the two RTCs (bytes).
pub const PIC_STRIDE: u32 = 0x1000;
/// Goldfish RTC #0 (the kernel's clock and timers).
pub const RTC0_BASE: u32 = 0xff00_6000;
/// Goldfish RTC #0's interrupt: PIC 6 bit 0.
pub const RTC0_IRQ: u32 = 168;
/// Goldfish RTC #1 (the wall clock), `RTC_STRIDE` above RTC #0.
pub const RTC1_BASE: u32 = RTC0_BASE + RTC_STRIDE;
/// Goldfish RTC #1's interrupt: the line after RTC #0's.
pub const RTC1_IRQ: u32 = RTC0_IRQ + 1;
/// Distance between the two RTCs (bytes).
pub const RTC_STRIDE: u32 = 0x1000;
/// Goldfish TTY (the console).
pub const TTY_BASE: u32 = 0xff00_8000;
/// Goldfish TTY's interrupt: PIC 1 bit 31.
pub const TTY_IRQ: u32 = 39;
/// The register window of one goldfish device or virt-ctrl (bytes).
pub const DEVICE_PAGE: u32 = 0x1000;
/// virt-ctrl (halt, panic, reset).
pub const CTRL_BASE: u32 = 0xff00_9000;
/// virt-ctrl's interrupt (PIC 1 bit 0; never raised).
pub const CTRL_IRQ: u32 = 8;
/// virtio-mmio slot 0; slot i is at `VIRTIO_BASE + i * drivers::virtio::mmio::SLOT_SIZE`.
pub const VIRTIO_BASE: u32 = 0xff01_0000;
/// virtio-mmio slot 0's interrupt; slot i has `VIRTIO_IRQ + i` (PIC 2 + i / 32, bit i % 32).
pub const VIRTIO_IRQ: u32 = 40;
/// The PIC base's bootinfo record carries irq 1 (the board's convention, not a line).
pub const PIC_BOOTINFO_IRQ: u32 = 1;
