//! The benchmark's figure (plotters): for one pattern and operation, MiB/s and IOPS against
//! block size on a log-2 axis with every size of the matrix, one line per implementation,
//! completion mode, EVENT_IDX setting and queue depth, the spread over the runs as min-max
//! bars, the legend inside the plot, and a title naming QEMU, CPU, aio, clock and date.
//! Written as SVG and PNG; text is drawn with DejaVu Sans, loaded from its Debian package.

use crate::bench::{Meta, Row};
use crate::{anyhow, Context as _, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;
use std::sync::OnceLock;

/// The font every label is drawn with (Debian's fonts-dejavu-core).
pub const FONT_FILE: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
pub const FONT_PACKAGE: &str = "fonts-dejavu-core";

const FONT: &str = "sans-serif";
const WIDTH: u32 = 1300;
const LEGEND_WIDTH: u32 = 280;
const HEIGHT: u32 = 900;

/// Registers DejaVu Sans with plotters (once; the bytes live as long as the process).
fn load_font() -> Result<()> {
    static LOADED: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    LOADED
        .get_or_init(|| {
            let bytes = std::fs::read(FONT_FILE).map_err(|e| {
                format!(
                    "cannot read the plot's font {FONT_FILE} ({e}); install it with: \
                     apt-get install {FONT_PACKAGE}"
                )
            })?;
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            plotters::style::register_font(FONT, FontStyle::Normal, bytes)
                .map_err(|_| format!("{FONT_FILE} is not a font plotters can read"))
        })
        .clone()
        .map_err(|e| anyhow!(e))
}

/// The (pattern, op) groups with data to plot, rand read first (the README's figure).
pub fn groups(rows: &[Row]) -> Vec<(String, String)> {
    let mut g: Vec<(String, String)> = Vec::new();
    for r in rows.iter().filter(|r| r.op != "getid") {
        let k = (r.pattern.clone(), r.op.clone());
        if !g.contains(&k) {
            g.push(k);
        }
    }
    g.sort_by_key(|(p, o)| (p != "rand", o != "read", p.clone(), o.clone()));
    g
}

/// A series: one line of the figure.
struct Series {
    name: String,
    /// (bs, median, min, max)
    mib: Vec<(f64, f64, f64, f64)>,
    iops: Vec<(f64, f64, f64, f64)>,
}

fn series(rows: &[Row], pattern: &str, op: &str) -> Vec<Series> {
    let mut out: Vec<Series> = Vec::new();
    for r in rows.iter().filter(|r| r.pattern == pattern && r.op == op) {
        let name = if r.imp == "floor" {
            format!("floor QD{}", r.qd)
        } else {
            format!("driver {} eidx={} QD{}", r.mode, r.event_idx, r.qd)
        };
        let i = match out.iter().position(|s| s.name == name) {
            Some(i) => i,
            None => {
                out.push(Series {
                    name,
                    mib: Vec::new(),
                    iops: Vec::new(),
                });
                out.len() - 1
            }
        };
        let bs = r.bs as f64;
        out[i].mib.push((bs, r.mib_s, r.mib_s_min, r.mib_s_max));
        out[i].iops.push((bs, r.iops, r.iops_min, r.iops_max));
    }
    for s in &mut out {
        s.mib.sort_by(|a, b| a.0.total_cmp(&b.0));
        s.iops.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    out
}

fn size_label(bs: f64) -> String {
    let b = bs.round() as u64;
    if b >= 1 << 20 && b.is_multiple_of(1 << 20) {
        format!("{} MiB", b >> 20)
    } else if b >= 1024 && b.is_multiple_of(1024) {
        format!("{} KiB", b >> 10)
    } else {
        format!("{b} B")
    }
}

/// 1, 2, 5, 10, 20, 50, ... within `lo..hi`: labelled rates on a log axis.
fn one_two_five(lo: f64, hi: f64) -> Vec<f64> {
    let mut out = Vec::new();
    let mut decade = 10f64.powf(lo.max(1e-3).log10().floor());
    while decade <= hi {
        for m in [1.0, 2.0, 5.0] {
            let v = decade * m;
            if v >= lo && v <= hi {
                out.push(v);
            }
        }
        decade *= 10.0;
    }
    out
}

fn rate_label(v: f64) -> String {
    if v >= 1e6 {
        format!("{}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{}k", v / 1e3)
    } else if v >= 1.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// Colour per implementation/mode/EVENT_IDX, a marker shape per queue depth.
fn color(name: &str) -> RGBColor {
    let palette = [
        RGBColor(0, 0, 0),
        RGBColor(31, 119, 180),
        RGBColor(214, 39, 40),
        RGBColor(44, 160, 44),
        RGBColor(148, 103, 189),
    ];
    let kind = name.rsplit_once(" QD").map_or(name, |(k, _)| k);
    let i = [
        "floor",
        "driver intr eidx=on",
        "driver polled eidx=on",
        "driver intr eidx=off",
        "driver polled eidx=off",
    ]
    .iter()
    .position(|k| *k == kind)
    .unwrap_or(0);
    palette[i]
}

fn qd_of(name: &str) -> u32 {
    name.rsplit_once(" QD")
        .and_then(|(_, q)| q.parse().ok())
        .unwrap_or(1)
}

fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    sizes: &[f64],
    all: &[Series],
    mib: bool,
    caption: &str,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let pick = |s: &Series| -> Vec<(f64, f64, f64, f64)> {
        if mib {
            s.mib.clone()
        } else {
            s.iops.clone()
        }
    };
    let values: Vec<f64> = all
        .iter()
        .flat_map(|s| pick(s).into_iter().flat_map(|p| [p.2, p.3]))
        .filter(|v| *v > 0.0)
        .collect();
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(0.0f64, f64::max);
    let (lo, hi) = if lo.is_finite() && hi > 0.0 {
        (lo / 1.5, hi * 1.5)
    } else {
        (0.1, 10.0)
    };
    let (xmin, xmax) = (
        sizes.first().copied().unwrap_or(512.0) / 1.6,
        sizes.last().copied().unwrap_or(4096.0) * 1.6,
    );
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (FONT, 20))
        .margin(12)
        .x_label_area_size(48)
        .y_label_area_size(80)
        .build_cartesian_2d(
            (xmin..xmax)
                .log_scale()
                .base(2.0)
                .with_key_points(sizes.to_vec()),
            (lo..hi).log_scale().with_key_points(one_two_five(lo, hi)),
        )
        .map_err(|e| anyhow!("plot: {e}"))?;
    chart
        .configure_mesh()
        .x_desc("block size (bytes per request, log 2 scale)")
        .y_desc(if mib {
            "MiB/s (log scale)"
        } else {
            "IOPS, requests/s (log scale)"
        })
        .x_label_formatter(&|v| size_label(*v))
        .y_label_formatter(&|v| rate_label(*v))
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 15))
        .draw()
        .map_err(|e| anyhow!("plot: {e}"))?;
    for s in all {
        let c = color(&s.name);
        let pts = pick(s);
        let style = ShapeStyle::from(&c).stroke_width(2);
        chart
            .draw_series(LineSeries::new(pts.iter().map(|p| (p.0, p.1)), style))
            .map_err(|e| anyhow!("plot: {e}"))?;
        let qd = qd_of(&s.name);
        // The spread: min-max over the runs at each point.
        chart
            .draw_series(
                pts.iter()
                    .map(|p| ErrorBar::new_vertical(p.0, p.2, p.1, p.3, c.stroke_width(1), 8)),
            )
            .map_err(|e| anyhow!("plot: {e}"))?;
        for p in &pts {
            marker(chart.plotting_area(), (p.0, p.1), qd, c)?;
        }
    }
    Ok(())
}

/// The marker of a queue depth at `at`: circle QD1, triangle QD4, square QD16, cross other.
fn marker<DB: DrawingBackend, CT: CoordTranslate>(
    area: &DrawingArea<DB, CT>,
    at: CT::From,
    qd: u32,
    c: RGBColor,
) -> Result<()>
where
    CT::From: Clone,
    DB::ErrorType: 'static,
{
    let e = EmptyElement::at(at);
    match qd {
        1 => area.draw(&(e + Circle::new((0, 0), 5, c.filled()))),
        4 => area.draw(&(e + TriangleMarker::new((0, 0), 6, c.filled()))),
        16 => area.draw(&(e + Rectangle::new([(-4, -4), (4, 4)], c.filled()))),
        _ => area.draw(&(e + Cross::new((0, 0), 5, c.stroke_width(2)))),
    }
    .map_err(|e| anyhow!("plot: {e}"))
}

/// The legend, in its own column at the figure's right: one entry per line, in the order
/// the benchmark measured them.
fn legend<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, all: &[Series]) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("plot: {e}");
    area.draw(&Text::new(
        "impl, mode, EVENT_IDX, QD",
        (8, 8),
        (FONT, 15).into_font(),
    ))
    .map_err(err)?;
    area.draw(&Text::new(
        "bars: min-max over runs",
        (8, 28),
        (FONT, 13).into_font(),
    ))
    .map_err(err)?;
    for (i, s) in all.iter().enumerate() {
        let y = 60 + 24 * i32::try_from(i).unwrap_or(0);
        let c = color(&s.name);
        area.draw(&PathElement::new(vec![(8, y), (40, y)], c.stroke_width(2)))
            .map_err(err)?;
        marker(area, (24, y), qd_of(&s.name), c)?;
        area.draw(&Text::new(
            s.name.clone(),
            (48, y - 8),
            (FONT, 14).into_font(),
        ))
        .map_err(err)?;
    }
    Ok(())
}

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    rows: &[Row],
    meta: &Meta,
    pattern: &str,
    op: &str,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(|e| anyhow!("plot: {e}"))?;
    let all = series(rows, pattern, op);
    let mut sizes: Vec<f64> = rows
        .iter()
        .filter(|r| r.pattern == pattern && r.op == op)
        .map(|r| r.bs as f64)
        .collect();
    sizes.sort_by(f64::total_cmp);
    sizes.dedup();
    let title = format!(
        "virtio-blk {pattern} {op}: QEMU {}, -cpu {}, aio={}, clock {}, {} ({} run{}, medians; bars: min-max)",
        meta.qemu,
        meta.cpu,
        meta.aio,
        meta.clock.split(' ').next().unwrap_or(""),
        meta.date.get(..10).unwrap_or(&meta.date),
        meta.runs,
        if meta.runs == 1 { "" } else { "s" },
    );
    let root = root
        .titled(&title, (FONT, 18))
        .map_err(|e| anyhow!("plot: {e}"))?;
    let (plots, key) = root.split_horizontally(WIDTH - LEGEND_WIDTH);
    let (top, bottom) = plots.split_vertically(HEIGHT * 47 / 100);
    panel(&top, &sizes, &all, true, "throughput")?;
    panel(&bottom, &sizes, &all, false, "requests per second")?;
    legend(&key, &all)?;
    root.present().map_err(|e| anyhow!("plot: {e}"))?;
    Ok(())
}

/// Writes `<stem>.svg` and `<stem>.png` for (pattern, op).
pub fn write(
    dir: &Path,
    stem: &str,
    rows: &[Row],
    meta: &Meta,
    group: &(String, String),
) -> Result<()> {
    load_font()?;
    let svg = dir.join(format!("{stem}.svg"));
    let png = dir.join(format!("{stem}.png"));
    draw(
        SVGBackend::new(&svg, (WIDTH, HEIGHT)).into_drawing_area(),
        rows,
        meta,
        &group.0,
        &group.1,
    )
    .with_context(|| format!("writing {}", svg.display()))?;
    draw(
        BitMapBackend::new(&png, (WIDTH, HEIGHT)).into_drawing_area(),
        rows,
        meta,
        &group.0,
        &group.1,
    )
    .with_context(|| format!("writing {}", png.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::{parse_log, summarize, Summary};

    fn record(imp: &str, mode: &str, eidx: &str, bs: u64, qd: u64, iops: u64) -> String {
        let mib = iops * bs / (1 << 20);
        format!(
            "bench disk=0 impl={imp} pattern=rand op=read bs={bs} qd={qd} mode={mode} event_idx={eidx} ops=100 bytes=100 ns=100 iops={iops} mib_s={mib}.0 lat_p50_us=1.0 lat_p99_us=2.0 kicks_per_op=1.000 irqs_per_op=1.000 polls_per_op=0.000 submit_ns_per_op=1 complete_ns_per_op=1 clock=rtc\n"
        )
    }

    #[test]
    fn the_figure_has_every_size_both_panels_and_the_title() {
        let mut log = String::new();
        for bs in [512, 4096, 65536, 1 << 20] {
            for qd in [1, 16] {
                log += &record("floor", "polled", "off", bs, qd, 20000);
                log += &record("driver", "intr", "on", bs, qd, 15000);
            }
        }
        let run = parse_log(&log).unwrap();
        let rows: Vec<_> = summarize(&[run.clone(), run])
            .iter()
            .map(Summary::row)
            .collect();
        let meta = Meta {
            date: "2026-11-24T10:00:00Z".into(),
            qemu: "7.2.22".into(),
            qemu_path: "q".into(),
            cpu: "m68040".into(),
            aio: "io_uring".into(),
            clock: "rtc (host time)".into(),
            matrix: "quick".into(),
            runs: 2,
            disk: "scratch".into(),
        };
        let g = groups(&rows);
        assert_eq!(g, [("rand".to_string(), "read".to_string())]);
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "b", &rows, &meta, &g[0]).unwrap();
        let svg = std::fs::read_to_string(dir.path().join("b.svg")).unwrap();
        for text in [
            "512 B",
            "4 KiB",
            "64 KiB",
            "1 MiB",
            "MiB/s (log scale)",
            "IOPS, requests/s (log scale)",
            "block size (bytes per request, log 2 scale)",
            "QEMU 7.2.22, -cpu m68040, aio=io_uring, clock rtc, 2026-11-24",
            "floor QD1",
            "driver intr eidx=on QD16",
        ] {
            assert!(svg.contains(text), "{text} missing from the SVG");
        }
        let png = std::fs::read(dir.path().join("b.png")).unwrap();
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    }
}
