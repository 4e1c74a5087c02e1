//! Boot: from the machine layer's call of `kernel_main` to the end of the run.
//!
//! Order matters: bootinfo is read before anything grows over it; the console is moved to the
//! bootinfo TTY before the first real output; linear memory is grown to the end of RAM before
//! the heap is laid over it; options are parsed after that (errors print with the heap up).

use crate::arch::m68k::cache::{self, Mode as CacheMode};
use crate::arch::m68k::cpu::{self, Identity, Model};
use crate::arch::m68k::ipl::IplControl;
use crate::arch::m68k::machine::{self, MachineFault};
use crate::board::virt::bootinfo::{self, BootInfo};
use crate::board::virt::{irq, qemu};
use crate::kern::cmdline::{self, Fault, Options, TestSelection};
use crate::kern::{boot, console, fatal, heap, time};
use core::cell::UnsafeCell;

const WASM_PAGE: u32 = 65536;

/// The longest command line QEMU writes a well-formed bootinfo record for: the record's
/// 16-bit size counts the 4-byte header, the text, its NUL and padding to 4 bytes, and
/// QEMU stores a longer line's size truncated to 16 bits (hw/m68k/bootinfo.h BOOTINFOSTR).
pub const MAX_COMMAND_LINE: usize = 65527;

/// Room for the list: the largest command-line record and 4 KiB for every other record.
const BOOTINFO_BUFFER: usize = 65532 + 4096;

/// The copy of the bootinfo list that BOOT_INFO borrows from.
struct BootInfoBuffer(UnsafeCell<[u8; BOOTINFO_BUFFER]>);
// SAFETY: written once by kernel_main before anything else runs, read-only afterwards.
unsafe impl Sync for BootInfoBuffer {}
static BOOTINFO_BYTES: BootInfoBuffer = BootInfoBuffer(UnsafeCell::new([0; BOOTINFO_BUFFER]));

fn read_bootinfo() -> &'static BootInfo<'static> {
    // SAFETY: only this function, called once at boot, writes the buffer; the shared slice
    // taken afterwards is never written again.
    let bytes: &'static [u8] = unsafe {
        let buf = &mut *BOOTINFO_BYTES.0.get();
        let len = machine::read_bootinfo(0, buf);
        &buf[..len]
    };
    let info = match bootinfo::parse(bytes) {
        Ok(info) => info,
        Err(e) => {
            if let Some(at) = e.command_line_record() {
                command_line_too_long(at);
            }
            println!("fatal: malformed bootinfo list: {e}");
            fatal::exit(false);
        }
    };
    if let Err(missing) = info.require_virt() {
        println!("fatal: unusable bootinfo: {missing}");
        fatal::exit(false);
    }
    boot::set_boot_info(info)
}

/// A COMMAND_LINE record at byte `at` of the list that did not parse: if its text is over
/// [`MAX_COMMAND_LINE`] (QEMU then writes a wrong record size), says how long it is.
fn command_line_too_long(at: usize) {
    // The text starts after the record header and ends at the first NUL.
    let mut len = 0usize;
    let mut chunk = [0u8; 256];
    loop {
        let got = machine::read_bootinfo(at + 4 + len, &mut chunk);
        match chunk[..got].iter().position(|&b| b == 0) {
            Some(nul) => {
                len += nul;
                break;
            }
            None if got == 0 => return, // no NUL before linear memory: say nothing precise
            None => len += got,
        }
    }
    if len > MAX_COMMAND_LINE {
        println!(
            "fatal: the kernel command line is {len} bytes; this kernel takes at most \
             {MAX_COMMAND_LINE} (the most QEMU's 16-bit bootinfo record size can describe)"
        );
        fatal::exit(false);
    }
}

/// Grows linear memory to the end of the RAM chunk it starts in, then gives the part above
/// Rust's data and stack to the heap.
fn setup_memory(info: &BootInfo) {
    extern "C" {
        static __heap_base: u8;
    }
    let base = machine::linear_memory_base();
    let Some(end) = info.chunk_containing(base).and_then(|c| c.end()) else {
        println!("fatal: no RAM at the linear memory base {base:#x}; give QEMU more memory (-m)");
        fatal::exit(false);
    };
    if end != machine::machine_ram_end() {
        println!(
            "fatal: RAM end disagrees: bootinfo says {end:#x}, the machine layer {:#x}",
            machine::machine_ram_end()
        );
        fatal::exit(false);
    }
    // The machine layer gives linear memory every whole page of RAM at instantiation (the
    // bounds checks' size is patched to it: boot/runtime.c), so this grows by nothing; a
    // shortfall is reported, not patched over (memory.grow refuses to move that size).
    let want_pages = ((end - base) / WASM_PAGE) as usize;
    let have_pages = core::arch::wasm32::memory_size(0);
    if want_pages > have_pages
        && core::arch::wasm32::memory_grow(0, want_pages - have_pages) == usize::MAX
    {
        println!("fatal: linear memory could not grow to {want_pages} pages");
        fatal::exit(false);
    }
    // __heap_base is the linker's first address past Rust's data and stack.
    let start = core::ptr::addr_of!(__heap_base) as usize;
    let top = core::arch::wasm32::memory_size(0) * WASM_PAGE as usize;
    // SAFETY: [start, top) is linear memory nothing else uses, and this runs once.
    unsafe { heap::init(start as *mut u8, top - start) };
}

fn banner(info: &BootInfo, opts: &Options, id: Identity, cache_mode: CacheMode) {
    println!(
        "m68k virt kernel {} (Rust via wasm32v1-none + wasm2c)",
        env!("CARGO_PKG_VERSION")
    );
    match info.qemu_version {
        Some(v) => print!("qemu {v}"),
        None => print!("qemu version not reported"),
    }
    println!(", machine type {}", info.machine_type.unwrap_or(0));
    println!("cpu {id}");
    println!(
        "  bootinfo claims cpu {}, fpu {}, mmu {}{}",
        bootinfo::cpu_name(info.cpu_type.unwrap_or(0)),
        bootinfo::fpu_name(info.fpu_type.unwrap_or(0)),
        bootinfo::mmu_name(info.mmu_type.unwrap_or(0)),
        if bootinfo::cpu_model(info.cpu_type.unwrap_or(0)) != Some(id.model) {
            " (wrong: QEMU 7.2 always says 68040)"
        } else {
            ""
        }
    );
    if cpu::has_040_cache_model(id.model) || cache::has_data_cache(id.model) {
        print!(
            "caches {} (CACR {:#010x}",
            cache_mode.name(),
            machine::cacr_read()
        );
    } else {
        print!(
            "caches: instruction cache only, {} (CACR {:#010x}",
            if cache_mode == CacheMode::Off {
                "off"
            } else {
                "on"
            },
            machine::cacr_read()
        );
    }
    if let Some([itt0, itt1, dtt0, dtt1]) = cache::read_ttrs() {
        print!("; ITT0 {itt0:#010x} ITT1 {itt1:#010x} DTT0 {dtt0:#010x} DTT1 {dtt1:#010x}");
    }
    println!(")");
    if !cache::has_data_cache(id.model) {
        println!(
            "dma syncs: compiler barriers only (the {} has no data cache)",
            id.model
        );
    } else if cpu::has_040_cache_model(id.model) && !id.cache_insns {
        println!(
            "dma syncs: compiler barriers only (CINV/CPUSH trap under this QEMU, which models no caches)"
        );
    }
    println!("time {} (goldfish RTC #1)", time::wall_clock());
    for c in info.mem_chunks.as_slice() {
        println!(
            "ram {:#010x}-{:#010x} ({})",
            c.addr,
            c.addr as u64 + c.size as u64,
            crate::kern::units::Bytes(c.size.into())
        );
    }
    if let Some(r) = info.ramdisk {
        println!("ramdisk {:#010x} ({} bytes)", r.addr, r.size);
    }
    let (heap_start, heap_size) = heap::region();
    let base = machine::linear_memory_base();
    println!(
        "linear memory at {base:#010x}, {}; heap {:#010x}-{:#010x} ({})",
        crate::kern::units::Bytes((core::arch::wasm32::memory_size(0) * WASM_PAGE as usize) as u64),
        base as usize + heap_start,
        base as usize + heap_start + heap_size,
        crate::kern::units::Bytes(heap_size as u64)
    );
    let devices = [
        ("pic", info.pic, " (6 PICs, 0x1000 apart)"),
        ("rtc", info.rtc, " (2 RTCs, 0x1000 apart)"),
        ("tty", info.tty, ""),
        ("ctrl", info.ctrl, ""),
        ("virtio", info.virtio, " (128 slots, 0x200 apart)"),
    ];
    for (name, dev, note) in devices {
        if let Some(d) = dev {
            println!("device {name:<6} base {:#010x} irq {}{note}", d.base, d.irq);
        }
    }
    println!("command line \"{}\"", info.command_line.unwrap_or(""));
    if let Some(seed) = info.rng_seed {
        println!("rng seed {} bytes", seed.len());
    }
    for u in info.unknown.as_slice() {
        print!(
            "unknown bootinfo record {:#06x}, {} bytes:",
            u.tag,
            u.payload.len()
        );
        for b in u.payload.iter().take(16) {
            print!(" {b:02x}");
        }
        println!();
    }
    if info.unknown_dropped > 0 {
        println!(
            "unknown bootinfo records not shown: {}",
            info.unknown_dropped
        );
    }
    log_info!("log level {}", opts.log.name());
}

fn cause(fault: Fault) {
    println!("fault={} requested: failing on purpose", fault.name());
    match fault {
        Fault::Panic => panic!("deliberate panic (fault=panic)"),
        Fault::Illegal => machine::cause_fault(MachineFault::IllegalInstruction),
        Fault::BusError => machine::cause_fault(MachineFault::BusError),
        Fault::DivZero => machine::cause_fault(MachineFault::DivideByZero),
        Fault::WasmTrap => {
            // The first byte past linear memory: the bounds check's size is patched in at
            // boot (boot/runtime.c), and this pins it from above (boot::
            // linear_memory_reaches_end_of_ram reads the last byte, pinning it from below).
            let end = core::arch::wasm32::memory_size(0) * WASM_PAGE as usize;
            // SAFETY: deliberately out of bounds: the wasm bounds check traps first.
            let _ = unsafe { core::ptr::read_volatile(end as *const u8) };
        }
        Fault::Stack => {
            let depth = crate::kern::fatal::recurse_without_end();
            println!("fatal: {depth} nested calls returned: no stack guard");
        }
    }
    // QEMU 7.2 raises access faults for unmapped addresses only on the 68040.
    println!("fatal: fault={} did not fault on this CPU", fault.name());
    fatal::exit(false);
}

#[no_mangle]
pub extern "C" fn kernel_main() {
    let info = read_bootinfo();
    let tty = info.tty.unwrap().base;
    let ctrl = info.ctrl.unwrap().base;
    // SAFETY: bootinfo's BI_VIRT_GF_TTY_BASE and BI_VIRT_CTRL_BASE records, which QEMU's virt
    // board writes with the addresses where it maps those devices (read_bootinfo requires
    // both records, and require_virt that neither register page overlaps RAM).
    unsafe {
        console::set_tty_base(tty);
        fatal::set_ctrl_base(ctrl);
        machine::set_fallback(tty, ctrl);
    }
    setup_memory(info);

    let opts = match cmdline::parse(info.command_line.unwrap_or("")) {
        Ok(opts) => opts,
        Err(e) => {
            println!("fatal: kernel command line: {e}");
            let mut usage = alloc::string::String::new();
            let _ = cmdline::usage(&mut usage);
            print!("{usage}");
            fatal::exit(false);
        }
    };
    console::set_level(opts.log);
    let opts = boot::set_options(opts);

    let id = identify_cpu(info);
    let cache_mode = setup_caches(id, opts);
    crate::kern::dma::configure(opts);
    start_interrupts_and_clock(info);
    let virtio = info.virtio.unwrap();
    // SAFETY: bootinfo's BI_VIRT_VIRTIO_BASE record, the board's virtio-mmio window
    // (require_virt checked that all its slots lie outside RAM).
    unsafe { crate::board::virt::virtio_probe::probe_all(virtio.base, virtio.irq) };
    // SAFETY: slot 0's MagicValue (offset 0) in the same window: a constant register,
    // whatever the slot holds (QEMU's virtio-mmio answers it with no side effect).
    unsafe { crate::arch::m68k::dma::set_membar_register(virtio.base) };
    banner(info, opts, id, cache_mode);
    print_virtio_banner();
    crate::kern::disks::print_banner();

    if let Some(fault) = opts.fault {
        cause(fault);
    }
    let (tests_ok, bench_ok) = run_selftests(opts);
    // A verify of the user's disks (`cargo xtask verify`), after any tests.
    let verify_ok = opts.verify == 0 || crate::kern::verify::run(opts);
    if opts.test != TestSelection::None || opts.bench != cmdline::Bench::None || opts.verify != 0 {
        print_irq_stats();
        let (_, size) = heap::region();
        println!(
            "heap: at most {} of {} in use at once",
            crate::kern::units::Bytes(heap::peak() as u64),
            crate::kern::units::Bytes(size as u64)
        );
    }
    // With dma_audit=on, any finding the tests did not ask for fails the run.
    let findings = crate::arch::m68k::dma::DMA.with_auditor(|a| a.map_or(0, |a| a.total()));
    if findings > 0 {
        println!(
            "dma audit: {findings} finding(s) during the run (the first of each kind on each line printed above, repeats counted): failing it"
        );
    }
    fatal::exit(tests_ok && bench_ok && verify_ok && findings == 0);
}

fn identify_cpu(info: &BootInfo) -> Identity {
    let id =
        match cpu::identify(|model, mask| qemu::check_supported(model, mask, info.qemu_version)) {
            Ok(id) => id,
            Err(e) => {
                println!("fatal: {e}");
                fatal::exit(false);
            }
        };
    if !id.fpu {
        // GCC compiles wasm float operations to FPU instructions.
        println!(
            "fatal: no FPU answered; this kernel's float code needs a 68881/68882 or 68040/68060 FPU"
        );
        fatal::exit(false);
    }
    id
}

fn setup_caches(id: Identity, opts: &Options) -> CacheMode {
    let mode = match (id.model, opts.cache) {
        (_, Some(CacheMode::Off)) => CacheMode::Off,
        // The 68030 data cache can only write through.
        (Model::M68030, _) => CacheMode::WriteThrough,
        // No data cache: the mode names what the instruction cache does, which is nothing
        // for data.
        (Model::M68020, _) => CacheMode::WriteThrough,
        (_, Some(mode)) => mode,
        (_, None) => CacheMode::Copyback,
    };
    // SAFETY: the board's device window; require_virt checked that every device bootinfo
    // names lies in it.
    unsafe { cache::enable(mode, crate::board::virt::memmap::DEVICE_WINDOW) };
    mode
}

fn start_interrupts_and_clock(info: &BootInfo) {
    let pic = info.pic.unwrap();
    let rtc = info.rtc.unwrap();
    // SAFETY: bootinfo's BI_VIRT_GF_PIC_BASE record, where the board maps PIC #1 (and the
    // other five PIC_STRIDE apart).
    unsafe { irq::init(pic.base) };
    // SAFETY: bootinfo's BI_VIRT_GF_RTC_BASE record, where the board maps RTC #0 (RTC #1 at
    // RTC_STRIDE above it).
    if let Err(e) = unsafe { time::init(rtc.base, rtc.irq) } {
        println!("fatal: cannot start the clock: {e}");
        fatal::exit(false);
    }
    let tty = info.tty.unwrap();
    // SAFETY: bootinfo's BI_VIRT_GF_TTY_BASE record, where the board maps the TTY.
    if let Err(e) = unsafe { crate::kern::tty::init(tty.base, tty.irq) } {
        println!("fatal: cannot set up console input: {e}");
        fatal::exit(false);
    }
    // Entry left SR at 0x2700: from here on interrupts are taken.
    // SAFETY: boot holds no lock and no guard here; the PIC, clock and console input are set
    // up with their handlers registered, so any interrupt now finds its handler and state.
    unsafe { machine::MACHINE_IPL.set(0) };
}

/// One line per virtio slot holding a device or refused at probe time.
fn print_virtio_banner() {
    use crate::board::virt::virtio_probe::{self, Slot};
    use drivers::virtio::mmio::SLOTS;
    let found = virtio_probe::found();
    if found.is_empty() {
        println!("virtio: no devices in the {SLOTS} slots");
    }
    for s in found {
        match s {
            Slot::Device(d) => println!(
                "virtio slot {:3} at {:#010x} irq {}: {} (id {}), vendor {:#010x}, version {}",
                d.slot,
                d.base,
                d.irq,
                virtio_probe::device_name(d.device_id),
                d.device_id,
                d.vendor_id,
                d.version
            ),
            Slot::Refused { slot, base, why } => {
                println!("virtio slot {slot:3} at {base:#010x}: refused: {why}")
            }
        }
    }
}

/// Every line that has a handler or has interrupted, and the spurious counts per level.
fn print_irq_stats() {
    println!("interrupt statistics (irq: count, unclaimed, handlers):");
    for irq in irq::FIRST_IRQ..irq::FIRST_IRQ + irq::IRQ_COUNT {
        let Some(s) = irq::stats(irq) else { continue };
        if s.count == 0 && s.handlers == 0 && s.unclaimed == 0 {
            continue;
        }
        print!(
            "  irq {irq:3}: {:8} interrupts, {:4} unclaimed",
            s.count, s.unclaimed
        );
        irq::for_each_handler_name(irq, |name| print!(" [{name}]"));
        println!("{}", if s.enabled { "" } else { " (disabled)" });
    }
    print!(
        "  spurious: vector 24 {}; nothing pending per level 1-7:",
        irq::empty_level_count(0)
    );
    for level in 1..=7 {
        print!(" {}", irq::empty_level_count(level));
    }
    println!();
}

/// Runs the selected self tests, then the benchmark; whether each passed.
#[cfg(feature = "selftest")]
fn run_selftests(opts: &Options) -> (bool, bool) {
    use crate::selftest::{bench, harness};
    harness::install(crate::selftest::all());
    if let TestSelection::Matching(pattern) = opts.test {
        if let Some(text) = harness::unmatched(opts.test, &harness::test_names()) {
            println!("fatal: test={pattern}: no test name contains '{text}'");
            fatal::exit(false);
        }
    }
    let tests_ok = if opts.test == TestSelection::None {
        println!("no tests requested (test=none)");
        true
    } else {
        harness::run(opts.test).all_passed()
    };
    let bench_ok = match opts.bench {
        cmdline::Bench::None => true,
        cmdline::Bench::Quick => bench::run(bench::Matrix::Quick, opts.bench_cell),
        cmdline::Bench::Full => bench::run(bench::Matrix::Full, opts.bench_cell),
    };
    (tests_ok, bench_ok)
}

/// A kernel built without the `selftest` feature: the default `test=all` has nothing to run
/// (said so); naming tests or a benchmark is a request this build cannot serve (refused).
#[cfg(not(feature = "selftest"))]
fn run_selftests(opts: &Options) -> (bool, bool) {
    if let TestSelection::Matching(pattern) = opts.test {
        println!("fatal: test={pattern}: this kernel was built without its self tests (cargo feature `selftest`)");
        fatal::exit(false);
    }
    if opts.bench != cmdline::Bench::None {
        println!(
            "fatal: bench=: this kernel was built without the benchmark (cargo feature `selftest`)"
        );
        fatal::exit(false);
    }
    if opts.test == TestSelection::All {
        println!("no self tests in this build (cargo feature `selftest` off)");
    }
    (true, true)
}
