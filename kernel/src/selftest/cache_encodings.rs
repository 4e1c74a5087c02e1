//! Which CINV/CPUSH encodings `cpu::every_040_instruction_executes` issues: pure, so the host
//! can check that none of them could lose data on a real copyback 68040.
#![forbid(unsafe_code)]

use crate::arch::m68k::cache::{Caches, Scope, Step};

/// Every step the test issues, in order: each cache, each scope, invalidate and push, except
/// an invalidate of the whole data cache (`cinva %dc`, `cinva %bc`). That one discards every
/// dirty line in the cache, and the stack is written between any earlier push and it (the
/// call that issues it), so on copyback hardware it would lose the kernel's own stack lines.
/// Line and page forms act on `addr`, the test's own buffer, pushed first and not written
/// after. The encodings come from `Step::encoding`, the one the cache module issues.
pub fn exercised(addr: u32) -> impl Iterator<Item = Step> {
    [Caches::Data, Caches::Instruction, Caches::Both]
        .into_iter()
        .flat_map(move |caches| {
            [false, true].into_iter().flat_map(move |push| {
                [Scope::Line, Scope::Page, Scope::All]
                    .into_iter()
                    .filter(move |&scope| {
                        push || scope != Scope::All || caches == Caches::Instruction
                    })
                    .map(move |scope| Step {
                        push,
                        scope,
                        caches,
                        addr,
                    })
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::vec::Vec;

    /// Opcode words of the instructions from the manual's encoding (MC68040UM 9.1: 1111 0100
    /// CC P SS rrr, CC = 01 data, 10 instruction, 11 both; P = 1 push; SS = 01 line, 10 page,
    /// 11 all), written out so they do not share the code above.
    const CINVA_DC: u16 = 0xf458;
    const CINVA_BC: u16 = 0xf4d8;
    const CINVA_IC: u16 = 0xf498;
    const CPUSHA_DC: u16 = 0xf478;

    fn opcode(step: Step) -> u16 {
        0xf400 | step.encoding() as u16
    }

    #[test]
    fn no_whole_data_cache_invalidate() {
        let ops: Vec<u16> = exercised(0x1000).map(opcode).collect();
        assert!(
            !ops.contains(&CINVA_DC),
            "cinva %dc discards dirty stack lines"
        );
        assert!(
            !ops.contains(&CINVA_BC),
            "cinva %bc discards dirty stack lines"
        );
    }

    #[test]
    fn everything_else_is_exercised() {
        let ops: Vec<u16> = exercised(0x1000).map(opcode).collect();
        // 3 caches x 3 scopes x {invalidate, push}, less the two refused invalidates.
        assert_eq!(ops.len(), 16);
        assert!(ops.contains(&CINVA_IC));
        assert!(ops.contains(&CPUSHA_DC));
        // cinvl %dc,(a0) and cpushp %bc,(a0): a line and a page form.
        assert!(ops.contains(&0xf448));
        assert!(ops.contains(&0xf4f0));
    }
}
