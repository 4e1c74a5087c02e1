//! The in-guest test harness.
//!
//! `start` installs the registry (`selftest::all`); tests are selected by the `test=` option
//! and run one by one.
//! Each prints `test NAME ... ok`, `... FAILED: <why>` or `... skipped: <why>`; the run ends
//! with `N passed, N failed` (`, N skipped` when some were). A test that panics or traps is
//! caught by the machine layer and reported as failed by name; the run goes on.

use crate::kern::cmdline::TestSelection;
use alloc::boxed::Box;
use alloc::string::String;

/// Why a test did not pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    Failed(String),
    /// The test does not apply here (said why); counted apart, never as a pass.
    Skipped(String),
}

pub type TestResult = Result<(), Failure>;

pub struct Test {
    pub name: &'static str,
    pub run: Box<dyn Fn() -> TestResult + Send + Sync>,
}

impl Test {
    pub fn new(name: &'static str, run: fn() -> TestResult) -> Self {
        Test {
            name,
            run: Box::new(run),
        }
    }
}

/// The group whose tests fail on purpose (to prove failures are seen); never part of `all`.
pub const DELIBERATE_FAILURES: &str = "fail::";

/// A test that never ends, for the xtask's timeout check; never part of `all`.
pub const HANG: &str = "hang::";

/// Tests of wall-clock bounds (how late a timer may be), which only hold when the host runs
/// the guest promptly; never part of `all`: run them by name under `-icount shift=0 -rtc
/// clock=vm`, where guest time counts instructions.
pub const WALL_CLOCK: &str = "wallclock::";

/// A deliberate failure inside an interrupt handler and the check that the kernel recovered
/// from it, in that order; never part of `all`.
pub const RECOVERY: &str = "recovery::";

/// Groups that run only when asked for by their group name: `test=time` must not pull in
/// `wallclock::timer_is_not_late` (which needs -icount), nor `test=e` the deliberate failures.
const BY_GROUP_NAME_ONLY: [&str; 4] = [DELIBERATE_FAILURES, HANG, WALL_CLOCK, RECOVERY];

/// Whether one comma-separated text of a selection selects `name`.
fn text_selects(text: &str, name: &str) -> bool {
    TestSelection::matches(text, name)
        && BY_GROUP_NAME_ONLY
            .iter()
            .all(|group| !name.starts_with(group) || text.contains(group))
}

pub fn is_selected(selection: TestSelection, name: &str) -> bool {
    match selection {
        TestSelection::All => !BY_GROUP_NAME_ONLY.iter().any(|g| name.starts_with(g)),
        TestSelection::None => false,
        TestSelection::Matching(pattern) => pattern.split(',').any(|t| text_selects(t, name)),
    }
}

/// The first comma-separated text of a `Matching` selection that selects no test: such a
/// selection is a mistake (a typo runs nothing and would pass), not an empty run.
pub fn unmatched<'a>(selection: TestSelection<'a>, names: &[&str]) -> Option<&'a str> {
    match selection {
        TestSelection::Matching(pattern) => pattern
            .split(',')
            .find(|t| !names.iter().any(|n| text_selects(t, n))),
        TestSelection::All | TestSelection::None => None,
    }
}

/// The run's counts; printed as the closing line (its format: `console_proto::summary`).
pub use console_proto::Summary;

/// Returns early from a test with a failure when `cond` is false.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($arg:tt)+) => {
        if !$cond {
            return Err($crate::selftest::harness::Failure::Failed(alloc::format!($($arg)+)));
        }
    };
}

/// Returns early from a test when the two values differ, showing both.
#[macro_export]
macro_rules! ensure_eq {
    ($left:expr, $right:expr $(,)?) => {{
        let (l, r) = (&$left, &$right);
        if l != r {
            return Err($crate::selftest::harness::Failure::Failed(alloc::format!(
                "{} != {}: {:?} vs {:?}",
                stringify!($left),
                stringify!($right),
                l,
                r
            )));
        }
    }};
}

#[cfg(target_arch = "wasm32")]
pub use runner::{defer_report, install, run, test_names};

#[cfg(target_arch = "wasm32")]
mod runner {
    use super::*;
    use crate::arch::m68k::machine::{self, Caught, IrqMutex};
    use crate::board::virt::irq;
    use crate::kern::fatal;
    use alloc::vec::Vec;
    use console_proto::report::Pc;
    use console_proto::test_line::{Failed, Skipped, Start, PASSED};

    static DEFERRED: IrqMutex<Vec<alloc::string::String>> = machine::irq_mutex(Vec::new());

    /// Text a test wants shown (a table, say), printed after the summary line so that the
    /// one-line-per-test format stays intact. Thread context only.
    pub fn defer_report(text: alloc::string::String) {
        DEFERRED.lock().push(text);
    }
    static REGISTRY: spin::Once<Vec<Test>> = spin::Once::new();
    static OUTCOME: IrqMutex<Option<TestResult>> = machine::irq_mutex(None);

    /// Installs the registry: every test, in the order they run (boot, once).
    pub fn install(tests: Vec<Test>) {
        REGISTRY.call_once(|| tests);
    }

    fn registry() -> &'static [Test] {
        REGISTRY.get().map_or(&[], |r| &r[..])
    }

    /// Every registered test's name.
    pub fn test_names() -> Vec<&'static str> {
        registry().iter().map(|t| t.name).collect()
    }

    /// Called by the machine layer inside `catch`: runs one test, leaves its result.
    #[no_mangle]
    pub extern "C" fn test_run(index: u32) {
        let result = (registry()[index as usize].run)();
        *OUTCOME.lock() = Some(result);
    }

    /// Runs the selected tests and prints one line each, then the summary line.
    pub fn run(selection: TestSelection) -> Summary {
        let mut summary = Summary::default();
        for (index, test) in registry().iter().enumerate() {
            if !is_selected(selection, test.name) {
                continue;
            }
            print!("{}", Start(test.name));
            *OUTCOME.lock() = None;
            fatal::set_running_test(Some(&test.name));
            let depth = irq::nesting_depth();
            let caught = machine::catch(index as u32);
            if caught != Caught::Returned {
                // A panic or trap inside an interrupt handler left through the dispatch
                // without its decrement.
                irq::unwound_to(depth);
            }
            fatal::set_running_test(None);
            // A test that panicked or trapped never reached test_run's store, so OUTCOME is
            // unlocked and empty here.
            let outcome = OUTCOME.lock().take();
            match (caught, outcome) {
                (Caught::Returned, Some(Ok(()))) => {
                    summary.passed += 1;
                    println!("{PASSED}");
                }
                (Caught::Returned, Some(Err(Failure::Failed(why)))) => {
                    summary.failed += 1;
                    println!("{}", Failed(why));
                }
                (Caught::Returned, Some(Err(Failure::Skipped(why)))) => {
                    summary.skipped += 1;
                    println!("{}", Skipped(why));
                }
                (Caught::Returned, None) => {
                    summary.failed += 1;
                    println!("{}", Failed("the test left no result"));
                }
                // The panic handler already finished the line with the panic message.
                (Caught::Panicked, _) => summary.failed += 1,
                (Caught::Trapped { code, pc }, _) => {
                    summary.failed += 1;
                    println!(
                        "{}",
                        Failed(format_args!(
                            "wasm trap: {} {}",
                            crate::arch::m68k::traps::trap_name(code),
                            Pc(pc)
                        ))
                    );
                }
            }
        }
        println!("{summary}");
        let deferred = core::mem::take(&mut *DEFERRED.lock());
        for text in deferred {
            print!("{text}");
        }
        summary
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection() {
        assert!(is_selected(TestSelection::All, "codegen::u32_arith"));
        assert!(!is_selected(TestSelection::All, "fail::panic"));
        assert!(!is_selected(TestSelection::All, "hang::forever"));
        assert!(!is_selected(
            TestSelection::All,
            "wallclock::timer_is_not_late"
        ));
        assert!(!is_selected(TestSelection::None, "codegen::u32_arith"));
        assert!(is_selected(
            TestSelection::Matching("u32"),
            "codegen::u32_arith"
        ));
        assert!(is_selected(
            TestSelection::Matching("fail::"),
            "fail::panic"
        ));
        assert!(!is_selected(
            TestSelection::Matching("boot"),
            "codegen::u32_arith"
        ));
        // A text that happens to occur in a by-name-only group's test names does not pull
        // them in; the group's name does.
        assert!(!is_selected(
            TestSelection::Matching("time"),
            "wallclock::timer_is_not_late"
        ));
        assert!(is_selected(
            TestSelection::Matching("time"),
            "time::cancelled_timer_never_fires"
        ));
        assert!(!is_selected(TestSelection::Matching("e"), "hang::forever"));
        assert!(!is_selected(TestSelection::Matching("e"), "fail::panic"));
        assert!(is_selected(
            TestSelection::Matching("boot::,wallclock::timer"),
            "wallclock::timer_is_not_late"
        ));
    }

    #[test]
    fn a_text_that_matches_no_test_is_found() {
        let names = ["codegen::u32_arith", "blk::read", "virtio::probe"];
        assert_eq!(
            unmatched(TestSelection::Matching("nonexistent"), &names),
            Some("nonexistent")
        );
        assert_eq!(
            unmatched(TestSelection::Matching("blk::,virtio::"), &names),
            None
        );
        // Only a by-name-only group's tests contain it: nothing is selected.
        assert_eq!(
            unmatched(
                TestSelection::Matching("forever"),
                &["hang::forever", "blk::read"]
            ),
            Some("forever")
        );
        // One good text does not hide a bad one.
        assert_eq!(
            unmatched(TestSelection::Matching("blk::,vritio::"), &names),
            Some("vritio::")
        );
        // An empty text (a stray comma) matches nothing.
        assert_eq!(
            unmatched(TestSelection::Matching("blk::,"), &names),
            Some("")
        );
        assert_eq!(unmatched(TestSelection::All, &[]), None);
        assert_eq!(unmatched(TestSelection::None, &[]), None);
    }
}
