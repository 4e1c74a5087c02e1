//! `cargo xtask mutants`: every bus_dma sync call site of the request path
//! (`drivers::dma::mutant::SITES`) left out in turn, and what caught it: the host tests (a
//! simulated device, the auditor, a copyback cache model, memory that starts with old bytes)
//! and, unless `--host-only`, a guest run against QEMU's device (the auditor and the 68040
//! cache model on). `cargo xtask test` runs the host half and fails on any survivor.

use crate::{anyhow, Result};
use console_proto::Summary;
use std::io::{Read as _, Seek as _};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;
use wait_timeout::ChildExt as _;

/// A host test run that takes longer than this counts as hung (they take about a second).
const HOST_TIMEOUT: Duration = Duration::from_secs(300);

/// What the host tests made of one mutant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostVerdict {
    /// Tests failed: how many, and the first few names.
    Caught { failed: u32, first: Vec<String> },
    /// Every test passed: the removal went unnoticed.
    Survived,
    /// The run did not finish in time (a test without a bound: a bug of its own).
    Hung,
}

/// Reads `cargo test`'s output: the failed count of its `test result:` lines and the names
/// listed under `failures:`.
pub fn host_verdict(output: &str) -> Option<HostVerdict> {
    let mut failed = 0u32;
    let mut any = false;
    for line in output.lines() {
        if let Some(rest) = line.strip_prefix("test result: ") {
            any = true;
            let n = rest
                .split(';')
                .find_map(|f| f.trim().strip_suffix(" failed"))
                .and_then(|n| n.trim().parse::<u32>().ok())?;
            failed += n;
        }
    }
    if !any {
        return None;
    }
    if failed == 0 {
        return Some(HostVerdict::Survived);
    }
    let mut first: Vec<String> = output
        .lines()
        .filter_map(|l| l.strip_prefix("    "))
        .filter(|l| l.contains("::") && !l.contains(' '))
        .map(String::from)
        .collect();
    first.dedup();
    first.truncate(1);
    Some(HostVerdict::Caught { failed, first })
}

/// Runs the drivers crate's host tests with `site` left out (None: every sync in place).
pub fn host_run(root: &Path, site: Option<&str>) -> Result<HostVerdict> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut out = tempfile::tempfile().map_err(|e| anyhow!("temporary file: {e}"))?;
    let mut cmd = Command::new(&cargo);
    cmd.args(["test", "-p", "drivers", "--lib"])
        .current_dir(root)
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out.try_clone()?);
    match site {
        Some(s) => cmd.env("DMA_MUTANT", s),
        None => cmd.env_remove("DMA_MUTANT"),
    };
    let mut child = cmd
        .spawn()
        .map_err(|e| anyhow!("cannot run {cargo} test: {e}"))?;
    if child.wait_timeout(HOST_TIMEOUT)?.is_none() {
        let _ = child.kill();
        let _ = child.wait();
        return Ok(HostVerdict::Hung);
    }
    let mut text = String::new();
    out.rewind()?;
    out.read_to_string(&mut text)?;
    host_verdict(&text).ok_or_else(|| {
        anyhow!(
            "cargo test -p drivers printed no test result{}:\n{text}",
            site.map_or(String::new(), |s| format!(" with DMA_MUTANT={s}"))
        )
    })
}

/// What a guest run made of one mutant: failed tests and audit findings on its console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestVerdict {
    pub failed: u32,
    pub audit_findings: u32,
    pub first_failure: Option<String>,
}

impl GuestVerdict {
    pub fn caught(&self) -> bool {
        self.failed > 0 || self.audit_findings > 0
    }
}

/// Reads a guest console: the summary's failed count, the `dma audit:` lines, the first
/// failed test's name.
pub fn guest_verdict(console: &str) -> GuestVerdict {
    let failed = Summary::last(console).map_or(1, |s| s.failed);
    let audit_findings = console
        .lines()
        .filter(|l| l.contains("dma audit: "))
        .count() as u32;
    // The test whose line (or the next: an audit line may come between) says FAILED.
    let mut current = None;
    let mut first_failure = None;
    for l in console.lines() {
        if let Some(rest) = l.strip_prefix("test ") {
            current = rest.split(" ... ").next().map(String::from);
        }
        if l.contains("FAILED") && first_failure.is_none() {
            first_failure = current.clone();
        }
    }
    GuestVerdict {
        failed,
        audit_findings,
        first_failure,
    }
}

/// The sites, from the drivers crate itself.
pub fn sites() -> impl Iterator<Item = (&'static str, &'static str)> {
    drivers::dma::mutant::SITES.iter().copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_run_is_caught_with_its_test_names() {
        let out = "running 93 tests\n...\nfailures:\n\nfailures:\n    blk::tests_sim::a_test\n    virtio::tests::b_test\n\ntest result: FAILED. 91 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.6s\n";
        assert_eq!(
            host_verdict(out),
            Some(HostVerdict::Caught {
                failed: 2,
                first: vec!["blk::tests_sim::a_test".to_string()]
            })
        );
    }

    #[test]
    fn a_passing_run_survives_and_no_result_is_none() {
        let out = "test result: ok. 93 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.6s\n";
        assert_eq!(host_verdict(out), Some(HostVerdict::Survived));
        assert_eq!(host_verdict("error: could not compile"), None);
    }

    #[test]
    fn guest_consoles_are_read() {
        let console = "dma: sync site blk.request.pre left out (dma_mutant)\ntest blk::x ... dma audit: device started on a line\nFAILED: I/O error\ntest blk::y ... ok\n1 passed, 1 failed\n";
        let v = guest_verdict(console);
        assert_eq!(v.failed, 1);
        assert_eq!(v.audit_findings, 1);
        assert_eq!(v.first_failure.as_deref(), Some("blk::x"));
        assert!(v.caught());
        let clean = guest_verdict("test blk::y ... ok\n1 passed, 0 failed\n");
        assert!(!clean.caught());
        // No summary at all (the guest died): counted as a failure.
        assert!(guest_verdict("kernel panic").caught());
    }
}
