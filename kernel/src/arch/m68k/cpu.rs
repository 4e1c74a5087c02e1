//! Which 680x0 this is, found by probing, because QEMU 7.2's bootinfo always says 68040.
//!
//! Owns: the decision table from probe results to a model (pure, host-tested) and, on the
//! guest, running the probes once at boot. The probe is the CACR's writable-bit mask: write
//! all ones, read back, write zero. Each model implements a different set of CACR bits.
//! (The 68000, 68010 and ColdFire never get here: boot/entry.S refuses them.)
#![forbid(unsafe_code)]

use core::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Model {
    M68020,
    M68030,
    M68040,
    M68060,
}

impl Model {
    pub fn name(self) -> &'static str {
        match self {
            Model::M68020 => "68020",
            Model::M68030 => "68030",
            Model::M68040 => "68040",
            Model::M68060 => "68060",
        }
    }
}

impl fmt::Display for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// CACR bits each model implements (what reads back after writing all ones), as QEMU 7.2.22
/// and 10.0.2 return them (measured), and as silicon does where that differs (the manuals'
/// CACR descriptions: strobe bits there always read as zero).
pub mod cacr_mask {
    /// EI FI CEI CI: an instruction cache only (QEMU).
    pub const M68020: u32 = 0x0000_000f;
    /// MC68020 user's manual: CEI and CI (the clear strobes) read as zero.
    pub const M68020_SILICON: u32 = 0x0000_0003;
    /// EI FI CEI CI IBE (instruction) + ED FD CED CD DBE WA (data).
    pub const M68030: u32 = 0x0000_3f1f;
    /// MC68030 user's manual: CEI CI CED CD read as zero.
    pub const M68030_SILICON: u32 = 0x0000_3111;
    /// DE (bit 31) and IE (bit 15).
    pub const M68040: u32 = 0x8000_8000;
    /// EDC NAD ESB DPI FOC, EBC CABC CUBC, EIC NAI FIC (QEMU; MC68060 user's manual 5.3:
    /// the same bits, CABC and CUBC being clear strobes that silicon reads as zero).
    pub const M68060: u32 = 0xf8e0_e000;
    pub const M68060_SILICON: u32 = 0xf880_e000;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownCpu {
    pub cacr_mask: u32,
}

impl fmt::Display for UnknownCpu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unrecognised CACR writable-bit mask {:#010x} (68020 {:#010x}, 68030 {:#010x}, 68040 {:#010x}, 68060 {:#010x})",
            self.cacr_mask,
            cacr_mask::M68020,
            cacr_mask::M68030,
            cacr_mask::M68040,
            cacr_mask::M68060
        )
    }
}

/// The model whose CACR implements exactly these bits.
///
/// Exact matches only: QEMU keeps the clear strobes (68020 CI/CEI, 68030 CI/CD/CEI/CED,
/// 68060 CABC/CUBC) once written, silicon reads them as zero; both masks are accepted.
/// Anything else is unknown rather than guessed, because cache maintenance differs per model.
pub fn classify(mask: u32) -> Result<Model, UnknownCpu> {
    match mask {
        cacr_mask::M68020 | cacr_mask::M68020_SILICON => Ok(Model::M68020),
        cacr_mask::M68030 | cacr_mask::M68030_SILICON => Ok(Model::M68030),
        cacr_mask::M68040 => Ok(Model::M68040),
        cacr_mask::M68060 | cacr_mask::M68060_SILICON => Ok(Model::M68060),
        _ => Err(UnknownCpu { cacr_mask: mask }),
    }
}

/// Why identification stopped the boot: an unknown CPU, or one the caller's check refused
/// (`E`, e.g. a model the board's emulator runs wrongly).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentifyError<E> {
    Unknown(UnknownCpu),
    Refused(E),
}

impl<E: fmt::Display> fmt::Display for IdentifyError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdentifyError::Unknown(e) => write!(f, "cannot identify the CPU: {e}"),
            IdentifyError::Refused(e) => e.fmt(f),
        }
    }
}

/// Whether this model has the 68040's CINV/CPUSH and ITT/DTT registers at all (only then are
/// they probed: on the 68020 and 68030 they are other instructions or MMU registers).
pub fn has_040_cache_model(model: Model) -> bool {
    matches!(model, Model::M68040 | Model::M68060)
}

/// What the probes found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    pub model: Model,
    pub cacr_mask: u32,
    pub fpu: bool,
    /// CINV/CPUSH executed without a trap (68040; a 68060 on silicon; never QEMU's 68060).
    pub cache_insns: bool,
    /// movec to/from ITT0-1/DTT0-1 executed without a trap (68040; a 68060 on silicon).
    pub ttrs: bool,
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
        )?;
        if has_040_cache_model(self.model) {
            if !self.cache_insns {
                f.write_str("; CINV/CPUSH trap here (F-line): skipped")?;
            }
            if !self.ttrs {
                f.write_str("; ITT/DTT movec is illegal here: not set")?;
            }
        }
        Ok(())
    }
}

#[cfg(target_arch = "wasm32")]
pub use probe::{cache_insns, identify, identity};

#[cfg(target_arch = "wasm32")]
mod probe {
    use super::*;
    use crate::arch::m68k::machine;

    static IDENTITY: spin::Once<Identity> = spin::Once::new();
    /// `IDENTITY`'s `cache_insns`, for the DMA sync path: 0 before identification, 1 no, 2
    /// yes (one load instead of the `Once` and a copy of the whole identity).
    static CACHE_INSNS: core::sync::atomic::AtomicU8 = core::sync::atomic::AtomicU8::new(0);

    /// Probes the CPU (once) and remembers the answer. `allowed(model, cacr_mask)` decides
    /// whether to go on with the model found, before anything that may trap is probed on it.
    pub fn identify<E>(
        allowed: impl FnOnce(Model, u32) -> Result<(), E>,
    ) -> Result<Identity, IdentifyError<E>> {
        if let Some(id) = IDENTITY.get() {
            return Ok(*id);
        }
        let cacr_mask = machine::cacr_probe();
        let model = classify(cacr_mask).map_err(IdentifyError::Unknown)?;
        allowed(model, cacr_mask).map_err(IdentifyError::Refused)?;
        let probe_040 = has_040_cache_model(model);
        let id = Identity {
            model,
            cacr_mask,
            fpu: machine::fpu_present(),
            cache_insns: probe_040 && machine::probe_cache_insns(),
            ttrs: probe_040 && machine::probe_ttrs(),
        };
        let id = *IDENTITY.call_once(|| id);
        CACHE_INSNS.store(
            1 + u8::from(id.cache_insns),
            core::sync::atomic::Ordering::Relaxed,
        );
        Ok(id)
    }

    /// `identity().cache_insns`, in one load once the CPU is identified.
    #[inline(always)]
    pub fn cache_insns() -> bool {
        match CACHE_INSNS.load(core::sync::atomic::Ordering::Relaxed) {
            1 => false,
            2 => true,
            _ => identity().cache_insns,
        }
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
        // Measured on QEMU 7.2.22 and 10.0.2 (all ones written to the CACR, read back):
        // -cpu m68020 0x0000000f, m68030 0x00003f1f, m68040 0x80008000, m68060 0xf8e0e000.
        assert_eq!(classify(0x0000_000f), Ok(Model::M68020));
        assert_eq!(classify(0x0000_3f1f), Ok(Model::M68030));
        assert_eq!(classify(0x8000_8000), Ok(Model::M68040));
        assert_eq!(classify(0xf8e0_e000), Ok(Model::M68060));
        // Silicon, from the user's manuals' CACR bit lists (strobes read as zero): MC68020
        // E F; MC68030 EI IBE ED DBE WA; MC68060 EDC NAD ESB DPI FOC EBC EIC NAI FIC.
        assert_eq!(classify(0x0000_0003), Ok(Model::M68020));
        assert_eq!(classify(0x0000_3111), Ok(Model::M68030));
        assert_eq!(classify(0xf880_e000), Ok(Model::M68060));
        // Neighbours of the known masks (one bit more or less) and the extremes are unknown.
        for bad in [
            0,
            0xffff_ffff,
            0x8000_0000,
            0x0000_8000,
            0x0000_3f1e,
            0x0000_0007,
            0x0000_001f,
            0x0000_0001,
            0xf8e0_c000,
            0xf8e0_e001,
        ] {
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
}
