//! Board support: what is fixed by the board QEMU emulates, one folder per board.
pub mod virt;
