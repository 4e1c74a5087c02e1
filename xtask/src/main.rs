//! `cargo xtask`: builds the m68k virt kernel, boots it under QEMU, and runs its tests.
//!
//! Everything strange about the compilation route (wasm, wasm2c, the memory rewrite, GCC and
//! ld for the m68k) is kept here and in boot/; the kernel and drivers are ordinary Rust.

mod bench;
mod deps;
mod pipeline;
mod qemu;
mod rewrite;

use deps::Need;
use pipeline::Paths;
use qemu::{Disk, Outcome, Qemu};
use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

pub type Result<T> = std::result::Result<T, String>;

pub fn fail<T>(msg: String) -> Result<T> {
    Err(msg)
}

const USAGE: &str = "\
usage: cargo xtask <command> [options]

commands:
  build                     build target/m68k/kernel.elf
  run [options]             build, boot with the default configuration (banner, self tests)
  test [FILTER] [options]   host unit tests, then the in-guest suite on -cpu m68040 and
                            -cpu m68030, then the deliberate-failure checks; with FILTER,
                            only tests whose name contains it
  qemu [options] -- ARGS    build and boot with extra QEMU arguments
  gdb [options]             boot stopped under QEMU's gdb stub and attach gdb-multiarch
  bench [bench options]     the block I/O benchmark: table, target/bench/bench.{json,csv,svg}

options (run, qemu, gdb; --cpu and --timeout also for test):
  --cpu MODEL        m68040 (default) or m68030
  --mem SIZE         guest RAM, QEMU syntax (default 128M)
  --append \"...\"     kernel command line (default: test=all; see README for the options)
  --disk FILE[,ro]   attach FILE as a virtio-blk disk (repeatable; slots 0, 1, ...)
  --timeout SECS     wall-clock limit for one QEMU run (default 300)
  --singlestep       one guest instruction per translated block (interrupts anywhere)

bench options:
  --quick            the small matrix (a few minutes); default: the full one
  --runs N           runs to take medians over (default 3)
  --icount           -icount shift=0 -rtc clock=vm: guest instructions as the clock
  --aio threads|io_uring   QEMU's AIO backend for the disk (default threads)
  --compare FILE     flag regressions against a previous bench.json
  --cpu MODEL, --timeout SECS as above
";

struct Options {
    qemu: Qemu,
    cpu_given: bool,
    append_given: bool,
    filter: Option<String>,
    passthrough: Vec<String>,
}

/// The value after the option at `args[i]`.
fn option_value(args: &[String], i: usize, name: &str) -> Result<String> {
    args.get(i + 1)
        .cloned()
        .ok_or_else(|| format!("{name} needs a value\n\n{USAGE}"))
}

fn parse_options(args: &[String], allow_filter: bool) -> Result<Options> {
    let mut o = Options {
        qemu: Qemu::default(),
        cpu_given: false,
        append_given: false,
        filter: None,
        passthrough: Vec::new(),
    };
    o.qemu.append = "test=all".into();
    let mut i = 0;
    let value = |i: usize, name: &str| option_value(args, i, name);
    while i < args.len() {
        match args[i].as_str() {
            "--cpu" => {
                let cpu = value(i, "--cpu")?;
                if !["m68030", "m68040", "m68060"].contains(&cpu.as_str()) {
                    return fail(format!(
                        "--cpu: unknown model '{cpu}' (m68030, m68040, m68060)"
                    ));
                }
                o.qemu.cpu = cpu;
                o.cpu_given = true;
                i += 2;
            }
            "--mem" => {
                o.qemu.mem = value(i, "--mem")?;
                i += 2;
            }
            "--append" => {
                o.append_given = true;
                o.qemu.append = value(i, "--append")?;
                i += 2;
            }
            "--disk" => {
                o.qemu.disks.push(Disk::parse(&value(i, "--disk")?)?);
                i += 2;
            }
            "--timeout" => {
                let v = value(i, "--timeout")?;
                let secs: u64 = v
                    .parse()
                    .map_err(|_| format!("--timeout: '{v}' is not a number of seconds"))?;
                o.qemu.timeout = Duration::from_secs(secs.max(1));
                i += 2;
            }
            "--singlestep" => {
                o.qemu.singlestep = true;
                i += 1;
            }
            "--" => {
                o.passthrough = args[i + 1..].to_vec();
                break;
            }
            a if allow_filter && !a.starts_with('-') && o.filter.is_none() => {
                o.filter = Some(a.to_string());
                i += 1;
            }
            a => return fail(format!("unknown option '{a}'\n\n{USAGE}")),
        }
    }
    Ok(o)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("build") => cmd_build(&args[1..]),
        Some("run") => cmd_run(&args[1..], false),
        Some("qemu") => cmd_run(&args[1..], true),
        Some("test") => cmd_test(&args[1..]),
        Some("gdb") => cmd_gdb(&args[1..]),
        Some("bench") => cmd_bench(&args[1..]),
        Some("help" | "-h" | "--help") => {
            print!("{USAGE}");
            Ok(true)
        }
        Some(other) => fail(format!("unknown command '{other}'\n\n{USAGE}")),
        None => fail(USAGE.to_string()),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(msg) => {
            eprintln!("xtask: error: {msg}");
            ExitCode::FAILURE
        }
    }
}

fn build() -> Result<std::path::PathBuf> {
    deps::ensure(&[Need::Build])?;
    let started = Instant::now();
    let elf = pipeline::build(&Paths::new())?;
    eprintln!(
        "xtask: {} ready ({:.1} s)",
        elf.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(elf)
}

fn cmd_build(args: &[String]) -> Result<bool> {
    if let Some(a) = args.first() {
        return fail(format!("build takes no arguments, got '{a}'"));
    }
    build().map(|_| true)
}

fn cmd_run(args: &[String], passthrough: bool) -> Result<bool> {
    let mut o = parse_options(args, false)?;
    if !o.passthrough.is_empty() && !passthrough {
        return fail("extra QEMU arguments go with `cargo xtask qemu -- ARGS`".to_string());
    }
    o.qemu.extra = o.passthrough.clone();
    deps::ensure(&[Need::Build, Need::Run])?;
    let elf = build()?;
    // Without --disk, attach scratch disks (and say so with disks=): the virtio tests may
    // overwrite those, never a disk the user named.
    let _scratch = if o.qemu.disks.is_empty() {
        let s = ScratchDisks::create()?;
        o.qemu.disks = s.disks.clone();
        o.qemu.append = format!("{} {}", o.qemu.append, s.option());
        if !o.append_given && !passthrough {
            // The default run ends with the small benchmark matrix on the scratch disk.
            o.qemu.append.push_str(" bench=quick");
        }
        Some(s)
    } else {
        None
    };
    eprintln!("xtask: qemu-system-m68k {}", o.qemu.args(&elf).join(" "));
    let out = o.qemu.run(&elf, true)?;
    Ok(report_run("run", &elf, &o.qemu, &out))
}

/// Explains how a run ended; true when QEMU exited 0.
fn report_run(label: &str, elf: &Path, q: &Qemu, out: &Outcome) -> bool {
    if out.status == Some(0) {
        eprintln!("xtask: {label}: kernel halted, QEMU exited 0");
        return true;
    }
    explain_failure(label, elf, q, out, None);
    false
}

fn explain_failure(label: &str, elf: &Path, q: &Qemu, out: &Outcome, why: Option<&str>) {
    let paths = Paths::new();
    let log_dir = paths.out.join("logs");
    let _ = std::fs::create_dir_all(&log_dir);
    let log = log_dir.join(format!("{}.log", label.replace([' ', '/', '='], "_")));
    let _ = std::fs::write(&log, &out.console);
    eprintln!("\nxtask: {label}: FAILED");
    if out.timed_out {
        eprintln!(
            "  QEMU did not finish within {} s and was killed",
            q.timeout.as_secs()
        );
    } else {
        match out.status {
            Some(code) => eprintln!("  QEMU exited with status {code}"),
            None => eprintln!("  QEMU was killed by a signal"),
        }
    }
    if let Some(why) = why {
        eprintln!("  {why}");
    }
    if let Some(test) = qemu::unfinished_test(&out.console) {
        eprintln!("  test running at the end: {test}");
    }
    for line in symbolize_reports(elf, &out.console) {
        eprintln!("  {line}");
    }
    let tail: Vec<&str> = out.console.lines().rev().take(40).collect();
    eprintln!(
        "  console (last {} lines; all of it in {}):",
        tail.len(),
        log.display()
    );
    for l in tail.iter().rev() {
        eprintln!("  | {l}");
    }
}

/// Turns every `pc=0x...` in failure reports into the function that holds it.
fn symbolize_reports(elf: &Path, console: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in console
        .lines()
        .filter(|l| l.starts_with("fatal") || l.contains("FAILED"))
    {
        let Some(pos) = line.find("pc=0x") else {
            continue;
        };
        let hex: String = line[pos + 5..]
            .chars()
            .take_while(|c| c.is_ascii_hexdigit())
            .collect();
        let Ok(o) = Command::new("m68k-linux-gnu-addr2line")
            .arg("-f")
            .arg("-e")
            .arg(elf)
            .arg(format!("0x{hex}"))
            .output()
        else {
            continue;
        };
        let text = String::from_utf8_lossy(&o.stdout);
        let mut lines = text.lines();
        let func = lines
            .next()
            .unwrap_or("?")
            .trim_start_matches("w2c_")
            .to_string();
        let place = lines.next().unwrap_or("?");
        let func = demangle(&func);
        out.push(format!("pc 0x{hex} is in {func} ({place})"));
    }
    out
}

fn demangle(symbol: &str) -> String {
    Command::new("m68k-linux-gnu-c++filt")
        .arg(symbol)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| symbol.to_string())
}

/// I/O errors for the faulty scratch disk (slot 3): reads covering sector 100 and writes
/// covering sector 200 fail with EIO, every time. The kernel's blk tests rely on exactly this.
const BLKDEBUG_RULES: &str = "\
[inject-error]
event = \"read_aio\"
errno = \"5\"
sector = \"100\"
once = \"off\"

[inject-error]
event = \"write_aio\"
errno = \"5\"
sector = \"200\"
once = \"off\"
";

/// Scratch disk images for guest runs, in a temporary directory removed on drop. Sector s
/// holds byte `(s * 31 ^ i ^ 0xa5) as u8` at offset i (the virtio tests check it).
struct ScratchDisks {
    dir: std::path::PathBuf,
    disks: Vec<Disk>,
}

impl ScratchDisks {
    /// Sizes in 512-byte sectors: slot 0 16 MiB, slots 1-3 1 MiB each (slot 2 read-only,
    /// slot 3 behind blkdebug, see BLKDEBUG_RULES).
    const SECTORS: [u64; 4] = [32768, 2048, 2048, 2048];

    fn create() -> Result<ScratchDisks> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let base = if Path::new("/dev/shm").is_dir() {
            "/dev/shm".into()
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!("m68k-xtask-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let mut disks = Vec::new();
        for (slot, sectors) in Self::SECTORS.iter().enumerate() {
            let file = dir.join(format!("disk{slot}.img"));
            let mut bytes = Vec::with_capacity(*sectors as usize * 512);
            for s in 0..*sectors {
                bytes.extend((0..512u64).map(|i| (s.wrapping_mul(31) ^ i ^ 0xa5) as u8));
            }
            std::fs::write(&file, bytes)
                .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
            let (read_only, serial, blkdebug) = match slot {
                2 => (true, None, None),
                3 => {
                    let rules = dir.join("blkdebug.conf");
                    std::fs::write(&rules, BLKDEBUG_RULES)
                        .map_err(|e| format!("cannot write {}: {e}", rules.display()))?;
                    (false, Some("m68k-faulty3".to_string()), Some(rules))
                }
                _ => (false, None, None),
            };
            disks.push(Disk {
                file,
                read_only,
                serial,
                blkdebug,
                aio: None,
            });
        }
        Ok(ScratchDisks { dir, disks })
    }

    /// The kernel option naming their slots.
    fn option(&self) -> String {
        let slots: Vec<String> = (0..self.disks.len()).map(|i| i.to_string()).collect();
        format!("disks={}", slots.join(","))
    }
}

impl Drop for ScratchDisks {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A Check status meaning "QEMU must be killed by the timeout".
const MUST_TIME_OUT: i32 = -1;

/// One whole boot with a known outcome: QEMU's exit status and texts the console must show.
struct Check {
    name: &'static str,
    cpu: &'static str,
    mem: &'static str,
    append: &'static str,
    status: i32,
    expect: &'static [&'static str],
}

const fn fault(
    name: &'static str,
    cpu: &'static str,
    append: &'static str,
    expect: &'static [&'static str],
) -> Check {
    Check {
        name,
        cpu,
        mem: "128M",
        append,
        status: 1,
        expect,
    }
}

/// Deliberate failures (each must be reported and exit 1) and memory sizes at the edges.
const CHECKS: &[Check] = &[
    fault(
        "fault=panic",
        "m68040",
        "test=none fault=panic",
        &["kernel panic: deliberate panic (fault=panic) at kernel/src/start.rs:"],
    ),
    fault(
        "fault=illegal",
        "m68040",
        "test=none fault=illegal",
        &["fatal exception: vector 4 (illegal instruction) pc=0x"],
    ),
    fault(
        "fault=buserror (68040)",
        "m68040",
        "test=none fault=buserror",
        &[
            "fatal exception: vector 2 (access fault (bus error))",
            "format=0x7 fault-address=0xfe000000",
        ],
    ),
    // QEMU 7.2 raises access faults for unmapped addresses on the 68040 only.
    fault(
        "fault=buserror (68030)",
        "m68030",
        "test=none fault=buserror",
        &["fatal: fault=buserror did not fault on this CPU"],
    ),
    fault(
        "fault=divzero",
        "m68040",
        "test=none fault=divzero",
        &["fatal exception: vector 5 (integer divide by zero)"],
    ),
    fault(
        "fault=illegal (68030)",
        "m68030",
        "test=none fault=illegal",
        &["fatal exception: vector 4 (illegal instruction)"],
    ),
    fault(
        "fault=wasmtrap",
        "m68040",
        "test=none fault=wasmtrap",
        &["fatal wasm trap: out of bounds memory access pc=0x"],
    ),
    fault(
        "bad option",
        "m68040",
        "test=all bogus=1",
        &[
            "fatal: kernel command line: unknown option 'bogus'",
            "accepted options",
            "fault=panic | illegal",
        ],
    ),
    fault(
        "bad value",
        "m68040",
        "log=loud",
        &["bad value 'loud' for log: expected error | warn | info | debug"],
    ),
    fault(
        "not key=value",
        "m68040",
        "verbose",
        &["'verbose' is not of the form key=value", "accepted options"],
    ),
    fault(
        "failing tests are reported",
        "m68040",
        "test=fail::",
        &[
            "test fail::assertion ... FAILED: deliberate: 1 + 1 is not 3",
            "test fail::panic ... FAILED: panicked at kernel/src/tests.rs:",
            "test fail::wasm_trap ... FAILED: wasm trap: out of bounds memory access",
            "0 passed, 3 failed",
        ],
    ),
    Check {
        name: "-m 32M",
        cpu: "m68040",
        mem: "32M",
        append: "test=boot::",
        status: 0,
        expect: &["linear memory at 0x00800000, 24 MiB", "5 passed, 0 failed"],
    },
    Check {
        name: "-m 1G",
        cpu: "m68030",
        mem: "1G",
        append: "test=boot::",
        status: 0,
        expect: &[
            "linear memory at 0x00800000, 1016 MiB",
            "5 passed, 0 failed",
        ],
    },
    fault(
        "dropped PREREAD is caught by the auditor",
        "m68030",
        "test=dma::driver dma_bug=drop-preread",
        &[
            "dma audit: CPU re-read a line in a new read phase without a PREREAD/POSTREAD cycle",
            "in seed/poll at offset 0x2, by kernel/src/tests_dma.rs:",
            "0 passed, 1 failed",
        ],
    ),
    fault(
        "68060 is refused",
        "m68060",
        "",
        &[
            "fatal: 68060 detected (CACR writable bits 0xf8e0e000)",
            "supports -cpu m68040 and -cpu m68030",
        ],
    ),
    Check {
        name: "hung test is killed and named",
        cpu: "m68040",
        mem: "128M",
        append: "test=hang::",
        status: MUST_TIME_OUT,
        expect: &["test hang::forever ... "],
    },
    Check {
        name: "-m 8M (too small)",
        cpu: "m68040",
        mem: "8M",
        append: "",
        status: 1,
        expect: &["fatal: RAM ends at 0x00800000", "give QEMU more memory"],
    },
];

fn cmd_test(args: &[String]) -> Result<bool> {
    let o = parse_options(args, true)?;
    if o.qemu.append != "test=all" || !o.qemu.disks.is_empty() || !o.passthrough.is_empty() {
        return fail("test takes FILTER, --cpu, --timeout and --singlestep only".to_string());
    }
    deps::ensure(&[Need::Build, Need::Run])?;
    let paths = Paths::new();
    let mut passed = 0u32;
    let mut failed = Vec::<String>::new();

    // 1. host unit tests
    eprintln!("xtask: host unit tests");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut host = Command::new(cargo);
    host.args(["test", "--workspace"]).current_dir(&paths.root);
    if let Some(f) = &o.filter {
        host.args(["--", f.as_str()]);
    }
    match host.status() {
        Ok(s) if s.success() => passed += 1,
        _ => failed.push("host unit tests".into()),
    }

    // 2. in-guest suite on each CPU model
    let elf = build()?;
    let selection = o
        .filter
        .clone()
        .map_or("test=all".to_string(), |f| format!("test={f}"));
    let cpus: Vec<String> = if o.cpu_given {
        vec![o.qemu.cpu.clone()]
    } else {
        vec!["m68040".into(), "m68030".into()]
    };
    // Interrupt-sensitive groups again with one instruction per translated block, where an
    // interrupt can land between any two instructions (normal TCG hides such races).
    let mut runs: Vec<(String, String, bool)> = cpus
        .iter()
        .map(|c| (c.clone(), selection.clone(), o.qemu.singlestep))
        .collect();
    if o.filter.is_none() && !o.qemu.singlestep {
        runs.extend(
            cpus.iter()
                .map(|c| (c.clone(), "test=irq::,time::,tty::".to_string(), true)),
        );
        // The disk groups again with DMA memory behind the 68030 stale-cache model: any
        // missing sync shows up as stale data (and the auditor still watches).
        runs.extend(cpus.iter().map(|c| {
            (
                c.clone(),
                "test=virtio::,blk:: dma_model=030".to_string(),
                false,
            )
        }));
    }
    for (cpu, selection, singlestep) in &runs {
        // Fresh scratch disks per run: the guest tests overwrite them.
        let scratch = ScratchDisks::create()?;
        let label = format!(
            "guest {selection} {cpu}{}",
            if *singlestep { " -singlestep" } else { "" }
        );
        let q = Qemu {
            cpu: cpu.clone(),
            // The bus_dma auditor is always on in the self tests.
            append: format!(
                "{selection} cpu={} dma_audit=on {}",
                cpu.trim_start_matches('m'),
                scratch.option()
            ),
            disks: scratch.disks.clone(),
            singlestep: *singlestep,
            ..o.qemu.clone()
        };
        eprintln!(
            "\nxtask: {label}: qemu-system-m68k {}",
            q.args(&elf).join(" ")
        );
        let out = q.run(&elf, true)?;
        let summary = qemu::last_summary(&out.console);
        let verdict = match (out.status, summary) {
            (Some(0), Some(s)) if s.failed == 0 && s.passed > 0 => None,
            (Some(0), Some(s)) if s.failed == 0 => {
                Some("no test ran (does the filter match any test?)".to_string())
            }
            (_, None) => Some("no closing 'N passed, N failed' line".to_string()),
            (_, Some(s)) => Some(format!(
                "{} of {} tests failed",
                s.failed,
                s.passed + s.failed
            )),
        };
        // The seed matrix the guest printed must be the one docs/dma-sync.md documents.
        let verdict = verdict.or_else(|| {
            if selection != "test=all" {
                return None;
            }
            let documented = documented_matrix(&paths.root)?;
            match printed_matrix(&out.console, documented.lines().count()) {
                Some(printed) if printed == documented => None,
                Some(printed) => Some(format!(
                    "the printed dma sync matrix differs from docs/dma-sync.md:\n{printed}"
                )),
                None => Some("the guest printed no dma sync matrix".to_string()),
            }
        });
        match verdict {
            None => {
                passed += 1;
                eprintln!("xtask: {label}: ok");
            }
            Some(why) => {
                explain_failure(&label, &elf, &q, &out, Some(&why));
                failed.push(label);
            }
        }
    }

    // 3. whole-boot checks: deliberate failures fail loudly and correctly; RAM sizes (unfiltered runs only)
    if o.filter.is_none() {
        eprintln!("\nxtask: whole-boot checks (deliberate failures must exit 1 with their report)");
        for check in CHECKS {
            let q = Qemu {
                cpu: check.cpu.into(),
                mem: check.mem.into(),
                append: check.append.into(),
                timeout: Duration::from_secs(if check.status == MUST_TIME_OUT {
                    5
                } else {
                    120
                }),
                ..Qemu::default()
            };
            let out = q.run(&elf, false)?;
            let missing: Vec<&&str> = check
                .expect
                .iter()
                .filter(|e| !out.console.contains(**e))
                .collect();
            let why = if check.status == MUST_TIME_OUT {
                match (out.timed_out, qemu::unfinished_test(&out.console)) {
                    (true, Some(t)) if t == "hang::forever" && missing.is_empty() => None,
                    (timed_out, t) => Some(format!(
                        "expected a timeout naming hang::forever, got timed_out={timed_out} test={t:?}"
                    )),
                }
            } else if out.status != Some(check.status) {
                Some(format!(
                    "expected QEMU exit status {}, got {:?}",
                    check.status, out.status
                ))
            } else if !missing.is_empty() {
                Some(format!("report lacks {missing:?}"))
            } else {
                None
            };
            match why {
                None => {
                    passed += 1;
                    eprintln!("xtask: check {} ... ok", check.name);
                }
                Some(why) => {
                    let label = format!("check {}", check.name);
                    explain_failure(&label, &elf, &q, &out, Some(&why));
                    failed.push(label);
                }
            }
        }
    }

    // 4. the benchmark's quick matrix completes and every record parses (unfiltered runs)
    if o.filter.is_none() {
        let scratch = ScratchDisks::create()?;
        let q = Qemu {
            append: format!("test=none bench=quick {}", scratch.option()),
            disks: scratch.disks.clone(),
            timeout: Duration::from_secs(300),
            ..Qemu::default()
        };
        let out = q.run(&elf, false)?;
        let why = match (out.status, bench::parse_log(&out.console)) {
            (_, Err(e)) => Some(e),
            (Some(0), Ok(r)) if !r.is_empty() && !out.console.contains("bench error") => None,
            (status, Ok(r)) => Some(format!("exit {status:?}, {} records", r.len())),
        };
        match why {
            None => {
                passed += 1;
                eprintln!("xtask: check benchmark quick matrix ... ok");
            }
            Some(why) => {
                explain_failure("check benchmark", &elf, &q, &out, Some(&why));
                failed.push("check benchmark".into());
            }
        }
    }

    for f in &failed {
        eprintln!("xtask: FAILED: {f}");
    }
    println!("xtask: {} passed, {} failed", passed, failed.len());
    Ok(failed.is_empty())
}

/// The matrix block of docs/dma-sync.md (between its `<!-- matrix -->` markers).
fn documented_matrix(root: &Path) -> Option<String> {
    let doc = std::fs::read_to_string(root.join("docs/dma-sync.md")).ok()?;
    let start = doc.find("<!-- matrix -->\n```\n")? + "<!-- matrix -->\n```\n".len();
    let end = start + doc[start..].find("```\n<!-- /matrix -->")?;
    Some(doc[start..end].to_string())
}

/// The matrix the guest printed: `lines` lines from its title line.
fn printed_matrix(console: &str, lines: usize) -> Option<String> {
    let all: Vec<&str> = console.lines().collect();
    let at = all.iter().position(|l| l.starts_with("dma sync matrix"))?;
    let block = all.get(at..at + lines)?;
    Some(block.iter().map(|l| format!("{l}\n")).collect())
}

fn cmd_gdb(args: &[String]) -> Result<bool> {
    let o = parse_options(args, false)?;
    deps::ensure(&[Need::Build, Need::Run, Need::Gdb])?;
    let elf = build()?;
    let mut q = o.qemu.clone();
    q.extra.extend(["-s".to_string(), "-S".to_string()]);
    let mut qemu = Command::new("qemu-system-m68k")
        .args(q.args(&elf))
        .stdin(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start qemu-system-m68k: {e}"))?;
    eprintln!("xtask: QEMU waits for gdb on localhost:1234; quitting gdb stops QEMU");
    let status = Command::new("gdb-multiarch")
        .arg(&elf)
        .args([
            "-ex",
            "set architecture m68k:68040",
            "-ex",
            "target remote localhost:1234",
        ])
        .status();
    let _ = qemu.kill();
    let _ = qemu.wait();
    status
        .map(|s| s.success())
        .map_err(|e| format!("cannot run gdb-multiarch: {e}"))
}

fn cmd_bench(args: &[String]) -> Result<bool> {
    let (mut quick, mut icount, mut runs, mut aio, mut compare) =
        (false, false, 3usize, "threads".to_string(), None);
    let mut q = Qemu {
        mem: "256M".into(),
        timeout: Duration::from_secs(3600),
        ..Qemu::default()
    };
    let mut i = 0;
    let value = |i: usize, name: &str| option_value(args, i, name);
    while i < args.len() {
        match args[i].as_str() {
            "--quick" => quick = true,
            "--icount" => icount = true,
            "--runs" => {
                let v = value(i, "--runs")?;
                runs = v
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or(format!("--runs: '{v}' is not a positive number"))?;
                i += 1;
            }
            "--aio" => {
                aio = value(i, "--aio")?;
                if aio != "threads" && aio != "io_uring" {
                    return fail(format!("--aio: '{aio}' is neither threads nor io_uring"));
                }
                i += 1;
            }
            "--compare" => {
                compare = Some(value(i, "--compare")?);
                i += 1;
            }
            "--cpu" => {
                q.cpu = value(i, "--cpu")?;
                i += 1;
            }
            "--timeout" => {
                let v = value(i, "--timeout")?;
                q.timeout = Duration::from_secs(
                    v.parse()
                        .map_err(|_| format!("--timeout: '{v}' is not a number"))?,
                );
                i += 1;
            }
            a => return fail(format!("unknown bench option '{a}'\n\n{USAGE}")),
        }
        i += 1;
    }
    // Read the comparison first: a bad file should fail before minutes of benchmarking.
    let previous = match &compare {
        Some(f) => Some(bench::read_json(
            &std::fs::read_to_string(f).map_err(|e| format!("--compare {f}: {e}"))?,
        )?),
        None => None,
    };
    deps::ensure(&[Need::Build, Need::Run])?;
    let elf = build()?;
    let out_dir = Paths::new().root.join("target/bench");
    std::fs::create_dir_all(&out_dir)
        .map_err(|e| format!("cannot create {}: {e}", out_dir.display()))?;
    if icount {
        q.extra
            .extend(["-icount", "shift=0", "-rtc", "clock=vm"].map(String::from));
    }
    let clock = if icount {
        "icount (-icount shift=0 -rtc clock=vm: 1 guest ns = 1 instruction)"
    } else {
        "rtc (host time)"
    };
    let mut all = Vec::new();
    for run in 1..=runs {
        let scratch = ScratchDisks::create()?;
        q.disks = scratch.disks.clone();
        for d in &mut q.disks {
            d.aio = Some(aio.clone());
        }
        q.append = format!(
            "test=none bench={} {}",
            if quick { "quick" } else { "full" },
            scratch.option()
        );
        eprintln!(
            "xtask: bench run {run}/{runs} (aio={aio}, clock {clock}): qemu-system-m68k {}",
            q.args(&elf).join(" ")
        );
        let out = q.run(&elf, true)?;
        if out.status != Some(0) {
            explain_failure("bench", &elf, &q, &out, Some("the benchmark run failed"));
            return Ok(false);
        }
        let records = bench::parse_log(&out.console)?;
        if records.is_empty() {
            return fail("the benchmark printed no records".to_string());
        }
        std::fs::write(out_dir.join(format!("run{run}.log")), &out.console)
            .map_err(|e| format!("{e}"))?;
        all.push(records);
    }
    let cells = bench::summarize(&all);
    let table = bench::table(&cells, clock);
    println!("\n{table}");
    let write = |name: &str, text: String| -> Result<()> {
        let p = out_dir.join(name);
        std::fs::write(&p, text).map_err(|e| format!("cannot write {}: {e}", p.display()))
    };
    write("bench.json", bench::json(&cells, clock, &aio))?;
    write("bench.csv", bench::csv(&cells))?;
    write("bench.svg", bench::svg(&cells))?;
    write("table.txt", table)?;
    println!(
        "xtask: wrote {}/bench.{{json,csv,svg}} and table.txt",
        out_dir.display()
    );
    if let Some(previous) = previous {
        let regs = bench::regressions(&previous, &cells);
        if regs.is_empty() {
            println!(
                "xtask: no regression beyond noise against {}",
                compare.unwrap_or_default()
            );
        } else {
            println!("xtask: regressions beyond noise:");
            for r in &regs {
                println!("  {r}");
            }
            return Ok(false);
        }
    }
    Ok(true)
}
