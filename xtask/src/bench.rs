//! `cargo xtask bench`: runs the in-guest benchmark, parses its log lines, and reports:
//! a table (MiB/s, IOPS, ratio to the floor), bench.json, bench.csv, bench.svg, and a
//! comparison with a previous bench.json.

use crate::Result;
use std::collections::BTreeMap;
use std::fmt::Write as _;

pub use console_proto::bench::Record;
use console_proto::bench::{self as line, on_off, Impl, Line, Op};

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
            Err(e) => return Err(format!("benchmark log line {}: {e}\n  {l}", n + 1)),
        }
    }
    Ok(out)
}

/// Whether the log has a `bench error: ` line (a cell that could not be measured).
pub fn has_error_line(text: &str) -> bool {
    text.lines()
        .any(|l| matches!(line::parse_line(l), Ok(Some(Line::Error(_)))))
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

pub fn table(cells: &[Summary], clock: &str) -> String {
    let floors: BTreeMap<String, &Summary> = cells
        .iter()
        .filter(|c| c.first.imp == Impl::Floor)
        .map(|c| (c.first.key(), c))
        .collect();
    let mut t = String::new();
    let _ = writeln!(
        t,
        "clock: {clock}; medians of {} run(s); spread = (max-min)/median of IOPS",
        cells.first().map_or(0, |c| c.iops.len())
    );
    let _ = writeln!(
        t,
        "{:<6} {:<5} {:<6} {:>8} {:>3} {:<7} {:<4} {:>10} {:>10} {:>7} {:>9} {:>7} {:>7} {:>8} {:>10}",
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
        "own ns/op"
    );
    for c in cells {
        let r = &c.first;
        let ratio = match (r.imp, floors.get(&r.floor_key())) {
            (Impl::Driver, Some(f)) if f.iops() > 0.0 => format!("{:.2}x", c.iops() / f.iops()),
            _ => "-".into(),
        };
        let _ = writeln!(
            t,
            "{:<6} {:<5} {:<6} {:>8} {:>3} {:<7} {:<4} {:>10.0} {:>10.1} {:>6.1}% {:>9} {:>7.3} {:>7.3} {:>8.1} {:>10}",
            r.imp, r.pattern, r.op, r.bs, r.qd, r.mode, on_off(r.event_idx), c.iops(), c.mib_s(), c.spread_pct(), ratio,
            r.kicks_per_op.to_f64(), r.irqs_per_op.to_f64(), r.lat_p99_us.to_f64(), r.submit_ns_per_op + r.complete_ns_per_op
        );
    }
    t
}

pub fn json(cells: &[Summary], clock: &str, aio: &str) -> String {
    let mut j = String::from("[\n");
    for (i, c) in cells.iter().enumerate() {
        let r = &c.first;
        let _ = write!(
            j,
            "  {{\"key\": \"{}\", \"impl\": \"{}\", \"pattern\": \"{}\", \"op\": \"{}\", \"bs\": {}, \"qd\": {}, \"mode\": \"{}\", \"event_idx\": \"{}\", \"iops\": {:.1}, \"mib_s\": {:.2}, \"spread_pct\": {:.2}, \"runs\": {}, \"lat_p50_us\": {}, \"lat_p99_us\": {}, \"kicks_per_op\": {}, \"irqs_per_op\": {}, \"polls_per_op\": {}, \"clock\": \"{}\", \"aio\": \"{}\"}}",
            r.key(), r.imp, r.pattern, r.op, r.bs, r.qd, r.mode, on_off(r.event_idx), c.iops(), c.mib_s(), c.spread_pct(),
            c.iops.len(), r.lat_p50_us, r.lat_p99_us, r.kicks_per_op, r.irqs_per_op, r.polls_per_op, clock, aio
        );
        j.push_str(if i + 1 < cells.len() { ",\n" } else { "\n" });
    }
    j.push_str("]\n");
    j
}

pub fn csv(cells: &[Summary]) -> String {
    let mut s = String::from("impl,pattern,op,bs,qd,mode,event_idx,iops,mib_s,spread_pct,lat_p50_us,lat_p99_us,kicks_per_op,irqs_per_op,polls_per_op\n");
    for c in cells {
        let r = &c.first;
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{:.1},{:.2},{:.2},{},{},{},{},{}",
            r.imp,
            r.pattern,
            r.op,
            r.bs,
            r.qd,
            r.mode,
            on_off(r.event_idx),
            c.iops(),
            c.mib_s(),
            c.spread_pct(),
            r.lat_p50_us,
            r.lat_p99_us,
            r.kicks_per_op,
            r.irqs_per_op,
            r.polls_per_op
        );
    }
    s
}

/// Throughput against block size, one line per implementation/mode/queue depth, for the
/// first (pattern, op) of the data that has several block sizes.
pub fn svg(cells: &[Summary]) -> String {
    let (w, h, left, bottom, top, right) = (760.0, 440.0, 70.0, 50.0, 30.0, 200.0);
    let data: Vec<&Summary> = cells.iter().filter(|c| c.first.op != Op::GetId).collect();
    let Some(first) = data.first() else {
        return String::from("<svg xmlns=\"http://www.w3.org/2000/svg\"/>\n");
    };
    let (pat, op) = (first.first.pattern, first.first.op);
    let data: Vec<&Summary> = data
        .into_iter()
        .filter(|c| c.first.pattern == pat && c.first.op == op)
        .collect();
    let mut sizes: Vec<u64> = data.iter().map(|c| c.first.bs).collect();
    sizes.sort_unstable();
    sizes.dedup();
    let ymax = data.iter().map(|c| c.mib_s()).fold(1.0f64, f64::max) * 1.1;
    let x = |bs: u64| {
        let i = sizes.iter().position(|&s| s == bs).unwrap_or(0) as f64;
        left + i * (w - left - right) / (sizes.len().max(2) - 1) as f64
    };
    let y = |v: f64| h - bottom - v / ymax * (h - bottom - top);
    let mut s = format!("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n");
    let _ = writeln!(s, "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>");
    let _ = writeln!(
        s,
        "<text x=\"{left}\" y=\"18\">{pat} {op}: MiB/s against block size</text>"
    );
    let _ = writeln!(
        s,
        "<line x1=\"{left}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>",
        h - bottom,
        w - right,
        h - bottom
    );
    let _ = writeln!(
        s,
        "<line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{}\" stroke=\"black\"/>",
        h - bottom
    );
    for &bs in &sizes {
        let label = if bs >= 1 << 20 {
            format!("{}M", bs >> 20)
        } else if bs >= 1024 {
            format!("{}K", bs >> 10)
        } else {
            format!("{bs}")
        };
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{label}</text>",
            x(bs),
            h - bottom + 18.0
        );
    }
    for k in 0..=4 {
        let v = ymax * f64::from(k) / 4.0;
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{v:.0}</text>",
            left - 6.0,
            y(v) + 4.0
        );
    }
    let colors = [
        "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf",
        "#7f7f7f", "#bcbd22",
    ];
    let mut series: BTreeMap<String, Vec<(u64, f64)>> = BTreeMap::new();
    for c in &data {
        let r = &c.first;
        let name = format!(
            "{} {} qd={} eidx={}",
            r.imp,
            r.mode,
            r.qd,
            on_off(r.event_idx)
        );
        series.entry(name).or_default().push((r.bs, c.mib_s()));
    }
    for (i, (name, mut pts)) in series.into_iter().enumerate() {
        pts.sort_unstable_by_key(|p| p.0);
        let color = colors[i % colors.len()];
        let path: Vec<String> = pts
            .iter()
            .map(|&(bs, v)| format!("{:.1},{:.1}", x(bs), y(v)))
            .collect();
        let _ = writeln!(
            s,
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>",
            path.join(" ")
        );
        let ly = top + 16.0 * i as f64;
        let _ = writeln!(
            s,
            "<rect x=\"{}\" y=\"{}\" width=\"12\" height=\"3\" fill=\"{color}\"/>",
            w - right + 10.0,
            ly - 4.0
        );
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{ly}\">{name}</text>",
            w - right + 26.0
        );
    }
    s.push_str("</svg>\n");
    s
}

/// (key, iops, spread_pct) from a bench.json this module wrote.
pub fn read_json(text: &str) -> Result<Vec<(String, f64, f64)>> {
    let field = |obj: &str, k: &str| -> Option<String> {
        let at = obj.find(&format!("\"{k}\": "))? + k.len() + 4;
        let rest = &obj[at..];
        Some(if let Some(r) = rest.strip_prefix('"') {
            r[..r.find('"')?].to_string()
        } else {
            rest[..rest.find([',', '}']).unwrap_or(rest.len())]
                .trim()
                .to_string()
        })
    };
    let mut out = Vec::new();
    for obj in text.split('{').skip(1) {
        let key = field(obj, "key").ok_or("bench.json: an entry without \"key\"")?;
        let iops = field(obj, "iops")
            .and_then(|v| v.parse().ok())
            .ok_or(format!("bench.json: no iops for {key}"))?;
        let spread = field(obj, "spread_pct")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        out.push((key, iops, spread));
    }
    if out.is_empty() {
        return Err(
            "bench.json: no cells (is this a bench.json that `cargo xtask bench` wrote?)".into(),
        );
    }
    Ok(out)
}

/// Cells whose IOPS fell by more than the larger of 10% and the two runs' spreads.
pub fn regressions(previous: &[(String, f64, f64)], now: &[Summary]) -> Vec<String> {
    let mut out = Vec::new();
    for c in now {
        if let Some((_, old, old_spread)) = previous.iter().find(|(k, _, _)| *k == c.first.key()) {
            let noise = 10f64.max(*old_spread).max(c.spread_pct());
            let change = (c.iops() - old) / old.max(1.0) * 100.0;
            if change < -noise {
                out.push(format!(
                    "{}: {:.0} -> {:.0} IOPS ({change:.1}%, noise {noise:.1}%)",
                    c.first.key(),
                    old,
                    c.iops()
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
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
        let e = parse_log(log).unwrap_err();
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

    #[test]
    fn json_round_trip_and_regressions() {
        let s = summarize(&[parse_log(LOG).unwrap()]);
        let j = json(&s, "rtc", "threads");
        assert!(read_json("hello").is_err(), "not a bench.json");
        assert!(read_json("{}").is_err(), "an entry without a key");
        let back = read_json(&j).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[1].1, 62251.0);
        let mut worse = s.clone();
        worse[1].iops = vec![40000.0];
        assert_eq!(regressions(&back, &worse).len(), 1);
        assert!(regressions(&back, &s).is_empty());
    }

    /// bench.json read by a parser that is not ours (Python's json module): every cell, its
    /// key fields and rates as the captured log says.
    #[test]
    fn bench_json_parses_with_pythons_json_module() {
        let s = summarize(&[parse_log(LOG).unwrap()]);
        let j = json(&s, "rtc", "threads");
        let script = "import json,sys\n\
                      for c in json.load(sys.stdin):\n    \
                      print(c['impl'], c['op'], c['bs'], c['qd'], c['mode'], c['iops'], c['mib_s'], c['aio'])";
        let mut child = std::process::Command::new("python3")
            .args(["-c", script])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("python3 (on every machine of this project) runs");
        use std::io::Write as _;
        child.stdin.take().unwrap().write_all(j.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "python3 json refused bench.json: {}\n{j}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            "floor read 4096 16 polled 108853.0 425.2 threads\n\
             driver read 4096 16 intr 62251.0 243.1 threads\n"
        );
    }

    #[test]
    fn svg_and_csv_have_every_cell() {
        let s = summarize(&[parse_log(LOG).unwrap()]);
        assert_eq!(csv(&s).lines().count(), 3);
        let svg = svg(&s);
        assert!(
            svg.starts_with("<svg")
                && svg.contains("polyline")
                && svg.contains("driver intr qd=16")
        );
    }
}
