//! `cargo xtask bench`: runs the in-guest benchmark, parses its log lines, and reports:
//! a table (MiB/s, IOPS, ratio to the floor), bench.json, bench.csv, bench.svg, and a
//! comparison with a previous bench.json.

use crate::{Context as _, Result};
use comfy_table::{CellAlignment, Table};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub use console_proto::bench::Record;
use console_proto::bench::{self as line, on_off, Impl, Line};

/// The identity of a cell, for grouping runs and comparing with a previous bench.json.
pub trait CellKey {
    /// Everything but the measurements.
    fn key(&self) -> String;
    /// The floor cell this driver cell is compared with.
    fn floor_key(&self) -> String;
}

impl CellKey for Record {
    fn key(&self) -> String {
        format!(
            "{} {} {} bs={} qd={} {} eidx={}",
            self.imp,
            self.pattern,
            self.op,
            self.bs,
            self.qd,
            self.mode,
            on_off(self.event_idx)
        )
    }
    fn floor_key(&self) -> String {
        format!(
            "floor {} {} bs={} qd={} polled eidx=off",
            self.pattern, self.op, self.bs, self.qd
        )
    }
}

/// Every record of a console log (`console_proto::bench`); a malformed benchmark line is an
/// error naming its line.
pub fn parse_log(text: &str) -> Result<Vec<Record>> {
    let mut out = Vec::new();
    for (n, l) in text.lines().enumerate() {
        match line::parse_line(l) {
            Ok(Some(Line::Record(r))) => out.push(r),
            Ok(_) => {}
            Err(e) => anyhow::bail!("benchmark log line {}: {e}\n  {l}", n + 1),
        }
    }
    Ok(out)
}

/// Whether the log has a `bench error: ` line (a cell that could not be measured).
pub fn has_error_line(text: &str) -> bool {
    text.lines()
        .any(|l| matches!(line::parse_line(l), Ok(Some(Line::Error(_)))))
}

/// Whether the run finished (`bench done`) and its every `bench error:` line is a device I/O
/// error (BlkError::Io's message, or the floor's status IOERR), at least one: what
/// `--inject` makes.
pub fn only_io_errors(text: &str) -> bool {
    let mut errors = 0;
    let mut done = false;
    for l in text.lines() {
        match line::parse_line(l) {
            Ok(Some(Line::Error(why))) => {
                if !why.contains("I/O error reported by the device")
                    && !why.contains("floor: request failed, status 0x01")
                {
                    return false;
                }
                errors += 1;
            }
            Ok(Some(Line::Done { .. })) => done = true,
            _ => {}
        }
    }
    done && errors > 0
}

/// A cell over several runs.
#[derive(Debug, Clone)]
pub struct Summary {
    pub first: Record,
    pub iops: Vec<f64>,
    pub mib_s: Vec<f64>,
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    if s.is_empty() {
        0.0
    } else if s.len() % 2 == 1 {
        s[s.len() / 2]
    } else {
        (s[s.len() / 2 - 1] + s[s.len() / 2]) / 2.0
    }
}

fn spread(v: &[f64]) -> f64 {
    let m = median(v);
    let (lo, hi) = v
        .iter()
        .fold((f64::MAX, 0.0f64), |(lo, hi), &x| (lo.min(x), hi.max(x)));
    if m > 0.0 {
        (hi - lo) / m * 100.0
    } else {
        0.0
    }
}

impl Summary {
    pub fn iops(&self) -> f64 {
        median(&self.iops)
    }
    pub fn mib_s(&self) -> f64 {
        median(&self.mib_s)
    }
    /// (max - min) / median of IOPS, in percent.
    /// Guest time per request in the own path (submit + completion; instructions under
    /// `--icount`), from the first run.
    pub fn own_per_op(&self) -> u64 {
        self.first.submit_ns_per_op + self.first.complete_ns_per_op
    }
    pub fn spread_pct(&self) -> f64 {
        spread(&self.iops)
    }
}

/// Groups the records of several runs by cell, keeping the guest's order.
pub fn summarize(runs: &[Vec<Record>]) -> Vec<Summary> {
    let mut order = Vec::new();
    let mut by: BTreeMap<String, Summary> = BTreeMap::new();
    for run in runs {
        for r in run {
            let e = by.entry(r.key()).or_insert_with(|| {
                order.push(r.key());
                Summary {
                    first: r.clone(),
                    iops: Vec::new(),
                    mib_s: Vec::new(),
                }
            });
            e.iops.push(r.iops as f64);
            e.mib_s.push(r.mib_s.to_f64());
        }
    }
    order.into_iter().map(|k| by.remove(&k).unwrap()).collect()
}

/// Where and how the runs were taken: the header of bench.json and the plot's title.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Meta {
    /// When the benchmark finished (UTC, RFC 3339).
    pub date: String,
    /// `qemu-system-m68k --version`'s number, and the binary.
    pub qemu: String,
    pub qemu_path: String,
    pub cpu: String,
    pub aio: String,
    /// `rtc (host time)` or `icount ...`.
    pub clock: String,
    /// `quick` or `full`.
    pub matrix: String,
    /// Runs the medians are taken over.
    pub runs: u32,
    /// The disk measured: `scratch` (a fresh 16 MiB image per run) or the `--disk` image's
    /// path, `,ro` when attached read-only. Absent in files written before it existed.
    #[serde(default)]
    pub disk: String,
}

/// The version of bench.json's layout; a reader refuses any other.
pub const SCHEMA: u32 = 1;

/// bench.json: `{"schema": 1, "meta": {...}, "cells": [...]}`.
#[derive(Debug, Serialize, Deserialize)]
pub struct BenchFile {
    pub schema: u32,
    pub meta: Meta,
    pub cells: Vec<Row>,
}

/// One cell over the runs: a bench.json entry and a bench.csv row (flat, so both carry it).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Row {
    pub key: String,
    #[serde(rename = "impl")]
    pub imp: String,
    pub pattern: String,
    pub op: String,
    pub bs: u64,
    pub qd: u64,
    pub mode: String,
    pub event_idx: String,
    /// Medians, minima and maxima over the runs.
    pub iops: f64,
    pub iops_min: f64,
    pub iops_max: f64,
    pub mib_s: f64,
    pub mib_s_min: f64,
    pub mib_s_max: f64,
    /// (max - min) / median of IOPS, in percent.
    pub spread_pct: f64,
    pub runs: u32,
    /// The first run's values (the guest measures these per run).
    pub lat_p50_us: f64,
    pub lat_p99_us: f64,
    pub kicks_per_op: f64,
    pub irqs_per_op: f64,
    pub polls_per_op: f64,
    pub submit_ns_per_op: u64,
    pub complete_ns_per_op: u64,
}

fn round(v: f64, places: i32) -> f64 {
    let m = 10f64.powi(places);
    (v * m).round() / m
}

fn min_max(v: &[f64]) -> (f64, f64) {
    v.iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        })
}

impl Summary {
    pub fn row(&self) -> Row {
        let r = &self.first;
        let (iops_min, iops_max) = min_max(&self.iops);
        let (mib_min, mib_max) = min_max(&self.mib_s);
        Row {
            key: r.key(),
            imp: r.imp.to_string(),
            pattern: r.pattern.to_string(),
            op: r.op.to_string(),
            bs: r.bs,
            qd: r.qd,
            mode: r.mode.to_string(),
            event_idx: on_off(r.event_idx).to_string(),
            iops: round(self.iops(), 1),
            iops_min,
            iops_max,
            mib_s: round(self.mib_s(), 2),
            mib_s_min: mib_min,
            mib_s_max: mib_max,
            spread_pct: round(self.spread_pct(), 2),
            runs: u32::try_from(self.iops.len()).unwrap_or(u32::MAX),
            lat_p50_us: r.lat_p50_us.to_f64(),
            lat_p99_us: r.lat_p99_us.to_f64(),
            kicks_per_op: r.kicks_per_op.to_f64(),
            irqs_per_op: r.irqs_per_op.to_f64(),
            polls_per_op: r.polls_per_op.to_f64(),
            submit_ns_per_op: r.submit_ns_per_op,
            complete_ns_per_op: r.complete_ns_per_op,
        }
    }
}

/// The result table (comfy-table; markdown-shaped, so table.txt pastes into a README).
pub fn table(cells: &[Summary], clock: &str) -> String {
    let floors: BTreeMap<String, &Summary> = cells
        .iter()
        .filter(|c| c.first.imp == Impl::Floor)
        .map(|c| (c.first.key(), c))
        .collect();
    let mut t = Table::new();
    t.load_style(comfy_table::presets::ASCII_MARKDOWN)
        .set_header([
            "impl",
            "pat",
            "op",
            "bs",
            "qd",
            "mode",
            "eidx",
            "IOPS",
            "MiB/s",
            "spread",
            "vs floor",
            "kicks",
            "irqs",
            "p99 us",
            "own ns/op",
            "own vs floor",
        ]);
    for c in cells {
        let r = &c.first;
        let floor = floors.get(&r.floor_key()).filter(|_| r.imp == Impl::Driver);
        let ratio = match floor {
            Some(f) if f.iops() > 0.0 => format!("{:.2}x", c.iops() / f.iops()),
            _ => "-".into(),
        };
        // The driver's own path against the floor's: instructions under --icount.
        let own_ratio = match floor {
            Some(f) if f.own_per_op() > 0 => {
                format!("{:.2}x", c.own_per_op() as f64 / f.own_per_op() as f64)
            }
            _ => "-".into(),
        };
        t.add_row([
            r.imp.to_string(),
            r.pattern.to_string(),
            r.op.to_string(),
            r.bs.to_string(),
            r.qd.to_string(),
            r.mode.to_string(),
            on_off(r.event_idx).to_string(),
            format!("{:.0}", c.iops()),
            format!("{:.1}", c.mib_s()),
            format!("{:.1}%", c.spread_pct()),
            ratio,
            format!("{:.3}", r.kicks_per_op.to_f64()),
            format!("{:.3}", r.irqs_per_op.to_f64()),
            format!("{:.1}", r.lat_p99_us.to_f64()),
            c.own_per_op().to_string(),
            own_ratio,
        ]);
    }
    for i in [3, 4, 7, 8, 9, 10, 11, 12, 13, 14, 15] {
        if let Some(col) = t.column_mut(i) {
            col.set_cell_alignment(CellAlignment::Right);
        }
    }
    format!(
        "clock: {clock}; medians of {} run(s); spread = (max-min)/median of IOPS\n{t}\n",
        cells.first().map_or(0, |c| c.iops.len())
    )
}

pub fn json(cells: &[Summary], meta: &Meta) -> Result<String> {
    let file = BenchFile {
        schema: SCHEMA,
        meta: meta.clone(),
        cells: cells.iter().map(Summary::row).collect(),
    };
    let mut text = serde_json::to_string_pretty(&file)?;
    text.push('\n');
    Ok(text)
}

pub fn csv(cells: &[Summary]) -> Result<String> {
    let mut w = ::csv::Writer::from_writer(Vec::new());
    for c in cells {
        w.serialize(c.row())?;
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}

/// A bench.json from before the schema field (a bare array of cells): still readable for
/// `--compare`.
#[derive(Deserialize)]
struct LegacyCell {
    key: String,
    iops: f64,
    #[serde(default)]
    spread_pct: f64,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum AnyBench {
    Schema(Box<BenchFile>),
    Legacy(Vec<LegacyCell>),
}

/// A cell of an earlier bench.json, as `--compare` needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Previous {
    pub key: String,
    pub iops: f64,
    pub spread_pct: f64,
    /// Own-path guest time per request (None in files from before it was kept).
    pub own_per_op: Option<u64>,
    /// Taken with `--icount`: the own path is then an exact instruction count.
    pub icount: bool,
}

/// Every cell of a bench.json this xtask wrote.
pub fn read_json(text: &str) -> Result<Vec<Previous>> {
    let schema = serde_json::from_str::<serde_json::Value>(text)
        .context("bench.json is not JSON")?
        .get("schema")
        .cloned();
    if let Some(v) = schema {
        if v != serde_json::json!(SCHEMA) {
            anyhow::bail!("bench.json has schema {v}; this xtask reads schema {SCHEMA}");
        }
    }
    let out: Vec<Previous> = match serde_json::from_str::<AnyBench>(text)
        .context("bench.json: not a file `cargo xtask bench` wrote (no schema 1 layout)")?
    {
        AnyBench::Schema(f) => {
            let icount = f.meta.clock.starts_with("icount");
            f.cells
                .into_iter()
                .map(|c| Previous {
                    key: c.key,
                    iops: c.iops,
                    spread_pct: c.spread_pct,
                    own_per_op: Some(c.submit_ns_per_op + c.complete_ns_per_op),
                    icount,
                })
                .collect()
        }
        AnyBench::Legacy(v) => v
            .into_iter()
            .map(|c| Previous {
                key: c.key,
                iops: c.iops,
                spread_pct: c.spread_pct,
                own_per_op: None,
                icount: false,
            })
            .collect(),
    };
    if out.is_empty() {
        anyhow::bail!(
            "bench.json: no cells (is this a bench.json that `cargo xtask bench` wrote?)"
        );
    }
    Ok(out)
}

/// Cells that got worse beyond noise. Wall clock on both sides: IOPS fell, or the own path's
/// ns per request grew, by more than the larger of 10% and the two runs' IOPS spreads. With
/// `--icount` on both sides: the own path's instructions per request grew by more than 5%
/// (IOPS are not compared there: under -icount they follow when the host completes each
/// request; the own path of a polled cell is exact, an interrupt cell's moves by a few
/// percent with where the completion interrupt lands). Err when the two runs used different
/// clocks: instructions and nanoseconds do not compare.
pub fn regressions(
    previous: &[Previous],
    now: &[Summary],
    now_icount: bool,
) -> Result<Vec<String>, String> {
    if let Some(p) = previous.iter().find(|p| p.icount != now_icount) {
        let clock = |icount| if icount { "--icount" } else { "the wall clock" };
        return Err(format!(
            "the earlier run used {} and this one {}: compare runs taken with the same clock (cell {})",
            clock(p.icount),
            clock(now_icount),
            p.key
        ));
    }
    let mut out = Vec::new();
    for c in now {
        let Some(p) = previous.iter().find(|p| p.key == c.first.key()) else {
            continue;
        };
        let noise = 10f64.max(p.spread_pct).max(c.spread_pct());
        let change = (c.iops() - p.iops) / p.iops.max(1.0) * 100.0;
        if !now_icount && change < -noise {
            out.push(format!(
                "{}: {:.0} -> {:.0} IOPS ({change:.1}%, noise {noise:.1}%)",
                c.first.key(),
                p.iops,
                c.iops()
            ));
        }
        if let Some(old) = p.own_per_op.filter(|&o| o > 0) {
            let noise = if now_icount { 5.0 } else { noise };
            let new = c.own_per_op();
            let growth = (new as f64 - old as f64) / old as f64 * 100.0;
            if growth > noise {
                let unit = if now_icount { "instructions" } else { "ns" };
                out.push(format!(
                    "{}: own path {old} -> {new} {unit} per request (+{growth:.1}%, noise {noise:.1}%)",
                    c.first.key()
                ));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn injected_io_errors_alone_are_accepted() {
        let io = "bench error: Cell { .. }: I/O error reported by the device (request at sector 0)";
        let ok = format!("bench progress 1/2\n{io}\nbench done 2 cells\n");
        assert!(super::only_io_errors(&ok));
        // The floor's message as run_floor prints it for status VIRTIO_BLK_S_IOERR (1).
        let floor = format!(
            "bench error: floor,rand,read,65536,1,polled,off: floor: request failed, status 0x01\n{ok}"
        );
        assert!(super::only_io_errors(&floor));
        let unsupp = floor.replace("status 0x01", "status 0x02");
        assert!(
            !super::only_io_errors(&unsupp),
            "UNSUPP is no injected I/O error"
        );
        assert!(
            !super::only_io_errors("bench done 2 cells\n"),
            "no error at all"
        );
        assert!(!super::only_io_errors(&format!("{io}\n")), "not finished");
        let other = format!(
            "{io}\nbench error: Cell: no completion after 5000000 us\nbench done 2 cells\n"
        );
        assert!(!super::only_io_errors(&other));
    }

    use super::*;

    const LOG: &str = "\
bench progress 1/2
bench disk=0 impl=floor pattern=rand op=read bs=4096 qd=16 mode=polled event_idx=off ops=2057 bytes=8425472 ns=18897000 iops=108853 mib_s=425.2 lat_p50_us=78.0 lat_p99_us=253.0 kicks_per_op=0.099 irqs_per_op=0.000 polls_per_op=2.364 submit_ns_per_op=900 complete_ns_per_op=800 clock=rtc
test boot::something ... ok
bench disk=0 impl=driver pattern=rand op=read bs=4096 qd=16 mode=intr event_idx=on ops=2048 bytes=8388608 ns=32899000 iops=62251 mib_s=243.1 lat_p50_us=125.0 lat_p99_us=202.0 kicks_per_op=0.062 irqs_per_op=0.062 polls_per_op=0.000 submit_ns_per_op=2000 complete_ns_per_op=1500 clock=rtc
bench done 2 cells
";

    #[test]
    fn parses_a_captured_log() {
        let r = parse_log(LOG).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[1].imp, Impl::Driver);
        assert_eq!((r[1].bs, r[1].qd, r[1].iops), (4096, 16, 62251));
        assert_eq!(r[1].floor_key(), r[0].key());
        let s = summarize(&[r.clone(), r]);
        assert_eq!(s.len(), 2);
        assert_eq!(s[1].iops(), 62251.0);
        assert!(table(&s, "rtc").contains("0.57x"), "{}", table(&s, "rtc"));
    }

    /// The reasons themselves are console_proto's (tested there); here, that the log
    /// parser passes them on with the line number.
    #[test]
    fn a_malformed_line_is_named() {
        let log = "banner\nbench disk=0 impl=turbo pattern=seq\n";
        let e = parse_log(log).unwrap_err().to_string();
        assert!(
            e.starts_with("benchmark log line 2: impl='turbo' is not one of driver, floor"),
            "{e}"
        );
        let num = LOG
            .lines()
            .nth(1)
            .unwrap()
            .replace("iops=108853", "iops=fast");
        assert!(parse_log(&num)
            .unwrap_err()
            .to_string()
            .contains("iops='fast' is not an integer"));
    }

    #[test]
    fn error_lines_are_seen() {
        assert!(!has_error_line(LOG));
        assert!(has_error_line(&format!(
            "{LOG}bench error: Cell {{ }}: does not fit\n"
        )));
        assert!(!has_error_line("log: bench error: is only a word here\n"));
    }

    fn meta() -> Meta {
        Meta {
            date: "2026-11-24T10:00:00Z".into(),
            qemu: "7.2.22".into(),
            qemu_path: "/usr/bin/qemu-system-m68k".into(),
            cpu: "m68040".into(),
            aio: "threads".into(),
            clock: "rtc (host time)".into(),
            matrix: "quick".into(),
            runs: 1,
            disk: "scratch".into(),
        }
    }

    #[test]
    fn a_meta_from_before_the_disk_field_still_reads() {
        let old = r#"{"date":"2026-11-24T10:00:00Z","qemu":"7.2.22","qemu_path":"q","cpu":"m68040","aio":"threads","clock":"rtc (host time)","matrix":"quick","runs":3}"#;
        let m: Meta = serde_json::from_str(old).unwrap();
        assert_eq!((m.runs, m.disk.as_str()), (3, ""));
        let new = serde_json::to_string(&meta()).unwrap();
        assert!(new.contains(r#""disk":"scratch""#), "{new}");
    }

    #[test]
    fn json_round_trip_and_regressions() {
        let s = summarize(&[parse_log(LOG).unwrap()]);
        let j = json(&s, &meta()).unwrap();
        assert!(read_json("hello").is_err(), "not a bench.json");
        assert!(read_json("{}").is_err(), "an entry without a key");
        assert!(read_json("[]").is_err(), "no cells");
        let other = j.replace("\"schema\": 1", "\"schema\": 2");
        let e = read_json(&other).unwrap_err().to_string();
        assert!(e.contains("schema 2"), "{e}");
        let back = read_json(&j).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[1].iops, 62251.0);
        // The log's driver line: submit 2000 + complete 1500.
        assert_eq!(back[1].own_per_op, Some(3500));
        let mut worse = s.clone();
        worse[1].iops = vec![40000.0];
        assert_eq!(regressions(&back, &worse, false).unwrap().len(), 1);
        assert!(regressions(&back, &s, false).unwrap().is_empty());
        // A bench.json from before the schema field still serves --compare.
        let legacy = r#"[{"key": "floor rand read bs=4096 qd=16 polled eidx=off", "iops": 100.0, "spread_pct": 1.0}]"#;
        let legacy = read_json(legacy).unwrap();
        assert_eq!((legacy[0].iops, legacy[0].own_per_op), (100.0, None));
    }

    #[test]
    fn own_path_growth_is_a_regression() {
        let s = summarize(&[parse_log(LOG).unwrap()]);
        let mut m = meta();
        m.clock = "icount (-icount shift=0 -rtc clock=vm: 1 guest ns = 1 instruction)".into();
        let exact = read_json(&json(&s, &m).unwrap()).unwrap();
        assert!(exact.iter().all(|p| p.icount));
        // 3500 -> 3710 instructions (+6%): over the 5% --icount allows.
        let log = LOG.replace("complete_ns_per_op=1500", "complete_ns_per_op=1710");
        let grown = summarize(&[parse_log(&log).unwrap()]);
        let r = regressions(&exact, &grown, true).unwrap();
        assert_eq!(r.len(), 1, "{r:?}");
        assert!(
            r[0].contains("own path 3500 -> 3710 instructions per request (+6.0%"),
            "{r:?}"
        );
        // +4% is within it; and under --icount IOPS are not compared (they halve here).
        let log = LOG
            .replace("complete_ns_per_op=1500", "complete_ns_per_op=1640")
            .replace("iops=62251", "iops=31000");
        let within = summarize(&[parse_log(&log).unwrap()]);
        assert!(regressions(&exact, &within, true).unwrap().is_empty());
        // Two wall-clock runs: +6% is inside the 10% noise.
        let wall = read_json(&json(&s, &meta()).unwrap()).unwrap();
        assert!(regressions(&wall, &grown, false).unwrap().is_empty());
        // Different clocks do not compare, either way round.
        let e = regressions(&wall, &grown, true).unwrap_err();
        assert!(
            e.contains("used the wall clock and this one --icount"),
            "{e}"
        );
        assert!(regressions(&exact, &grown, false).is_err());
        // The table shows the driver's own path against the floor's: 3500 / 1700.
        assert!(table(&s, "rtc").contains("2.06x"), "{}", table(&s, "rtc"));
    }

    /// Runs a Python script with `input` on its stdin; its stdout.
    fn python(script: &str, input: &str) -> String {
        let mut child = std::process::Command::new("python3")
            .args(["-c", script])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("python3 (on every machine of this project) runs");
        use std::io::Write as _;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "python3 refused the file: {}\n{input}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// bench.json read by a parser that is not ours (Python's json module): the schema, the
    /// header, every cell, its key fields and rates as the captured log says.
    #[test]
    fn bench_json_parses_with_pythons_json_module() {
        let s = summarize(&[parse_log(LOG).unwrap(), parse_log(LOG).unwrap()]);
        let mut m = meta();
        m.runs = 2;
        let j = json(&s, &m).unwrap();
        let script = "import json,sys\n\
                      d = json.load(sys.stdin)\n\
                      print(d['schema'], d['meta']['qemu'], d['meta']['cpu'], d['meta']['aio'], d['meta']['runs'])\n\
                      for c in d['cells']:\n    \
                      print(c['impl'], c['op'], c['bs'], c['qd'], c['mode'], c['iops'], c['iops_min'], c['mib_s'], c['runs'])";
        assert_eq!(
            python(script, &j),
            "1 7.2.22 m68040 threads 2\n\
             floor read 4096 16 polled 108853.0 108853.0 425.2 2\n\
             driver read 4096 16 intr 62251.0 62251.0 243.1 2\n"
        );
    }

    /// bench.csv read by Python's csv module: a header row and one row per cell.
    #[test]
    fn bench_csv_parses_with_pythons_csv_module() {
        let s = summarize(&[parse_log(LOG).unwrap()]);
        let c = csv(&s).unwrap();
        let script = "import csv,sys\n\
                      rows = list(csv.DictReader(sys.stdin))\n\
                      print(len(rows))\n\
                      for r in rows:\n    \
                      print(r['key'], r['impl'], r['bs'], r['qd'], r['iops'], r['mib_s'], r['spread_pct'], r['kicks_per_op'])";
        assert_eq!(
            python(script, &c),
            "2\n\
             floor rand read bs=4096 qd=16 polled eidx=off floor 4096 16 108853.0 425.2 0.0 0.099\n\
             driver rand read bs=4096 qd=16 intr eidx=on driver 4096 16 62251.0 243.1 0.0 0.062\n"
        );
    }

    #[test]
    fn the_table_has_every_cell_and_the_ratio() {
        let s = summarize(&[parse_log(LOG).unwrap()]);
        let t = table(&s, "rtc");
        assert_eq!(
            t.lines().filter(|l| l.contains("| rand ")).count(),
            2,
            "{t}"
        );
        assert!(t.contains("0.57x"), "{t}");
    }
}
