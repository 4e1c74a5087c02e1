//! The m68k virt guest kernel.
//!
//! Built for `wasm32v1-none` and translated to m68k by the xtask (see docs/toolchain.md).
//! Layers, each using only those listed before it (docs/layout.md; checked by the xtask):
//! - `arch::m68k`: the machine layer's imports, IPL, CPU identification, caches, bus_dma syncs;
//! - `board::virt`: the board's fixed addresses and interrupt numbers, bootinfo, interrupt
//!   dispatch, the virtio slot probe;
//! - `kern`: console and log, heap, command line, time, console input, disks, fatal ends;
//! - `selftest`: the in-guest test harness, the test groups and the benchmark;
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
#[macro_use]
pub mod selftest;

#[cfg(target_arch = "wasm32")]
mod start;

#[cfg(test)]
mod host_tests {
    use crate::selftest::conformance;

    #[test]
    fn every_conformance_case_has_a_host_value() {
        for (name, case) in conformance::CASES {
            let expected = conformance::EXPECTED.iter().find(|(n, _)| n == name);
            assert_eq!(expected.map(|(_, e)| *e), Some(case().as_str()), "{name}");
        }
    }
}
