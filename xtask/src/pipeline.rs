//! The build pipeline: Rust -> wasm -> (validated) -> wasm2c C -> natural-order memory
//! rewrite -> m68k-linux-gnu-gcc with the machine layer -> m68k-linux-gnu-ld -> kernel.elf.
//!
//! Incremental: each step records a hash of everything it read (file contents, flags, tool
//! versions) in a stamp file beside its output, and is skipped when the hash is unchanged.

use crate::deps::WASM_TARGET;
use crate::rewrite::{self, RewriteError, PINNED_WABT};
use crate::{anyhow, fail, Result};
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
    // Keeps wasm2c's guard block in force: `rewrite::stack_guard` replaces its counter with
    // the stack-pointer check (with 0 the generated code would have no guard at all).
    "-DWASM_RT_USE_STACK_DEPTH_COUNT=1",
    "-DWASM_RT_MAX_CALL_STACK_DEPTH=1000",
];
const OWN_CODE_WARNINGS: &[&str] = &["-Wall", "-Wextra", "-Werror"];

pub fn hash_files(files: &[PathBuf], extra: &str) -> Result<u64> {
    let mut bytes = extra.as_bytes().to_vec();
    for f in files {
        bytes.extend_from_slice(f.to_string_lossy().as_bytes());
        bytes.extend(fs::read(f).map_err(|e| anyhow!("cannot read {}: {e}", f.display()))?);
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
        .map_err(|e| anyhow!("cannot write {}: {e}", stamp.display()))?;
    Ok(true)
}

fn output_of(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .output()
        .map_err(|e| anyhow!("cannot run {cmd:?}: {e}"))?;
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
        .map_err(|e| anyhow!("cannot list {}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    v.sort();
    Ok(v)
}

/// Builds kernel.elf; returns its path.
pub fn build(paths: &Paths) -> Result<PathBuf> {
    fs::create_dir_all(&paths.out)
        .map_err(|e| anyhow!("cannot create {}: {e}", paths.out.display()))?;

    // A spinner naming the stage (on a terminal; hidden otherwise): the GCC step alone takes
    // minutes after a kernel change.
    let bar = indicatif::ProgressBar::new_spinner();
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{spinner} building kernel.elf: {msg} [{elapsed}]")
    {
        bar.set_style(style);
    }
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    let result = build_stages(paths, &bar);
    bar.finish_and_clear();
    result
}

fn build_stages(paths: &Paths, bar: &indicatif::ProgressBar) -> Result<PathBuf> {
    // 1. Rust -> wasm (cargo is incremental by itself).
    bar.set_message("cargo build -p kernel (Rust -> wasm)");
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
        .map_err(|e| anyhow!("cannot run cargo: {e}"))?;
    if !status.success() {
        return fail("cargo build of the kernel for wasm32v1-none failed".to_string());
    }

    // 2. validate, wasm2c, rewrite.
    let wabt = wabt_version()?;
    let kernel_c = paths.out.join("kernel.c");
    let kernel_h = paths.out.join("kernel.h");
    let wasm_rt_h = paths.out.join("wasm-rt.h");
    let wasm = paths.wasm();
    bar.set_message("wasm-validate, wasm2c, memory rewrite");
    let c_hash = hash_files(
        // The rewrites are the xtask's own code: a change to them is a change to kernel.c.
        &[
            wasm.clone(),
            paths.root.join("xtask/src/memory_model.h"),
            paths.root.join("xtask/src/rewrite.rs"),
            paths.root.join("xtask/src/pipeline.rs"),
        ],
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
    bar.set_message(format!(
        "m68k-linux-gnu-gcc ({} C and assembler files)",
        jobs.len()
    ));
    for job in jobs {
        job.join()
            .map_err(|_| anyhow!("a compile thread panicked"))??;
    }

    // 4. link.
    let elf = paths.elf();
    let script = paths.root.join("linker.ld");
    bar.set_message("m68k-linux-gnu-ld, 64-bit mul/div check");
    let lib = libgcc()?;
    let mut inputs = objects.clone();
    inputs.push(script.clone());
    let hash = hash_files(&inputs, &lib)?;
    let map = paths.out.join("kernel.map");
    step(&paths.out.join("kernel.elf.stamp"), hash, &[&elf], || {
        let link = |extra: Option<&Path>| -> Result<Vec<u8>> {
            let mut cmd = Command::new("m68k-linux-gnu-ld");
            cmd.arg("-T")
                .arg(&script)
                .arg("-nostdlib")
                // Keeps the relocations in kernel.elf: `bound_sites` reads them.
                .arg("--emit-relocs")
                .arg("-Map")
                .arg(&map)
                .arg("-o")
                .arg(&elf);
            cmd.args(&objects).args(extra).arg(&lib);
            output_of(&mut cmd)?;
            fs::read(&elf).map_err(|e| anyhow!("{}: {e}", elf.display()))
        };
        // Twice: the first link finds where the bounds checks' size placeholder was written,
        // the second carries that list (.bound_sites, last before .bss: no code moves).
        let sites = bound_sites(&link(None)?)?;
        let table = paths.out.join("bound_sites.S");
        fs::write(&table, bound_sites_asm(&sites))
            .map_err(|e| anyhow!("{}: {e}", table.display()))?;
        let table_o = paths.out.join("bound_sites.o");
        output_of(
            Command::new("m68k-linux-gnu-gcc")
                .arg("-c")
                .arg(&table)
                .arg("-o")
                .arg(&table_o),
        )?;
        let image = link(Some(&table_o))?;
        if bound_sites(&image)? != sites {
            let _ = fs::remove_file(&elf);
            return fail(
                "the second link moved the bounds checks' size fields (linker.ld must keep \
                 .bound_sites after the code)"
                    .to_string(),
            );
        }
        // What the machine layer will walk: the section's words, not the list they came from.
        if bound_sites_table(&image)? != sites {
            let _ = fs::remove_file(&elf);
            return fail(format!(
                "kernel.elf's .bound_sites does not list the {} bounds-check fields its \
                 relocations name ({})",
                sites.len(),
                table.display()
            ));
        }
        let sections = executable_sections(&image)?;
        let scan = |starts: &dyn Fn(u32) -> bool| -> Vec<u32> {
            sections
                .iter()
                .flat_map(|&(addr, code)| wide_muldiv(addr, code, starts))
                .collect()
        };
        // First with no look-alike excused; only if something is found, again with the
        // instruction starts objdump decodes (a look-alike is excused only behind a real one).
        let mut found = scan(&|_| false);
        if !found.is_empty() {
            let starts = instruction_starts(&elf)?;
            found = scan(&|a| starts.contains(&a));
        }
        if !found.is_empty() {
            let mut where_ = Vec::new();
            for addr in &found {
                let symbol = output_of(
                    Command::new("m68k-linux-gnu-addr2line")
                        .arg("-f")
                        .arg("-e")
                        .arg(&elf)
                        .arg(format!("{addr:#x}")),
                )
                .map(|o| o.lines().next().unwrap_or("?").to_string())
                .unwrap_or_else(|_| "?".into());
                where_.push(format!("{addr:#010x} in {symbol}"));
            }
            let _ = fs::remove_file(&elf);
            return fail(format!(
                "kernel.elf contains {} 64-bit multiply/divide instruction(s), which the 68060 \
                 lacks (built with -m68020-60? a libgcc helper not replaced by boot/int64.c?):\n  {}",
                found.len(),
                where_.join("\n  ")
            ));
        }
        Ok(())
    })?;
    Ok(elf)
}

/// The absolute symbol whose value the bounds checks compare with (xtask/src/memory_model.h):
/// a placeholder the machine layer replaces with linear memory's size (boot/runtime.c).
const BOUND_SYMBOL: &str = "__linear_memory_bound";

/// The addresses of the 32-bit fields in `elf`'s loaded sections that the linker filled with
/// [`BOUND_SYMBOL`] plus a constant, from the relocations `--emit-relocs` keeps, sorted.
/// Errors: no such symbol or no such field (the rewrite's checks would not be the ones the
/// machine layer patches), a relocation of another type than R_68K_32 (a field the patch
/// could not adjust by adding), a field not holding the symbol plus its addend, or an addend
/// of the placeholder's size or more (the placeholder would not be a safe stand-in).
pub fn bound_sites(elf: &[u8]) -> Result<Vec<u32>> {
    use object::{Object as _, ObjectSection as _, ObjectSymbol as _};
    let file = object::File::parse(elf).map_err(|e| anyhow!("kernel.elf: {e}"))?;
    let symbol = file
        .symbols()
        .find(|s| s.name() == Ok(BOUND_SYMBOL))
        .ok_or_else(|| anyhow!("kernel.elf has no symbol {BOUND_SYMBOL} (linker.ld)"))?;
    let placeholder = symbol.address() as u32;
    let mut sites = Vec::new();
    for section in file.sections() {
        let object::SectionFlags::Elf { sh_flags, .. } = section.flags() else {
            continue;
        };
        if !sh_flags.contains(object::elf::SHF_ALLOC) {
            continue;
        }
        let data = section.data().map_err(|e| anyhow!("kernel.elf: {e}"))?;
        for (at, rel) in section.relocations() {
            if rel.target() != object::RelocationTarget::Symbol(symbol.index()) {
                continue;
            }
            let at = at as u32;
            let r_type = match rel.flags() {
                object::RelocationFlags::Elf { r_type } => Some(r_type),
                _ => None,
            };
            let addend = rel.addend();
            let field = at
                .checked_sub(section.address() as u32)
                .and_then(|o| data.get(o as usize..o as usize + 4))
                .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
            let why = if r_type != Some(object::elf::R_68K_32) {
                "not a 32-bit field (R_68K_32): adding the size would not patch it"
            } else if field != Some(placeholder.wrapping_add(addend as u32)) {
                "the field does not hold the symbol plus the addend"
            } else if addend.unsigned_abs() >= u64::from(placeholder) {
                "the addend is as large as the placeholder: unpatched, it would admit more"
            } else {
                ""
            };
            if !why.is_empty() {
                return fail(format!(
                    "kernel.elf: the use of {BOUND_SYMBOL} at {at:#x} (relocation {r_type:?}, \
                     addend {addend}, field {field:x?}): {why}"
                ));
            }
            sites.push(at);
        }
    }
    if sites.is_empty() {
        return fail(format!(
            "kernel.elf: no bounds check uses {BOUND_SYMBOL} (xtask/src/memory_model.h)"
        ));
    }
    sites.sort_unstable();
    Ok(sites)
}

/// The words of `elf`'s `.bound_sites` section (what boot/runtime.c patches), in order.
pub fn bound_sites_table(elf: &[u8]) -> Result<Vec<u32>> {
    use object::{Object as _, ObjectSection as _};
    let file = object::File::parse(elf).map_err(|e| anyhow!("kernel.elf: {e}"))?;
    let section = file
        .section_by_name(".bound_sites")
        .ok_or_else(|| anyhow!("kernel.elf has no .bound_sites section (linker.ld)"))?;
    let data = section.data().map_err(|e| anyhow!("kernel.elf: {e}"))?;
    if data.len() % 4 != 0 {
        return fail(format!(
            "kernel.elf: .bound_sites is {} bytes, not whole words",
            data.len()
        ));
    }
    Ok(data
        .chunks_exact(4)
        .map(|w| u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
        .collect())
}

/// `.bound_sites` for linker.ld: one `.long` per site.
fn bound_sites_asm(sites: &[u32]) -> String {
    let mut out = String::from(
        "/* Generated by the xtask (pipeline::bound_sites): the fields boot/runtime.c patches. */\n\
         \t.section .bound_sites, \"a\"\n",
    );
    for s in sites {
        out.push_str(&format!("\t.long {s:#010x}\n"));
    }
    out
}

/// The 64-bit forms of mulu.l/muls.l (64-bit product, Dh:Dl) and divu.l/divs.l (64-bit
/// dividend, Dr:Dq) in `code` (loaded at `addr`), as addresses: an opcode word 0x4c00-0x4c3f
/// (mul.l) or 0x4c40-0x4c7f (div.l) followed by an extension word of the mul/div format
/// (bit 15 and bits 9-3 zero) with bit 10 (64-bit) set (MC68000 family programmer's
/// reference manual). Every even offset is tried, not just objdump's instruction boundaries:
/// a linear disassembly loses step after the jump tables GCC puts in .text, and could hide
/// an instruction behind one. Look-alikes are excused only where `starts` (objdump's decoded
/// instruction starts) has an instruction 4 bytes before, whose operand the words are: the
/// low half of an absolute long address after an opcode whose effective-address field
/// (bits 5-0) is `abs.l` (mode 7, register 1: `jsr`, `jmp`, `pea`, `lea`, `subq`, `tst`...),
/// as in `jsr wasm_rt_trap` once that function sat at 0x00144c60 and a `moveq #1,%d2`
/// (0x7401) followed: `4eb9 0014 4c60 7401`; or the low half of the 32-bit immediate of
/// ORI/ANDI/SUBI/ADDI/EORI/CMPI.L (`addil #-1094544,%d7`, a bounds check's limit: `0687 ffef
/// 4c70 2c00`); or the low half of a branch's 32-bit displacement (Bcc.L, BRA.L, BSR.L:
/// opcode `0x6?ff`), as in `bcsl` to the trap path 0xb3d8 bytes back and then `movel
/// %d1,%d2` (`65ff ffff 4c28 2401`); or the 16-bit displacement of a branch decoded 2 bytes before (Bcc.W, BRA.W,
/// BSR.W: opcode `0x6?00`, a zero low byte; DBcc: `0x5?c8`-`0x5?cf`), as in `bccw` over
/// 0x4c56 bytes and then `movel %d5,%d6` (`6400 4c56 2c05`). Without that decoded start the
/// same words could be an earlier instruction's displacement or immediate followed by a real
/// divide, which is reported.
pub fn wide_muldiv(addr: u32, code: &[u8], starts: &dyn Fn(u32) -> bool) -> Vec<u32> {
    let word = |i: usize| u16::from_be_bytes([code[i], code[i + 1]]);
    // ORI.L 0x0080, ANDI.L 0x0280, SUBI.L 0x0480, ADDI.L 0x0680, EORI.L 0x0a80, CMPI.L 0x0c80.
    let immediate_long = |op: u16| op & 0xf1c0 == 0x0080 && !matches!(op >> 9 & 7, 4 | 7);
    (0..code.len().saturating_sub(3))
        .step_by(2)
        .filter(|&i| {
            let (op, ext) = (word(i), word(i + 2));
            let low_half = i >= 4
                && (word(i - 4) & 0x003f == 0x0039
                    || immediate_long(word(i - 4))
                    || word(i - 4) & 0xf0ff == 0x60ff)
                && starts(addr + i as u32 - 4);
            let displacement = i >= 2
                && (word(i - 2) & 0xf0ff == 0x6000 || word(i - 2) & 0xf0f8 == 0x50c8)
                && starts(addr + i as u32 - 2);
            op & 0xff80 == 0x4c00
                && ext & 0x0400 != 0
                && ext & 0x83f8 == 0
                && !low_half
                && !displacement
        })
        .map(|i| addr + i as u32)
        .collect()
}

/// The addresses where objdump's linear disassembly of `elf` starts an instruction.
fn instruction_starts(elf: &Path) -> Result<std::collections::HashSet<u32>> {
    let listing = output_of(
        Command::new("m68k-linux-gnu-objdump")
            .arg("-d")
            .arg("--no-show-raw-insn")
            .arg(elf),
    )?;
    Ok(parse_instruction_starts(&listing))
}

/// The `   4d5f0:<TAB>addil ...` lines of an objdump listing, as addresses.
fn parse_instruction_starts(listing: &str) -> std::collections::HashSet<u32> {
    listing
        .lines()
        .filter_map(|l| {
            let (a, rest) = l.trim_start().split_once(':')?;
            if rest.starts_with('\t') {
                u32::from_str_radix(a, 16).ok()
            } else {
                None
            }
        })
        .collect()
}

/// The executable sections (SHF_EXECINSTR) of a 32-bit big-endian ELF file, as (address,
/// bytes).
pub fn executable_sections(elf: &[u8]) -> Result<Vec<(u32, &[u8])>> {
    let bad = || anyhow!("kernel.elf is not a 32-bit big-endian ELF file");
    if elf.len() < 52 || elf[..4] != *b"\x7fELF" || elf[4] != 1 || elf[5] != 2 {
        return Err(bad());
    }
    let u16_at = |o: usize| elf.get(o..o + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
    let u32_at = |o: usize| {
        elf.get(o..o + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    let shoff = u32_at(32).ok_or_else(bad)? as usize;
    let shentsize = u16_at(46).ok_or_else(bad)? as usize;
    let shnum = u16_at(48).ok_or_else(bad)? as usize;
    let mut out = Vec::new();
    for n in 0..shnum {
        let h = shoff + n * shentsize;
        let (Some(kind), Some(flags), Some(addr), Some(offset), Some(size)) = (
            u32_at(h + 4),
            u32_at(h + 8),
            u32_at(h + 12),
            u32_at(h + 16),
            u32_at(h + 20),
        ) else {
            return Err(bad());
        };
        const SHT_PROGBITS: u32 = 1;
        const SHF_EXECINSTR: u32 = 4;
        if kind == SHT_PROGBITS && flags & SHF_EXECINSTR != 0 {
            let code = elf
                .get(offset as usize..offset as usize + size as usize)
                .ok_or_else(bad)?;
            out.push((addr, code));
        }
    }
    Ok(out)
}

/// wasm -> validated -> C with the natural-order memory model.
fn translate(wasm: &Path, out: &Path, wabt: &str) -> Result<()> {
    let v = Command::new("wasm-validate")
        .args(VALIDATE_FLAGS)
        .arg(wasm)
        .output()
        .map_err(|e| anyhow!("cannot run wasm-validate: {e}"))?;
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
        .map_err(|e| anyhow!("kernel.h: {e}"))?;
    let c = fs::read_to_string(&raw_c).map_err(|e| anyhow!("{}: {e}", raw_c.display()))?;
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
    let rewritten = match rewrite::constant_offsets(&rewritten) {
        Some((c, _)) => c,
        None => {
            return fail(
                "wasm2c's output has no wasm_rt_allocate_memory call for the kernel's memory: \
                 cannot size the bounds checks (is this wabt 1.0.32?)"
                    .to_string(),
            )
        }
    };
    let Some(rewritten) = rewrite::stack_guard(&rewritten) else {
        return fail(format!(
            "wasm2c's output has no call-depth guard where wabt {PINNED_WABT} puts one: \
             cannot install the stack-pointer guard"
        ));
    };
    let Some((rewritten, _)) = rewrite::inline_barrier(&rewritten) else {
        return fail(format!(
            "wasm2c's output calls the machine layer's barrier in no form wabt {PINNED_WABT} \
             writes: cannot put the compiler barriers in place"
        ));
    };
    let header = fs::read_to_string(out.join("kernel.h")).map_err(|e| anyhow!("kernel.h: {e}"))?;
    if !header.contains("w2c___stack_pointer;") {
        return fail(
            "kernel.h has no w2c___stack_pointer field: the machine layer's red-zone guard needs \
             the wasm name section (do not strip the kernel's wasm)"
                .to_string(),
        );
    }
    fs::write(out.join("kernel.c"), rewritten).map_err(|e| anyhow!("kernel.c: {e}"))?;
    let _ = fs::remove_file(&raw_c);
    fs::copy(installed_wasm_rt_header()?, out.join("wasm-rt.h"))
        .map_err(|e| anyhow!("wasm-rt.h: {e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{bound_sites, executable_sections, parse_instruction_starts, wide_muldiv};

    /// `source` assembled and linked by GNU as and ld for the m68k (text at 0x1000, data at
    /// 0x2000) with --emit-relocs, as the xtask links, and the bound symbol at `bound` if any.
    fn linked(source: &str, bound: Option<u32>) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let (s, o, elf) = (
            dir.path().join("t.s"),
            dir.path().join("t.o"),
            dir.path().join("t"),
        );
        std::fs::write(&s, source).unwrap();
        let run = |cmd: &mut std::process::Command| {
            let out = cmd
                .output()
                .expect("GNU binutils for m68k-linux-gnu (xtask deps)");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        run(std::process::Command::new("m68k-linux-gnu-as")
            .arg("-m68040")
            .arg(&s)
            .arg("-o")
            .arg(&o));
        let mut ld = std::process::Command::new("m68k-linux-gnu-ld");
        ld.args([
            "--emit-relocs",
            "-Ttext=0x1000",
            "-Tdata=0x2000",
            "-e",
            "0x1000",
        ]);
        if let Some(b) = bound {
            ld.arg(format!("--defsym=__linear_memory_bound={b:#x}"));
        }
        run(ld.arg("-o").arg(&elf).arg(&o));
        std::fs::read(&elf).unwrap()
    }

    #[test]
    fn bound_sites_are_the_fields_the_linker_filled() {
        // Offsets from the MC68000 family programmer's reference manual: cmpi.l #imm,Dn is
        // one opcode word and a long immediate (field at +2), nop one word, lea abs.l,An one
        // word and a long address (field at +2).
        let elf = linked(
            "\t.text\n\
             \tcmpi.l #__linear_memory_bound-12,%d0\n\
             \tnop\n\
             \tlea __linear_memory_bound-1,%a0\n\
             \tcmpi.l #12345,%d0\n\
             \t.data\n\
             \t.long 0\n\
             \t.long __linear_memory_bound\n",
            Some(0x80_0000),
        );
        assert_eq!(bound_sites(&elf).unwrap(), [0x1002, 0x100a, 0x2004]);
    }

    #[test]
    fn the_bound_sites_table_is_read_back_word_by_word() {
        let sites = [0x1002, 0x100a, 0x2004];
        let elf = linked(
            &format!("\t.text\n\tnop\n{}", super::bound_sites_asm(&sites)),
            Some(0x80_0000),
        );
        assert_eq!(super::bound_sites_table(&elf).unwrap(), sites);
        let e = super::bound_sites_table(&linked("\t.text\n\tnop\n", Some(0x80_0000)))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no .bound_sites"), "{e}");
    }

    #[test]
    fn bound_sites_refuses_fields_it_cannot_patch() {
        let refused = |source: &str, bound: Option<u32>, why: &str| {
            let e = bound_sites(&linked(source, bound)).unwrap_err().to_string();
            assert!(e.contains(why), "{e}");
        };
        // A 16-bit field: adding a size to it would lose the high word.
        refused(
            "\t.text\n\tcmpi.l #__linear_memory_bound,%d0\n\t.word __linear_memory_bound\n",
            Some(0x4000),
            "at 0x1006 (relocation Some(2), addend 0, field None): not a 32-bit field",
        );
        // An addend as large as the placeholder: unpatched, the check would admit more.
        refused(
            "\t.text\n\tcmpi.l #__linear_memory_bound-0x800000,%d0\n",
            Some(0x80_0000),
            "addend -8388608, field Some(0)): the addend is as large",
        );
        refused(
            "\t.text\n\tnop\n",
            Some(0x80_0000),
            "no bounds check uses __linear_memory_bound",
        );
        refused(
            "\t.text\n\tnop\n",
            None,
            "kernel.elf has no symbol __linear_memory_bound",
        );
    }

    /// Every address an instruction start (so the look-alike rules alone decide).
    fn all(_: u32) -> bool {
        true
    }

    fn words(w: &[u16]) -> Vec<u8> {
        w.iter().flat_map(|w| w.to_be_bytes()).collect()
    }

    #[test]
    fn finds_only_the_64_bit_forms() {
        // Encodings from GNU as 2.40 for the Motorola forms in the comments.
        let code = words(&[
            0x4c01, 0x2000, // mulu.l %d1,%d2
            0x4c01, 0x2403, // mulu.l %d1,%d3:%d2        found at 0x1004
            0x4c01, 0x2800, // muls.l %d1,%d2
            0x4c01, 0x2c03, // muls.l %d1,%d3:%d2        found at 0x100c
            0x4c41, 0x2002, // divu.l %d1,%d2
            0x4c41, 0x2403, // divu.l %d1,%d3:%d2        found at 0x1014
            0x4c41, 0x2003, // divul.l %d1,%d3:%d2 (32-bit dividend)
            0x4c41, 0x2c03, // divs.l %d1,%d3:%d2        found at 0x101c
            0x4c41, 0x2803, // divsl.l %d1,%d3:%d2
            0x4c3c, 0x2403, 0x0000, 0x000a, // mulu.l #10,%d3:%d2  found at 0x1024
            0x4cdf, 0x0c0c, // movem.l (%sp)+,%d2-%d3/%a2-%a3
            0x4e71, // nop: what follows is off objdump's 4-byte rhythm
            0x4c00, 0x1400, // mulu.l %d0,%d0:%d1       found at 0x1032
            0x4e75, // rts
        ]);
        assert_eq!(
            wide_muldiv(0x1000, &code, &all),
            [0x1004, 0x100c, 0x1014, 0x101c, 0x1024, 0x1032]
        );
        // Not an extension word of the mul/div format (bit 15 or bits 9-3 set).
        assert!(wide_muldiv(0, &words(&[0x4c01, 0x8403, 0x4c01, 0x2408]), &all).is_empty());
        assert!(wide_muldiv(0, &words(&[0x4c01]), &all).is_empty());
        // `jsr 0x00144c60; moveq #1,%d2`: an address, not a divide; the same words after an
        // opcode without an abs.l operand (`nop; nop`) are one.
        assert!(wide_muldiv(0, &words(&[0x4eb9, 0x0014, 0x4c60, 0x7401]), &all).is_empty());
        assert!(wide_muldiv(0, &words(&[0x53b9, 0x0015, 0x4c60, 0x7401]), &all).is_empty());
        // ... nor of an immediate long (addi.l #0xffef4c70,%d7; move.l %d0,%d6) ...
        assert!(wide_muldiv(0, &words(&[0x0687, 0xffef, 0x4c70, 0x2c00]), &all).is_empty());
        assert!(wide_muldiv(0, &words(&[0x0c80, 0xffef, 0x4c70, 0x2c00]), &all).is_empty());
        // ... but the static bit operations (bits 11-9 = 4, a word operand) are no such opcode.
        assert_eq!(
            wide_muldiv(0, &words(&[0x0880, 0xffef, 0x4c70, 0x2c00]), &all),
            vec![4]
        );
        assert_eq!(
            wide_muldiv(0, &words(&[0x4e71, 0x4e71, 0x4c60, 0x7401]), &all),
            [4]
        );
        // The words of a look-alike after an instruction whose operand they are not (found by
        // a break-it run): `movel %a0@(128),%d1; extl %d2; divsl %d1,%d3:%d2` and `movel
        // #0x0680ffff,%d0; divul %d1,%d3:%d2`. With objdump's starts (0, 4, 6 and 0, 6) the
        // divides are reported; the addi.l look-alike, decoded at 0, is still excused.
        fn starts(set: &'static [u32]) -> impl Fn(u32) -> bool {
            move |a| set.contains(&a)
        }
        let divsl = words(&[0x2228, 0x0080, 0x48c2, 0x4c41, 0x2c03]);
        assert_eq!(wide_muldiv(0, &divsl, &starts(&[0, 4, 6])), [6]);
        let divul = words(&[0x203c, 0x0680, 0xffff, 0x4c41, 0x2403]);
        assert_eq!(wide_muldiv(0, &divul, &starts(&[0, 6])), [6]);
        let addil = words(&[0x0687, 0xffef, 0x4c70, 0x2c00]);
        assert!(wide_muldiv(0, &addil, &starts(&[0, 6])).is_empty());
        // Nothing decoded there: reported.
        assert_eq!(wide_muldiv(0, &addil, &|_| false), [4]);
        // A branch's 16-bit displacement (`bccw .+0x4c58; movel %d5,%d6`, from a kernel
        // build; `dbf %d0,.+0x4c58` the same way) is excused where the branch is decoded, and
        // reported where it is not; an 8-bit branch (`bccs`, low byte set) has no such word.
        let bccw = words(&[0x6400, 0x4c56, 0x2c05]);
        assert!(wide_muldiv(0, &bccw, &starts(&[0, 4])).is_empty());
        assert_eq!(wide_muldiv(0, &bccw, &|_| false), [2]);
        let dbf = words(&[0x51c8, 0x4c56, 0x2c05]);
        assert!(wide_muldiv(0, &dbf, &starts(&[0, 4])).is_empty());
        let bccs = words(&[0x6402, 0x4c56, 0x2c05]);
        assert_eq!(wide_muldiv(0, &bccs, &starts(&[0, 2])), [2]);
        // A 32-bit displacement's low half (`bcsl` back to a trap path, from a kernel build),
        // likewise; a 16-bit branch 4 bytes before is no excuse for it.
        let bcsl = words(&[0x65ff, 0xffff, 0x4c28, 0x2401]);
        assert!(wide_muldiv(0, &bcsl, &starts(&[0, 6])).is_empty());
        assert_eq!(wide_muldiv(0, &bcsl, &|_| false), [4]);
        let bcsw = words(&[0x6500, 0xffff, 0x4c28, 0x2401]);
        assert_eq!(wide_muldiv(0, &bcsw, &starts(&[0, 4, 6])), [4]);
        // Nor is another instruction whose low byte is 0xff: `moveq #-1,%d1; movel %d0,%d3;
        // mulul %d1,%d3:%d2` is a real 64-bit multiply (a mask that let 0x72ff pass hid it:
        // found by a break-it run).
        let moveq = words(&[0x72ff, 0x2600, 0x4c01, 0x2403]);
        assert_eq!(wide_muldiv(0, &moveq, &starts(&[0, 2, 4])), [4]);
    }

    #[test]
    fn reads_instruction_starts_from_an_objdump_listing() {
        let listing = "kernel.elf:     file format elf32-m68k\n\nDisassembly of section .text:\n\n\
                       0004d5e2 <f>:\n   4d5e2:\ttstl %d7\n   4d5f0:\taddil #-1094544,%d7\n\t...\n";
        let starts = parse_instruction_starts(listing);
        assert_eq!(starts.len(), 2);
        assert!(starts.contains(&0x4d5e2) && starts.contains(&0x4d5f0));
    }

    #[test]
    fn reads_the_executable_sections_of_an_elf() {
        // ELF header (52 bytes) + 4 code bytes at offset 52 + section headers at 56: the
        // null section, .text (PROGBITS, AX, address 0x1000) and .data (PROGBITS, WA).
        let mut elf = vec![0u8; 56];
        elf[..6].copy_from_slice(b"\x7fELF\x01\x02");
        elf[32..36].copy_from_slice(&56u32.to_be_bytes());
        elf[46..48].copy_from_slice(&40u16.to_be_bytes());
        elf[48..50].copy_from_slice(&3u16.to_be_bytes());
        elf[52..56].copy_from_slice(&[0x4c, 0x00, 0x14, 0x00]);
        let section = |kind: u32, flags: u32, addr: u32, offset: u32, size: u32| {
            let mut h = vec![0u8; 40];
            for (i, v) in [kind, flags, addr, offset, size].into_iter().enumerate() {
                h[4 + 4 * i..8 + 4 * i].copy_from_slice(&v.to_be_bytes());
            }
            h
        };
        elf.extend(section(0, 0, 0, 0, 0));
        elf.extend(section(1, 6, 0x1000, 52, 4));
        elf.extend(section(1, 3, 0x2000, 52, 4));
        let found = executable_sections(&elf).unwrap();
        assert_eq!(found, [(0x1000, &elf[52..56])]);
        assert_eq!(wide_muldiv(found[0].0, found[0].1, &all), [0x1000]);
        assert!(executable_sections(b"not an elf").is_err());
    }
}
