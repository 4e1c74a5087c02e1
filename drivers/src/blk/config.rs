//! virtio-blk feature bits and device configuration, parsed and validated.
//!
//! Config values are the device's word: each one the driver relies on is range-checked, and
//! a value out of range is an error against the device, not something to compute with. A
//! value the spec allows is never an error: limits take their spec meaning (0 is "no limit"
//! for the discard and write-zeroes sizes; seg_max 0 is read as 1, as Linux does).
#![forbid(unsafe_code)]

use core::fmt;

pub mod feature {
    pub const SIZE_MAX: u64 = 1 << 1;
    pub const SEG_MAX: u64 = 1 << 2;
    pub const GEOMETRY: u64 = 1 << 4;
    pub const RO: u64 = 1 << 5;
    pub const BLK_SIZE: u64 = 1 << 6;
    pub const FLUSH: u64 = 1 << 9;
    pub const TOPOLOGY: u64 = 1 << 10;
    pub const CONFIG_WCE: u64 = 1 << 11;
    pub const DISCARD: u64 = 1 << 13;
    pub const WRITE_ZEROES: u64 = 1 << 14;
    pub const INDIRECT_DESC: u64 = 1 << 28;
    pub const EVENT_IDX: u64 = 1 << 29;

    /// Everything this driver understands, with its name for reports.
    pub const SUPPORTED: &[(u64, &str)] = &[
        (SIZE_MAX, "SIZE_MAX"),
        (SEG_MAX, "SEG_MAX"),
        (GEOMETRY, "GEOMETRY"),
        (RO, "RO"),
        (BLK_SIZE, "BLK_SIZE"),
        (FLUSH, "FLUSH"),
        (TOPOLOGY, "TOPOLOGY"),
        (CONFIG_WCE, "CONFIG_WCE"),
        (DISCARD, "DISCARD"),
        (WRITE_ZEROES, "WRITE_ZEROES"),
        (INDIRECT_DESC, "INDIRECT_DESC"),
        (EVENT_IDX, "EVENT_IDX"),
    ];

    pub fn all_supported() -> u64 {
        SUPPORTED.iter().fold(0, |acc, (bit, _)| acc | bit)
    }
}

/// Config space layout (virtio 1.2, 5.2.4), byte offsets.
pub mod offset {
    pub const CAPACITY: usize = 0;
    pub const SIZE_MAX: usize = 8;
    pub const SEG_MAX: usize = 12;
    pub const GEOMETRY: usize = 16;
    pub const BLK_SIZE: usize = 20;
    pub const TOPOLOGY: usize = 24;
    pub const WRITEBACK: usize = 32;
    pub const MAX_DISCARD_SECTORS: usize = 36;
    pub const MAX_DISCARD_SEG: usize = 40;
    pub const DISCARD_SECTOR_ALIGNMENT: usize = 44;
    pub const MAX_WRITE_ZEROES_SECTORS: usize = 48;
    pub const MAX_WRITE_ZEROES_SEG: usize = 52;
    pub const WRITE_ZEROES_MAY_UNMAP: usize = 56;
    /// Bytes read: through write_zeroes_may_unmap.
    pub const LEN: usize = 60;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Geometry {
    pub cylinders: u16,
    pub heads: u8,
    pub sectors: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Topology {
    pub physical_block_exp: u8,
    pub alignment_offset: u8,
    pub min_io_size: u16,
    pub opt_io_size: u32,
}

/// What the device said, for the features negotiated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BlkConfig {
    /// 512-byte sectors, always.
    pub capacity: u64,
    pub size_max: Option<u32>,
    /// At least 1 (a device's 0 is read as 1).
    pub seg_max: Option<u32>,
    pub geometry: Option<Geometry>,
    pub blk_size: Option<u32>,
    pub topology: Option<Topology>,
    pub writeback: Option<bool>,
    /// Sectors per discard request; `u32::MAX` when the device said 0 (no limit).
    pub max_discard_sectors: Option<u32>,
    /// Sectors per write-zeroes request; `u32::MAX` when the device said 0 (no limit).
    pub max_write_zeroes_sectors: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigError {
    /// A value outside what the spec or this driver allows.
    OutOfRange { field: &'static str, value: u64 },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::OutOfRange { field, value } => {
                write!(f, "device config {field} = {value} is out of range")
            }
        }
    }
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn le64(b: &[u8], at: usize) -> u64 {
    u64::from(le32(b, at)) | u64::from(le32(b, at + 4)) << 32
}

/// A per-request sector limit where 0 means "none" (Linux: UINT_MAX).
fn no_limit_if_zero(v: u32) -> u32 {
    if v == 0 {
        u32::MAX
    } else {
        v
    }
}

/// Largest capacity accepted: 2^41 sectors (1 PiB), far beyond anything QEMU serves here,
/// small enough that sector arithmetic in bytes cannot overflow u64.
pub const MAX_CAPACITY: u64 = 1 << 41;

impl BlkConfig {
    /// Parses `raw` (at least [`offset::LEN`] bytes of config space) for `features`.
    pub fn parse(raw: &[u8], features: u64) -> Result<BlkConfig, ConfigError> {
        use feature as f;
        let bad = |field, value: u64| Err(ConfigError::OutOfRange { field, value });
        let capacity = le64(raw, offset::CAPACITY);
        if capacity > MAX_CAPACITY {
            return bad("capacity", capacity);
        }
        let mut c = BlkConfig {
            capacity,
            ..BlkConfig::default()
        };
        if features & f::SIZE_MAX != 0 {
            let v = le32(raw, offset::SIZE_MAX);
            if v < 512 {
                return bad("size_max", v.into());
            }
            c.size_max = Some(v);
        }
        if features & f::SEG_MAX != 0 {
            // 0 would forbid every data request; Linux reads it as 1. The driver caps it.
            c.seg_max = Some(le32(raw, offset::SEG_MAX).max(1));
        }
        if features & f::GEOMETRY != 0 {
            c.geometry = Some(Geometry {
                cylinders: le16(raw, offset::GEOMETRY),
                heads: raw[offset::GEOMETRY + 2],
                sectors: raw[offset::GEOMETRY + 3],
            });
        }
        if features & f::BLK_SIZE != 0 {
            let v = le32(raw, offset::BLK_SIZE);
            if !(512..=65536).contains(&v) || !v.is_power_of_two() {
                return bad("blk_size", v.into());
            }
            c.blk_size = Some(v);
        }
        if features & f::TOPOLOGY != 0 {
            let t = Topology {
                physical_block_exp: raw[offset::TOPOLOGY],
                alignment_offset: raw[offset::TOPOLOGY + 1],
                min_io_size: le16(raw, offset::TOPOLOGY + 2),
                opt_io_size: le32(raw, offset::TOPOLOGY + 4),
            };
            if t.physical_block_exp > 16 {
                return bad("physical_block_exp", t.physical_block_exp.into());
            }
            c.topology = Some(t);
        }
        if features & f::CONFIG_WCE != 0 {
            c.writeback = Some(raw[offset::WRITEBACK] != 0);
        }
        if features & f::DISCARD != 0 {
            c.max_discard_sectors = Some(no_limit_if_zero(le32(raw, offset::MAX_DISCARD_SECTORS)));
        }
        if features & f::WRITE_ZEROES != 0 {
            c.max_write_zeroes_sectors = Some(no_limit_if_zero(le32(
                raw,
                offset::MAX_WRITE_ZEROES_SECTORS,
            )));
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw() -> [u8; offset::LEN] {
        let mut r = [0u8; offset::LEN];
        r[0..8].copy_from_slice(&32768u64.to_le_bytes());
        r[8..12].copy_from_slice(&65536u32.to_le_bytes());
        r[12..16].copy_from_slice(&126u32.to_le_bytes());
        r[16..18].copy_from_slice(&2u16.to_le_bytes());
        r[18] = 16;
        r[19] = 63;
        r[20..24].copy_from_slice(&512u32.to_le_bytes());
        r[24] = 0;
        r[32] = 1;
        r[36..40].copy_from_slice(&4194303u32.to_le_bytes());
        r[48..52].copy_from_slice(&4194303u32.to_le_bytes());
        r
    }

    #[test]
    fn parses_what_was_negotiated_only() {
        let all = feature::all_supported();
        let c = BlkConfig::parse(&raw(), all).unwrap();
        assert_eq!(c.capacity, 32768);
        assert_eq!(
            (c.size_max, c.seg_max, c.blk_size),
            (Some(65536), Some(126), Some(512))
        );
        assert_eq!(
            c.geometry,
            Some(Geometry {
                cylinders: 2,
                heads: 16,
                sectors: 63
            })
        );
        assert_eq!(c.writeback, Some(true));
        assert_eq!(c.max_discard_sectors, Some(4194303));
        let none = BlkConfig::parse(&raw(), 0).unwrap();
        assert_eq!(
            none,
            BlkConfig {
                capacity: 32768,
                ..BlkConfig::default()
            }
        );
    }

    #[test]
    fn out_of_range_values_are_errors() {
        let all = feature::all_supported();
        let mut r = raw();
        r[20..24].copy_from_slice(&1000u32.to_le_bytes());
        assert_eq!(
            BlkConfig::parse(&r, all),
            Err(ConfigError::OutOfRange {
                field: "blk_size",
                value: 1000
            })
        );
        let mut r = raw();
        r[0..8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(
            BlkConfig::parse(&r, 0),
            Err(ConfigError::OutOfRange {
                field: "capacity",
                ..
            })
        ));
        let mut r = raw();
        r[8..12].copy_from_slice(&100u32.to_le_bytes());
        assert!(matches!(
            BlkConfig::parse(&r, all),
            Err(ConfigError::OutOfRange {
                field: "size_max",
                ..
            })
        ));
        // Not negotiated: not checked.
        assert!(BlkConfig::parse(&r, 0).is_ok());
    }

    /// Values the spec allows are never errors: the limits take their spec meaning.
    #[test]
    fn zero_limits_take_their_spec_meaning() {
        let all = feature::all_supported();
        let mut r = raw();
        r[12..16].copy_from_slice(&0u32.to_le_bytes());
        r[36..40].copy_from_slice(&0u32.to_le_bytes());
        r[48..52].copy_from_slice(&0u32.to_le_bytes());
        let c = BlkConfig::parse(&r, all).expect("conformant values");
        assert_eq!(c.seg_max, Some(1), "seg_max 0 is read as 1 (Linux)");
        assert_eq!(c.max_discard_sectors, Some(u32::MAX), "0: no limit");
        assert_eq!(c.max_write_zeroes_sectors, Some(u32::MAX), "0: no limit");
        r[12..16].copy_from_slice(&100_000u32.to_le_bytes());
        assert_eq!(BlkConfig::parse(&r, all).unwrap().seg_max, Some(100_000));
    }
}
