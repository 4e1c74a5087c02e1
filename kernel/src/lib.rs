//! The m68k virt guest kernel.
//!
//! Built for `wasm32v1-none` and translated to m68k by the xtask (see docs/toolchain.md).
//! The pure modules (bootinfo, cmdline, harness logic, conformance cases) also build on the
//! host for unit tests; everything that touches the machine is `target_arch = "wasm32"` only.
#![no_std]

extern crate alloc;
#[cfg(not(target_arch = "wasm32"))]
extern crate std;

pub mod bootinfo;
pub mod cache;
pub mod cmdline;
pub mod cpu;
pub mod dma_sync;
pub mod ipl;
pub mod irq;
pub mod line_editor;
pub mod time;
pub mod units;
#[macro_use]
pub mod harness;

mod conformance_cases;
pub mod conformance {
    //! Codegen conformance cases and the host-computed results (build.rs) they must match.
    pub use crate::conformance_cases::CASES;
    include!(concat!(env!("OUT_DIR"), "/conformance_expected.rs"));
}

#[cfg(target_arch = "wasm32")]
#[macro_use]
pub mod console;
#[cfg(target_arch = "wasm32")]
pub mod bench;
#[cfg(target_arch = "wasm32")]
pub mod disks;
#[cfg(target_arch = "wasm32")]
pub mod dma_m68k;
#[cfg(target_arch = "wasm32")]
pub mod fatal;
#[cfg(target_arch = "wasm32")]
pub mod heap;
#[cfg(target_arch = "wasm32")]
pub mod machine;
#[cfg(target_arch = "wasm32")]
mod start;
#[cfg(target_arch = "wasm32")]
mod tests;
#[cfg(target_arch = "wasm32")]
mod tests_blk;
#[cfg(target_arch = "wasm32")]
mod tests_dma;
#[cfg(target_arch = "wasm32")]
mod tests_machine;
#[cfg(target_arch = "wasm32")]
mod tests_virtio;
#[cfg(target_arch = "wasm32")]
pub mod tty_input;
#[cfg(target_arch = "wasm32")]
pub mod virtio_probe;

#[cfg(target_arch = "wasm32")]
pub use start::{boot_info, options};

#[cfg(test)]
mod host_tests {
    #[test]
    fn every_conformance_case_has_a_host_value() {
        for (name, case) in super::conformance::CASES {
            let expected = super::conformance::EXPECTED.iter().find(|(n, _)| n == name);
            assert_eq!(expected.map(|(_, e)| *e), Some(case().as_str()), "{name}");
        }
    }
}
