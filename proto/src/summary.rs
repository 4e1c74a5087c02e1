//! The line that closes a self-test run: `N passed, N failed`, with `, N skipped` appended
//! when some tests were skipped. The xtask requires it (and QEMU's exit status) from every run.

use core::fmt;

/// The counts of a run, as printed on its closing line.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub passed: u32,
    pub failed: u32,
    /// Tests that did not apply here; counted apart, never as passes.
    pub skipped: u32,
}

impl Summary {
    pub fn all_passed(&self) -> bool {
        self.failed == 0
    }

    /// Parses one whole line (surrounding whitespace ignored); None if it is not a summary.
    pub fn parse(line: &str) -> Option<Summary> {
        let mut parts = line.trim().split(", ");
        let count = |part: Option<&str>, word: &str| -> Option<u32> {
            let (n, w) = part?.split_once(' ')?;
            if w != word || n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            n.parse().ok()
        };
        let passed = count(parts.next(), "passed")?;
        let failed = count(parts.next(), "failed")?;
        let skipped = match parts.next() {
            None => 0,
            some => count(some, "skipped")?,
        };
        parts.next().is_none().then_some(Summary {
            passed,
            failed,
            skipped,
        })
    }

    /// The last summary line of a console log (a run prints one; the last one counts).
    pub fn last(console: &str) -> Option<Summary> {
        console.lines().rev().find_map(Summary::parse)
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} passed, {} failed", self.passed, self.failed)?;
        if self.skipped > 0 {
            write!(f, ", {} skipped", self.skipped)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    const fn s(passed: u32, failed: u32, skipped: u32) -> Summary {
        Summary {
            passed,
            failed,
            skipped,
        }
    }

    #[test]
    fn formats_as_the_harness_documents() {
        assert_eq!(s(3, 0, 0).to_string(), "3 passed, 0 failed");
        assert_eq!(s(1, 2, 4).to_string(), "1 passed, 2 failed, 4 skipped");
        assert_eq!(s(0, 0, 0).to_string(), "0 passed, 0 failed");
        assert!(s(3, 0, 7).all_passed());
        assert!(!s(1, 2, 0).all_passed());
    }

    #[test]
    fn parses_literal_lines() {
        assert_eq!(Summary::parse("12 passed, 0 failed"), Some(s(12, 0, 0)));
        assert_eq!(
            Summary::parse("1 passed, 2 failed, 3 skipped\r"),
            Some(s(1, 2, 3))
        );
        assert_eq!(Summary::parse("test x ... ok"), None);
        assert_eq!(Summary::parse("1 passed"), None);
        assert_eq!(Summary::parse("1 passed, 2 failed, extra"), None);
        assert_eq!(Summary::parse("1 passed, 2 failed, 3 skipped, 4 x"), None);
        assert_eq!(Summary::parse("x passed, 0 failed"), None);
        assert_eq!(Summary::parse("+1 passed, 0 failed"), None);
        assert_eq!(Summary::parse("1 failed, 0 passed"), None);
        // The xtask's own closing line has a prefix: it is not a guest summary.
        assert_eq!(Summary::parse("xtask: 5 passed, 0 failed"), None);
    }

    #[test]
    fn round_trip() {
        for v in [s(0, 0, 0), s(7, 0, 1), s(u32::MAX, 3, 0), s(1, 1, u32::MAX)] {
            assert_eq!(Summary::parse(&v.to_string()), Some(v));
        }
    }

    #[test]
    fn the_last_summary_wins() {
        let c = "3 passed, 1 failed\nnoise\n4 passed, 0 failed\n";
        assert_eq!(Summary::last(c), Some(s(4, 0, 0)));
        assert_eq!(Summary::last("no summary"), None);
    }
}
