//! In-guest tests of the machine: CPU identification, caches, interrupts, clock and timers.
//! They pass on -cpu m68020, m68030, m68040 and m68060 (QEMU >= 9.0), and under -singlestep.

use crate::arch::m68k::cache::{self, Mode as CacheMode};
use crate::arch::m68k::cpu::{self, Model};
use crate::arch::m68k::machine::{self, MachineBus};
use crate::board::virt::irq::{self, Handled, IrqError};
use crate::board::virt::memmap;
use crate::kern::time::{self, MILLIS, SECONDS};
use crate::kern::tty;
use crate::selftest::cache_encodings;
use crate::selftest::harness::{Failure, Test, TestResult};
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use drivers::goldfish_rtc::GoldfishRtc;

/// How long a test waits for an event that must come (a timer, an interrupt): a guard against
/// a hang only, so far above any delay a loaded host causes. Passing never depends on it.
const GUARD: u64 = 10 * SECONDS;

fn skip(why: &str) -> TestResult {
    Err(Failure::Skipped(why.into()))
}

pub fn cpu_tests() -> Vec<Test> {
    vec![
        Test::new(
            "cpu::identified_model_matches_qemu_cpu",
            identified_model_matches_qemu_cpu,
        ),
        Test::new("cpu::fpu_is_present", fpu_is_present),
        Test::new(
            "cpu::cacr_reads_back_as_programmed",
            cacr_reads_back_as_programmed,
        ),
        Test::new(
            "cpu::probes_agree_with_the_model",
            probes_agree_with_the_model,
        ),
        Test::new("cpu::ttrs_read_back_on_68040", ttrs_read_back_on_68040),
        Test::new("cache::dma_syncs_match_the_cpu", dma_syncs_match_the_cpu),
        Test::new(
            "cache::every_040_instruction_executes",
            every_040_instruction_executes,
        ),
        Test::new("cache::range_ops_keep_data", range_ops_keep_data),
    ]
}

fn identified_model_matches_qemu_cpu() -> TestResult {
    let Some(expected) = crate::kern::boot::options().expect_cpu else {
        return skip("no cpu= option (cargo xtask test passes the -cpu it used)");
    };
    ensure_eq!(cpu::identity().model, expected);
    Ok(())
}

/// The FPU computes, not just answers the probe: products and quotients checked against
/// integer arithmetic (exact in a double), and a sum rounded as IEEE 754 double precision
/// (the precision boot/runtime.c sets in FPCR).
fn fpu_is_present() -> TestResult {
    ensure!(cpu::identity().fpu, "FPU probe found no FPU");
    let (a, b) = core::hint::black_box((123_456_789i64, 987_654i64));
    let product = a as f64 * b as f64;
    ensure_eq!(product as i64, a * b);
    let quotient = core::hint::black_box(7_000_000_000.0f64) / core::hint::black_box(7.0);
    ensure_eq!(quotient as i64, 1_000_000_000);
    // IEEE 754 double rounding, as on the host: 0.1 + 0.2 is 0x3fd3333333333334. An FPU left
    // at extended precision rounds twice and may differ.
    let sum = core::hint::black_box(0.1f64) + core::hint::black_box(0.2f64);
    ensure_eq!(sum.to_bits(), 0x3fd3_3333_3333_3334u64);
    Ok(())
}

/// The enable bits the CACR holds (QEMU keeps the clear strobes once written; real silicon
/// reads them as zero).
fn cacr_enable_bits_now() -> u32 {
    machine::cacr_read() & !cache::cacr_strobes(cpu::identity().model)
}

/// The CACR enable bits each model runs with, as numbers from the manuals rather than from
/// the cache module's constants: MC68020 UM 7.3.1 (E = bit 0); MC68030 UM 6.4.1 (EI bit 0,
/// IBE bit 4, ED bit 8, DBE bit 12, WA bit 13); MC68040 UM 4.4 (DE bit 31, IE bit 15; the
/// write-through/copyback choice is in the TTRs, not the CACR); MC68060 UM 5.3.1 (EDC bit 31,
/// ESB bit 29, EBC bit 23, EIC bit 15). The same for both cached modes on every model.
fn manual_enable_bits(model: Model) -> u32 {
    match model {
        Model::M68020 => 0x0000_0001,
        Model::M68030 => 0x0000_3111,
        Model::M68040 => 0x8000_8000,
        Model::M68060 => 0xa080_8000,
    }
}

fn cacr_reads_back_as_programmed() -> TestResult {
    let model = cpu::identity().model;
    let booted = cache::enabled_bits();
    let booted_mode = cache::mode();
    ensure_eq!(cacr_enable_bits_now(), booted);
    let result = (|| {
        cache::disable();
        ensure_eq!(cacr_enable_bits_now(), 0);
        for mode in [CacheMode::WriteThrough, CacheMode::Copyback] {
            // SAFETY: the board's device window.
            unsafe { cache::enable(mode, memmap::DEVICE_WINDOW) };
            ensure_eq!(cacr_enable_bits_now(), manual_enable_bits(model));
        }
        Ok(())
    })();
    // Put back the boot configuration whatever happened.
    // SAFETY: the board's device window.
    unsafe { cache::enable(booted_mode, memmap::DEVICE_WINDOW) };
    ensure_eq!(cache::enabled_bits(), booted);
    result
}

/// The boot probes of CINV/CPUSH and ITT/DTT, against what each model has and what QEMU
/// was measured to do: the 68040 runs both (QEMU 7.2.22, 10.0.2); the 68020/68030 are never
/// probed (the encodings are other things there); QEMU 10.0.2's 68060 traps both.
fn probes_agree_with_the_model() -> TestResult {
    let id = cpu::identity();
    match id.model {
        Model::M68040 => ensure!(id.cache_insns && id.ttrs, "68040 probes failed: {id:?}"),
        Model::M68020 | Model::M68030 => {
            ensure!(
                !id.cache_insns && !id.ttrs,
                "probed on a {}: {id:?}",
                id.model
            )
        }
        Model::M68060 => {
            let measured = crate::kern::boot::boot_info()
                .qemu_version
                .is_some_and(|v| (v.major, v.minor) <= (10, 0));
            if !measured {
                return skip("68060 probe results are known for QEMU up to 10.0 only");
            }
            ensure!(
                !id.cache_insns && !id.ttrs,
                "QEMU <= 10.0's 68060 was measured to trap CINV/CPUSH and ITT/DTT: {id:?}"
            );
        }
    }
    Ok(())
}

/// bus_dma's view of the real cache: the sync implementation per model (none without a data
/// cache or without working cache instructions: syncs are barriers there).
fn dma_syncs_match_the_cpu() -> TestResult {
    use crate::arch::m68k::dma_sync::CpuCache;
    use drivers::dma::Platform;
    let id = cpu::identity();
    let expected = match id.model {
        Model::M68020 => None,
        Model::M68030 => Some(CpuCache::M68030),
        Model::M68040 => Some(CpuCache::M68040),
        Model::M68060 => id.cache_insns.then_some(CpuCache::M68040),
    };
    ensure_eq!(crate::arch::m68k::dma::M68kPlatform.cpu(), expected);
    Ok(())
}

fn ttrs_read_back_on_68040() -> TestResult {
    let id = cpu::identity();
    let Some(read) = cache::read_ttrs() else {
        return skip(match id.model {
            Model::M68060 => "this QEMU's 68060 rejects movec ITT/DTT (probed at boot)",
            _ => "only the 68040 and 68060 have ITT/DTT registers",
        });
    };
    ensure_eq!(
        read,
        cache::ttr_values(cache::mode(), memmap::DEVICE_WINDOW)
    );
    Ok(())
}

fn every_040_instruction_executes() -> TestResult {
    let id = cpu::identity();
    if !id.cache_insns {
        return skip(match id.model {
            Model::M68060 => "this QEMU's 68060 traps CINV/CPUSH (F-line; probed at boot)",
            Model::M68030 => "the 68030 has no CINV/CPUSH (they take an F-line trap); its cache is cleared through CACR",
            _ => "the 68020 has no CINV/CPUSH and no data cache",
        });
    }
    let buf = vec![0xa5u8; 3 * cache::PAGE as usize];
    let addr = machine::physical_address(buf.as_ptr());
    let _masked = machine::mask_interrupts();
    // Push everything first: the CINV forms below would otherwise discard dirty lines of
    // the buffer. `exercised` leaves out the whole-cache data invalidates (see there).
    // SAFETY: CINV/CPUSH run on this CPU (checked above); CPUSHA %bc discards nothing.
    let refused = unsafe { machine::cache_op(0xf8, 0) };
    ensure!(!refused, "cpusha %bc refused");
    for step in cache_encodings::exercised(addr + cache::PAGE) {
        // SAFETY: CINV/CPUSH run here; line and page forms cover the buffer's middle page,
        // pushed above and not written since (interrupts masked), and the whole-cache forms
        // that discard are the instruction cache's only, which holds no data.
        let refused = unsafe { machine::cache_op(step.encoding(), step.addr) };
        ensure!(
            !refused,
            "{step:?} (encoding {:#x}) refused",
            step.encoding()
        );
    }
    // The direct data-cache entry (the floor's): every selector, on the same pushed page.
    for op in [
        machine::DcOp::PushLine,
        machine::DcOp::InvalidateLine,
        machine::DcOp::PushPage,
        machine::DcOp::InvalidatePage,
        machine::DcOp::PushAll,
    ] {
        // SAFETY: CINV/CPUSH run here; the buffer's middle page was pushed above and not
        // written since (interrupts masked), so an invalidate discards nothing.
        unsafe { machine::dc_op(op, addr + cache::PAGE) };
    }
    // A step's instruction is boot/cpu.S's selector: bit 0 push, bit 1 page.
    for (push, page) in [(false, false), (true, false), (false, true), (true, true)] {
        let op = machine::DcOp::data(push, page);
        ensure!(
            op as u32 == u32::from(push) | u32::from(page) << 1,
            "DcOp::data(push {push}, page {page}) is {op:?}"
        );
    }
    // Kinds that name no instruction: CC = 0, SS = 0, a register field, past the byte.
    for kind in [0x00, 0x20, 0x40, 0x60, 0x49, 0x100] {
        // SAFETY: the machine layer refuses these before executing anything.
        let refused = unsafe { machine::cache_op(kind, addr) };
        ensure!(refused, "invalid kind {kind:#x} was accepted");
    }
    ensure!(buf.iter().all(|&b| b == 0xa5), "buffer changed");
    Ok(())
}

fn range_ops_keep_data() -> TestResult {
    let id = cpu::identity();
    if !cache::has_data_cache(id.model) {
        return skip("the 68020 has no data cache: range operations do nothing");
    }
    if cpu::has_040_cache_model(id.model) && !id.cache_insns {
        return skip("this QEMU's 68060 traps CINV/CPUSH: range operations do nothing");
    }
    let buf: Vec<u8> = (0..5 * cache::PAGE).map(|i| (i * 7) as u8).collect();
    let base = machine::physical_address(buf.as_ptr());
    let shapes = [
        (0u32, 1u32),
        (3, 1),
        (0, 16),
        (5, 40),
        (15, 2),
        (0, 4096),
        (100, 8192),
        (1, 20000),
    ];
    for (off, len) in shapes {
        cache::push_range(base + off, len);
        // SAFETY: the range was pushed just above and nothing wrote it since: the whole
        // lines this discards hold what memory holds (the check below proves it).
        unsafe { cache::invalidate_range(base + off, len) };
        cache::push_invalidate_range(base + off, len);
    }
    cache::push_invalidate_all();
    ensure!(
        buf.iter()
            .enumerate()
            .all(|(i, &b)| b == (i as u32 * 7) as u8),
        "data changed"
    );
    Ok(())
}

pub fn irq_tests() -> Vec<Test> {
    vec![
        Test::new(
            "irq::shared_line_calls_every_handler",
            shared_line_calls_every_handler,
        ),
        Test::new(
            "irq::unclaimed_line_is_counted_and_disabled",
            unclaimed_line_is_counted_and_disabled,
        ),
        Test::new(
            "irq::empty_level_is_counted_and_survived",
            empty_level_is_counted_and_survived,
        ),
        Test::new(
            "irq::spurious_vector_is_counted_and_survived",
            spurious_vector_is_counted_and_survived,
        ),
        Test::new(
            "irq::no_registration_from_interrupt_context",
            no_registration_from_interrupt_context,
        ),
        Test::new(
            "irq::timer_interrupts_are_counted",
            timer_interrupts_are_counted,
        ),
        // Before the tty tests: it needs the fixture input still waiting in the FIFO.
        Test::new("irq::nested_levels_preempt", nested_levels_preempt),
    ]
}

/// A level-6 timer interrupt taken inside a level-1 (TTY) handler.
fn nested_levels_preempt() -> TestResult {
    let irq_no = tty::irq_number();
    if irq::stats(irq_no).unwrap().enabled {
        return skip(
            "console input already started: no level-1 interrupt is held back for this test",
        );
    }
    if tty::device_bytes_ready() == 0 {
        return skip("no console input waiting (the xtask types a fixture line; it raises the level-1 interrupt)");
    }
    let done = Arc::new(AtomicBool::new(false));
    let timer_depth = Arc::new(AtomicU32::new(0));
    let handler_level = Arc::new(AtomicU32::new(0));
    let id = {
        let (done, timer_depth, handler_level) =
            (done.clone(), timer_depth.clone(), handler_level.clone());
        irq::register(irq_no, "test: nesting", move || {
            if done.load(Ordering::Relaxed) {
                return Handled::NotMine;
            }
            handler_level.store(machine::current_ipl().into(), Ordering::Relaxed);
            let ran = Arc::new(AtomicBool::new(false));
            let (r, d) = (ran.clone(), timer_depth.clone());
            time::after(0, move || {
                d.store(irq::nesting_depth(), Ordering::Relaxed);
                r.store(true, Ordering::Relaxed);
            });
            // Level 1 is running; the level-6 alarm must get in anyway.
            let _ = time::spin_until(|| ran.load(Ordering::Relaxed), GUARD);
            done.store(true, Ordering::Relaxed);
            Handled::NotMine // the tty driver's handler, called first, drained the FIFO
        })
        .map_err(|e| Failure::Failed(alloc::format!("{e}")))?
    };
    tty::start();
    let waited = time::wait_until(|| done.load(Ordering::Relaxed), 2 * GUARD);
    irq::unregister(id);
    ensure!(waited.is_ok(), "the level-1 handler never ran");
    ensure_eq!(handler_level.load(Ordering::Relaxed), 1);
    ensure!(
        timer_depth.load(Ordering::Relaxed) >= 2,
        "the timer callback ran at nesting depth {} (want 2: inside the level-1 handler)",
        timer_depth.load(Ordering::Relaxed)
    );
    Ok(())
}

/// RTC #1: a second interrupt source on PIC6 the kernel does not otherwise use.
fn rtc1() -> (GoldfishRtc<MachineBus>, u32) {
    let rtc = crate::kern::boot::boot_info().rtc.unwrap();
    // SAFETY: RTC #1 sits RTC_STRIDE above RTC #0 on the virt board (its irq is the next
    // line); the kernel does not otherwise use it, so the bus reaches registers only this
    // test owns.
    (
        unsafe {
            GoldfishRtc::new(
                MachineBus::new(),
                rtc.base + crate::board::virt::memmap::RTC_STRIDE,
            )
        },
        rtc.irq + 1,
    )
}

fn arm_rtc1_soon() {
    let (rtc, _) = rtc1();
    let _masked = machine::mask_interrupts();
    rtc.set_interrupt_enabled(true);
    rtc.arm(rtc.now_ns() + MILLIS);
}

fn shared_line_calls_every_handler() -> TestResult {
    let (_, irq_no) = rtc1();
    let not_mine_calls = Arc::new(AtomicU32::new(0));
    let mine_calls = Arc::new(AtomicU32::new(0));
    let before = irq::stats(irq_no).unwrap();
    let a = {
        let c = not_mine_calls.clone();
        irq::register(irq_no, "test: not mine", move || {
            c.fetch_add(1, Ordering::Relaxed);
            Handled::NotMine
        })
        .map_err(|e| Failure::Failed(alloc::format!("{e}")))?
    };
    let b = {
        let c = mine_calls.clone();
        irq::register(irq_no, "test: rtc1", move || {
            c.fetch_add(1, Ordering::Relaxed);
            let (rtc, _) = rtc1();
            rtc.clear_interrupt();
            Handled::Yes
        })
        .map_err(|e| Failure::Failed(alloc::format!("{e}")))?
    };
    irq::enable(irq_no).unwrap();
    arm_rtc1_soon();
    let waited = time::wait_until(|| mine_calls.load(Ordering::Relaxed) > 0, GUARD);
    irq::disable(irq_no).unwrap();
    irq::unregister(a);
    irq::unregister(b);
    ensure!(
        waited.is_ok(),
        "the rtc1 alarm never interrupted: {:?}",
        waited
    );
    ensure!(
        not_mine_calls.load(Ordering::Relaxed) >= 1,
        "the 'not mine' handler was not called"
    );
    let after = irq::stats(irq_no).unwrap();
    ensure!(after.count > before.count, "line count did not move");
    ensure_eq!(after.unclaimed, before.unclaimed);
    Ok(())
}

fn unclaimed_line_is_counted_and_disabled() -> TestResult {
    let (rtc, irq_no) = rtc1();
    let before = irq::stats(irq_no).unwrap().unclaimed;
    let id = irq::register(irq_no, "test: nobody", || Handled::NotMine)
        .map_err(|e| Failure::Failed(alloc::format!("{e}")))?;
    irq::enable(irq_no).unwrap();
    arm_rtc1_soon();
    let waited = time::wait_until(|| irq::stats(irq_no).unwrap().unclaimed > before, GUARD);
    // The source is still up: clear it at the device, as a late driver would.
    rtc.clear_interrupt();
    let stats = irq::stats(irq_no).unwrap();
    irq::unregister(id);
    ensure!(
        waited.is_ok(),
        "no unclaimed interrupt was counted: {:?}",
        waited
    );
    ensure!(
        !stats.enabled,
        "an unclaimed line must be disabled, or it interrupts forever"
    );
    Ok(())
}

fn empty_level_is_counted_and_survived() -> TestResult {
    // Level 3 is PIC3 (virtio slots 32..63): nothing is attached there in the test runs.
    let before = irq::empty_level_count(3);
    {
        let _masked = machine::mask_interrupts();
        irq::irq_entry(3);
    }
    ensure_eq!(irq::empty_level_count(3), before + 1);
    Ok(())
}

/// The spurious interrupt (vector 24: no device answered the acknowledge cycle) is counted
/// and returned from, not taken as a fatal exception. Entered through the machine layer's trap
/// path with a real exception frame, as the CPU would.
fn spurious_vector_is_counted_and_survived() -> TestResult {
    let before = irq::empty_level_count(0);
    ensure!(
        machine::deliver_interrupt_vector(machine::SPURIOUS_VECTOR),
        "the machine layer refused vector 24"
    );
    ensure_eq!(irq::empty_level_count(0), before + 1);
    // A vector that is not an interrupt is refused, not delivered (it would end the kernel).
    ensure!(
        !machine::deliver_interrupt_vector(machine::SPURIOUS_VECTOR - 1),
        "vector 23 was delivered"
    );
    Ok(())
}

fn no_registration_from_interrupt_context() -> TestResult {
    let result = Arc::new(machine::irq_mutex(None));
    let r = result.clone();
    time::after(MILLIS, move || {
        *r.lock() = Some(irq::register(169, "from a timer", || Handled::Yes).map(|_| ()));
    });
    let waited = time::wait_until(|| result.lock().is_some(), GUARD);
    ensure!(waited.is_ok(), "the timer never ran");
    let got = result.lock().take();
    ensure_eq!(got, Some(Err(IrqError::InInterruptContext)));
    Ok(())
}

/// A timer callback runs only from the alarm interrupt, so once one has run the line has
/// counted it. (A `sleep` proves nothing here: on a slow host its deadline can pass before
/// its first check, and it returns without any interrupt.)
fn timer_interrupts_are_counted() -> TestResult {
    let rtc_irq = crate::kern::boot::boot_info().rtc.unwrap().irq;
    let before = irq::stats(rtc_irq).unwrap().count;
    let ran = Arc::new(AtomicBool::new(false));
    let r = ran.clone();
    time::after(MILLIS, move || r.store(true, Ordering::Relaxed));
    let waited = time::wait_until(|| ran.load(Ordering::Relaxed), GUARD);
    ensure!(waited.is_ok(), "the timer never fired: {:?}", waited);
    let after = irq::stats(rtc_irq).unwrap();
    ensure!(
        after.count > before,
        "a timer ran without a timer interrupt"
    );
    ensure!(
        after.enabled && after.handlers == 1,
        "timer line state {:?}",
        after
    );
    Ok(())
}

pub fn time_tests() -> Vec<Test> {
    vec![
        Test::new(
            "time::clock_is_monotonic_and_advances",
            clock_is_monotonic_and_advances,
        ),
        Test::new(
            "time::timer_fires_within_deadline_not_before",
            timer_fires_within_deadline_not_before,
        ),
        Test::new(
            "time::timers_fire_in_deadline_order",
            timers_fire_in_deadline_order,
        ),
        Test::new(
            "time::cancelled_timer_never_fires",
            cancelled_timer_never_fires,
        ),
        Test::new(
            "time::wait_until_times_out_with_an_error",
            wait_until_times_out_with_an_error,
        ),
        Test::new(
            "time::spin_until_times_out_with_an_error",
            spin_until_times_out_with_an_error,
        ),
        Test::new("time::sleep_sleeps", sleep_sleeps),
        Test::new("time::wall_clock_is_plausible", wall_clock_is_plausible),
    ]
}

fn clock_is_monotonic_and_advances() -> TestResult {
    let mut last = time::now();
    for _ in 0..2000 {
        let t = time::now();
        ensure!(t >= last, "clock went back from {last} to {t}");
        last = t;
    }
    let start = time::now();
    let _ = time::spin_until(|| false, MILLIS);
    ensure!(
        time::now() - start >= MILLIS,
        "1 ms of spinning took {} ns",
        time::now() - start
    );
    Ok(())
}

/// A timer fires at its deadline or after it, never before; how late is wall-clock only
/// (`wallclock::timer_is_not_late`).
fn timer_fires_within_deadline_not_before() -> TestResult {
    let (deadline, at) = timer_firing(5 * MILLIS)?;
    ensure!(at >= deadline, "fired {} ns early", deadline - at);
    Ok(())
}

/// Sets a timer `delay` ahead; returns its deadline and when its callback saw the clock.
fn timer_firing(delay: u64) -> Result<(u64, u64), Failure> {
    let fired_at = Arc::new(AtomicU64::new(0));
    let f = fired_at.clone();
    let deadline = time::now() + delay;
    time::at(deadline, move || f.store(time::now(), Ordering::Relaxed));
    let waited = time::wait_until(|| fired_at.load(Ordering::Relaxed) != 0, GUARD);
    ensure!(waited.is_ok(), "the timer did not fire: {:?}", waited);
    Ok((deadline, fired_at.load(Ordering::Relaxed)))
}

fn timers_fire_in_deadline_order() -> TestResult {
    let order = Arc::new(machine::irq_mutex(Vec::new()));
    {
        // All four are queued before any can fire: the RTC follows the host clock, and a
        // host stall while queueing would otherwise let early ones fire before later ones
        // with earlier deadlines were even added.
        let _masked = machine::mask_interrupts();
        let now = time::now();
        for (tag, delay) in [
            (1u32, 8 * MILLIS),
            (2, 2 * MILLIS),
            (3, 5 * MILLIS),
            (4, 2 * MILLIS),
        ] {
            let o = order.clone();
            time::at(now + delay, move || o.lock().push(tag));
        }
    }
    let waited = time::wait_until(|| order.lock().len() == 4, GUARD);
    ensure!(waited.is_ok(), "only {:?} fired", *order.lock());
    // The lock masks; no outer guard (in edition 2021 a block's tail temporaries drop after
    // its locals, so an outer guard would restore first and the lock's guard after it).
    let got = order.lock().clone();
    ensure_eq!(got, vec![2, 4, 3, 1]);
    Ok(())
}

/// A timer cancelled before its deadline never runs. Set and cancelled under the mask, so the
/// alarm cannot run it in between however the host schedules QEMU; a second timer with a
/// later deadline is the witness that the first one's deadline has passed (timers run in
/// deadline order, every expired one in the same alarm interrupt).
fn cancelled_timer_never_fires() -> TestResult {
    let fired = Arc::new(AtomicBool::new(false));
    let witness = Arc::new(AtomicBool::new(false));
    let (id, cancelled) = {
        let _masked = machine::mask_interrupts();
        let now = time::now();
        let f = fired.clone();
        let id = time::at(now + 3 * MILLIS, move || f.store(true, Ordering::Relaxed));
        let w = witness.clone();
        time::at(now + 4 * MILLIS, move || w.store(true, Ordering::Relaxed));
        (id, time::cancel(id))
    };
    ensure!(cancelled, "cancel found no pending timer");
    let alarms = time::alarm_interrupts();
    let waited = time::wait_until(|| witness.load(Ordering::Relaxed), GUARD);
    ensure!(
        waited.is_ok(),
        "the later timer never fired: {:?} ({} timers pending, {} alarm interrupts meanwhile, ipl {})",
        waited,
        time::pending_timers(),
        time::alarm_interrupts() - alarms,
        machine::current_ipl()
    );
    ensure!(!fired.load(Ordering::Relaxed), "a cancelled timer fired");
    ensure!(!time::cancel(id), "cancelled twice");
    Ok(())
}

fn wait_until_times_out_with_an_error() -> TestResult {
    let pending_before = time::pending_timers();
    let start = time::now();
    let r = time::wait_until(|| false, 3 * MILLIS);
    let elapsed = time::now() - start;
    let Err(e) = r else {
        return Err(Failure::Failed(
            "a condition that never holds was reported as met".into(),
        ));
    };
    ensure!(
        e.waited >= 3 * MILLIS && elapsed >= 3 * MILLIS,
        "gave up after {elapsed} ns"
    );
    ensure_eq!(time::pending_timers(), pending_before);
    Ok(())
}

fn spin_until_times_out_with_an_error() -> TestResult {
    let r = time::spin_until(|| false, 2 * MILLIS);
    ensure!(matches!(r, Err(e) if e.waited >= 2 * MILLIS), "{:?}", r);
    Ok(())
}

fn sleep_sleeps() -> TestResult {
    let slept = measure_sleep(4 * MILLIS);
    ensure!(slept >= 4 * MILLIS, "slept only {slept} ns");
    Ok(())
}

fn measure_sleep(duration: u64) -> u64 {
    let start = time::now();
    time::sleep(duration);
    time::now() - start
}

/// Upper bounds on lateness: properties of wall-clock time, which a loaded host can break at
/// will (QEMU's alarm is a host timer; the guest may simply not be scheduled). They run only
/// when named, under `-icount shift=0 -rtc clock=vm`, where guest time is instructions and a
/// bound is a property of the kernel (see harness::WALL_CLOCK).
pub fn wallclock_tests() -> Vec<Test> {
    vec![
        Test::new("wallclock::timer_is_not_late", timer_is_not_late),
        Test::new(
            "wallclock::wait_until_gives_up_on_time",
            wait_until_gives_up_on_time,
        ),
        Test::new("wallclock::sleep_is_not_long", sleep_is_not_long),
    ]
}

/// Slack for lateness: interrupt entry, the alarm's dispatch, and -singlestep's slowness.
const LATE_OK: u64 = 500 * MILLIS;

fn timer_is_not_late() -> TestResult {
    let (deadline, at) = timer_firing(5 * MILLIS)?;
    ensure!(
        at.saturating_sub(deadline) < LATE_OK,
        "fired {} us late",
        at.saturating_sub(deadline) / 1000
    );
    Ok(())
}

fn wait_until_gives_up_on_time() -> TestResult {
    let start = time::now();
    let r = time::wait_until(|| false, 3 * MILLIS);
    let elapsed = time::now() - start;
    ensure!(
        r.is_err(),
        "a condition that never holds was reported as met"
    );
    ensure!(elapsed < 3 * MILLIS + LATE_OK, "took {elapsed} ns");
    Ok(())
}

fn sleep_is_not_long() -> TestResult {
    let slept = measure_sleep(4 * MILLIS);
    ensure!(slept < 4 * MILLIS + LATE_OK, "slept {slept} ns");
    Ok(())
}

fn wall_clock_is_plausible() -> TestResult {
    let t = time::wall_clock();
    ensure!(t.year >= 2024 && t.year < 2200, "wall clock says {t}");
    Ok(())
}

pub fn tty_tests() -> Vec<Test> {
    vec![Test::new(
        "tty::read_line_with_backspace",
        read_line_with_backspace,
    )]
}

/// The xtask types "hellp<DEL>o world<CR>" on the console.
fn read_line_with_backspace() -> TestResult {
    if tty::wait_for_input(SECONDS).is_err() {
        return skip("no console input arrived (the xtask types a fixture line)");
    }
    let line = tty::read_line(2 * SECONDS, false)
        .map_err(|e| Failure::Failed(alloc::format!("line not finished: {e}")))?;
    ensure_eq!(line.as_str(), "hello world");
    ensure_eq!(tty::dropped(), 0);
    Ok(())
}
