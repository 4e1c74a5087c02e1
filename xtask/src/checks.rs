//! Whole-boot checks: boots with a known outcome (deliberate failures, RAM sizes, CPU
//! models, command-line limits, odd disk layouts), and a signal sent to a running xtask.

use crate::qemu::{self, Outcome, Qemu, Version};
use crate::scratch::ScratchDisks;
use crate::{anyhow, fail, with_default, Context as _, Result, M68060_QEMU};
use console_proto::{test_line, Summary};
use std::io::Read;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use wait_timeout::ChildExt as _;

/// A Check status meaning "QEMU must be killed by the timeout".
const MUST_TIME_OUT: i32 = -1;

/// One whole boot with a known outcome: QEMU's exit status and texts the console must show.
pub struct Check {
    pub name: &'static str,
    cpu: &'static str,
    mem: &'static str,
    append: &'static str,
    status: i32,
    expect: &'static [&'static str],
    /// QEMU versions the check applies to: `min <= version < below`.
    qemu: (Version, Version),
    /// Disks and command-line shapes beyond the plain boot.
    setup: Setup,
}

#[derive(Clone, Copy)]
enum Setup {
    /// No disks; the command line as given.
    Plain,
    /// The runner's four scratch disks, named with `disks=`.
    Scratch,
    /// The scratch disks with these extra QEMU arguments (e.g. `-global` device properties).
    ScratchWith(&'static [&'static str]),
    /// The scratch disks plus a 1.5 MiB disk attached without `bus=` (QEMU puts it in the
    /// highest free slot, 127): tests must find disks by probing.
    ScratchPlusUnpinned,
    /// One 32 KiB disk in slot 0, named scratch: smaller than most benchmark cells.
    TinyDisk,
    /// The command line padded with spaces to exactly this many bytes.
    PaddedTo(usize),
}

impl Check {
    pub fn applies_to(&self, version: Version) -> bool {
        self.qemu.0 <= version && version < self.qemu.1
    }
}

const ANY_QEMU: (Version, Version) = (Version::new(0, 0, 0), Version::new(u32::MAX, 0, 0));

/// A deliberate failure: QEMU must exit 1 with these texts on the console.
const fn fault(
    name: &'static str,
    cpu: &'static str,
    append: &'static str,
    expect: &'static [&'static str],
) -> Check {
    Check {
        status: 1,
        ..passes(name, cpu, "128M", append, expect)
    }
}

/// A boot that must end in the CPU gate's one-line refusal.
const fn refused_cpu(
    name: &'static str,
    cpu: &'static str,
    expect: &'static [&'static str],
) -> Check {
    fault(name, cpu, "", expect)
}

/// A boot that must pass.
const fn passes(
    name: &'static str,
    cpu: &'static str,
    mem: &'static str,
    append: &'static str,
    expect: &'static [&'static str],
) -> Check {
    Check {
        name,
        cpu,
        mem,
        append,
        status: 0,
        expect,
        qemu: ANY_QEMU,
        setup: Setup::Plain,
    }
}

/// Deliberate failures (each must be reported and exit 1) and memory sizes at the edges.
/// Stands for "N passed, 0 failed" with N the number of `boot::` tests, counted from the
/// kernel's source (`boot_group_passes`) rather than typed here.
const BOOT_GROUP_PASSES: &str = "<every boot:: test passed>";

/// The summary line of a `test=boot::` run in which every test passed: the number of tests
/// is the number of `"boot::...` names registered in kernel/src/selftest/boot.rs.
fn boot_group_passes() -> Result<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../kernel/src/selftest/boot.rs");
    let src = std::fs::read_to_string(&path)
        .map_err(|e| anyhow!("cannot read {}: {e}", path.display()))?;
    Ok(summary_for(src.matches("\"boot::").count()))
}

fn summary_for(passed: usize) -> String {
    Summary {
        passed: passed as u32,
        failed: 0,
        skipped: 0,
    }
    .to_string()
}

pub const CHECKS: &[Check] = &[
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
    // The report of an exhausted native stack runs in the reserve below the guard's limit.
    fault(
        "fault=stack",
        "m68040",
        "test=none fault=stack",
        &["fatal wasm trap: call stack exhausted pc=0x"],
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
            "test fail::panic ... FAILED: panicked at kernel/src/selftest/fail.rs:",
            "test fail::wasm_trap ... FAILED: wasm trap: out of bounds memory access",
            "test fail::refused_cache_op ... FAILED: panicked at kernel/src/arch/m68k/cache.rs:",
            ": machine layer refused cache op 0x00 at 0x00000000",
            "test fail::stack_exhausted ... FAILED: wasm trap: call stack exhausted",
            "0 passed, 5 failed",
        ],
    ),
    // The first test panics inside a timer interrupt handler; the second needs the kernel's
    // interrupt state back (not in interrupt context, handlers registrable, timers firing).
    fault(
        "a panic in an interrupt handler is survived",
        "m68040",
        "test=recovery::",
        &[
            "test recovery::panic_in_interrupt_handler ... FAILED: panicked at kernel/src/selftest/fail.rs:",
            "test recovery::interrupts_work_after_a_handler_panic ... ok",
            "1 passed, 1 failed",
        ],
    ),
    passes(
        "-m 32M",
        "m68040",
        "32M",
        "test=boot::",
        &["linear memory at 0x00800000, 24 MiB", BOOT_GROUP_PASSES],
    ),
    passes(
        "-m 1G",
        "m68030",
        "1G",
        "test=boot::",
        &[
            "linear memory at 0x00800000, 1016 MiB",
            BOOT_GROUP_PASSES,
        ],
    ),
    // RAM need not be a multiple of the 64 KiB wasm page; QEMU's largest -m for this board.
    passes(
        "-m 33000K",
        "m68040",
        "33000K",
        "test=boot::",
        &[
            "ram 0x00000000-0x0203a000 (33000 KiB)",
            "linear memory at 0x00800000, 24768 KiB;",
            BOOT_GROUP_PASSES,
        ],
    ),
    passes(
        "-m 3399672K (QEMU's maximum)",
        "m68040",
        "3399672K",
        "test=boot::",
        &[
            "ram 0x00000000-0xcf7fe000 (3399672 KiB)",
            BOOT_GROUP_PASSES,
        ],
    ),
    Check {
        name: "-m 8M (too small)",
        mem: "8M",
        ..fault(
            "",
            "m68040",
            "",
            &["fatal: RAM is 8192 KiB; this kernel needs at least 24 MiB: give QEMU more memory (-m 24M or more)"],
        )
    },
    Check {
        name: "-m 23M (below the minimum)",
        mem: "23M",
        ..fault(
            "",
            "m68040",
            "test=boot::",
            &["fatal: RAM is 23552 KiB; this kernel needs at least 24 MiB"],
        )
    },
    // The minimum RAM runs the whole suite with every scratch disk and the auditor on.
    Check {
        setup: Setup::Scratch,
        ..passes(
            "-m 24M (the minimum) runs the whole suite",
            "m68030",
            "24M",
            "test=all cpu=68030 dma_audit=on",
            &[" 0 failed", "heap: at most "],
        )
    },
    fault(
        "dropped PREREAD is caught by the auditor",
        "m68030",
        "test=dma::driver dma_bug=drop-preread",
        &[
            "dma audit: CPU re-read a line in a new read phase without a PREREAD/POSTREAD cycle",
            "in seed/poll at offset 0x2, by kernel/src/selftest/dma.rs:",
            "0 passed, 1 failed",
        ],
    ),
    fault(
        "a selection that matches no test is an error",
        "m68040",
        "test=boot::,nonexistent",
        &["fatal: test=boot::,nonexistent: no test name contains 'nonexistent'"],
    ),
    fault(
        "a key given twice is refused",
        "m68040",
        "disks=31 test=boot:: disks=0,1,2,3",
        &[
            "fatal: kernel command line: option 'disks' given more than once",
            "accepted options",
        ],
    ),
    // bootinfo stores a record's size in 16 bits: 65527 bytes is the longest command line
    // QEMU can describe (hw/m68k/bootinfo.h).
    Check {
        setup: Setup::PaddedTo(65527),
        ..passes(
            "the longest command line QEMU describes",
            "m68040",
            "128M",
            "test=boot::",
            &[BOOT_GROUP_PASSES],
        )
    },
    Check {
        setup: Setup::PaddedTo(65528),
        ..fault(
            "a command line one byte too long is named",
            "m68040",
            "test=boot::",
            &["fatal: the kernel command line is 65528 bytes; this kernel takes at most 65527"],
        )
    },
    Check {
        setup: Setup::TinyDisk,
        ..fault(
            "the benchmark skips cells that do not fit a 32 KiB disk",
            "m68040",
            "test=none bench=quick disks=0",
            &[
                "does not fit the disk: a 65536-byte request needs at least 65536 bytes, the disk has 32768 bytes",
                "impl=driver pattern=seq op=getid",
                "bench done 14 cells",
            ],
        )
    },
    // bench_cell= (cargo xtask profile) names one cell: one the matrix lacks is refused by
    // name (with the cells it has), and so is text that is no cell at all.
    Check {
        setup: Setup::Scratch,
        ..fault(
            "bench_cell naming no cell of the matrix is refused",
            "m68040",
            "test=none bench_cell=driver,rand,read,512,1,intr,on",
            &[
                "bench: bench_cell=driver,rand,read,512,1,intr,on names no cell of the quick matrix; its cells: floor,rand,read,4096,1,polled,off",
            ],
        )
    },
    fault(
        "bench_cell that is no cell spec is refused",
        "m68040",
        "bench_cell=driver,rand,read",
        &["bad value 'driver,rand,read' for bench_cell: expected impl,pattern,op,bs,qd,mode,event_idx"],
    ),
    Check {
        setup: Setup::ScratchPlusUnpinned,
        ..passes(
            "a disk in slot 127 (attached without bus=) disturbs no test",
            "m68040",
            "128M",
            "test=virtio::,blk:: dma_audit=on",
            &[
                "disk slot 127 irq 167: 3072 sectors (1.5 MiB)",
                "test virtio::probe_finds_the_attached_disks ... ok",
                "test blk::missing_disk_is_an_error ... ok",
                " 0 failed",
            ],
        )
    },
    // Every disk a conformant device may present: 4096-byte logical blocks, and discard /
    // write-zeroes limits small enough that the driver must split.
    Check {
        setup: Setup::ScratchWith(&[
            "-global",
            "virtio-blk-device.logical_block_size=4096",
            "-global",
            "virtio-blk-device.physical_block_size=4096",
        ]),
        ..passes(
            "disks with 4096-byte logical blocks pass the disk suites",
            "m68040",
            "128M",
            "test=blk::,virtio:: dma_audit=on",
            &["4096-byte blocks", " 0 failed"],
        )
    },
    Check {
        setup: Setup::ScratchWith(&[
            "-global",
            "virtio-blk-device.max-write-zeroes-sectors=2",
            "-global",
            "virtio-blk-device.max-discard-sectors=1",
        ]),
        ..passes(
            "discard and write-zeroes split to the device's limits",
            "m68040",
            "128M",
            "test=blk::discard dma_audit=on",
            &[" 0 failed"],
        )
    },
    // PR kern/60182 from the real driver: NetBSD's 2024 used-ring syncs under a stale-cache
    // model. The open's GET_ID (polled, EVENT_IDX off) reads used->flags at the kick
    // decision, which caches used->idx as 0 before the device answers: the completion is
    // never seen and the request times out (bounded, reported). The corrected sequencing
    // passes the same test on the same model.
    Check {
        setup: Setup::Scratch,
        ..fault(
            "vq_sync=netbsd-2024 hangs the driver under a 68030 cache (PR kern/60182)",
            "m68040",
            "test=blk::flush_and_get_id vq_sync=netbsd-2024 dma_model=030 dma_audit=on",
            &[
                "test blk::flush_and_get_id ...",
                "FAILED: no completion after",
                "0 passed, 1 failed",
            ],
        )
    },
    Check {
        setup: Setup::Scratch,
        ..passes(
            "vq_sync=corrected passes the disk tests under a 68040 copyback cache model",
            "m68040",
            "128M",
            "test=blk::flush_and_get_id,blk::random_io vq_sync=corrected dma_model=040 dma_audit=on",
            &[" 0 failed"],
        )
    },
    // CPU models: the 68020-68060 run; older cores and ColdFire get one line and exit 1.
    passes(
        "68020 runs, without a data cache",
        "m68020",
        "128M",
        "test=cpu::,cache:: cpu=68020",
        &[
            "cpu 68020 (identified by its CACR writable bits 0x0000000f)",
            "caches: instruction cache only, on (CACR 0x00000009)",
            "dma syncs: compiler barriers only (the 68020 has no data cache)",
            " 0 failed",
        ],
    ),
    Check {
        qemu: (M68060_QEMU, ANY_QEMU.1),
        ..passes(
            "68060 runs, its trapping cache instructions skipped",
            "m68060",
            "128M",
            "test=cpu::,cache:: cpu=68060",
            &[
                "cpu 68060 (identified by its CACR writable bits 0xf8e0e000)",
                "CINV/CPUSH trap here (F-line): skipped; ITT/DTT movec is illegal here: not set",
                "dma syncs: compiler barriers only",
                " 0 failed",
            ],
        )
    },
    Check {
        qemu: (ANY_QEMU.0, M68060_QEMU),
        ..fault(
            "68060 is refused before QEMU 9.0",
            "m68060",
            "",
            &[
                "fatal: 68060 detected (CACR writable bits 0xf8e0e000) under QEMU 7.2",
                "the 68060 needs QEMU 9.0 or later",
            ],
        )
    },
    refused_cpu(
        "-cpu m68000 is refused in one line",
        "m68000",
        &["fatal: this kernel needs a 68020 or later (68020, 68030, 68040, 68060); this CPU has no MOVEC instruction: a 68000"],
    ),
    refused_cpu(
        "-cpu m68010 is refused in one line",
        "m68010",
        &["fatal: this kernel needs a 68020 or later (68020, 68030, 68040, 68060); this CPU has no bit-field instructions: a 68010"],
    ),
    refused_cpu(
        "-cpu cfv4e is refused in one line",
        "cfv4e",
        &["fatal: this kernel needs a 68020 or later", "this CPU has no DBcc instruction: a ColdFire core"],
    ),
    refused_cpu(
        "-cpu m5206 is refused in one line",
        "m5206",
        &["fatal: this kernel needs a 68020 or later", "a ColdFire core"],
    ),
    refused_cpu(
        "-cpu m5208 is refused in one line",
        "m5208",
        &["fatal: this kernel needs a 68020 or later", "a ColdFire core"],
    ),
    refused_cpu(
        "-cpu any is refused in one line",
        "any",
        &["fatal: this kernel needs a 68020 or later", "a ColdFire core"],
    ),
    Check {
        name: "hung test is killed and named",
        status: MUST_TIME_OUT,
        ..passes(
            "",
            "m68040",
            "128M",
            "test=hang::",
            &["test hang::forever ... "],
        )
    },
];

/// Boots `check`; None when it ended as expected, else the run and why it did not.
pub fn run(check: &Check, elf: &Path) -> Result<Option<(Qemu, Outcome, String)>> {
    let mut q = Qemu {
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
    let _files = setup(check.setup, &mut q)?;
    let out = q.run(elf, false)?;
    let boot_passes = boot_group_passes()?;
    let missing: Vec<&str> = check
        .expect
        .iter()
        .map(|e| {
            if *e == BOOT_GROUP_PASSES {
                boot_passes.as_str()
            } else {
                e
            }
        })
        .filter(|e| !out.console.contains(*e))
        .collect();
    let why = if check.status == MUST_TIME_OUT {
        match (out.timed_out, test_line::unfinished(&out.console)) {
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
    Ok(why.map(|why| (q, out, why)))
}

/// Prepares a check's disks and command line; the returned scratch folder lives as long as
/// the run needs it.
fn setup(setup: Setup, q: &mut Qemu) -> Result<Option<ScratchDisks>> {
    Ok(match setup {
        Setup::Plain => None,
        Setup::PaddedTo(len) => {
            let pad = len.saturating_sub(q.append.len());
            q.append.push_str(&" ".repeat(pad));
            None
        }
        Setup::Scratch | Setup::ScratchWith(_) | Setup::ScratchPlusUnpinned | Setup::TinyDisk => {
            let mut s = ScratchDisks::create()?;
            if let Setup::TinyDisk = setup {
                std::fs::write(&s.disks[0].file, vec![0x5a; 32 * 1024])
                    .map_err(|e| anyhow!("cannot write the tiny disk: {e}"))?;
                s.disks.truncate(1);
            } else {
                q.append = with_default(&q.append, "disks", &s.slots());
            }
            q.disks = s.disks.clone();
            if let Setup::ScratchWith(extra) = setup {
                q.extra.extend(extra.iter().map(|a| a.to_string()));
            }
            if let Setup::ScratchPlusUnpinned = setup {
                let file = s.dir.path().join("unpinned.img");
                std::fs::write(&file, vec![0u8; 3 * 512 * 1024])
                    .map_err(|e| anyhow!("cannot write {}: {e}", file.display()))?;
                q.extra.extend([
                    "-drive".to_string(),
                    format!("if=none,id=unpinned,file={},format=raw", file.display()),
                    "-device".to_string(),
                    "virtio-blk-device,drive=unpinned".to_string(),
                ]);
            }
            Some(s)
        }
    })
}

/// Starts `cargo xtask run` on a test that never ends, sends `signal` to that xtask process
/// alone once the test is running, and requires: exit status 130 with the interrupted message,
/// its QEMU gone, its scratch folder removed, all within seconds.
///
/// With `group`, the xtask runs in a process group of its own and the signal goes to the
/// whole group, as a terminal's Ctrl-C does: QEMU then gets it too and may exit 0 first.
pub fn signal(signal: i32, group: bool) -> Result<()> {
    use std::io::{BufRead, BufReader};
    use std::os::unix::process::CommandExt;
    use std::process::Stdio;
    use std::sync::mpsc;
    let exe = std::env::current_exe().map_err(|e| anyhow!("cannot find the xtask binary: {e}"))?;
    let mut cmd = Command::new(exe);
    if group {
        cmd.process_group(0);
    }
    let mut child = cmd
        .args(["run", "--append", "test=hang::", "--timeout", "120"])
        .env(qemu::QEMU_ENV, &qemu::binary()?.path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| anyhow!("cannot start the xtask: {e}"))?;
    let (tx, rx) = mpsc::channel::<(bool, String)>();
    let hang_started = test_line::Start("hang::forever").to_string();
    for (stream, is_stderr) in [
        (
            Box::new(child.stdout.take().expect("piped")) as Box<dyn Read + Send>,
            false,
        ),
        (Box::new(child.stderr.take().expect("piped")), true),
    ] {
        let tx = tx.clone();
        let hang_started = hang_started.clone();
        std::thread::spawn(move || {
            // The console waits mid-line in the hanging test: read bytes, not lines.
            let mut r = BufReader::new(stream);
            let mut line = Vec::new();
            loop {
                let buf = match r.fill_buf() {
                    Ok([]) | Err(_) => break,
                    Ok(b) => b.to_vec(),
                };
                r.consume(buf.len());
                for b in buf {
                    line.push(b);
                    let text = String::from_utf8_lossy(&line).to_string();
                    if b == b'\n' || text.ends_with(&hang_started) {
                        let _ = tx.send((is_stderr, text));
                        line.clear();
                    }
                }
            }
        });
    }
    drop(tx);
    let started = Instant::now();
    let (mut scratch, mut output) = (None::<String>, String::new());
    let kill_child = |child: &mut std::process::Child| {
        let _ = child.kill();
        let _ = child.wait();
    };
    loop {
        let left = Duration::from_secs(180).saturating_sub(started.elapsed());
        match rx.recv_timeout(left) {
            Ok((is_stderr, text)) => {
                output.push_str(&text);
                if is_stderr && scratch.is_none() {
                    if let Some(at) = text.find("file=") {
                        let path = text[at + 5..].split([',', ' ']).next().unwrap_or("");
                        scratch = Path::new(path).parent().map(|p| p.display().to_string());
                    }
                }
                if !is_stderr && text.contains(&hang_started) {
                    break;
                }
            }
            Err(_) => {
                kill_child(&mut child);
                return fail(format!(
                    "the hanging test never started within 180 s; output:\n{output}"
                ));
            }
        }
    }
    let qemu_pids = child_pids(child.id());
    // Our own child's pid, or its process group (the same number: it leads the group).
    let target = child.id() as libc::pid_t * if group { -1 } else { 1 };
    // SAFETY: kill(2) on our own child (or the group it leads), which has not been reaped
    // yet, so the pid cannot have been reused; a valid signal number.
    unsafe {
        libc::kill(target, signal);
    }
    let Some(status) = child
        .wait_timeout(Duration::from_secs(15))
        .context("waiting for the signalled xtask")?
    else {
        kill_child(&mut child);
        return fail("the xtask was still running 15 s after the signal");
    };
    // The rest of its output (the readers end when the pipes close).
    while let Ok((_, text)) = rx.recv_timeout(Duration::from_secs(5)) {
        output.push_str(&text);
    }
    let mut problems = Vec::new();
    if status.code() != Some(130) {
        problems.push(format!("exit status {status} (expected 130)"));
    }
    if !output.contains(qemu::INTERRUPTED_MSG) {
        problems.push("no 'interrupted' message".to_string());
    }
    if qemu_pids.is_empty() {
        problems.push("found no QEMU child to watch".to_string());
    }
    for pid in &qemu_pids {
        // A zombie (State Z) is dead; only a running orphan counts.
        let state = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        if state
            .lines()
            .any(|l| l.starts_with("State:") && !l.contains('Z'))
        {
            problems.push(format!("QEMU (pid {pid}) still runs"));
            // SAFETY: best-effort cleanup of the orphan this check just detected.
            unsafe {
                libc::kill(*pid as libc::pid_t, libc::SIGKILL);
            }
        }
    }
    match &scratch {
        None => problems.push("no scratch folder in the xtask's output".to_string()),
        Some(dir) if Path::new(dir).exists() => {
            problems.push(format!("scratch folder {dir} was left behind"));
        }
        Some(_) => {}
    }
    if problems.is_empty() {
        Ok(())
    } else {
        fail(format!("{}; output:\n{output}", problems.join("; ")))
    }
}

/// Direct children of process `pid` (Linux /proc).
fn child_pids(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|c| {
            c.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_boot_group_summary_is_counted_from_the_kernel_source() {
        let line = boot_group_passes().unwrap();
        let n: usize = line.split(' ').next().unwrap().parse().unwrap();
        assert!(n > 0, "{line}");
        assert_eq!(summary_for(3), "3 passed, 0 failed");
        assert!(
            CHECKS.iter().any(|c| c.expect.contains(&BOOT_GROUP_PASSES)),
            "no check uses the counted summary"
        );
    }
}
