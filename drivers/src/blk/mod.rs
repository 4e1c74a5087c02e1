//! Block devices: a generic front end (what ld(4) is to its back ends) and the virtio-blk
//! back end.
//!
//! The front end is [`BlockDevice`]: read, write and flush by sector with any buffer whose
//! length is a multiple of the logical block (512, or the device's BLK_SIZE) and whose start
//! is aligned to one, split to the device's limits, with statistics. Every wait
//! goes through a [`Waiter`] the kernel provides (clock, idle, timeouts).

pub mod config;
pub mod request;
#[cfg(test)]
mod sim;
#[cfg(test)]
mod tests_sim;
pub mod virtio_blk;

use core::fmt;

use crate::dma::DmaError;
use crate::virtio::mmio::TransportError;
use crate::virtio::queue::{DeviceFault, QueueError};
use crate::word::Count32;

pub const SECTOR: u32 = 512;

/// How completions are noticed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompletionMode {
    /// The device's interrupt wakes the waiter (shared-line safe).
    Interrupt,
    /// The driver polls the used ring (ld's dump path; before interrupts are up).
    Polled,
}

impl CompletionMode {
    pub fn name(self) -> &'static str {
        match self {
            CompletionMode::Interrupt => "interrupt",
            CompletionMode::Polled => "polled",
        }
    }
}

/// Everything a block request can fail with, each with a distinct message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlkError {
    /// The request reaches past the end of the disk.
    OutOfRange {
        sector: u64,
        sectors: u64,
        capacity: u64,
    },
    /// The request does not start or end on a logical block (`block` bytes: 512, or the
    /// device's BLK_SIZE); refused before it reaches the device, which would fail it.
    Unaligned {
        sector: u64,
        len: usize,
        block: u32,
    },
    /// A zero-length transfer.
    Empty,
    /// A write (or discard, write-zeroes) to a read-only disk.
    ReadOnly,
    /// No such disk.
    NoDevice,
    /// The disk is already open (one driver per device).
    InUse,
    /// The device reported an I/O error (status IOERR).
    Io {
        sector: u64,
    },
    /// The device does not support this request (status UNSUPP, or not negotiated).
    Unsupported,
    /// The device broke the protocol earlier; it must be reset.
    Broken(DeviceFault),
    /// The device asked for a reset (DEVICE_NEEDS_RESET).
    NeedsReset,
    /// The device returned a status byte that is none of OK, IOERR, UNSUPP.
    BadStatus {
        status: u8,
    },
    /// No completion within the timeout; the request's memory is kept from reuse.
    Timeout {
        waited_us: u64,
    },
    /// One request bigger than a per-request limit allows (`limit` names it, `max` is its
    /// value, `asked` the request's size, both in the limit's unit). The front ends split
    /// requests to the limits; this is what a request that cannot be split gets.
    TooLarge {
        limit: &'static str,
        max: u64,
        asked: u64,
    },
    /// The device reported fewer bytes than the request asked for.
    ShortTransfer {
        expected: u32,
        got: u32,
    },
    /// The device refused initialisation.
    Init(TransportError),
    /// A config value out of range.
    Config(config::ConfigError),
    Dma(DmaError),
    Queue(QueueError),
}

impl fmt::Display for BlkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlkError::OutOfRange {
                sector,
                sectors,
                capacity,
            } => write!(
                f,
                "sectors {sector}..{} are past the end of the disk ({capacity} sectors)",
                sector.saturating_add(*sectors)
            ),
            BlkError::Unaligned { sector, len, block } => write!(
                f,
                "{len} bytes at sector {sector} are not aligned to the {block}-byte logical block"
            ),
            BlkError::Empty => f.write_str("zero-length request"),
            BlkError::ReadOnly => f.write_str("the disk is read-only"),
            BlkError::NoDevice => f.write_str("no such disk"),
            BlkError::InUse => f.write_str("the disk is already open"),
            BlkError::Io { sector } => write!(
                f,
                "I/O error reported by the device (request at sector {sector})"
            ),
            BlkError::Unsupported => f.write_str("the device does not support this request"),
            BlkError::Broken(fault) => write!(f, "the device is broken: {fault}"),
            BlkError::NeedsReset => {
                f.write_str("the device asked to be reset (DEVICE_NEEDS_RESET)")
            }
            BlkError::BadStatus { status } => {
                write!(f, "the device returned status byte {status:#x}")
            }
            BlkError::Timeout { waited_us } => write!(f, "no completion after {waited_us} us"),
            BlkError::TooLarge { limit, max, asked } => {
                write!(f, "request of {asked} is over the limit {limit} = {max}")
            }
            BlkError::ShortTransfer { expected, got } => {
                write!(f, "the device transferred {got} of {expected} bytes")
            }
            BlkError::Init(e) => write!(f, "initialisation failed: {e}"),
            BlkError::Config(e) => write!(f, "{e}"),
            BlkError::Dma(e) => write!(f, "DMA: {e}"),
            BlkError::Queue(e) => write!(f, "virtqueue: {e}"),
        }
    }
}

impl From<QueueError> for BlkError {
    fn from(e: QueueError) -> Self {
        match e {
            QueueError::Broken(f) => BlkError::Broken(f),
            QueueError::Dma(d) => BlkError::Dma(d),
            other => BlkError::Queue(other),
        }
    }
}

impl From<DmaError> for BlkError {
    fn from(e: DmaError) -> Self {
        BlkError::Dma(e)
    }
}

/// A 64-bit event or byte count kept as two 32-bit words, the high one touched only when the
/// low one carries: on this route a `u64` field's `+=` is two loads, two stores and four
/// byte swaps, this one load, one store and a compare per request (the low word is a
/// [`Count32`], whose swaps cancel).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Count64 {
    lo: Count32,
    hi: u32,
}

impl Count64 {
    /// Adds `n` (wrapping at 2^64, as `u64::wrapping_add` would).
    #[inline(always)]
    pub fn add(&mut self, n: u32) {
        if self.lo.add(n) < n {
            self.add_carry();
        }
    }

    #[cold]
    #[inline(never)]
    fn add_carry(&mut self) {
        self.hi = self.hi.wrapping_add(1);
    }

    /// The count.
    pub fn get(&self) -> u64 {
        u64::from(self.hi) << 32 | u64::from(self.lo.get())
    }
}

/// Per-disk counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiskStats {
    pub requests: u64,
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub errors: u64,
    pub interrupts: u64,
    pub polls: u64,
    pub kicks: u64,
}

/// The clock and the two ways of waiting, from the kernel.
pub trait Waiter: Sync {
    fn now_ns(&self) -> u64;
    /// Sleeps between checks (woken by interrupts); false on timeout.
    fn sleep_until(&self, cond: &mut dyn FnMut() -> bool, timeout_ns: u64) -> bool;
    /// Polls; false on timeout.
    fn spin_until(&self, cond: &mut dyn FnMut() -> bool, timeout_ns: u64) -> bool;
}

/// The generic front end.
pub trait BlockDevice {
    /// Size in 512-byte sectors.
    fn capacity(&self) -> u64;
    fn read_only(&self) -> bool;
    /// Reads `buf.len()` bytes (whole logical blocks) from `sector` (block-aligned) on.
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), BlkError>;
    /// Writes `buf` (whole logical blocks) from `sector` (block-aligned) on.
    fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), BlkError>;
    /// Makes completed writes durable.
    fn flush(&mut self) -> Result<(), BlkError>;
    fn stats(&self) -> DiskStats;
}

/// Checks a transfer's shape against the disk (`block`: its logical block size, a power of
/// two from 512): Ok(sectors).
pub fn check_range(sector: u64, len: usize, capacity: u64, block: u32) -> Result<u64, BlkError> {
    if len == 0 {
        return Err(BlkError::Empty);
    }
    let block_sectors = u64::from(block / SECTOR).max(1);
    if !len.is_multiple_of(block as usize) || !sector.is_multiple_of(block_sectors) {
        return Err(BlkError::Unaligned { sector, len, block });
    }
    let sectors = (len / SECTOR as usize) as u64;
    match sector.checked_add(sectors) {
        Some(end) if end <= capacity => Ok(sectors),
        _ => Err(BlkError::OutOfRange {
            sector,
            sectors,
            capacity,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count64_carries_into_its_high_word_exactly_as_u64_adds() {
        // Reference: u64 wrapping addition. Steps chosen to cross 2^32 several times, by
        // various margins, including landing exactly on 2^32.
        let steps = [
            u32::MAX - 5,
            5,
            1,
            u32::MAX,
            u32::MAX,
            0,
            7,
            0x8000_0000,
            0x8000_0000,
        ];
        let mut c = Count64::default();
        let mut want = 0u64;
        for n in steps {
            c.add(n);
            want = want.wrapping_add(u64::from(n));
            assert_eq!(c.get(), want, "after adding {n:#x}");
        }
        assert_eq!(want, (4 << 32) + 5, "the steps cross 2^32 four times");
        // Near 2^64: wraps to small values as u64 does.
        let mut c = Count64 {
            lo: Count32::default(),
            hi: u32::MAX,
        };
        c.add(u32::MAX - 1);
        c.add(3);
        assert_eq!(c.get(), (u64::MAX - 1).wrapping_add(3));
    }

    #[test]
    fn range_checks() {
        assert_eq!(check_range(0, 512, 10, 512), Ok(1));
        assert_eq!(check_range(8, 1024, 10, 512), Ok(2));
        assert_eq!(
            check_range(9, 1024, 10, 512),
            Err(BlkError::OutOfRange {
                sector: 9,
                sectors: 2,
                capacity: 10
            })
        );
        assert_eq!(
            check_range(u64::MAX, 512, 10, 512),
            Err(BlkError::OutOfRange {
                sector: u64::MAX,
                sectors: 1,
                capacity: 10
            })
        );
        assert_eq!(check_range(0, 0, 10, 512), Err(BlkError::Empty));
        assert_eq!(
            check_range(0, 100, 10, 512),
            Err(BlkError::Unaligned {
                sector: 0,
                len: 100,
                block: 512
            })
        );
        // 4 KiB logical blocks: 8-sector aligned start and length.
        assert_eq!(check_range(8, 4096, 16, 4096), Ok(8));
        for (sector, len) in [(1, 4096), (8, 512), (0, 6144)] {
            assert_eq!(
                check_range(sector, len, 16, 4096),
                Err(BlkError::Unaligned {
                    sector,
                    len,
                    block: 4096
                })
            );
        }
    }

    #[test]
    fn errors_have_distinct_messages() {
        use std::collections::BTreeSet;
        use std::format;
        let all = [
            BlkError::OutOfRange {
                sector: 1,
                sectors: 2,
                capacity: 3,
            },
            BlkError::Unaligned {
                sector: 0,
                len: 1,
                block: 512,
            },
            BlkError::Empty,
            BlkError::ReadOnly,
            BlkError::NoDevice,
            BlkError::Io { sector: 5 },
            BlkError::Unsupported,
            BlkError::NeedsReset,
            BlkError::BadStatus { status: 9 },
            BlkError::Timeout { waited_us: 7 },
            BlkError::TooLarge {
                limit: "max_write_zeroes_sectors",
                max: 2,
                asked: 3,
            },
            BlkError::ShortTransfer {
                expected: 512,
                got: 0,
            },
        ];
        let texts: BTreeSet<std::string::String> = all.iter().map(|e| format!("{e}")).collect();
        assert_eq!(texts.len(), all.len());
    }
}
