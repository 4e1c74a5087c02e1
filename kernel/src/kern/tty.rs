//! Console input: the goldfish TTY's receive interrupt drains its FIFO by DMA into a ring,
//! and readers take bytes or whole edited lines from the ring, with timeouts.
//!
//! The DMA buffer is a bus_dma region used only by the interrupt handler: PREREAD before each
//! READ_BUFFER, POSTREAD after it, then the bytes are read through the region's accessors (so
//! the auditor and the stale-cache model see this path too).
//!
//! The receive line is enabled on first use ([`start`]), so input typed before then stays in
//! the device's FIFO.

use crate::arch::m68k::dma::{M68kPlatform, DMA};
use crate::arch::m68k::machine::{self, IrqMutex, MachineBus};
use crate::board::virt::irq::{self, Handled};
use crate::board::virt::memmap;
use crate::kern::line_editor::{Event, LineEditor};
use crate::kern::time::{self, Nanos, TimedOut};
use alloc::format;
use alloc::string::String;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use drivers::dma::{Direction, DmaRegion, SyncOps};
use drivers::goldfish_tty::GoldfishTty;

const DMA_BYTES: usize = 64;
static RX_DMA: spin::Once<DmaRegion<M68kPlatform>> = spin::Once::new();

const RING: usize = 1024;
struct Ring {
    bytes: heapless::Deque<u8, RING>,
    dropped: u32,
}
/// Filled at interrupt level 1, emptied by readers.
static RX: IrqMutex<Ring> = machine::irq_mutex(Ring {
    bytes: heapless::Deque::new(),
    dropped: 0,
});

static TTY_BASE: AtomicU32 = AtomicU32::new(memmap::TTY_BASE);
static TTY_IRQ: AtomicU32 = AtomicU32::new(memmap::TTY_IRQ);
static STARTED: AtomicBool = AtomicBool::new(false);

fn tty() -> GoldfishTty<MachineBus> {
    // SAFETY: the base is bootinfo's TTY record: the bus and the driver reach only the TTY's
    // registers.
    unsafe { GoldfishTty::new(MachineBus::new(), TTY_BASE.load(Ordering::Relaxed)) }
}

/// Registers the receive handler and turns on the device's receive interrupt; the PIC line
/// stays off until [`start`].
///
/// # Safety
///
/// `base` must be the goldfish TTY's register block as bootinfo reports it: the receive path
/// reads and writes its registers, and programs its DMA address, from here on.
pub unsafe fn init(base: u32, irq_no: u32) -> Result<(), String> {
    TTY_BASE.store(base, Ordering::Relaxed);
    TTY_IRQ.store(irq_no, Ordering::Relaxed);
    let region = DMA
        .alloc("tty rx", DMA_BYTES as u32, Direction::FromDevice, false)
        .map_err(|e| format!("{e}"))?;
    RX_DMA.call_once(|| region);
    irq::register(irq_no, "tty rx", receive_interrupt).map_err(|e| format!("{e}"))?;
    tty().set_rx_interrupt(true);
    Ok(())
}

/// Enables the receive line (idempotent).
pub fn start() {
    if !STARTED.swap(true, Ordering::Relaxed) {
        let _ = irq::enable(TTY_IRQ.load(Ordering::Relaxed));
    }
}

pub fn irq_number() -> u32 {
    TTY_IRQ.load(Ordering::Relaxed)
}

fn receive_interrupt() -> Handled {
    let t = tty();
    let Some(region) = RX_DMA.get() else {
        return Handled::NotMine;
    };
    let mut handled = Handled::NotMine;
    let mut data = [0u8; DMA_BYTES];
    loop {
        let ready = t.bytes_ready() as usize;
        if ready == 0 {
            return handled;
        }
        handled = Handled::Yes;
        let n = ready.min(DMA_BYTES);
        // PREREAD: the device is about to write the buffer.
        region
            .sync(SyncOps::PREREAD, 0, DMA_BYTES as u32)
            .expect("a whole-region sync");
        // SAFETY: the region is ours alone, prepared for a device write just above.
        unsafe { t.read_buffer(region.phys(), n as u32) };
        // READ_BUFFER is synchronous: the device is done. POSTREAD, then read.
        region
            .sync(SyncOps::POSTREAD, 0, n as u32)
            .expect("within the region");
        region.read(0, &mut data[..n]);
        let data = &data[..n];
        let mut rx = RX.lock();
        for &b in data {
            if rx.bytes.push_back(b).is_err() {
                rx.dropped += 1;
            }
        }
    }
}

fn take_byte() -> Option<u8> {
    RX.lock().bytes.pop_front()
}

/// Bytes lost because the ring was full.
pub fn dropped() -> u32 {
    RX.lock().dropped
}

/// Waits up to `timeout` until some input is in the ring.
pub fn wait_for_input(timeout: Nanos) -> Result<(), TimedOut> {
    start();
    time::wait_until(|| !RX.lock().bytes.is_empty(), timeout)
}

/// Waits up to `timeout` for one byte.
pub fn read_byte(timeout: Nanos) -> Result<u8, TimedOut> {
    start();
    let mut got = None;
    time::wait_until(
        || {
            got = take_byte();
            got.is_some()
        },
        timeout,
    )?;
    Ok(got.expect("wait_until returned Ok only once a byte was taken"))
}

/// Reads one edited line (backspace works), echoing as a terminal expects when `echo`. The
/// timeout applies to each byte, so a slow typist is not cut off.
pub fn read_line(per_byte_timeout: Nanos, echo: bool) -> Result<String, TimedOut> {
    let mut editor = LineEditor::new();
    loop {
        match editor.feed(read_byte(per_byte_timeout)?) {
            Event::Line(line) => {
                if echo {
                    crate::println!();
                }
                return Ok(line);
            }
            Event::Echo(s) if echo => crate::print!("{s}"),
            Event::EchoChar(c) if echo => crate::print!("{c}"),
            _ => {}
        }
    }
}

/// Bytes waiting in the device FIFO (not yet moved to the ring).
pub fn device_bytes_ready() -> u32 {
    tty().bytes_ready()
}
