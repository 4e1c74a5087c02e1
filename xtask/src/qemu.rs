//! Running the kernel under qemu-system-m68k: always with a wall-clock timeout, the console
//! streamed live and kept, QEMU's own messages kept apart from it, and QEMU killed on timeout,
//! on SIGINT/SIGTERM/SIGHUP, when the runner is dropped, and (PR_SET_PDEATHSIG) when the xtask
//! itself dies.

use crate::{anyhow, fail, Context as _, Result};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;
use wait_timeout::ChildExt as _;

/// Environment variable naming the qemu-system-m68k to use (`--qemu PATH` wins over it).
pub const QEMU_ENV: &str = "XTASK_QEMU";

/// A QEMU release, from `qemu-system-m68k --version`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
    pub micro: u32,
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.micro)
    }
}

impl Version {
    pub const fn new(major: u32, minor: u32, micro: u32) -> Version {
        Version {
            major,
            minor,
            micro,
        }
    }

    /// Parses the first line of `--version`: `QEMU emulator version 10.0.2 (Debian ...)`.
    pub fn parse(text: &str) -> Option<Version> {
        let rest = text.lines().next()?.split("version ").nth(1)?;
        let number: String = rest
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        let mut parts = number.split('.').map(|p| p.parse::<u32>().ok());
        let major = parts.next()??;
        let minor = parts.next()??;
        let micro = parts.next().flatten().unwrap_or(0);
        Some(Version::new(major, minor, micro))
    }

    /// The arguments for one guest instruction per translated block: QEMU 8.1 added
    /// `-accel tcg,one-insn-per-tb=on` and 9.0 removed `-singlestep`, which is all 7.2 has.
    pub fn one_insn_per_tb_args(self) -> &'static [&'static str] {
        if self >= Version::new(8, 1, 0) {
            &["-accel", "tcg,one-insn-per-tb=on"]
        } else {
            &["-singlestep"]
        }
    }
}

/// The qemu-system-m68k this xtask runs, and its version.
#[derive(Clone, Debug)]
pub struct Binary {
    pub path: PathBuf,
    pub version: Version,
}

static BINARY: OnceLock<Binary> = OnceLock::new();

/// Which QEMU was asked for: `--qemu PATH`, else $XTASK_QEMU, else none (the PATH's).
pub fn requested(cli: Option<PathBuf>) -> Result<Option<PathBuf>> {
    if let Some(path) = cli {
        return Ok(Some(path));
    }
    match std::env::var(QEMU_ENV) {
        Ok(v) if v.is_empty() => Ok(None),
        Ok(v) => Ok(Some(PathBuf::from(v))),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(v)) => fail(format!(
            "${QEMU_ENV} is not valid UTF-8 ({})",
            v.to_string_lossy()
        )),
    }
}

/// How long `qemu-system-m68k --version` may take.
const VERSION_TIMEOUT: Duration = Duration::from_secs(15);

/// Runs `path --version` once and remembers the answer for every later run.
pub fn select(path: PathBuf) -> Result<&'static Binary> {
    if let Some(b) = BINARY.get() {
        return Ok(b);
    }
    let mut child = spawn_owned(
        Command::new(&path)
            .arg("--version")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null()),
    )
    .with_context(|| format!("cannot run {} --version", path.display()))?;
    let stdout = child.0.stdout.take().context("QEMU's stdout is piped")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = stdout.take(64 * 1024).read_to_end(&mut text);
        let _ = tx.send(text);
    });
    let Some(status) = child
        .0
        .wait_timeout(VERSION_TIMEOUT)
        .with_context(|| format!("waiting for {} --version", path.display()))?
    else {
        return fail(format!(
            "{} --version did not answer within {} s",
            path.display(),
            VERSION_TIMEOUT.as_secs()
        ));
    };
    // The reader ends when the pipe closes; a stray grandchild holding it must not stall us.
    let stdout = rx.recv_timeout(Duration::from_secs(2)).unwrap_or_default();
    let text = String::from_utf8_lossy(&stdout);
    let version = Version::parse(&text).ok_or_else(|| {
        anyhow!(
            "{} --version did not print a QEMU version (got {:?}{})",
            path.display(),
            text.lines().next().unwrap_or(""),
            if status.success() { "" } else { ", and failed" }
        )
    })?;
    eprintln!("xtask: QEMU {version} ({})", path.display());
    Ok(BINARY.get_or_init(|| Binary { path, version }))
}

/// True when `--qemu` or $XTASK_QEMU chose the binary (the system package is then not needed).
pub fn chosen_explicitly() -> bool {
    BINARY.get().is_some()
}

/// The QEMU chosen by `select` (the PATH's qemu-system-m68k if nothing was selected yet).
pub fn binary() -> Result<&'static Binary> {
    match BINARY.get() {
        Some(b) => Ok(b),
        None => select(PathBuf::from("qemu-system-m68k")),
    }
}

/// Set by SIGINT/SIGTERM/SIGHUP: runs stop, QEMU is killed, scratch files are removed.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// The QEMUs `Qemu::run` is waiting for: the signal handler kills them, so the wait (one
/// `wait_timeout` for the whole time limit) returns at once.
static RUNNING: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// Installs the signal handler (once, at start). ctrlc runs it on its own thread, not in
/// signal context, so it may lock.
pub fn catch_signals() -> Result<()> {
    ctrlc::set_handler(|| {
        INTERRUPTED.store(true, Ordering::SeqCst);
        let running = RUNNING.lock().unwrap_or_else(PoisonError::into_inner);
        for &pid in running.iter() {
            kill(pid);
        }
    })
    .context("cannot install the signal handler")
}

/// SIGKILL to a QEMU in `RUNNING`.
fn kill(pid: u32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: kill(2) takes any pid and signal number and touches no memory of ours. The
    // pid is a child the runner has not reaped: it leaves `RUNNING` as soon as its wait
    // returns (the window between the reap and the removal is microseconds, far shorter
    // than the kernel takes to hand a pid out again).
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
}

/// A QEMU listed in `RUNNING` while it lives.
struct Registered(u32);

impl Registered {
    fn new(pid: u32) -> Registered {
        RUNNING
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(pid);
        // A signal that came before the listing found nothing to kill: do it here.
        if INTERRUPTED.load(Ordering::SeqCst) {
            kill(pid);
        }
        Registered(pid)
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        RUNNING
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|&p| p != self.0);
    }
}

pub const INTERRUPTED_MSG: &str = "interrupted by a signal: QEMU stopped, scratch files removed";

/// The error of a run stopped by a signal (the xtask exits 130 on it).
#[derive(Debug)]
pub struct Interrupted;

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(INTERRUPTED_MSG)
    }
}

impl std::error::Error for Interrupted {}

/// Forgets a signal: under `cargo xtask gdb`, the terminal's Ctrl-C belongs to gdb.
pub fn clear_interrupted() {
    INTERRUPTED.store(false, Ordering::SeqCst);
}

/// An error once a signal has arrived, so long commands stop between steps.
pub fn check_interrupted() -> Result<()> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        return Err(Interrupted.into());
    }
    Ok(())
}

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
    /// virtio-blk's `request-merging=off`: each request the driver sends reaches the block
    /// layer alone. QEMU otherwise merges adjacent requests submitted together, and one
    /// injected error then fails every request merged with the one it covers.
    pub no_merging: bool,
}

impl Disk {
    /// Parses `FILE[,ro]`.
    pub fn parse(spec: &str) -> Result<Disk> {
        let (file, read_only) = match spec.strip_suffix(",ro") {
            Some(f) => (f, true),
            None => (spec, false),
        };
        if file.is_empty() {
            return fail(format!("--disk expects FILE or FILE,ro, got '{spec}'"));
        }
        if file.contains(',') {
            return fail(format!(
                "--disk expects FILE or FILE,ro, got '{spec}': a path with a comma cannot be \
                 given (QEMU's -drive option separates its fields with commas); rename or link \
                 the image"
            ));
        }
        // Absolute, so QEMU never reads `name:rest` as a protocol prefix.
        let file = std::path::absolute(file)
            .map_err(|e| anyhow!("--disk {file}: cannot make the path absolute: {e}"))?;
        Ok(Disk {
            file,
            read_only,
            serial: None,
            blkdebug: None,
            aio: None,
            no_merging: false,
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

/// Default timeout of one QEMU run.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

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
            timeout: DEFAULT_TIMEOUT,
            singlestep: false,
            input: CONSOLE_FIXTURE.to_vec(),
        }
    }
}

pub struct Outcome {
    /// QEMU's exit status; None when it was killed (timeout) or died by a signal.
    pub status: Option<i32>,
    pub timed_out: bool,
    /// The guest console (QEMU's stdout), CRs removed.
    pub console: String,
    /// QEMU's own messages (its stderr), kept apart from the console.
    pub stderr: String,
}

impl Outcome {
    /// QEMU's own "terminating on signal N ..." line when something other than the kernel
    /// stopped it with a signal: QEMU then exits 0 as if the guest had halted cleanly.
    pub fn stopped_by_signal(&self) -> Option<&str> {
        self.stderr
            .lines()
            .find(|l| l.contains("terminating on signal"))
            .map(str::trim)
    }
}

/// Kills QEMU if the runner goes away early (a panic, an error return).
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Spawns `cmd` so that it dies with the xtask (PR_SET_PDEATHSIG: even if the xtask is
/// killed by SIGKILL, the child is never orphaned) and is killed when the handle drops.
pub fn spawn_owned(cmd: &mut Command) -> std::io::Result<KillOnDrop> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: the closure runs in the forked child before exec and only calls prctl(2),
        // which is async-signal-safe and touches no memory of ours.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    cmd.spawn().map(KillOnDrop)
}

impl Qemu {
    /// QEMU's arguments for `version` (the one-instruction-per-block option differs).
    pub fn args(&self, elf: &Path, version: Version) -> Vec<String> {
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
            a.extend(version.one_insn_per_tb_args().iter().map(|s| s.to_string()));
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
                "virtio-blk-device,drive=hd{i},bus=virtio-mmio-bus.{i},serial={serial}{}",
                if d.no_merging {
                    ",request-merging=off"
                } else {
                    ""
                }
            ));
        }
        a.extend(self.extra.iter().cloned());
        a
    }

    /// The command line as the user could type it (for logs and reports).
    pub fn command_line(&self, elf: &Path) -> Result<String> {
        let bin = binary()?;
        Ok(format!(
            "{} {}",
            bin.path.display(),
            self.args(elf, bin.version).join(" ")
        ))
    }

    /// Boots `elf`; with `echo`, the console streams to our stdout as it arrives and QEMU's
    /// own messages to our stderr, each whole line prefixed `qemu: ` and never inside a
    /// console line.
    pub fn run(&self, elf: &Path, echo: bool) -> Result<Outcome> {
        self.run_watched(elf, echo, None)
    }

    /// `run`, with `watch` called on every whole console line as it arrives (the benchmark's
    /// progress bar follows the guest's `bench progress` lines through it).
    pub fn run_watched(&self, elf: &Path, echo: bool, watch: Option<Watch>) -> Result<Outcome> {
        check_interrupted()?;
        let bin = binary()?;
        let mut cmd = Command::new(&bin.path);
        cmd.args(self.args(elf, bin.version))
            .stdin(if self.input.is_empty() {
                Stdio::null()
            } else {
                Stdio::piped()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = spawn_owned(&mut cmd)
            .with_context(|| format!("cannot start {}", bin.path.display()))?;
        let registered = Registered::new(child.0.id());
        // Kept open until QEMU exits: at EOF QEMU's stdio backend would stop reading.
        let mut stdin = child.0.stdin.take();
        if let Some(s) = stdin.as_mut() {
            s.write_all(&self.input)
                .map_err(|e| anyhow!("cannot type into QEMU's console: {e}"))?;
            s.flush()
                .map_err(|e| anyhow!("cannot type into QEMU's console: {e}"))?;
        }
        let echo = echo.then(|| Arc::new(Mutex::new(Echo::default())));
        let console = Arc::new(Mutex::new(Vec::<u8>::new()));
        let stderr = Arc::new(Mutex::new(Vec::<u8>::new()));
        let (done_tx, done_rx) = mpsc::channel();
        let stdout = child.0.stdout.take().context("QEMU's stdout is piped")?;
        let qemu_stderr = child.0.stderr.take().context("QEMU's stderr is piped")?;
        let mut watch = watch;
        for (stream, sink, is_stderr) in [
            (
                Box::new(stdout) as Box<dyn Read + Send>,
                Arc::clone(&console),
                false,
            ),
            (
                Box::new(qemu_stderr) as Box<dyn Read + Send>,
                Arc::clone(&stderr),
                true,
            ),
        ] {
            let echo = echo.clone();
            let watch = if is_stderr { None } else { watch.take() };
            let done = done_tx.clone();
            std::thread::spawn(move || {
                pump(stream, &sink, echo.as_deref(), is_stderr, watch);
                let _ = done.send(());
            });
        }
        drop(done_tx);
        // One wait for the whole time limit: a signal ends it early by killing QEMU
        // (`catch_signals`).
        let (status, timed_out) = match child
            .0
            .wait_timeout(self.timeout)
            .context("waiting for QEMU")?
        {
            Some(s) => (s.code(), false),
            None => {
                let _ = child.0.kill();
                let _ = child.0.wait();
                (None, true)
            }
        };
        drop(registered);
        drop(stdin);
        // QEMU may itself have died of the terminal's SIGINT before the handler ran.
        let interrupted = INTERRUPTED.load(Ordering::SeqCst);
        // The readers end when the pipes close; one that a stray grandchild of QEMU still
        // holds open is left behind after 2 s rather than stall the xtask.
        let grace = std::time::Instant::now() + Duration::from_secs(2);
        for _ in 0..2 {
            let left = grace.saturating_duration_since(std::time::Instant::now());
            if done_rx.recv_timeout(left).is_err() {
                break;
            }
        }
        if let Some(e) = &echo {
            e.lock().unwrap_or_else(PoisonError::into_inner).finish();
        }
        if interrupted {
            return Err(Interrupted.into());
        }
        let text = |b: &Mutex<Vec<u8>>| {
            String::from_utf8_lossy(&b.lock().unwrap_or_else(PoisonError::into_inner))
                .replace('\r', "")
        };
        Ok(Outcome {
            status,
            timed_out,
            console: text(&console),
            stderr: text(&stderr),
        })
    }
}

/// Live echo of both streams: QEMU's messages wait until the console is at a line start.
#[derive(Default)]
struct Echo {
    console_mid_line: bool,
    /// QEMU's messages not yet shown, and the unfinished last one.
    pending: Vec<u8>,
}

impl Echo {
    fn console(&mut self, chunk: &[u8]) {
        let chunk: Vec<u8> = chunk.iter().copied().filter(|&b| b != b'\r').collect();
        if chunk.is_empty() {
            return;
        }
        let mut out = std::io::stdout();
        let _ = out.write_all(&chunk);
        let _ = out.flush();
        self.console_mid_line = chunk.last() != Some(&b'\n');
        self.show_messages(false);
    }

    fn messages(&mut self, chunk: &[u8]) {
        self.pending.extend(chunk.iter().filter(|&&b| b != b'\r'));
        self.show_messages(false);
    }

    /// Shows every complete message line (all of them with `all`) if the console is at a
    /// line start.
    fn show_messages(&mut self, all: bool) {
        if self.console_mid_line && !all {
            return;
        }
        let upto = if all {
            self.pending.len()
        } else {
            self.pending
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |p| p + 1)
        };
        if upto == 0 {
            return;
        }
        let text: Vec<u8> = self.pending.drain(..upto).collect();
        let mut err = std::io::stderr();
        if self.console_mid_line {
            let _ = err.write_all(b"\n");
        }
        for line in String::from_utf8_lossy(&text).lines() {
            let _ = writeln!(err, "qemu: {line}");
        }
    }

    fn finish(&mut self) {
        self.show_messages(true);
    }
}

/// Called with each whole console line (without its newline) as it arrives.
pub type Watch = Box<dyn FnMut(&str) + Send>;

fn pump(
    mut stream: Box<dyn Read + Send>,
    sink: &Mutex<Vec<u8>>,
    echo: Option<&Mutex<Echo>>,
    is_stderr: bool,
    mut watch: Option<Watch>,
) {
    let mut buf = [0u8; 4096];
    let mut line = Vec::new();
    loop {
        match stream.read(&mut buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if let Some(watch) = watch.as_mut() {
                    for &b in &buf[..n] {
                        if b == b'\n' {
                            watch(String::from_utf8_lossy(&line).trim_end_matches('\r'));
                            line.clear();
                        } else {
                            line.push(b);
                        }
                    }
                }
                sink.lock()
                    .expect("output lock")
                    .extend_from_slice(&buf[..n]);
                if let Some(echo) = echo {
                    let mut e = echo.lock().unwrap_or_else(PoisonError::into_inner);
                    if is_stderr {
                        e.messages(&buf[..n]);
                    } else {
                        e.console(&buf[..n]);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_specs() {
        let d = Disk::parse("a.img,ro").unwrap();
        assert!(d.read_only && d.file.is_absolute() && d.file.ends_with("a.img"));
        // A colon in a relative name is not a QEMU protocol once the path is absolute.
        assert!(Disk::parse("vm:1.img").unwrap().file.starts_with("/"));
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
        let a = q.args(Path::new("k.elf"), Version::new(7, 2, 22)).join(" ");
        assert!(a.contains("-action panic=exit-failure"));
        assert!(a.contains("x.img,format=raw,readonly=on"));
        assert!(a.contains("drive=hd1,bus=virtio-mmio-bus.1"));
    }

    #[test]
    fn versions_parse_and_pick_the_one_insn_option() {
        let v72 = Version::parse(
            "QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18)\nCopyright",
        )
        .unwrap();
        assert_eq!(v72, Version::new(7, 2, 22));
        let v10 = Version::parse("QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2)").unwrap();
        assert_eq!(v10, Version::new(10, 0, 2));
        assert_eq!(
            Version::parse("QEMU emulator version 9.1"),
            Some(Version::new(9, 1, 0))
        );
        assert_eq!(Version::parse("qemu-system-m68k: no version here"), None);
        assert_eq!(Version::parse(""), None);
        // QEMU 9.0 removed -singlestep (docs/about/removed-features.rst); 8.1 added the accel property.
        assert_eq!(v72.one_insn_per_tb_args(), ["-singlestep"]);
        assert_eq!(
            v10.one_insn_per_tb_args(),
            ["-accel", "tcg,one-insn-per-tb=on"]
        );
        let q = Qemu {
            singlestep: true,
            ..Qemu::default()
        };
        assert!(q
            .args(Path::new("k"), v10)
            .join(" ")
            .contains("-accel tcg,one-insn-per-tb=on"));
        assert!(!q
            .args(Path::new("k"), v10)
            .contains(&"-singlestep".to_string()));
    }

    #[test]
    fn qemu_messages_never_split_a_console_line() {
        let mut e = Echo::default();
        e.console(b"test a ... ");
        e.messages(b"warning: x\n");
        assert_eq!(
            e.pending, b"warning: x\n",
            "held while the console is mid-line"
        );
        e.console(b"ok\n");
        assert!(e.pending.is_empty(), "shown at the line start");
        e.messages(b"partial");
        e.finish();
        assert!(e.pending.is_empty());
    }
}
