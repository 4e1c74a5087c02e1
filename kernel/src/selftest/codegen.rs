//! The compilation route's conformance checks: each case's guest result against the host's.
#![forbid(unsafe_code)]

use crate::selftest::conformance::{CASES, EXPECTED};
use crate::selftest::harness::{Failure, Test, TestResult};
use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

pub fn tests() -> Vec<Test> {
    CASES
        .iter()
        .map(|&(name, case)| {
            let expected = EXPECTED.iter().find(|(n, _)| *n == name).map(|(_, e)| *e);
            let full: &'static str = Box::leak(format!("codegen::{name}").into_boxed_str());
            Test {
                name: full,
                run: Box::new(move || check(case, expected)),
            }
        })
        .collect()
}

fn check(case: fn() -> String, expected: Option<&str>) -> TestResult {
    let expected =
        expected.ok_or_else(|| Failure::Failed("no host value recorded for this case".into()))?;
    let got = case();
    ensure!(
        got == expected,
        "guest computed\n    {got}\n  host computed\n    {expected}"
    );
    Ok(())
}
