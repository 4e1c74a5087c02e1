//! Checks of the machine layer's code as linked, read back through binutils' disassembler: an
//! independent decoder of what boot/cpu.S builds from numbers, and the only place where a
//! property of the instruction order itself (what runs with interrupts masked, what touches
//! memory) can be seen. QEMU models no caches, so a boot cannot show either.
//!
//! - `machine_cache_op`'s table: the entry at offset `kind` decodes to the CINV/CPUSH whose
//!   fields are `kind`'s (MC68040UM 9.1, spelled out below from the manual, not from cpu.S),
//!   and every other entry refuses;
//! - `Z_machineZ_dc_op` (the floor's direct data-cache entry): the selector is masked to three
//!   bits and indexes a 4-byte-entry table whose entries are CINVL, CPUSHL, CINVP, CPUSHP on
//!   the data cache at %a0 (bit 0 push, bit 1 page) and, with bit 2, CPUSHA DC, each
//!   followed by `rts`, with %a0 the address argument;
//! - `machine_cache_off_040` (cache::disable on a copyback CPU): interrupts masked to level 7
//!   before the CPUSHA, and nothing between the CPUSHA and the CACR write that touches memory
//!   or calls out, so no dirty line can be left in a cache that stops answering.

use std::path::Path;
use std::process::Command;

/// The checks' own result: a sentence saying what is wrong (the tests match on it).
type Result<T> = std::result::Result<T, String>;

fn fail<T>(msg: String) -> Result<T> {
    Err(msg)
}

/// One disassembled instruction: address and text (mnemonic and operands, objdump's MIT
/// syntax, e.g. `movec %d0,%cacr`, `movel %sp@(4),%d0`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Insn {
    pub addr: u32,
    pub text: String,
}

/// Parses `objdump -d` lines of the form `  12b1be:\tf4f8      \tcpusha bc`.
pub fn parse_objdump(out: &str) -> Vec<Insn> {
    out.lines()
        .filter_map(|line| {
            let mut fields = line.split('\t');
            let addr = fields.next()?.trim().strip_suffix(':')?;
            let addr = u32::from_str_radix(addr, 16).ok()?;
            let _raw = fields.next()?;
            let text = fields.next()?.trim();
            (!text.is_empty()).then(|| Insn {
                addr,
                text: text.split_whitespace().collect::<Vec<_>>().join(" "),
            })
        })
        .collect()
}

/// What the table entry for `kind` must decode to: its first instruction, from the manual's
/// field layout (1111 0100 CC P SS RRR; CC 01 data, 10 instruction, 11 both; P push; SS 01
/// line, 10 page, 11 all; register 0 = %a0), or `moveq #1,%d0` (refused) where CC or SS is 0.
pub fn expected_entry(kind: u32) -> String {
    let (cc, push, ss) = ((kind >> 6) & 3, (kind >> 5) & 1, (kind >> 3) & 3);
    if cc == 0 || ss == 0 {
        return "moveq #1,%d0".into();
    }
    let op = if push == 1 { "cpush" } else { "cinv" };
    let scope = ["", "l", "p", "a"][ss as usize];
    let caches = ["", "dc", "ic", "bc"][cc as usize];
    let operand = if ss == 3 { "" } else { ",%a0@" };
    format!("{op}{scope} {caches}{operand}")
}

/// True when `text` (objdump's MIT syntax: destination last) writes register `reg`.
fn writes_register(text: &str, reg: &str) -> bool {
    let mnemonic = text.split(' ').next().unwrap_or("");
    let reads_only = ["cmp", "tst", "btst", "jmp", "pea", "bra", "b"]
        .iter()
        .any(|m| mnemonic.starts_with(m));
    !reads_only
        && text
            .rsplit(',')
            .next()
            .is_some_and(|last| last.trim() == reg)
        || mnemonic.starts_with("exg") && text.contains(reg)
        || mnemonic.starts_with("swap") && text.ends_with(reg)
}

/// Checks the dispatcher in front of the table: it loads the kind into %d0 from the first
/// argument, jumps to `table + %d0` through a register loaded with the table's address,
/// and nothing between writes %d0 or that register, so the entry executed is the kind's.
pub fn check_cache_dispatch(table: u32, insns: &[Insn]) -> Result<()> {
    let bad = |why: &str| fail(format!("machine_cache_op's dispatcher: {why}"));
    let Some(load) = insns.iter().position(|i| i.text == "movel %sp@(4),%d0") else {
        return bad("the kind is not loaded into %d0 from the first argument");
    };
    let Some(jump) = insns.iter().position(|i| i.text.starts_with("jmp ")) else {
        return bad("no indexed jump into the table");
    };
    let jmp = &insns[jump].text;
    let Some(base_reg) = jmp
        .strip_prefix("jmp ")
        .and_then(|t| t.strip_suffix("@(0,%d0:l)"))
    else {
        return bad(&format!("`{jmp}` is not a jump to register + %d0"));
    };
    if jump < load {
        return bad("the jump comes before the kind is loaded");
    }
    let Some(lea) = insns[..jump]
        .iter()
        .rposition(|i| writes_register(&i.text, base_reg))
    else {
        return bad(&format!("{base_reg} is never loaded"));
    };
    if !(insns[lea].text.starts_with("lea ")
        && insns[lea]
            .text
            .contains(&format!("<cacheop_table>),{base_reg}"))
        && insns[lea].text.contains(&format!("{table:x}")))
    {
        return bad(&format!(
            "{base_reg} last set by `{}`, not to the table's address",
            insns[lea].text
        ));
    }
    if let Some(i) = insns[load + 1..jump]
        .iter()
        .find(|i| writes_register(&i.text, "%d0"))
    {
        return bad(&format!(
            "`{}` at {:#x} changes the kind between its load and the jump",
            i.text, i.addr
        ));
    }
    Ok(())
}

/// Checks the 256-byte table at `base` (8-byte entries, one per multiple of 8): every
/// entry's first instruction is `expected_entry`, and a valid one then returns 0.
pub fn check_cache_table(base: u32, insns: &[Insn]) -> Result<()> {
    let at = |addr: u32| insns.iter().position(|i| i.addr == addr);
    let mut bad = Vec::new();
    for kind in (0..256).step_by(8) {
        let want = expected_entry(kind);
        let Some(i) = at(base + kind) else {
            bad.push(format!(
                "kind {kind:#04x}: no instruction starts at its entry"
            ));
            continue;
        };
        let got: Vec<&str> = insns[i..].iter().take(3).map(|x| x.text.as_str()).collect();
        let ok = if want.starts_with("moveq #1") {
            got.first() == Some(&want.as_str()) && got.get(1) == Some(&"rts")
        } else {
            got == [want.as_str(), "moveq #0,%d0", "rts"]
        };
        if !ok {
            bad.push(format!("kind {kind:#04x}: want `{want}`, found {got:?}"));
        }
    }
    if bad.is_empty() {
        Ok(())
    } else {
        fail(format!(
            "machine_cache_op's table does not match MC68040UM 9.1:\n  {}",
            bad.join("\n  ")
        ))
    }
}

/// What entry `sel` (0..8) of `Z_machineZ_dc_op`'s table must decode to: bit 0 push, bit 1
/// page, data cache, address in %a0; with bit 2 the push-all, `cpusha dc`, whatever the
/// others say (as `expected_entry` spells the manual's fields).
pub fn expected_dc_entry(sel: u32) -> String {
    if sel & 4 != 0 {
        return expected_entry(0x40 | 1 << 5 | 3 << 3);
    }
    let (push, scope) = (sel & 1, 1 + ((sel >> 1) & 1));
    expected_entry(0x40 | push << 5 | scope << 3)
}

/// Checks `Z_machineZ_dc_op` as linked: `dispatch` is the routine up to its table, `table`
/// the four entries at `base`. The selector is loaded into %d0 from the first argument after
/// the instance pointer (`%sp@(8)`), masked with `andil #7,%d0`, and not written again before
/// `jmp` to `base + %d0 * 4`; %a0 is loaded from the address argument (`%sp@(12)`) and not
/// written again; entry k is `expected_dc_entry(k)` then `rts`, 4 bytes each.
pub fn check_dc_op(base: u32, dispatch: &[Insn], table: &[Insn]) -> Result<()> {
    let bad = |why: String| fail(format!("Z_machineZ_dc_op: {why}"));
    let pos = |t: &str| dispatch.iter().position(|i| i.text == t);
    let Some(load) = pos("movel %sp@(8),%d0") else {
        return bad("the selector is not loaded into %d0 from the first argument".into());
    };
    let Some(addr) = pos("moveal %sp@(12),%a0") else {
        return bad("the address is not loaded into %a0 from the second argument".into());
    };
    let Some(mask) = pos("andil #7,%d0") else {
        return bad("the selector is not masked to three bits".into());
    };
    let Some(jump) = dispatch.iter().position(|i| i.text.starts_with("jmp ")) else {
        return bad("no indexed jump into the table".into());
    };
    let want = format!("jmp %pc@({base:x} <dcop_table>,%d0:l:4)");
    if dispatch[jump].text != want {
        return bad(format!("`{}` is not `{want}`", dispatch[jump].text));
    }
    if !(load < mask && mask < jump && addr < jump) {
        return bad("the loads and the mask do not all come before the jump".into());
    }
    for (from, reg) in [(mask, "%d0"), (addr, "%a0")] {
        if let Some(i) = dispatch[from + 1..jump]
            .iter()
            .find(|i| writes_register(&i.text, reg) || i.text.contains(&format!("{reg}@+")))
        {
            return bad(format!(
                "`{}` at {:#x} changes {reg} before the jump",
                i.text, i.addr
            ));
        }
    }
    let mut wrong = Vec::new();
    for sel in 0..8u32 {
        let at = base + 4 * sel;
        let got: Vec<&str> = table
            .iter()
            .skip_while(|i| i.addr != at)
            .take(2)
            .map(|i| i.text.as_str())
            .collect();
        let want = expected_dc_entry(sel);
        let next = table.iter().find(|i| i.addr > at).map(|i| i.addr);
        if got != [want.as_str(), "rts"] || next != Some(at + 2) {
            wrong.push(format!(
                "entry {sel}: want `{want}` then `rts`, found {got:?}"
            ));
        }
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        bad(format!(
            "the table does not match MC68040UM 9.1:\n  {}",
            wrong.join("\n  ")
        ))
    }
}

/// True when `text` may read or write memory or leave the routine: any memory operand
/// (`@` in MIT syntax), a stack push, or a control transfer.
fn touches_memory(text: &str) -> bool {
    let mnemonic = text.split(' ').next().unwrap_or("");
    text.contains('@')
        || [
            "jsr", "bsr", "jmp", "trap", "pea", "link", "unlk", "rts", "rte", "movem",
        ]
        .iter()
        .any(|m| mnemonic.starts_with(m))
}

/// True when `text` changes SR (its interrupt mask) or may change the flow of control:
/// an SR destination, `stop`, `rte`, or any branch or jump.
fn changes_sr_or_flow(text: &str) -> bool {
    let mnemonic = text.split(' ').next().unwrap_or("");
    text.ends_with(",%sr")
        || ["stop", "rte", "rtr", "rts", "jmp", "jsr", "bra", "bsr", "trap"]
            .iter()
            .any(|m| mnemonic.starts_with(m))
        // Bcc and DBcc (b/db + condition), not btst/bchg/bclr/bset/bfxxx.
        || (mnemonic.starts_with('b')
            && !["btst", "bchg", "bclr", "bset", "bf", "bkpt"]
                .iter()
                .any(|m| mnemonic.starts_with(m)))
        || mnemonic.starts_with("db")
}

/// Checks the copyback cache-off routine, straight-line: SR's interrupt mask raised to 7
/// (`oriw #1792,%sr`), then `cpusha bc`, then `movec ...,%cacr` with a register last set to
/// 0; from the mask to that CACR write nothing changes SR or the flow of control, from the
/// push to it nothing touches memory, and the CACR is written once.
pub fn check_cache_off(insns: &[Insn]) -> Result<()> {
    let find = |pred: &dyn Fn(&str) -> bool| insns.iter().position(|i| pred(&i.text));
    let Some(push) = find(&|t| t == "cpusha bc") else {
        return fail("machine_cache_off_040 has no `cpusha bc`".into());
    };
    let writes_cacr = |t: &str| t.starts_with("movec ") && t.ends_with(",%cacr");
    let Some(off) = find(&writes_cacr) else {
        return fail("machine_cache_off_040 never writes the CACR".into());
    };
    if off < push {
        return fail("machine_cache_off_040 writes the CACR before pushing the caches".into());
    }
    if insns[off + 1..].iter().any(|i| writes_cacr(&i.text)) {
        return fail("machine_cache_off_040 writes the CACR more than once".into());
    }
    let Some(mask) = insns[..push]
        .iter()
        .rposition(|i| i.text == "oriw #1792,%sr")
    else {
        return fail(
            "machine_cache_off_040 pushes without masking interrupts to level 7 first: a \
             handler's writes after the push would be lost when the cache turns off"
                .into(),
        );
    };
    if let Some(i) = insns[mask + 1..=off]
        .iter()
        .find(|i| changes_sr_or_flow(&i.text))
    {
        return fail(format!(
            "machine_cache_off_040: `{}` at {:#x} lies between the interrupt mask and the CACR \
             write: interrupts could run, or the push be skipped, before the cache turns off",
            i.text, i.addr
        ));
    }
    if let Some(i) = insns[push + 1..off]
        .iter()
        .find(|i| touches_memory(&i.text))
    {
        return fail(format!(
            "machine_cache_off_040: `{}` at {:#x} touches memory between the push and the \
             CACR write: a line it dirties is lost when the cache turns off",
            i.text, i.addr
        ));
    }
    let reg = insns[off].text["movec ".len()..]
        .split(',')
        .next()
        .unwrap_or("")
        .to_string();
    let zeroed = insns[..off]
        .iter()
        .rev()
        .find(|i| i.text.ends_with(&format!(",{reg}")))
        .is_some_and(|i| i.text == format!("moveq #0,{reg}"));
    if !zeroed {
        return fail(format!(
            "machine_cache_off_040 writes {reg} to the CACR without setting it to 0 first"
        ));
    }
    Ok(())
}

fn objdump(elf: &Path, args: &[String]) -> Result<Vec<Insn>> {
    let out = Command::new("m68k-linux-gnu-objdump")
        .arg("-d")
        .args(args)
        .arg(elf)
        .output()
        .map_err(|e| format!("cannot run m68k-linux-gnu-objdump: {e}"))?;
    if !out.status.success() {
        return fail(format!(
            "m68k-linux-gnu-objdump failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(parse_objdump(&String::from_utf8_lossy(&out.stdout)))
}

fn symbol(elf: &Path, name: &str) -> Result<u32> {
    let out = Command::new("m68k-linux-gnu-nm")
        .arg(elf)
        .output()
        .map_err(|e| format!("cannot run m68k-linux-gnu-nm: {e}"))?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| {
            let mut f = l.split_whitespace();
            let addr = f.next()?;
            let _kind = f.next()?;
            (f.next()? == name).then(|| u32::from_str_radix(addr, 16).ok())?
        })
        .ok_or_else(|| format!("kernel.elf has no symbol {name}"))
}

/// Runs every check on the linked kernel.
pub fn check(elf: &Path) -> crate::Result<()> {
    check_elf(elf).map_err(anyhow::Error::msg)
}

fn check_elf(elf: &Path) -> Result<()> {
    let base = symbol(elf, "cacheop_table")?;
    let table = objdump(
        elf,
        &[
            format!("--start-address={base:#x}"),
            format!("--stop-address={:#x}", base + 256),
        ],
    )?;
    check_cache_table(base, &table)?;
    let dispatch = objdump(elf, &["--disassemble=machine_cache_op".into()])?;
    check_cache_dispatch(base, &dispatch)?;
    let dc = symbol(elf, "dcop_table")?;
    let dc_dispatch = objdump(elf, &["--disassemble=Z_machineZ_dc_op".into()])?;
    let dc_table = objdump(
        elf,
        &[
            format!("--start-address={dc:#x}"),
            format!("--stop-address={:#x}", dc + 32),
        ],
    )?;
    check_dc_op(dc, &dc_dispatch, &dc_table)?;
    let off = objdump(elf, &["--disassemble=machine_cache_off_040".into()])?;
    check_cache_off(&off)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insns(lines: &[&str]) -> Vec<Insn> {
        lines
            .iter()
            .enumerate()
            .map(|(n, t)| Insn {
                addr: 0x1000 + 2 * n as u32,
                text: t.to_string(),
            })
            .collect()
    }

    /// The routine as linked today (objdump output, QEMU-independent).
    const GOOD: &[&str] = &[
        "movew %sr,%d1",
        "oriw #1792,%sr",
        "cpusha bc",
        "moveq #0,%d0",
        "movec %d0,%cacr",
        "movew %d1,%sr",
        "rts",
    ];

    #[test]
    fn parses_objdump_lines() {
        let out = "\n0012b1b8 <machine_cache_off_040>:\n  12b1be:\tf4f8           \tcpusha bc\n  12b1c2:\t4e7b 0002      \tmovec %d0,%cacr\n";
        assert_eq!(
            parse_objdump(out),
            vec![
                Insn {
                    addr: 0x12b1be,
                    text: "cpusha bc".into()
                },
                Insn {
                    addr: 0x12b1c2,
                    text: "movec %d0,%cacr".into()
                }
            ]
        );
    }

    #[test]
    fn the_masked_push_and_off_passes() {
        assert_eq!(check_cache_off(&insns(GOOD)), Ok(()));
    }

    #[test]
    fn an_unmasked_push_fails() {
        let mut v = GOOD.to_vec();
        v.remove(1);
        assert!(check_cache_off(&insns(&v)).unwrap_err().contains("masking"));
    }

    #[test]
    fn a_store_or_call_between_push_and_off_fails() {
        for between in ["movel %d0,%sp@-", "jsr 0x1234", "clrl %a0@"] {
            let mut v = GOOD.to_vec();
            v.insert(3, between);
            let e = check_cache_off(&insns(&v)).unwrap_err();
            assert!(
                e.contains("touches memory") || e.contains("lies between"),
                "{between}: {e}"
            );
        }
    }

    #[test]
    fn the_old_disable_fails() {
        // Rust's old disable: a push routine, a return, then a separate CACR write.
        let old = ["cpusha bc", "rts", "moveq #0,%d0", "movec %d0,%cacr"];
        assert!(check_cache_off(&insns(&old)).is_err());
    }

    #[test]
    fn a_nonzero_cacr_value_fails() {
        let mut v = GOOD.to_vec();
        v[3] = "moveq #1,%d0";
        assert!(check_cache_off(&insns(&v)).unwrap_err().contains("to 0"));
    }

    #[test]
    fn sr_restored_or_flow_changed_before_the_cacr_write_fails() {
        let cases: &[(usize, &str)] = &[
            (3, "movew %d1,%sr"),
            (3, "andiw #-1793,%sr"),
            (3, "stop #9984"),
            (3, "bras 0x1010"),
            (2, "beqs 0x1010"),
        ];
        for &(at, insn) in cases {
            let mut v = GOOD.to_vec();
            v.insert(at, insn);
            let e = check_cache_off(&insns(&v)).unwrap_err();
            assert!(e.contains("lies between"), "{insn}: {e}");
        }
        // Unmasked before the push, masked again only after it.
        let late = [
            "movew %sr,%d1",
            "cpusha bc",
            "oriw #1792,%sr",
            "moveq #0,%d0",
            "movec %d0,%cacr",
        ];
        assert!(check_cache_off(&insns(&late)).is_err());
        // A second CACR write (caches back on).
        let mut twice = GOOD.to_vec();
        twice.insert(5, "movec %d1,%cacr");
        assert!(check_cache_off(&insns(&twice))
            .unwrap_err()
            .contains("more than once"));
    }

    /// `Z_machineZ_dc_op` and its table as linked today.
    const DC_DISPATCH: &[&str] = &[
        "movel %sp@(8),%d0",
        "moveal %sp@(12),%a0",
        "andil #7,%d0",
        "jmp %pc@(17d06a <dcop_table>,%d0:l:4)",
    ];
    const DC_TABLE: &[&str] = &[
        "cinvl dc,%a0@",
        "rts",
        "cpushl dc,%a0@",
        "rts",
        "cinvp dc,%a0@",
        "rts",
        "cpushp dc,%a0@",
        "rts",
        "cpusha dc",
        "rts",
        "cpusha dc",
        "rts",
        "cpusha dc",
        "rts",
        "cpusha dc",
        "rts",
    ];

    fn dc_table(lines: &[&str]) -> Vec<Insn> {
        lines
            .iter()
            .enumerate()
            .map(|(n, t)| Insn {
                addr: 0x17d06a + 2 * n as u32,
                text: t.to_string(),
            })
            .collect()
    }

    #[test]
    fn the_dc_op_entry_as_built_passes() {
        assert_eq!(
            check_dc_op(0x17d06a, &insns(DC_DISPATCH), &dc_table(DC_TABLE)),
            Ok(())
        );
    }

    #[test]
    fn a_dc_op_entry_that_strays_fails() {
        let table = dc_table(DC_TABLE);
        // No mask, a changed selector or address, a jump elsewhere or unscaled.
        for (at, insn, remove) in [
            (2, "andil #15,%d0", true),
            (3, "addql #1,%d0", false),
            (3, "addql #4,%a0", false),
            (3, "moveal %a0@+,%a1", false),
            (3, "jmp %pc@(17d06e <dcop_table+0x4>,%d0:l:4)", true),
            (3, "jmp %pc@(17d06a <dcop_table>,%d0:l:2)", true),
        ] {
            let mut v = DC_DISPATCH.to_vec();
            if remove {
                v.remove(at);
            }
            v.insert(at, insn);
            assert!(
                check_dc_op(0x17d06a, &insns(&v), &table).is_err(),
                "{insn} accepted"
            );
        }
        // Entries swapped, a wrong cache, an entry that does not return.
        for (at, insn) in [
            (0, "cpushl dc,%a0@"),
            (2, "cinvl dc,%a0@"),
            (4, "cinvp bc,%a0@"),
            (7, "nop"),
            (12, "cinva dc"),
        ] {
            let mut v = DC_TABLE.to_vec();
            v[at] = insn;
            let e = check_dc_op(0x17d06a, &insns(DC_DISPATCH), &dc_table(&v)).unwrap_err();
            assert!(e.contains("entry"), "{insn}: {e}");
        }
    }

    /// The dispatcher as linked today.
    const DISPATCH: &[&str] = &[
        "movel %sp@(4),%d0",
        "moveal %sp@(8),%a0",
        "cmpil #248,%d0",
        "bhis 0x12b0b4 <machine_cache_op+0x1e>",
        "moveq #7,%d1",
        "andl %d0,%d1",
        "bnes 0x12b0b4 <machine_cache_op+0x1e>",
        "lea %pc@(12b0b8 <cacheop_table>),%a1",
        "jmp %a1@(0,%d0:l)",
        "moveq #1,%d0",
        "rts",
    ];

    #[test]
    fn the_dispatcher_as_built_passes() {
        assert_eq!(check_cache_dispatch(0x12b0b8, &insns(DISPATCH)), Ok(()));
    }

    #[test]
    fn a_dispatcher_that_changes_the_kind_or_base_fails() {
        for (at, insn) in [
            (8, "eoril #32,%d0"),
            (8, "addql #8,%d0"),
            (8, "lea %a1@(8),%a1"),
            (8, "exg %d0,%d1"),
        ] {
            let mut v = DISPATCH.to_vec();
            v.insert(at, insn);
            assert!(
                check_cache_dispatch(0x12b0b8, &insns(&v)).is_err(),
                "{insn} accepted"
            );
        }
        // The table's address elsewhere.
        assert!(check_cache_dispatch(0x12b0c0, &insns(DISPATCH)).is_err());
    }

    #[test]
    fn expected_entries_follow_the_manual() {
        // Opcode words from MC68040UM's CINV/CPUSH pages, decoded by hand.
        assert_eq!(expected_entry(0x48), "cinvl dc,%a0@"); // 0xf448
        assert_eq!(expected_entry(0xf8), "cpusha bc"); // 0xf4f8
        assert_eq!(expected_entry(0xb0), "cpushp ic,%a0@"); // 0xf4b0
        assert_eq!(expected_entry(0x98), "cinva ic"); // 0xf498
        for refused in [0x00, 0x08, 0x20, 0x40, 0x60, 0x80, 0xa0, 0xc0, 0xe0] {
            assert_eq!(expected_entry(refused), "moveq #1,%d0", "{refused:#x}");
        }
    }

    fn table(entry: impl Fn(u32) -> [String; 4]) -> Vec<Insn> {
        (0..256u32)
            .step_by(8)
            .flat_map(|k| {
                entry(k).into_iter().enumerate().map(move |(n, text)| Insn {
                    addr: 0x2000 + k + 2 * n as u32,
                    text,
                })
            })
            .collect()
    }

    fn right(k: u32) -> [String; 4] {
        let first = expected_entry(k);
        if first.starts_with("moveq") {
            [first, "rts".into(), "nop".into(), "nop".into()]
        } else {
            [first, "moveq #0,%d0".into(), "rts".into(), "nop".into()]
        }
    }

    #[test]
    fn the_table_as_built_passes() {
        assert_eq!(check_cache_table(0x2000, &table(right)), Ok(()));
    }

    #[test]
    fn a_table_built_with_the_comment_bug_fails() {
        // `.word 0xf400 | kind` in m68k gas: `|` starts a comment, every opcode is 0xf400,
        // which objdump shows as `.short 0xf400`.
        let broken = table(|k| {
            let mut e = right(k);
            if !e[0].starts_with("moveq") {
                e[0] = ".short 0xf400".into();
            }
            e
        });
        let err = check_cache_table(0x2000, &broken).unwrap_err();
        assert!(err.contains("kind 0x48: want `cinvl dc,%a0@`"), "{err}");
    }

    #[test]
    fn a_swapped_entry_fails() {
        let swapped = table(|k| right(if k == 0x58 { 0x78 } else { k }));
        assert!(check_cache_table(0x2000, &swapped)
            .unwrap_err()
            .contains("kind 0x58"));
    }
}
