//! Checks of the machine layer's code as linked, read back through binutils' disassembler: an
//! independent decoder of what boot/cpu.S builds from numbers, and the only place where a
//! property of the instruction order itself (what runs with interrupts masked, what touches
//! memory) can be seen. QEMU models no caches, so a boot cannot show either.
//!
//! - `machine_cache_op`'s table: the entry at offset `kind` decodes to the CINV/CPUSH whose
//!   fields are `kind`'s (MC68040UM 9.1, spelled out below from the manual, not from cpu.S),
//!   and every other entry refuses;
//! - `machine_cache_off_040` (cache::disable on a copyback CPU): interrupts masked to level 7
//!   before the CPUSHA, and nothing between the CPUSHA and the CACR write that touches memory
//!   or calls out, so no dirty line can be left in a cache that stops answering.

use crate::{anyhow, fail, Result};
use std::path::Path;
use std::process::Command;

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

/// Checks the copyback cache-off routine: SR's interrupt mask raised to 7 (`oriw #1792,%sr`)
/// before `cpusha bc`; from there to `movec ...,%cacr` no instruction touches memory; the
/// register moved to CACR was last set to 0.
pub fn check_cache_off(insns: &[Insn]) -> Result<()> {
    let find = |pred: &dyn Fn(&str) -> bool| insns.iter().position(|i| pred(&i.text));
    let Some(push) = find(&|t| t == "cpusha bc") else {
        return fail("machine_cache_off_040 has no `cpusha bc`");
    };
    let Some(off) = find(&|t| t.starts_with("movec ") && t.ends_with(",%cacr")) else {
        return fail("machine_cache_off_040 never writes the CACR");
    };
    if off < push {
        return fail("machine_cache_off_040 writes the CACR before pushing the caches");
    }
    let masked = insns[..push].iter().any(|i| i.text == "oriw #1792,%sr");
    if !masked {
        return fail(
            "machine_cache_off_040 pushes without masking interrupts to level 7 first: a \
             handler's writes after the push would be lost when the cache turns off",
        );
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
        .map_err(|e| anyhow!("cannot run m68k-linux-gnu-objdump: {e}"))?;
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
        .map_err(|e| anyhow!("cannot run m68k-linux-gnu-nm: {e}"))?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| {
            let mut f = l.split_whitespace();
            let addr = f.next()?;
            let _kind = f.next()?;
            (f.next()? == name).then(|| u32::from_str_radix(addr, 16).ok())?
        })
        .ok_or_else(|| anyhow!("kernel.elf has no symbol {name}"))
}

/// Runs both checks on the linked kernel.
pub fn check(elf: &Path) -> Result<()> {
    let base = symbol(elf, "cacheop_table")?;
    let table = objdump(
        elf,
        &[
            format!("--start-address={base:#x}"),
            format!("--stop-address={:#x}", base + 256),
        ],
    )?;
    check_cache_table(base, &table)?;
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
        check_cache_off(&insns(GOOD)).unwrap();
    }

    #[test]
    fn an_unmasked_push_fails() {
        let mut v = GOOD.to_vec();
        v.remove(1);
        assert!(check_cache_off(&insns(&v))
            .unwrap_err()
            .to_string()
            .contains("masking"));
    }

    #[test]
    fn a_store_or_call_between_push_and_off_fails() {
        for between in ["movel %d0,%sp@-", "jsr 0x1234", "clrl %a0@"] {
            let mut v = GOOD.to_vec();
            v.insert(3, between);
            let e = check_cache_off(&insns(&v)).unwrap_err().to_string();
            assert!(e.contains("touches memory"), "{between}: {e}");
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
        assert!(check_cache_off(&insns(&v))
            .unwrap_err()
            .to_string()
            .contains("to 0"));
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
        check_cache_table(0x2000, &table(right)).unwrap();
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
        let err = check_cache_table(0x2000, &broken).unwrap_err().to_string();
        assert!(err.contains("kind 0x48: want `cinvl dc,%a0@`"), "{err}");
    }

    #[test]
    fn a_swapped_entry_fails() {
        let swapped = table(|k| right(if k == 0x58 { 0x78 } else { k }));
        assert!(check_cache_table(0x2000, &swapped)
            .unwrap_err()
            .to_string()
            .contains("kind 0x58"));
    }
}
