//! The scratch disks: four images the xtask creates for every guest run (fresh each time)
//! and the kernel's virtio, blk and bench code overwrites and checks. Slot numbers are
//! virtio-mmio slots; sizes and sector numbers are in 512-byte sectors.

use core::fmt;

/// The unit of the fill pattern, the disk sizes and the injected-error sectors.
pub const SECTOR_BYTES: u64 = 512;

/// One scratch disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Disk {
    /// Its virtio-mmio slot (the xtask pins it there with `bus=`).
    pub slot: u32,
    /// Size in 512-byte sectors.
    pub sectors: u64,
    /// Attached `readonly=on`: the device offers VIRTIO_BLK_F_RO.
    pub read_only: bool,
    /// What GET_ID answers (QEMU's `serial=` property).
    pub serial: &'static str,
    /// Behind QEMU's blkdebug with `BlkdebugRules`: reads covering `READ_ERROR_SECTOR` and
    /// writes covering `WRITE_ERROR_SECTOR` fail.
    pub faulty: bool,
}

/// The read-only disk's slot.
pub const READ_ONLY_SLOT: u32 = 2;
/// The blkdebug disk's slot.
pub const FAULTY_SLOT: u32 = 3;

/// Every scratch disk, indexed by slot: slot 0 16 MiB (the benchmark's), slots 1-3 1 MiB.
pub const DISKS: [Disk; 4] = [
    Disk {
        slot: 0,
        sectors: 32768,
        read_only: false,
        serial: "m68k-disk0",
        faulty: false,
    },
    Disk {
        slot: 1,
        sectors: 2048,
        read_only: false,
        serial: "m68k-disk1",
        faulty: false,
    },
    Disk {
        slot: READ_ONLY_SLOT,
        sectors: 2048,
        read_only: true,
        serial: "m68k-disk2",
        faulty: false,
    },
    Disk {
        slot: FAULTY_SLOT,
        sectors: 2048,
        read_only: false,
        serial: "m68k-faulty3",
        faulty: true,
    },
];

/// The scratch disk in `slot`, if there is one.
pub fn disk(slot: u32) -> Option<&'static Disk> {
    DISKS.get(slot as usize)
}

/// The byte a fresh scratch disk holds at `offset` (0..512) of 512-byte sector `sector`:
/// `(sector * 31 ^ offset ^ 0xa5) as u8`. Neighbouring sectors and offsets differ, so a read
/// of the wrong sector or a shifted buffer shows.
pub fn pattern(sector: u64, offset: u64) -> u8 {
    (sector.wrapping_mul(31) ^ offset ^ 0xa5) as u8
}

/// A read covering this sector of the faulty disk fails with EIO, every time.
pub const READ_ERROR_SECTOR: u64 = 100;
/// A write covering this sector of the faulty disk fails with EIO, every time.
pub const WRITE_ERROR_SECTOR: u64 = 200;
/// The errno blkdebug injects: EIO (Linux `errno.h`), which virtio-blk reports as IOERR.
pub const INJECTED_ERRNO: u32 = 5;

/// Prints the faulty disk's QEMU blkdebug configuration (the file given as `file.config=`).
pub struct BlkdebugRules;

impl fmt::Display for BlkdebugRules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rules = [
            ("read_aio", READ_ERROR_SECTOR),
            ("write_aio", WRITE_ERROR_SECTOR),
        ];
        for (i, (event, sector)) in rules.into_iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            writeln!(f, "[inject-error]")?;
            writeln!(f, "event = \"{event}\"")?;
            writeln!(f, "errno = \"{INJECTED_ERRNO}\"")?;
            writeln!(f, "sector = \"{sector}\"")?;
            writeln!(f, "once = \"off\"")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    #[test]
    fn pattern_values_worked_by_hand() {
        // 0 ^ 0 ^ 0xa5.
        assert_eq!(pattern(0, 0), 0xa5);
        // 31 = 0x1f; 0x1f ^ 0xa5 = 0xba.
        assert_eq!(pattern(1, 0), 0xba);
        // 8 * 31 = 248 = 0xf8; ^ 3 = 0xfb; ^ 0xa5 = 0x5e.
        assert_eq!(pattern(8, 3), 0x5e);
        // 100 * 31 = 3100 = 0xc1c; low bytes 0x1c ^ 0xff (511 = 0x1ff) = 0xe3; ^ 0xa5 = 0x46.
        assert_eq!(pattern(100, 511), 0x46);
        // The multiply wraps instead of overflowing.
        assert_eq!(pattern(u64::MAX, 0), (0u64.wrapping_sub(31) ^ 0xa5) as u8);
    }

    #[test]
    fn the_disks_are_as_documented() {
        // 16 MiB and 1 MiB in 512-byte sectors.
        assert_eq!(DISKS[0].sectors * SECTOR_BYTES, 16 << 20);
        for d in &DISKS[1..] {
            assert_eq!(d.sectors * SECTOR_BYTES, 1 << 20);
        }
        for (i, d) in DISKS.iter().enumerate() {
            assert_eq!(d.slot as usize, i, "indexed by slot");
        }
        let serials: [&str; 4] = DISKS.map(|d| d.serial);
        assert_eq!(
            serials,
            ["m68k-disk0", "m68k-disk1", "m68k-disk2", "m68k-faulty3"]
        );
        assert_eq!(DISKS.map(|d| d.read_only), [false, false, true, false]);
        assert_eq!(DISKS.map(|d| d.faulty), [false, false, false, true]);
        assert_eq!(disk(3).map(|d| d.serial), Some("m68k-faulty3"));
        assert_eq!(disk(4), None);
        // The injected errors lie on the faulty disk, in different 4 KiB blocks.
        assert!(WRITE_ERROR_SECTOR < DISKS[3].sectors);
        assert_ne!(READ_ERROR_SECTOR / 8, WRITE_ERROR_SECTOR / 8);
    }

    #[test]
    fn blkdebug_rules_text() {
        assert_eq!(
            BlkdebugRules.to_string(),
            "[inject-error]\n\
             event = \"read_aio\"\n\
             errno = \"5\"\n\
             sector = \"100\"\n\
             once = \"off\"\n\
             \n\
             [inject-error]\n\
             event = \"write_aio\"\n\
             errno = \"5\"\n\
             sector = \"200\"\n\
             once = \"off\"\n"
        );
    }
}
