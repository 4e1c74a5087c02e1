//! `cargo xtask`: builds the m68k virt kernel, boots it under QEMU, and runs its tests.
//!
//! Everything strange about the compilation route (wasm, wasm2c, the memory rewrite, GCC and
//! ld for the m68k) is kept here and in boot/; the kernel and drivers are ordinary Rust.

mod bench;
mod checks;
mod deps;
#[cfg(test)]
mod layers;
mod machine_code;
mod pipeline;
mod qemu;
mod rewrite;
mod scratch;
mod seed_live;

use bench::CellKey as _;
use console_proto::{report::Pc, test_line, Summary};
use deps::Need;
use pipeline::Paths;
use qemu::{Disk, Outcome, Qemu};
use scratch::ScratchDisks;
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
  run [options]             build, boot with the scratch disks: banner, self tests, and (without
                            --append) the quick benchmark
  test [FILTER] [options]   host unit tests; the in-guest suite on every CPU model the QEMU
                            runs; one-insn-per-tb, cache-model and -icount passes; whole-boot
                            and signal checks; the quick benchmark. With FILTER, only the
                            suite's tests whose name contains it
  qemu [options] -- ARGS    build and boot with extra QEMU arguments
  gdb [options]             boot stopped under QEMU's gdb stub and attach gdb-multiarch
  bench [bench options]     the block I/O benchmark: table, target/bench/bench.{json,csv,svg}

options for every command that boots:
  --qemu PATH        the qemu-system-m68k to run (default: $XTASK_QEMU, else the one on PATH);
                     its version is printed and picks -singlestep or -accel tcg,one-insn-per-tb=on

options (run, qemu, gdb; test takes --cpu, --mem, --timeout and --singlestep):
  --cpu MODEL        m68040 (default), m68030, m68020, m68060 (QEMU >= 9.0); the board's other
                     models (m68000, m68010, cfv4e, m5206, m5208, any) boot to a refusal
  --mem SIZE         guest RAM, QEMU syntax (default 128M)
  --append \"...\"     kernel command line (default: test=all; see README for the options);
                     the xtask adds dma_audit=on and its disks= only where you set neither
  --disk FILE[,ro]   attach FILE as a virtio-blk disk (repeatable; slots 0, 1, ...)
  --timeout SECS     wall-clock limit for one QEMU run, at least 1 (default 300)
  --singlestep       one guest instruction per translated block (interrupts anywhere)

A signal (Ctrl-C, SIGTERM, SIGHUP) stops QEMU, removes the scratch disks and exits 130.

bench options:
  --quick            the small matrix (seconds); default: the full one (minutes)
  --runs N           runs to take medians over (default 3)
  --icount           -icount shift=0 -rtc clock=vm: guest instructions as the clock
  --aio threads|io_uring   QEMU's AIO backend for the disk (default threads)
  --compare FILE     flag regressions against a previous bench.json
  --cpu MODEL, --timeout SECS as above
";

/// Every -cpu QEMU's virt board accepts (QEMU 7.2 and 10: `-M virt -cpu help`); the kernel
/// runs on the 68020-68060 and refuses the others with one line.
const BOARD_CPUS: &[&str] = &[
    "m68040", "m68030", "m68020", "m68060", "m68000", "m68010", "any", "cfv4e", "m5206", "m5208",
];

/// Adds `key=value` to a kernel command line unless the user's text already sets `key`: the
/// user's options are never overridden (the kernel refuses a key given twice).
fn with_default(append: &str, key: &str, value: &str) -> String {
    let set = append
        .split_ascii_whitespace()
        .any(|t| t.split_once('=').map(|(k, _)| k) == Some(key));
    match (set, append.trim().is_empty()) {
        (true, _) => append.to_string(),
        (false, true) => format!("{key}={value}"),
        (false, false) => format!("{} {key}={value}", append.trim_end()),
    }
}

/// Default wall-clock limit of a `--singlestep` run (the default run takes 4-5 min there).
const SINGLESTEP_TIMEOUT: Duration = Duration::from_secs(900);

struct Options {
    qemu: Qemu,
    cpu_given: bool,
    append_given: bool,
    timeout_given: bool,
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
        timeout_given: false,
        filter: None,
        passthrough: Vec::new(),
    };
    o.qemu.append = "test=all".into();
    let mut seen: Vec<&str> = Vec::new();
    let mut i = 0;
    let value = |i: usize, name: &str| option_value(args, i, name);
    while i < args.len() {
        match args[i].as_str() {
            "--cpu" | "--mem" | "--append" | "--timeout" if seen.contains(&args[i].as_str()) => {
                return fail(format!("{} given twice", args[i]));
            }
            "--cpu" => {
                seen.push("--cpu");
                let cpu = value(i, "--cpu")?;
                if !BOARD_CPUS.contains(&cpu.as_str()) {
                    return fail(format!(
                        "--cpu: unknown model '{cpu}' (the virt board takes {})",
                        BOARD_CPUS.join(", ")
                    ));
                }
                o.qemu.cpu = cpu;
                o.cpu_given = true;
                i += 2;
            }
            "--mem" => {
                seen.push("--mem");
                o.qemu.mem = value(i, "--mem")?;
                // QEMU takes 0 and an empty size as "the default" (128 MiB): refuse both.
                if o.qemu.mem.trim_start_matches('0').is_empty() {
                    return fail(format!(
                        "--mem: '{}' is not a RAM size (e.g. 128M; the kernel needs at least 24M)",
                        o.qemu.mem
                    ));
                }
                i += 2;
            }
            "--append" => {
                seen.push("--append");
                o.append_given = true;
                o.qemu.append = value(i, "--append")?;
                i += 2;
            }
            "--disk" => {
                o.qemu.disks.push(Disk::parse(&value(i, "--disk")?)?);
                i += 2;
            }
            "--timeout" => {
                seen.push("--timeout");
                let v = value(i, "--timeout")?;
                let secs: u64 = v
                    .parse()
                    .map_err(|_| format!("--timeout: '{v}' is not a number of seconds"))?;
                if secs == 0 {
                    return fail("--timeout: 0 s would kill QEMU at once; give 1 or more".into());
                }
                o.qemu.timeout = Duration::from_secs(secs);
                o.timeout_given = true;
                i += 2;
            }
            "--singlestep" => {
                // One instruction per block runs the suite several times slower.
                if !o.timeout_given {
                    o.qemu.timeout = SINGLESTEP_TIMEOUT;
                }
                o.qemu.singlestep = true;
                i += 1;
            }
            "--" => {
                o.passthrough = args[i + 1..].to_vec();
                break;
            }
            a if allow_filter && !a.starts_with('-') && o.filter.is_none() => {
                // The filter becomes `test=FILTER` on the kernel command line.
                if a.is_empty() || a.contains(char::is_whitespace) || a.contains('=') {
                    return fail(format!(
                        "FILTER '{a}': give one text (test names contain it), without spaces or '='"
                    ));
                }
                o.filter = Some(a.to_string());
                i += 1;
            }
            a => return fail(format!("unknown option '{a}'\n\n{USAGE}")),
        }
    }
    Ok(o)
}

/// The command line as UTF-8 strings, or an error naming the argument that is not.
fn utf8_args(raw: impl IntoIterator<Item = std::ffi::OsString>) -> Result<Vec<String>> {
    raw.into_iter()
        .enumerate()
        .map(|(i, a)| {
            a.into_string().map_err(|bad| {
                format!(
                    "argument {} is not valid UTF-8 ({}): the kernel command line and paths must be text",
                    i + 1,
                    bad.to_string_lossy()
                )
            })
        })
        .collect()
}

/// Takes `--qemu PATH` (anywhere before `--`) out of the arguments.
fn take_qemu_option(args: &mut Vec<String>) -> Result<Option<String>> {
    let end = args.iter().position(|a| a == "--").unwrap_or(args.len());
    let Some(i) = args[..end].iter().position(|a| a == "--qemu") else {
        return Ok(None);
    };
    let path = option_value(args, i, "--qemu")?;
    if path.is_empty() {
        return fail("--qemu needs a path to a qemu-system-m68k".to_string());
    }
    args.drain(i..i + 2);
    if args[..end - 2].iter().any(|a| a == "--qemu") {
        return fail("--qemu given twice".to_string());
    }
    Ok(Some(path))
}

fn main() -> ExitCode {
    let result = utf8_args(std::env::args_os().skip(1)).and_then(|mut args| {
        qemu::catch_signals()?;
        let qemu = take_qemu_option(&mut args)?;
        if let Some(path) = qemu::requested(qemu)? {
            qemu::select(path)?;
        }
        let outcome = dispatch(&args);
        // A signal wins over whatever the interrupted step made of it (a build killed by
        // the terminal's SIGINT fails; QEMU may exit 0 on it): never a false success.
        qemu::check_interrupted()?;
        outcome
    });
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(msg) if msg == qemu::INTERRUPTED_MSG => {
            eprintln!("\nxtask: {msg}");
            ExitCode::from(130)
        }
        Err(msg) => {
            eprintln!("xtask: error: {msg}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(args: &[String]) -> Result<bool> {
    match args.first().map(String::as_str) {
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
    }
}

fn build() -> Result<std::path::PathBuf> {
    deps::ensure(&[Need::Build])?;
    let started = Instant::now();
    let elf = pipeline::build(&Paths::new())?;
    qemu::check_interrupted()?;
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
        o.qemu.append = with_default(&o.qemu.append, "disks", &s.slots());
        if !o.append_given && !passthrough {
            // The default run ends with the small benchmark matrix on the scratch disk.
            o.qemu.append.push_str(" bench=quick");
        }
        Some(s)
    } else {
        None
    };
    // The same auditor setting as the self tests (README: on unless the user sets it), and
    // the model QEMU was started with, which the cpu:: tests compare with the probe.
    o.qemu.append = with_default(&o.qemu.append, "dma_audit", "on");
    o.qemu.append = with_default(&o.qemu.append, "cpu", o.qemu.cpu.trim_start_matches('m'));
    for d in &o.qemu.disks {
        warn_odd_disk(&d.file);
    }
    eprintln!("xtask: {}", o.qemu.command_line(&elf)?);
    let out = o.qemu.run(&elf, true)?;
    Ok(report_run("run", &elf, &o.qemu, &out))
}

/// Says so when a user's disk image is not whole sectors: QEMU rounds its size up and the
/// last sector reads past the end of the file.
fn warn_odd_disk(file: &Path) {
    if let Ok(m) = std::fs::metadata(file) {
        if m.is_file() && m.len() % 512 != 0 {
            eprintln!(
                "xtask: warning: {} is {} bytes, not a whole number of 512-byte sectors: QEMU rounds it up to {} sectors",
                file.display(),
                m.len(),
                m.len().div_ceil(512)
            );
        }
    }
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
    // File names have a length limit; a long filter must not lose the log.
    let name: String = label
        .replace([' ', '/', '=', ','], "_")
        .chars()
        .take(120)
        .collect();
    let log = log_dir.join(format!("{name}.log"));
    let mut text = out.console.clone();
    if !out.stderr.is_empty() {
        text.push_str("\n--- QEMU's own messages (stderr) ---\n");
        text.push_str(&out.stderr);
    }
    let _ = std::fs::write(&log, text);
    eprintln!("\nxtask: {label}: FAILED");
    for line in failure_report(q, out, why, &symbolize_reports(elf, &out.console), &log) {
        eprintln!("  {line}");
    }
}

/// The lines of a failure report: what failed comes first (the tests by name, the test that
/// never finished), then how QEMU ended and why the run counts as failed, then the context.
fn failure_report(
    q: &Qemu,
    out: &Outcome,
    why: Option<&str>,
    symbols: &[String],
    log: &Path,
) -> Vec<String> {
    let mut r: Vec<String> = out
        .console
        .lines()
        .filter(|l| {
            test_line::parse(l).is_some_and(|t| matches!(t.verdict, test_line::Verdict::Failed(_)))
        })
        .map(String::from)
        .collect();
    if let Some(test) = test_line::unfinished(&out.console) {
        r.push(format!("test running at the end: {test}"));
    }
    r.push(if out.timed_out {
        format!(
            "QEMU did not finish within {} s and was killed",
            q.timeout.as_secs()
        )
    } else {
        match out.status {
            Some(code) => format!("QEMU exited with status {code}"),
            None => "QEMU was killed by a signal".to_string(),
        }
    });
    r.extend(why.map(String::from));
    r.extend(symbols.iter().cloned());
    r.extend(out.stderr.lines().take(10).map(|l| format!("qemu: {l}")));
    let tail: Vec<&str> = out.console.lines().rev().take(40).collect();
    r.push(format!(
        "console (last {} lines; all of it in {}):",
        tail.len(),
        log.display()
    ));
    r.extend(tail.iter().rev().map(|l| format!("| {l}")));
    r
}

/// Turns every `pc=0x...` in failure reports into the function that holds it.
fn symbolize_reports(elf: &Path, console: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in console
        .lines()
        .filter(|l| l.starts_with("fatal") || l.contains("FAILED"))
    {
        let Some(Pc(pc)) = Pc::find(line) else {
            continue;
        };
        let hex = format!("{pc:08x}");
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

/// The in-guest group whose tests bound lateness, which only holds under -icount
/// (kernel/src/selftest/harness.rs WALL_CLOCK).
const WALLCLOCK_GROUP: &str = "wallclock::";

/// The CPUs the whole suite runs on under QEMU `version`: the 68060 needs QEMU >= 9.0
/// (before, its exception frames are broken and the kernel refuses it).
fn suite_cpus(version: qemu::Version) -> &'static [&'static str] {
    if version >= M68060_QEMU {
        &["m68040", "m68030", "m68020", "m68060"]
    } else {
        &["m68040", "m68030", "m68020"]
    }
}

/// The first QEMU whose 68060 the kernel runs on.
const M68060_QEMU: qemu::Version = qemu::Version::new(9, 0, 0);

fn cmd_test(args: &[String]) -> Result<bool> {
    let o = parse_options(args, true)?;
    if o.qemu.append != "test=all" || !o.qemu.disks.is_empty() || !o.passthrough.is_empty() {
        return fail(
            "test takes FILTER, --cpu, --mem, --timeout and --singlestep only".to_string(),
        );
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
    // ... after the machine layer's code, as linked, is checked against the manual.
    eprintln!("xtask: machine code checks (objdump)");
    match machine_code::check(&elf) {
        Ok(()) => passed += 1,
        Err(e) => {
            eprintln!("xtask: {e}");
            failed.push("machine code checks".into());
        }
    }
    let selection = o
        .filter
        .clone()
        .map_or("test=all".to_string(), |f| format!("test={f}"));
    let version = qemu::binary()?.version;
    let cpus: Vec<String> = if o.cpu_given {
        vec![o.qemu.cpu.clone()]
    } else {
        suite_cpus(version).iter().map(|c| c.to_string()).collect()
    };
    // The interrupt groups and the cache-model pass on the two CPUs with data caches.
    let cached_cpus: Vec<String> = cpus
        .iter()
        .filter(|c| ["m68040", "m68030"].contains(&c.as_str()))
        .cloned()
        .collect();
    // (cpu, selection, one instruction per translated block, -icount)
    let mut runs: Vec<(String, String, bool, bool)> = cpus
        .iter()
        .map(|c| {
            // wallclock:: tests hold only in guest time (below).
            let icount = selection.contains(WALLCLOCK_GROUP);
            (c.clone(), selection.clone(), o.qemu.singlestep, icount)
        })
        .collect();
    if o.filter.is_none() && !o.qemu.singlestep {
        // Interrupt-sensitive groups again with one instruction per translated block, where
        // an interrupt can land between any two instructions (normal TCG hides such races).
        runs.extend(cached_cpus.iter().map(|c| {
            (
                c.clone(),
                "test=irq::,time::,tty::".to_string(),
                true,
                false,
            )
        }));
        // The disk groups again with DMA memory behind the 68030 stale-cache model: any
        // missing sync shows up as stale data (and the auditor still watches).
        runs.extend(cached_cpus.iter().map(|c| {
            (
                c.clone(),
                "test=virtio::,blk:: dma_model=030".to_string(),
                false,
                false,
            )
        }));
        // Upper bounds on lateness hold only in guest time: under -icount the RTC counts
        // guest instructions, so a stalled host cannot make a timer look late.
        runs.extend(cached_cpus.iter().map(|c| {
            let sel = format!("test={}", WALLCLOCK_GROUP);
            (c.clone(), sel, false, true)
        }));
    }
    for (cpu, selection, singlestep, icount) in &runs {
        // Fresh scratch disks per run: the guest tests overwrite them.
        let scratch = ScratchDisks::create()?;
        let label = format!(
            "guest {selection} {cpu}{}{}",
            if *singlestep { " one-insn-per-tb" } else { "" },
            if *icount { " icount" } else { "" }
        );
        let mut q = Qemu {
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
        if *icount {
            q.extra
                .extend(["-icount", "shift=0", "-rtc", "clock=vm"].map(String::from));
        }
        eprintln!("\nxtask: {label}: {}", q.command_line(&elf)?);
        let out = q.run(&elf, true)?;
        let summary = Summary::last(&out.console);
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
        // ... and so must the live matrix (the real driver against QEMU's device).
        let verdict = verdict.or_else(|| {
            if selection != "test=all" {
                return None;
            }
            let doc = std::fs::read_to_string(paths.root.join("docs/dma-sync.md"))
                .map_err(|e| format!("docs/dma-sync.md: {e}"));
            doc.and_then(|d| seed_live::documented(&d))
                .and_then(|d| seed_live::compare(&d, &seed_live::printed(&out.console)))
                .err()
                .map(|e| format!("the live seed matrix differs from docs/dma-sync.md:\n{e}"))
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

    // 3. whole-boot checks: deliberate failures fail loudly and correctly; RAM sizes, CPU
    // models, limits (unfiltered runs only)
    if o.filter.is_none() {
        eprintln!("\nxtask: whole-boot checks (deliberate failures must exit 1 with their report)");
        for check in checks::CHECKS.iter().filter(|c| c.applies_to(version)) {
            match checks::run(check, &elf)? {
                None => {
                    passed += 1;
                    eprintln!("xtask: check {} ... ok", check.name);
                }
                Some((q, out, why)) => {
                    let label = format!("check {}", check.name);
                    explain_failure(&label, &elf, &q, &out, Some(&why));
                    failed.push(label);
                }
            }
        }
    }

    // 4. a signal to the xtask alone stops QEMU and removes the scratch disks (unfiltered runs)
    if o.filter.is_none() {
        for (name, signal, group) in [
            ("SIGTERM to the xtask", libc::SIGTERM, false),
            ("SIGINT to the xtask", libc::SIGINT, false),
            ("Ctrl-C (SIGINT to xtask and QEMU)", libc::SIGINT, true),
        ] {
            let label = format!("check {name} stops QEMU, removes scratch files, exits 130");
            match checks::signal(signal, group) {
                Ok(()) => {
                    passed += 1;
                    eprintln!("xtask: {label} ... ok");
                }
                Err(why) => {
                    eprintln!("\nxtask: {label}: FAILED\n  {why}");
                    failed.push(label);
                }
            }
        }
    }

    // 5. the benchmark's quick matrix completes and every record parses (unfiltered runs)
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
            (Some(0), Ok(r)) if !r.is_empty() && !bench::has_error_line(&out.console) => None,
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
    let bin = qemu::binary()?;
    let mut qemu = qemu::spawn_owned(
        Command::new(&bin.path)
            .args(q.args(&elf, bin.version))
            .stdin(std::process::Stdio::null()),
    )
    .map_err(|e| format!("cannot start {}: {e}", bin.path.display()))?;
    // QEMU that cannot listen (port 1234 taken) exits at once: do not attach gdb to
    // whatever else holds the port.
    std::thread::sleep(Duration::from_millis(500));
    if let Some(status) = qemu.0.try_wait().map_err(|e| format!("{e}"))? {
        return fail(format!(
            "QEMU exited ({status}) before gdb could attach (is port 1234 in use?)"
        ));
    }
    eprintln!(
        "xtask: QEMU waits for gdb on localhost:1234; quitting gdb stops QEMU (Ctrl-C goes to gdb)"
    );
    let status = qemu::spawn_owned(Command::new("gdb-multiarch").arg(&elf).args([
        "-ex",
        "set architecture m68k:68040",
        "-ex",
        "target remote localhost:1234",
    ]))
    .and_then(|mut gdb| gdb.0.wait());
    qemu::clear_interrupted();
    drop(qemu);
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
                if !BOARD_CPUS.contains(&q.cpu.as_str()) {
                    return fail(format!(
                        "--cpu: unknown model '{}' (the virt board takes {})",
                        q.cpu,
                        BOARD_CPUS.join(", ")
                    ));
                }
                i += 1;
            }
            "--timeout" => {
                let v = value(i, "--timeout")?;
                let secs: u64 = v.parse().ok().filter(|&s| s > 0).ok_or(format!(
                    "--timeout: '{v}' is not a positive number of seconds"
                ))?;
                q.timeout = Duration::from_secs(secs);
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
            "xtask: bench run {run}/{runs} (aio={aio}, clock {clock}): {}",
            q.command_line(&elf)?
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
        if !cells
            .iter()
            .any(|c| previous.iter().any(|(k, _, _)| *k == c.first.key()))
        {
            return fail(format!(
                "--compare {}: none of its cells is in this run (another matrix?)",
                compare.unwrap_or_default()
            ));
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;
    use std::os::unix::ffi::OsStringExt;

    #[test]
    fn user_options_are_never_overridden() {
        assert_eq!(
            with_default("test=blk:: disks=31", "disks", "0,1,2,3"),
            "test=blk:: disks=31"
        );
        assert_eq!(
            with_default("test=blk::", "disks", "0,1,2,3"),
            "test=blk:: disks=0,1,2,3"
        );
        assert_eq!(
            with_default("dma_audit=off", "dma_audit", "on"),
            "dma_audit=off"
        );
        assert_eq!(with_default("", "dma_audit", "on"), "dma_audit=on");
        // A key that merely ends like another is not that key.
        assert_eq!(with_default("xdisks=1", "disks", "0"), "xdisks=1 disks=0");
    }

    #[test]
    fn non_utf8_arguments_are_an_error_not_a_panic() {
        let args = vec![
            OsString::from("run"),
            OsString::from("--append"),
            OsString::from_vec(vec![b't', b'=', 0xff]),
        ];
        let e = utf8_args(args).unwrap_err();
        assert!(e.contains("argument 3 is not valid UTF-8"), "{e}");
        assert_eq!(
            utf8_args(vec![OsString::from("test"), OsString::new()]).unwrap(),
            vec!["test".to_string(), String::new()]
        );
    }

    #[test]
    fn qemu_option_is_taken_before_the_passthrough_only() {
        let mut a: Vec<String> = ["run", "--qemu", "/q", "--cpu", "m68030"]
            .map(String::from)
            .to_vec();
        assert_eq!(take_qemu_option(&mut a).unwrap(), Some("/q".into()));
        assert_eq!(a, ["run", "--cpu", "m68030"]);
        let mut b: Vec<String> = ["qemu", "--", "--qemu", "x"].map(String::from).to_vec();
        assert_eq!(take_qemu_option(&mut b).unwrap(), None);
        assert_eq!(b.len(), 4);
        let mut c: Vec<String> = ["run", "--qemu"].map(String::from).to_vec();
        assert!(take_qemu_option(&mut c).is_err());
        let mut d: Vec<String> = ["run", "--qemu", ""].map(String::from).to_vec();
        assert!(take_qemu_option(&mut d).is_err());
        let mut e: Vec<String> = ["run", "--qemu", "a", "--qemu", "b"]
            .map(String::from)
            .to_vec();
        assert!(take_qemu_option(&mut e).is_err());
    }

    #[test]
    fn empty_and_odd_option_values_are_errors() {
        for args in [
            vec!["--cpu"],
            vec!["--cpu", ""],
            vec!["--cpu", "m68k"],
            vec!["--timeout", "soon"],
            vec!["--disk", ""],
            vec!["--bogus"],
        ] {
            let args: Vec<String> = args.into_iter().map(String::from).collect();
            assert!(parse_options(&args, false).is_err(), "{args:?}");
        }
        for args in [
            vec!["--mem", "0"],
            vec!["--mem", ""],
            vec!["--timeout", "0"],
            vec!["--append", "a=1", "--append", "b=2"],
            vec!["--cpu", "m68030", "--cpu", "m68040"],
            vec!["--mem", "32M", "--mem", "64M"],
        ] {
            let args: Vec<String> = args.into_iter().map(String::from).collect();
            assert!(parse_options(&args, false).is_err(), "{args:?}");
        }
        for filter in ["boot:: log=debug", "a=b", ""] {
            assert!(
                parse_options(&[filter.to_string()], true).is_err(),
                "{filter:?}"
            );
        }
        let ss: Vec<String> = ["--singlestep"].map(String::from).to_vec();
        assert_eq!(
            parse_options(&ss, false).unwrap().qemu.timeout,
            SINGLESTEP_TIMEOUT
        );
        let ss: Vec<String> = ["--timeout", "7", "--singlestep"]
            .map(String::from)
            .to_vec();
        assert_eq!(
            parse_options(&ss, false).unwrap().qemu.timeout,
            Duration::from_secs(7)
        );
        let ok: Vec<String> = ["--cpu", "cfv4e"].map(String::from).to_vec();
        assert_eq!(parse_options(&ok, false).unwrap().qemu.cpu, "cfv4e");
    }

    #[test]
    fn failure_reports_name_the_failed_tests_first() {
        let mut console = String::from("banner\ntest a::one ... ok\ntest a::two ... FAILED: why\n");
        for i in 0..60 {
            console.push_str(&format!("bench disk=0 line {i}\n"));
        }
        console.push_str("1 passed, 1 failed\n");
        let out = Outcome {
            status: Some(1),
            timed_out: false,
            console,
            stderr: "qemu-system-m68k: warning: x\n".into(),
        };
        let r = failure_report(&Qemu::default(), &out, None, &[], Path::new("l"));
        assert_eq!(r[0], "test a::two ... FAILED: why");
        assert_eq!(r[1], "QEMU exited with status 1");
        assert!(r.contains(&"qemu: qemu-system-m68k: warning: x".to_string()));
        assert!(
            !r.iter().any(|l| l.contains("a::one")),
            "passed tests stay out"
        );
    }

    #[test]
    fn the_060_suite_needs_qemu_9() {
        assert!(!suite_cpus(qemu::Version::new(7, 2, 22)).contains(&"m68060"));
        assert!(suite_cpus(qemu::Version::new(10, 0, 2)).contains(&"m68060"));
        assert!(suite_cpus(qemu::Version::new(7, 2, 22)).contains(&"m68020"));
    }
}
