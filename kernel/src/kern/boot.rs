//! What boot found, for everything that runs after it: the bootinfo list and the parsed
//! command line. Each is set once by `start` and read-only afterwards.
#![forbid(unsafe_code)]

use crate::board::virt::bootinfo::BootInfo;
use crate::kern::cmdline::Options;

static BOOT_INFO: spin::Once<BootInfo<'static>> = spin::Once::new();
static OPTIONS: spin::Once<Options<'static>> = spin::Once::new();

/// Records the parsed bootinfo list (boot, once); returns the kept copy.
pub fn set_boot_info(info: BootInfo<'static>) -> &'static BootInfo<'static> {
    BOOT_INFO.call_once(|| info)
}

/// What bootinfo said. Panics if asked before boot parsed it (a boot-order bug).
pub fn boot_info() -> &'static BootInfo<'static> {
    BOOT_INFO
        .get()
        .expect("bootinfo is parsed before anything asks for it")
}

/// Records the parsed command line (boot, once); returns the kept copy.
pub fn set_options(opts: Options<'static>) -> &'static Options<'static> {
    OPTIONS.call_once(|| opts)
}

/// The parsed command line. Panics if asked before boot parsed it (a boot-order bug).
pub fn options() -> &'static Options<'static> {
    OPTIONS.get().expect("options are parsed at boot")
}
