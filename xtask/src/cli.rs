//! The command line, declared with clap's derive API: every option has its help text, enums
//! list their values, and every value is checked here (a bad one is an error naming the
//! option, never a panic).

use crate::qemu::{Disk, DEFAULT_TIMEOUT};
use crate::verify::Inject;
use clap::{Args, Parser, Subcommand, ValueEnum};
use console_proto::bench::CellSpec;
use console_proto::verify::Pass;
use std::path::PathBuf;
use std::time::Duration;

/// Builds the m68k virt kernel, boots it under QEMU, runs its tests and its benchmark.
#[derive(Parser, Debug)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    version,
    after_help = "A signal (Ctrl-C, SIGTERM, SIGHUP) stops QEMU, removes the scratch disks and exits 130.\n\
                  `cargo xtask COMMAND --help` shows a command's options."
)]
pub struct Cli {
    /// The qemu-system-m68k to run (default: $XTASK_QEMU, else the one on PATH); its version
    /// is printed and picks -singlestep or -accel tcg,one-insn-per-tb=on
    #[arg(long, global = true, value_name = "PATH", value_parser = non_empty_path)]
    pub qemu: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Build target/m68k/kernel.elf
    Build,
    /// Build and boot with the scratch disks: banner, self tests, and (without --append) the
    /// quick benchmark
    Run(Boot),
    /// Host unit tests; the in-guest suite on every CPU model the QEMU runs;
    /// one-insn-per-tb, cache-model and -icount passes; whole-boot and signal checks; the
    /// quick benchmark
    Test(TestArgs),
    /// Build and boot with extra QEMU arguments (after `--`)
    Qemu {
        #[command(flatten)]
        boot: Boot,
        /// Arguments passed to QEMU as they are
        #[arg(last = true, value_name = "ARGS")]
        extra: Vec<String>,
    },
    /// Boot stopped under QEMU's gdb stub (-s -S) and attach gdb-multiarch
    Gdb(Boot),
    /// The block I/O benchmark: table, target/bench/bench.{json,csv,svg,png}
    Bench(BenchArgs),
    /// Read every sector of your disk images through the driver in each pass (interrupt and
    /// polled, each DMA cache model, auditor on) and compare the guest's CRC-32 of every MiB
    /// with the image on the host
    Verify(VerifyArgs),
    /// Each bus_dma sync call site of the request path left out in turn, and what caught it:
    /// the host tests, then a guest run (auditor and 68040 cache model on)
    Mutants(MutantsArgs),
    /// Guest instructions per kernel function over one benchmark cell (or a whole boot),
    /// counted by a QEMU plugin: table, target/profile/
    Profile(ProfileArgs),
}

#[derive(Args, Debug, Clone)]
pub struct ProfileArgs {
    /// The benchmark cell: impl,pattern,op,bs,qd,mode,event_idx (e.g.
    /// driver,rand,read,4096,1,intr,on), run alone; without it, the whole boot
    #[arg(long, value_name = "SPEC", value_parser = cell_spec)]
    pub cell: Option<CellSpec>,
    /// Kernel command line of a whole-boot profile (default: test=all; not with --cell)
    #[arg(long, value_name = "TEXT", conflicts_with = "cell")]
    pub append: Option<String>,
    /// Functions listed, most instructions first (the others in one row)
    #[arg(long, value_name = "N", default_value_t = 15, value_parser = at_least_one)]
    pub top: u32,
    /// CPU model
    #[arg(long, value_enum, value_name = "MODEL", default_value_t = Cpu::M68040)]
    pub cpu: Cpu,
    /// -icount shift=0 -rtc clock=vm: guest time in instructions, counts independent of the host's
    /// speed (what the guest does while it waits still follows the disk's completion times)
    #[arg(long)]
    pub icount: bool,
    /// Wall-clock limit for the QEMU run, at least 1
    #[arg(long, value_name = "SECS", default_value_t = 300, value_parser = seconds)]
    pub timeout: u64,
}

/// A wall-clock limit in whole seconds, at least 1 (0 would kill QEMU at once).
fn seconds(s: &str) -> Result<u64, String> {
    match s.parse::<u64>() {
        Ok(0) => Err("0 seconds would stop QEMU before it starts: give at least 1".into()),
        Ok(v) => Ok(v),
        Err(e) => Err(format!("'{s}' is not a whole number of seconds ({e})")),
    }
}

/// A count that must be at least 1.
fn at_least_one(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(v) => Ok(v),
        Err(e) => Err(format!("'{s}' is not a whole number ({e})")),
    }
}

fn cell_spec(s: &str) -> Result<CellSpec, String> {
    CellSpec::parse(s).ok_or_else(|| {
        format!(
            "'{s}' is not a cell: expected {}",
            console_proto::bench::CELL_SPEC_SHAPE
        )
    })
}

#[derive(Args, Debug, Clone)]
pub struct MutantsArgs {
    /// Only the host tests (seconds); default: a guest run per site too (about a minute each)
    #[arg(long)]
    pub host_only: bool,
    /// Only this site (a name from drivers/src/dma/mutant.rs)
    #[arg(long, value_name = "SITE", value_parser = site)]
    pub site: Option<String>,
}

fn site(s: &str) -> Result<String, String> {
    match drivers::dma::mutant::index_of(s) {
        Some(_) => Ok(s.to_string()),
        None => Err(format!(
            "no such sync site (see drivers/src/dma/mutant.rs): {}",
            drivers::dma::mutant::SITES
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// The options of a guest run that `test` takes too.
#[derive(Args, Debug, Clone)]
pub struct Machine {
    /// CPU model (default m68040); the board's models other than m68020-m68060 boot to a
    /// one-line refusal
    #[arg(long, value_enum, value_name = "MODEL")]
    pub cpu: Option<Cpu>,
    /// Guest RAM, QEMU syntax (the kernel needs at least 24M)
    #[arg(long, value_name = "SIZE", default_value = "128M", value_parser = ram_size)]
    pub mem: String,
    /// Wall-clock limit for one QEMU run, at least 1 [default: 300, or 900 with --singlestep]
    #[arg(long, value_name = "SECS", value_parser = seconds)]
    pub timeout: Option<u64>,
    /// One guest instruction per translated block (interrupts can land anywhere)
    #[arg(long)]
    pub singlestep: bool,
}

/// Default wall-clock limit of a `--singlestep` run (the default run takes 4-5 min there).
pub const SINGLESTEP_TIMEOUT: Duration = Duration::from_secs(900);

impl Machine {
    pub fn timeout(&self) -> Duration {
        match (self.timeout, self.singlestep) {
            (Some(secs), _) => Duration::from_secs(secs),
            // One instruction per block runs the suite several times slower.
            (None, true) => SINGLESTEP_TIMEOUT,
            (None, false) => DEFAULT_TIMEOUT,
        }
    }
}

/// `run`, `qemu` and `gdb`.
#[derive(Args, Debug, Clone)]
pub struct Boot {
    #[command(flatten)]
    pub machine: Machine,
    /// Kernel command line (default: test=all; README lists the options); the xtask adds
    /// dma_audit=on and its disks= only where you set neither
    #[arg(long, value_name = "TEXT")]
    pub append: Option<String>,
    /// Attach FILE (a raw image) as a virtio-blk disk, read-only with ",ro"; repeatable:
    /// slots 0, 1, ...
    #[arg(long, value_name = "FILE[,ro]", value_parser = Disk::parse)]
    pub disk: Vec<Disk>,
    /// I/O errors on requests of that type covering these 512-byte sectors of every --disk
    /// (QEMU blkdebug); repeatable
    #[arg(long, value_name = "read|write:SECTOR[,SECTOR...]", value_parser = Inject::parse, requires = "disk")]
    pub inject: Vec<Inject>,
}

#[derive(Args, Debug, Clone)]
pub struct VerifyArgs {
    /// A raw image to verify, read-only with ",ro" (never written without --write);
    /// repeatable: slots 0, 1, ...
    #[arg(long, value_name = "FILE[,ro]", value_parser = Disk::parse, required = true)]
    pub disk: Vec<Disk>,
    /// First write a pattern of (sector, --seed) over each whole disk, DESTROYING its
    /// contents, check it as it reads back, and check the file on the host afterwards
    #[arg(long)]
    pub write: bool,
    /// The seed of the --write pattern
    #[arg(long, value_name = "N", default_value_t = 1, requires = "write")]
    pub seed: u32,
    /// I/O errors on requests of that type covering these 512-byte sectors of every --disk
    /// (QEMU blkdebug): reported as such, every other sector still verified; repeatable
    #[arg(long, value_name = "read|write:SECTOR[,SECTOR...]", value_parser = Inject::parse)]
    pub inject: Vec<Inject>,
    /// Only these read passes, MODE/MODEL: MODE intr or polled, MODEL none, 030 or 040
    /// [default: all six]
    #[arg(long, value_name = "PASS[,PASS...]", value_delimiter = ',', value_parser = crate::verify::parse_pass)]
    pub pass: Vec<Pass>,
    /// CPU model
    #[arg(long, value_enum, value_name = "MODEL", default_value_t = Cpu::M68040)]
    pub cpu: Cpu,
    /// Wall-clock limit for the QEMU run, at least 1 [default: 120 + 1 per MiB and pass]
    #[arg(long, value_name = "SECS", value_parser = seconds)]
    pub timeout: Option<u64>,
}

#[derive(Args, Debug, Clone)]
pub struct TestArgs {
    /// Only the in-guest tests whose name contains FILTER (and host tests matching it): no
    /// one-insn-per-tb, cache-model or whole-boot runs
    #[arg(value_name = "FILTER", value_parser = filter)]
    pub filter: Option<String>,
    /// Only the checks of `verify` and `bench --disk` against QEMU (step 6), for working on them
    #[arg(long, hide = true, conflicts_with = "filter")]
    pub verify_checks_only: bool,
    #[command(flatten)]
    pub machine: Machine,
}

#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// The small matrix (seconds); default: the full one (minutes)
    #[arg(long)]
    pub quick: bool,
    /// Runs to take medians over
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = at_least_one)]
    pub runs: u32,
    /// -icount shift=0 -rtc clock=vm: guest instructions as the clock
    #[arg(long)]
    pub icount: bool,
    /// QEMU's AIO backend for the disk image
    #[arg(long, value_enum, default_value_t = Aio::Threads)]
    pub aio: Aio,
    /// Flag regressions against a previous bench.json (exit 1 if any)
    #[arg(long, value_name = "FILE", value_parser = non_empty_path)]
    pub compare: Option<PathBuf>,
    /// CPU model
    #[arg(long, value_enum, value_name = "MODEL", default_value_t = Cpu::M68040)]
    pub cpu: Cpu,
    /// Wall-clock limit for one QEMU run, at least 1
    #[arg(long, value_name = "SECS", default_value_t = 3600, value_parser = seconds)]
    pub timeout: u64,
    /// Benchmark this raw image instead of a scratch disk: the read cells only (it is
    /// attached read-only) unless --write; FILE,ro refuses --write
    #[arg(long, value_name = "FILE[,ro]", value_parser = Disk::parse)]
    pub disk: Option<Disk>,
    /// With --disk: run the write cells too, which OVERWRITE the image (the full matrix:
    /// the quick one has none, so --quick with --write is refused)
    #[arg(long, requires = "disk", conflicts_with = "quick")]
    pub write: bool,
    /// With --disk: I/O errors on requests of that type covering these sectors (QEMU
    /// blkdebug); repeatable
    #[arg(long, value_name = "read|write:SECTOR[,SECTOR...]", value_parser = Inject::parse, requires = "disk")]
    pub inject: Vec<Inject>,
}

/// Every -cpu QEMU's virt board accepts (QEMU 7.2 and 10: `-M virt -cpu help`); the kernel
/// runs on the 68020-68060 and refuses the others with one line.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cpu {
    /// 68040: copyback caches, the default
    #[value(name = "m68040")]
    M68040,
    /// 68030: write-through data cache
    #[value(name = "m68030")]
    M68030,
    /// 68020: instruction cache only
    #[value(name = "m68020")]
    M68020,
    /// 68060 (QEMU >= 9.0; refused at boot before)
    #[value(name = "m68060")]
    M68060,
    /// refused at boot
    #[value(name = "m68000")]
    M68000,
    /// refused at boot
    #[value(name = "m68010")]
    M68010,
    /// ColdFire, refused at boot
    #[value(name = "any")]
    Any,
    /// ColdFire, refused at boot
    #[value(name = "cfv4e")]
    Cfv4e,
    /// ColdFire, refused at boot
    #[value(name = "m5206")]
    M5206,
    /// ColdFire, refused at boot
    #[value(name = "m5208")]
    M5208,
}

impl Cpu {
    /// QEMU's `-cpu` name.
    pub fn name(self) -> &'static str {
        match self {
            Cpu::M68040 => "m68040",
            Cpu::M68030 => "m68030",
            Cpu::M68020 => "m68020",
            Cpu::M68060 => "m68060",
            Cpu::M68000 => "m68000",
            Cpu::M68010 => "m68010",
            Cpu::Any => "any",
            Cpu::Cfv4e => "cfv4e",
            Cpu::M5206 => "m5206",
            Cpu::M5208 => "m5208",
        }
    }
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Aio {
    /// a pool of host threads
    #[value(name = "threads")]
    Threads,
    /// Linux io_uring
    #[value(name = "io_uring")]
    IoUring,
}

impl Aio {
    pub fn name(self) -> &'static str {
        match self {
            Aio::Threads => "threads",
            Aio::IoUring => "io_uring",
        }
    }
}

fn non_empty_path(s: &str) -> Result<PathBuf, String> {
    if s.is_empty() {
        return Err("needs a path, not an empty text".into());
    }
    Ok(PathBuf::from(s))
}

/// QEMU takes 0 and an empty size as "the default" (128 MiB): refuse both.
/// QEMU's `-m` size: digits, optionally one of its suffixes (K, M, G, T; bytes without),
/// not zero.
fn ram_size(s: &str) -> Result<String, String> {
    let number = s.trim_end_matches(['k', 'K', 'm', 'M', 'g', 'G', 't', 'T']);
    let suffixes = s.len() - number.len();
    let valid = number.split('.').count() <= 2
        && number.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && number.bytes().any(|b| (b'1'..=b'9').contains(&b));
    if suffixes > 1 || !valid {
        return Err(format!(
            "'{s}' is not a RAM size (e.g. 128M; the kernel needs at least 24M)"
        ));
    }
    Ok(s.to_string())
}

/// The filter becomes `test=FILTER` on the kernel command line.
fn filter(s: &str) -> Result<String, String> {
    if s.is_empty() || s.contains(char::is_whitespace) || s.contains('=') || s.starts_with('-') {
        return Err(format!(
            "'{s}': give one text (test names contain it), without spaces or '='"
        ));
    }
    Ok(s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;
    use std::os::unix::ffi::OsStringExt;

    #[test]
    fn ram_sizes_are_qemus() {
        for ok in ["128M", "1.5G", "134217728", "512m", "24M", "1T"] {
            assert_eq!(ram_size(ok), Ok(ok.to_string()), "{ok}");
        }
        for bad in [
            "", "0", "00M", "M", "abc", "12X", "128MM", "1.2.3G", "-5M", "0.0G",
        ] {
            assert!(ram_size(bad).is_err(), "{bad}");
        }
    }

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("xtask").chain(args.iter().copied()))
    }

    #[test]
    fn the_declaration_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    /// Every option that takes a value, given a non-UTF-8 byte and an empty text: a clap
    /// error (exit 2 with a message), never a panic.
    #[test]
    fn non_utf8_and_empty_values_are_errors_not_panics() {
        let bad = OsString::from_vec(vec![b't', b'=', 0xff]);
        for cmd in [
            vec!["run", "--append"],
            vec!["run", "--cpu"],
            vec!["run", "--mem"],
            vec!["run", "--disk"],
            vec!["run", "--timeout"],
            vec!["qemu", "--"],
            vec!["gdb", "--append"],
            vec!["test"],
            vec!["test", "--mem"],
            vec!["bench", "--aio"],
            vec!["bench", "--runs"],
            vec!["bench", "--compare"],
            vec!["bench", "--cpu"],
            vec!["bench", "--qemu"],
            vec!["mutants", "--site"],
            vec!["profile", "--cell"],
            vec!["profile", "--append"],
            vec!["--qemu"],
            vec!["verify", "--disk"],
            vec!["verify", "--disk", "a", "--inject"],
            vec!["verify", "--disk", "a", "--pass"],
            vec!["run", "--disk", "a", "--inject"],
            vec!["bench", "--disk"],
        ] {
            let mut args: Vec<OsString> = std::iter::once("xtask")
                .chain(cmd.iter().copied())
                .map(OsString::from)
                .collect();
            args.push(bad.clone());
            let e = Cli::try_parse_from(&args).expect_err(&format!("{cmd:?} <non-UTF-8>"));
            use clap::error::ErrorKind;
            assert!(
                matches!(
                    e.kind(),
                    ErrorKind::InvalidUtf8 | ErrorKind::InvalidValue | ErrorKind::ValueValidation
                ),
                "{cmd:?}: {e}"
            );
        }
        for cmd in [
            vec!["run", "--cpu", ""],
            vec!["mutants", "--site", ""],
            vec!["run", "--mem", ""],
            vec!["run", "--mem", "0"],
            vec!["run", "--mem", "abc"],
            vec!["run", "--mem", "128MM"],
            vec!["run", "--mem", "0.0G"],
            vec!["test", "--mem", "64X"],
            vec!["run", "--disk", ""],
            vec!["run", "--disk", ",ro"],
            vec!["run", "--timeout", ""],
            vec!["run", "--timeout", "0"],
            vec!["run", "--timeout", "soon"],
            vec!["run", "--qemu", ""],
            vec!["test", ""],
            vec!["test", "boot:: log=debug"],
            vec!["test", "a=b"],
            vec!["bench", "--aio", ""],
            vec!["bench", "--aio", "posix"],
            vec!["bench", "--runs", ""],
            vec!["bench", "--runs", "0"],
            vec!["bench", "--compare", ""],
            vec!["bench", "--cpu", "m68k"],
            vec!["bench", "--timeout", "0"],
            vec!["profile", "--cell", ""],
            vec!["profile", "--cell", "driver,rand,read,4096,1,intr"],
            vec!["profile", "--top", "0"],
            vec![
                "profile",
                "--cell",
                "floor,rand,read,4096,1,polled,off",
                "--append",
                "test=none",
            ],
            vec![""],
            vec![],
            vec!["run", "--bogus"],
            vec!["build", "extra"],
            vec!["run", "--", "-d", "int"],
            vec!["test", "--append", "x=1"],
            vec!["test", "--disk", "a.img"],
            vec!["verify"],
            vec!["verify", "--disk", ""],
            vec!["verify", "--disk", "a,b"],
            vec!["verify", "--disk", "a", "--inject", "read"],
            vec!["verify", "--disk", "a", "--inject", "read:"],
            vec!["verify", "--disk", "a", "--inject", "flush:1"],
            vec!["verify", "--disk", "a", "--inject", "read:1,x"],
            vec!["verify", "--disk", "a", "--pass", "write/none"],
            vec!["verify", "--disk", "a", "--pass", "intr/060"],
            vec!["verify", "--disk", "a", "--seed", "1"],
            vec!["verify", "--disk", "a", "--timeout", "0"],
            vec!["bench", "--write"],
            vec!["bench", "--quick", "--disk", "a", "--write"],
            vec!["bench", "--inject", "read:1"],
            vec!["run", "--inject", "read:x"],
            vec!["run", "--inject", "read:5"],
            vec!["run", "--timeout", "0"],
            vec!["bench", "--runs", "0"],
        ] {
            assert!(parse(&cmd).is_err(), "{cmd:?} was accepted");
        }
    }

    #[test]
    fn an_option_given_twice_is_refused() {
        for cmd in [
            vec!["run", "--cpu", "m68030", "--cpu", "m68040"],
            vec!["run", "--mem", "32M", "--mem", "64M"],
            vec!["run", "--append", "a=1", "--append", "b=2"],
            vec!["run", "--timeout", "1", "--timeout", "2"],
            vec!["run", "--qemu", "a", "--qemu", "b"],
            vec!["bench", "--runs", "1", "--runs", "2"],
        ] {
            let e = parse(&cmd).expect_err(&format!("{cmd:?}"));
            assert!(
                e.to_string().contains("cannot be used multiple times"),
                "{e}"
            );
        }
        // --disk is repeatable.
        let Command::Run(b) = parse(&["run", "--disk", "a", "--disk", "b,ro"])
            .unwrap()
            .command
        else {
            panic!("not run")
        };
        assert_eq!(b.disk.len(), 2);
        assert!(b.disk[1].read_only);
    }

    #[test]
    fn values_and_defaults() {
        let Command::Run(b) = parse(&["run", "--singlestep"]).unwrap().command else {
            panic!("not run")
        };
        assert_eq!(b.machine.timeout(), SINGLESTEP_TIMEOUT);
        assert_eq!(b.machine.mem, "128M");
        let Command::Run(b) = parse(&["run", "--timeout", "7", "--singlestep"])
            .unwrap()
            .command
        else {
            panic!("not run")
        };
        assert_eq!(b.machine.timeout(), Duration::from_secs(7));
        let cli = parse(&["run", "--cpu", "cfv4e", "--qemu", "/q"]).unwrap();
        assert_eq!(cli.qemu, Some(PathBuf::from("/q")));
        let Command::Run(b) = cli.command else {
            panic!("not run")
        };
        assert_eq!(b.machine.cpu.map(Cpu::name), Some("cfv4e"));
        // After `--`, everything is QEMU's, --qemu included.
        let cli = parse(&["qemu", "--", "--qemu", "x"]).unwrap();
        assert_eq!(cli.qemu, None);
        let Command::Qemu { extra, .. } = cli.command else {
            panic!("not qemu")
        };
        assert_eq!(extra, ["--qemu", "x"]);
        let Command::Bench(b) = parse(&["bench", "--quick", "--aio", "io_uring"])
            .unwrap()
            .command
        else {
            panic!("not bench")
        };
        assert_eq!(
            (b.quick, b.runs, b.aio, b.cpu),
            (true, 3, Aio::IoUring, Cpu::M68040)
        );
        let Command::Test(t) = parse(&["test", "irq::", "--cpu", "m68030"])
            .unwrap()
            .command
        else {
            panic!("not test")
        };
        assert_eq!(t.filter.as_deref(), Some("irq::"));
        let Command::Verify(v) = parse(&[
            "verify",
            "--disk",
            "a.img",
            "--disk",
            "b.img,ro",
            "--pass",
            "polled/040,intr/none",
            "--inject",
            "read:4096,12345",
            "--inject",
            "write:7",
        ])
        .unwrap()
        .command
        else {
            panic!("not verify")
        };
        assert_eq!(v.disk.len(), 2);
        assert!(v.disk[1].read_only && !v.write && v.timeout.is_none());
        assert_eq!(v.pass.len(), 2);
        assert_eq!(v.inject[0].sectors, [4096, 12345]);
        assert_eq!(v.inject.len(), 2);
        assert_eq!(v.seed, 1);
    }

    /// Every CPU name clap accepts is one QEMU's virt board lists (`-M virt -cpu help` on 7.2
    /// and 10.0, copied here).
    #[test]
    fn cpu_names_are_the_boards() {
        let board = "m68000 m68010 m68020 m68030 m68040 m68060 any cfv4e m5206 m5208";
        for c in Cpu::value_variants() {
            let name = c.to_possible_value().map(|v| v.get_name().to_string());
            assert_eq!(name.as_deref(), Some(c.name()));
            assert!(board.split(' ').any(|b| b == c.name()), "{}", c.name());
        }
        assert_eq!(Cpu::value_variants().len(), board.split(' ').count());
    }

    /// The README shows `--help`, `run -h`, `test -h`, `bench -h` and `verify -h` as the xtask prints
    /// them (100 columns, as without a terminal), indented as a code block.
    #[test]
    fn the_readme_shows_the_help() {
        use clap::CommandFactory;
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
            .expect("README.md beside the workspace");
        let mut cmd = Cli::command().term_width(100);
        cmd.build();
        let mut helps = vec![("--help", cmd.render_help().to_string())];
        for sub in ["run", "test", "bench", "verify"] {
            let c = cmd.find_subcommand_mut(sub).expect("a subcommand");
            helps.push((sub, c.render_help().to_string()));
        }
        for (name, help) in helps {
            let block: String = help
                .trim_end()
                .lines()
                .map(|l| {
                    if l.is_empty() {
                        "\n".to_string()
                    } else {
                        format!("    {}\n", l.trim_end())
                    }
                })
                .collect();
            assert!(
                readme.contains(&block),
                "README.md does not show `cargo xtask {name}` as it is now:\n{block}"
            );
        }
    }
}
