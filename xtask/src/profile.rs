//! `cargo xtask profile`: a per-function guest instruction profile of one benchmark cell (or
//! of a whole boot), counted by QEMU itself through a TCG plugin of our own
//! (`profile/profile_plugin.c`, built here with the host C compiler).
//!
//! The plugin counts how often each translation block starts executing; a block's executions
//! times its instruction count are attributed to the function (kernel.elf symbol) whose range
//! holds the block's first instruction, and an execution of a block that starts at a
//! function's entry is a call of it. For a cell, counting is restricted to the cell: the
//! plugin is given the entry addresses of the machine layer's two marker functions
//! (`Z_machineZ_profile_cell_begin`/`_end`, which `bench::run` calls around the cell) and
//! counts from the start of the first to the start of the second. The kernel option
//! `bench_cell=` makes the benchmark run that cell alone, so the window holds one cell.
//!
//! Symbols come from kernel.elf with the `object` crate (already in the tree under
//! addr2line), names are demangled with `rustc-demangle` after undoing wasm2c's escaping.

use crate::qemu::{self, spawn_owned, Version};
use crate::{anyhow, fail, Context as _, Result};
use console_proto::bench::{self as line, CellSpec, Line};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use wait_timeout::ChildExt as _;

/// The machine layer's marker functions (boot/machine.c) whose entries bound a cell.
pub const BEGIN_MARKER: &str = "Z_machineZ_profile_cell_begin";
pub const END_MARKER: &str = "Z_machineZ_profile_cell_end";

/// The plugin API version to build for a QEMU release. QEMU loads a plugin only if its
/// `qemu_plugin_version` lies in [QEMU's minimum, QEMU's current]: QEMU 7.2 takes 0-1 and
/// 10.0.2 takes 2-4 (both measured by loading plugins of each version), so no one build
/// serves both. API 1 is what QEMU up to 8.2 implements and 9.0 made 2 the minimum; the
/// declarations the plugin uses are the same in all of them.
pub fn plugin_api_version(v: Version) -> Result<u32> {
    if v >= Version::new(7, 0, 0) && v < Version::new(9, 0, 0) {
        Ok(1)
    } else if v >= Version::new(9, 0, 0) && v < Version::new(11, 0, 0) {
        Ok(2)
    } else {
        fail(format!(
            "QEMU {v}: no known plugin API version for it (the profile plugin is built for \
             API 1 on QEMU 7.x-8.x and API 2 on QEMU 9.x-10.x; see plugin_api_version in \
             xtask/src/profile.rs)"
        ))
    }
}

/// How long the host C compiler may take for the plugin (it takes well under a second).
const CC_TIMEOUT: Duration = Duration::from_secs(120);

/// Builds the plugin for API version `api` into `out_dir` with `$CC` (default `cc`); the
/// compiler's own message on failure.
pub fn build_plugin(root: &Path, out_dir: &Path, api: u32) -> Result<PathBuf> {
    let src = root.join("xtask/src/profile");
    let so = out_dir.join(format!("profile-plugin-api{api}.so"));
    std::fs::create_dir_all(out_dir)
        .with_context(|| format!("cannot create {}", out_dir.display()))?;
    if so.to_string_lossy().contains(',') {
        return fail(format!(
            "{}: QEMU's -plugin option cannot take a path with a comma",
            so.display()
        ));
    }
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let log = tempfile::tempfile().context("a temporary file for the compiler's messages")?;
    let mut cmd = Command::new(&cc);
    cmd.args([
        "-shared",
        "-fPIC",
        "-O2",
        "-std=c11",
        "-D_POSIX_C_SOURCE=200809L",
        "-fvisibility=hidden",
        "-Wall",
        "-Wextra",
        "-Werror",
    ])
    .arg(format!("-DPLUGIN_API_VERSION={api}"))
    .arg("-I")
    .arg(&src)
    .arg("-o")
    .arg(&so)
    .arg(src.join("profile_plugin.c"))
    .arg("-lpthread")
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(log.try_clone().context("the compiler's message file")?);
    let mut child = spawn_owned(&mut cmd).with_context(|| {
        format!("cannot run the host C compiler `{cc}` (install gcc, or set $CC)")
    })?;
    let status = child
        .0
        .wait_timeout(CC_TIMEOUT)
        .context("waiting for the host C compiler")?;
    let mut messages = String::new();
    {
        use std::io::{Read, Seek};
        let mut log = log;
        let _ = log.rewind();
        let _ = log.take(64 * 1024).read_to_string(&mut messages);
    }
    match status {
        Some(s) if s.success() => Ok(so),
        Some(s) => fail(format!(
            "building the profile plugin with `{cc}` failed ({s}):\n{}",
            messages.trim_end()
        )),
        None => fail(format!(
            "`{cc}` did not build the profile plugin within {} s",
            CC_TIMEOUT.as_secs()
        )),
    }
}

/// A function symbol of kernel.elf: its range and raw name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Symbol {
    pub start: u64,
    /// Bytes.
    pub size: u64,
    pub name: String,
}

/// The code symbols of an ELF file: functions (`STT_FUNC`, with their size) and the labels
/// of hand-written assembly in code sections (`boot/cpu.S`, `entry.S`: `STT_NOTYPE`, no
/// `.size`), which
/// are given the bytes up to the next symbol or their section's end.
pub fn read_symbols(elf: &Path) -> Result<Vec<Symbol>> {
    use object::{Object as _, ObjectSection as _, ObjectSymbol as _, SectionKind, SymbolKind};
    let data = std::fs::read(elf).with_context(|| format!("cannot read {}", elf.display()))?;
    let file = object::File::parse(&*data)
        .map_err(|e| anyhow!("{}: not an object file: {e}", elf.display()))?;
    // (symbol, end of its section)
    let mut found: Vec<(Symbol, u64)> = Vec::new();
    for s in file.symbols() {
        if !matches!(s.kind(), SymbolKind::Text | SymbolKind::Unknown) || !s.is_definition() {
            continue;
        }
        let Some(section) = s
            .section_index()
            .and_then(|i| file.section_by_index(i).ok())
        else {
            continue;
        };
        if section.kind() != SectionKind::Text {
            continue;
        }
        if let Ok(name) = s.name() {
            found.push((
                Symbol {
                    start: s.address(),
                    size: s.size(),
                    name: name.to_string(),
                },
                section.address() + section.size(),
            ));
        }
    }
    found.sort_by_key(|(s, _)| s.start);
    let starts: Vec<u64> = found.iter().map(|(s, _)| s.start).collect();
    Ok(found
        .into_iter()
        .map(|(mut s, section_end)| {
            if s.size == 0 {
                let next = starts[starts.partition_point(|&a| a <= s.start)..]
                    .first()
                    .copied()
                    .unwrap_or(section_end);
                s.size = next.min(section_end).saturating_sub(s.start);
            }
            s
        })
        .filter(|s| s.size > 0)
        .collect())
}

/// The address of the symbol named `name`.
pub fn address_of(symbols: &[Symbol], name: &str) -> Result<u64> {
    symbols
        .iter()
        .find(|s| s.name == name)
        .map(|s| s.start)
        .ok_or_else(|| anyhow!("kernel.elf has no function {name} (the cell marker)"))
}

/// A name a reader recognizes: Rust symbols demangled (without the hash), after undoing
/// wasm2c's escaping; C names (machine layer, runtime) as they are.
///
/// wasm2c 1.0.32 writes a wasm function name as `w2c_` + the name with every byte C does not
/// allow in an identifier replaced by `_`, one for one. Rust's v0 mangling (`_R...`) uses only
/// letters, digits and `_`, so it survives intact; the legacy one (`_ZN...E`) loses its `$`
/// escapes (`$LT$` became `_LT_`) and its `.` (`..` became `__`), which are put back here
/// (lengths are unchanged, so the length prefixes stay right).
pub fn display_name(raw: &str) -> String {
    let Some(name) = raw.strip_prefix("w2c_") else {
        return raw.to_string();
    };
    let unescaped = if name.starts_with("_ZN") {
        unescape_legacy(name)
    } else {
        name.to_string()
    };
    match rustc_demangle::try_demangle(&unescaped) {
        Ok(d) => format!("{d:#}"),
        Err(_) => name.to_string(),
    }
}

/// Puts back the `$...$` escapes and `.`s of a legacy Rust symbol that wasm2c turned into `_`.
/// `_` starting a known escape (`_LT_`, `_u20_`...) is one; `__` not followed by one is `..`
/// (so `83__LT_x` is `83_$LT$x` and `kern__heap` is `kern..heap`). A `_uXX_` is an escape
/// only for a character the mangler escapes (space, punctuation, non-ASCII): `read_phase_u16_fast`
/// is a name, not U+0016.
fn unescape_legacy(name: &str) -> String {
    const WORDS: [&str; 9] = ["SP", "BP", "RF", "LT", "GT", "LP", "RP", "C", "u"];
    // The escape's body (`LT`, `u20`) if one starts at byte `i` (an `_`).
    let escape_at = |i: usize| -> Option<&str> {
        let rest = name.get(i..)?.strip_prefix('_')?;
        WORDS.iter().find_map(|w| {
            let after = rest.strip_prefix(w)?;
            let len = if *w == "u" {
                let hex = after.bytes().take_while(u8::is_ascii_hexdigit).count();
                let c = char::from_u32(u32::from_str_radix(after.get(..hex)?, 16).ok()?)?;
                let escaped = c == ' ' || c.is_ascii_punctuation() && c != '_' || !c.is_ascii();
                (hex > 0 && escaped).then_some(1 + hex)?
            } else {
                w.len()
            };
            rest[len..].starts_with('_').then(|| &rest[..len])
        })
    };
    let b = name.as_bytes();
    let mut out = String::with_capacity(name.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'_' {
            if let Some(body) = escape_at(i) {
                out.push('$');
                out.push_str(body);
                out.push('$');
                i += body.len() + 2;
                continue;
            }
            if b.get(i + 1) == Some(&b'_') && escape_at(i + 1).is_none() {
                out.push_str("..");
                i += 2;
                continue;
            }
        }
        out.push(b[i] as char);
        i += 1;
    }
    out
}

/// One translation block as the plugin counted it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    /// Guest address of its first instruction.
    pub vaddr: u64,
    /// Guest instructions in it.
    pub insns: u64,
    /// Times it started executing inside the window.
    pub execs: u64,
}

/// The plugin's output file, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dump {
    /// How often the begin and end markers ran; None when the plugin counted everything.
    pub window: Option<(u64, u64)>,
    pub blocks: Vec<Block>,
}

/// Parses the plugin's file (format in profile_plugin.c); every line must be as written
/// there, and the closing `end blocks=N` must be present and count the block lines.
pub fn parse_dump(text: &str) -> Result<Dump, String> {
    let mut lines = text.lines().enumerate().map(|(n, l)| (n + 1, l));
    match lines.next() {
        Some((_, "m68k-profile 1")) => {}
        other => {
            return Err(format!(
                "line 1: expected 'm68k-profile 1', got {:?}",
                other.map_or("", |(_, l)| l)
            ))
        }
    }
    let num = |n: usize, what: &str, t: &str| -> Result<u64, String> {
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("line {n}: {what} '{t}' is not a decimal number"));
        }
        t.parse()
            .map_err(|e| format!("line {n}: {what} '{t}': {e}"))
    };
    let window = match lines.next() {
        Some((_, "window none")) => None,
        Some((n, l)) if l.starts_with("window ") => {
            let f: Vec<&str> = l.split(' ').collect();
            match f.as_slice() {
                ["window", b, e] => {
                    let b = b
                        .strip_prefix("begins=")
                        .ok_or(format!("line {n}: expected begins=N in '{l}'"))?;
                    let e = e
                        .strip_prefix("ends=")
                        .ok_or(format!("line {n}: expected ends=N in '{l}'"))?;
                    Some((num(n, "begins", b)?, num(n, "ends", e)?))
                }
                _ => return Err(format!("line {n}: malformed window line '{l}'")),
            }
        }
        Some((n, l)) if l.starts_with("error ") => {
            return Err(format!("line {n}: the plugin says: {}", &l[6..]))
        }
        other => {
            return Err(format!(
                "line 2: expected a window line, got {:?}",
                other.map_or("", |(_, l)| l)
            ))
        }
    };
    let mut blocks = Vec::new();
    for (n, l) in lines.by_ref() {
        if let Some(count) = l.strip_prefix("end blocks=") {
            let count = num(n, "block count", count)?;
            if count != blocks.len() as u64 {
                return Err(format!(
                    "line {n}: the plugin wrote {count} blocks, the file holds {}",
                    blocks.len()
                ));
            }
            if let Some((n, l)) = lines.next() {
                return Err(format!("line {n}: text after the end line: '{l}'"));
            }
            return Ok(Dump { window, blocks });
        }
        let f: Vec<&str> = l.split(' ').collect();
        let ["block", addr, insns, execs] = f.as_slice() else {
            return Err(format!(
                "line {n}: expected 'block 0xADDR INSNS EXECS', got '{l}'"
            ));
        };
        let vaddr = addr
            .strip_prefix("0x")
            .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|h| u64::from_str_radix(h, 16).ok())
            .ok_or(format!("line {n}: '{addr}' is not a 0x hex address"))?;
        blocks.push(Block {
            vaddr,
            insns: num(n, "instruction count", insns)?,
            execs: num(n, "execution count", execs)?,
        });
    }
    Err("no 'end blocks=N' line: the file is cut short (did QEMU exit normally?)".into())
}

/// One function's share of the profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The raw symbol name, or `NO_SYMBOL`.
    pub symbol: String,
    /// Guest instructions executed in blocks that start in the function.
    pub insns: u64,
    /// Executions of blocks that start at its entry.
    pub calls: u64,
}

/// The row of blocks that start outside every function symbol.
pub const NO_SYMBOL: &str = "(outside every function symbol)";

/// The rows (most instructions first, ties by name) and the total instruction count.
pub fn attribute(symbols: &[Symbol], blocks: &[Block]) -> (Vec<Row>, u64) {
    let mut sorted: Vec<&Symbol> = symbols.iter().collect();
    sorted.sort_by(|a, b| a.start.cmp(&b.start).then_with(|| a.name.cmp(&b.name)));
    // Aliases (several names at one address): the first name in order.
    sorted.dedup_by_key(|s| s.start);
    // Keyed by the function's address (None: no symbol), so two functions of one name (static
    // functions of different C files) stay apart.
    let mut by: BTreeMap<Option<u64>, (&str, u64, u64)> = BTreeMap::new();
    let mut total = 0u64;
    for b in blocks {
        let insns = b.insns.saturating_mul(b.execs);
        total = total.saturating_add(insns);
        let at = sorted.partition_point(|s| s.start <= b.vaddr);
        let sym = at
            .checked_sub(1)
            .map(|i| sorted[i])
            .filter(|s| b.vaddr - s.start < s.size);
        let (key, name, entry) = match sym {
            Some(s) => (Some(s.start), s.name.as_str(), s.start == b.vaddr),
            None => (None, NO_SYMBOL, false),
        };
        let e = by.entry(key).or_insert((name, 0, 0));
        e.1 = e.1.saturating_add(insns);
        if entry {
            e.2 = e.2.saturating_add(b.execs);
        }
    }
    let mut rows: Vec<Row> = by
        .into_values()
        .map(|(symbol, insns, calls)| Row {
            symbol: symbol.to_string(),
            insns,
            calls,
        })
        .collect();
    rows.sort_by(|a, b| b.insns.cmp(&a.insns).then_with(|| a.symbol.cmp(&b.symbol)));
    (rows, total)
}

/// Widest function name the table shows: a generic's full type arguments (a B-tree node's
/// handle runs to some 280 characters) would widen every row past a terminal.
const NAME_WIDTH: usize = 100;

/// `name` cut to at most `width` characters by replacing its middle with `...`: the head
/// keeps the crate and type, the tail the function.
fn shorten(name: &str, width: usize) -> String {
    let chars: Vec<char> = name.chars().collect();
    if chars.len() <= width {
        return name.to_string();
    }
    let head = width * 2 / 5;
    let tail = width - head - 3;
    let mut out: String = chars[..head].iter().collect();
    out.push_str("...");
    out.extend(&chars[chars.len() - tail..]);
    out
}

/// The table: the top `top` functions, then the rest in one row, then the total; with
/// `requests`, a column of instructions per request.
pub fn table(rows: &[Row], total: u64, top: usize, requests: Option<u64>) -> String {
    use comfy_table::{CellAlignment, Table};
    let mut t = Table::new();
    t.load_style(comfy_table::presets::ASCII_MARKDOWN);
    let mut header = vec!["function", "instructions", "calls", "instr/call", "share"];
    if requests.is_some() {
        header.push("instr/request");
    }
    t.set_header(header.clone());
    let share = |n: u64| format!("{:.1}%", n as f64 * 100.0 / total.max(1) as f64);
    let per_req = |n: u64| requests.map(|r| format!("{:.1}", n as f64 / r.max(1) as f64));
    let shown: Vec<String> = rows
        .iter()
        .take(top)
        .map(|r| {
            if r.symbol == NO_SYMBOL {
                r.symbol.clone()
            } else {
                shorten(&display_name(&r.symbol), NAME_WIDTH)
            }
        })
        .collect();
    for (r, shown_name) in rows.iter().take(top).zip(&shown) {
        // Two functions shown alike (wasm's `memset` and the runtime's): the raw name too.
        let name =
            if shown.iter().filter(|n| *n == shown_name).count() > 1 && *shown_name != r.symbol {
                format!("{shown_name} ({})", r.symbol)
            } else {
                shown_name.clone()
            };
        let per_call = if r.calls == 0 {
            "-".to_string()
        } else {
            format!("{:.1}", r.insns as f64 / r.calls as f64)
        };
        let mut cells = vec![
            name,
            r.insns.to_string(),
            r.calls.to_string(),
            per_call,
            share(r.insns),
        ];
        cells.extend(per_req(r.insns));
        t.add_row(cells);
    }
    if rows.len() > top {
        let rest: u64 = rows[top..].iter().map(|r| r.insns).sum();
        let mut cells = vec![
            format!("({} other functions)", rows.len() - top),
            rest.to_string(),
            String::new(),
            String::new(),
            share(rest),
        ];
        cells.extend(per_req(rest));
        t.add_row(cells);
    }
    let mut cells = vec![
        "total".to_string(),
        total.to_string(),
        String::new(),
        String::new(),
        "100.0%".to_string(),
    ];
    cells.extend(per_req(total));
    t.add_row(cells);
    for i in 1..header.len() {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    t.to_string()
}

/// What the guest printed about the profiled cell: its record and its window line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CellRun {
    pub record: line::Record,
    /// Guest time across the markers (ns; instructions under -icount shift=0).
    pub window_ns: u64,
}

/// The one cell the console reports, which must be `spec`, with its window line.
pub fn cell_run(console: &str, spec: &CellSpec) -> Result<CellRun, String> {
    let mut records = Vec::new();
    let mut windows = Vec::new();
    for l in console.lines() {
        match line::parse_line(l) {
            Ok(Some(Line::Record(r))) => records.push(r),
            Ok(Some(Line::Window { ns })) => windows.push(ns),
            Ok(Some(Line::Error(e))) => return Err(format!("the cell failed: {e}")),
            Ok(_) => {}
            Err(e) => return Err(format!("a malformed benchmark line ({e}): {l}")),
        }
    }
    match (records.as_slice(), windows.as_slice()) {
        ([r], [w]) if CellSpec::of(r) == *spec => Ok(CellRun {
            record: r.clone(),
            window_ns: *w,
        }),
        ([r], [_]) => Err(format!(
            "the guest measured {} instead of {spec}",
            CellSpec::of(r)
        )),
        (r, w) => Err(format!(
            "expected one cell record and one window line, got {} and {}",
            r.len(),
            w.len()
        )),
    }
}

/// Under `-icount shift=0 -rtc clock=vm` one guest ns is one instruction, so the guest's own
/// time across the markers and the plugin's count over the same window must agree, up to
/// what lies between each side's edges: the instructions between the guest's clock reads and
/// the markers (a few hundred), and blocks the plugin counted whole that QEMU cut short at an
/// I/O instruction under -icount (a few per RTC or device access). The bound is 0.5% plus
/// 2000 instructions; neither side depends on host speed. A polled cell only: an interrupt
/// cell idles in `stop`, where guest time passes without instructions.
pub fn check_icount(plugin_total: u64, window_ns: u64) -> Result<(), String> {
    let diff = plugin_total.abs_diff(window_ns);
    let bound = window_ns / 200 + 2000;
    if diff > bound {
        return Err(format!(
            "the plugin counted {plugin_total} instructions between the markers, the guest's \
             icount clock {window_ns} ns: {diff} apart, more than {bound}"
        ));
    }
    Ok(())
}

/// The QEMU arguments that load the plugin.
pub fn plugin_args(so: &Path, out: &Path, window: Option<(u64, u64)>) -> Result<Vec<String>> {
    for p in [so, out] {
        if p.to_string_lossy().contains(',') {
            return fail(format!(
                "{}: QEMU's -plugin option cannot take a path with a comma",
                p.display()
            ));
        }
    }
    let mut spec = format!("{},out={}", so.display(), out.display());
    if let Some((b, e)) = window {
        spec.push_str(&format!(",begin=0x{b:x},end=0x{e:x}"));
    }
    Ok(vec!["-plugin".into(), spec])
}

/// A QEMU that could not load the plugin says so on stderr: that message, if any.
pub fn plugin_refused(stderr: &str) -> Option<String> {
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("plugin") || l.contains("-plugin"))
        .collect();
    (!lines.is_empty()).then(|| lines.join("\n"))
}

/// The QEMU version's plugin, built.
pub fn plugin_for(root: &Path, out_dir: &Path) -> Result<PathBuf> {
    let version = qemu::binary()?.version;
    let api = plugin_api_version(version)?;
    build_plugin(root, out_dir, api)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sym(start: u64, size: u64, name: &str) -> Symbol {
        Symbol {
            start,
            size,
            name: name.into(),
        }
    }

    fn block(vaddr: u64, insns: u64, execs: u64) -> Block {
        Block {
            vaddr,
            insns,
            execs,
        }
    }

    /// A hand-made table: f at 0x1000 (0x40 bytes), g at 0x1040 (0x20), h at 0x1100 (0x10)
    /// with an alias, and a gap between g's end (0x1060) and h.
    #[test]
    fn long_names_are_cut_in_the_middle_to_the_table_width() {
        assert_eq!(shorten("drivers::blk::reap", 100), "drivers::blk::reap");
        let long = format!(
            "alloc::collections::btree::node::Handle<{}>::remove_leaf_kv",
            "x".repeat(300)
        );
        let s = shorten(&long, 100);
        assert_eq!(s.chars().count(), 100);
        assert!(
            s.starts_with("alloc::collections::btree::node::Handle"),
            "{s}"
        );
        assert!(s.ends_with(">::remove_leaf_kv"), "{s}");
        assert!(s.contains("..."), "{s}");
        let exact = "y".repeat(100);
        assert_eq!(shorten(&exact, 100), exact);
    }

    #[test]
    fn blocks_go_to_the_function_they_start_in() {
        let symbols = [
            sym(0x1100, 0x10, "h_alias_z"),
            sym(0x1000, 0x40, "f"),
            sym(0x1040, 0x20, "g"),
            sym(0x1100, 0x10, "h"),
        ];
        let blocks = [
            // f: entered 10 times (5 insns), a loop block inside run 30 times (3 insns),
            // and the same entry re-translated shorter (2 insns) run 4 times.
            block(0x1000, 5, 10),
            block(0x1010, 3, 30),
            block(0x1000, 2, 4),
            // g: last byte of its range, never at the entry: 0 calls.
            block(0x105e, 1, 7),
            // the gap and past the last symbol: no function.
            block(0x1060, 4, 2),
            block(0x2000, 1, 1),
            // h: at its entry, under the alias's address too.
            block(0x1100, 6, 100),
            // never executed in the window: nothing.
            block(0x1040, 9, 0),
        ];
        let (rows, total) = attribute(&symbols, &blocks);
        // By hand: f = 5*10 + 3*30 + 2*4 = 148, calls 10 + 4 = 14; g = 7, calls 0;
        // h = 600, calls 100; none = 4*2 + 1 = 9; total 764.
        assert_eq!(total, 148 + 7 + 600 + 9);
        let expected = [
            ("h", 600, 100),
            ("f", 148, 14),
            (NO_SYMBOL, 9, 0),
            ("g", 7, 0),
        ];
        let got: Vec<(&str, u64, u64)> = rows
            .iter()
            .map(|r| (r.symbol.as_str(), r.insns, r.calls))
            .collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn functions_of_one_name_stay_apart_and_are_told_apart() {
        let symbols = [
            sym(0x1000, 0x10, "w2c_memset"),
            sym(0x2000, 0x10, "memset"),
            sym(0x3000, 0x10, "hash"),
            sym(0x4000, 0x10, "hash"),
        ];
        let blocks = [
            block(0x1000, 2, 3),
            block(0x2000, 5, 1),
            block(0x3000, 1, 1),
            block(0x4004, 7, 1),
        ];
        let (rows, total) = attribute(&symbols, &blocks);
        assert_eq!(total, 6 + 5 + 1 + 7);
        let got: Vec<(&str, u64, u64)> = rows
            .iter()
            .map(|r| (r.symbol.as_str(), r.insns, r.calls))
            .collect();
        assert_eq!(
            got,
            [
                ("hash", 7, 0),
                ("w2c_memset", 6, 3),
                ("memset", 5, 1),
                ("hash", 1, 1)
            ]
        );
        let t = table(&rows, total, 10, None);
        assert!(t.contains("| memset (w2c_memset) "), "{t}");
        assert!(t.contains("| memset "), "{t}");
    }

    #[test]
    fn the_table_shows_shares_per_call_and_per_request() {
        let rows = vec![
            Row {
                symbol: "a".into(),
                insns: 600,
                calls: 100,
            },
            Row {
                symbol: "b".into(),
                insns: 300,
                calls: 0,
            },
            Row {
                symbol: "c".into(),
                insns: 100,
                calls: 1,
            },
        ];
        let t = table(&rows, 1000, 2, Some(10));
        let lines: Vec<&str> = t.lines().collect();
        let cells = |l: &str| -> Vec<String> {
            l.split('|')
                .map(|c| c.trim().to_string())
                .filter(|c| !c.is_empty())
                .collect()
        };
        assert_eq!(cells(lines[2]), ["a", "600", "100", "6.0", "60.0%", "60.0"]);
        assert_eq!(cells(lines[3]), ["b", "300", "0", "-", "30.0%", "30.0"]);
        assert_eq!(
            cells(lines[4]),
            ["(1 other functions)", "100", "10.0%", "10.0"]
        );
        assert_eq!(cells(lines[5]), ["total", "1000", "100.0%", "100.0"]);
        assert!(!table(&rows, 1000, 5, None).contains("instr/request"));
    }

    #[test]
    fn wasm2c_names_are_demangled() {
        // v0 mangling survives wasm2c as it is.
        assert_eq!(
            display_name("w2c__RNvCsfLfy6EI15iL_7___rustc14___rust_realloc"),
            "__rustc::__rust_realloc"
        );
        // Legacy mangling: wasm2c turned $ and . into _.
        assert_eq!(
            display_name("w2c__ZN83__LT_kernel__kern__heap__KernelHeap_u20_as_u20_core__alloc__global__GlobalAlloc_GT_5alloc17h815aadeb05905ec2E"),
            "<kernel::kern::heap::KernelHeap as core::alloc::global::GlobalAlloc>::alloc"
        );
        assert_eq!(
            display_name("w2c__ZN6kernel4kern4time3now17h0123456789abcdefE"),
            "kernel::kern::time::now"
        );
        // `_u16_` in a name is no escape (U+0016 is a control character rustc never escapes
        // to); `_u7b_` is one ('{').
        assert_eq!(
            display_name(
                "w2c__ZN7drivers3dma18DmaRegion_LT_P_GT_19read_phase_u16_fast17h1d28b80b2fd2475aE"
            ),
            "drivers::dma::DmaRegion<P>::read_phase_u16_fast"
        );
        assert_eq!(
            display_name(
                "w2c__ZN6kernel4kern5disks4open28__u7b__u7b_closure_u7d__u7d_17h0123456789abcdefE"
            ),
            "kernel::kern::disks::open::{{closure}}"
        );
        // C names stay.
        assert_eq!(
            display_name("Z_machineZ_mmio_read32"),
            "Z_machineZ_mmio_read32"
        );
        assert_eq!(display_name("memcpy"), "memcpy");
        // A wasm name that is no Rust symbol loses only the prefix.
        assert_eq!(display_name("w2c_kernel_main"), "kernel_main");
    }

    #[test]
    fn plugin_files_parse_and_damage_is_named() {
        let good = "m68k-profile 1\nwindow begins=1 ends=1\nblock 0x00001000 5 10\nblock 0x00001010 3 30\nend blocks=2\n";
        let d = parse_dump(good).unwrap();
        assert_eq!(d.window, Some((1, 1)));
        assert_eq!(d.blocks, [block(0x1000, 5, 10), block(0x1010, 3, 30)]);
        let none = parse_dump("m68k-profile 1\nwindow none\nend blocks=0\n").unwrap();
        assert_eq!(
            none,
            Dump {
                window: None,
                blocks: vec![]
            }
        );
        for (bad, why) in [
            ("", "line 1"),
            ("m68k-profile 2\nwindow none\nend blocks=0\n", "line 1"),
            ("m68k-profile 1\nend blocks=0\n", "line 2"),
            (
                "m68k-profile 1\nwindow begins=1\nend blocks=0\n",
                "malformed window",
            ),
            (
                "m68k-profile 1\nwindow begins=x ends=1\nend blocks=0\n",
                "not a decimal",
            ),
            (
                "m68k-profile 1\nerror out of memory: x\nwindow none\nend blocks=0\n",
                "out of memory",
            ),
            (
                "m68k-profile 1\nwindow none\nblock 0x1000 5 10\n",
                "cut short",
            ),
            (
                "m68k-profile 1\nwindow none\nblock 0x1000 5 10\nend blocks=2\n",
                "wrote 2 blocks",
            ),
            (
                "m68k-profile 1\nwindow none\nblock 1000 5 10\nend blocks=1\n",
                "0x hex",
            ),
            (
                "m68k-profile 1\nwindow none\nblock 0x 5 10\nend blocks=1\n",
                "0x hex",
            ),
            (
                "m68k-profile 1\nwindow none\nblock 0x1000 -5 10\nend blocks=1\n",
                "not a decimal",
            ),
            (
                "m68k-profile 1\nwindow none\nblock 0x1000 5\nend blocks=1\n",
                "expected 'block",
            ),
            (
                "m68k-profile 1\nwindow none\nend blocks=0\nblock 0x1 1 1\n",
                "after the end",
            ),
        ] {
            let e = parse_dump(bad).expect_err(bad);
            assert!(e.contains(why), "{bad:?}: {e}");
        }
    }

    /// The host's own test binary is an ELF with function symbols: this very test is one.
    #[test]
    fn elf_function_symbols_are_read() {
        let exe = std::env::current_exe().unwrap();
        let symbols = read_symbols(&exe).unwrap();
        assert!(symbols.iter().all(|s| s.size > 0));
        assert!(
            symbols
                .iter()
                .any(|s| display_name(&s.name).contains("elf_function_symbols_are_read")),
            "{} symbols, none of this test",
            symbols.len()
        );
        assert!(read_symbols(Path::new("/nonexistent/kernel.elf")).is_err());
    }

    #[test]
    fn plugin_api_versions_follow_qemu() {
        assert_eq!(plugin_api_version(Version::new(7, 2, 22)).unwrap(), 1);
        assert_eq!(plugin_api_version(Version::new(8, 2, 0)).unwrap(), 1);
        assert_eq!(plugin_api_version(Version::new(9, 0, 0)).unwrap(), 2);
        assert_eq!(plugin_api_version(Version::new(10, 0, 2)).unwrap(), 2);
        for unknown in [Version::new(6, 2, 0), Version::new(11, 0, 0)] {
            let e = plugin_api_version(unknown).unwrap_err().to_string();
            assert!(e.contains("no known plugin API version"), "{e}");
        }
    }

    #[test]
    fn the_icount_check_has_a_bound_independent_of_the_host() {
        assert!(check_icount(1_000_000, 1_000_000).is_ok());
        assert!(check_icount(1_000_000 + 6_999, 1_000_000).is_ok());
        assert!(check_icount(1_000_000 + 7_001, 1_000_000).is_err());
        assert!(check_icount(1_000_000 - 7_001, 1_000_000).is_err());
        // Counting blocks instead of instructions is off by far more.
        assert!(check_icount(250_000, 1_000_000).is_err());
    }

    #[test]
    fn the_cell_run_must_be_the_one_asked_for() {
        let spec = CellSpec::parse("floor,rand,read,4096,1,polled,off").unwrap();
        let rec = "bench disk=0 impl=floor pattern=rand op=read bs=4096 qd=1 mode=polled event_idx=off ops=2048 bytes=8388608 ns=32899000 iops=62251 mib_s=243.1 lat_p50_us=125.0 lat_p99_us=202.0 kicks_per_op=1.000 irqs_per_op=0.000 polls_per_op=1.000 submit_ns_per_op=7020 complete_ns_per_op=3618 clock=rtc";
        let ok =
            format!("bench progress 1/1\n{rec}\nbench window ns=33000000\nbench done 1 cells\n");
        let r = cell_run(&ok, &spec).unwrap();
        assert_eq!((r.record.ops, r.window_ns), (2048, 33_000_000));
        let other = CellSpec::parse("driver,rand,read,4096,1,polled,on").unwrap();
        assert!(cell_run(&ok, &other).unwrap_err().contains("instead of"));
        let twice = format!("{rec}\nbench window ns=1\n{rec}\nbench window ns=1\n");
        assert!(cell_run(&twice, &spec).unwrap_err().contains("got 2 and 2"));
        assert!(cell_run("bench error: x: y\n", &spec)
            .unwrap_err()
            .contains("failed"));
        assert!(cell_run(&format!("{rec}\n"), &spec)
            .unwrap_err()
            .contains("got 1 and 0"));
    }
}

/// boot/cpu.S's `dcop_table`: one 4-byte entry (the instruction, then `rts`) per selector,
/// bit 0 push, bit 1 page (its comment); the entries the data-cache instructions start at.
/// Counted per entry: which instruction each entry holds is `machine_code::check`'s (it
/// disassembles the table); the addresses the instructions get are checked by nothing.
pub const DCOP_TABLE: &str = "dcop_table";

/// The data-cache instructions `dma::cache_instructions_probe` makes on a 68040 (its syncs,
/// as the MC68040 User's Manual (CINV, CPUSH) and bus_dma's rules decide them: PREWRITE
/// pushes, PREREAD discards whole lines and pages and pushes a partial one), by `dcop_table`
/// selector: (selector, mnemonic, times). Kept in step with the test's shapes.
pub const PROBE_EXPECTED: [(u64, &str, u64); 4] = [
    // 1,009 one-line PREWRITEs, 101 partial first lines, 83 partial last lines, 4 lines in
    // each of 97 four-line PREWRITEs, 89 one-line PREREAD|PREWRITEs.
    (1, "cpushl", 1009 + 101 + 83 + 4 * 97 + 89),
    // 2,003 one-line PREREADs and 2 whole lines in each of 101 + 83 partial ranges.
    (0, "cinvl", 2003 + 2 * 101 + 2 * 83),
    // 307 one-page PREREADs and 61 of two pages (the planner's path).
    (2, "cinvp", 307 + 2 * 61),
    // 401 one-page PREWRITEs and 53 of two pages.
    (3, "cpushp", 401 + 2 * 53),
];

/// How often each `dcop_table` entry started executing (blocks at `table + 4 * selector`,
/// summed over retranslations) in the probe's window, against [`PROBE_EXPECTED`]: None when
/// each is exactly that (the window holds the probe's syncs alone, interrupts masked), else
/// what differs.
pub fn check_probe_counts(table: u64, blocks: &[Block]) -> Option<String> {
    let ran = |sel: u64| -> u64 {
        blocks
            .iter()
            .filter(|b| b.vaddr == table + 4 * sel)
            .map(|b| b.execs)
            .sum()
    };
    let bad: Vec<String> = PROBE_EXPECTED
        .iter()
        .filter_map(|&(sel, name, want)| {
            let got = ran(sel);
            (got != want).then(|| format!("{name} ran {got} times, expected {want}"))
        })
        .collect();
    (!bad.is_empty()).then(|| bad.join("; "))
}

#[cfg(test)]
mod probe_tests {
    use super::*;

    fn block(vaddr: u64, execs: u64) -> Block {
        Block {
            vaddr,
            insns: 2,
            execs,
        }
    }

    #[test]
    fn probe_counts_are_checked_per_instruction_exactly() {
        let t = 0x1000;
        // Retranslated blocks at the same address are summed.
        let right = [
            block(t + 4, 1670),
            block(t, 2371),
            block(t + 8, 400),
            block(t + 8, 29),
            block(t + 12, 507),
        ];
        assert_eq!(check_probe_counts(t, &right), None);
        // One more of a kind: something else ran in the window.
        let extra = [
            block(t + 4, 1671),
            block(t, 2371),
            block(t + 8, 429),
            block(t + 12, 507),
        ];
        assert_eq!(
            check_probe_counts(t, &extra).unwrap(),
            "cpushl ran 1671 times, expected 1670"
        );
        // Every line op a CINVL (a push lost): both line counts are wrong.
        let all_cinvl = [block(t, 1670 + 2371), block(t + 8, 429), block(t + 12, 507)];
        let e = check_probe_counts(t, &all_cinvl).unwrap();
        assert!(
            e.contains("cpushl ran 0") && e.contains("cinvl ran 4041"),
            "{e}"
        );
        // Pages run as lines: no page op at all.
        let lines = [block(t + 4, 1670 + 507), block(t, 2371 + 429)];
        assert!(check_probe_counts(t, &lines)
            .unwrap()
            .contains("cinvp ran 0"));
    }
}
