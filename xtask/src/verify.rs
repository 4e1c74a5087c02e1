//! `cargo xtask verify`: the host half. Checks the user's images before QEMU sees them,
//! writes the blkdebug rules for `--inject`, and compares what the guest read (its per-MiB
//! CRC-32 lines, `console_proto::verify`) with the same checksums computed from the image
//! file, pass by pass; after `--write` it checks the file sector by sector against the
//! pattern.

use crate::{anyhow, fail, Result};
use console_proto::verify::{
    parse_line, write_pattern, Body, IoOp, Mode, Model, Pass, SECTORS_PER_MIB, SECTOR_BYTES,
};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// `--inject read:SECTOR[,SECTOR...]` or `write:...`: I/O errors QEMU's blkdebug injects on
/// requests of that type covering those 512-byte sectors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inject {
    pub op: IoOp,
    pub sectors: Vec<u64>,
}

impl Inject {
    /// Parses `read:N[,N...]` / `write:N[,N...]` (decimal sector numbers).
    pub fn parse(spec: &str) -> Result<Inject> {
        let usage = || {
            anyhow!("--inject expects read:SECTOR[,SECTOR...] or write:SECTOR[,SECTOR...] (512-byte sectors, decimal), got '{spec}'")
        };
        let (op, list) = spec.split_once(':').ok_or_else(usage)?;
        let op = IoOp::from_word(op).ok_or_else(usage)?;
        let sectors = list
            .split(',')
            .map(|s| {
                if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                s.parse::<u64>().ok()
            })
            .collect::<Option<Vec<u64>>>()
            .ok_or_else(usage)?;
        Ok(Inject { op, sectors })
    }
}

/// The injected sectors of each request type, from every `--inject`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Injected {
    pub read: BTreeSet<u64>,
    pub write: BTreeSet<u64>,
}

impl Injected {
    pub fn new(specs: &[Inject]) -> Injected {
        let mut i = Injected::default();
        for s in specs {
            match s.op {
                IoOp::Read => i.read.extend(&s.sectors),
                IoOp::Write => i.write.extend(&s.sectors),
            }
        }
        i
    }

    fn of(&self, op: IoOp) -> &BTreeSet<u64> {
        match op {
            IoOp::Read => &self.read,
            IoOp::Write => &self.write,
        }
    }

    /// QEMU blkdebug's configuration: one rule per sector, restricted to its request type
    /// (`iotype`), EIO every time (virtio-blk reports it as IOERR).
    pub fn blkdebug_rules(&self) -> String {
        let mut text = String::new();
        for (op, event, sectors) in [
            ("read", "read_aio", &self.read),
            ("write", "write_aio", &self.write),
        ] {
            for s in sectors {
                let _ = write!(
                    text,
                    "[inject-error]\nevent = \"{event}\"\niotype = \"{op}\"\nerrno = \"5\"\nsector = \"{s}\"\nonce = \"off\"\n\n"
                );
            }
        }
        text
    }

    /// Every sector lies on a disk of `sectors` sectors.
    pub fn check_capacity(&self, file: &Path, sectors: u64) -> Result<()> {
        for (op, set) in [("read", &self.read), ("write", &self.write)] {
            if let Some(&s) = set.iter().find(|&&s| s >= sectors) {
                return fail(format!(
                    "--inject {op}:{s}: sector {s} is past the end of {} ({sectors} sectors, 0..{})",
                    file.display(),
                    sectors - 1
                ));
            }
        }
        Ok(())
    }
}

/// Checks that `file` can be a disk at all: a regular file of at least one 512-byte sector.
/// Returns its size in bytes.
pub fn check_disk_file(file: &Path) -> Result<u64> {
    let m = std::fs::metadata(file).map_err(|e| anyhow!("--disk {}: {e}", file.display()))?;
    if m.is_dir() {
        return fail(format!(
            "--disk {}: is a directory, not a disk image",
            file.display()
        ));
    }
    if !m.is_file() {
        return fail(format!(
            "--disk {}: not a regular file (a raw image file is needed)",
            file.display()
        ));
    }
    let len = m.len();
    if len < SECTOR_BYTES {
        return fail(format!(
            "--disk {}: {len} bytes, less than one 512-byte sector: not a disk",
            file.display()
        ));
    }
    Ok(len)
}

/// Checks that `file` can be verified: a regular file of whole 512-byte sectors, at least
/// one. Returns its size in sectors. Errors say what is wrong and what QEMU would make of it.
pub fn check_image(file: &Path) -> Result<u64> {
    let len = check_disk_file(file)?;
    if len % SECTOR_BYTES != 0 {
        return fail(format!(
            "--disk {}: {len} bytes is not a whole number of 512-byte sectors ({} sectors and {} bytes over): QEMU would round it up and the last sector would read past the end of the file; cut or pad it to {} or {} bytes",
            file.display(),
            len / SECTOR_BYTES,
            len % SECTOR_BYTES,
            len / SECTOR_BYTES * SECTOR_BYTES,
            len.div_ceil(SECTOR_BYTES) * SECTOR_BYTES
        ));
    }
    Ok(len / SECTOR_BYTES)
}

/// CRC-32 (zlib's) of MiB `mib` of `file` (`sectors` long), each sector in `zeroed` counted
/// as 512 zero bytes.
pub fn host_crc(
    file: &mut std::fs::File,
    sectors: u64,
    mib: u64,
    zeroed: &BTreeSet<u64>,
) -> Result<u32> {
    let first = mib * SECTORS_PER_MIB;
    let n = SECTORS_PER_MIB.min(sectors.saturating_sub(first));
    let mut buf = vec![0u8; (n * SECTOR_BYTES) as usize];
    file.seek(SeekFrom::Start(first * SECTOR_BYTES))?;
    file.read_exact(&mut buf)?;
    for &s in zeroed.range(first..first + n) {
        let at = ((s - first) * SECTOR_BYTES) as usize;
        buf[at..at + SECTOR_BYTES as usize].fill(0);
    }
    Ok(crc32fast::hash(&buf))
}

/// One disk as the comparison sees it.
pub struct Image<'a> {
    pub slot: u32,
    pub file: &'a Path,
    pub sectors: u64,
}

/// What one pass over one disk came to.
#[derive(Default, Debug)]
struct PassResult {
    crcs: BTreeMap<u64, u32>,
    ioerr: Vec<(IoOp, u64, u64)>,
    bad: BTreeMap<IoOp, BTreeSet<u64>>,
    mismatch: BTreeSet<u64>,
    done: Option<(u64, String)>,
    errors: Vec<String>,
    malformed: Vec<String>,
}

/// The comparison's outcome: its report lines, and whether everything verified.
pub struct Verdict {
    pub ok: bool,
    /// One line per pass and disk, then a line per problem.
    pub summary: Vec<String>,
    /// A line per MiB and pass: guest and host checksums, match or MISMATCH.
    pub per_mib: Vec<String>,
    /// MiB/s per (disk, pass), as the guest measured it.
    pub rates: Vec<(u32, Pass, String)>,
}

/// Compares the guest's verify lines in `console` with `images` on the host. `passes` are
/// the passes asked for (the write pass first if any); `injected` the errors the user asked
/// for, which are expected and excused exactly (every other sector must verify).
pub fn compare(
    console: &str,
    images: &[Image<'_>],
    passes: &[Pass],
    injected: &Injected,
) -> Result<Verdict> {
    let mut seen: BTreeMap<(u32, Pass), PassResult> = BTreeMap::new();
    for line in console.lines() {
        let l = match parse_line(line) {
            Ok(Some(l)) => l,
            Ok(None) => continue,
            Err(e) => {
                let slot_pass = seen.entry((u32::MAX, Pass::READ_PASSES[0])).or_default();
                slot_pass.malformed.push(format!("{e}: {line}"));
                continue;
            }
        };
        let r = seen.entry((l.disk, l.pass)).or_default();
        match l.body {
            Body::Crc { mib, crc32 } => {
                if r.crcs.insert(mib, crc32).is_some() {
                    r.malformed.push(format!("MiB {mib} reported twice"));
                }
            }
            Body::IoErr {
                op,
                sector,
                sectors,
            } => r.ioerr.push((op, sector, sectors)),
            Body::Bad { op, sector } => {
                r.bad.entry(op).or_default().insert(sector);
            }
            Body::Mismatch { sector } => {
                r.mismatch.insert(sector);
            }
            Body::Progress { .. } => {}
            Body::Done { sectors, mib_s, .. } => r.done = Some((sectors, mib_s.to_string())),
            Body::Error(why) => r.errors.push(why.to_string()),
        }
    }
    let mut v = Verdict {
        ok: true,
        summary: Vec::new(),
        per_mib: Vec::new(),
        rates: Vec::new(),
    };
    let problem = |v: &mut Verdict, text: String| {
        v.ok = false;
        v.summary.push(format!("  {text}"));
    };
    if let Some(r) = seen.get(&(u32::MAX, Pass::READ_PASSES[0])) {
        for m in &r.malformed {
            problem(&mut v, format!("malformed verify line: {m}"));
        }
    }
    for img in images {
        let mut file = std::fs::File::open(img.file)
            .map_err(|e| anyhow!("cannot read {}: {e}", img.file.display()))?;
        let mibs = img.sectors.div_ceil(SECTORS_PER_MIB);
        // Each MiB's checksum without zeroed sectors, computed once for all passes.
        let mut plain: BTreeMap<u64, u32> = BTreeMap::new();
        for &pass in passes {
            let empty = PassResult::default();
            let r = seen.get(&(img.slot, pass)).unwrap_or(&empty);
            let name = format!("disk {} ({}) pass {pass}", img.slot, img.file.display());
            let op = if pass.mode == Mode::Write {
                IoOp::Write
            } else {
                IoOp::Read
            };
            for m in &r.malformed {
                problem(&mut v, format!("{name}: {m}"));
            }
            for e in &r.errors {
                problem(&mut v, format!("{name}: the guest stopped the pass: {e}"));
            }
            // I/O errors: exactly the requests covering an injected sector of their type.
            let want = injected.of(op);
            let mut covered = BTreeSet::new();
            for &(eop, sector, n) in &r.ioerr {
                let hits: Vec<u64> = injected
                    .of(eop)
                    .range(sector..sector + n)
                    .copied()
                    .collect();
                if eop != op || hits.is_empty() {
                    problem(
                        &mut v,
                        format!("{name}: I/O error on the {eop} of sectors {sector}..{} that no --inject asked for", sector + n),
                    );
                }
                covered.extend(hits);
            }
            for s in want.difference(&covered) {
                problem(
                    &mut v,
                    format!("{name}: injected {op} error at sector {s} was not reported"),
                );
            }
            let bad = r.bad.get(&op).cloned().unwrap_or_default();
            if bad != *want {
                problem(
                    &mut v,
                    format!(
                        "{name}: sectors failing alone {:?}, injected {:?}",
                        bad, want
                    ),
                );
            }
            if r.bad.keys().any(|&o| o != op) {
                problem(
                    &mut v,
                    format!("{name}: a failed sector of the other request type"),
                );
            }
            // Read-back against the write pattern (guest side): only unwritten sectors may differ.
            for s in r.mismatch.iter().filter(|s| !injected.write.contains(s)) {
                problem(
                    &mut v,
                    format!("{name}: sector {s} read back other than the pattern written"),
                );
            }
            if pass.mode == Mode::Write {
                match &r.done {
                    Some((_, rate)) => v.rates.push((img.slot, pass, rate.clone())),
                    None => problem(&mut v, format!("{name}: did not finish")),
                }
                v.summary.push(format!(
                    "{name}: {} sectors written{}",
                    img.sectors,
                    if want.is_empty() {
                        String::new()
                    } else {
                        format!(", {} failed as injected", want.len())
                    }
                ));
                continue;
            }
            let mut matched = 0u64;
            // Sectors of the MiBs whose checksums matched, less those unreadable as injected.
            let mut verified = 0u64;
            let mut mismatched = Vec::new();
            for mib in 0..mibs {
                let Some(&guest) = r.crcs.get(&mib) else {
                    continue;
                };
                let zeroed: BTreeSet<u64> = bad
                    .range(mib * SECTORS_PER_MIB..(mib + 1) * SECTORS_PER_MIB)
                    .copied()
                    .collect();
                let host = if zeroed.is_empty() {
                    match plain.get(&mib) {
                        Some(&c) => c,
                        None => {
                            let c = host_crc(&mut file, img.sectors, mib, &zeroed)?;
                            plain.insert(mib, c);
                            c
                        }
                    }
                } else {
                    host_crc(&mut file, img.sectors, mib, &zeroed)?
                };
                let verdict = if guest == host { "match" } else { "MISMATCH" };
                v.per_mib.push(format!(
                    "disk={} pass={pass} mib={mib} guest={guest:08x} host={host:08x} {verdict}{}",
                    img.slot,
                    if zeroed.is_empty() {
                        String::new()
                    } else {
                        format!(" (sectors {zeroed:?} unreadable, counted as zeros)")
                    }
                ));
                if guest == host {
                    matched += 1;
                    let in_mib =
                        ((mib + 1) * SECTORS_PER_MIB).min(img.sectors) - mib * SECTORS_PER_MIB;
                    verified += in_mib - zeroed.len() as u64;
                } else {
                    mismatched.push(mib);
                }
            }
            let missing = mibs - matched - mismatched.len() as u64;
            if r.crcs.keys().any(|&m| m >= mibs) {
                problem(
                    &mut v,
                    format!("{name}: checksums for MiBs past the end of the image"),
                );
            }
            for mib in &mismatched {
                problem(
                    &mut v,
                    format!("{name}: MiB {mib} (sectors {}..{}) MISMATCH: the guest read other bytes than the image holds", mib * SECTORS_PER_MIB, ((mib + 1) * SECTORS_PER_MIB).min(img.sectors)),
                );
            }
            if missing > 0 {
                problem(
                    &mut v,
                    format!("{name}: {missing} of {mibs} MiB never reported"),
                );
            }
            match &r.done {
                Some((n, rate)) if *n == img.sectors => {
                    v.rates.push((img.slot, pass, rate.clone()))
                }
                Some((n, _)) => problem(
                    &mut v,
                    format!(
                        "{name}: the guest saw {n} sectors, the image has {}",
                        img.sectors
                    ),
                ),
                None => problem(&mut v, format!("{name}: did not finish")),
            }
            v.summary.push(format!(
                "{name}: {matched}/{mibs} MiB match, {} mismatch; {verified} of {} sectors verified{}{}",
                mismatched.len(),
                img.sectors,
                if bad.is_empty() {
                    String::new()
                } else {
                    format!(
                        ", {} unreadable as injected (I/O errors on {} request(s): {})",
                        bad.len(),
                        r.ioerr.len(),
                        requests_text(&r.ioerr)
                    )
                },
                r.done
                    .as_ref()
                    .map_or(String::new(), |(_, rate)| format!(", {rate} MiB/s"))
            ));
        }
    }
    // Lines about passes or disks nobody asked for are a guest bug.
    for (slot, pass) in seen.keys() {
        if *slot != u32::MAX && (!passes.contains(pass) || !images.iter().any(|i| i.slot == *slot))
        {
            problem(
                &mut v,
                format!("lines for disk {slot} pass {pass}, which was not asked for"),
            );
        }
    }
    Ok(v)
}

/// `sectors A..B, C..D` for the failed requests (the first 8).
fn requests_text(reqs: &[(IoOp, u64, u64)]) -> String {
    let mut t: Vec<String> = reqs
        .iter()
        .take(8)
        .map(|(_, s, n)| format!("sectors {s}..{}", s + n))
        .collect();
    if reqs.len() > 8 {
        t.push("...".into());
    }
    t.join(", ")
}

/// After `--write`: every sector of `file` holds `write_pattern(seed, sector)`, except those
/// whose writes were injected to fail (not checked). Returns the report line, or an error
/// naming the first sectors that differ.
pub fn check_written(file: &Path, sectors: u64, seed: u32, skip: &BTreeSet<u64>) -> Result<String> {
    let mut f =
        std::fs::File::open(file).map_err(|e| anyhow!("cannot read {}: {e}", file.display()))?;
    let mut buf = vec![0u8; (SECTORS_PER_MIB * SECTOR_BYTES) as usize];
    let mut expected = [0u8; 512];
    let mut wrong = Vec::new();
    let mut checked = 0u64;
    let mut first = 0u64;
    while first < sectors {
        let n = SECTORS_PER_MIB.min(sectors - first);
        let chunk = &mut buf[..(n * SECTOR_BYTES) as usize];
        f.read_exact(chunk)
            .map_err(|e| anyhow!("cannot read {}: {e}", file.display()))?;
        for (i, got) in chunk.chunks_exact(SECTOR_BYTES as usize).enumerate() {
            let s = first + i as u64;
            if skip.contains(&s) {
                continue;
            }
            write_pattern(seed, s, &mut expected);
            if got != expected {
                wrong.push(s);
            }
            checked += 1;
        }
        first += n;
    }
    if !wrong.is_empty() {
        return fail(format!(
            "{}: {} sector(s) do not hold the pattern written (first: {:?})",
            file.display(),
            wrong.len(),
            &wrong[..wrong.len().min(10)]
        ));
    }
    Ok(format!(
        "{}: all {checked} sectors hold the pattern written (seed {seed}){}",
        file.display(),
        if skip.is_empty() {
            String::new()
        } else {
            format!("; {} not checked (injected write errors)", skip.len())
        }
    ))
}

/// The kernel option `verify_pass=` for `passes` (read passes only).
pub fn pass_option(passes: &[Pass]) -> String {
    passes
        .iter()
        .filter(|p| p.mode != Mode::Write)
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// The passes a run will print, in order: the write pass first with `write`.
pub fn expected_passes(read: &[Pass], write: bool) -> Vec<Pass> {
    let mut v = Vec::new();
    if write {
        v.push(Pass::new(Mode::Write, Model::None));
    }
    // The kernel runs them in READ_PASSES order, whatever order they were asked in.
    v.extend(Pass::READ_PASSES.iter().filter(|p| read.contains(p)));
    v
}

/// Parses one `--pass` value: `intr|polled` / `none|030|040`.
pub fn parse_pass(s: &str) -> Result<Pass> {
    match Pass::parse(s) {
        Some(p) if p.mode != Mode::Write => Ok(p),
        _ => fail(format!(
            "'{s}' is not a pass: MODE/MODEL with MODE intr or polled, MODEL none, 030 or 040 (e.g. intr/none)"
        )),
    }
}

/// Fills `file` with `bytes` bytes of a seeded xorshift sequence (random-looking data the
/// tests can make again).
pub fn fill_random(file: &Path, bytes: u64, seed: u64) -> Result<()> {
    use std::io::Write;
    let mut f = std::io::BufWriter::new(
        std::fs::File::create(file)
            .map_err(|e| anyhow!("cannot create {}: {e}", file.display()))?,
    );
    let mut x = seed | 1;
    let mut left = bytes;
    while left > 0 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let b = x.to_le_bytes();
        let n = left.min(8) as usize;
        f.write_all(&b[..n])?;
        left -= n as u64;
    }
    f.flush()?;
    Ok(())
}

/// zlib's crc32 (Python's `zlib.crc32`, not this crate's crc32fast) of each MiB of `file`:
/// the independent checksums the tests compare with.
pub fn python_crcs(file: &Path) -> Result<Vec<u32>> {
    let script = "import sys, zlib\n\
                  f = open(sys.argv[1], 'rb')\n\
                  while True:\n    b = f.read(1 << 20)\n    if not b: break\n    print('%08x' % zlib.crc32(b))\n";
    let out = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(file)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| anyhow!("cannot run python3 (the independent CRC-32): {e}"))?;
    if !out.status.success() {
        return fail(format!(
            "python3 zlib.crc32 failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| u32::from_str_radix(l, 16).map_err(|e| anyhow!("python3 printed '{l}': {e}")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use console_proto::verify::Line;

    fn line(disk: u32, pass: Pass, body: Body<'static>) -> String {
        Line { disk, pass, body }.to_string()
    }

    /// A console as the guest prints it for `passes` over an image whose MiB checksums are
    /// `crcs`, with `bad` sectors reported unreadable (their request of 128 sectors failed).
    fn console(crcs: &[u32], sectors: u64, passes: &[Pass], bad: &[u64]) -> String {
        let mut c = String::from("banner\n");
        for &p in passes {
            for &s in bad {
                let first = s / 128 * 128;
                c += &line(
                    0,
                    p,
                    Body::IoErr {
                        op: IoOp::Read,
                        sector: first,
                        sectors: 128,
                    },
                );
                c += "\n";
                c += &line(
                    0,
                    p,
                    Body::Bad {
                        op: IoOp::Read,
                        sector: s,
                    },
                );
                c += "\n";
            }
            for (mib, &crc32) in crcs.iter().enumerate() {
                c += &line(
                    0,
                    p,
                    Body::Crc {
                        mib: mib as u64,
                        crc32,
                    },
                );
                c += "\n";
            }
            c += &line(
                0,
                p,
                Body::Done {
                    sectors,
                    ns: 1_000_000_000,
                    mib_s: console_proto::bench::Fixed::from_scaled(10),
                },
            );
            c += "\n";
        }
        c
    }

    /// 2.5 MiB + 3 sectors: two whole MiBs and a partial one.
    const SECTORS: u64 = 2 * 2048 + 1024 + 3;

    fn image(dir: &Path) -> std::path::PathBuf {
        let f = dir.join("disk.img");
        fill_random(&f, SECTORS * 512, 42).unwrap();
        f
    }

    /// The host's checksums (crc32fast) are zlib's: Python's zlib.crc32 over the same MiBs,
    /// the partial last one included.
    #[test]
    fn host_checksums_are_zlibs() {
        let dir = tempfile::tempdir().unwrap();
        let f = image(dir.path());
        let want = python_crcs(&f).unwrap();
        assert_eq!(want.len(), 3);
        let mut file = std::fs::File::open(&f).unwrap();
        for (mib, w) in want.iter().enumerate() {
            assert_eq!(
                host_crc(&mut file, SECTORS, mib as u64, &BTreeSet::new()).unwrap(),
                *w,
                "MiB {mib}"
            );
        }
        // A zeroed sector is the checksum of the MiB with 512 zero bytes there (Python again).
        let zeroed = dir.path().join("zeroed.img");
        let mut bytes = std::fs::read(&f).unwrap();
        bytes[2048 * 512 + 7 * 512..2048 * 512 + 8 * 512].fill(0);
        std::fs::write(&zeroed, &bytes).unwrap();
        let want_zeroed = python_crcs(&zeroed).unwrap();
        assert_eq!(
            host_crc(&mut file, SECTORS, 1, &BTreeSet::from([2048 + 7])).unwrap(),
            want_zeroed[1]
        );
    }

    /// Guest lines carrying zlib's checksums verify; the same lines against a file that
    /// differs in one byte name that MiB and every pass, and nothing else.
    #[test]
    fn one_changed_byte_is_named_by_mib_and_pass() {
        let dir = tempfile::tempdir().unwrap();
        let f = image(dir.path());
        let crcs = python_crcs(&f).unwrap();
        let passes = [Pass::READ_PASSES[0], Pass::READ_PASSES[5]];
        let text = console(&crcs, SECTORS, &passes, &[]);
        let img = [Image {
            slot: 0,
            file: &f,
            sectors: SECTORS,
        }];
        let v = compare(&text, &img, &passes, &Injected::default()).unwrap();
        assert!(v.ok, "{:?}", v.summary);
        assert_eq!(
            v.per_mib.iter().filter(|l| l.ends_with(" match")).count(),
            6
        );
        // One byte of MiB 2 (the partial one) changes on the host.
        let mut bytes = std::fs::read(&f).unwrap();
        bytes[2 * 1024 * 1024 + 100] ^= 0x01;
        std::fs::write(&f, &bytes).unwrap();
        let v = compare(&text, &img, &passes, &Injected::default()).unwrap();
        assert!(!v.ok);
        let mismatches: Vec<&String> = v
            .summary
            .iter()
            .filter(|l| l.contains("MISMATCH"))
            .collect();
        assert_eq!(mismatches.len(), 2, "{:?}", v.summary);
        assert!(
            mismatches[0].contains("pass intr/none: MiB 2 "),
            "{}",
            mismatches[0]
        );
        assert!(
            mismatches[1].contains("pass polled/040: MiB 2 "),
            "{}",
            mismatches[1]
        );
        assert_eq!(
            v.per_mib.iter().filter(|l| l.ends_with("MISMATCH")).count(),
            2
        );
    }

    /// Injected read errors are excused exactly: the sectors injected, the requests covering
    /// them, every other sector verified. A missing, extra or wrongly placed error fails.
    #[test]
    fn injected_errors_are_excused_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let f = image(dir.path());
        let mut bytes = std::fs::read(&f).unwrap();
        for s in [100usize, 3000] {
            bytes[s * 512..(s + 1) * 512].fill(0);
        }
        let zeroed = dir.path().join("z.img");
        std::fs::write(&zeroed, &bytes).unwrap();
        // What the guest prints: the MiBs with the unreadable sectors as zeros.
        let crcs = python_crcs(&zeroed).unwrap();
        let passes = [Pass::READ_PASSES[1]];
        let img = [Image {
            slot: 0,
            file: &f,
            sectors: SECTORS,
        }];
        let injected = Injected::new(&[Inject::parse("read:100,3000").unwrap()]);
        let good = console(&crcs, SECTORS, &passes, &[100, 3000]);
        let v = compare(&good, &img, &passes, &injected).unwrap();
        assert!(v.ok, "{:?}", v.summary);
        assert!(
            v.summary[0].contains("5121 of 5123 sectors verified"),
            "{:?}",
            v.summary
        );
        assert!(
            v.summary[0].contains("sectors 0..128, sectors 2944..3072"),
            "{:?}",
            v.summary
        );
        // The same console, but only one sector was injected: the other error is unasked for.
        let one = Injected::new(&[Inject::parse("read:100").unwrap()]);
        assert!(!compare(&good, &img, &passes, &one).unwrap().ok);
        // Injected, but the guest saw no error there.
        let none = console(&python_crcs(&f).unwrap(), SECTORS, &passes, &[]);
        let v = compare(&none, &img, &passes, &injected).unwrap();
        assert!(!v.ok);
        assert!(
            v.summary
                .iter()
                .any(|l| l.contains("sector 100 was not reported")),
            "{:?}",
            v.summary
        );
        // A request failed that covers no injected sector (its sectors all read fine alone,
        // as when QEMU merged it with the failing one).
        let extra = format!(
            "{}\n{good}",
            line(
                0,
                passes[0],
                Body::IoErr {
                    op: IoOp::Read,
                    sector: 1024,
                    sectors: 128
                }
            )
        );
        let v = compare(&extra, &img, &passes, &injected).unwrap();
        assert!(!v.ok);
        assert!(
            v.summary
                .iter()
                .any(|l| l.contains("sectors 1024..1152 that no --inject asked for")),
            "{:?}",
            v.summary
        );
        // No errors asked for, none seen: fine.
        assert!(
            compare(&none, &img, &passes, &Injected::default())
                .unwrap()
                .ok
        );
    }

    #[test]
    fn a_pass_that_never_ends_or_stops_fails() {
        let dir = tempfile::tempdir().unwrap();
        let f = image(dir.path());
        let crcs = python_crcs(&f).unwrap();
        let passes = [Pass::READ_PASSES[0]];
        let img = [Image {
            slot: 0,
            file: &f,
            sectors: SECTORS,
        }];
        let full = console(&crcs, SECTORS, &passes, &[]);
        // Cut before the last MiB and the done line.
        let cut: String = full.lines().take(3).map(|l| format!("{l}\n")).collect();
        let v = compare(&cut, &img, &passes, &Injected::default()).unwrap();
        assert!(!v.ok);
        assert!(
            v.summary
                .iter()
                .any(|l| l.contains("1 of 3 MiB never reported")),
            "{:?}",
            v.summary
        );
        // Only the two MiBs that matched count as verified (the image's 5123 sectors: 2048
        // in each whole MiB).
        assert!(
            v.summary
                .iter()
                .any(|l| l.contains("; 4096 of 5123 sectors verified")),
            "{:?}",
            v.summary
        );
        let stopped =
            format!("{full}verify disk=0 pass=intr/none error: no completion after 5000000 us\n");
        assert!(
            !compare(&stopped, &img, &passes, &Injected::default())
                .unwrap()
                .ok
        );
        // A pass not asked for.
        let other = format!(
            "{full}{}\n",
            line(0, Pass::READ_PASSES[3], Body::Crc { mib: 0, crc32: 0 })
        );
        assert!(
            !compare(&other, &img, &passes, &Injected::default())
                .unwrap()
                .ok
        );
        // A malformed verify line.
        let bad = format!("{full}verify disk=0 pass=intr/none mib=0 crc32=zz\n");
        assert!(
            !compare(&bad, &img, &passes, &Injected::default())
                .unwrap()
                .ok
        );
    }

    #[test]
    fn written_files_are_checked_sector_by_sector() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("w.img");
        let mut bytes = Vec::new();
        let mut s = [0u8; 512];
        for sector in 0..40 {
            write_pattern(9, sector, &mut s);
            bytes.extend_from_slice(&s);
        }
        std::fs::write(&f, &bytes).unwrap();
        assert!(check_written(&f, 40, 9, &BTreeSet::new()).is_ok());
        assert!(
            check_written(&f, 40, 8, &BTreeSet::new()).is_err(),
            "another seed"
        );
        bytes[17 * 512 + 3] ^= 0x80;
        std::fs::write(&f, &bytes).unwrap();
        let e = check_written(&f, 40, 9, &BTreeSet::new())
            .unwrap_err()
            .to_string();
        assert!(e.contains("1 sector(s)") && e.contains("[17]"), "{e}");
        assert!(
            check_written(&f, 40, 9, &BTreeSet::from([17])).is_ok(),
            "an injected write error"
        );
    }

    #[test]
    fn inject_specs() {
        assert_eq!(
            Inject::parse("read:4096,12345").unwrap(),
            Inject {
                op: IoOp::Read,
                sectors: vec![4096, 12345]
            }
        );
        assert_eq!(Inject::parse("write:0").unwrap().op, IoOp::Write);
        for bad in [
            "",
            "read",
            "read:",
            "read:,1",
            "read:1,",
            "read:-1",
            "read:0x10",
            "flush:1",
            "READ:1",
            "read:1 2",
            "read:18446744073709551616",
        ] {
            assert!(Inject::parse(bad).is_err(), "{bad}");
        }
        let i = Injected::new(&[
            Inject::parse("read:5,3").unwrap(),
            Inject::parse("write:7").unwrap(),
            Inject::parse("read:3").unwrap(),
        ]);
        assert_eq!(i.read, BTreeSet::from([3, 5]));
        assert_eq!(
            i.blkdebug_rules(),
            "[inject-error]\nevent = \"read_aio\"\niotype = \"read\"\nerrno = \"5\"\nsector = \"3\"\nonce = \"off\"\n\n\
             [inject-error]\nevent = \"read_aio\"\niotype = \"read\"\nerrno = \"5\"\nsector = \"5\"\nonce = \"off\"\n\n\
             [inject-error]\nevent = \"write_aio\"\niotype = \"write\"\nerrno = \"5\"\nsector = \"7\"\nonce = \"off\"\n\n"
        );
        assert!(i.check_capacity(Path::new("d"), 8).is_ok());
        let e = i.check_capacity(Path::new("d"), 7).unwrap_err().to_string();
        assert!(e.contains("write:7") && e.contains("past the end"), "{e}");
    }

    #[test]
    fn odd_images_are_refused_with_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        let at = |n: &str| dir.path().join(n);
        for (name, len, why) in [
            ("z0", 0usize, "less than one 512-byte sector"),
            ("z511", 511, "less than one 512-byte sector"),
            ("z1000", 1000, "not a whole number of 512-byte sectors"),
        ] {
            std::fs::write(at(name), vec![0u8; len]).unwrap();
            let e = check_image(&at(name)).unwrap_err().to_string();
            assert!(e.contains(why), "{name}: {e}");
        }
        std::fs::write(at("ok"), vec![0u8; 1536]).unwrap();
        assert_eq!(check_image(&at("ok")).unwrap(), 3);
        assert!(check_image(dir.path())
            .unwrap_err()
            .to_string()
            .contains("directory"));
        assert!(check_image(&at("missing")).is_err());
    }
}
