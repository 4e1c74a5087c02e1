//! The live seed matrix (`blk::seed_live_matrix`): the table in docs/dma-sync.md against the
//! `seed-live:` lines a guest run printed. Every cell of the matrix must be documented once
//! and printed once, with the same outcome and audit verdict.

use console_proto::seed_live::{Audit, Cache, Cell, EventIdx, Line, Mode, Outcome, PostRead, Sync};
use std::collections::BTreeMap;

const START: &str = "<!-- live-matrix -->";
const END: &str = "<!-- /live-matrix -->";

/// The documented cells: the markdown table between the markers, one row per cell
/// (`| sync | postread | cache | mode | event_idx | outcome | audit |`), header and rule
/// rows skipped.
pub fn documented(doc: &str) -> Result<Vec<Line>, String> {
    let start = doc
        .find(START)
        .ok_or_else(|| format!("docs/dma-sync.md has no {START} marker"))?
        + START.len();
    let end = start
        + doc[start..]
            .find(END)
            .ok_or_else(|| format!("docs/dma-sync.md has no {END} marker"))?;
    let mut lines = Vec::new();
    for row in doc[start..end].lines().map(str::trim) {
        if !row.starts_with('|') || row.starts_with("| sync") || row.starts_with("|--") {
            continue;
        }
        let cols: Vec<&str> = row.trim_matches('|').split('|').map(str::trim).collect();
        let bad = || format!("docs/dma-sync.md: cannot read the matrix row `{row}`");
        let [sync, postread, cache, mode, event_idx, outcome, audit] = cols[..] else {
            return Err(bad());
        };
        lines.push(Line {
            cell: Cell {
                sync: Sync::from_word(sync).ok_or_else(bad)?,
                postread: PostRead::from_word(postread).ok_or_else(bad)?,
                cache: Cache::from_word(cache).ok_or_else(bad)?,
                mode: Mode::from_word(mode).ok_or_else(bad)?,
                event_idx: EventIdx::from_word(event_idx).ok_or_else(bad)?,
            },
            outcome: Outcome::from_word(outcome.trim_matches('*')).ok_or_else(bad)?,
            audit: Audit::from_word(audit).ok_or_else(bad)?,
        });
    }
    Ok(lines)
}

/// The cells a guest run printed, in order.
pub fn printed(console: &str) -> Vec<Line> {
    console.lines().filter_map(Line::parse).collect()
}

/// Ok when both name every cell of the matrix exactly once with the same result; else the
/// differences, one per line.
pub fn compare(documented: &[Line], printed: &[Line]) -> Result<(), String> {
    let mut problems = Vec::new();
    let index = |lines: &[Line], what: &str, problems: &mut Vec<String>| {
        let mut m = BTreeMap::new();
        for l in lines {
            if m.insert(l.cell, *l).is_some() {
                problems.push(format!("{what} twice: {l}"));
            }
        }
        m
    };
    let doc = index(documented, "documented", &mut problems);
    let got = index(printed, "printed", &mut problems);
    for cell in Cell::all() {
        match (doc.get(&cell), got.get(&cell)) {
            (Some(d), Some(g)) if d == g => {}
            (Some(d), Some(g)) => problems.push(format!(
                "{}: documented {} audit={}, printed {} audit={}",
                cell_name(&cell),
                d.outcome,
                d.audit,
                g.outcome,
                g.audit
            )),
            (None, _) => problems.push(format!("{}: not documented", cell_name(&cell))),
            (_, None) => problems.push(format!("{}: not printed", cell_name(&cell))),
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

fn cell_name(c: &Cell) -> String {
    format!(
        "sync={} postread={} cache={} mode={} event_idx={}",
        c.sync, c.postread, c.cache, c.mode, c.event_idx
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The documented table as the repository has it.
    fn doc() -> String {
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/dma-sync.md"))
            .unwrap()
    }

    #[test]
    fn the_docs_document_every_cell_once() {
        let d = documented(&doc()).unwrap();
        assert_eq!(d.len(), 48);
        // The documented table compared with itself as if printed: complete, no repeats.
        assert_eq!(compare(&d, &d), Ok(()));
    }

    #[test]
    fn a_different_outcome_or_a_missing_cell_is_named() {
        let d = documented(&doc()).unwrap();
        let mut p = d.clone();
        let flipped = p
            .iter_mut()
            .find(|l| l.outcome == Outcome::Hangs)
            .expect("a hanging cell");
        flipped.outcome = Outcome::Works;
        let e = compare(&d, &p).unwrap_err();
        assert!(
            e.contains("documented HANGS audit=flags, printed works audit=flags"),
            "{e}"
        );
        p.pop();
        let e = compare(&d, &p).unwrap_err();
        assert!(e.contains("not printed"), "{e}");
    }

    #[test]
    fn printed_lines_are_found_among_other_output() {
        let console = "test blk::seed_live_matrix ... seed-live: sync=corrected postread=noop cache=coherent mode=interrupt event_idx=on -> works audit=clean\n\
                       dma audit: something\n\
                       seed-live: sync=netbsd-2024 postread=noop cache=68040 mode=polled event_idx=off -> HANGS audit=flags\nok\n";
        let p = printed(console);
        assert_eq!(p.len(), 2);
        assert_eq!(p[1].outcome, Outcome::Hangs);
    }

    #[test]
    fn a_malformed_row_is_an_error() {
        let doc = format!(
            "{START}\n| corrected | noop | coherent | interrupt | on | fine | clean |\n{END}\n"
        );
        assert!(documented(&doc).unwrap_err().contains("cannot read"));
    }
}
