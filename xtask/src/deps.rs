//! Host dependencies of the build and of QEMU runs: found, installed, or named exactly.
//!
//! On a fresh Debian bookworm machine run as root, missing packages are installed with
//! apt-get (one `apt-get update` first) and the wasm target with rustup. Otherwise the xtask
//! stops with the exact command that would install them.

use crate::{anyhow, fail, Result};
use std::process::Command;

/// A host program and the Debian package that provides it.
struct Tool {
    program: &'static str,
    package: &'static str,
}

const BUILD_TOOLS: &[Tool] = &[
    Tool {
        program: "wasm2c",
        package: "wabt",
    },
    Tool {
        program: "wasm-validate",
        package: "wabt",
    },
    Tool {
        program: "m68k-linux-gnu-gcc",
        package: "gcc-m68k-linux-gnu",
    },
    Tool {
        program: "m68k-linux-gnu-ld",
        package: "binutils-m68k-linux-gnu",
    },
    Tool {
        program: "m68k-linux-gnu-addr2line",
        package: "binutils-m68k-linux-gnu",
    },
];
const RUN_TOOLS: &[Tool] = &[Tool {
    program: "qemu-system-m68k",
    package: "qemu-system-misc",
}];
const GDB_TOOLS: &[Tool] = &[Tool {
    program: "gdb-multiarch",
    package: "gdb-multiarch",
}];

pub const WASM_TARGET: &str = "wasm32v1-none";

#[derive(Clone, Copy)]
pub enum Need {
    Build,
    Run,
    Gdb,
    /// The font the benchmark's plots are drawn with.
    Plot,
}

pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| {
            let p = dir.join(program);
            p.is_file()
        })
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn run_visible(cmd: &mut Command) -> Result<()> {
    eprintln!("xtask: running {cmd:?}");
    let status = cmd
        .status()
        .map_err(|e| anyhow!("cannot run {cmd:?}: {e}"))?;
    if !status.success() {
        return Err(anyhow!("{cmd:?} failed with {status}"));
    }
    Ok(())
}

fn wasm_target_installed() -> Result<bool> {
    let out = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map_err(|e| anyhow!("cannot run rustup (needed for the {WASM_TARGET} target): {e}"))?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.trim() == WASM_TARGET))
}

/// Makes sure everything `need` requires is present, installing what it can.
pub fn ensure(needs: &[Need]) -> Result<()> {
    let mut packages: Vec<&str> = Vec::new();
    for need in needs {
        let tools = match need {
            Need::Build => BUILD_TOOLS,
            Need::Run => RUN_TOOLS,
            Need::Gdb => GDB_TOOLS,
            Need::Plot => {
                let font = std::path::Path::new(crate::plot::FONT_FILE);
                if !font.is_file() && !packages.contains(&crate::plot::FONT_PACKAGE) {
                    packages.push(crate::plot::FONT_PACKAGE);
                }
                continue;
            }
        };
        for t in tools {
            if matches!(need, Need::Run) && crate::qemu::chosen_explicitly() {
                continue;
            }
            if !on_path(t.program) && !packages.contains(&t.package) {
                packages.push(t.package);
            }
        }
    }
    if !packages.is_empty() {
        let list = packages.join(" ");
        if !is_root() {
            return fail(format!(
                "missing host packages: {list}\n  install them with: sudo apt-get update && sudo apt-get install -y {list}"
            ));
        }
        eprintln!("xtask: installing missing packages: {list}");
        run_visible(Command::new("apt-get").args(["update", "-q"]))?;
        run_visible(
            Command::new("apt-get")
                .args(["install", "-y", "-q", "--no-install-recommends"])
                .args(&packages)
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )?;
    }
    if needs.iter().any(|n| matches!(n, Need::Build)) && !wasm_target_installed()? {
        eprintln!("xtask: adding the rustup target {WASM_TARGET}");
        run_visible(Command::new("rustup").args(["target", "add", WASM_TARGET])).map_err(|e| {
            anyhow!("{e}\n  install the target yourself with: rustup target add {WASM_TARGET}")
        })?;
    }
    Ok(())
}
