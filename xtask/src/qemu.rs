//! Running the kernel under qemu-system-m68k: always with a wall-clock timeout, the console
//! streamed live and kept, and QEMU killed on timeout or when the runner is dropped.

use crate::{fail, Result};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct Disk {
    pub file: PathBuf,
    pub read_only: bool,
    /// GET_ID answer (default m68k-disk<slot>).
    pub serial: Option<String>,
    /// A QEMU blkdebug rules file: I/O errors injected as it says.
    pub blkdebug: Option<PathBuf>,
    /// QEMU's AIO backend for the image (threads when None).
    pub aio: Option<String>,
}

impl Disk {
    /// Parses `FILE[,ro]`.
    pub fn parse(spec: &str) -> Result<Disk> {
        let (file, read_only) = match spec.strip_suffix(",ro") {
            Some(f) => (f, true),
            None => (spec, false),
        };
        if file.is_empty() || file.contains(',') {
            return fail(format!("--disk expects FILE or FILE,ro, got '{spec}'"));
        }
        Ok(Disk {
            file: PathBuf::from(file),
            read_only,
            serial: None,
            blkdebug: None,
            aio: None,
        })
    }
}

#[derive(Clone, Debug)]
pub struct Qemu {
    pub cpu: String,
    pub mem: String,
    pub append: String,
    pub disks: Vec<Disk>,
    pub extra: Vec<String>,
    pub timeout: Duration,
    /// One guest instruction per translated block (QEMU 7.2's -singlestep), so interrupts
    /// can arrive between any two instructions.
    pub singlestep: bool,
    /// Typed on the console (QEMU's stdin) as soon as QEMU starts.
    pub input: Vec<u8>,
}

/// What the runner types on the guest console: the tty and nested-interrupt tests read it
/// ("hellp", DEL, "o world", CR: the line editor must produce "hello world").
pub const CONSOLE_FIXTURE: &[u8] = b"hellp\x7fo world\r";

impl Default for Qemu {
    fn default() -> Self {
        Qemu {
            cpu: "m68040".into(),
            mem: "128M".into(),
            append: String::new(),
            disks: Vec::new(),
            extra: Vec::new(),
            timeout: Duration::from_secs(300),
            singlestep: false,
            input: CONSOLE_FIXTURE.to_vec(),
        }
    }
}

pub struct Outcome {
    /// QEMU's exit status; None when it was killed (timeout) or died by a signal.
    pub status: Option<i32>,
    pub timed_out: bool,
    pub console: String,
}

/// Kills QEMU if the runner goes away early (a panic, an error return).
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Qemu {
    pub fn args(&self, elf: &Path) -> Vec<String> {
        let mut a: Vec<String> = vec![
            "-M".into(),
            "virt".into(),
            "-cpu".into(),
            self.cpu.clone(),
            "-m".into(),
            self.mem.clone(),
            "-display".into(),
            "none".into(),
            "-monitor".into(),
            "none".into(),
            "-serial".into(),
            "stdio".into(),
            "-no-reboot".into(),
            // virt-ctrl PANIC then exits 1 (without it, 0).
            "-action".into(),
            "panic=exit-failure".into(),
            "-kernel".into(),
            elf.display().to_string(),
            "-append".into(),
            self.append.clone(),
        ];
        if self.singlestep {
            a.push("-singlestep".into());
        }
        for (i, d) in self.disks.iter().enumerate() {
            let ro = match &d.aio {
                Some(aio) => format!(
                    "{},aio={aio}",
                    if d.read_only { ",readonly=on" } else { "" }
                ),
                None => (if d.read_only { ",readonly=on" } else { "" }).to_string(),
            };
            a.push("-drive".into());
            // blkdebug goes under the raw format driver: raw announces its reads and writes
            // to its file child, so blkdebug on top of raw would never see them.
            a.push(match &d.blkdebug {
                Some(rules) => format!(
                    "if=none,id=hd{i},format=raw,file.driver=blkdebug,file.config={},file.image.filename={}{ro}",
                    rules.display(),
                    d.file.display()
                ),
                None => format!("if=none,id=hd{i},file={},format=raw{ro}", d.file.display()),
            });
            a.push("-device".into());
            // Pinned slots: without bus=, the first device lands in the last slot.
            let serial = d.serial.clone().unwrap_or_else(|| format!("m68k-disk{i}"));
            a.push(format!(
                "virtio-blk-device,drive=hd{i},bus=virtio-mmio-bus.{i},serial={serial}"
            ));
        }
        a.extend(self.extra.iter().cloned());
        a
    }

    /// Boots `elf`; with `echo`, the console streams to our stdout as it arrives.
    pub fn run(&self, elf: &Path, echo: bool) -> Result<Outcome> {
        let child = Command::new("qemu-system-m68k")
            .args(self.args(elf))
            .stdin(if self.input.is_empty() {
                Stdio::null()
            } else {
                Stdio::piped()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start qemu-system-m68k: {e}"))?;
        let mut child = KillOnDrop(child);
        // Kept open until QEMU exits: at EOF QEMU's stdio backend would stop reading.
        let mut stdin = child.0.stdin.take();
        if let Some(s) = stdin.as_mut() {
            s.write_all(&self.input)
                .map_err(|e| format!("cannot type into QEMU's console: {e}"))?;
            s.flush()
                .map_err(|e| format!("cannot type into QEMU's console: {e}"))?;
        }
        let console = Arc::new(Mutex::new(Vec::<u8>::new()));
        let mut readers = Vec::new();
        for (stream, is_stderr) in [
            (
                Box::new(child.0.stdout.take().unwrap()) as Box<dyn Read + Send>,
                false,
            ),
            (
                Box::new(child.0.stderr.take().unwrap()) as Box<dyn Read + Send>,
                true,
            ),
        ] {
            let console = Arc::clone(&console);
            readers.push(std::thread::spawn(move || {
                pump(stream, &console, echo, is_stderr)
            }));
        }
        let deadline = Instant::now() + self.timeout;
        let mut timed_out = false;
        let status = loop {
            if let Some(s) = child
                .0
                .try_wait()
                .map_err(|e| format!("waiting for qemu: {e}"))?
            {
                break s.code();
            }
            if Instant::now() >= deadline {
                timed_out = true;
                let _ = child.0.kill();
                let _ = child.0.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        drop(stdin);
        for r in readers {
            let _ = r.join();
        }
        let text = String::from_utf8_lossy(&console.lock().unwrap()).replace('\r', "");
        Ok(Outcome {
            status,
            timed_out,
            console: text,
        })
    }
}

fn pump(mut stream: Box<dyn Read + Send>, console: &Mutex<Vec<u8>>, echo: bool, is_stderr: bool) {
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                console.lock().unwrap().extend_from_slice(&buf[..n]);
                if echo {
                    let chunk: Vec<u8> = buf[..n].iter().copied().filter(|&b| b != b'\r').collect();
                    if is_stderr {
                        let _ = std::io::stderr().write_all(&chunk);
                    } else {
                        let mut out = std::io::stdout();
                        let _ = out.write_all(&chunk);
                        let _ = out.flush();
                    }
                }
            }
        }
    }
}

/// Counts from the guest's closing line `N passed, N failed[, N skipped]` (the last one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub passed: u32,
    pub failed: u32,
    pub skipped: u32,
}

pub fn parse_summary_line(line: &str) -> Option<Summary> {
    let mut parts = line.trim().split(", ");
    let count = |part: Option<&str>, word: &str| -> Option<u32> {
        let (n, w) = part?.split_once(' ')?;
        (w == word).then(|| n.parse().ok())?
    };
    let passed = count(parts.next(), "passed")?;
    let failed = count(parts.next(), "failed")?;
    let skipped = match parts.next() {
        None => 0,
        some => count(some, "skipped")?,
    };
    parts.next().is_none().then_some(Summary {
        passed,
        failed,
        skipped,
    })
}

pub fn last_summary(console: &str) -> Option<Summary> {
    console.lines().rev().find_map(parse_summary_line)
}

/// The test that had started but not finished when the console stopped.
pub fn unfinished_test(console: &str) -> Option<String> {
    let line = console
        .lines()
        .rev()
        .find(|l| l.starts_with("test ") && l.contains(" ... "))?;
    let (name, rest) = line["test ".len()..].split_once(" ... ")?;
    rest.trim().is_empty().then(|| name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_lines() {
        assert_eq!(
            parse_summary_line("12 passed, 0 failed"),
            Some(Summary {
                passed: 12,
                failed: 0,
                skipped: 0
            })
        );
        assert_eq!(
            parse_summary_line("1 passed, 2 failed, 3 skipped"),
            Some(Summary {
                passed: 1,
                failed: 2,
                skipped: 3
            })
        );
        assert_eq!(parse_summary_line("test x ... ok"), None);
        assert_eq!(parse_summary_line("1 passed"), None);
        assert_eq!(parse_summary_line("1 passed, 2 failed, extra"), None);
        assert_eq!(parse_summary_line("x passed, 0 failed"), None);
    }

    #[test]
    fn last_summary_wins() {
        let c = "3 passed, 1 failed\nnoise\n4 passed, 0 failed\n";
        assert_eq!(last_summary(c).map(|s| s.passed), Some(4));
        assert_eq!(last_summary("no summary"), None);
    }

    #[test]
    fn unfinished_test_is_found() {
        assert_eq!(
            unfinished_test("test a ... ok\ntest b ... \nfatal exception: x\n"),
            Some("b".into())
        );
        assert_eq!(
            unfinished_test("test a ... ok\ntest b ... FAILED: why\n"),
            None
        );
        assert_eq!(unfinished_test("banner only\n"), None);
    }

    #[test]
    fn disk_specs() {
        let d = Disk::parse("a.img,ro").unwrap();
        assert!(d.read_only && d.file == Path::new("a.img"));
        assert!(!Disk::parse("b.img").unwrap().read_only);
        assert!(Disk::parse(",ro").is_err());
        assert!(Disk::parse("a,b").is_err());
    }

    #[test]
    fn qemu_args_pin_disk_slots_and_exit_on_panic() {
        let q = Qemu {
            disks: vec![
                Disk::parse("x.img,ro").unwrap(),
                Disk::parse("y.img").unwrap(),
            ],
            ..Qemu::default()
        };
        let a = q.args(Path::new("k.elf")).join(" ");
        assert!(a.contains("-action panic=exit-failure"));
        assert!(a.contains("file=x.img,format=raw,readonly=on"));
        assert!(a.contains("drive=hd1,bus=virtio-mmio-bus.1"));
    }
}
