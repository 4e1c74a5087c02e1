//! The m68k virt guest kernel.
//!
//! Built for `wasm32v1-none` and translated to m68k by the xtask (see docs/toolchain.md).
//! Layers, each using only those listed before it (docs/layout.md; checked by the xtask):
//! - `arch::m68k`: the machine layer's imports, IPL, CPU identification, caches, bus_dma syncs;
//! - `board::virt`: the board's fixed addresses and interrupt numbers, bootinfo, interrupt
//!   dispatch, the virtio slot probe;
//! - `kern`: console and log, heap, command line, time, console input, disks, fatal ends;
//! - `selftest`: the in-guest test harness, the test groups and the benchmark (cargo feature
//!   `selftest`, on by default);
//! - `start`: boot, which wires them together.
//!
//! The pure modules (bootinfo, cmdline, harness logic, planners, conformance cases) also build
//! on the host for unit tests; everything that touches the machine is `target_arch = "wasm32"`
//! only.
#![no_std]

extern crate alloc;
#[cfg(not(target_arch = "wasm32"))]
extern crate std;

pub mod arch;
pub mod board;
#[macro_use]
pub mod kern;
#[cfg(feature = "selftest")]
#[macro_use]
pub mod selftest;

#[cfg(target_arch = "wasm32")]
mod start;

#[cfg(all(test, feature = "selftest"))]
mod host_tests {
    use crate::selftest::conformance;

    /// The guest is checked against recorded values; the host recomputes every case at each
    /// build, so a case whose result changes (an edit, or a host/compiler that disagrees with
    /// the recording) fails here instead of silently moving the guest's target.
    #[test]
    fn conformance_cases_still_compute_the_recorded_values() {
        let names: std::vec::Vec<&str> = conformance::CASES.iter().map(|(n, _)| *n).collect();
        let recorded: std::vec::Vec<&str> = conformance::EXPECTED.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names, recorded,
            "cases vs recorded values: re-record conformance_expected.rs"
        );
        for (name, value) in conformance::host::EXPECTED {
            let rec = conformance::EXPECTED.iter().find(|(n, _)| n == name);
            assert_eq!(
                rec.map(|(_, v)| *v),
                Some(*value),
                "{name}: host result vs recorded"
            );
        }
    }
}
