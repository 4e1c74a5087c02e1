//! `cargo xtask`: builds the m68k virt kernel, boots it under QEMU, and runs its tests.
//!
//! Everything strange about the compilation route (wasm, wasm2c, the memory rewrite, GCC and
//! ld for the m68k) is kept here and in boot/; the kernel and drivers are ordinary Rust.

mod bench;
mod checks;
mod cli;
mod deps;
#[cfg(test)]
mod layers;
mod machine_code;
mod mutants;
mod pipeline;
mod plot;
mod profile;
mod qemu;
mod rewrite;
mod scratch;
mod seed_live;
mod verify;

use bench::CellKey as _;
use clap::Parser as _;
use cli::{
    BenchArgs, Boot, Cli, Command as Cmd, Cpu, MutantsArgs, ProfileArgs, TestArgs, VerifyArgs,
};
use console_proto::{report::Pc, test_line, Summary};
use deps::Need;
use pipeline::Paths;
use qemu::{Outcome, Qemu};
use scratch::ScratchDisks;
use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

pub use anyhow::{anyhow, Context, Result};

/// An error with this message (for the many checks that refuse with a sentence).
pub fn fail<T>(msg: impl Into<String>) -> Result<T> {
    Err(anyhow!(msg.into()))
}

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

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version print to stdout and exit 0; a bad option prints what is
            // wrong with it and the usage to stderr and exits 2.
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    // What clap cannot see option by option is a usage error all the same: exit 2.
    if let Some(why) = usage_error(&cli.command) {
        use clap::CommandFactory as _;
        let _ = Cli::command()
            .error(clap::error::ErrorKind::ValueValidation, why)
            .print();
        return ExitCode::from(2);
    }
    let result = qemu::catch_signals().and_then(|()| {
        if let Some(path) = qemu::requested(cli.qemu.clone())? {
            qemu::select(path)?;
        }
        let outcome = dispatch(cli.command);
        // A signal wins over whatever the interrupted step made of it (a build killed by
        // the terminal's SIGINT fails; QEMU may exit 0 on it): never a false success.
        qemu::check_interrupted()?;
        outcome
    });
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) if e.chain().any(|c| c.is::<qemu::Interrupted>()) => {
            eprintln!("\nxtask: {}", qemu::INTERRUPTED_MSG);
            ExitCode::from(130)
        }
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(command: Cmd) -> Result<bool> {
    match command {
        Cmd::Build => build().map(|_| true),
        Cmd::Run(boot) => cmd_run(boot, Vec::new(), false),
        Cmd::Qemu { boot, extra } => cmd_run(boot, extra, true),
        Cmd::Test(args) => cmd_test(args),
        Cmd::Gdb(boot) => cmd_gdb(boot),
        Cmd::Bench(args) => cmd_bench(args),
        Cmd::Mutants(args) => cmd_mutants(args),
        Cmd::Profile(args) => cmd_profile(args).map(|()| true),
        Cmd::Verify(args) => cmd_verify(args),
    }
}

/// The QEMU run `run`, `qemu` and `gdb` start from: the user's options, test=all by default.
fn boot_qemu(boot: &Boot) -> Qemu {
    Qemu {
        cpu: boot.machine.cpu.unwrap_or(Cpu::M68040).name().to_string(),
        mem: boot.machine.mem.clone(),
        append: boot.append.clone().unwrap_or_else(|| "test=all".into()),
        disks: boot.disk.clone(),
        timeout: boot.machine.timeout(),
        singlestep: boot.machine.singlestep,
        ..Qemu::default()
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

/// The first item of `items` that an earlier one equals.
fn repeated<T: PartialEq>(items: &[T]) -> Option<&T> {
    items
        .iter()
        .enumerate()
        .find_map(|(i, x)| items[..i].contains(x).then_some(x))
}

/// The virt board's virtio-mmio slots (docs/machine.md: 128 transports at 0xff010000).
const VIRTIO_SLOTS: usize = 128;

/// More `--disk` images than the board has virtio slots (QEMU would refuse the 129th
/// `bus=virtio-mmio-bus.128` only after its own noise).
fn disk_count_error(n: usize) -> Option<String> {
    (n > VIRTIO_SLOTS).then(|| {
        format!(
            "{n} --disk images given; the virt board has {VIRTIO_SLOTS} virtio-mmio slots (0..{}), one disk each",
            VIRTIO_SLOTS - 1
        )
    })
}

/// A usage error clap's per-option checks cannot see, found before anything is built or run.
fn usage_error(command: &Cmd) -> Option<String> {
    match command {
        Cmd::Run(b) | Cmd::Qemu { boot: b, .. } | Cmd::Gdb(b) => disk_count_error(b.disk.len()),
        Cmd::Verify(v) => disk_count_error(v.disk.len()).or_else(|| {
            repeated(&v.pass)
                .map(|p| format!("--pass names {p} twice: each pass runs once (list it once)"))
        }),
        _ => None,
    }
}

fn cmd_run(boot: Boot, extra: Vec<String>, passthrough: bool) -> Result<bool> {
    let append_given = boot.append.is_some();
    let mut q = boot_qemu(&boot);
    q.extra = extra;
    // Before the build: it depends on the options alone. QEMU takes the last `-append`, so
    // one passed through (`cargo xtask qemu -- -append ...`) is the kernel's command line.
    if let Some((slot, typed)) =
        disks_option_names_user_disk(kernel_append(&q.append, &q.extra), boot.disk.len())
    {
        let d = &boot.disk[slot as usize];
        return fail(format!(
            "{typed} names virtio slot {slot}, which holds your --disk image {}: `disks=` marks scratch disks the tests may write over{}; leave it out with --disk (no test writes to your disks then)",
            d.file.display(),
            if d.read_only { " (this one is read-only: they would fail on it)" } else { "" }
        ));
    }
    // The images too, before minutes of building: a missing file is the user's typo.
    check_run_disks(&boot.disk)?;
    deps::ensure(&[Need::Build, Need::Run])?;
    let elf = build()?;
    // Without --disk, attach scratch disks (and say so with disks=): the virtio tests may
    // overwrite those, never a disk the user named.
    let _scratch = if q.disks.is_empty() {
        let s = ScratchDisks::create()?;
        q.disks = s.disks.clone();
        q.append = with_default(&q.append, "disks", &s.slots());
        if !append_given && !passthrough {
            // The default run ends with the small benchmark matrix on the scratch disk.
            q.append.push_str(" bench=quick");
        }
        Some(s)
    } else {
        None
    };
    // The same auditor setting as the self tests (README: on unless the user sets it), and
    // the model QEMU was started with, which the cpu:: tests compare with the probe.
    q.append = with_default(&q.append, "dma_audit", "on");
    q.append = with_default(&q.append, "cpu", q.cpu.trim_start_matches('m'));
    let _rules = attach_injected(&mut q.disks, &boot.inject, !boot.disk.is_empty())?;
    eprintln!("xtask: {}", q.command_line(&elf)?);
    let out = q.run(&elf, true)?;
    Ok(report_run("run", &elf, &q, &out))
}

/// Puts every disk of `disks` (the user's, `user`) behind QEMU's blkdebug with the rules of
/// `inject`; the rules file lives in the returned folder, which must outlive the run.
fn attach_injected(
    disks: &mut [qemu::Disk],
    inject: &[verify::Inject],
    user: bool,
) -> Result<Option<tempfile::TempDir>> {
    if inject.is_empty() {
        return Ok(None);
    }
    if !user {
        return fail("--inject needs --disk: it injects errors into your disks, not the scratch disks (which have their own)");
    }
    let injected = verify::Injected::new(inject);
    for d in disks.iter() {
        let len = std::fs::metadata(&d.file)
            .map_err(|e| anyhow!("--disk {}: {e}", d.file.display()))?
            .len();
        injected.check_capacity(&d.file, len.div_ceil(512))?;
    }
    let dir = tempfile::Builder::new()
        .prefix("m68k-xtask-inject-")
        .tempdir()
        .map_err(|e| anyhow!("cannot create a folder for the blkdebug rules: {e}"))?;
    let rules = dir.path().join("blkdebug.conf");
    std::fs::write(&rules, injected.blkdebug_rules())
        .map_err(|e| anyhow!("cannot write {}: {e}", rules.display()))?;
    for d in disks.iter_mut() {
        d.blkdebug = Some(rules.clone());
        // One error per request that covers an injected sector, not per merged batch.
        d.no_merging = true;
    }
    Ok(Some(dir))
}

/// The `run --disk` images, before QEMU starts: each refused as `verify` and `bench` refuse
/// it (missing, not a regular file, under one sector); one attached read-write (no `,ro`)
/// must open for writing, and an image may be named twice only read-only each time (QEMU
/// takes a write lock on a read-write image, and would refuse either only after the build,
/// in its own words). A size that is not whole sectors only warns: the run boots, QEMU
/// rounds the disk up and its last sector reads past the end of the file.
fn check_run_disks(disks: &[qemu::Disk]) -> Result<()> {
    let mut seen: std::collections::BTreeMap<std::path::PathBuf, (&Path, bool)> =
        std::collections::BTreeMap::new();
    for d in disks {
        let file = d.file.as_path();
        let len = verify::check_disk_file(file)?;
        if !d.read_only {
            if let Err(e) = std::fs::OpenOptions::new().write(true).open(file) {
                return fail(format!(
                    "--disk {}: cannot open it for writing ({e}); QEMU attaches a disk read-write unless it ends in ,ro: give --disk {},ro",
                    file.display(),
                    file.display()
                ));
            }
        }
        let real = std::fs::canonicalize(file).with_context(|| format!("{}", file.display()))?;
        if let Some((first, first_ro)) = seen.insert(real.clone(), (file, d.read_only)) {
            if !(first_ro && d.read_only) {
                return fail(format!(
                    "--disk {}: the same image as --disk {} ({}): QEMU locks an image it attaches read-write, so name it once (or read-only each time, with ,ro)",
                    file.display(),
                    first.display(),
                    real.display()
                ));
            }
        }
        if len % 512 != 0 {
            eprintln!(
                "xtask: warning: {} is {len} bytes, not a whole number of 512-byte sectors: QEMU rounds it up to {} sectors",
                file.display(),
                len.div_ceil(512)
            );
        }
    }
    Ok(())
}

/// Explains how a run ended; true when the kernel halted cleanly: QEMU exited 0, not on a
/// signal, and a run that selected tests printed its closing line.
fn report_run(label: &str, elf: &Path, q: &Qemu, out: &Outcome) -> bool {
    if let Some(why) = run_verdict(kernel_append(&q.append, &q.extra), out) {
        explain_failure(label, elf, q, out, why.as_deref());
        return false;
    }
    eprintln!("xtask: {label}: kernel halted, QEMU exited 0");
    true
}

/// Why a run with kernel options `append` did not end well (the inner None: QEMU's exit
/// status says it), or None when it did.
fn run_verdict(append: &str, out: &Outcome) -> Option<Option<String>> {
    if out.status != Some(0) {
        return Some(None);
    }
    if let Some(line) = out.stopped_by_signal() {
        return Some(Some(format!(
            "QEMU was stopped by a signal, not by the kernel ({line})"
        )));
    }
    // The kernel runs every test unless told `test=none` (the last `test=` counts).
    let tests = append
        .split_ascii_whitespace()
        .rev()
        .find_map(|t| t.strip_prefix("test="))
        .is_none_or(|v| v != "none");
    if tests && Summary::last(&out.console).is_none() {
        return Some(Some("no closing 'N passed, N failed' line".to_string()));
    }
    None
}

/// The kernel command line QEMU gets: the last `-append` among the passed-through `extra`
/// arguments (QEMU takes the last one), else the xtask's own `append`.
fn kernel_append<'a>(append: &'a str, extra: &'a [String]) -> &'a str {
    extra
        .windows(2)
        .rev()
        .find(|w| w[0] == "-append" || w[0] == "--append")
        .map_or(append, |w| w[1].as_str())
}

/// A `disks=` in the kernel options that names a slot holding one of the `user` disk images
/// given with `--disk` (slots 0 up), the tests would write over it: the slot, and the option
/// as typed.
fn disks_option_names_user_disk(append: &str, user: usize) -> Option<(u32, &str)> {
    append.split_ascii_whitespace().find_map(|t| {
        let slot = t
            .strip_prefix("disks=")?
            .split(',')
            .filter_map(|n| n.trim().parse::<u32>().ok())
            .find(|&slot| (slot as usize) < user)?;
        Some((slot, t))
    })
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
    // The kernel's own reason to stop (`fatal: ...`: a refused command line, a trap outside
    // a test), then the failed tests: a long console tail would otherwise bury them.
    let mut r: Vec<String> = out
        .console
        .lines()
        .filter(|l| l.starts_with("fatal: "))
        .chain(out.console.lines().filter(|l| {
            test_line::parse(l).is_some_and(|t| matches!(t.verdict, test_line::Verdict::Failed(_)))
        }))
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

/// Turns every `pc=0x...` in failure reports into the function that holds it, read from
/// kernel.elf's symbol table and DWARF in-process (addr2line), Rust names demangled.
fn symbolize_reports(elf: &Path, console: &str) -> Vec<String> {
    // A wasm trap's pc is the return address of the machine layer's trap call, which may be
    // the last instruction of the function that trapped: the byte before it is in that call.
    let pcs: Vec<(u32, u32)> = console
        .lines()
        .filter(|l| l.starts_with("fatal") || l.contains("FAILED"))
        .filter_map(|l| {
            Pc::find(l).map(|Pc(pc)| {
                (
                    pc,
                    if l.contains("wasm trap") {
                        pc.saturating_sub(1)
                    } else {
                        pc
                    },
                )
            })
        })
        .collect();
    if pcs.is_empty() {
        return Vec::new();
    }
    let loader = match addr2line::Loader::new(elf) {
        Ok(l) => l,
        Err(e) => return vec![format!("(cannot read symbols of {}: {e})", elf.display())],
    };
    pcs.into_iter()
        .map(|(pc, at)| {
            let func = loader
                .find_symbol(u64::from(at))
                .map_or_else(|| "?".to_string(), demangle);
            let place = match loader.find_location(u64::from(at)) {
                Ok(Some(l)) => format!(
                    "{}:{}",
                    l.file.unwrap_or("?"),
                    l.line.map_or("?".to_string(), |n| n.to_string())
                ),
                _ => "?:?".to_string(),
            };
            format!("pc 0x{pc:08x} is in {func} ({place})")
        })
        .collect()
}

/// A kernel function's name: wasm2c prefixes `w2c_` and escapes what C does not allow,
/// Rust's mangling inside stays readable to rustc-demangle.
fn demangle(symbol: &str) -> String {
    let s = symbol.trim_start_matches("w2c_");
    format!("{:#}", rustc_demangle::demangle(s))
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

fn cmd_test(o: TestArgs) -> Result<bool> {
    let base = Qemu {
        cpu: o.machine.cpu.unwrap_or(Cpu::M68040).name().to_string(),
        mem: o.machine.mem.clone(),
        timeout: o.machine.timeout(),
        singlestep: o.machine.singlestep,
        ..Qemu::default()
    };
    deps::ensure(&[Need::Build, Need::Run])?;
    let paths = Paths::new();
    let mut passed = 0u32;
    let mut failed = Vec::<String>::new();
    if o.verify_checks_only {
        let elf = build()?;
        record_checks(verify_checks(&elf)?, &mut passed, &mut failed);
        for f in &failed {
            eprintln!("xtask: FAILED: {f}");
        }
        println!("xtask: {} passed, {} failed", passed, failed.len());
        return Ok(failed.is_empty());
    }

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
    // Every sync call site's removal must fail the host tests (`cargo xtask mutants` has the
    // table, and the guest half).
    if o.filter.is_none() {
        eprintln!("xtask: host tests with each sync call site left out (mutants)");
        for (site, _) in mutants::sites() {
            match mutants::host_run(&paths.root, Some(site))? {
                mutants::HostVerdict::Caught { .. } => passed += 1,
                v => {
                    eprintln!("xtask: mutant {site}: {v:?}");
                    failed.push(format!(
                        "mutant {site} not caught by the host tests ({v:?})"
                    ));
                }
            }
        }
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
    let cpus: Vec<String> = if o.machine.cpu.is_some() {
        vec![base.cpu.clone()]
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
            (c.clone(), selection.clone(), base.singlestep, icount)
        })
        .collect();
    if o.filter.is_none() && !base.singlestep {
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
        // The disk groups again with DMA memory behind each stale-cache model: any missing
        // sync shows up as stale data (and the auditor still watches). The 68030's
        // write-through cache cannot show a missing PREWRITE, the 68040's copyback one can.
        for model in ["030", "040"] {
            runs.extend(cached_cpus.iter().map(|c| {
                (
                    c.clone(),
                    format!("test=virtio::,blk:: dma_model={model}"),
                    false,
                    false,
                )
            }));
        }
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
            ..base.clone()
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
            (_, Err(e)) => Some(format!("{e:#}")),
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

    // 6. the profiler: plugin counts against QEMU's own instruction count; 6b. the
    // data-cache instructions the platform really runs (QEMU runs them as no-ops; the plugin
    // still counts each): a probe of known syncs on a 68040, counted per kind at boot/cpu.S's
    // table between the probe's markers (unfiltered runs).
    if o.filter.is_none() {
        let profile = check_profile(&elf)?;
        let cache = check_cache_instructions(&elf)?;
        record_checks(
            vec![
                (format!("profile {PROFILE_CHECK_CELL} -icount"), profile),
                (
                    "cache instructions of dma::cache_instructions_probe (m68040)".to_string(),
                    cache,
                ),
            ],
            &mut passed,
            &mut failed,
        );
    }

    // 7. verify and bench on a user's disk (issue #12): checksums against python's zlib,
    // a one-byte mismatch, injected errors, the write round trip, nothing written unasked.
    if o.filter.is_none() {
        let started = Instant::now();
        record_checks(verify_checks(&elf)?, &mut passed, &mut failed);
        eprintln!(
            "xtask: verify checks took {:.0} s",
            started.elapsed().as_secs_f64()
        );
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

fn cmd_gdb(boot: Boot) -> Result<bool> {
    deps::ensure(&[Need::Build, Need::Run, Need::Gdb])?;
    let elf = build()?;
    let mut q = boot_qemu(&boot);
    q.extra.extend(["-s".to_string(), "-S".to_string()]);
    let bin = qemu::binary()?;
    let mut qemu = qemu::spawn_owned(
        Command::new(&bin.path)
            .args(q.args(&elf, bin.version))
            .stdin(std::process::Stdio::null()),
    )
    .map_err(|e| anyhow!("cannot start {}: {e}", bin.path.display()))?;
    // QEMU that cannot listen (port 1234 taken) exits at once: do not attach gdb to
    // whatever else holds the port.
    std::thread::sleep(Duration::from_millis(500));
    if let Some(status) = qemu.0.try_wait().map_err(|e| anyhow!("{e}"))? {
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
        .map_err(|e| anyhow!("cannot run gdb-multiarch: {e}"))
}

/// `cargo xtask mutants`: the table of sync call sites and what caught each one's removal.
fn cmd_mutants(o: MutantsArgs) -> Result<bool> {
    use mutants::HostVerdict;
    let paths = Paths::new();
    let sites: Vec<(&str, &str)> = mutants::sites()
        .filter(|(n, _)| o.site.as_deref().is_none_or(|s| s == *n))
        .collect();
    eprintln!("xtask: mutants: host tests with every sync in place");
    let base = mutants::host_run(&paths.root, None)?;
    if base != HostVerdict::Survived {
        return fail(format!(
            "the host tests do not pass with every sync in place ({base:?}): fix that first"
        ));
    }
    let elf = if o.host_only {
        None
    } else {
        deps::ensure(&[Need::Build, Need::Run])?;
        Some(build()?)
    };
    // One guest run: the disk groups with the auditor and the 68040 copyback model on.
    let guest = |site: Option<&str>| -> Result<mutants::GuestVerdict> {
        let elf = elf.as_ref().expect("built unless --host-only");
        let scratch = ScratchDisks::create()?;
        let q = Qemu {
            append: format!(
                "test=virtio::,blk:: dma_model=040 dma_audit=on cpu=68040 dma_mutant={} {}",
                site.unwrap_or("none"),
                scratch.option()
            ),
            disks: scratch.disks.clone(),
            ..Qemu::default()
        };
        let out = q.run(elf, false)?;
        Ok(mutants::guest_verdict(&out.console))
    };
    if elf.is_some() {
        eprintln!("xtask: mutants: guest run with every sync in place");
        let b = guest(None)?;
        if b.caught() {
            return fail(format!(
                "the guest run fails with every sync in place ({b:?}): fix that first"
            ));
        }
    }
    let mut table = comfy_table::Table::new();
    table.load_style(comfy_table::presets::ASCII_MARKDOWN);
    table.set_header([
        "site",
        "what it syncs",
        "host tests",
        "guest (040 model, auditor)",
    ]);
    let mut survivors = Vec::new();
    for (i, (site, what)) in sites.iter().enumerate() {
        eprintln!("xtask: mutants: {}/{} {site}", i + 1, sites.len());
        let host = mutants::host_run(&paths.root, Some(site))?;
        let host_text = match &host {
            HostVerdict::Caught { failed, first } => {
                format!("{failed} failed ({})", first.join(", "))
            }
            HostVerdict::Survived => "SURVIVED".to_string(),
            HostVerdict::Hung => "HUNG (a test without a bound)".to_string(),
        };
        let (guest_caught, guest_text) = match elf {
            Some(_) => {
                let g = guest(Some(site))?;
                let text = match &g.first_failure {
                    _ if !g.caught() => "SURVIVED".to_string(),
                    first => format!(
                        "{} failed{}, {} audit findings",
                        g.failed,
                        first
                            .as_ref()
                            .map_or(String::new(), |f| format!(" (first {f})")),
                        g.audit_findings
                    ),
                };
                (g.caught(), text)
            }
            None => (false, "not run (--host-only)".to_string()),
        };
        // A hung host run is a test without a bound: a problem whatever else caught it.
        let host_caught = matches!(host, HostVerdict::Caught { .. });
        if host == HostVerdict::Hung || !(host_caught || guest_caught) {
            survivors.push(*site);
        }
        table.add_row([site.to_string(), what.to_string(), host_text, guest_text]);
    }
    println!("{table}");
    if survivors.is_empty() {
        eprintln!("xtask: mutants: every sync call site's removal was caught");
        Ok(true)
    } else {
        eprintln!(
            "xtask: mutants: not caught (or a test hung): {}",
            survivors.join(", ")
        );
        Ok(false)
    }
}

fn cmd_bench(o: BenchArgs) -> Result<bool> {
    let mut q = Qemu {
        cpu: o.cpu.name().to_string(),
        mem: "256M".into(),
        timeout: Duration::from_secs(o.timeout),
        ..Qemu::default()
    };
    let aio = o.aio.name();
    let runs = o.runs;
    // Read the comparison first: a bad file should fail before minutes of benchmarking.
    let previous = match &o.compare {
        Some(f) => Some(
            std::fs::read_to_string(f)
                .map_err(anyhow::Error::from)
                .and_then(|text| bench::read_json(&text))
                .and_then(|prev| {
                    // Instructions and nanoseconds do not compare: refuse before running.
                    bench::regressions(&prev, &[], o.icount).map_err(|e| anyhow!(e))?;
                    Ok(prev)
                })
                .with_context(|| format!("--compare {}", f.display()))?,
        ),
        None => None,
    };
    // The user's disk: checked before the build and anything that runs, attached read-only unless --write.
    let user_disk = match &o.disk {
        Some(d) => {
            if d.read_only && o.write {
                return fail(format!(
                    "--write with a read-only disk ({},ro): a ,ro disk is never written",
                    d.file.display()
                ));
            }
            verify::check_image(&d.file)?;
            let mut d = d.clone();
            d.read_only |= !o.write;
            // With --write: an image that cannot be opened for writing, refused now.
            check_run_disks(std::slice::from_ref(&d))?;
            let mut v = vec![d];
            let rules = attach_injected(&mut v, &o.inject, true)?;
            Some((v.remove(0), rules))
        }
        None => None,
    };
    deps::ensure(&[Need::Build, Need::Run, Need::Plot])?;
    let elf = build()?;
    let out_dir = Paths::new().root.join("target/bench");
    std::fs::create_dir_all(&out_dir)
        .with_context(|| format!("cannot create {}", out_dir.display()))?;
    if o.icount {
        q.extra
            .extend(["-icount", "shift=0", "-rtc", "clock=vm"].map(String::from));
    }
    let clock = if o.icount {
        "icount (-icount shift=0 -rtc clock=vm: 1 guest ns = 1 instruction)"
    } else {
        "rtc (host time)"
    };
    let matrix = if o.quick { "quick" } else { "full" };
    // Cells done over all runs, from the guest's `bench progress n/N` lines; the total is
    // known once the first run says N.
    let bar = indicatif::ProgressBar::new(0).with_style(
        indicatif::ProgressStyle::with_template(
            "{prefix} [{elapsed_precise}] [{wide_bar}] {pos}/{len} cells, ETA {eta}",
        )
        .context("progress bar template")?
        .progress_chars("=> "),
    );
    let mut all = Vec::new();
    let mut skipped: Vec<String> = Vec::new();
    for run in 1..=runs {
        let scratch = ScratchDisks::create()?;
        q.disks = match &user_disk {
            Some((d, _)) => vec![d.clone()],
            None => scratch.disks.clone(),
        };
        for d in &mut q.disks {
            d.aio = Some(aio.to_string());
        }
        q.append = match &user_disk {
            Some(_) => format!(
                "test=none bench={matrix} bench_disk=0{}",
                if o.write { ",write" } else { "" }
            ),
            None => format!("test=none bench={matrix} {}", scratch.option()),
        };
        bar.suspend(|| {
            eprintln!(
                "xtask: bench run {run}/{runs} (aio={aio}, clock {clock}): {}",
                q.command_line(&elf).unwrap_or_default()
            );
        });
        bar.set_prefix(format!("run {run}/{runs}"));
        let watch = {
            let bar = bar.clone();
            let done_before = u64::from(run - 1);
            Box::new(move |l: &str| {
                use console_proto::bench::Line;
                match console_proto::bench::parse_line(l) {
                    Ok(Some(Line::Progress { n, of })) => {
                        bar.set_length(u64::from(runs) * of);
                        // `n/N` is printed as cell n starts: n-1 are done.
                        bar.set_position(done_before * of + n.saturating_sub(1));
                    }
                    Ok(Some(Line::Done { .. })) => {
                        let of = bar.length().unwrap_or(0) / u64::from(runs);
                        bar.set_position((done_before + 1) * of);
                    }
                    Ok(Some(Line::Error(_) | Line::Skip(_))) => bar.println(l),
                    _ => {}
                }
            }) as qemu::Watch
        };
        let out = q.run_watched(&elf, false, Some(watch));
        let out = match out {
            Ok(out) => out,
            Err(e) => {
                bar.abandon();
                return Err(e);
            }
        };
        let log = out_dir.join(format!("run{run}.log"));
        std::fs::write(&log, &out.console)
            .with_context(|| format!("cannot write {}", log.display()))?;
        // With --inject, cells whose requests hit an injected sector end in an I/O error
        // (the error path the user asked to see): reported, and the run still counts when
        // they are its only failures.
        let injected_only =
            !o.inject.is_empty() && out.status == Some(1) && bench::only_io_errors(&out.console);
        if injected_only {
            bar.suspend(|| {
                eprintln!("xtask: bench run {run}: cells that hit an injected error (the rest are measured):");
                for l in out.console.lines().filter(|l| l.starts_with("bench error: ")) {
                    eprintln!("  {l}");
                }
            });
        } else if out.status != Some(0) {
            bar.abandon();
            explain_failure("bench", &elf, &q, &out, Some("the benchmark run failed"));
            return Ok(false);
        } else if let Some(line) = out.stopped_by_signal() {
            bar.abandon();
            let why = format!("QEMU was stopped by a signal before the benchmark ended ({line})");
            explain_failure("bench", &elf, &q, &out, Some(&why));
            return Ok(false);
        }
        let records = bench::parse_log(&out.console)?;
        if records.is_empty() {
            bar.abandon();
            return fail("the benchmark printed no records");
        }
        all.push(records);
        if run == 1 {
            skipped = out
                .console
                .lines()
                .filter(|l| l.starts_with("bench skip: "))
                .map(String::from)
                .collect();
        }
    }
    bar.finish();
    let cells = bench::summarize(&all);
    let bin = qemu::binary()?;
    let meta = bench::Meta {
        date: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        qemu: bin.version.to_string(),
        qemu_path: bin.path.display().to_string(),
        cpu: q.cpu.clone(),
        aio: aio.to_string(),
        clock: clock.to_string(),
        matrix: matrix.to_string(),
        runs,
        disk: match &user_disk {
            Some((d, _)) => format!(
                "{}{}",
                d.file.display(),
                if d.read_only { ",ro" } else { "" }
            ),
            None => "scratch".to_string(),
        },
    };
    let table = bench::table(&cells, clock);
    println!("\ndisk: {}\n{table}", meta.disk);
    // The progress bar shows skips only on a terminal; the table leaves those cells out.
    if !skipped.is_empty() {
        println!("cells not in the table (they do not apply to this disk):");
        for l in &skipped {
            println!("  {l}");
        }
    }
    let write = |name: &str, text: String| -> Result<()> {
        let p = out_dir.join(name);
        std::fs::write(&p, text).with_context(|| format!("cannot write {}", p.display()))
    };
    write("bench.json", bench::json(&cells, &meta)?)?;
    write("bench.csv", bench::csv(&cells)?)?;
    // Which machine made it, above the table (a copied table.txt otherwise cannot say).
    write(
        "table.txt",
        format!(
            "{}: QEMU {} ({}), -cpu {}, clock {}, {} matrix, {} run(s), disk {}\n\n{table}",
            meta.date,
            meta.qemu,
            meta.qemu_path,
            meta.cpu,
            meta.clock,
            meta.matrix,
            runs,
            meta.disk
        ),
    )?;
    let rows: Vec<bench::Row> = cells.iter().map(bench::Summary::row).collect();
    let mut figures = Vec::new();
    for (i, g) in plot::groups(&rows).iter().enumerate() {
        // The first group (rand read when measured) is bench.{svg,png}.
        let stem = if i == 0 {
            "bench".to_string()
        } else {
            format!("bench-{}-{}", g.0, g.1)
        };
        plot::write(&out_dir, &stem, &rows, &meta, g)?;
        figures.push(format!("{stem}.{{svg,png}} ({} {})", g.0, g.1));
    }
    println!("xtask: results in {}:", out_dir.display());
    println!(
        "  bench.json  every cell, medians, min/max over runs (schema {})",
        bench::SCHEMA
    );
    println!("  bench.csv   the same cells as CSV");
    println!("  table.txt   the table above");
    for f in &figures {
        println!("  {f}");
    }
    println!("  run1..{runs}.log  each run's console");
    if let (Some(previous), Some(compare)) = (previous, &o.compare) {
        if !cells
            .iter()
            .any(|c| previous.iter().any(|p| p.key == c.first.key()))
        {
            return fail(format!(
                "--compare {}: none of its cells is in this run (another matrix?)",
                compare.display()
            ));
        }
        let regs = bench::regressions(&previous, &cells, o.icount)
            .map_err(|e| anyhow!("--compare {}: {e}", compare.display()))?;
        if regs.is_empty() {
            println!(
                "xtask: no regression beyond noise against {}",
                compare.display()
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

/// What a profile run found.
struct Profiled {
    /// Per function, most instructions first.
    rows: Vec<profile::Row>,
    /// Guest instructions counted (in the cell's window, or the whole boot).
    total: u64,
    /// The cell's record and window line, when a cell was profiled.
    cell: Option<profile::CellRun>,
}

/// Boots under QEMU with the profile plugin (built for this QEMU's plugin API) and attributes
/// its counts to kernel.elf's functions. For a cell: `bench_cell=` runs it alone, the plugin
/// counts between the marker functions, and both markers must have run exactly once.
fn run_profile(elf: &Path, o: &ProfileArgs) -> Result<Profiled> {
    run_profile_in(elf, o, o.cell.is_some())
}

/// As [`run_profile`], counting only between the profile markers when `windowed` (a cell's
/// always is; the markers must then run once each).
fn run_profile_in(elf: &Path, o: &ProfileArgs, windowed: bool) -> Result<Profiled> {
    let paths = Paths::new();
    let out_dir = paths.root.join("target/profile");
    let so = profile::plugin_for(&paths.root, &out_dir)?;
    let symbols = profile::read_symbols(elf)?;
    let window = match windowed {
        true => Some((
            profile::address_of(&symbols, profile::BEGIN_MARKER)?,
            profile::address_of(&symbols, profile::END_MARKER)?,
        )),
        false => None,
    };
    let scratch = ScratchDisks::create()?;
    let append = match &o.cell {
        Some(spec) => format!("test=none bench_cell={spec} {}", scratch.option()),
        None => with_default(
            o.append.as_deref().unwrap_or("test=all"),
            "disks",
            &scratch.slots(),
        ),
    };
    let dump_path = scratch.dir.path().join("profile.txt");
    let mut q = Qemu {
        cpu: o.cpu.name().to_string(),
        append,
        disks: scratch.disks.clone(),
        timeout: Duration::from_secs(o.timeout),
        ..Qemu::default()
    };
    q.extra = profile::plugin_args(&so, &dump_path, window)?;
    if o.icount {
        q.extra
            .extend(["-icount", "shift=0", "-rtc", "clock=vm"].map(String::from));
    }
    eprintln!("xtask: profile: {}", q.command_line(elf)?);
    let out = q.run(elf, false)?;
    let log = out_dir.join("console.log");
    std::fs::write(&log, &out.console)
        .with_context(|| format!("cannot write {}", log.display()))?;
    if out.status != Some(0) {
        if let Some(msg) = profile::plugin_refused(&out.stderr) {
            return fail(format!(
                "QEMU did not run the profile plugin ({}):
{msg}",
                so.display()
            ));
        }
        // A spec of the right shape naming no cell of the matrix: the kernel says which
        // cells there are; that line is the answer, not the console dump.
        if let Some(l) = out
            .console
            .lines()
            .find(|l| l.starts_with("bench: bench_cell="))
        {
            return fail(l.trim_start_matches("bench: ").to_string());
        }
        explain_failure("profile", elf, &q, &out, None);
        return fail("the profiled run failed (above)");
    }
    let text = std::fs::read_to_string(&dump_path).with_context(|| {
        format!(
            "the profile plugin wrote no {} (QEMU's messages: {:?})",
            dump_path.display(),
            out.stderr.trim()
        )
    })?;
    let dump = profile::parse_dump(&text).map_err(|e| anyhow!("the plugin's profile: {e}"))?;
    // Kept for per-block study (`--annotate` reads the same records).
    let blocks = out_dir.join("blocks.txt");
    std::fs::write(&blocks, &text).with_context(|| format!("cannot write {}", blocks.display()))?;
    if windowed && dump.window != Some((1, 1)) {
        return fail(format!(
            "the profile markers ran {:?} (begin, end) times, not once each",
            dump.window
        ));
    }
    let cell = match &o.cell {
        Some(spec) => {
            if dump.window != Some((1, 1)) {
                return fail(format!(
                    "the cell markers ran {:?} (begin, end) times, not once each: the window is not one cell",
                    dump.window
                ));
            }
            Some(profile::cell_run(&out.console, spec).map_err(|e| anyhow!("{e}"))?)
        }
        None => None,
    };
    let (rows, total) = profile::attribute(&symbols, &dump.blocks);
    Ok(Profiled { rows, total, cell })
}

fn cmd_profile(o: ProfileArgs) -> Result<()> {
    deps::ensure(&[Need::Build, Need::Run])?;
    let elf = build()?;
    let p = run_profile(&elf, &o)?;
    let bin = qemu::binary()?;
    let what = match &o.cell {
        Some(spec) => format!("cell {spec}"),
        None => "whole boot".to_string(),
    };
    let mut text = format!(
        "profile of {what}: QEMU {}, -cpu {}, {}\n\n",
        bin.version,
        o.cpu.name(),
        if o.icount {
            "-icount shift=0 -rtc clock=vm"
        } else {
            "no -icount"
        }
    );
    let requests = p.cell.as_ref().map(|c| c.record.ops);
    text.push_str(&profile::table(&p.rows, p.total, o.top as usize, requests));
    text.push('\n');
    if let Some(c) = &p.cell {
        text.push_str(&format!(
            "\n{} instructions / {} requests = {:.1} instructions per request; guest time \
             across the markers {} ns, of it the measured loop {} ns\n",
            p.total,
            c.record.ops,
            p.total as f64 / c.record.ops.max(1) as f64,
            c.window_ns,
            c.record.ns
        ));
        // The figure the benchmark's tables compare (waiting excluded); the table above
        // counts the whole window, waiting included.
        let r = &c.record;
        text.push_str(&format!(
            "own path (the benchmark's \"own ns/op\"{}): submit {} + complete {} = {} per \
             request\n",
            if o.icount {
                ", instructions under -icount"
            } else {
                ""
            },
            r.submit_ns_per_op,
            r.complete_ns_per_op,
            r.submit_ns_per_op + r.complete_ns_per_op
        ));
    }
    print!("{text}");
    let out_dir = Paths::new().root.join("target/profile");
    let file = out_dir.join("profile.txt");
    std::fs::write(&file, &text).with_context(|| format!("cannot write {}", file.display()))?;
    println!(
        "xtask: also in {}; the console in {}; per-block counts in {}",
        file.display(),
        out_dir.join("console.log").display(),
        out_dir.join("blocks.txt").display()
    );
    Ok(())
}

/// The cell `cargo xtask test` profiles: polled (so guest time is all instructions under
/// -icount) and small.
const PROFILE_CHECK_CELL: &str = "floor,rand,read,4096,1,polled,off";

/// `cargo xtask test`'s profile check: the plugin's count between the markers equals QEMU's
/// own -icount clock across them (as the guest read it), the window holds the cell's
/// measured loop, and its edges are the markers: the begin marker's entry counted once, the
/// end marker not at all.
fn check_profile(elf: &Path) -> Result<Option<String>> {
    let o = ProfileArgs {
        cell: console_proto::bench::CellSpec::parse(PROFILE_CHECK_CELL),
        append: None,
        top: 1,
        cpu: Cpu::M68040,
        icount: true,
        timeout: 300,
    };
    let p = match run_profile(elf, &o) {
        Ok(p) => p,
        Err(e) if e.chain().any(|c| c.is::<qemu::Interrupted>()) => return Err(e),
        Err(e) => return Ok(Some(format!("{e:#}"))),
    };
    let Some(cell) = &p.cell else {
        return Ok(Some("no cell record".into()));
    };
    if let Err(e) = profile::check_icount(p.total, cell.window_ns) {
        return Ok(Some(e));
    }
    if p.total < cell.record.ns {
        return Ok(Some(format!(
            "the plugin counted {} instructions, fewer than the measured loop's {} ns inside the window",
            p.total, cell.record.ns
        )));
    }
    let calls = |name: &str| p.rows.iter().find(|r| r.symbol == name).map(|r| r.calls);
    match (calls(profile::BEGIN_MARKER), calls(profile::END_MARKER)) {
        (Some(1), None) => Ok(None),
        (b, e) => Ok(Some(format!(
            "the window's edges: begin marker called {b:?} times, end marker {e:?} (expected 1 and none)"
        ))),
    }
}

/// Boots `dma::cache_instructions_probe` alone on a 68040 under the profile plugin, counting
/// only between its markers (its syncs, interrupts masked), and counts the runs of each
/// data-cache instruction's entry in boot/cpu.S (`profile::check_probe_counts`): what
/// `Platform::sync_cache` and the machine layer really execute for known syncs, which no
/// host test sees and QEMU does not model. None when the counts are the manual's, exactly.
fn check_cache_instructions(elf: &Path) -> Result<Option<String>> {
    let o = ProfileArgs {
        cell: None,
        append: Some("test=dma::cache_instructions_probe".into()),
        top: 1,
        cpu: Cpu::M68040,
        icount: false,
        timeout: 300,
    };
    if let Err(e) = run_profile_in(elf, &o, true) {
        if e.chain().any(|c| c.is::<qemu::Interrupted>()) {
            return Err(e);
        }
        return Ok(Some(format!("{e:#}")));
    }
    let blocks = Paths::new().root.join("target/profile/blocks.txt");
    let text = std::fs::read_to_string(&blocks)
        .with_context(|| format!("cannot read {}", blocks.display()))?;
    let dump = profile::parse_dump(&text).map_err(|e| anyhow!("the plugin's profile: {e}"))?;
    let symbols = profile::read_symbols(elf)?;
    let table = profile::address_of(&symbols, profile::DCOP_TABLE)?;
    Ok(profile::check_probe_counts(table, &dump.blocks))
}

/// One verify as `cargo xtask verify` and its CI checks run it.
struct VerifyPlan {
    disks: Vec<qemu::Disk>,
    write: Option<u32>,
    inject: Vec<verify::Inject>,
    /// The read passes (all six when empty).
    passes: Vec<console_proto::verify::Pass>,
    cpu: Cpu,
    timeout: Option<Duration>,
}

/// What a verify found: the comparison, or why it could not be made.
struct VerifyOutcome {
    verdict: verify::Verdict,
    /// Why the run failed before or besides the comparison (QEMU's exit, a host check).
    failure: Option<String>,
    /// Report lines from the host's own checks (the written file).
    host_checks: Vec<String>,
    console: String,
}

/// Checks the images and options (before anything is built), boots the kernel with
/// `verify=`, compares its checksums with the images, and after `--write` checks the files.
fn run_verify(plan: &VerifyPlan, elf: Option<&Path>) -> Result<VerifyOutcome> {
    use console_proto::verify::Pass;
    let injected = verify::Injected::new(&plan.inject);
    if plan.write.is_some() {
        if let Some(d) = plan.disks.iter().find(|d| d.read_only) {
            return fail(format!(
                "--write with a read-only disk ({},ro): a ,ro disk is never written; drop --write or ,ro",
                d.file.display()
            ));
        }
    } else if !injected.write.is_empty() {
        return fail("--inject write:... needs --write: without it verify never writes");
    }
    let mut sectors = Vec::new();
    for d in &plan.disks {
        let n = verify::check_image(&d.file)?;
        injected.check_capacity(&d.file, n)?;
        sectors.push(n);
    }
    if plan.write.is_some() {
        // QEMU would refuse these only after the build and boot, and the report would then
        // describe a write pass that never ran.
        let mut seen = std::collections::BTreeSet::new();
        for d in &plan.disks {
            let real =
                std::fs::canonicalize(&d.file).with_context(|| format!("{}", d.file.display()))?;
            if !seen.insert(real.clone()) {
                return fail(format!(
                    "--write: {} is given twice (as {}): one image can be written through one disk only",
                    real.display(),
                    d.file.display()
                ));
            }
            if let Err(e) = std::fs::OpenOptions::new().write(true).open(&d.file) {
                return fail(format!(
                    "--write: cannot open {} for writing: {e}",
                    d.file.display()
                ));
            }
        }
    }
    let read: Vec<Pass> = if plan.passes.is_empty() {
        Pass::READ_PASSES.to_vec()
    } else {
        plan.passes.clone()
    };
    let passes = verify::expected_passes(&read, plan.write.is_some());
    let built;
    let elf = match elf {
        Some(e) => e,
        None => {
            deps::ensure(&[Need::Build, Need::Run])?;
            built = build()?;
            &built
        }
    };
    let mut disks: Vec<qemu::Disk> = plan
        .disks
        .iter()
        .map(|d| qemu::Disk {
            // Attached read-only unless --write: QEMU itself refuses every write.
            read_only: d.read_only || plan.write.is_none(),
            ..d.clone()
        })
        .collect();
    let _rules = attach_injected(&mut disks, &plan.inject, true)?;
    let slots: Vec<String> = (0..disks.len()).map(|i| i.to_string()).collect();
    let mib: u64 = sectors.iter().map(|s| s.div_ceil(2048)).sum();
    let timeout = plan
        .timeout
        .unwrap_or(Duration::from_secs(120 + mib * passes.len() as u64));
    let q = Qemu {
        cpu: plan.cpu.name().to_string(),
        append: format!(
            "test=none verify={} verify_pass={}{} dma_audit=on cpu={}",
            slots.join(","),
            verify::pass_option(&read),
            plan.write
                .map_or(String::new(), |s| format!(" verify_write={s}")),
            plan.cpu.name().trim_start_matches('m')
        ),
        disks,
        timeout,
        ..Qemu::default()
    };
    eprintln!("xtask: {}", q.command_line(elf)?);
    // A line per pass as it ends, and the guest's progress lines for large disks.
    let watch = Box::new(|l: &str| {
        use console_proto::verify::{parse_line, Body};
        if let Ok(Some(v)) = parse_line(l) {
            match v.body {
                Body::Progress { mib, of } => eprintln!(
                    "xtask: verify disk {} pass {}: {mib}/{of} MiB",
                    v.disk, v.pass
                ),
                Body::Done { mib_s, .. } => eprintln!(
                    "xtask: verify disk {} pass {}: done, {mib_s} MiB/s",
                    v.disk, v.pass
                ),
                Body::Error(why) => {
                    eprintln!("xtask: verify disk {} pass {}: {why}", v.disk, v.pass)
                }
                _ => {}
            }
        }
    }) as qemu::Watch;
    let out = q.run_watched(elf, false, Some(watch))?;
    let log_dir = Paths::new().out.join("logs");
    let _ = std::fs::create_dir_all(&log_dir);
    let _ = std::fs::write(log_dir.join("verify.log"), &out.console);
    let mut failure = None;
    if out.status != Some(0) {
        explain_failure("verify", elf, &q, &out, None);
        failure = Some(if out.timed_out {
            format!("QEMU did not finish within {} s", q.timeout.as_secs())
        } else {
            match out.status {
                Some(code) => format!("QEMU exited with status {code}"),
                None => "QEMU was killed by a signal".to_string(),
            }
        });
    }
    let images: Vec<verify::Image> = plan
        .disks
        .iter()
        .zip(&sectors)
        .enumerate()
        .map(|(i, (d, &n))| verify::Image {
            slot: i as u32,
            file: &d.file,
            sectors: n,
        })
        .collect();
    let verdict = verify::compare(&out.console, &images, &passes, &injected)?;
    let mut host_checks = Vec::new();
    if let Some(seed) = plan.write {
        for img in &images {
            match verify::check_written(img.file, img.sectors, seed, &injected.write) {
                Ok(line) => host_checks.push(line),
                Err(e) => {
                    host_checks.push(format!("{e:#}"));
                    failure.get_or_insert_with(|| format!("{e:#}"));
                }
            }
        }
    }
    Ok(VerifyOutcome {
        verdict,
        failure,
        host_checks,
        console: out.console,
    })
}

fn cmd_verify(o: VerifyArgs) -> Result<bool> {
    let plan = VerifyPlan {
        disks: o.disk.clone(),
        write: o.write.then_some(o.seed),
        inject: o.inject.clone(),
        passes: o.pass.clone(),
        cpu: o.cpu,
        timeout: o.timeout.map(Duration::from_secs),
    };
    let out = run_verify(&plan, None)?;
    let v = &out.verdict;
    let dir = Paths::new().root.join("target/verify");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let per_mib = dir.join("per-mib.txt");
    std::fs::write(&per_mib, v.per_mib.join("\n") + "\n")
        .with_context(|| format!("cannot write {}", per_mib.display()))?;
    println!(
        "xtask: verify (every MiB of every pass in {}):",
        per_mib.display()
    );
    for l in &v.summary {
        println!("  {l}");
    }
    for l in &out.host_checks {
        println!("  host: {l}");
    }
    let ok = v.ok && out.failure.is_none();
    if let Some(f) = &out.failure {
        println!("  {f}");
    }
    let injected = !plan.inject.is_empty();
    println!(
        "xtask: verify: {}",
        match (ok, injected) {
            (true, false) => "every sector verified",
            (true, true) => {
                "every sector verified but those --inject made unreadable (the only errors seen)"
            }
            (false, _) => "FAILED",
        }
    );
    Ok(ok)
}

/// Counts each check's outcome and says it (a failure with its reason).
fn record_checks(
    results: Vec<(String, Option<String>)>,
    passed: &mut u32,
    failed: &mut Vec<String>,
) {
    for (label, why) in results {
        match why {
            None => {
                *passed += 1;
                eprintln!("xtask: check {label} ... ok");
            }
            Some(why) => {
                eprintln!("\nxtask: check {label}: FAILED\n  {why}");
                failed.push(format!("check {label}"));
            }
        }
    }
}

/// sha256sum's digest of `file` (coreutils, not this xtask's code).
fn sha256(file: &Path) -> Result<String> {
    let out = Command::new("sha256sum")
        .arg(file)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| anyhow!("cannot run sha256sum: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    match text.split_whitespace().next() {
        Some(h) if out.status.success() => Ok(h.to_string()),
        _ => fail(format!("sha256sum {} failed", file.display())),
    }
}

/// `cargo xtask test`'s checks of `cargo xtask verify` and `bench --disk` against QEMU (issue
/// #12's done-when list): each check's label and, when it failed, why.
fn verify_checks(elf: &Path) -> Result<Vec<(String, Option<String>)>> {
    use console_proto::verify::{parse_line, Body, Pass};
    let base = if Path::new("/dev/shm").is_dir() {
        std::path::PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let dir = tempfile::Builder::new()
        .prefix("m68k-xtask-verify-")
        .tempdir_in(&base)
        .map_err(|e| anyhow!("cannot create a folder in {}: {e}", base.display()))?;
    let at = |n: &str| dir.path().join(n);
    let disk = |n: &str, ro: bool| qemu::Disk {
        read_only: ro,
        ..qemu::Disk::parse(&at(n).display().to_string()).expect("a path without a comma")
    };
    let plan = |disks, write, inject: &[&str], passes: &[Pass]| VerifyPlan {
        disks,
        write,
        inject: inject
            .iter()
            .map(|s| verify::Inject::parse(s).expect("a valid spec"))
            .collect(),
        passes: passes.to_vec(),
        cpu: Cpu::M68040,
        timeout: None,
    };
    let outcome_why = |o: &VerifyOutcome| -> Option<String> {
        if let Some(f) = &o.failure {
            return Some(f.clone());
        }
        (!o.verdict.ok).then(|| o.verdict.summary.join("\n"))
    };
    let mut results = Vec::new();

    // 1. 64 MiB of random data, every pass: no mismatch, and the guest's checksums are
    // Python's zlib.crc32 over the same MiBs. Then the same guest lines against an image one
    // byte different: that MiB is named, in every pass.
    verify::fill_random(&at("r64.img"), 64 << 20, 0x5eed_1234)?;
    let o = run_verify(
        &plan(vec![disk("r64.img", true)], None, &[], &[]),
        Some(elf),
    )?;
    let why = outcome_why(&o).or_else(|| {
        let want = match verify::python_crcs(&at("r64.img")) {
            Ok(w) => w,
            Err(e) => return Some(format!("{e:#}")),
        };
        let mut per_pass: std::collections::BTreeMap<Pass, Vec<u32>> = Default::default();
        for l in o.console.lines() {
            if let Ok(Some(v)) = parse_line(l) {
                if let Body::Crc { crc32, .. } = v.body {
                    per_pass.entry(v.pass).or_default().push(crc32);
                }
            }
        }
        if per_pass.len() != 6 {
            return Some(format!(
                "{} passes printed checksums, not 6",
                per_pass.len()
            ));
        }
        per_pass
            .iter()
            .find(|(_, got)| **got != want)
            .map(|(p, _)| format!("pass {p}: the guest's checksums are not python3 zlib.crc32's"))
    });
    results.push((
        "verify 64 MiB, 6 passes, = python zlib.crc32".to_string(),
        why,
    ));
    let why = (|| -> Result<Option<String>> {
        let mut bytes = std::fs::read(at("r64.img"))?;
        bytes[(37 << 20) + 12345] ^= 0x40;
        std::fs::write(at("r64.img"), &bytes)?;
        drop(bytes);
        let img = [verify::Image {
            slot: 0,
            file: &at("r64.img"),
            sectors: 131072,
        }];
        let v = verify::compare(
            &o.console,
            &img,
            &Pass::READ_PASSES,
            &verify::Injected::default(),
        )?;
        let named: Vec<&String> = v
            .summary
            .iter()
            .filter(|l| l.contains("MISMATCH"))
            .collect();
        let every_pass = Pass::READ_PASSES.iter().all(|p| {
            named
                .iter()
                .any(|l| l.contains(&format!("pass {p}: MiB 37 ")))
        });
        Ok((v.ok || named.len() != 6 || !every_pass)
            .then(|| format!("one changed byte in MiB 37 was reported as: {named:?}")))
    })()?;
    results.push((
        "verify names a one-byte mismatch by MiB and pass".to_string(),
        why,
    ));
    std::fs::remove_file(at("r64.img"))?;

    // 2. Injected read errors at 4096 and 12345: exactly the two requests covering them fail,
    // the two sectors alone, every other sector verifies.
    verify::fill_random(&at("r8.img"), 8 << 20, 8)?;
    let passes = [Pass::READ_PASSES[0], Pass::READ_PASSES[5]];
    let o = run_verify(
        &plan(
            vec![disk("r8.img", false)],
            None,
            &["read:4096,12345"],
            &passes,
        ),
        Some(elf),
    )?;
    let why = outcome_why(&o).or_else(|| {
        let mut reqs = Vec::new();
        for l in o.console.lines() {
            if let Ok(Some(v)) = parse_line(l) {
                if let Body::IoErr {
                    sector, sectors, ..
                } = v.body
                {
                    reqs.push((v.pass, sector, sectors));
                }
            }
        }
        let want: Vec<(Pass, u64, u64)> = passes
            .iter()
            .flat_map(|&p| [(p, 4096, 128), (p, 12288, 128)])
            .collect();
        let summary = o.verdict.summary.join(" | ");
        if reqs != want {
            Some(format!("failed requests {reqs:?}, expected {want:?}"))
        } else if summary.matches("16382 of 16384 sectors verified").count() != 2 {
            Some(format!("not every other sector verified: {summary}"))
        } else {
            None
        }
    });
    results.push(("verify --inject read:4096,12345".to_string(), why));

    // 3. --write round trip (pattern written, read back in the guest, the file checked on the
    // host), beside a ,ro disk and a plain one verified read-only: neither is written.
    verify::fill_random(&at("w.img"), 4 << 20, 3)?;
    verify::fill_random(&at("ro.img"), 1 << 20, 4)?;
    let (ro_before, r8_before) = (sha256(&at("ro.img"))?, sha256(&at("r8.img"))?);
    let o = run_verify(
        &plan(
            vec![disk("w.img", false)],
            Some(4242),
            &[],
            &[Pass::READ_PASSES[4]],
        ),
        Some(elf),
    )?;
    let written = o
        .host_checks
        .iter()
        .any(|l| l.contains("all 8192 sectors hold the pattern"));
    let why = outcome_why(&o).or_else(|| (!written).then(|| format!("{:?}", o.host_checks)));
    results.push((
        "verify --write round trip, checked on the host".to_string(),
        why,
    ));
    let o = run_verify(
        &plan(
            vec![disk("ro.img", true), disk("r8.img", false)],
            None,
            &[],
            &[Pass::READ_PASSES[0]],
        ),
        Some(elf),
    )?;
    let refused = run_verify(
        &plan(vec![disk("ro.img", true)], Some(1), &[], &[]),
        Some(elf),
    );
    let why = outcome_why(&o).or_else(|| {
        let hashes = (sha256(&at("ro.img")).ok()?, sha256(&at("r8.img")).ok()?);
        if hashes != (ro_before.clone(), r8_before.clone()) {
            Some("a disk verified without --write changed (sha256)".to_string())
        } else if refused.is_ok() {
            Some("--write with a ,ro disk was not refused".to_string())
        } else {
            None
        }
    });
    results.push((
        "verify never writes without --write, nor a ,ro disk".to_string(),
        why,
    ));

    // 4. bench --disk: the quick matrix's read cells on a 32 KiB image, read-only; the 64 KiB
    // cells do not fit and are skipped with a message.
    verify::fill_random(&at("b.img"), 32 << 10, 5)?;
    let before = sha256(&at("b.img"))?;
    let q = Qemu {
        append: "test=none bench=quick bench_disk=0 dma_audit=on cpu=68040".into(),
        disks: vec![disk("b.img", true)],
        ..Qemu::default()
    };
    let out = q.run(elf, false)?;
    let why = match (out.status, bench::parse_log(&out.console)) {
        (_, Err(e)) => Some(format!("{e:#}")),
        (Some(0), Ok(r)) => {
            let skips = out
                .console
                .lines()
                .filter(|l| l.starts_with("bench skip: "))
                .count();
            if r.is_empty()
                || r.iter()
                    .any(|c| c.bs > 32 << 10 || c.op == console_proto::bench::Op::Write)
            {
                Some(format!("{} records, some writing or too large", r.len()))
            } else if skips == 0 || bench::has_error_line(&out.console) {
                Some(format!(
                    "{skips} skip lines; error lines: {}",
                    bench::has_error_line(&out.console)
                ))
            } else if sha256(&at("b.img")).ok() != Some(before) {
                Some("the image changed".to_string())
            } else {
                None
            }
        }
        (status, Ok(r)) => Some(format!("exit {status:?}, {} records", r.len())),
    };
    if why.is_some() {
        explain_failure("check bench --disk", elf, &q, &out, why.as_deref());
    }
    results.push((
        "bench --disk read cells, skips what does not fit".to_string(),
        why,
    ));
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn more_disks_than_virtio_slots_are_a_usage_error() {
        let disks = |cmd: &str, n: usize| {
            let mut args = vec!["xtask".to_string(), cmd.to_string()];
            for i in 0..n {
                args.extend(["--disk".to_string(), format!("d{i}.img")]);
            }
            usage_error(&Cli::try_parse_from(args).expect("parses").command)
        };
        for cmd in ["run", "qemu", "gdb", "verify"] {
            assert_eq!(disks(cmd, 1), None, "{cmd}");
            assert_eq!(disks(cmd, 128), None, "{cmd}");
            let e = disks(cmd, 129).unwrap_or_else(|| panic!("{cmd}: 129 disks accepted"));
            assert!(
                e.contains("129 --disk") && e.contains("128 virtio-mmio slots"),
                "{e}"
            );
        }
        let twice = Cli::try_parse_from([
            "xtask",
            "verify",
            "--disk",
            "a.img",
            "--pass",
            "intr/none,polled/040",
            "--pass",
            "intr/none",
        ])
        .expect("parses");
        let e = usage_error(&twice.command).expect("a pass named twice is refused");
        assert!(e.contains("intr/none twice"), "{e}");
    }

    #[test]
    fn a_repeated_item_is_found() {
        assert_eq!(repeated::<u8>(&[]), None);
        assert_eq!(repeated(&[1, 2, 3]), None);
        assert_eq!(repeated(&[1, 2, 1]), Some(&1));
        assert_eq!(repeated(&[3, 2, 2, 3]), Some(&2));
    }

    fn outcome(status: Option<i32>, console: &str, stderr: &str) -> Outcome {
        Outcome {
            status,
            timed_out: false,
            console: console.into(),
            stderr: stderr.into(),
        }
    }

    #[test]
    fn a_run_succeeds_only_when_the_kernel_ended_it() {
        let closed = "test a ... ok\n1 passed, 0 failed\n";
        // QEMU's line on SIGTERM/SIGINT/SIGHUP (7.2 and 10.0.2 print it so); it exits 0.
        let signal = "qemu-system-m68k: terminating on signal 15 from pid 4242 (bash)\n";
        assert_eq!(run_verdict("test=all", &outcome(Some(0), closed, "")), None);
        assert_eq!(
            run_verdict(
                "test=none bench_cell=x",
                &outcome(Some(0), "heap: ...\n", "")
            ),
            None
        );
        assert!(matches!(
            run_verdict("test=all", &outcome(Some(0), closed, signal)),
            Some(Some(w)) if w.contains("stopped by a signal")
        ));
        assert!(matches!(
            run_verdict("test=none", &outcome(Some(0), "", signal)),
            Some(Some(_))
        ));
        // Tests selected (explicitly, or by the kernel's default) and no closing line.
        for append in [
            "test=all",
            "test=blk::",
            "dma_audit=on",
            "test=none test=boot::",
        ] {
            assert!(
                matches!(
                    run_verdict(append, &outcome(Some(0), "test a ... ok\n", "")),
                    Some(Some(w)) if w.contains("closing")
                ),
                "{append}"
            );
        }
        assert_eq!(
            run_verdict("test=all", &outcome(Some(1), closed, "")),
            Some(None)
        );
        assert_eq!(run_verdict("test=all", &outcome(None, "", "")), Some(None));
    }

    #[test]
    fn disks_naming_a_user_disk_slot_are_found() {
        let f = disks_option_names_user_disk;
        assert_eq!(f("test=blk:: disks=0", 1), Some((0, "disks=0")));
        assert_eq!(f("disks=3,1", 2), Some((1, "disks=3,1")));
        assert_eq!(f("disks=2 disks=00", 1), Some((0, "disks=00")));
        assert_eq!(f("disks=2,3", 2), None);
        assert_eq!(f("test=all", 4), None);
        assert_eq!(f("xdisks=0", 1), None);
        assert_eq!(f("disks=0", 0), None);
    }

    #[test]
    fn the_kernel_gets_the_last_append_passed_through() {
        let extra = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            kernel_append("test=all", &extra(&["-d", "int"])),
            "test=all"
        );
        assert_eq!(
            kernel_append(
                "test=all",
                &extra(&["-append", "test=none", "-append", "disks=0"])
            ),
            "disks=0"
        );
        assert_eq!(kernel_append("test=all", &extra(&["-append"])), "test=all");
    }

    #[test]
    fn verify_write_refuses_one_image_given_twice_before_booting() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("w.img");
        std::fs::write(&img, vec![0u8; 1 << 20]).unwrap();
        let link = dir.path().join("link.img");
        std::os::unix::fs::symlink(&img, &link).unwrap();
        let disk = |p: &Path| qemu::Disk::parse(&p.display().to_string()).unwrap();
        let plan = |write| VerifyPlan {
            disks: vec![disk(&img), disk(&link)],
            write,
            inject: Vec::new(),
            passes: Vec::new(),
            cpu: Cpu::M68040,
            timeout: None,
        };
        // No kernel at this path: the refusal must come before anything boots.
        let nowhere = Path::new("/nonexistent/kernel.elf");
        let e = run_verify(&plan(Some(1)), Some(nowhere)).err().unwrap();
        assert!(format!("{e:#}").contains("is given twice"), "{e:#}");
    }

    #[test]
    fn run_refuses_one_image_twice_unless_read_only_each_time() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("w.img");
        std::fs::write(&img, vec![0u8; 1 << 20]).unwrap();
        let link = dir.path().join("link.img");
        std::os::unix::fs::symlink(&img, &link).unwrap();
        let disk = |p: &Path, ro: bool| {
            let spec = format!("{}{}", p.display(), if ro { ",ro" } else { "" });
            qemu::Disk::parse(&spec).unwrap()
        };
        for (a, b) in [(false, false), (false, true), (true, false)] {
            let e = check_run_disks(&[disk(&img, a), disk(&link, b)]).unwrap_err();
            assert!(
                format!("{e:#}").contains("the same image as"),
                "{a} {b}: {e:#}"
            );
        }
        check_run_disks(&[disk(&img, true), disk(&link, true)]).unwrap();
        check_run_disks(&[disk(&img, false)]).unwrap();
    }

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
        // The kernel's fatal line leads, above a long tail (a refused command line).
        let mut console = String::from("banner\nfatal: kernel command line: bad value\n");
        for i in 0..60 {
            console.push_str(&format!("  option {i}\n"));
        }
        let out = Outcome { console, ..out };
        let r = failure_report(&Qemu::default(), &out, None, &[], Path::new("l"));
        assert_eq!(r[0], "fatal: kernel command line: bad value");
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
