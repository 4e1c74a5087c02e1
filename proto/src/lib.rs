//! What the kernel and the xtask agree on, defined once: the console lines the kernel prints
//! and the xtask parses back (test lines, the closing summary, benchmark lines, the program counter in failure
//! reports), and the
//! scratch disks the xtask attaches and the kernel's disk tests rely on.
//!
//! Each line has a formatter (`core::fmt::Display`, used by the kernel for `wasm32v1-none`)
//! and a parser (used by the xtask on the host). Neither side spells a line by hand.
//! No allocation, no dependencies, no unsafe code: it builds for both targets unchanged.

#![no_std]
#![forbid(unsafe_code)]

pub mod bench;
pub mod report;
pub mod scratch;
pub mod seed_live;
pub mod summary;
pub mod test_line;

pub use summary::Summary;

#[cfg(test)]
extern crate std;
