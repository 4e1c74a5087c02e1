//! The bootinfo list QEMU's m68k `virt` board passes instead of a device tree.
//!
//! Owns: decoding and validating the list into typed records. It runs before the heap exists
//! (the heap's size comes from here), so it allocates nothing: records borrow the buffer.
//! A malformed list is an error value, never a panic.
//!
//! Format: big-endian records `u16 tag, u16 size` (size counts the 4-byte header and the
//! record's padding), then the payload; the list ends with tag 0.
#![forbid(unsafe_code)]

use crate::arch::m68k::cpu::Model;
use crate::board::virt::memmap;
use core::fmt;
use drivers::virtio::mmio::{SLOTS, SLOT_SIZE};

/// Largest number of memory chunks kept (QEMU's virt board passes one).
pub const MAX_MEM_CHUNKS: usize = 4;
/// Largest number of unknown records kept for display; more are counted, not kept.
pub const MAX_UNKNOWN: usize = 16;

/// The machine type QEMU's virt board reports in MACHTYPE.
pub const MACH_VIRT: u32 = 14;

pub mod tag {
    pub const LAST: u16 = 0x0000;
    pub const MACHTYPE: u16 = 0x0001;
    pub const CPUTYPE: u16 = 0x0002;
    pub const FPUTYPE: u16 = 0x0003;
    pub const MMUTYPE: u16 = 0x0004;
    pub const MEMCHUNK: u16 = 0x0005;
    pub const RAMDISK: u16 = 0x0006;
    pub const COMMAND_LINE: u16 = 0x0007;
    pub const RNG_SEED: u16 = 0x0008;
    pub const VIRT_QEMU_VERSION: u16 = 0x8000;
    pub const VIRT_GF_PIC_BASE: u16 = 0x8001;
    pub const VIRT_GF_RTC_BASE: u16 = 0x8002;
    pub const VIRT_GF_TTY_BASE: u16 = 0x8003;
    pub const VIRT_VIRTIO_BASE: u16 = 0x8004;
    pub const VIRT_CTRL_BASE: u16 = 0x8005;
}

/// A physical memory range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemChunk {
    pub addr: u32,
    pub size: u32,
}

impl MemChunk {
    /// One past the last byte, or None if the chunk wraps past 4 GiB.
    pub fn end(&self) -> Option<u32> {
        self.addr.checked_add(self.size)
    }
}

/// A device's register base and its interrupt number (Linux's numbering: 8 + 32*(pic-1) + bit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Device {
    pub base: u32,
    pub irq: u32,
}

/// A record this parser does not know, kept so the banner can show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UnknownRecord<'a> {
    pub tag: u16,
    pub payload: &'a [u8],
}

/// QEMU's version as the VIRT_QEMU_VERSION record encodes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QemuVersion {
    pub major: u8,
    pub minor: u8,
    pub micro: u8,
}

impl fmt::Display for QemuVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.micro)
    }
}

/// A fixed-capacity list: the parser must not allocate.
pub type List<T, const N: usize> = heapless::Vec<T, N>;

/// Everything the bootinfo list said.
#[derive(Debug, Clone, Default)]
pub struct BootInfo<'a> {
    pub machine_type: Option<u32>,
    pub cpu_type: Option<u32>,
    pub fpu_type: Option<u32>,
    pub mmu_type: Option<u32>,
    pub mem_chunks: List<MemChunk, MAX_MEM_CHUNKS>,
    pub ramdisk: Option<MemChunk>,
    pub command_line: Option<&'a str>,
    pub rng_seed: Option<&'a [u8]>,
    pub qemu_version: Option<QemuVersion>,
    pub pic: Option<Device>,
    pub rtc: Option<Device>,
    pub tty: Option<Device>,
    pub virtio: Option<Device>,
    pub ctrl: Option<Device>,
    pub unknown: List<UnknownRecord<'a>, MAX_UNKNOWN>,
    /// Unknown records beyond MAX_UNKNOWN, counted only.
    pub unknown_dropped: usize,
    /// Bytes of the list, end record included.
    pub length: usize,
}

/// What is wrong with a bootinfo list. Offsets are from the start of the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// Fewer than 4 bytes left where a record header should be (no end record).
    Truncated { offset: usize },
    /// A record claims a size below its own 4-byte header.
    SizeTooSmall { offset: usize, tag: u16, size: u16 },
    /// A record claims more bytes than the list has.
    SizeTooLarge { offset: usize, tag: u16, size: u16 },
    /// A known record whose payload is too short for its fields.
    PayloadTooShort {
        offset: usize,
        tag: u16,
        size: u16,
        needed: usize,
    },
    /// A record that may appear once appeared again.
    Duplicate { offset: usize, tag: u16 },
    /// More MEMCHUNK records than MAX_MEM_CHUNKS.
    TooManyMemChunks { offset: usize },
    /// COMMAND_LINE without a NUL terminator inside its record.
    UnterminatedString { offset: usize },
    /// COMMAND_LINE that is not UTF-8.
    NotUtf8 { offset: usize },
    /// RNG_SEED whose length field runs past the record.
    BadSeedLength { offset: usize, len: u16 },
    /// A memory chunk or device range that wraps past 4 GiB.
    Wraps { offset: usize, tag: u16 },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::Truncated { offset } => {
                write!(f, "list ends without an end record (at byte {offset})")
            }
            Error::SizeTooSmall { offset, tag, size } => write!(
                f,
                "record {tag:#06x} at byte {offset} has size {size}, less than its 4-byte header"
            ),
            Error::SizeTooLarge { offset, tag, size } => write!(
                f,
                "record {tag:#06x} at byte {offset} has size {size}, past the end of the list"
            ),
            Error::PayloadTooShort { offset, tag, size, needed } => write!(
                f,
                "record {tag:#06x} at byte {offset} has size {size}; its fields need {needed} payload bytes"
            ),
            Error::Duplicate { offset, tag } => {
                write!(f, "record {tag:#06x} at byte {offset} appears a second time")
            }
            Error::TooManyMemChunks { offset } => write!(
                f,
                "more than {MAX_MEM_CHUNKS} MEMCHUNK records (the extra one at byte {offset})"
            ),
            Error::UnterminatedString { offset } => {
                write!(f, "COMMAND_LINE at byte {offset} has no NUL terminator")
            }
            Error::NotUtf8 { offset } => write!(f, "COMMAND_LINE at byte {offset} is not UTF-8"),
            Error::BadSeedLength { offset, len } => write!(
                f,
                "RNG_SEED at byte {offset} claims {len} bytes, more than its record holds"
            ),
            Error::Wraps { offset, tag } => {
                write!(f, "record {tag:#06x} at byte {offset} describes a range past 4 GiB")
            }
        }
    }
}

impl Error {
    /// The offset of the COMMAND_LINE record this error is about, if it is about one: how
    /// QEMU's bootinfo for an over-long command line fails to parse (its size field is
    /// truncated to 16 bits).
    pub fn command_line_record(&self) -> Option<usize> {
        match *self {
            Error::SizeTooSmall { offset, tag, .. } | Error::SizeTooLarge { offset, tag, .. }
                if tag == tag::COMMAND_LINE =>
            {
                Some(offset)
            }
            Error::UnterminatedString { offset } => Some(offset),
            _ => None,
        }
    }
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn set_once<T>(slot: &mut Option<T>, value: T, offset: usize, tag: u16) -> Result<(), Error> {
    if slot.is_some() {
        return Err(Error::Duplicate { offset, tag });
    }
    *slot = Some(value);
    Ok(())
}

/// Parses the list at the start of `buf`. Bytes after the end record are ignored.
pub fn parse(buf: &[u8]) -> Result<BootInfo<'_>, Error> {
    let mut info = BootInfo::default();
    let mut offset = 0usize;
    loop {
        if buf.len() < offset + 4 {
            return Err(Error::Truncated { offset });
        }
        let tag = be16(buf, offset);
        if tag == tag::LAST {
            info.length = offset + 4;
            return Ok(info);
        }
        let size = be16(buf, offset + 2);
        if size < 4 {
            return Err(Error::SizeTooSmall { offset, tag, size });
        }
        if offset + usize::from(size) > buf.len() {
            return Err(Error::SizeTooLarge { offset, tag, size });
        }
        let payload = &buf[offset + 4..offset + usize::from(size)];
        let need = |needed: usize| {
            if payload.len() < needed {
                Err(Error::PayloadTooShort {
                    offset,
                    tag,
                    size,
                    needed,
                })
            } else {
                Ok(())
            }
        };
        match tag {
            tag::MACHTYPE => {
                need(4)?;
                set_once(&mut info.machine_type, be32(payload, 0), offset, tag)?;
            }
            tag::CPUTYPE => {
                need(4)?;
                set_once(&mut info.cpu_type, be32(payload, 0), offset, tag)?;
            }
            tag::FPUTYPE => {
                need(4)?;
                set_once(&mut info.fpu_type, be32(payload, 0), offset, tag)?;
            }
            tag::MMUTYPE => {
                need(4)?;
                set_once(&mut info.mmu_type, be32(payload, 0), offset, tag)?;
            }
            tag::MEMCHUNK | tag::RAMDISK => {
                need(8)?;
                let chunk = MemChunk {
                    addr: be32(payload, 0),
                    size: be32(payload, 4),
                };
                if chunk.end().is_none() {
                    return Err(Error::Wraps { offset, tag });
                }
                if tag == tag::RAMDISK {
                    set_once(&mut info.ramdisk, chunk, offset, tag)?;
                } else if info.mem_chunks.push(chunk).is_err() {
                    return Err(Error::TooManyMemChunks { offset });
                }
            }
            tag::COMMAND_LINE => {
                let nul = payload
                    .iter()
                    .position(|&b| b == 0)
                    .ok_or(Error::UnterminatedString { offset })?;
                let text =
                    core::str::from_utf8(&payload[..nul]).map_err(|_| Error::NotUtf8 { offset })?;
                set_once(&mut info.command_line, text, offset, tag)?;
            }
            tag::RNG_SEED => {
                need(2)?;
                let len = be16(payload, 0);
                let seed = payload
                    .get(2..2 + usize::from(len))
                    .ok_or(Error::BadSeedLength { offset, len })?;
                set_once(&mut info.rng_seed, seed, offset, tag)?;
            }
            tag::VIRT_QEMU_VERSION => {
                need(4)?;
                let v = be32(payload, 0);
                let version = QemuVersion {
                    major: (v >> 24) as u8,
                    minor: (v >> 16) as u8,
                    micro: (v >> 8) as u8,
                };
                set_once(&mut info.qemu_version, version, offset, tag)?;
            }
            tag::VIRT_GF_PIC_BASE
            | tag::VIRT_GF_RTC_BASE
            | tag::VIRT_GF_TTY_BASE
            | tag::VIRT_VIRTIO_BASE
            | tag::VIRT_CTRL_BASE => {
                need(8)?;
                let dev = Device {
                    base: be32(payload, 0),
                    irq: be32(payload, 4),
                };
                let slot = match tag {
                    tag::VIRT_GF_PIC_BASE => &mut info.pic,
                    tag::VIRT_GF_RTC_BASE => &mut info.rtc,
                    tag::VIRT_GF_TTY_BASE => &mut info.tty,
                    tag::VIRT_VIRTIO_BASE => &mut info.virtio,
                    _ => &mut info.ctrl,
                };
                set_once(slot, dev, offset, tag)?;
            }
            _ => {
                if info.unknown.push(UnknownRecord { tag, payload }).is_err() {
                    info.unknown_dropped += 1;
                }
            }
        }
        offset += usize::from(size);
    }
}

/// A record the kernel cannot run without.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    MemChunk,
    Tty,
    Ctrl,
    Pic,
    Rtc,
    Virtio,
    NotVirt(Option<u32>),
    /// A device's register window (`len` bytes from `base`) overlaps RAM or lies outside the
    /// board's device window (`memmap::DEVICE_WINDOW` to 4 GiB, the range the kernel maps
    /// cache-inhibited): its register accesses would write memory or go through the cache.
    DeviceWindow {
        device: &'static str,
        base: u32,
        len: u32,
    },
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Missing::MemChunk => f.write_str("no MEMCHUNK record: RAM size unknown"),
            Missing::Tty => f.write_str("no VIRT_GF_TTY_BASE record: no console"),
            Missing::Ctrl => f.write_str("no VIRT_CTRL_BASE record: cannot halt"),
            Missing::Pic => f.write_str("no VIRT_GF_PIC_BASE record"),
            Missing::Rtc => f.write_str("no VIRT_GF_RTC_BASE record"),
            Missing::Virtio => f.write_str("no VIRT_VIRTIO_BASE record"),
            Missing::NotVirt(Some(t)) => write!(f, "MACHTYPE is {t}, not {MACH_VIRT} (virt)"),
            Missing::NotVirt(None) => f.write_str("no MACHTYPE record"),
            Missing::DeviceWindow { device, base, len } => write!(
                f,
                "the {device} registers ({len:#x} bytes at {base:#010x}) overlap RAM or lie outside the device window ({:#010x}..4 GiB)",
                memmap::DEVICE_WINDOW
            ),
        }
    }
}

impl BootInfo<'_> {
    /// Checks that this is a virt board with every device the kernel uses.
    pub fn require_virt(&self) -> Result<(), Missing> {
        if self.machine_type != Some(MACH_VIRT) {
            return Err(Missing::NotVirt(self.machine_type));
        }
        if self.mem_chunks.as_slice().is_empty() {
            return Err(Missing::MemChunk);
        }
        let required = [
            (self.tty, Missing::Tty),
            (self.ctrl, Missing::Ctrl),
            (self.pic, Missing::Pic),
            (self.rtc, Missing::Rtc),
            (self.virtio, Missing::Virtio),
        ];
        for (dev, missing) in required {
            if dev.is_none() {
                return Err(missing);
            }
        }
        // Each device's whole register window (the board's layout: six PICs, two RTCs, one
        // page for the TTY and virt-ctrl, every virtio slot) must lie outside RAM, where the
        // machine bus would write memory, and inside the window the kernel maps uncached.
        let windows = [
            ("PIC", self.pic, 6 * memmap::PIC_STRIDE),
            ("RTC", self.rtc, 2 * memmap::RTC_STRIDE),
            ("TTY", self.tty, memmap::DEVICE_PAGE),
            ("virt-ctrl", self.ctrl, memmap::DEVICE_PAGE),
            ("virtio", self.virtio, SLOTS * SLOT_SIZE),
        ];
        for (device, dev, len) in windows {
            let base = dev.map_or(0, |d| d.base);
            let (start, end) = (u64::from(base), u64::from(base) + u64::from(len));
            let in_ram = self.mem_chunks.as_slice().iter().any(|c| {
                let (lo, hi) = (u64::from(c.addr), u64::from(c.addr) + u64::from(c.size));
                start < hi && lo < end
            });
            let uncached = start >= u64::from(memmap::DEVICE_WINDOW) && end <= 1 << 32;
            if in_ram || !uncached {
                return Err(Missing::DeviceWindow { device, base, len });
            }
        }
        Ok(())
    }

    /// The memory chunk that contains physical address `addr`.
    pub fn chunk_containing(&self, addr: u32) -> Option<MemChunk> {
        self.mem_chunks
            .as_slice()
            .iter()
            .copied()
            .find(|c| addr >= c.addr && c.end().is_some_and(|end| addr < end))
    }
}

/// The CPU a BI_CPUTYPE value names (Linux's asm/bootinfo-m68k.h: CPU_68020 = bit 0, 68030
/// bit 1, 68040 bit 2, 68060 bit 3). The kernel identifies the CPU by probing
/// (`arch::m68k::cpu`), since QEMU 7.2 always writes 68040; this is only what bootinfo claims.
pub fn cpu_model(bits: u32) -> Option<Model> {
    match bits {
        1 => Some(Model::M68020),
        2 => Some(Model::M68030),
        4 => Some(Model::M68040),
        8 => Some(Model::M68060),
        _ => None,
    }
}

/// Name of a BI_CPUTYPE value.
pub fn cpu_name(bits: u32) -> &'static str {
    cpu_model(bits).map_or("unknown", Model::name)
}

/// Name of a BI_FPUTYPE value (FPU_68881 = bit 0, 68882 bit 1, 68040 bit 2, 68060 bit 3).
pub fn fpu_name(bits: u32) -> &'static str {
    match bits {
        1 => "68881",
        2 => "68882",
        4 => "68040",
        8 => "68060",
        _ => "unknown",
    }
}

/// Name of a BI_MMUTYPE value (MMU_68851 = bit 0, 68030 bit 1, 68040 bit 2, 68060 bit 3).
pub fn mmu_name(bits: u32) -> &'static str {
    match bits {
        1 => "68851",
        2 => "68030",
        4 => "68040",
        8 => "68060",
        _ => "unknown",
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Values from Linux's arch/m68k/include/uapi/asm/bootinfo-m68k.h.
    #[test]
    fn type_values_are_linux_bits() {
        assert_eq!(cpu_model(1 << 0), Some(Model::M68020));
        assert_eq!(cpu_model(1 << 1), Some(Model::M68030));
        assert_eq!(cpu_model(1 << 2), Some(Model::M68040));
        assert_eq!(cpu_model(1 << 3), Some(Model::M68060));
        assert_eq!(cpu_model(3), None);
        assert_eq!(fpu_name(1 << 0), "68881");
        assert_eq!(fpu_name(1 << 1), "68882");
        assert_eq!(mmu_name(1 << 0), "68851");
        assert_eq!(mmu_name(1 << 2), "68040");
    }
    use std::vec::Vec;

    /// Builds a list the way QEMU does: each record padded to 4 bytes, size counting it.
    pub struct Builder(pub Vec<u8>);

    impl Builder {
        pub fn new() -> Self {
            Builder(Vec::new())
        }
        pub fn raw(mut self, tag: u16, size: u16, payload: &[u8]) -> Self {
            self.0.extend_from_slice(&tag.to_be_bytes());
            self.0.extend_from_slice(&size.to_be_bytes());
            self.0.extend_from_slice(payload);
            self
        }
        pub fn record(self, tag: u16, payload: &[u8]) -> Self {
            let mut p = payload.to_vec();
            while !p.len().is_multiple_of(4) {
                p.push(0xa5); // garbage padding, as QEMU leaves it
            }
            let size = (p.len() + 4) as u16;
            self.raw(tag, size, &p)
        }
        pub fn u32s(self, tag: u16, words: &[u32]) -> Self {
            let p: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
            self.record(tag, &p)
        }
        pub fn string(self, tag: u16, s: &str) -> Self {
            let mut p = s.as_bytes().to_vec();
            p.push(0);
            self.record(tag, &p)
        }
        /// The board's device records (hw/m68k/virt.c), with PIC #1 at `pic`.
        pub fn devices(self, pic: u32) -> Self {
            self.u32s(tag::VIRT_GF_PIC_BASE, &[pic, memmap::PIC_BOOTINFO_IRQ])
                .u32s(
                    tag::VIRT_GF_RTC_BASE,
                    &[memmap::RTC0_BASE, memmap::RTC0_IRQ],
                )
                .u32s(tag::VIRT_GF_TTY_BASE, &[memmap::TTY_BASE, memmap::TTY_IRQ])
                .u32s(tag::VIRT_CTRL_BASE, &[memmap::CTRL_BASE, memmap::CTRL_IRQ])
                .u32s(
                    tag::VIRT_VIRTIO_BASE,
                    &[memmap::VIRTIO_BASE, memmap::VIRTIO_IRQ],
                )
        }
        pub fn end(mut self) -> Vec<u8> {
            self.0.extend_from_slice(&[0, 0, 0, 4]);
            self.0
        }
    }

    /// What QEMU 7.2 passes for `-M virt -m 128M -append "test=all"`.
    pub fn qemu_like() -> Vec<u8> {
        Builder::new()
            .u32s(tag::MACHTYPE, &[14])
            .u32s(tag::FPUTYPE, &[4])
            .u32s(tag::MMUTYPE, &[4])
            .u32s(tag::CPUTYPE, &[4])
            .u32s(tag::VIRT_QEMU_VERSION, &[0x0702_1600])
            .u32s(tag::MEMCHUNK, &[0, 128 << 20])
            .devices(memmap::PIC_BASE)
            .string(tag::COMMAND_LINE, "test=all")
            .record(tag::RNG_SEED, &[0, 4, 1, 2, 3, 4])
            .end()
    }

    #[test]
    fn parses_every_known_record() {
        let buf = qemu_like();
        let info = parse(&buf).unwrap();
        assert_eq!(info.machine_type, Some(14));
        assert_eq!(info.cpu_type, Some(4));
        assert_eq!(info.fpu_type, Some(4));
        assert_eq!(info.mmu_type, Some(4));
        assert_eq!(
            info.mem_chunks.as_slice(),
            &[MemChunk {
                addr: 0,
                size: 128 << 20
            }]
        );
        assert_eq!(
            info.qemu_version,
            Some(QemuVersion {
                major: 7,
                minor: 2,
                micro: 22
            })
        );
        assert_eq!(
            info.pic,
            Some(Device {
                base: memmap::PIC_BASE,
                irq: 1
            })
        );
        assert_eq!(
            info.rtc,
            Some(Device {
                base: memmap::RTC0_BASE,
                irq: 168
            })
        );
        assert_eq!(
            info.tty,
            Some(Device {
                base: memmap::TTY_BASE,
                irq: 39
            })
        );
        assert_eq!(
            info.ctrl,
            Some(Device {
                base: memmap::CTRL_BASE,
                irq: 8
            })
        );
        assert_eq!(
            info.virtio,
            Some(Device {
                base: memmap::VIRTIO_BASE,
                irq: 40
            })
        );
        assert_eq!(info.command_line, Some("test=all"));
        assert_eq!(info.rng_seed, Some(&[1u8, 2, 3, 4][..]));
        assert_eq!(info.length, buf.len());
        assert!(info.unknown.as_slice().is_empty());
        assert_eq!(info.require_virt(), Ok(()));
    }

    #[test]
    fn ramdisk_and_empty_command_line() {
        let buf = Builder::new()
            .u32s(tag::RAMDISK, &[0x0400_0000, 0x1000])
            .string(tag::COMMAND_LINE, "")
            .end();
        let info = parse(&buf).unwrap();
        assert_eq!(
            info.ramdisk,
            Some(MemChunk {
                addr: 0x0400_0000,
                size: 0x1000
            })
        );
        assert_eq!(info.command_line, Some(""));
    }

    #[test]
    fn unknown_records_are_kept_and_counted() {
        let mut b = Builder::new().u32s(0x1234, &[7]);
        for i in 0..MAX_UNKNOWN as u16 + 2 {
            b = b.u32s(0x9000 + i, &[]);
        }
        let buf = b.end();
        let info = parse(&buf).unwrap();
        assert_eq!(info.unknown.as_slice().len(), MAX_UNKNOWN);
        assert_eq!(info.unknown.as_slice()[0].tag, 0x1234);
        assert_eq!(info.unknown.as_slice()[0].payload, &[0, 0, 0, 7]);
        assert_eq!(info.unknown_dropped, 3);
    }

    #[test]
    fn bytes_after_the_end_record_are_ignored() {
        let mut buf = qemu_like();
        buf.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef, 1, 2]);
        assert!(parse(&buf).is_ok());
    }

    #[test]
    fn missing_end_record_is_truncated() {
        let mut buf = qemu_like();
        buf.truncate(buf.len() - 4);
        assert!(matches!(parse(&buf), Err(Error::Truncated { .. })));
        assert!(matches!(parse(&[]), Err(Error::Truncated { offset: 0 })));
        assert!(matches!(
            parse(&[0x00]),
            Err(Error::Truncated { offset: 0 })
        ));
    }

    #[test]
    fn size_below_header_is_rejected() {
        let buf = Builder::new().raw(tag::MACHTYPE, 2, &[]).end();
        assert_eq!(
            parse(&buf).unwrap_err(),
            Error::SizeTooSmall {
                offset: 0,
                tag: tag::MACHTYPE,
                size: 2
            }
        );
        // size 0 would loop forever if it were accepted
        let buf = Builder::new().raw(0x4242, 0, &[]).end();
        assert!(matches!(
            parse(&buf),
            Err(Error::SizeTooSmall { size: 0, .. })
        ));
    }

    #[test]
    fn size_past_the_end_is_rejected() {
        let buf = Builder::new().raw(tag::MEMCHUNK, 200, &[0; 8]).end();
        assert!(matches!(
            parse(&buf),
            Err(Error::SizeTooLarge { size: 200, .. })
        ));
    }

    #[test]
    fn short_payloads_are_rejected() {
        for t in [
            tag::MACHTYPE,
            tag::MEMCHUNK,
            tag::VIRT_GF_TTY_BASE,
            tag::RNG_SEED,
        ] {
            let buf = Builder::new().raw(t, 5, &[0]).end();
            assert!(
                matches!(parse(&buf), Err(Error::PayloadTooShort { tag, .. }) if tag == t),
                "tag {t:#x}"
            );
        }
    }

    #[test]
    fn duplicates_are_rejected_but_memchunks_repeat() {
        let buf = Builder::new()
            .u32s(tag::VIRT_GF_TTY_BASE, &[1, 2])
            .u32s(tag::VIRT_GF_TTY_BASE, &[3, 4])
            .end();
        assert_eq!(
            parse(&buf).unwrap_err(),
            Error::Duplicate {
                offset: 12,
                tag: tag::VIRT_GF_TTY_BASE
            }
        );
        let buf = Builder::new()
            .u32s(tag::MEMCHUNK, &[0, 0x100_0000])
            .u32s(tag::MEMCHUNK, &[0x200_0000, 0x100_0000])
            .end();
        assert_eq!(parse(&buf).unwrap().mem_chunks.as_slice().len(), 2);
        let mut b = Builder::new();
        for _ in 0..=MAX_MEM_CHUNKS {
            b = b.u32s(tag::MEMCHUNK, &[0, 1]);
        }
        assert!(matches!(
            parse(&b.end()),
            Err(Error::TooManyMemChunks { .. })
        ));
    }

    #[test]
    fn bad_strings_and_seeds_are_rejected() {
        let buf = Builder::new().record(tag::COMMAND_LINE, b"abcd").end();
        assert!(matches!(parse(&buf), Err(Error::UnterminatedString { .. })));
        let buf = Builder::new()
            .record(tag::COMMAND_LINE, b"\xff\xfe\0")
            .end();
        assert!(matches!(parse(&buf), Err(Error::NotUtf8 { .. })));
        let buf = Builder::new().record(tag::RNG_SEED, &[0, 9, 1, 2]).end();
        assert!(matches!(
            parse(&buf),
            Err(Error::BadSeedLength { len: 9, .. })
        ));
    }

    #[test]
    fn wrapping_ranges_are_rejected() {
        let buf = Builder::new()
            .u32s(tag::MEMCHUNK, &[0xffff_0000, 0x2_0000])
            .end();
        assert!(matches!(parse(&buf), Err(Error::Wraps { .. })));
    }

    #[test]
    fn require_virt_names_what_is_missing() {
        let buf = Builder::new().u32s(tag::MACHTYPE, &[14]).end();
        assert_eq!(parse(&buf).unwrap().require_virt(), Err(Missing::MemChunk));
        let buf = Builder::new().u32s(tag::MACHTYPE, &[3]).end();
        assert_eq!(
            parse(&buf).unwrap().require_virt(),
            Err(Missing::NotVirt(Some(3)))
        );
        let buf = Builder::new()
            .u32s(tag::MACHTYPE, &[14])
            .u32s(tag::MEMCHUNK, &[0, 1 << 24])
            .end();
        assert_eq!(parse(&buf).unwrap().require_virt(), Err(Missing::Tty));
    }

    /// The board's records with RAM at [ram, ram + size) and the PIC at `pic`.
    fn virt_with(ram: u32, size: u32, pic: u32) -> Vec<u8> {
        Builder::new()
            .u32s(tag::MACHTYPE, &[14])
            .u32s(tag::MEMCHUNK, &[ram, size])
            .devices(pic)
            .end()
    }

    #[test]
    fn device_windows_must_miss_ram() {
        // QEMU's layout (hw/m68k/virt.c) with 128 MiB passes.
        let buf = virt_with(0, 128 << 20, memmap::PIC_BASE);
        assert_eq!(parse(&buf).unwrap().require_virt(), Ok(()));
        // A PIC inside RAM: its six 4 KiB windows overlap the chunk's last bytes.
        let buf = virt_with(0, 128 << 20, (128 << 20) - 0x1000);
        assert_eq!(
            parse(&buf).unwrap().require_virt(),
            Err(Missing::DeviceWindow {
                device: "PIC",
                base: (128 << 20) - 0x1000,
                len: 0x6000
            })
        );
        // Inside the window but also in RAM (a chunk reaching into it): refused.
        let buf = virt_with(0xfe00_0000, 0x0100_8000, memmap::PIC_BASE);
        assert_eq!(
            parse(&buf).unwrap().require_virt(),
            Err(Missing::DeviceWindow {
                device: "PIC",
                base: memmap::PIC_BASE,
                len: 0x6000
            })
        );
        // Outside RAM but below the uncached window: refused too.
        let buf = virt_with(0, 128 << 20, 128 << 20);
        assert!(parse(&buf).unwrap().require_virt().is_err());
        // The window's last 24 KiB hold six PICs exactly; one page higher runs past 4 GiB.
        let buf = virt_with(0, 128 << 20, 0u32.wrapping_sub(0x6000));
        assert_eq!(parse(&buf).unwrap().require_virt(), Ok(()));
        let buf = virt_with(0, 128 << 20, 0u32.wrapping_sub(0x5000));
        assert!(matches!(
            parse(&buf).unwrap().require_virt(),
            Err(Missing::DeviceWindow { device: "PIC", .. })
        ));
    }

    #[test]
    fn every_error_has_a_message_naming_the_offset() {
        let e = Error::SizeTooLarge {
            offset: 40,
            tag: 5,
            size: 99,
        };
        let text = std::format!("{e}");
        assert!(text.contains("byte 40") && text.contains("0x0005") && text.contains("99"));
    }

    #[test]
    fn chunk_lookup() {
        let buf = qemu_like();
        let info = parse(&buf).unwrap();
        assert_eq!(
            info.chunk_containing(0x0080_0000).map(|c| c.size),
            Some(128 << 20)
        );
        assert_eq!(info.chunk_containing(128 << 20), None);
    }

    /// A COMMAND_LINE record as QEMU writes it: the size field is the true size truncated
    /// to 16 bits (hw/m68k/bootinfo.h stores it with stw_p).
    fn qemu_command_line(len: usize) -> Vec<u8> {
        let mut p = std::vec![b'x'; len];
        p.push(0);
        while !(p.len() + 4).is_multiple_of(4) {
            p.push(0);
        }
        let size = (p.len() + 4) as u16; // truncated, as QEMU does
        Builder::new()
            .u32s(tag::MACHTYPE, &[14])
            .raw(tag::COMMAND_LINE, size, &p)
            .record(tag::RNG_SEED, &[0, 4, 1, 2, 3, 4])
            .end()
    }

    #[test]
    fn an_over_long_command_line_is_recognised_as_one() {
        // 65527 bytes: the longest whose record size fits 16 bits.
        let buf = qemu_command_line(65527);
        let info = parse(&buf).unwrap();
        assert_eq!(info.command_line.map(str::len), Some(65527));
        // One more and the size wraps to 0; much more and it wraps to a small size whose
        // payload has no NUL. Either way the error names the COMMAND_LINE record at byte 8.
        for len in [65528, 65600, 100_000, 131_071] {
            let e = parse(&qemu_command_line(len)).unwrap_err();
            assert_eq!(e.command_line_record(), Some(8), "{len}: {e}");
        }
        // Errors about other records are not taken for it.
        let e = Error::SizeTooLarge {
            offset: 0,
            tag: tag::MEMCHUNK,
            size: 99,
        };
        assert_eq!(e.command_line_record(), None);
        assert_eq!(Error::Truncated { offset: 0 }.command_line_record(), None);
    }
}
