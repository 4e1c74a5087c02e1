//! Scratch disk images for guest runs: the four disks the virtio and blk tests may
//! overwrite, in a temporary folder on /dev/shm removed on every exit path.

use crate::qemu::Disk;
use crate::{anyhow, Result};
use console_proto::scratch;
use std::path::Path;

/// Scratch disk images for guest runs, in a temporary directory removed on drop. Their
/// slots, sizes, serials, fill pattern and injected errors: `console_proto::scratch`.
pub struct ScratchDisks {
    /// Removed on drop, which every exit path reaches (errors, timeouts, signals).
    pub dir: tempfile::TempDir,
    pub disks: Vec<Disk>,
}

impl ScratchDisks {
    pub fn create() -> Result<ScratchDisks> {
        let base = if Path::new("/dev/shm").is_dir() {
            "/dev/shm".into()
        } else {
            std::env::temp_dir()
        };
        let tmp = tempfile::Builder::new()
            .prefix("m68k-xtask-")
            .tempdir_in(&base)
            .map_err(|e| anyhow!("cannot create a scratch folder in {}: {e}", base.display()))?;
        let dir = tmp.path().to_path_buf();
        let mut disks = Vec::new();
        for d in &scratch::DISKS {
            let file = dir.join(format!("disk{}.img", d.slot));
            let sector = scratch::SECTOR_BYTES;
            let mut bytes = Vec::with_capacity((d.sectors * sector) as usize);
            for s in 0..d.sectors {
                bytes.extend((0..sector).map(|i| scratch::pattern(s, i)));
            }
            std::fs::write(&file, bytes)
                .map_err(|e| anyhow!("cannot write {}: {e}", file.display()))?;
            let blkdebug = if d.faulty {
                let rules = dir.join("blkdebug.conf");
                std::fs::write(&rules, scratch::BlkdebugRules.to_string())
                    .map_err(|e| anyhow!("cannot write {}: {e}", rules.display()))?;
                Some(rules)
            } else {
                None
            };
            disks.push(Disk {
                file,
                read_only: d.read_only,
                serial: Some(d.serial.to_string()),
                blkdebug,
                aio: None,
                no_merging: false,
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
