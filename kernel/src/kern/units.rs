//! Sizes for humans, never rounded: a banner that says "1 MiB" for 1.5 MiB misleads.
#![forbid(unsafe_code)]

use core::fmt;

/// A byte count shown exactly: in MiB or KiB when it is a whole number or ends in at most
/// two decimals there, else in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bytes(pub u64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (shift, unit) in [(20u32, "MiB"), (10, "KiB")] {
            let one = 1u64 << shift;
            let whole = self.0 >> shift;
            let rest = self.0 & (one - 1);
            if whole == 0 {
                continue;
            }
            if rest == 0 {
                return write!(f, "{whole} {unit}");
            }
            // rest / one as a decimal fraction of at most two digits, if it is one exactly.
            if (rest * 100).is_multiple_of(one) {
                let hundredths = rest * 100 / one;
                return if hundredths.is_multiple_of(10) {
                    write!(f, "{whole}.{} {unit}", hundredths / 10)
                } else {
                    write!(f, "{whole}.{hundredths:02} {unit}")
                };
            }
        }
        write!(f, "{} bytes", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::Bytes;
    use std::format;

    #[test]
    fn sizes_are_never_rounded() {
        let show = |b: u64| format!("{}", Bytes(b));
        assert_eq!(show(16 << 20), "16 MiB");
        // 3072 sectors: used to print "1 MiB".
        assert_eq!(show(3072 * 512), "1.5 MiB");
        assert_eq!(show((1 << 20) + (1 << 18)), "1.25 MiB");
        assert_eq!(show(33000 * 1024), "33000 KiB");
        assert_eq!(show(3_399_672 * 1024), "3399672 KiB");
        assert_eq!(show(1536), "1.5 KiB");
        assert_eq!(show(7 * 512), "3.5 KiB");
        assert_eq!(show(512), "512 bytes");
        assert_eq!(show(0), "0 bytes");
        assert_eq!(show((1 << 20) + 512), "1024.5 KiB");
        assert_eq!(show(1025), "1025 bytes");
        assert_eq!(show(1 << 30), "1024 MiB");
    }
}
