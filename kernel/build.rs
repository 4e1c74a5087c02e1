//! Computes the expected result of every codegen conformance case on the host, so the guest
//! checks its own results against a real computation, not a hand-typed constant.
extern crate alloc;

#[path = "src/selftest/conformance_cases.rs"]
#[allow(dead_code)]
mod cases;

use std::fmt::Write as _;

fn main() {
    println!("cargo:rerun-if-changed=src/selftest/conformance_cases.rs");
    let mut out = String::from(
        "/// (case name, result computed on the build host).\npub const EXPECTED: &[(&str, &str)] = &[\n",
    );
    for (name, case) in cases::CASES {
        writeln!(out, "    ({name:?}, {:?}),", case()).unwrap();
    }
    out.push_str("];\n");
    let dir = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    std::fs::write(format!("{dir}/conformance_expected.rs"), out).expect("write expected values");
}
