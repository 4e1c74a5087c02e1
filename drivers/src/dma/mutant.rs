//! A per-site fault switch for mutation tests of the sync discipline: every bus_dma sync call
//! site on the request path has a name here, and the one selected is skipped (`cargo xtask
//! mutants` selects each in turn and reports which tests catch it). Nothing is selected unless
//! a test run asks: kernel option `dma_mutant=SITE`, or `DMA_MUTANT=SITE` for host tests.
#![forbid(unsafe_code)]

use core::sync::atomic::{AtomicUsize, Ordering};

/// Every site, with what it syncs. The names are stable: tables and docs use them.
pub const SITES: &[(&str, &str)] = &[
    (
        "queue.new.ring",
        "PREWRITE of the zeroed descriptor table and avail ring at creation",
    ),
    (
        "queue.new.indirect",
        "PREWRITE of the zeroed indirect tables at creation",
    ),
    (
        "queue.new.used",
        "PREREAD|PREWRITE of the zeroed used ring at creation (E1)",
    ),
    ("queue.add.indirect", "PREWRITE of a chain's indirect table"),
    (
        "queue.publish.descs",
        "PREWRITE of the descriptors written since the last publish",
    ),
    (
        "queue.publish.avail",
        "PREWRITE of the avail entries written since the last publish",
    ),
    ("queue.publish.idx", "PREWRITE of avail->idx"),
    (
        "queue.read.preread",
        "PREREAD opening a used-ring read phase (flags, avail_event, idx)",
    ),
    ("queue.read.postread", "POSTREAD before a used-ring read"),
    (
        "queue.elements.preread",
        "PREREAD opening the read phase of the announced elements",
    ),
    (
        "queue.elements.postread",
        "POSTREAD before reading the announced elements",
    ),
    ("queue.used_event", "PREWRITE of used_event"),
    ("queue.avail_flags", "PREWRITE of avail->flags"),
    (
        "blk.request.pre",
        "PREWRITE|PREREAD of a request block: its header's line and its status byte's",
    ),
    (
        "blk.request.post",
        "POSTWRITE|POSTREAD of a request block at completion, before the status is read",
    ),
    (
        "dma.give.pre",
        "a data buffer's PRE sync at hand-over (PREWRITE or PREREAD)",
    ),
    (
        "dma.take.post",
        "a data buffer's POST sync when taken back (POSTWRITE or POSTREAD)",
    ),
];

/// The selected site's index + 1; 0 when none is (a test against zero at each site, one
/// instruction cheaper on the m68k than a compare with a constant).
static SELECTED: AtomicUsize = AtomicUsize::new(0);

/// The index of site `name`, if there is one.
pub fn index_of(name: &str) -> Option<usize> {
    SITES.iter().position(|(n, _)| *n == name)
}

/// Selects the site to skip (None: every sync runs).
pub fn select(site: Option<usize>) {
    SELECTED.store(site.map_or(0, |i| i + 1), Ordering::Relaxed);
}

#[cfg(test)]
std::thread_local! {
    /// Host tests: the next sync at this site fails, once, as a sync the platform refused
    /// would (`PreMixedWithPost`): for error paths no real sync of the driver reaches today.
    pub static FAIL_NEXT: core::cell::Cell<Option<&'static str>> = const { core::cell::Cell::new(None) };
}

/// Whether the sync at site `name` fails instead of running (`FAIL_NEXT`, host tests only).
#[cfg(test)]
pub fn inject_fail(name: &str) -> bool {
    FAIL_NEXT.with(|f| match f.get() {
        Some(n) if n == name => {
            f.set(None);
            true
        }
        _ => false,
    })
}

/// Never outside host tests.
#[cfg(not(test))]
#[inline(always)]
pub fn inject_fail(_name: &str) -> bool {
    false
}

/// The selected site's name.
pub fn selected() -> Option<&'static str> {
    #[cfg(test)]
    from_env();
    let i = SELECTED.load(Ordering::Relaxed).checked_sub(1)?;
    SITES.get(i).map(|(n, _)| *n)
}

/// Whether the sync at site `name` is to be left out. Panics on a name not in [`SITES`]
/// (a call site and the table disagree). With nothing selected it costs one load and one
/// compare, inlined at the site (it sits on the request path).
#[inline(always)]
pub fn skip(name: &str) -> bool {
    #[cfg(test)]
    from_env();
    let i = SELECTED.load(Ordering::Relaxed);
    i != 0 && selected_is(name, i - 1)
}

#[cold]
#[inline(never)]
fn selected_is(name: &str, i: usize) -> bool {
    match index_of(name) {
        Some(n) => n == i,
        None => panic!("sync site {name} is not in dma::mutant::SITES"),
    }
}

/// Host tests: `DMA_MUTANT=SITE` selects a site for the whole test run.
#[cfg(test)]
fn from_env() {
    static READ: std::sync::Once = std::sync::Once::new();
    READ.call_once(|| {
        if let Ok(name) = std::env::var("DMA_MUTANT") {
            match index_of(&name) {
                Some(i) => select(Some(i)),
                None => panic!("DMA_MUTANT={name}: no such sync site"),
            }
        }
    });
}

/// `expr` (a sync returning `Result<(), E>`), unless site `name` is selected: then nothing,
/// as if the sync had been removed from the source.
#[macro_export]
macro_rules! sync_site {
    ($name:literal, $expr:expr) => {
        if $crate::dma::mutant::inject_fail($name) {
            Err($crate::dma::DmaError::PreMixedWithPost)
        } else if $crate::dma::mutant::skip($name) {
            Ok(())
        } else {
            $expr
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_found() {
        for (i, (n, _)) in SITES.iter().enumerate() {
            assert_eq!(index_of(n), Some(i), "{n}");
        }
        assert_eq!(index_of("no.such.site"), None);
    }
}
