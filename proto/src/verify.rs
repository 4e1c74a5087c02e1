//! The verify lines (kernel option `verify=`, `cargo xtask verify`): what the kernel read from
//! each disk, one CRC-32 per MiB and pass, and what went wrong where.
//!
//! ```text
//! verify disk=0 pass=intr/none mib=0 crc32=1c291ca3
//! verify disk=0 pass=intr/none ioerr op=read sector=4096 sectors=128
//! verify disk=0 pass=intr/none bad op=read sector=4096
//! verify disk=0 pass=write/none mismatch sector=77
//! verify disk=0 pass=intr/none progress mib=16/64
//! verify disk=0 pass=intr/none done sectors=131072 ns=812000000 mib_s=78.8
//! verify disk=0 pass=intr/none error: <why>
//! ```
//!
//! `mib=I` covers sectors `2048*I ..` (a MiB: 2^20 bytes, 2048 sectors of 512 bytes), the last
//! one possibly shorter; its `crc32` is zlib's `crc32` (CRC-32/IEEE) of those bytes as read,
//! with every sector reported `bad op=read` in that pass counted as 512 zero bytes.
//! `ioerr` is one request the device failed with an I/O error (its first sector and length
//! in sectors); `bad` is one sector that failed again when re-read (or re-written) alone.
//! `mismatch` is a sector that read back other than the write pattern (`write_pattern`).

use crate::bench::Fixed;
use core::fmt;

/// What every verify line starts with.
pub const PREFIX: &str = "verify ";

/// Bytes per sector.
pub const SECTOR_BYTES: u64 = 512;
/// Sectors per MiB: the unit of a checksum line.
pub const SECTORS_PER_MIB: u64 = 2048;

words! {
    /// How a pass takes completions (`intr`, `polled`), or the pass that writes the pattern.
    Mode { Intr = "intr", Polled = "polled", Write = "write" }
}

words! {
    /// The bus_dma cache model DMA memory sits behind during a pass (kernel option
    /// `dma_model`): none, the 68030's write-through or the 68040's copyback data cache.
    Model { None = "none", M68030 = "030", M68040 = "040" }
}

words! {
    /// The request type an error line is about.
    IoOp { Read = "read", Write = "write" }
}

/// One pass over a disk: `<mode>/<model>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pass {
    pub mode: Mode,
    pub model: Model,
}

impl Pass {
    /// The read passes `cargo xtask verify` runs by default, in the order the kernel runs
    /// them: each model, interrupt then polled.
    pub const READ_PASSES: [Pass; 6] = [
        Pass::new(Mode::Intr, Model::None),
        Pass::new(Mode::Polled, Model::None),
        Pass::new(Mode::Intr, Model::M68030),
        Pass::new(Mode::Polled, Model::M68030),
        Pass::new(Mode::Intr, Model::M68040),
        Pass::new(Mode::Polled, Model::M68040),
    ];

    pub const fn new(mode: Mode, model: Model) -> Pass {
        Pass { mode, model }
    }

    /// Parses `<mode>/<model>`.
    pub fn parse(text: &str) -> Option<Pass> {
        let (mode, model) = text.split_once('/')?;
        Some(Pass::new(Mode::from_word(mode)?, Model::from_word(model)?))
    }
}

impl fmt::Display for Pass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.mode, self.model)
    }
}

/// What a line says, after `verify disk=<slot> pass=<pass> `.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body<'a> {
    /// `mib=<index> crc32=<8 hex digits>`
    Crc { mib: u64, crc32: u32 },
    /// `ioerr op=<op> sector=<lba> sectors=<n>`: one request failed with an I/O error.
    IoErr { op: IoOp, sector: u64, sectors: u64 },
    /// `bad op=<op> sector=<lba>`: one sector failed again alone.
    Bad { op: IoOp, sector: u64 },
    /// `mismatch sector=<lba>`: read back other than the write pattern.
    Mismatch { sector: u64 },
    /// `progress mib=<done>/<all>`
    Progress { mib: u64, of: u64 },
    /// `done sectors=<n> ns=<n> mib_s=<x.y>`: the pass ended; its rate in MiB/s (guest clock).
    Done {
        sectors: u64,
        ns: u64,
        mib_s: Fixed<1>,
    },
    /// `error: <why>`: the pass stopped.
    Error(&'a str),
}

/// One verify line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line<'a> {
    /// The disk's virtio slot.
    pub disk: u32,
    pub pass: Pass,
    pub body: Body<'a>,
}

impl fmt::Display for Line<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}disk={} pass={} ", self.disk, self.pass)?;
        match self.body {
            Body::Crc { mib, crc32 } => write!(f, "mib={mib} crc32={crc32:08x}"),
            Body::IoErr {
                op,
                sector,
                sectors,
            } => {
                write!(f, "ioerr op={op} sector={sector} sectors={sectors}")
            }
            Body::Bad { op, sector } => write!(f, "bad op={op} sector={sector}"),
            Body::Mismatch { sector } => write!(f, "mismatch sector={sector}"),
            Body::Progress { mib, of } => write!(f, "progress mib={mib}/{of}"),
            Body::Done { sectors, ns, mib_s } => {
                write!(f, "done sectors={sectors} ns={ns} mib_s={mib_s}")
            }
            Body::Error(why) => write!(f, "error: {why}"),
        }
    }
}

/// Why a line that starts with `verify disk=` does not parse: the shape it should have had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseError(pub &'static str);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not of the form '{}'", self.0)
    }
}

const HEAD: &str = "verify disk=N pass=MODE/MODEL ...";

/// Decimal digits only, at least one.
fn uint(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// `key=value` with this key, the value parsed by `f`.
fn field<T>(token: Option<&str>, key: &str, f: impl Fn(&str) -> Option<T>) -> Option<T> {
    f(token?.strip_prefix(key)?.strip_prefix('=')?)
}

/// Parses one console line (surrounding whitespace ignored): Ok(None) if it does not start
/// with `verify disk=`, Err if it does but is malformed.
pub fn parse_line(line: &str) -> Result<Option<Line<'_>>, ParseError> {
    let Some(rest) = line.trim().strip_prefix(PREFIX) else {
        return Ok(None);
    };
    if !rest.starts_with("disk=") {
        return Ok(None);
    }
    let mut words = rest.splitn(3, ' ');
    let disk = field(words.next(), "disk", uint)
        .and_then(|d| u32::try_from(d).ok())
        .ok_or(ParseError(HEAD))?;
    let pass = field(words.next(), "pass", Pass::parse).ok_or(ParseError(HEAD))?;
    let body = words.next().ok_or(ParseError(HEAD))?;
    let line = |body| Ok(Some(Line { disk, pass, body }));
    if let Some(why) = body.strip_prefix("error: ") {
        return line(Body::Error(why));
    }
    let t: [Option<&str>; 5] = {
        let mut it = body.split(' ');
        let t = [it.next(), it.next(), it.next(), it.next(), it.next()];
        if it.next().is_some() {
            return Err(ParseError(
                "a verify line with at most 4 fields after pass=",
            ));
        }
        t
    };
    let op = |t| field(t, "op", IoOp::from_word);
    let hex8 = |v: &str| {
        if v.len() == 8 && v.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            u32::from_str_radix(v, 16).ok()
        } else {
            None
        }
    };
    let parsed = match t[0] {
        Some(w) if w.starts_with("mib=") => {
            const SHAPE: &str = "... mib=N crc32=XXXXXXXX";
            match (field(t[0], "mib", uint), field(t[1], "crc32", hex8), t[2]) {
                (Some(mib), Some(crc32), None) => Body::Crc { mib, crc32 },
                _ => return Err(ParseError(SHAPE)),
            }
        }
        Some("ioerr") => {
            const SHAPE: &str = "... ioerr op=read|write sector=N sectors=N";
            match (
                op(t[1]),
                field(t[2], "sector", uint),
                field(t[3], "sectors", uint),
                t[4],
            ) {
                (Some(op), Some(sector), Some(sectors), None) => Body::IoErr {
                    op,
                    sector,
                    sectors,
                },
                _ => return Err(ParseError(SHAPE)),
            }
        }
        Some("bad") => match (op(t[1]), field(t[2], "sector", uint), t[3]) {
            (Some(op), Some(sector), None) => Body::Bad { op, sector },
            _ => return Err(ParseError("... bad op=read|write sector=N")),
        },
        Some("mismatch") => match (field(t[1], "sector", uint), t[2]) {
            (Some(sector), None) => Body::Mismatch { sector },
            _ => return Err(ParseError("... mismatch sector=N")),
        },
        Some("progress") => {
            let of = |v: &str| {
                let (a, b) = v.split_once('/')?;
                Some((uint(a)?, uint(b)?))
            };
            match (field(t[1], "mib", of), t[2]) {
                (Some((mib, of)), None) => Body::Progress { mib, of },
                _ => return Err(ParseError("... progress mib=N/N")),
            }
        }
        Some("done") => match (
            field(t[1], "sectors", uint),
            field(t[2], "ns", uint),
            field(t[3], "mib_s", Fixed::<1>::parse),
            t[4],
        ) {
            (Some(sectors), Some(ns), Some(mib_s), None) => Body::Done { sectors, ns, mib_s },
            _ => return Err(ParseError("... done sectors=N ns=N mib_s=N.N")),
        },
        _ => return Err(ParseError(HEAD)),
    };
    line(parsed)
}

/// MiB/s (2^20 bytes per second) of `bytes` in `ns`, one decimal, integers only.
pub fn mib_s(bytes: u64, ns: u64) -> Fixed<1> {
    // bytes * 10^10 overflows past ~1.8 GB; scale by parts instead.
    let ns = ns.max(1);
    let per_s_x10 = (u128::from(bytes) * 10_000_000_000 / u128::from(ns)) >> 20;
    Fixed::from_scaled(u64::try_from(per_s_x10).unwrap_or(u64::MAX))
}

/// The 512 bytes `cargo xtask verify --write` puts in sector `sector` with `seed`: 128
/// little-endian words of an xorshift32 sequence started from both, so every sector and every
/// seed differ (a write that lands on the wrong sector, or a stale one from another run,
/// shows).
pub fn write_pattern(seed: u32, sector: u64, out: &mut [u8; 512]) {
    let lo = sector as u32;
    let hi = (sector >> 32) as u32;
    let mut x = lo.wrapping_mul(0x9e37_79b1) ^ hi.wrapping_mul(0x85eb_ca77) ^ seed ^ 0x6a09_e667;
    if x == 0 {
        x = 0x1234_5678;
    }
    for word in out.chunks_exact_mut(4) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        word.copy_from_slice(&x.to_le_bytes());
    }
    // The sector number in the first 8 bytes (xor'd in, so the whole sector stays
    // seed-dependent): a sector written to the wrong place is named by what it holds.
    for (b, s) in out[..8].iter_mut().zip(sector.to_le_bytes()) {
        *b ^= s;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    fn l(disk: u32, pass: &str, body: Body<'static>) -> Line<'static> {
        Line {
            disk,
            pass: Pass::parse(pass).unwrap(),
            body,
        }
    }

    #[test]
    fn every_line_formats_as_documented_and_parses_back() {
        let cases = [
            (
                l(
                    0,
                    "intr/none",
                    Body::Crc {
                        mib: 0,
                        crc32: 0x1c29_1ca3,
                    },
                ),
                "verify disk=0 pass=intr/none mib=0 crc32=1c291ca3",
            ),
            (
                l(
                    127,
                    "polled/040",
                    Body::Crc {
                        mib: 63,
                        crc32: 0xf,
                    },
                ),
                "verify disk=127 pass=polled/040 mib=63 crc32=0000000f",
            ),
            (
                l(
                    1,
                    "intr/030",
                    Body::IoErr {
                        op: IoOp::Read,
                        sector: 4096,
                        sectors: 128,
                    },
                ),
                "verify disk=1 pass=intr/030 ioerr op=read sector=4096 sectors=128",
            ),
            (
                l(
                    0,
                    "write/none",
                    Body::Bad {
                        op: IoOp::Write,
                        sector: 12345,
                    },
                ),
                "verify disk=0 pass=write/none bad op=write sector=12345",
            ),
            (
                l(0, "write/none", Body::Mismatch { sector: 77 }),
                "verify disk=0 pass=write/none mismatch sector=77",
            ),
            (
                l(0, "intr/none", Body::Progress { mib: 16, of: 64 }),
                "verify disk=0 pass=intr/none progress mib=16/64",
            ),
            (
                l(
                    0,
                    "polled/none",
                    Body::Done {
                        sectors: 131072,
                        ns: 812_000_000,
                        mib_s: Fixed::from_scaled(788),
                    },
                ),
                "verify disk=0 pass=polled/none done sectors=131072 ns=812000000 mib_s=78.8",
            ),
            (
                l(2, "intr/none", Body::Error("no such disk")),
                "verify disk=2 pass=intr/none error: no such disk",
            ),
        ];
        for (line, text) in cases {
            assert_eq!(line.to_string(), text);
            assert_eq!(parse_line(text), Ok(Some(line)), "{text}");
            let padded = std::format!("  {text}\r");
            assert_eq!(parse_line(&padded), Ok(Some(line)), "{text}");
        }
    }

    #[test]
    fn other_lines_are_not_verify_lines() {
        for text in [
            "",
            "test a ... ok",
            "verify: 2 disks",
            "verifying disk=0",
            "bench disk=0",
        ] {
            assert_eq!(parse_line(text), Ok(None), "{text}");
        }
    }

    #[test]
    fn malformed_lines_are_refused_with_their_shape() {
        for text in [
            "verify disk=x pass=intr/none mib=0 crc32=00000000",
            "verify disk=0 pass=intr mib=0 crc32=00000000",
            "verify disk=0 pass=irq/none mib=0 crc32=00000000",
            "verify disk=0 pass=intr/060 mib=0 crc32=00000000",
            "verify disk=0 pass=intr/none",
            "verify disk=0 pass=intr/none mib=0 crc32=0000000",
            "verify disk=0 pass=intr/none mib=0 crc32=0000000g",
            "verify disk=0 pass=intr/none mib=0 crc32=0000000F",
            "verify disk=0 pass=intr/none mib=-1 crc32=00000000",
            "verify disk=0 pass=intr/none mib=0 crc32=00000000 extra",
            "verify disk=0 pass=intr/none ioerr op=read sector=1",
            "verify disk=0 pass=intr/none ioerr op=flush sector=1 sectors=1",
            "verify disk=0 pass=intr/none bad sector=1",
            "verify disk=0 pass=intr/none mismatch sector=",
            "verify disk=0 pass=intr/none progress mib=3",
            "verify disk=0 pass=intr/none done sectors=1 ns=1 mib_s=1",
            "verify disk=0 pass=intr/none what",
            "verify disk=4294967296 pass=intr/none mib=0 crc32=00000000",
        ] {
            assert!(parse_line(text).is_err(), "{text} was accepted");
        }
        assert_eq!(
            parse_line("verify disk=0 pass=intr/none mib=0 crc32=xyz")
                .unwrap_err()
                .to_string(),
            "not of the form '... mib=N crc32=XXXXXXXX'"
        );
    }

    #[test]
    fn passes() {
        assert_eq!(Pass::READ_PASSES.len(), 6);
        let names: std::vec::Vec<_> = Pass::READ_PASSES.iter().map(|p| p.to_string()).collect();
        assert_eq!(
            names,
            [
                "intr/none",
                "polled/none",
                "intr/030",
                "polled/030",
                "intr/040",
                "polled/040"
            ]
        );
        assert_eq!(
            Pass::parse("write/040"),
            Some(Pass::new(Mode::Write, Model::M68040))
        );
        assert_eq!(Pass::parse("intr/none/x"), None);
        assert_eq!(Pass::parse("intr"), None);
    }

    #[test]
    fn rates() {
        // 64 MiB in 2 s: 32.0 MiB/s.
        assert_eq!(mib_s(64 << 20, 2_000_000_000).to_string(), "32.0");
        // 1 MiB in 3 s: 0.333... truncated.
        assert_eq!(mib_s(1 << 20, 3_000_000_000).to_string(), "0.3");
        // A 2 TiB disk read in 1 ns does not overflow.
        assert_eq!(
            mib_s(2 << 40, 1).scaled(),
            u64::try_from(((2u128 << 40) * 10_000_000_000) >> 20).unwrap()
        );
        assert_eq!(mib_s(1, 0).scaled(), 10_000_000_000 >> 20);
    }

    #[test]
    fn the_write_pattern_depends_on_sector_and_seed() {
        let mut a = [0u8; 512];
        let mut b = [0u8; 512];
        write_pattern(1, 0, &mut a);
        write_pattern(1, 1, &mut b);
        assert_ne!(a, b);
        write_pattern(2, 0, &mut b);
        assert_ne!(a, b);
        write_pattern(1, 1 << 32, &mut b);
        assert_ne!(a, b);
        write_pattern(1, 0, &mut b);
        assert_eq!(a, b, "deterministic");
        // Worked by hand: sector 0, seed 0: x = 0x6a09e667; one xorshift32 step
        // (x ^= x << 13; x ^= x >> 17; x ^= x << 5) gives the first word.
        let mut x: u32 = 0x6a09_e667;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        write_pattern(0, 0, &mut a);
        assert_eq!(a[..4], x.to_le_bytes());
        // Not constant within a sector.
        assert!(a.chunks(4).any(|w| w != &a[..4]));
    }
}
