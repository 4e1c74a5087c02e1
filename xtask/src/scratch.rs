//! Scratch disk images for guest runs: the four disks the virtio and blk tests may
//! overwrite, in a temporary folder on /dev/shm removed on every exit path.

use crate::qemu::Disk;
use crate::Result;
use std::path::Path;

/// I/O errors for the faulty scratch disk (slot 3): reads covering sector 100 and writes
/// covering sector 200 fail with EIO, every time. The kernel's blk tests rely on exactly this.
const BLKDEBUG_RULES: &str = "\
[inject-error]
event = \"read_aio\"
errno = \"5\"
sector = \"100\"
once = \"off\"

[inject-error]
event = \"write_aio\"
errno = \"5\"
sector = \"200\"
once = \"off\"
";

/// Scratch disk images for guest runs, in a temporary directory removed on drop. Sector s
/// holds byte `(s * 31 ^ i ^ 0xa5) as u8` at offset i (the virtio tests check it).
pub struct ScratchDisks {
    /// Removed on drop, which every exit path reaches (errors, timeouts, signals).
    pub dir: tempfile::TempDir,
    pub disks: Vec<Disk>,
}

impl ScratchDisks {
    /// Sizes in 512-byte sectors: slot 0 16 MiB, slots 1-3 1 MiB each (slot 2 read-only,
    /// slot 3 behind blkdebug, see BLKDEBUG_RULES).
    const SECTORS: [u64; 4] = [32768, 2048, 2048, 2048];

    pub fn create() -> Result<ScratchDisks> {
        let base = if Path::new("/dev/shm").is_dir() {
            "/dev/shm".into()
        } else {
            std::env::temp_dir()
        };
        let tmp = tempfile::Builder::new()
            .prefix("m68k-xtask-")
            .tempdir_in(&base)
            .map_err(|e| format!("cannot create a scratch folder in {}: {e}", base.display()))?;
        let dir = tmp.path().to_path_buf();
        let mut disks = Vec::new();
        for (slot, sectors) in Self::SECTORS.iter().enumerate() {
            let file = dir.join(format!("disk{slot}.img"));
            let mut bytes = Vec::with_capacity(*sectors as usize * 512);
            for s in 0..*sectors {
                bytes.extend((0..512u64).map(|i| (s.wrapping_mul(31) ^ i ^ 0xa5) as u8));
            }
            std::fs::write(&file, bytes)
                .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
            let (read_only, serial, blkdebug) = match slot {
                2 => (true, None, None),
                3 => {
                    let rules = dir.join("blkdebug.conf");
                    std::fs::write(&rules, BLKDEBUG_RULES)
                        .map_err(|e| format!("cannot write {}: {e}", rules.display()))?;
                    (false, Some("m68k-faulty3".to_string()), Some(rules))
                }
                _ => (false, None, None),
            };
            disks.push(Disk {
                file,
                read_only,
                serial,
                blkdebug,
                aio: None,
            });
        }
        Ok(ScratchDisks { dir: tmp, disks })
    }

    /// Their slots, for the kernel option `disks=`.
    pub fn slots(&self) -> String {
        let slots: Vec<String> = (0..self.disks.len()).map(|i| i.to_string()).collect();
        slots.join(",")
    }

    /// The kernel option naming their slots.
    pub fn option(&self) -> String {
        format!("disks={}", self.slots())
    }
}
