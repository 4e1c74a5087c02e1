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

/// An enum whose values are printed as fixed words.
macro_rules! words {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name {
            $($(#[$vm])* $v),+
        }

        impl $name {
            /// Every value's word, in declaration order.
            pub const WORDS: &'static [&'static str] = &[$($s),+];
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$v),+];

            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$v => $s),+
                }
            }

            pub fn from_word(word: &str) -> Option<$name> {
                match word {
                    $($s => Some($name::$v),)+
                    _ => None,
                }
            }
        }

        impl core::fmt::Display for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.pad(self.as_str())
            }
        }
    };
}

pub mod bench;
pub mod report;
pub mod scratch;
pub mod seed_live;
pub mod summary;
pub mod test_line;
pub mod verify;

pub use summary::Summary;

#[cfg(test)]
extern crate std;
