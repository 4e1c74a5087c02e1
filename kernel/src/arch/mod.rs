//! Machine-dependent code, one folder per CPU family. Only the m68k exists.
pub mod m68k;
