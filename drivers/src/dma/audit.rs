//! The sync auditor: per cache line of every DMA region, what the CPU and the device may do,
//! and a report for every access or sync that breaks bus_dma's rules.
//!
//! Per line it tracks:
//! - `device_writable`: the region was declared device-written, or the line has seen PREREAD;
//! - `handed`: PREREAD since the last POSTREAD (the device may be writing; the CPU must not
//!   read, and must not write either: a copyback line would later overwrite the device);
//! - `cycle`: completed PREREAD -> POSTREAD cycles; `phase`: POSTREADs (each opens a read
//!   phase); `last_read`: the (cycle, phase) of the CPU's last read;
//! - `cpu_dirty`: the CPU wrote the line since its last PREWRITE.
//!
//! The rules (see docs/dma-sync.md):
//! - a CPU read of a device-writable line that is handed, or that never had a POSTREAD, is a
//!   read without POSTREAD;
//! - a CPU read in a later read phase of the same cycle as its previous read re-reads the line
//!   without a PREREAD/POSTREAD cycle: the exact mistake of NetBSD PR kern/60144 (on a 68030
//!   the line the first read filled is still in the cache, POSTREAD does not invalidate);
//! - a CPU read of bytes it already read in the same cycle, whatever the POSTREADs: a polling
//!   loop that syncs nothing between its reads (the same mistake with no sync at all; reads of
//!   different fields of one line in one read phase are fine);
//! - the device starting on lines the CPU wrote since their last PREWRITE;
//! - the device starting to write lines that had no PREREAD since their last POSTREAD;
//! - a CPU write to a line handed to the device for a transfer (a request header, a data
//!   buffer) before the transfer's POSTWRITE: the device may still be reading it;
//! - PRE mixed with POST in one sync, and syncs outside the region.
//!
//! Repeated reports of one kind on one line are counted, not repeated.
#![forbid(unsafe_code)]

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::panic::Location;

use super::SyncOps;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Violation {
    /// CPU read of a device-writable line with no POSTREAD since the device could have written it.
    ReadWithoutPostRead,
    /// CPU read in a new read phase without a PREREAD/POSTREAD cycle since its previous read.
    RereadWithoutPreRead,
    /// The device was started on lines the CPU wrote after their last PREWRITE.
    DeviceStartWithoutPreWrite,
    /// The CPU wrote a line the device may be writing (PREREAD without POSTREAD).
    WriteWhileDeviceOwns,
    /// The device was started writing lines with no PREREAD since their last POSTREAD.
    DeviceWriteWithoutPreRead,
    /// The CPU wrote a line handed to the device for a transfer before its POSTWRITE.
    WriteWhileDeviceReads,
    /// One sync combined PRE and POST operations.
    PreMixedWithPost,
    /// A sync range outside the region.
    SyncOutsideRegion,
}

impl Violation {
    pub fn describe(self) -> &'static str {
        match self {
            Violation::ReadWithoutPostRead => "CPU read of a device-writable line with no POSTREAD since the device could write it",
            Violation::RereadWithoutPreRead => {
                "CPU re-read a line in a new read phase without a PREREAD/POSTREAD cycle since its previous read"
            }
            Violation::DeviceStartWithoutPreWrite => "device started on a line the CPU wrote after its last PREWRITE",
            Violation::WriteWhileDeviceOwns => "CPU wrote a line the device may be writing (PREREAD, no POSTREAD yet)",
            Violation::DeviceWriteWithoutPreRead => "device started writing a line with no PREREAD since its last POSTREAD",
            Violation::WriteWhileDeviceReads => "CPU wrote a line the device may still be reading (handed over for a transfer, no POSTWRITE since)",
            Violation::PreMixedWithPost => "PRE and POST operations in one sync",
            Violation::SyncOutsideRegion => "sync range outside the region",
        }
    }
}

/// One finding, with where it happened.
#[derive(Debug, Clone)]
pub struct Report {
    pub violation: Violation,
    pub region: &'static str,
    /// Offset in the region of the access, or of the start of the bad sync.
    pub offset: u32,
    pub caller: &'static Location<'static>,
    /// How many times it happened (the first occurrence's place is kept).
    pub count: u32,
    pub detail: String,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "dma audit: {} in {} at offset {:#x}, by {}:{}",
            self.violation.describe(),
            self.region,
            self.offset,
            self.caller.file(),
            self.caller.line()
        )?;
        if !self.detail.is_empty() {
            write!(f, " ({})", self.detail)?;
        }
        if self.count > 1 {
            write!(f, " [x{}]", self.count)?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct LineState {
    device_writable: bool,
    handed: bool,
    cycle: u32,
    phase: u32,
    last_read: Option<(u32, u32)>,
    /// Bytes of the line (bit i: byte i) the CPU read in cycle `last_read.0`.
    read_bytes: u64,
    cpu_dirty: bool,
    /// Handed to the device for a transfer it reads, no POSTWRITE since.
    device_reading: bool,
}

struct RegionState {
    name: &'static str,
    len: u32,
    lines: Vec<LineState>,
}

/// Where reports go as they are made (the kernel prints them).
pub type Sink = fn(&Report);

pub struct Auditor {
    /// The platform's cache line size in bytes: the unit of ownership tracked.
    line: u32,
    regions: BTreeMap<u32, RegionState>,
    reports: Vec<Report>,
    index: BTreeMap<(u32, u32, Violation), usize>,
    sink: Option<Sink>,
}

/// Reports kept in detail; more are only counted.
pub const MAX_REPORTS: usize = 64;

impl Auditor {
    /// An auditor tracking `line`-byte cache lines (the platform's [`super::Platform::LINE`],
    /// a power of two up to 64).
    pub fn new(line: u32) -> Self {
        assert!(
            line.is_power_of_two() && line <= 64,
            "cache line of {line} bytes"
        );
        Auditor {
            line,
            regions: BTreeMap::new(),
            reports: Vec::new(),
            index: BTreeMap::new(),
            sink: None,
        }
    }

    pub fn set_sink(&mut self, sink: Option<Sink>) {
        self.sink = sink;
    }

    /// Starts tracking a region; `device_writes` declares it device-written from the start.
    pub fn add_region(&mut self, id: u32, name: &'static str, len: u32, device_writes: bool) {
        let lines = len.div_ceil(self.line) as usize;
        let state = LineState {
            device_writable: device_writes,
            ..LineState::default()
        };
        self.regions.insert(
            id,
            RegionState {
                name,
                len,
                lines: alloc::vec![state; lines],
            },
        );
    }

    /// Starts tracking a region the auditor has not seen (one allocated while auditing was
    /// off, or before the auditor was restarted), with its real length; a region already
    /// tracked keeps its state. Nothing is known of its past, so no line is taken to be
    /// device-written until its first PREREAD.
    pub fn learn_region(&mut self, id: u32, name: &'static str, len: u32) {
        if !self.regions.contains_key(&id) {
            self.add_region(id, name, len, false);
        }
    }

    pub fn remove_region(&mut self, id: u32) {
        self.regions.remove(&id);
    }

    pub fn reports(&self) -> &[Report] {
        &self.reports
    }

    /// Total findings, repeats included.
    pub fn total(&self) -> u32 {
        self.reports.iter().map(|r| r.count).sum()
    }

    pub fn clear_reports(&mut self) {
        self.reports.clear();
        self.index.clear();
    }

    fn report(
        &mut self,
        id: u32,
        line: u32,
        violation: Violation,
        offset: u32,
        caller: &'static Location<'static>,
        detail: String,
    ) {
        if let Some(&i) = self.index.get(&(id, line, violation)) {
            self.reports[i].count += 1;
            return;
        }
        let region = self.regions.get(&id).map_or("?", |r| r.name);
        let report = Report {
            violation,
            region,
            offset,
            caller,
            count: 1,
            detail,
        };
        if let Some(sink) = self.sink {
            sink(&report);
        }
        if self.reports.len() < MAX_REPORTS {
            self.index.insert((id, line, violation), self.reports.len());
            self.reports.push(report);
        } else if let Some(last) = self.reports.last_mut() {
            last.count += 1;
        }
    }

    fn lines(line: u32, len_region: u32, offset: u32, len: u32) -> core::ops::Range<u32> {
        let end = offset.saturating_add(len).min(len_region);
        offset / line..end.div_ceil(line)
    }

    /// Checks a sync's shape; Ok(()) if it may proceed. A region the auditor does not track
    /// has no known length: only the PRE/POST rule is checked (the tag checks the range
    /// against the region's real length itself).
    pub fn check_sync(
        &mut self,
        id: u32,
        ops: SyncOps,
        offset: u32,
        len: u32,
        caller: &'static Location<'static>,
    ) -> Result<(), Violation> {
        let region_len = self.regions.get(&id).map(|r| r.len);
        if ops.intersects(SyncOps::PRE) && ops.intersects(SyncOps::POST) {
            self.report(
                id,
                offset / self.line,
                Violation::PreMixedWithPost,
                offset,
                caller,
                alloc::format!("{ops:?}"),
            );
            return Err(Violation::PreMixedWithPost);
        }
        let Some(region_len) = region_len else {
            return Ok(());
        };
        if offset.checked_add(len).is_none_or(|end| end > region_len) {
            let detail =
                alloc::format!("{offset:#x}+{len:#x} in a region of {region_len:#x} bytes");
            self.report(
                id,
                offset / self.line,
                Violation::SyncOutsideRegion,
                offset,
                caller,
                detail,
            );
            return Err(Violation::SyncOutsideRegion);
        }
        Ok(())
    }

    /// Records a sync that passed `check_sync`.
    pub fn on_sync(&mut self, id: u32, ops: SyncOps, offset: u32, len: u32) {
        let Some(r) = self.regions.get_mut(&id) else {
            return;
        };
        for l in Self::lines(self.line, r.len, offset, len) {
            let s = &mut r.lines[l as usize];
            if ops.contains(SyncOps::PREWRITE) {
                s.cpu_dirty = false;
            }
            if ops.contains(SyncOps::POSTWRITE) {
                s.device_reading = false;
            }
            if ops.contains(SyncOps::PREREAD) {
                s.device_writable = true;
                s.handed = true;
            }
            if ops.contains(SyncOps::POSTREAD) {
                s.phase += 1;
                if s.handed {
                    s.handed = false;
                    s.cycle += 1;
                }
            }
        }
    }

    /// A CPU read of [offset, offset + len) of region `id`.
    pub fn on_read(&mut self, id: u32, offset: u32, len: u32, caller: &'static Location<'static>) {
        let Some(r) = self.regions.get_mut(&id) else {
            return;
        };
        let mut found = Vec::new();
        let line = self.line;
        for l in Self::lines(self.line, r.len, offset, len) {
            let s = &mut r.lines[l as usize];
            if !s.device_writable {
                continue;
            }
            // The bytes of this line the read covers.
            let lo = offset.max(l * line) - l * line;
            let hi = (offset + len).min((l + 1) * line) - l * line;
            if hi <= lo {
                continue;
            }
            let bytes = (u64::MAX >> (64 - (hi - lo))) << lo;
            if s.handed || s.cycle == 0 {
                let why = if s.handed {
                    "PREREAD done, POSTREAD missing"
                } else {
                    "no PREREAD/POSTREAD cycle yet"
                };
                found.push((l, Violation::ReadWithoutPostRead, String::from(why)));
            } else if let Some((c, p)) = s.last_read {
                if c == s.cycle && p < s.phase {
                    let why = alloc::format!(
                        "previous read in read phase {p}, this one in {}; no PREREAD between",
                        s.phase
                    );
                    found.push((l, Violation::RereadWithoutPreRead, why));
                } else if c == s.cycle && s.read_bytes & bytes != 0 {
                    let why = String::from(
                        "the same bytes read again with no PREREAD/POSTREAD cycle since",
                    );
                    found.push((l, Violation::RereadWithoutPreRead, why));
                }
            }
            if s.last_read.is_some_and(|(c, _)| c == s.cycle) {
                s.read_bytes |= bytes;
            } else {
                s.read_bytes = bytes;
            }
            s.last_read = Some((s.cycle, s.phase));
        }
        for (l, v, why) in found {
            self.report(id, l, v, offset, caller, why);
        }
    }

    /// A CPU read of [offset, offset + len) of a buffer the CPU owns (taken back from the
    /// device): only the POSTREAD rule applies, since it is not polled for the device.
    pub fn on_read_owned(
        &mut self,
        id: u32,
        offset: u32,
        len: u32,
        caller: &'static Location<'static>,
    ) {
        self.report_lines(
            id,
            offset,
            len,
            caller,
            Violation::ReadWithoutPostRead,
            "a buffer taken back from the device",
            |s| s.device_writable && (s.handed || s.cycle == 0),
        );
    }

    /// Reports `violation` for every line of [offset, offset + len) of region `id` whose
    /// state matches `pred`, at the line's own offset.
    #[allow(clippy::too_many_arguments)]
    fn report_lines(
        &mut self,
        id: u32,
        offset: u32,
        len: u32,
        caller: &'static Location<'static>,
        violation: Violation,
        detail: &str,
        pred: impl Fn(&LineState) -> bool,
    ) {
        let Some(r) = self.regions.get(&id) else {
            return;
        };
        let matching: Vec<u32> = Self::lines(self.line, r.len, offset, len)
            .filter(|&l| pred(&r.lines[l as usize]))
            .collect();
        for l in matching {
            self.report(
                id,
                l,
                violation,
                l * self.line,
                caller,
                String::from(detail),
            );
        }
    }

    /// A CPU write of [offset, offset + len) of region `id`.
    pub fn on_write(&mut self, id: u32, offset: u32, len: u32, caller: &'static Location<'static>) {
        let Some(r) = self.regions.get_mut(&id) else {
            return;
        };
        let mut found = Vec::new();
        for l in Self::lines(self.line, r.len, offset, len) {
            let s = &mut r.lines[l as usize];
            s.cpu_dirty = true;
            if s.handed {
                found.push((l, Violation::WriteWhileDeviceOwns));
            }
            if s.device_reading {
                found.push((l, Violation::WriteWhileDeviceReads));
            }
        }
        for (l, v) in found {
            self.report(id, l, v, offset, caller, String::new());
        }
    }

    /// The device may write [offset, offset + len) from now on (a buffer or status byte handed
    /// over for a device-to-memory transfer): each line needs a PREREAD since its last
    /// POSTREAD.
    pub fn on_device_start_writing(
        &mut self,
        id: u32,
        offset: u32,
        len: u32,
        caller: &'static Location<'static>,
    ) {
        self.report_lines(
            id,
            offset,
            len,
            caller,
            Violation::DeviceWriteWithoutPreRead,
            "",
            |s| !s.handed,
        );
    }

    /// The device may read [offset, offset + len) from now on (a notify, a descriptor handed over).
    pub fn on_device_start(
        &mut self,
        id: u32,
        offset: u32,
        len: u32,
        caller: &'static Location<'static>,
    ) {
        self.device_start(id, offset, len, caller, false);
    }

    /// As [`on_device_start`](Self::on_device_start), for a transfer: the lines stay the
    /// device's to read until their POSTWRITE (ring memory, which the device reads at any
    /// time and the CPU keeps extending, is started with `on_device_start`).
    pub fn on_device_start_transfer(
        &mut self,
        id: u32,
        offset: u32,
        len: u32,
        caller: &'static Location<'static>,
    ) {
        self.device_start(id, offset, len, caller, true);
    }

    fn device_start(
        &mut self,
        id: u32,
        offset: u32,
        len: u32,
        caller: &'static Location<'static>,
        holds: bool,
    ) {
        self.report_lines(
            id,
            offset,
            len,
            caller,
            Violation::DeviceStartWithoutPreWrite,
            "",
            |s| s.cpu_dirty,
        );
        if let (true, Some(r)) = (holds, self.regions.get_mut(&id)) {
            for l in Self::lines(self.line, r.len, offset, len) {
                r.lines[l as usize].device_reading = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn here() -> &'static Location<'static> {
        Location::caller()
    }

    fn kinds(a: &Auditor) -> Vec<Violation> {
        a.reports().iter().map(|r| r.violation).collect()
    }

    #[test]
    fn naive_polling_loop_is_flagged_corrected_is_not() {
        // PREREAD; loop { POSTREAD; read }  vs  loop { POSTREAD; read; PREREAD }
        for corrected in [false, true] {
            let mut a = Auditor::new(16);
            a.add_region(1, "ring", 64, false);
            a.on_sync(1, SyncOps::PREREAD, 0, 4);
            for _ in 0..3 {
                a.on_sync(1, SyncOps::POSTREAD, 0, 4);
                a.on_read(1, 2, 2, here());
                if corrected {
                    a.on_sync(1, SyncOps::PREREAD, 0, 4);
                }
            }
            if corrected {
                assert!(a.reports().is_empty(), "{:?}", a.reports());
            } else {
                assert_eq!(kinds(&a), [Violation::RereadWithoutPreRead]);
                assert_eq!(a.reports()[0].count, 2, "two re-reads, one report");
                assert_eq!(a.reports()[0].region, "ring");
                assert_eq!(a.reports()[0].offset, 2);
            }
        }
    }

    #[test]
    fn submit_then_complete_sequence() {
        // flags read at submit, idx read at completion: one line, two read phases.
        let mut a = Auditor::new(16);
        a.add_region(1, "used", 64, true);
        a.on_sync(1, SyncOps::PREREAD, 0, 64);
        a.on_sync(1, SyncOps::POSTREAD, 0, 4);
        a.on_read(1, 0, 2, here()); // used->flags
        a.on_read(1, 2, 2, here()); // same phase: fine
        a.on_sync(1, SyncOps::POSTREAD, 0, 4);
        a.on_read(1, 2, 2, here()); // used->idx in a new phase, no PREREAD
        assert_eq!(kinds(&a), [Violation::RereadWithoutPreRead]);
    }

    #[test]
    fn reads_without_postread() {
        let mut a = Auditor::new(16);
        a.add_region(1, "status", 32, true);
        a.on_read(1, 0, 1, here()); // declared device-written, never synced
        a.on_sync(1, SyncOps::PREREAD, 16, 1);
        a.on_read(1, 16, 1, here()); // handed
        assert_eq!(
            kinds(&a),
            [
                Violation::ReadWithoutPostRead,
                Violation::ReadWithoutPostRead
            ]
        );
        // lines never handed to the device and not declared are the CPU's own
        let mut b = Auditor::new(16);
        b.add_region(2, "desc", 32, false);
        b.on_read(2, 0, 16, here());
        assert!(b.reports().is_empty());
    }

    #[test]
    fn device_start_needs_prewrite_after_cpu_writes() {
        let mut a = Auditor::new(16);
        a.add_region(1, "avail", 64, false);
        a.on_write(1, 4, 2, here());
        a.on_device_start(1, 0, 64, here());
        a.on_sync(1, SyncOps::PREWRITE, 0, 64);
        a.on_device_start(1, 0, 64, here());
        assert_eq!(kinds(&a), [Violation::DeviceStartWithoutPreWrite]);
    }

    #[test]
    fn writing_a_handed_line_is_flagged() {
        let mut a = Auditor::new(16);
        a.add_region(1, "req", 32, false);
        a.on_sync(1, SyncOps::PREREAD, 16, 1); // status byte at 16
        a.on_write(1, 17, 1, here()); // a CPU field sharing its line
        assert_eq!(kinds(&a), [Violation::WriteWhileDeviceOwns]);
    }

    #[test]
    fn bad_sync_shapes() {
        let mut a = Auditor::new(16);
        a.add_region(1, "r", 32, false);
        assert_eq!(
            a.check_sync(1, SyncOps::PREREAD | SyncOps::POSTREAD, 0, 4, here()),
            Err(Violation::PreMixedWithPost)
        );
        assert_eq!(
            a.check_sync(1, SyncOps::PREREAD, 30, 4, here()),
            Err(Violation::SyncOutsideRegion)
        );
        assert_eq!(
            a.check_sync(1, SyncOps::PREREAD, u32::MAX, 4, here()),
            Err(Violation::SyncOutsideRegion)
        );
        assert_eq!(
            a.check_sync(1, SyncOps::PREREAD | SyncOps::PREWRITE, 0, 32, here()),
            Ok(())
        );
        assert_eq!(
            kinds(&a),
            [
                Violation::PreMixedWithPost,
                Violation::SyncOutsideRegion,
                Violation::SyncOutsideRegion
            ]
        );
        let text = std::format!("{}", a.reports()[1]);
        assert!(
            text.contains("in r at offset 0x1e") && text.contains("audit.rs"),
            "{text}"
        );
    }

    #[test]
    fn untracked_region_is_not_length_zero_and_can_be_learned() {
        let mut a = Auditor::new(16);
        // never added: no length is known, so a sync inside it is not "outside a region of 0"
        assert_eq!(a.check_sync(7, SyncOps::PREREAD, 0, 64, here()), Ok(()));
        assert!(a.reports().is_empty(), "{:?}", a.reports());
        a.learn_region(7, "rx", 64);
        assert_eq!(
            a.check_sync(7, SyncOps::PREREAD, 32, 64, here()),
            Err(Violation::SyncOutsideRegion)
        );
        // learning again keeps the state: the line handed by this PREREAD stays handed
        a.on_sync(7, SyncOps::PREREAD, 0, 16);
        a.learn_region(7, "rx", 64);
        a.on_read(7, 0, 1, here());
        assert_eq!(
            kinds(&a),
            [Violation::SyncOutsideRegion, Violation::ReadWithoutPostRead]
        );
    }

    #[test]
    fn report_list_is_bounded() {
        let mut a = Auditor::new(16);
        a.add_region(1, "big", 4096, true);
        for l in 0..200 {
            a.on_read(1, l * 16, 1, here());
        }
        assert_eq!(a.reports().len(), MAX_REPORTS);
        assert_eq!(a.total(), 200);
    }

    /// The seed's polling mistake with no sync at all: after one PREREAD/POSTREAD cycle, a
    /// loop that re-reads the ready word syncs nothing. Each re-read of the same bytes is a
    /// finding; reading another field of the same line in the same phase is not.
    #[test]
    fn a_polling_loop_with_no_syncs_is_flagged() {
        let mut a = Auditor::new(16);
        a.add_region(1, "ring", 64, true);
        a.on_sync(1, SyncOps::PREREAD, 0, 16);
        a.on_sync(1, SyncOps::POSTREAD, 0, 16);
        a.on_read(1, 2, 2, here()); // idx
        a.on_read(1, 4, 4, here()); // the element's id, same line, other bytes
        assert!(a.reports().is_empty(), "{:?}", kinds(&a));
        for _ in 0..1000 {
            a.on_read(1, 2, 2, here());
        }
        assert_eq!(kinds(&a), [Violation::RereadWithoutPreRead]);
        assert_eq!(a.total(), 1000);
        // A new cycle makes the same bytes new again.
        a.clear_reports();
        a.on_sync(1, SyncOps::PREREAD, 0, 16);
        a.on_sync(1, SyncOps::POSTREAD, 0, 16);
        a.on_read(1, 2, 2, here());
        assert!(a.reports().is_empty());
    }

    #[test]
    fn the_device_may_write_only_lines_handed_to_it() {
        let mut a = Auditor::new(16);
        a.add_region(1, "status", 32, true);
        // Line 0 handed with PREREAD, line 1 not.
        a.on_sync(1, SyncOps::PREREAD, 0, 16);
        a.on_device_start_writing(1, 0, 32, here());
        assert_eq!(kinds(&a), [Violation::DeviceWriteWithoutPreRead]);
        assert_eq!(a.reports()[0].offset, 16);
        // After its POSTREAD a line needs a new PREREAD.
        a.clear_reports();
        a.on_sync(1, SyncOps::POSTREAD, 0, 16);
        a.on_device_start_writing(1, 0, 16, here());
        assert_eq!(kinds(&a), [Violation::DeviceWriteWithoutPreRead]);
    }

    #[test]
    fn a_transfer_is_the_devices_to_read_until_its_postwrite() {
        let mut a = Auditor::new(16);
        a.add_region(1, "header", 32, false);
        a.on_write(1, 0, 16, here());
        a.on_sync(1, SyncOps::PREWRITE, 0, 16);
        a.on_device_start_transfer(1, 0, 16, here());
        a.on_write(1, 0, 4, here());
        assert_eq!(kinds(&a), [Violation::WriteWhileDeviceReads]);
        a.clear_reports();
        a.on_sync(1, SyncOps::POSTWRITE, 0, 16);
        a.on_write(1, 0, 4, here());
        // Ring memory (on_device_start) stays the CPU's to extend.
        a.on_sync(1, SyncOps::PREWRITE, 16, 16);
        a.on_device_start(1, 16, 16, here());
        a.on_write(1, 16, 2, here());
        assert!(a.reports().is_empty(), "{:?}", kinds(&a));
    }

    #[test]
    fn an_owned_buffer_needs_its_postread_but_may_be_read_twice() {
        let mut a = Auditor::new(16);
        a.add_region(1, "buffer", 32, false);
        // Never handed to the device: the CPU's own data.
        a.on_read_owned(1, 0, 32, here());
        assert!(a.reports().is_empty());
        a.on_sync(1, SyncOps::PREREAD, 0, 32);
        a.on_read_owned(1, 0, 32, here());
        assert_eq!(
            kinds(&a),
            [
                Violation::ReadWithoutPostRead,
                Violation::ReadWithoutPostRead
            ]
        );
        a.clear_reports();
        a.on_sync(1, SyncOps::POSTREAD, 0, 32);
        a.on_read_owned(1, 0, 32, here());
        a.on_read_owned(1, 0, 32, here());
        assert!(a.reports().is_empty());
    }
}
