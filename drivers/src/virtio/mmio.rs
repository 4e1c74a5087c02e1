//! virtio-mmio version 2 transport: probing, the status sequence, 64-bit feature negotiation,
//! queue setup, notification, interrupt status, and generation-checked config reads.
//!
//! Registers are little-endian; on the big-endian 68k each 32-bit register access is
//! byte-swapped. Config space is read a byte at a time (no width questions) and only after
//! FEATURES_OK (before it, QEMU 7.2 stores config big-endian and reads it little-endian).
//! Every wait is bounded: QEMU completes a reset inside the register write, so a few reads
//! suffice; a device that does not settle within [`SETTLE_READS`] is an error.

use crate::bus::Bus;
use crate::word::Word32;
use core::fmt;

const MAGIC_VALUE: u32 = 0x000;
const VERSION: u32 = 0x004;
const DEVICE_ID: u32 = 0x008;
const VENDOR_ID: u32 = 0x00c;
const DEVICE_FEATURES: u32 = 0x010;
const DEVICE_FEATURES_SEL: u32 = 0x014;
const DRIVER_FEATURES: u32 = 0x020;
const DRIVER_FEATURES_SEL: u32 = 0x024;
const QUEUE_SEL: u32 = 0x030;
const QUEUE_NUM_MAX: u32 = 0x034;
const QUEUE_NUM: u32 = 0x038;
const QUEUE_READY: u32 = 0x044;
const QUEUE_NOTIFY: u32 = 0x050;
const INTERRUPT_STATUS: u32 = 0x060;
const INTERRUPT_ACK: u32 = 0x064;
const STATUS: u32 = 0x070;
const QUEUE_DESC_LOW: u32 = 0x080;
const QUEUE_DESC_HIGH: u32 = 0x084;
const QUEUE_DRIVER_LOW: u32 = 0x090;
const QUEUE_DRIVER_HIGH: u32 = 0x094;
const QUEUE_DEVICE_LOW: u32 = 0x0a0;
const QUEUE_DEVICE_HIGH: u32 = 0x0a4;
const CONFIG_GENERATION: u32 = 0x0fc;
const CONFIG: u32 = 0x100;

/// "virt" in little-endian.
pub const MAGIC: u32 = 0x7472_6976;
/// Register window of one slot.
pub const SLOT_SIZE: u32 = 0x200;
pub const SLOTS: u32 = 128;
/// Register reads allowed for a reset or a config generation to settle.
pub const SETTLE_READS: u32 = 1000;

pub mod status {
    pub const ACKNOWLEDGE: u32 = 1;
    pub const DRIVER: u32 = 2;
    pub const DRIVER_OK: u32 = 4;
    pub const FEATURES_OK: u32 = 8;
    pub const DEVICE_NEEDS_RESET: u32 = 64;
    pub const FAILED: u32 = 128;
}

pub mod feature {
    pub const INDIRECT_DESC: u64 = 1 << 28;
    pub const EVENT_IDX: u64 = 1 << 29;
    pub const VERSION_1: u64 = 1 << 32;
    pub const RING_RESET: u64 = 1 << 40;
}

/// InterruptStatus bits.
pub const INT_USED_BUFFER: u32 = 1;
pub const INT_CONFIG_CHANGE: u32 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportError {
    BadMagic {
        found: u32,
    },
    /// MMIO version 1 (legacy) or unknown.
    UnsupportedVersion {
        version: u32,
    },
    /// The device does not offer VIRTIO_F_VERSION_1: legacy-only devices are refused.
    Legacy,
    /// FEATURES_OK did not stick: the device refused the negotiated features.
    FeaturesRejected {
        features: u64,
    },
    ResetTimeout,
    QueueUnavailable {
        queue: u16,
    },
    QueueAlreadyReady {
        queue: u16,
    },
    /// Config space kept changing while being read.
    ConfigUnstable,
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransportError::BadMagic { found } => {
                write!(f, "no virtio-mmio magic (read {found:#010x})")
            }
            TransportError::UnsupportedVersion { version } => {
                write!(
                    f,
                    "virtio-mmio version {version}: only version 2 (modern) is supported"
                )
            }
            TransportError::Legacy => f.write_str(
                "the device offers no VIRTIO_F_VERSION_1: legacy-only devices are not supported",
            ),
            TransportError::FeaturesRejected { features } => {
                write!(
                    f,
                    "the device refused features {features:#x} (FEATURES_OK did not stick)"
                )
            }
            TransportError::ResetTimeout => {
                write!(f, "the device did not reset within {SETTLE_READS} reads")
            }
            TransportError::QueueUnavailable { queue } => {
                write!(f, "queue {queue} is not available (QueueNumMax 0)")
            }
            TransportError::QueueAlreadyReady { queue } => {
                write!(f, "queue {queue} is already in use")
            }
            TransportError::ConfigUnstable => {
                write!(
                    f,
                    "config space changed on every one of {SETTLE_READS} reads"
                )
            }
        }
    }
}

/// What a slot holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceInfo {
    pub slot: u32,
    pub base: u32,
    pub irq: u32,
    pub device_id: u32,
    pub vendor_id: u32,
    pub version: u32,
}

/// Why a device interrupted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InterruptCause {
    /// The used ring moved.
    pub used_buffer: bool,
    /// Config space changed: re-read it (generation-checked).
    pub config_changed: bool,
    /// The device set DEVICE_NEEDS_RESET: fail what is in flight and reset it.
    pub needs_reset: bool,
}

/// One queue's notification register ([`MmioTransport::notifier`]); lives no longer than
/// the transport, whose base its address is.
#[derive(Clone, Copy)]
pub struct Notifier<'a, B: Bus + Copy> {
    bus: B,
    addr: u32,
    queue: u32,
    _transport: core::marker::PhantomData<&'a MmioTransport<B>>,
}

impl<B: Bus + Copy> Notifier<'_, B> {
    /// Tells the device the queue has new avail entries (as [`MmioTransport::notify`]).
    #[inline(always)]
    pub fn notify(self) {
        self.bus.write32_le(self.addr, self.queue);
    }
}

pub struct MmioTransport<B: Bus> {
    bus: B,
    /// Private: its base is where every register access goes, vouched for by `new`'s caller.
    info: DeviceInfo,
    /// `info.base` as a [`Word32`] (no byte swaps on this route), for the register accesses.
    base: Word32,
}

/// Reads slot `slot`'s identity: Ok(None) for an empty slot (device id 0).
pub fn probe<B: Bus>(
    bus: &B,
    base: u32,
    irq: u32,
    slot: u32,
) -> Result<Option<DeviceInfo>, TransportError> {
    let r = |off: u32| bus.read32_le(base + off);
    let magic = r(MAGIC_VALUE);
    if magic != MAGIC {
        return Err(TransportError::BadMagic { found: magic });
    }
    let device_id = r(DEVICE_ID);
    if device_id == 0 {
        return Ok(None);
    }
    Ok(Some(DeviceInfo {
        slot,
        base,
        irq,
        device_id,
        vendor_id: r(VENDOR_ID),
        version: r(VERSION),
    }))
}

impl<B: Bus> MmioTransport<B> {
    /// The slot this transport drives (read-only: the base was vouched for at `new`).
    pub fn info(&self) -> DeviceInfo {
        self.info
    }

    /// # Safety
    ///
    /// `info.base` must be the register window of a virtio-mmio slot, owned by the caller.
    pub unsafe fn new(bus: B, info: DeviceInfo) -> Result<Self, TransportError> {
        if info.version != 2 {
            return Err(TransportError::UnsupportedVersion {
                version: info.version,
            });
        }
        Ok(MmioTransport {
            bus,
            info,
            base: Word32::new(info.base),
        })
    }

    fn read(&self, off: u32) -> u32 {
        self.bus.read32_le(self.base.get() + off)
    }

    fn write(&self, off: u32, v: u32) {
        self.bus.write32_le(self.base.get() + off, v);
    }

    pub fn status(&self) -> u32 {
        self.read(STATUS)
    }

    fn add_status(&self, bits: u32) {
        self.write(STATUS, self.status() | bits);
    }

    pub fn fail(&self) {
        self.add_status(status::FAILED);
    }

    /// Writes 0 to Status and waits (bounded) for it to read back 0.
    pub fn reset(&self) -> Result<(), TransportError> {
        self.write(STATUS, 0);
        for _ in 0..SETTLE_READS {
            if self.status() == 0 {
                return Ok(());
            }
        }
        Err(TransportError::ResetTimeout)
    }

    /// Both feature words the device offers.
    pub fn device_features(&self) -> u64 {
        self.write(DEVICE_FEATURES_SEL, 0);
        let low = self.read(DEVICE_FEATURES);
        self.write(DEVICE_FEATURES_SEL, 1);
        let high = self.read(DEVICE_FEATURES);
        u64::from(high) << 32 | u64::from(low)
    }

    /// Reset, ACKNOWLEDGE, DRIVER, then negotiate: `choose` gets the offered features and
    /// returns the ones the driver wants; the result is limited to what was offered, must
    /// include VERSION_1, and is confirmed with FEATURES_OK. Returns the negotiated set.
    /// On failure the device is left with FAILED set.
    pub fn begin_init(&self, choose: impl FnOnce(u64) -> u64) -> Result<u64, TransportError> {
        self.reset()?;
        self.add_status(status::ACKNOWLEDGE);
        self.add_status(status::DRIVER);
        let offered = self.device_features();
        if offered & feature::VERSION_1 == 0 {
            self.fail();
            return Err(TransportError::Legacy);
        }
        let features = (choose(offered) & offered) | feature::VERSION_1;
        self.write(DRIVER_FEATURES_SEL, 0);
        self.write(DRIVER_FEATURES, features as u32);
        self.write(DRIVER_FEATURES_SEL, 1);
        self.write(DRIVER_FEATURES, (features >> 32) as u32);
        self.add_status(status::FEATURES_OK);
        if self.status() & status::FEATURES_OK == 0 {
            self.fail();
            return Err(TransportError::FeaturesRejected { features });
        }
        Ok(features)
    }

    /// The largest queue `queue` supports (0: none).
    pub fn queue_max(&self, queue: u16) -> u16 {
        self.write(QUEUE_SEL, queue.into());
        self.read(QUEUE_NUM_MAX).min(u32::from(u16::MAX)) as u16
    }

    /// Gives queue `queue` of `size` entries its three areas (physical addresses of the
    /// descriptor table, driver and device areas; virtio 1.2 4.2.3.2) and makes it ready.
    ///
    /// Errors: `QueueAlreadyReady`, `QueueUnavailable` (QueueNumMax 0).
    ///
    /// # Safety
    ///
    /// From here the device reads the descriptor table and driver area and writes the device
    /// area at any time: each must be DMA memory of at least the size virtio 1.2 2.7 gives
    /// for `size` entries, aligned as it requires, owned for this queue and kept allocated
    /// until the device is reset.
    pub unsafe fn setup_queue(
        &self,
        queue: u16,
        size: u16,
        desc: u32,
        driver: u32,
        device: u32,
    ) -> Result<(), TransportError> {
        self.write(QUEUE_SEL, queue.into());
        if self.read(QUEUE_READY) != 0 {
            return Err(TransportError::QueueAlreadyReady { queue });
        }
        if self.read(QUEUE_NUM_MAX) == 0 {
            return Err(TransportError::QueueUnavailable { queue });
        }
        self.write(QUEUE_NUM, size.into());
        self.write(QUEUE_DESC_LOW, desc);
        self.write(QUEUE_DESC_HIGH, 0);
        self.write(QUEUE_DRIVER_LOW, driver);
        self.write(QUEUE_DRIVER_HIGH, 0);
        self.write(QUEUE_DEVICE_LOW, device);
        self.write(QUEUE_DEVICE_HIGH, 0);
        self.write(QUEUE_READY, 1);
        Ok(())
    }

    pub fn driver_ok(&self) {
        self.add_status(status::DRIVER_OK);
    }

    pub fn needs_reset(&self) -> bool {
        self.status() & status::DEVICE_NEEDS_RESET != 0
    }

    pub fn notify(&self, queue: u16) {
        self.write(QUEUE_NOTIFY, queue.into());
    }

    /// Queue `queue`'s notification (QueueNotify, virtio 1.2 4.2.2) as a value of its own, for
    /// a request path that keeps it in a local rather than reaching through the transport.
    pub fn notifier(&self, queue: u16) -> Notifier<'_, B>
    where
        B: Copy,
    {
        Notifier {
            bus: self.bus,
            addr: self.info.base + QUEUE_NOTIFY,
            queue: queue.into(),
            _transport: core::marker::PhantomData,
        }
    }

    pub fn interrupt_status(&self) -> u32 {
        self.read(INTERRUPT_STATUS)
    }

    pub fn ack_interrupt(&self, bits: u32) {
        self.write(INTERRUPT_ACK, bits);
    }

    /// The interrupt handler's first step: read InterruptStatus, acknowledge what was read,
    /// and say why the device interrupted. The caller then processes the used ring, and
    /// re-checks it after re-arming (the ack may have swallowed a notification raised
    /// meanwhile). None: the device did not interrupt (a shared line: "not mine").
    pub fn take_interrupt(&self) -> Option<InterruptCause> {
        let s = self.interrupt_status();
        if s == 0 {
            return None;
        }
        self.ack_interrupt(s);
        Some(InterruptCause {
            used_buffer: s & INT_USED_BUFFER != 0,
            config_changed: s & INT_CONFIG_CHANGE != 0,
            needs_reset: self.needs_reset(),
        })
    }

    /// Reads `buf.len()` config bytes at `offset`, retrying while ConfigGeneration changes.
    pub fn read_config(&self, offset: u32, buf: &mut [u8]) -> Result<(), TransportError> {
        for _ in 0..SETTLE_READS {
            let before = self.read(CONFIG_GENERATION);
            for (i, b) in buf.iter_mut().enumerate() {
                *b = self.bus.read8(self.info.base + CONFIG + offset + i as u32);
            }
            if self.read(CONFIG_GENERATION) == before {
                return Ok(());
            }
        }
        Err(TransportError::ConfigUnstable)
    }
}

/// Whether the device wants a notification after the driver moved the avail index from `old`
/// to `new`, given its `event` (avail_event): virtio's vring_need_event, wrap-safe in u16.
pub fn need_event(event: u16, new: u16, old: u16) -> bool {
    new.wrapping_sub(event).wrapping_sub(1) < new.wrapping_sub(old)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::fake::FakeBus;

    #[test]
    fn need_event_is_wrap_safe() {
        assert!(need_event(0, 1, 0));
        assert!(!need_event(1, 1, 0), "event ahead of what was published");
        assert!(need_event(5, 8, 3));
        assert!(!need_event(9, 8, 3));
        assert!(need_event(0xffff, 1, 0xfffe), "across the wrap");
        assert!(need_event(0xfffe, 0, 0xfffd));
        assert!(!need_event(2, 1, 0xffff));
        assert!(!need_event(0, 0, 0), "nothing published");
    }

    fn le(bus: &FakeBus, addr: u32, v: u32) {
        bus.regs.borrow_mut().insert(addr, v.swap_bytes());
    }

    #[test]
    fn probe_reads_little_endian_registers() {
        let bus = FakeBus::default();
        le(&bus, 0xff01_0000, MAGIC);
        le(&bus, 0xff01_0004, 2);
        le(&bus, 0xff01_0008, 2);
        le(&bus, 0xff01_000c, 0x554d_4551);
        let info = probe(&bus, 0xff01_0000, 40, 0).unwrap().unwrap();
        assert_eq!(
            (info.device_id, info.version, info.vendor_id),
            (2, 2, 0x554d_4551)
        );
        le(&bus, 0xff01_0208, 0);
        le(&bus, 0xff01_0200, MAGIC);
        assert_eq!(probe(&bus, 0xff01_0200, 41, 1), Ok(None), "empty slot");
        assert_eq!(
            probe(&bus, 0xff01_0400, 42, 2),
            Err(TransportError::BadMagic { found: 0 })
        );
    }

    /// A little-endian bus: the same register file, values stored as the device holds them.
    struct LittleEndianBus(FakeBus);

    // SAFETY: forwards each call to the fake bus, one access per call.
    unsafe impl Bus for LittleEndianBus {
        const BIG_ENDIAN: bool = false;
        fn read8(&self, addr: u32) -> u8 {
            self.0.read8(addr)
        }
        fn read16(&self, addr: u32) -> u16 {
            self.0.read16(addr)
        }
        fn read32(&self, addr: u32) -> u32 {
            self.0.read32(addr)
        }
        fn write8(&self, addr: u32, value: u8) {
            self.0.write8(addr, value)
        }
        fn write16(&self, addr: u32, value: u16) {
            self.0.write16(addr, value)
        }
        fn write32(&self, addr: u32, value: u32) {
            self.0.write32(addr, value)
        }
    }

    #[test]
    fn the_bus_decides_the_byte_order() {
        let bus = LittleEndianBus(FakeBus::default());
        for (off, v) in [(0, MAGIC), (4, 2), (8, 2), (0xc, 0x554d_4551)] {
            bus.0.regs.borrow_mut().insert(0xff01_0000 + off, v);
        }
        let info = probe(&bus, 0xff01_0000, 40, 0).unwrap().unwrap();
        assert_eq!(
            (info.device_id, info.version, info.vendor_id),
            (2, 2, 0x554d_4551),
            "no swap on a little-endian bus"
        );
        // SAFETY: a fake bus.
        let t = unsafe { MmioTransport::new(&bus, info) }.unwrap();
        t.fail();
        assert_eq!(bus.0.writes_to(0xff01_0070), std::vec![status::FAILED]);
    }

    fn device(bus: &FakeBus, features: u64) -> MmioTransport<&FakeBus> {
        le(bus, 0x10, features as u32); // DEVICE_FEATURES (the fake ignores the select)
        let info = DeviceInfo {
            slot: 0,
            base: 0,
            irq: 40,
            device_id: 2,
            vendor_id: 0,
            version: 2,
        };
        // SAFETY: a fake bus.
        unsafe { MmioTransport::new(bus, info) }.unwrap()
    }

    #[test]
    fn a_device_without_version_1_is_refused_and_failed() {
        let bus = FakeBus::default();
        let t = device(&bus, 0x3000_6e54);
        assert_eq!(t.begin_init(|f| f), Err(TransportError::Legacy));
        assert_ne!(t.status() & status::FAILED, 0, "FAILED is set");
        assert!(std::format!("{}", TransportError::Legacy).contains("legacy-only"));
    }

    #[test]
    fn interrupt_cause_is_read_and_acknowledged() {
        let bus = FakeBus::default();
        let t = device(&bus, 0);
        assert_eq!(t.take_interrupt(), None, "not mine");
        le(&bus, 0x60, INT_USED_BUFFER | INT_CONFIG_CHANGE);
        le(&bus, 0x70, status::DEVICE_NEEDS_RESET);
        let c = t.take_interrupt().unwrap();
        assert!(c.used_buffer && c.config_changed && c.needs_reset);
        assert_eq!(
            bus.writes_to(0x64),
            std::vec![(INT_USED_BUFFER | INT_CONFIG_CHANGE).swap_bytes()]
        );
    }

    #[test]
    fn legacy_mmio_version_is_refused() {
        let info = DeviceInfo {
            slot: 0,
            base: 0,
            irq: 40,
            device_id: 2,
            vendor_id: 0,
            version: 1,
        };
        // SAFETY: a fake bus.
        let r = unsafe { MmioTransport::new(FakeBus::default(), info) };
        assert!(matches!(
            r,
            Err(TransportError::UnsupportedVersion { version: 1 })
        ));
    }
}
