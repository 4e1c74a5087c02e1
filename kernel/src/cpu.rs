//! Which 680x0 this is, found by probing, because QEMU 7.2's bootinfo always says 68040.
//!
//! Owns: the decision table from probe results to a model (pure, host-tested) and, on the
//! guest, running the probes once at boot. The probe is the CACR's writable-bit mask: write
//! all ones, read back, write zero. Each model implements a different set of CACR bits.

use core::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Model {
    M68030,
    M68040,
    M68060,
}

impl Model {
    pub fn name(self) -> &'static str {
        match self {
            Model::M68030 => "68030",
            Model::M68040 => "68040",
            Model::M68060 => "68060",
        }
    }

    /// Linux/bootinfo CPUTYPE bit for this model.
    pub fn bootinfo_bit(self) -> u32 {
        match self {
            Model::M68030 => 2,
            Model::M68040 => 4,
            Model::M68060 => 8,
        }
    }
}

impl fmt::Display for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// CACR bits each model implements (what reads back after writing all ones).
pub mod cacr_mask {
    /// EI FI CEI CI IBE (instruction) + ED FD CED CD DBE WA (data).
    pub const M68030: u32 = 0x0000_3f1f;
    /// DE (bit 31) and IE (bit 15).
    pub const M68040: u32 = 0x8000_8000;
    /// EDC NAD ESB DPI FOC, EBC CABC CUBC, EIC NAI FIC (as QEMU 7.2 masks them).
    pub const M68060: u32 = 0xf8e0_e000;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownCpu {
    pub cacr_mask: u32,
}

impl fmt::Display for UnknownCpu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unrecognised CACR writable-bit mask {:#010x} (68030 {:#010x}, 68040 {:#010x}, 68060 {:#010x})",
            self.cacr_mask,
            cacr_mask::M68030,
            cacr_mask::M68040,
            cacr_mask::M68060
        )
    }
}

/// The model whose CACR implements exactly these bits.
///
/// Exact matches only: a real 68030 reads its CI/CD/CEI/CED strobes back as zero, so its
/// mask is 0x00003111 on silicon; that value is accepted too. Anything else is unknown rather
/// than guessed, because cache maintenance differs per model.
pub fn classify(mask: u32) -> Result<Model, UnknownCpu> {
    match mask {
        cacr_mask::M68030 | 0x0000_3111 => Ok(Model::M68030),
        cacr_mask::M68040 => Ok(Model::M68040),
        cacr_mask::M68060 => Ok(Model::M68060),
        _ => Err(UnknownCpu { cacr_mask: mask }),
    }
}

/// What the probes found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    pub model: Model,
    pub cacr_mask: u32,
    pub fpu: bool,
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (identified by its CACR writable bits {:#010x}), FPU {}",
            self.model,
            self.cacr_mask,
            if self.fpu {
                "present"
            } else {
                "absent (no F-line answer to fmove from FPCR)"
            }
        )
    }
}

#[cfg(target_arch = "wasm32")]
pub use probe::{identify, identity};

#[cfg(target_arch = "wasm32")]
mod probe {
    use super::*;
    use crate::machine;

    static IDENTITY: spin::Once<Identity> = spin::Once::new();

    /// Probes the CPU (once) and remembers the answer.
    pub fn identify() -> Result<Identity, UnknownCpu> {
        if let Some(id) = IDENTITY.get() {
            return Ok(*id);
        }
        let cacr_mask = machine::cacr_probe();
        let model = classify(cacr_mask)?;
        let id = Identity {
            model,
            cacr_mask,
            fpu: machine::fpu_present(),
        };
        Ok(*IDENTITY.call_once(|| id))
    }

    /// The identity found at boot.
    pub fn identity() -> Identity {
        *IDENTITY.get().expect("the CPU is identified at boot")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decision_table() {
        assert_eq!(classify(0x0000_3f1f), Ok(Model::M68030));
        assert_eq!(classify(0x0000_3111), Ok(Model::M68030));
        assert_eq!(classify(0x8000_8000), Ok(Model::M68040));
        assert_eq!(classify(0xf8e0_e000), Ok(Model::M68060));
        for bad in [0, 0xffff_ffff, 0x8000_0000, 0x0000_8000, 0x0000_3f1e] {
            assert_eq!(classify(bad), Err(UnknownCpu { cacr_mask: bad }));
        }
    }

    #[test]
    fn unknown_names_the_mask_and_the_known_ones() {
        let text = std::format!("{}", UnknownCpu { cacr_mask: 0x1234 });
        assert!(
            text.contains("0x00001234") && text.contains("0x80008000"),
            "{text}"
        );
    }

    #[test]
    fn bootinfo_bits() {
        assert_eq!(Model::M68030.bootinfo_bit(), 2);
        assert_eq!(Model::M68040.bootinfo_bit(), 4);
        assert_eq!(Model::M68060.bootinfo_bit(), 8);
    }
}
