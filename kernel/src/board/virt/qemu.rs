//! Which CPU models this board's emulator runs correctly, by QEMU version (bootinfo's
//! VIRT_QEMU_VERSION).
#![forbid(unsafe_code)]

use crate::arch::m68k::cpu::Model;
use crate::board::virt::bootinfo::QemuVersion;
use core::fmt;

/// The oldest QEMU whose 68060 builds proper exception frames: QEMU 7.2 builds a broken
/// 6-byte frame for it (measured), 10.0.2 a format-0 frame (measured); QEMU 9.0 is where the
/// fix landed.
pub const M68060_MIN_QEMU: QemuVersion = QemuVersion {
    major: 9,
    minor: 0,
    micro: 0,
};

/// A model this kernel identified but will not run on under this QEMU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsupported {
    pub model: Model,
    pub cacr_mask: u32,
    pub qemu: Option<QemuVersion>,
}

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} detected (CACR writable bits {:#010x}) under ",
            self.model, self.cacr_mask
        )?;
        match self.qemu {
            Some(v) => write!(f, "QEMU {v}")?,
            None => f.write_str("a QEMU that did not report its version")?,
        }
        write!(
            f,
            ": the 68060 needs QEMU {}.{} or later (older QEMU builds broken 6-byte exception \
             frames for it, so no exception could be reported or probed); with this QEMU use \
             -cpu m68040, m68030 or m68020",
            M68060_MIN_QEMU.major, M68060_MIN_QEMU.minor
        )
    }
}

/// Whether `model` can run under the QEMU that reported `qemu` (bootinfo's
/// VIRT_QEMU_VERSION). Decided before anything that may trap is probed on it.
pub fn check_supported(
    model: Model,
    cacr_mask: u32,
    qemu: Option<QemuVersion>,
) -> Result<(), Unsupported> {
    let new_enough = |v: QemuVersion| {
        (v.major, v.minor, v.micro)
            >= (
                M68060_MIN_QEMU.major,
                M68060_MIN_QEMU.minor,
                M68060_MIN_QEMU.micro,
            )
    };
    match (model, qemu) {
        (Model::M68060, Some(v)) if new_enough(v) => Ok(()),
        (Model::M68060, _) => Err(Unsupported {
            model,
            cacr_mask,
            qemu,
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(major: u8, minor: u8, micro: u8) -> Option<QemuVersion> {
        Some(QemuVersion {
            major,
            minor,
            micro,
        })
    }

    #[test]
    fn the_68060_needs_qemu_9() {
        // 7.2.22: broken 6-byte frames (measured); 10.0.2: format-0 frames (measured).
        for old in [v(7, 2, 22), v(8, 2, 0), v(8, 255, 255), None] {
            let e = check_supported(Model::M68060, 0xf8e0_e000, old).unwrap_err();
            let text = std::format!("{e}");
            assert!(text.contains("needs QEMU 9.0 or later"), "{text}");
            assert!(text.contains("0xf8e0e000"), "{text}");
        }
        let text = std::format!(
            "{}",
            check_supported(Model::M68060, 0xf8e0_e000, v(7, 2, 22)).unwrap_err()
        );
        assert!(text.starts_with("68060 detected (CACR writable bits 0xf8e0e000) under QEMU 7.2.22: the 68060 needs QEMU 9.0 or later"), "{text}");
        for new in [v(9, 0, 0), v(9, 2, 1), v(10, 0, 2)] {
            assert_eq!(check_supported(Model::M68060, 0xf8e0_e000, new), Ok(()));
        }
        for model in [Model::M68020, Model::M68030, Model::M68040] {
            assert_eq!(check_supported(model, 0, v(7, 2, 22)), Ok(()));
            assert_eq!(check_supported(model, 0, None), Ok(()));
        }
    }
}
