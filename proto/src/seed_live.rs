//! The live seed matrix (`blk::seed_live_matrix`): one console line per cell, the real
//! virtio-blk driver against QEMU's device under one used-ring sync sequencing, POSTREAD
//! semantics, cache model, completion mode and EVENT_IDX setting:
//!
//! ```text
//! seed-live: sync=netbsd-2024 postread=noop cache=68030 mode=polled event_idx=off -> HANGS audit=flags
//! ```
//!
//! The xtask compares every cell with the table in docs/dma-sync.md.

use core::fmt;

words!(
    /// The used ring's read-phase syncs (kernel option `vq_sync`).
    Sync { Corrected = "corrected", NetBsd2024 = "netbsd-2024" }
);
words!(
    /// What POSTREAD does in the cache model (`dma_postread`).
    PostRead { NoOp = "noop", Invalidate = "invalidate" }
);
words!(
    /// The data cache DMA memory goes through: none, or the 68030's or 68040's model.
    Cache { Coherent = "coherent", M68030 = "68030", M68040 = "68040" }
);
words!(
    /// How the driver learns of completions.
    Mode { Interrupt = "interrupt", Polled = "polled" }
);
words!(
    /// VIRTIO_F_EVENT_IDX negotiated.
    EventIdx { On = "on", Off = "off" }
);
words!(
    /// What the cell's requests did.
    Outcome {
        /// Every request completed with the right data.
        Works = "works",
        /// The device completed a request (used->idx in memory moved) but the driver never
        /// saw it before its timeout: PR kern/60182.
        Hangs = "HANGS",
        /// A request timed out and the device had not completed it: it was never notified.
        LostKick = "LOST-KICK",
        /// A request completed but the driver read other data than was written.
        Stale = "STALE",
    }
);
words!(
    /// The bus_dma auditor's verdict on the cell.
    Audit { Clean = "clean", Flags = "flags" }
);

/// One cell's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cell {
    pub sync: Sync,
    pub postread: PostRead,
    pub cache: Cache,
    pub mode: Mode,
    pub event_idx: EventIdx,
}

impl Cell {
    /// Every cell, in the order the guest runs them (48).
    pub fn all() -> impl Iterator<Item = Cell> {
        Sync::ALL.iter().flat_map(|&sync| {
            PostRead::ALL.iter().flat_map(move |&postread| {
                Cache::ALL.iter().flat_map(move |&cache| {
                    Mode::ALL.iter().flat_map(move |&mode| {
                        EventIdx::ALL.iter().map(move |&event_idx| Cell {
                            sync,
                            postread,
                            cache,
                            mode,
                            event_idx,
                        })
                    })
                })
            })
        })
    }
}

/// One cell's line: its settings, outcome and audit verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line {
    pub cell: Cell,
    pub outcome: Outcome,
    pub audit: Audit,
}

const PREFIX: &str = "seed-live: ";

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.cell;
        write!(
            f,
            "{PREFIX}sync={} postread={} cache={} mode={} event_idx={} -> {} audit={}",
            c.sync, c.postread, c.cache, c.mode, c.event_idx, self.outcome, self.audit
        )
    }
}

impl Line {
    /// The cell line in `line` (anywhere in it: a test's own output may precede it), or None.
    pub fn parse(line: &str) -> Option<Line> {
        let rest = &line[line.find(PREFIX)? + PREFIX.len()..];
        let mut words = rest.split_whitespace();
        let mut field = |key: &str| {
            words
                .next()
                .and_then(|w| w.strip_prefix(key))
                .and_then(|w| w.strip_prefix('='))
        };
        let cell = Cell {
            sync: Sync::from_word(field("sync")?)?,
            postread: PostRead::from_word(field("postread")?)?,
            cache: Cache::from_word(field("cache")?)?,
            mode: Mode::from_word(field("mode")?)?,
            event_idx: EventIdx::from_word(field("event_idx")?)?,
        };
        let mut words = rest.split_whitespace().skip(5);
        if words.next()? != "->" {
            return None;
        }
        let outcome = Outcome::from_word(words.next()?)?;
        let audit = Audit::from_word(words.next()?.strip_prefix("audit=")?)?;
        Some(Line {
            cell,
            outcome,
            audit,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::format;

    #[test]
    fn a_line_reads_back_as_written() {
        let text = "seed-live: sync=netbsd-2024 postread=noop cache=68030 mode=polled event_idx=off -> HANGS audit=flags";
        let line = Line::parse(text).expect("parses");
        assert_eq!(
            line,
            Line {
                cell: Cell {
                    sync: Sync::NetBsd2024,
                    postread: PostRead::NoOp,
                    cache: Cache::M68030,
                    mode: Mode::Polled,
                    event_idx: EventIdx::Off,
                },
                outcome: Outcome::Hangs,
                audit: Audit::Flags,
            }
        );
        assert_eq!(format!("{line}"), text);
        // After other output on the same console line.
        assert_eq!(Line::parse(&format!("test x ... {text}")), Some(line));
    }

    #[test]
    fn malformed_lines_are_none() {
        for bad in [
            "seed-live: sync=corrected",
            "seed-live: sync=netbsd postread=noop cache=68030 mode=polled event_idx=off -> works audit=clean",
            "seed-live: sync=corrected postread=noop cache=68030 mode=polled event_idx=off works audit=clean",
            "seed-live: sync=corrected postread=noop cache=68030 mode=polled event_idx=off -> fine audit=clean",
            "nothing here",
        ] {
            assert_eq!(Line::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn there_are_48_distinct_cells() {
        let mut cells: std::vec::Vec<Cell> = Cell::all().collect();
        assert_eq!(cells.len(), 2 * 2 * 3 * 2 * 2);
        cells.sort();
        cells.dedup();
        assert_eq!(cells.len(), 48);
    }
}
