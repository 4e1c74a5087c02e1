//! One line per test: `test NAME ... ` when it starts, then its verdict on the same line:
//! `ok`, `FAILED: <why>` or `skipped: <why>`. A line that stops after `... ` names the test
//! that was running when the console stopped (a hang, a fatal end).

use core::fmt;

/// Prints `test NAME ... `: the start of a test's line, before the test runs.
pub struct Start<'a>(pub &'a str);

impl fmt::Display for Start<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "test {} ... ", self.0)
    }
}

/// The verdict of a test that passed.
pub const PASSED: &str = "ok";

/// Prints `FAILED: <why>`: the verdict of a test that failed (also after a panic or trap).
pub struct Failed<D>(pub D);

impl<D: fmt::Display> fmt::Display for Failed<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FAILED: {}", self.0)
    }
}

/// Prints `skipped: <why>`: the verdict of a test that does not apply here.
pub struct Skipped<D>(pub D);

impl<D: fmt::Display> fmt::Display for Skipped<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "skipped: {}", self.0)
    }
}

/// What follows a test's `... `.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict<'a> {
    /// Nothing: the test had not finished when the line ended.
    Running,
    Passed,
    Failed(&'a str),
    Skipped(&'a str),
    /// Some other text (a log line printed while the test ran, say).
    Other(&'a str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TestLine<'a> {
    pub name: &'a str,
    pub verdict: Verdict<'a>,
}

/// Parses one console line; None if it is not a test line.
pub fn parse(line: &str) -> Option<TestLine<'_>> {
    let (name, rest) = line.strip_prefix("test ")?.split_once(" ... ")?;
    let rest = rest.trim_end();
    let verdict = if rest.is_empty() {
        Verdict::Running
    } else if rest == PASSED {
        Verdict::Passed
    } else if let Some(why) = rest.strip_prefix("FAILED: ") {
        Verdict::Failed(why)
    } else if let Some(why) = rest.strip_prefix("skipped: ") {
        Verdict::Skipped(why)
    } else {
        Verdict::Other(rest)
    };
    Some(TestLine { name, verdict })
}

/// The test whose line was left open at the end of a console log (the last test line,
/// when it has no verdict).
pub fn unfinished(console: &str) -> Option<&str> {
    let last = console.lines().rev().find_map(parse)?;
    (last.verdict == Verdict::Running).then_some(last.name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::format;

    #[test]
    fn formats_literal_lines() {
        assert_eq!(
            format!("{}{PASSED}", Start("boot::cmdline")),
            "test boot::cmdline ... ok"
        );
        assert_eq!(
            format!("{}{}", Start("fail::assertion"), Failed("1 + 1 is not 3")),
            "test fail::assertion ... FAILED: 1 + 1 is not 3"
        );
        assert_eq!(
            format!("{}{}", Start("cpu::fpu"), Skipped("no FPU")),
            "test cpu::fpu ... skipped: no FPU"
        );
        assert_eq!(
            format!("{}", Start("hang::forever")),
            "test hang::forever ... "
        );
    }

    #[test]
    fn parses_literal_lines() {
        let t = |name, verdict| Some(TestLine { name, verdict });
        assert_eq!(parse("test a::b ... ok"), t("a::b", Verdict::Passed));
        assert_eq!(parse("test a::b ... ok\r"), t("a::b", Verdict::Passed));
        assert_eq!(
            parse("test a::b ... FAILED: x != y: 1 vs 2"),
            t("a::b", Verdict::Failed("x != y: 1 vs 2"))
        );
        assert_eq!(
            parse("test a::b ... skipped: no disks= option"),
            t("a::b", Verdict::Skipped("no disks= option"))
        );
        assert_eq!(parse("test a::b ... "), t("a::b", Verdict::Running));
        assert_eq!(
            parse("test a::b ... blk: 512-byte blocks"),
            t("a::b", Verdict::Other("blk: 512-byte blocks"))
        );
        assert_eq!(parse("testing a::b ... ok"), None);
        assert_eq!(parse("test a::b ..."), None);
        assert_eq!(parse("1 passed, 0 failed"), None);
    }

    #[test]
    fn round_trip() {
        let line = format!("{}{}", Start("virtio::probe"), Failed("why: a ... b"));
        assert_eq!(
            parse(&line),
            Some(TestLine {
                name: "virtio::probe",
                verdict: Verdict::Failed("why: a ... b")
            })
        );
    }

    #[test]
    fn the_unfinished_test_is_found() {
        assert_eq!(
            unfinished("test a ... ok\ntest b ... \nfatal exception: x\n"),
            Some("b")
        );
        assert_eq!(unfinished("test a ... ok\n1 passed, 0 failed\n"), None);
        assert_eq!(unfinished("banner\n"), None);
    }
}
