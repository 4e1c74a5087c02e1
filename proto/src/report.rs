//! Pieces of the kernel's failure reports that the xtask reads back: the program counter of
//! an exception or wasm trap (`pc=0x0001f2a4`), which it turns into a function name.

use core::fmt;

/// Prints `pc=0x` and the address in 8 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pc(pub u32);

impl fmt::Display for Pc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pc={:#010x}", self.0)
    }
}

impl Pc {
    /// The first `pc=0x...` in a line (at most 8 hex digits), if any.
    pub fn find(line: &str) -> Option<Pc> {
        let at = line.find("pc=0x")? + "pc=0x".len();
        let rest = &line[at..];
        let end = rest
            .find(|c: char| !c.is_ascii_hexdigit())
            .unwrap_or(rest.len());
        if end == 0 || end > 8 {
            return None;
        }
        u32::from_str_radix(&rest[..end], 16).ok().map(Pc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    #[test]
    fn formats_and_finds_literal_text() {
        assert_eq!(Pc(0x1f2a4).to_string(), "pc=0x0001f2a4");
        assert_eq!(Pc(0).to_string(), "pc=0x00000000");
        assert_eq!(
            Pc::find("fatal exception: vector 4 (illegal instruction) pc=0x0001f2a4 sr=0x2700"),
            Some(Pc(0x1f2a4))
        );
        assert_eq!(
            Pc::find("test a ... FAILED: wasm trap: unreachable pc=0xdeadBEEF"),
            Some(Pc(0xdead_beef))
        );
        assert_eq!(Pc::find("no counter here"), None);
        assert_eq!(Pc::find("pc=0x"), None);
        assert_eq!(Pc::find("pc=0x123456789"), None);
        for pc in [0, 1, 0x800000, u32::MAX] {
            assert_eq!(Pc::find(&Pc(pc).to_string()), Some(Pc(pc)));
        }
    }
}
