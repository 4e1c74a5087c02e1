//! The build pipeline: Rust -> wasm -> (validated) -> wasm2c C -> natural-order memory
//! rewrite -> m68k-linux-gnu-gcc with the machine layer -> m68k-linux-gnu-ld -> kernel.elf.
//!
//! Incremental: each step records a hash of everything it read (file contents, flags, tool
//! versions) in a stamp file beside its output, and is skipped when the hash is unchanged.

use crate::deps::WASM_TARGET;
use crate::rewrite::{self, RewriteError, PINNED_WABT};
use crate::{fail, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;

pub struct Paths {
    pub root: PathBuf,
    pub out: PathBuf,
}

impl Paths {
    pub fn new() -> Paths {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("xtask lives in the workspace")
            .to_path_buf();
        let out = root.join("target").join("m68k");
        Paths { root, out }
    }
    pub fn elf(&self) -> PathBuf {
        self.out.join("kernel.elf")
    }
    fn wasm(&self) -> PathBuf {
        self.root
            .join("target")
            .join(WASM_TARGET)
            .join("release")
            .join("kernel.wasm")
    }
}

/// wasm features beyond MVP + mutable globals, all refused (wasm32v1-none emits none of them;
/// bulk memory in particular would hit wasm2c 1.0.32 helpers that are wrong on big-endian).
const VALIDATE_FLAGS: &[&str] = &[
    "--disable-bulk-memory",
    "--disable-multi-value",
    "--disable-sign-extension",
    "--disable-saturating-float-to-int",
    "--disable-reference-types",
    "--disable-simd",
];

const CFLAGS: &[&str] = &[
    // Runs on the 68020, 68030, 68040 and 68060: in particular no 64-bit mulu.l/muls.l/divu.l/
    // divs.l, which the 68060 lacks (GCC calls boot/int64.c's helpers instead; checked after
    // the link, see check_no_wide_muldiv).
    "-m68020-60",
    "-O2",
    "-g",
    "-std=gnu11",
    "-ffreestanding",
    "-nostdinc",
    "-fno-pic",
    "-fno-pie",
    "-fno-common",
    "-fno-stack-protector",
    "-fno-strict-aliasing",
    "-fexcess-precision=standard",
    "-DWASM_RT_MEMCHECK_SIGNAL_HANDLER=0",
    "-DWASM_RT_SKIP_SIGNAL_RECOVERY=1",
    "-DWASM_RT_USE_STACK_DEPTH_COUNT=1",
    "-DWASM_RT_MAX_CALL_STACK_DEPTH=1000",
];
const OWN_CODE_WARNINGS: &[&str] = &["-Wall", "-Wextra", "-Werror"];

pub fn hash_files(files: &[PathBuf], extra: &str) -> Result<u64> {
    let mut bytes = extra.as_bytes().to_vec();
    for f in files {
        bytes.extend_from_slice(f.to_string_lossy().as_bytes());
        bytes.extend(fs::read(f).map_err(|e| format!("cannot read {}: {e}", f.display()))?);
    }
    Ok(rewrite::fnv1a64(&bytes))
}

/// Runs `work` unless `stamp` records `hash` and every output exists.
fn step(
    stamp: &Path,
    hash: u64,
    outputs: &[&Path],
    work: impl FnOnce() -> Result<()>,
) -> Result<bool> {
    let current = fs::read_to_string(stamp).ok();
    if current.as_deref() == Some(&format!("{hash:016x}")) && outputs.iter().all(|o| o.exists()) {
        return Ok(false);
    }
    let _ = fs::remove_file(stamp);
    work()?;
    fs::write(stamp, format!("{hash:016x}"))
        .map_err(|e| format!("cannot write {}: {e}", stamp.display()))?;
    Ok(true)
}

fn output_of(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if !out.status.success() {
        return fail(format!(
            "{cmd:?} failed ({})\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn wabt_version() -> Result<String> {
    Ok(output_of(Command::new("wasm2c").arg("--version"))?
        .trim()
        .to_string())
}

fn gcc_include_dir() -> Result<String> {
    Ok(
        output_of(Command::new("m68k-linux-gnu-gcc").arg("-print-file-name=include"))?
            .trim()
            .to_string(),
    )
}

fn libgcc() -> Result<String> {
    Ok(
        output_of(Command::new("m68k-linux-gnu-gcc").arg("-print-libgcc-file-name"))?
            .trim()
            .to_string(),
    )
}

/// wasm2c's runtime header, copied from the installed wabt so it always matches wasm2c.
fn installed_wasm_rt_header() -> Result<PathBuf> {
    for p in [
        "/usr/include/wasm-rt.h",
        "/usr/share/wabt/wasm2c/wasm-rt.h",
        "/usr/local/include/wasm-rt.h",
    ] {
        if Path::new(p).is_file() {
            return Ok(PathBuf::from(p));
        }
    }
    fail("wasm-rt.h not found: is the Debian package wabt installed completely?".to_string())
}

fn list_dir(dir: &Path, ext: &str) -> Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(|e| format!("cannot list {}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    v.sort();
    Ok(v)
}

/// Builds kernel.elf; returns its path.
pub fn build(paths: &Paths) -> Result<PathBuf> {
    fs::create_dir_all(&paths.out)
        .map_err(|e| format!("cannot create {}: {e}", paths.out.display()))?;

    // 1. Rust -> wasm (cargo is incremental by itself).
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--quiet",
            "-p",
            "kernel",
            "--release",
            "--target",
            WASM_TARGET,
        ])
        .current_dir(&paths.root)
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return fail("cargo build of the kernel for wasm32v1-none failed".to_string());
    }

    // 2. validate, wasm2c, rewrite.
    let wabt = wabt_version()?;
    let kernel_c = paths.out.join("kernel.c");
    let kernel_h = paths.out.join("kernel.h");
    let wasm_rt_h = paths.out.join("wasm-rt.h");
    let wasm = paths.wasm();
    let c_hash = hash_files(
        &[wasm.clone(), paths.root.join("xtask/src/memory_model.h")],
        &format!(
            "{wabt} {:x} {}",
            rewrite::PINNED_BLOCK_HASH,
            VALIDATE_FLAGS.join(" ")
        ),
    )?;
    step(
        &paths.out.join("kernel.c.stamp"),
        c_hash,
        &[&kernel_c, &kernel_h, &wasm_rt_h],
        || translate(&wasm, &paths.out, &wabt),
    )?;

    // 3. compile the generated C and the machine layer (concurrently: kernel.c dominates).
    let gcc_inc = gcc_include_dir()?;
    let boot = paths.root.join("boot");
    let mut headers = list_dir(&boot.join("include"), "h")?;
    headers.extend(list_dir(&boot, "h")?);
    headers.push(kernel_h.clone());
    headers.push(wasm_rt_h.clone());
    let mut units: Vec<(PathBuf, bool)> = vec![(kernel_c.clone(), false)];
    for src in list_dir(&boot, "c")?
        .into_iter()
        .chain(list_dir(&boot, "S")?)
    {
        units.push((src, true));
    }
    let mut jobs = Vec::new();
    let mut objects = Vec::new();
    for (src, own) in units {
        let stem = src.file_stem().unwrap().to_string_lossy().into_owned();
        let ext = src.extension().unwrap().to_string_lossy().into_owned();
        let obj = paths.out.join(format!("{stem}.{ext}.o"));
        objects.push(obj.clone());
        let mut args: Vec<String> = CFLAGS.iter().map(|s| s.to_string()).collect();
        if own {
            args.extend(OWN_CODE_WARNINGS.iter().map(|s| s.to_string()));
        }
        args.extend([
            "-isystem".into(),
            gcc_inc.clone(),
            "-I".into(),
            boot.join("include").display().to_string(),
            "-I".into(),
            boot.display().to_string(),
            "-I".into(),
            paths.out.display().to_string(),
            "-c".into(),
            src.display().to_string(),
            "-o".into(),
            obj.display().to_string(),
        ]);
        let mut inputs = vec![src.clone()];
        inputs.extend(headers.iter().cloned());
        let hash = hash_files(&inputs, &args.join(" "))?;
        let stamp = paths.out.join(format!("{stem}.{ext}.o.stamp"));
        jobs.push(thread::spawn(move || {
            step(&stamp, hash, &[&obj], || {
                output_of(Command::new("m68k-linux-gnu-gcc").args(&args)).map(|_| ())
            })
        }));
    }
    for job in jobs {
        job.join()
            .map_err(|_| "a compile thread panicked".to_string())??;
    }

    // 4. link.
    let elf = paths.elf();
    let script = paths.root.join("linker.ld");
    let lib = libgcc()?;
    let mut inputs = objects.clone();
    inputs.push(script.clone());
    let hash = hash_files(&inputs, &lib)?;
    let map = paths.out.join("kernel.map");
    step(&paths.out.join("kernel.elf.stamp"), hash, &[&elf], || {
        let mut cmd = Command::new("m68k-linux-gnu-ld");
        cmd.arg("-T")
            .arg(&script)
            .arg("-nostdlib")
            .arg("-Map")
            .arg(&map)
            .arg("-o")
            .arg(&elf);
        cmd.args(&objects).arg(&lib);
        output_of(&mut cmd)?;
        let found = wide_muldiv(&output_of(
            Command::new("m68k-linux-gnu-objdump").arg("-d").arg(&elf),
        )?);
        if !found.is_empty() {
            let _ = fs::remove_file(&elf);
            return fail(format!(
                "kernel.elf contains {} 64-bit multiply/divide instruction(s), which the 68060 \
                 lacks (built with -m68020-60? a libgcc helper not replaced by boot/int64.c?):\n  {}",
                found.len(),
                found.join("\n  ")
            ));
        }
        Ok(())
    })?;
    Ok(elf)
}

/// The 64-bit forms of mulu.l/muls.l (64-bit product, Dh:Dl) and divu.l/divs.l (64-bit
/// dividend, Dr:Dq) in `objdump -d` output, as "function: line". Decided by the encoding,
/// not the mnemonic: the first word 0x4c00-0x4c3f (mul.l) or 0x4c40-0x4c7f (div.l), and
/// bit 10 (size) of the extension word (MC68000 family programmer's reference manual).
pub fn wide_muldiv(disassembly: &str) -> Vec<String> {
    let mut function = "?";
    let mut found = Vec::new();
    for line in disassembly.lines() {
        if let Some(name) = line
            .strip_suffix(">:")
            .and_then(|l| l.split_once(" <"))
            .map(|(_, name)| name)
        {
            function = name;
            continue;
        }
        // "  addr:\tWORD WORD ...\tmnemonic operands"
        let mut fields = line.split('\t');
        let (Some(addr), Some(hex), Some(text)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if !addr.trim_end().ends_with(':') {
            continue;
        }
        let words: Vec<u16> = hex
            .split_whitespace()
            .map_while(|w| u16::from_str_radix(w, 16).ok())
            .collect();
        if let [op, ext, ..] = words[..] {
            if op & 0xff80 == 0x4c00 && ext & 0x0400 != 0 {
                found.push(format!("{function}: {}", text.trim()));
            }
        }
    }
    found
}

/// wasm -> validated -> C with the natural-order memory model.
fn translate(wasm: &Path, out: &Path, wabt: &str) -> Result<()> {
    let v = Command::new("wasm-validate")
        .args(VALIDATE_FLAGS)
        .arg(wasm)
        .output()
        .map_err(|e| format!("cannot run wasm-validate: {e}"))?;
    if !v.status.success() {
        return fail(format!(
            "kernel.wasm uses a wasm feature beyond MVP + mutable globals, which this route refuses:\n{}",
            String::from_utf8_lossy(&v.stderr)
        ));
    }
    let raw_c = out.join("kernel.raw.c");
    output_of(
        Command::new("wasm2c")
            .arg(wasm)
            .arg("-n")
            .arg("kernel")
            .arg("-o")
            .arg(&raw_c),
    )?;
    // wasm2c names the header after -o; ours must be kernel.h.
    fs::rename(out.join("kernel.raw.h"), out.join("kernel.h"))
        .map_err(|e| format!("kernel.h: {e}"))?;
    let c = fs::read_to_string(&raw_c).map_err(|e| format!("{}: {e}", raw_c.display()))?;
    let c = c.replace("#include \"kernel.raw.h\"", "#include \"kernel.h\"");
    let rewritten = match rewrite::rewrite(&c) {
        Ok(c) => c,
        Err(RewriteError::NoBlock) => {
            return fail(format!(
                "wasm2c's output has no memory-model block where wabt {PINNED_WABT} puts one; \
                 found {wabt}. This route is pinned to wabt {PINNED_WABT} (Debian bookworm's package)."
            ))
        }
        Err(RewriteError::UnknownBlock { hash }) => {
            return fail(format!(
                "wasm2c's memory-model block differs from wabt {PINNED_WABT}'s (hash {hash:016x}, \
                 pinned {:016x}); found {wabt}. Refusing to rewrite an unknown memory layout: \
                 install Debian bookworm's wabt {PINNED_WABT}.",
                rewrite::PINNED_BLOCK_HASH
            ))
        }
    };
    let header = fs::read_to_string(out.join("kernel.h")).map_err(|e| format!("kernel.h: {e}"))?;
    if !header.contains("w2c___stack_pointer;") {
        return fail(
            "kernel.h has no w2c___stack_pointer field: the machine layer's red-zone guard needs \
             the wasm name section (do not strip the kernel's wasm)"
                .to_string(),
        );
    }
    fs::write(out.join("kernel.c"), rewritten).map_err(|e| format!("kernel.c: {e}"))?;
    let _ = fs::remove_file(&raw_c);
    fs::copy(installed_wasm_rt_header()?, out.join("wasm-rt.h"))
        .map_err(|e| format!("wasm-rt.h: {e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::wide_muldiv;

    #[test]
    fn finds_only_the_64_bit_forms() {
        // Lines as m68k-linux-gnu-objdump 2.40 prints them, for instructions assembled from
        // their Motorola forms (comment): flagged are Dh:Dl products and Dr:Dq dividends.
        let dis = "\
00001000 <f>:
    1000:\t4c01 2000      \tmulul %d1,%d2
    1004:\t4c01 2403      \tmulul %d1,%d3,%d2
    1008:\t4c01 2800      \tmulsl %d1,%d2
    100c:\t4c01 2c03      \tmulsl %d1,%d3,%d2
00001010 <g>:
    1010:\t4c41 2002      \tdivull %d1,%d2,%d2
    1014:\t4c41 2403      \tdivul %d1,%d3,%d2
    1018:\t4c41 2003      \tdivull %d1,%d3,%d2
    101c:\t4c41 2c03      \tdivsl %d1,%d3,%d2
    1020:\t4c41 2803      \tdivsll %d1,%d3,%d2
    1024:\t4c3c 2403 0000 \tmulul #10,%d3,%d2
    102a:\t000a 
    102c:\t4cdf 0c0c      \tmoveml %sp@+,%d2-%d3/%a2-%a3
    1030:\t4e75           \trts
";
        assert_eq!(
            wide_muldiv(dis),
            [
                "f: mulul %d1,%d3,%d2",
                "f: mulsl %d1,%d3,%d2",
                "g: divul %d1,%d3,%d2",
                "g: divsl %d1,%d3,%d2",
                "g: mulul #10,%d3,%d2",
            ]
        );
    }
}
