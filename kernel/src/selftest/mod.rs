//! The in-guest self tests and the block I/O benchmark: the harness, one file per test group,
//! and the registry below, which `start` hands to the harness.
//!
//! Add a test: write `fn name() -> TestResult` in a group's file and list it in that group's
//! list (`tests()`, or in machine.rs `cpu_tests()`, `irq_tests()`... one per group). Names
//! are `group::name`; `test=<text>` selects by substring.

#[macro_use]
pub mod harness;

#[cfg(any(test, target_arch = "wasm32"))]
mod cache_encodings;
mod conformance_cases;
pub mod conformance {
    //! Codegen conformance cases and the recorded results the guest must match
    //! (`conformance_expected.rs`, checked in; `HOST` is what build.rs computes now).
    pub use super::conformance_cases::CASES;
    include!("conformance_expected.rs");
    /// Each case's result as computed on this build's host (build.rs).
    pub mod host {
        include!(concat!(env!("OUT_DIR"), "/conformance_expected.rs"));
    }
}

#[cfg(target_arch = "wasm32")]
pub mod bench;
#[cfg(target_arch = "wasm32")]
mod blk;
#[cfg(target_arch = "wasm32")]
mod boot;
#[cfg(target_arch = "wasm32")]
mod codegen;
#[cfg(target_arch = "wasm32")]
mod dma;
#[cfg(target_arch = "wasm32")]
mod fail;
#[cfg(target_arch = "wasm32")]
mod machine;
#[cfg(target_arch = "wasm32")]
mod virtio;

#[cfg(target_arch = "wasm32")]
use alloc::vec::Vec;
#[cfg(target_arch = "wasm32")]
use harness::Test;

/// Every test, in the order they run.
#[cfg(target_arch = "wasm32")]
pub fn all() -> Vec<Test> {
    let mut all = Vec::new();
    all.extend(codegen::tests());
    all.extend(boot::tests());
    all.extend(machine::cpu_tests());
    all.extend(machine::irq_tests());
    all.extend(machine::time_tests());
    all.extend(machine::wallclock_tests());
    all.extend(machine::tty_tests());
    all.extend(dma::tests());
    all.extend(virtio::tests());
    all.extend(blk::tests());
    all.extend(fail::tests());
    all.extend(fail::recovery_tests());
    all.push(Test::new("hang::forever", fail::hang_forever));
    all
}
