//! The kernel command line (QEMU's `-append`): whitespace-separated `key=value` options.
//!
//! Owns: the table of accepted options and their parsing. An unknown key, a token without
//! `=`, or a bad value is an error naming what was accepted; the caller prints it with
//! [`usage`] and exits with failure. A key given twice is an error too: silently letting one
//! win would run something other than what one of them asked for.
#![forbid(unsafe_code)]

use crate::arch::m68k::cache::Mode as CacheMode;
use crate::arch::m68k::cpu::Model;
use crate::arch::m68k::dma_sync::CpuCache;
use console_proto::bench::{CellSpec, CELL_SPEC_SHAPE};
use console_proto::verify::Pass;
use core::fmt;
use drivers::dma::PostRead;
use drivers::virtio::queue::UsedSync;

/// Console verbosity, most severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error = 0,
    Warn = 1,
    Info = 2,
    Debug = 3,
}

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warn => "warn",
            Level::Info => "info",
            Level::Debug => "debug",
        }
    }
}

/// Which in-guest tests to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestSelection<'a> {
    /// Every test except the deliberately failing `fail::` group.
    All,
    None,
    /// Tests whose name contains one of these comma-separated texts (the groups left out
    /// of `all` included).
    Matching(&'a str),
}

impl TestSelection<'_> {
    /// Whether `name` is selected by a `Matching` pattern list.
    pub fn matches(pattern: &str, name: &str) -> bool {
        pattern
            .split(',')
            .any(|p| !p.is_empty() && name.contains(p))
    }
}

/// A deliberate failure, to show (and test) each failure report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// A Rust panic.
    Panic,
    /// An illegal instruction (vector 4).
    Illegal,
    /// A read of an unmapped physical address (access fault, vector 2).
    BusError,
    /// An integer divide by zero in machine code (vector 5).
    DivZero,
    /// A wasm out-of-bounds memory access (a trap of the compilation route).
    WasmTrap,
    /// Recursion without end: the native stack guard's trap, reported from its reserve.
    Stack,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options<'a> {
    pub test: TestSelection<'a>,
    pub log: Level,
    pub fault: Option<Fault>,
    /// Cache mode for RAM; None: the model's default (copyback on the 68040).
    pub cache: Option<CacheMode>,
    /// The model QEMU was started with, when the runner says so (checked by the cpu tests).
    pub expect_cpu: Option<Model>,
    /// The bus_dma auditor for the whole run.
    pub dma_audit: bool,
    /// Route DMA memory accesses through a model of this CPU's data cache.
    pub dma_model: Option<CpuCache>,
    pub dma_postread: PostRead,
    /// Driver paths that honour it leave out their per-phase PREREAD.
    pub dma_bug_drop_preread: bool,
    /// The virtqueues' used-ring read-phase syncs.
    pub vq_sync: UsedSync,
    /// The bus_dma sync call site left out (mutation tests): an index into
    /// `drivers::dma::mutant::SITES`.
    pub dma_mutant: Option<usize>,
    /// virtio slots the runner attached block devices to (bit n = slot n).
    pub disks: u128,
    /// The block I/O benchmark to run after the tests.
    pub bench: Bench,
    /// Only this cell of the benchmark's matrix (`cargo xtask profile`); alone, it implies
    /// `bench=quick`.
    pub bench_cell: Option<CellSpec>,
    /// The disk the benchmark drives when it is not the scratch disk in slot 0: its virtio
    /// slot, and whether its write cells may run (else read cells only).
    pub bench_disk: Option<BenchDisk>,
    /// virtio slots to verify (bit n = slot n): every sector read in each pass, a CRC-32 per MiB.
    pub verify: u128,
    /// The read passes of a verify, bit i = `console_proto::verify::Pass::READ_PASSES[i]`.
    pub verify_passes: u8,
    /// Write the `--write` pattern with this seed over each verified disk first.
    pub verify_write: Option<u32>,
}

/// A user's disk for the benchmark (`bench_disk=<slot>[,write]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BenchDisk {
    pub slot: u32,
    /// Its write cells run too (they overwrite the disk).
    pub write: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bench {
    None,
    Quick,
    Full,
}

impl Fault {
    /// The option value that selects this fault.
    pub fn name(self) -> &'static str {
        match self {
            Fault::Panic => "panic",
            Fault::Illegal => "illegal",
            Fault::BusError => "buserror",
            Fault::DivZero => "divzero",
            Fault::WasmTrap => "wasmtrap",
            Fault::Stack => "stack",
        }
    }
}

impl Default for Options<'_> {
    fn default() -> Self {
        Options {
            test: TestSelection::All,
            log: Level::Info,
            fault: None,
            cache: None,
            expect_cpu: None,
            dma_audit: false,
            dma_model: None,
            dma_postread: PostRead::NoOp,
            dma_bug_drop_preread: false,
            vq_sync: UsedSync::Corrected,
            dma_mutant: None,
            disks: 0,
            bench: Bench::None,
            bench_cell: None,
            bench_disk: None,
            verify: 0,
            verify_passes: ALL_PASSES,
            verify_write: None,
        }
    }
}

/// One accepted option, for parsing and for the usage text.
/// Every read pass of `console_proto::verify::Pass::READ_PASSES`.
pub const ALL_PASSES: u8 = (1 << Pass::READ_PASSES.len()) - 1;

/// Parses a slot list `<slot>[,<slot>...]` (each 0..128) into a mask.
fn slot_mask(value: &str) -> Option<u128> {
    let mut mask = 0u128;
    for item in value.split(',') {
        match item.parse::<u32>() {
            Ok(slot) if slot < 128 => mask |= 1 << slot,
            _ => return None,
        }
    }
    Some(mask)
}

pub struct Spec {
    pub key: &'static str,
    pub values: &'static str,
    pub help: &'static str,
}

pub const SPECS: &[Spec] = &[
    Spec {
        key: "test",
        values: "all | none | <text>[,<text>...]",
        help: "in-guest tests to run: all (default), none, or those whose name contains a <text>",
    },
    Spec {
        key: "log",
        values: "error | warn | info | debug",
        help: "console verbosity (default info)",
    },
    Spec {
        key: "fault",
        values: "panic | illegal | buserror | divzero | wasmtrap | stack",
        help: "cause that failure after the banner, to see its report",
    },
    Spec {
        key: "cache",
        values: "copyback | writethrough | off",
        help:
            "RAM cache mode (68040/68060 default copyback; the 68030 data cache is always write-through; the 68020 has none)",
    },
    Spec {
        key: "cpu",
        values: "68020 | 68030 | 68040 | 68060",
        help: "the -cpu QEMU was started with; the cpu tests check the probe agrees",
    },
    Spec {
        key: "dma_audit",
        values: "off | on",
        help: "check every DMA sync and access against the bus_dma rules, report violations",
    },
    Spec {
        key: "dma_model",
        values: "off | 030 | 040",
        help:
            "route DMA memory accesses through a model of that data cache (stale data made visible)",
    },
    Spec {
        key: "dma_postread",
        values: "noop | invalidate",
        help: "what POSTREAD does in the cache model (noop, as NetBSD and Linux on the m68k)",
    },
    Spec {
        key: "disks",
        values: "<slot>[,<slot>...]",
        help: "virtio slots holding the runner's scratch disks: the virtio tests check the probe finds them, read their pattern and OVERWRITE sector 1000",
    },
    Spec {
        key: "bench",
        values: "none | quick | full",
        help: "after the tests, benchmark the scratch disk in slot 0 (log format in the README)",
    },
    Spec {
        key: "bench_cell",
        values: CELL_SPEC_SHAPE,
        help: "run only this cell of the bench= matrix (quick if bench= is not given), between the profile markers (cargo xtask profile); a spec naming no cell of it is refused",
    },
    Spec {
        key: "bench_disk",
        values: "<slot>[,write]",
        help: "benchmark this disk instead of the scratch disk: its read cells, and with ',write' its write cells too (they overwrite it)",
    },
    Spec {
        key: "verify",
        values: "<slot>[,<slot>...]",
        help: "read every sector of these disks in each pass and print a CRC-32 per MiB (never writes unless verify_write)",
    },
    Spec {
        key: "verify_pass",
        values: "<intr|polled>/<none|030|040>[,...]",
        help: "the verify read passes: completion mode / DMA cache model (default all six)",
    },
    Spec {
        key: "verify_write",
        values: "<seed>",
        help: "before the read passes, write the sector pattern of this seed (0..2^32) over each verified disk",
    },
    Spec {
        key: "dma_bug",
        values: "none | drop-preread",
        help: "break driver paths on purpose: leave out the PREREAD before each new read phase",
    },
    Spec {
        key: "dma_mutant",
        values: "none | <a site name from drivers/src/dma/mutant.rs>",
        help: "leave out one bus_dma sync call site (cargo xtask mutants; sites in drivers/src/dma/mutant.rs)",
    },
    Spec {
        key: "vq_sync",
        values: "corrected | netbsd-2024",
        help: "the virtqueues' used-ring syncs: a PREREAD per read phase, or NetBSD virtio(4)'s before PR kern/60144 (hangs on a stale cache)",
    },
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error<'a> {
    /// A token without `=`.
    NotKeyValue(&'a str),
    UnknownKey(&'a str),
    /// The same key given more than once.
    Duplicate(&'static str),
    /// `key` is given, but not the other option it needs.
    Needs {
        key: &'static str,
        needs: &'static str,
    },
    BadValue {
        key: &'static str,
        value: &'a str,
        expected: &'static str,
    },
}

impl fmt::Display for Error<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotKeyValue(t) => write!(f, "'{t}' is not of the form key=value"),
            Error::UnknownKey(k) => write!(f, "unknown option '{k}'"),
            Error::Duplicate(k) => write!(f, "option '{k}' given more than once"),
            Error::Needs { key, needs } => write!(f, "option '{key}' needs {needs}"),
            Error::BadValue {
                key,
                value,
                expected,
            } => {
                write!(f, "bad value '{value}' for {key}: expected {expected}")
            }
        }
    }
}

/// Writes the table of accepted options.
pub fn usage(out: &mut dyn fmt::Write) -> fmt::Result {
    writeln!(out, "accepted options (key=value, separated by spaces):")?;
    for s in SPECS {
        writeln!(out, "  {}={}\n      {}", s.key, s.values, s.help)?;
    }
    Ok(())
}

/// Parses a whole command line.
pub fn parse(line: &str) -> Result<Options<'_>, Error<'_>> {
    let mut opts = Options::default();
    // Bit i: SPECS[i] already seen.
    const _: () = assert!(SPECS.len() <= 32);
    let mut seen = 0u32;
    for token in line.split_ascii_whitespace() {
        let (key, value) = token.split_once('=').ok_or(Error::NotKeyValue(token))?;
        let index = SPECS
            .iter()
            .position(|s| s.key == key)
            .ok_or(Error::UnknownKey(key))?;
        let spec = &SPECS[index];
        if seen & (1 << index) != 0 {
            return Err(Error::Duplicate(spec.key));
        }
        seen |= 1 << index;
        let bad = || Error::BadValue {
            key: spec.key,
            value,
            expected: spec.values,
        };
        match spec.key {
            "test" => {
                opts.test = match value {
                    "" => return Err(bad()),
                    "all" => TestSelection::All,
                    "none" => TestSelection::None,
                    text => TestSelection::Matching(text),
                }
            }
            "log" => {
                opts.log = match value {
                    "error" => Level::Error,
                    "warn" => Level::Warn,
                    "info" => Level::Info,
                    "debug" => Level::Debug,
                    _ => return Err(bad()),
                }
            }
            "fault" => {
                opts.fault = Some(match value {
                    "panic" => Fault::Panic,
                    "illegal" => Fault::Illegal,
                    "buserror" => Fault::BusError,
                    "divzero" => Fault::DivZero,
                    "wasmtrap" => Fault::WasmTrap,
                    "stack" => Fault::Stack,
                    _ => return Err(bad()),
                })
            }
            "cache" => {
                opts.cache = Some(match value {
                    "copyback" => CacheMode::Copyback,
                    "writethrough" => CacheMode::WriteThrough,
                    "off" => CacheMode::Off,
                    _ => return Err(bad()),
                })
            }
            "bench" => {
                opts.bench = match value {
                    "none" => Bench::None,
                    "quick" => Bench::Quick,
                    "full" => Bench::Full,
                    _ => return Err(bad()),
                }
            }
            "bench_cell" => opts.bench_cell = Some(CellSpec::parse(value).ok_or_else(bad)?),
            "disks" => opts.disks = slot_mask(value).ok_or_else(bad)?,
            "verify" => opts.verify = slot_mask(value).ok_or_else(bad)?,
            "verify_pass" => {
                let mut mask = 0u8;
                for item in value.split(',') {
                    let pass = Pass::parse(item).ok_or_else(bad)?;
                    let i = Pass::READ_PASSES
                        .iter()
                        .position(|p| *p == pass)
                        .ok_or_else(bad)?;
                    mask |= 1 << i;
                }
                opts.verify_passes = mask;
            }
            "verify_write" => {
                opts.verify_write = Some(value.parse::<u32>().map_err(|_| bad())?);
            }
            "bench_disk" => {
                let (slot, write) = match value.split_once(',') {
                    Some((slot, "write")) => (slot, true),
                    Some(_) => return Err(bad()),
                    None => (value, false),
                };
                opts.bench_disk = match slot.parse::<u32>() {
                    Ok(slot) if slot < 128 => Some(BenchDisk { slot, write }),
                    _ => return Err(bad()),
                };
            }
            "dma_audit" => {
                opts.dma_audit = match value {
                    "on" => true,
                    "off" => false,
                    _ => return Err(bad()),
                }
            }
            "dma_model" => {
                opts.dma_model = match value {
                    "off" => None,
                    "030" | "68030" => Some(CpuCache::M68030),
                    "040" | "68040" => Some(CpuCache::M68040),
                    _ => return Err(bad()),
                }
            }
            "dma_postread" => {
                opts.dma_postread = match value {
                    "noop" => PostRead::NoOp,
                    "invalidate" => PostRead::Invalidate,
                    _ => return Err(bad()),
                }
            }
            "dma_bug" => {
                opts.dma_bug_drop_preread = match value {
                    "none" => false,
                    "drop-preread" => true,
                    _ => return Err(bad()),
                }
            }
            "dma_mutant" => {
                opts.dma_mutant = match value {
                    "none" => None,
                    site => Some(drivers::dma::mutant::index_of(site).ok_or_else(bad)?),
                }
            }
            "vq_sync" => {
                opts.vq_sync = match value {
                    "corrected" => UsedSync::Corrected,
                    "netbsd-2024" => UsedSync::NetBsd2024,
                    _ => return Err(bad()),
                }
            }
            "cpu" => {
                opts.expect_cpu = Some(match value.trim_start_matches('m') {
                    "68020" => Model::M68020,
                    "68030" => Model::M68030,
                    "68040" => Model::M68040,
                    "68060" => Model::M68060,
                    _ => return Err(bad()),
                })
            }
            _ => unreachable!("every key in SPECS has a parser"),
        }
    }
    let given = |key: &str| {
        SPECS
            .iter()
            .position(|s| s.key == key)
            .is_some_and(|i| seen & (1 << i) != 0)
    };
    // A cell or a disk to benchmark names a benchmark: alone, the quick one.
    for (key, wanted) in [
        ("bench_cell", opts.bench_cell.is_some()),
        ("bench_disk", opts.bench_disk.is_some()),
    ] {
        match (wanted, opts.bench, given("bench")) {
            (true, Bench::None, false) => opts.bench = Bench::Quick,
            (true, Bench::None, true) => {
                return Err(Error::Needs {
                    key,
                    needs: "bench=quick or bench=full (the matrix it runs), not bench=none",
                })
            }
            _ => {}
        }
    }
    // The verify options only shape a verify: without one they would do nothing, silently.
    for key in ["verify_pass", "verify_write"] {
        if given(key) && opts.verify == 0 {
            return Err(Error::Needs {
                key,
                needs: "verify=<slots> (the disks to verify)",
            });
        }
    }
    Ok(opts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::String;
    use std::vec::Vec;

    #[test]
    fn empty_line_gives_defaults() {
        assert_eq!(parse(""), Ok(Options::default()));
        assert_eq!(parse("   \t "), Ok(Options::default()));
    }

    #[test]
    fn every_option_parses() {
        let o = parse("test=codegen log=debug fault=buserror").unwrap();
        assert_eq!(o.test, TestSelection::Matching("codegen"));
        assert_eq!(o.log, Level::Debug);
        assert_eq!(o.fault, Some(Fault::BusError));
        assert_eq!(parse("test=none").unwrap().test, TestSelection::None);
        assert_eq!(parse("test=all").unwrap().test, TestSelection::All);
        for (v, f) in [
            ("panic", Fault::Panic),
            ("illegal", Fault::Illegal),
            ("divzero", Fault::DivZero),
            ("wasmtrap", Fault::WasmTrap),
            ("stack", Fault::Stack),
        ] {
            assert_eq!(parse(&std::format!("fault={v}")).unwrap().fault, Some(f));
        }
    }

    #[test]
    fn cache_and_cpu() {
        let o = parse("cache=writethrough cpu=68030").unwrap();
        assert_eq!(o.cache, Some(CacheMode::WriteThrough));
        assert_eq!(o.expect_cpu, Some(Model::M68030));
        assert_eq!(parse("cpu=m68040").unwrap().expect_cpu, Some(Model::M68040));
        assert_eq!(parse("cache=off").unwrap().cache, Some(CacheMode::Off));
        assert_eq!(parse("cpu=68020").unwrap().expect_cpu, Some(Model::M68020));
        assert_eq!(parse("cpu=m68060").unwrap().expect_cpu, Some(Model::M68060));
        for bad in ["68000", "68010", "cfv4e", "any", "6802"] {
            assert!(
                matches!(
                    parse(&std::format!("cpu={bad}")),
                    Err(Error::BadValue { key: "cpu", .. })
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            parse("cache=wb"),
            Err(Error::BadValue { key: "cache", .. })
        ));
    }

    #[test]
    fn disk_slots() {
        assert_eq!(parse("disks=0,1,127").unwrap().disks, 1 | 2 | 1 << 127);
        assert!(matches!(
            parse("disks=128"),
            Err(Error::BadValue { key: "disks", .. })
        ));
        assert!(matches!(
            parse("disks=0,,1"),
            Err(Error::BadValue { key: "disks", .. })
        ));
    }

    #[test]
    fn verify_and_bench_disk() {
        let o =
            parse("verify=0,5 verify_pass=polled/040,intr/none verify_write=4294967295").unwrap();
        assert_eq!(o.verify, 1 | 1 << 5);
        // READ_PASSES: intr/none is 0, polled/040 is 5.
        assert_eq!(o.verify_passes, 1 | 1 << 5);
        assert_eq!(o.verify_write, Some(u32::MAX));
        assert_eq!(parse("verify=1").unwrap().verify_passes, ALL_PASSES);
        assert_eq!(ALL_PASSES, 0b11_1111);
        for bad in [
            "verify=",
            "verify=128",
            "verify=a",
            "verify_pass=write/none",
            "verify_pass=intr/060",
            "verify_pass=intr",
            "verify_pass=",
            "verify_write=-1",
            "verify_write=4294967296",
            "bench_disk=128",
            "bench_disk=1,ro",
            "bench_disk=,write",
            "bench_disk=",
        ] {
            assert!(matches!(parse(bad), Err(Error::BadValue { .. })), "{bad}");
        }
        assert_eq!(
            parse("bench_disk=3").unwrap().bench_disk,
            Some(BenchDisk {
                slot: 3,
                write: false
            })
        );
        assert_eq!(
            parse("bench_disk=0,write").unwrap().bench_disk,
            Some(BenchDisk {
                slot: 0,
                write: true
            })
        );
    }

    #[test]
    fn dma_options() {
        assert_eq!(
            parse("vq_sync=netbsd-2024").unwrap().vq_sync,
            UsedSync::NetBsd2024
        );
        assert_eq!(parse("").unwrap().vq_sync, UsedSync::Corrected);
        assert_eq!(
            parse("dma_mutant=blk.request.pre").unwrap().dma_mutant,
            drivers::dma::mutant::index_of("blk.request.pre")
        );
        assert!(matches!(
            parse("dma_mutant=blk.request"),
            Err(Error::BadValue {
                key: "dma_mutant",
                ..
            })
        ));
        assert!(matches!(
            parse("vq_sync=netbsd"),
            Err(Error::BadValue { key: "vq_sync", .. })
        ));
        let o = parse("dma_audit=on dma_model=040 dma_postread=invalidate dma_bug=drop-preread")
            .unwrap();
        assert!(o.dma_audit && o.dma_bug_drop_preread);
        assert_eq!(o.dma_model, Some(CpuCache::M68040));
        assert_eq!(o.dma_postread, PostRead::Invalidate);
        assert_eq!(
            parse("dma_model=030").unwrap().dma_model,
            Some(CpuCache::M68030)
        );
        assert!(matches!(
            parse("dma_model=060"),
            Err(Error::BadValue {
                key: "dma_model",
                ..
            })
        ));
        assert!(matches!(
            parse("dma_bug=yes"),
            Err(Error::BadValue { key: "dma_bug", .. })
        ));
    }

    #[test]
    fn test_patterns_are_comma_separated() {
        assert!(TestSelection::matches("irq::,time::", "time::sleep"));
        assert!(TestSelection::matches("irq::,time::", "irq::shared"));
        assert!(!TestSelection::matches("irq::,time::", "codegen::x"));
        assert!(!TestSelection::matches(",", "anything"));
    }

    #[test]
    fn a_key_given_twice_is_an_error() {
        assert_eq!(parse("log=warn log=error"), Err(Error::Duplicate("log")));
        // Even with the same value, and with other keys between.
        assert_eq!(
            parse("disks=31 test=all disks=0,1,2,3"),
            Err(Error::Duplicate("disks"))
        );
        assert_eq!(parse("test=a test=a"), Err(Error::Duplicate("test")));
        let e = std::format!("{}", parse("bench=quick bench=none").unwrap_err());
        assert_eq!(e, "option 'bench' given more than once");
        // Every key can appear once in the same line.
        let all: std::vec::Vec<std::string::String> = SPECS
            .iter()
            .map(|s| match s.key {
                "test" => "test=all".into(),
                "disks" => "disks=0".into(),
                "cpu" => "cpu=68040".into(),
                "dma_model" => "dma_model=off".into(),
                "dma_bug" => "dma_bug=none".into(),
                "dma_postread" => "dma_postread=noop".into(),
                "dma_audit" => "dma_audit=off".into(),
                "fault" => "fault=panic".into(),
                "cache" => "cache=off".into(),
                "log" => "log=info".into(),
                "bench" => "bench=quick".into(),
                "bench_cell" => "bench_cell=floor,seq,getid,20,1,polled,off".into(),
                "vq_sync" => "vq_sync=corrected".into(),
                "dma_mutant" => "dma_mutant=none".into(),
                "bench_disk" => "bench_disk=1".into(),
                "verify" => "verify=0".into(),
                "verify_pass" => "verify_pass=intr/none".into(),
                "verify_write" => "verify_write=7".into(),
                k => panic!("no sample value for {k}"),
            })
            .collect();
        assert!(parse(&all.join(" ")).is_ok());
    }

    #[test]
    fn bench_cell_names_one_cell_and_needs_a_matrix() {
        let o = parse("bench=quick bench_cell=driver,rand,read,4096,1,intr,on").unwrap();
        assert_eq!(
            o.bench_cell.map(|c| std::format!("{c}")).as_deref(),
            Some("driver,rand,read,4096,1,intr,on")
        );
        assert_eq!(o.bench, Bench::Quick);
        // Either order.
        assert!(parse("bench_cell=floor,rand,read,4096,1,polled,off bench=full").is_ok());
        // Alone, the cell comes from the quick matrix; bench=none contradicts it.
        let alone = parse("bench_cell=floor,rand,read,4096,1,polled,off").unwrap();
        assert_eq!(alone.bench, Bench::Quick);
        let e = parse("bench=none bench_cell=floor,rand,read,4096,1,polled,off").unwrap_err();
        assert!(matches!(
            e,
            Error::Needs {
                key: "bench_cell",
                ..
            }
        ));
        assert!(std::format!("{e}").contains("needs bench=quick"), "{e}");
        let e = parse("bench=quick bench_cell=driver,rand,read,4k,1,intr,on").unwrap_err();
        assert!(matches!(
            e,
            Error::BadValue {
                key: "bench_cell",
                ..
            }
        ));
        assert!(std::format!("{e}").contains("impl,pattern,op,bs,qd,mode,event_idx"));
    }

    #[test]
    fn unknown_key_is_an_error() {
        assert_eq!(parse("test=all bogus=1"), Err(Error::UnknownKey("bogus")));
        assert_eq!(parse("=x"), Err(Error::UnknownKey("")));
    }

    #[test]
    fn token_without_equals_is_an_error() {
        assert_eq!(parse("quiet"), Err(Error::NotKeyValue("quiet")));
    }

    #[test]
    fn bad_values_name_the_accepted_ones() {
        let e = parse("log=loud").unwrap_err();
        assert_eq!(
            e,
            Error::BadValue {
                key: "log",
                value: "loud",
                expected: "error | warn | info | debug"
            }
        );
        assert!(std::format!("{e}").contains("expected error | warn"));
        assert!(matches!(
            parse("fault=melt"),
            Err(Error::BadValue { key: "fault", .. })
        ));
        assert!(matches!(
            parse("test="),
            Err(Error::BadValue { key: "test", .. })
        ));
    }

    #[test]
    fn a_bench_disk_alone_runs_the_quick_bench_and_verify_options_need_verify() {
        assert_eq!(parse("bench_disk=1").unwrap().bench, Bench::Quick);
        assert_eq!(
            parse("bench=full bench_disk=1,write").unwrap().bench,
            Bench::Full
        );
        assert_eq!(
            parse("bench=none bench_disk=1"),
            Err(Error::Needs {
                key: "bench_disk",
                needs: "bench=quick or bench=full (the matrix it runs), not bench=none",
            })
        );
        for alone in ["verify_pass=intr/none", "verify_write=7"] {
            assert!(
                matches!(parse(alone), Err(Error::Needs { needs, .. }) if needs.starts_with("verify=")),
                "{alone}"
            );
            assert!(parse(&std::format!("verify=1 {alone}")).is_ok(), "{alone}");
        }
    }

    /// The README's options table, written for users, is an independent statement of what
    /// the parser accepts: every key it documents is a key here and back, every value it
    /// names in backticks parses, and usage names every key.
    #[test]
    fn readme_options_table_matches_the_parser() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
            .expect("README.md");
        let table = readme
            .split("## Kernel options")
            .nth(1)
            .and_then(|t| t.split("\n## ").next())
            .expect("a Kernel options section");
        let mut documented = Vec::new();
        for row in table.lines().filter(|l| l.starts_with("| `")) {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            let key = cells[1].trim_matches('`');
            for value in cells[2].split('`').skip(1).step_by(2) {
                // The verify options shape a verify, which they need.
                let with = if key.starts_with("verify_") {
                    "verify=0 "
                } else {
                    ""
                };
                let text = std::format!("{with}{key}={value}");
                assert!(
                    parse(&text).is_ok(),
                    "README documents {text}, the parser refuses it"
                );
            }
            documented.push(key);
        }
        let mut specs: Vec<&str> = SPECS.iter().map(|s| s.key).collect();
        documented.sort_unstable();
        specs.sort_unstable();
        assert_eq!(documented, specs, "README table keys vs accepted keys");
        let mut s = String::new();
        usage(&mut s).unwrap();
        for key in documented {
            assert!(
                s.contains(&std::format!("{key}=")),
                "usage lacks {key}: {s}"
            );
        }
    }
}
