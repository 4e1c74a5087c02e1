//! The benchmark's console lines (README "Log format"): one record per measured cell,
//! framed by progress, error and done lines.
//!
//! ```text
//! bench progress 1/14
//! bench disk=0 impl=driver pattern=rand op=read bs=4096 qd=16 mode=intr event_idx=on ops=2048 ... clock=rtc
//! bench error: <cell>: <why>
//! bench done 14 cells
//! ```
//!
//! A record's keys always come in the order of `KEYS`. Its rates are fixed-point decimals
//! with a set number of places (`Fixed`), computed by the kernel with integers only.

use core::fmt;

/// What every benchmark line starts with.
pub const PREFIX: &str = "bench ";

/// A record's keys, in the order the line carries them.
pub const KEYS: [&str; 21] = [
    "disk",
    "impl",
    "pattern",
    "op",
    "bs",
    "qd",
    "mode",
    "event_idx",
    "ops",
    "bytes",
    "ns",
    "iops",
    "mib_s",
    "lat_p50_us",
    "lat_p99_us",
    "kicks_per_op",
    "irqs_per_op",
    "polls_per_op",
    "submit_ns_per_op",
    "complete_ns_per_op",
    "clock",
];

words! {
    /// What was measured: the virtio-blk driver, or the simplest loop the same pipeline builds.
    Impl { Driver = "driver", Floor = "floor" }
}

words! {
    /// The order of the requests' sectors.
    Pattern { Seq = "seq", Rand = "rand" }
}

words! {
    /// The request type; `getid` is the null request (GET_ID, 20 bytes).
    Op { Read = "read", Write = "write", GetId = "getid" }
}

words! {
    /// How completions are taken: the device's interrupt, or polling the used ring.
    Mode { Intr = "intr", Polled = "polled" }
}

words! {
    /// The clock the times come from: the goldfish RTC (host time, or guest instructions
    /// under `-icount`).
    Clock { Rtc = "rtc" }
}

/// How a yes/no key (`event_idx`) is printed.
pub const fn on_off(on: bool) -> &'static str {
    if on {
        "on"
    } else {
        "off"
    }
}

/// A non-negative decimal with exactly `PLACES` digits after the point (none and no point
/// for 0), stored as the value times 10^PLACES.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fixed<const PLACES: u32> {
    scaled: u64,
}

impl<const PLACES: u32> Fixed<PLACES> {
    const ONE: u64 = 10u64.pow(PLACES);

    /// The value `scaled / 10^PLACES`.
    pub const fn from_scaled(scaled: u64) -> Self {
        Fixed { scaled }
    }

    /// The value times 10^PLACES.
    pub const fn scaled(self) -> u64 {
        self.scaled
    }

    /// `num / den`, truncated to PLACES places, without overflow for any `num`; a `den` of 0
    /// counts as 1.
    pub fn ratio(num: u64, den: u64) -> Self {
        let den = den.max(1);
        let (whole, rest) = (num / den, num % den);
        // rest < den, so rest * ONE overflows only for a den near u64::MAX; then scale den
        // down instead (the places lost are far below the printed ones).
        let frac = match rest.checked_mul(Self::ONE) {
            Some(r) => r / den,
            None => rest / (den / Self::ONE),
        };
        Fixed {
            scaled: whole.saturating_mul(Self::ONE).saturating_add(frac),
        }
    }

    /// Host-side convenience for arithmetic on the value.
    pub fn to_f64(self) -> f64 {
        (self.scaled / Self::ONE) as f64 + (self.scaled % Self::ONE) as f64 / Self::ONE as f64
    }

    /// Parses exactly the form `Display` prints: digits, and for PLACES > 0 a point and
    /// PLACES digits.
    pub fn parse(text: &str) -> Option<Self> {
        let (whole, frac) = if PLACES == 0 {
            (text, "")
        } else {
            let (w, f) = text.split_once('.')?;
            if f.len() != PLACES as usize {
                return None;
            }
            (w, f)
        };
        let whole = parse_uint(whole)?;
        let frac = if PLACES == 0 { 0 } else { parse_uint(frac)? };
        Some(Fixed {
            scaled: whole.checked_mul(Self::ONE)?.checked_add(frac)?,
        })
    }
}

impl<const PLACES: u32> fmt::Display for Fixed<PLACES> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.scaled / Self::ONE;
        if PLACES == 0 {
            write!(f, "{whole}")
        } else {
            let frac = self.scaled % Self::ONE;
            write!(f, "{whole}.{frac:0width$}", width = PLACES as usize)
        }
    }
}

/// Decimal digits only (no sign, no blanks), at least one.
fn parse_uint(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// One cell's measurement: the record line's fields, in `KEYS` order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The disk's virtio slot.
    pub disk: u32,
    pub imp: Impl,
    pub pattern: Pattern,
    pub op: Op,
    /// Bytes per request.
    pub bs: u64,
    /// Requests kept in flight.
    pub qd: u64,
    pub mode: Mode,
    /// VIRTIO_F_EVENT_IDX negotiated (the floor: off).
    pub event_idx: bool,
    /// Requests completed.
    pub ops: u64,
    /// Bytes moved.
    pub bytes: u64,
    /// Elapsed guest time (ns).
    pub ns: u64,
    /// Requests per second.
    pub iops: u64,
    /// MiB (2^20 bytes) per second.
    pub mib_s: Fixed<1>,
    /// Latency percentiles, submit to completion seen (µs).
    pub lat_p50_us: Fixed<1>,
    pub lat_p99_us: Fixed<1>,
    /// Notifications, interrupts and used-ring polls per request.
    pub kicks_per_op: Fixed<3>,
    pub irqs_per_op: Fixed<3>,
    pub polls_per_op: Fixed<3>,
    /// Guest time per request in the driver's own path (ns; instructions under -icount):
    /// queueing incl. the notification, and taking completions.
    pub submit_ns_per_op: u64,
    pub complete_ns_per_op: u64,
    pub clock: Clock,
}

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{PREFIX}disk={} impl={} pattern={} op={} bs={} qd={} mode={} event_idx={} ops={} bytes={} ns={} iops={} mib_s={} lat_p50_us={} lat_p99_us={} kicks_per_op={} irqs_per_op={} polls_per_op={} submit_ns_per_op={} complete_ns_per_op={} clock={}",
            self.disk,
            self.imp,
            self.pattern,
            self.op,
            self.bs,
            self.qd,
            self.mode,
            on_off(self.event_idx),
            self.ops,
            self.bytes,
            self.ns,
            self.iops,
            self.mib_s,
            self.lat_p50_us,
            self.lat_p99_us,
            self.kicks_per_op,
            self.irqs_per_op,
            self.polls_per_op,
            self.submit_ns_per_op,
            self.complete_ns_per_op,
            self.clock
        )
    }
}

/// Prints `bench progress N/OF` before cell N (from 1) of OF.
pub struct Progress {
    pub n: usize,
    pub of: usize,
}

impl fmt::Display for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}progress {}/{}", self.n, self.of)
    }
}

/// Prints `bench error: <what>` for a cell that could not be measured.
pub struct Error<D>(pub D);

impl<D: fmt::Display> fmt::Display for Error<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}error: {}", self.0)
    }
}

/// Prints `bench skip: <what>` for a cell that does not apply to the disk (its request does
/// not fit it).
pub struct Skip<D>(pub D);

impl<D: fmt::Display> fmt::Display for Skip<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}skip: {}", self.0)
    }
}

/// Prints `bench done N cells`, the last line of a benchmark run.
pub struct Done {
    pub cells: usize,
}

impl fmt::Display for Done {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}done {} cells", self.cells)
    }
}

/// Prints `bench window ns=N` after a cell: the guest time from just before the cell's start
/// marker (`machine::profile_cell_begin`) to just after its end marker, setup and teardown
/// included (ns; instructions under `-icount shift=0`). `cargo xtask profile` compares it with
/// the instructions its plugin counted between the markers.
pub struct Window {
    /// Guest time across the markers (ns).
    pub ns: u64,
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}window ns={}", self.ns)
    }
}

/// One benchmark cell named by its key fields, in record order, separated by commas:
/// `impl,pattern,op,bs,qd,mode,event_idx`, e.g. `driver,rand,read,4096,1,intr,on` (the
/// kernel option `bench_cell=` and `cargo xtask profile --cell` take this text).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CellSpec {
    pub imp: Impl,
    pub pattern: Pattern,
    pub op: Op,
    /// Bytes per request.
    pub bs: u64,
    /// Requests kept in flight.
    pub qd: u64,
    pub mode: Mode,
    pub event_idx: bool,
}

/// The shape of a cell spec, for error messages.
pub const CELL_SPEC_SHAPE: &str =
    "impl,pattern,op,bs,qd,mode,event_idx (e.g. driver,rand,read,4096,1,intr,on)";

impl CellSpec {
    /// Parses exactly the form `Display` prints: seven fields, each a word of its key or a
    /// decimal integer; None for anything else.
    pub fn parse(text: &str) -> Option<CellSpec> {
        let mut f = text.split(',');
        let spec = CellSpec {
            imp: Impl::from_word(f.next()?)?,
            pattern: Pattern::from_word(f.next()?)?,
            op: Op::from_word(f.next()?)?,
            bs: parse_uint(f.next()?)?,
            qd: parse_uint(f.next()?)?,
            mode: Mode::from_word(f.next()?)?,
            event_idx: on_off_word(f.next()?)?,
        };
        f.next().is_none().then_some(spec)
    }

    /// The spec of the cell a record measured.
    pub fn of(r: &Record) -> CellSpec {
        CellSpec {
            imp: r.imp,
            pattern: r.pattern,
            op: r.op,
            bs: r.bs,
            qd: r.qd,
            mode: r.mode,
            event_idx: r.event_idx,
        }
    }
}

impl fmt::Display for CellSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{},{},{},{},{},{},{}",
            self.imp,
            self.pattern,
            self.op,
            self.bs,
            self.qd,
            self.mode,
            on_off(self.event_idx)
        )
    }
}

/// A benchmark line, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line<'a> {
    Record(Record),
    Progress {
        n: u64,
        of: u64,
    },
    /// What follows `bench error: `.
    Error(&'a str),
    /// What follows `bench skip: `.
    Skip(&'a str),
    Done {
        cells: u64,
    },
    /// `bench window ns=N`: guest time across a cell's markers.
    Window {
        ns: u64,
    },
}

/// What a value should have been.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    Integer,
    /// A decimal with this many places.
    Decimal(u32),
    OneOf(&'static [&'static str]),
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expected::Integer => f.write_str("an integer"),
            Expected::Decimal(places) => write!(f, "a number with {places} decimal(s)"),
            Expected::OneOf(words) => {
                f.write_str("one of ")?;
                for (i, w) in words.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    f.write_str(w)?;
                }
                Ok(())
            }
        }
    }
}

/// Why a line that starts like a benchmark line does not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError<'a> {
    NotKeyValue(&'a str),
    UnknownKey(&'a str),
    Duplicate(&'static str),
    /// `key` came after `after`, which `KEYS` puts later.
    OutOfOrder {
        key: &'static str,
        after: &'static str,
    },
    Missing(&'static str),
    BadValue {
        key: &'static str,
        value: &'a str,
        expected: Expected,
    },
    /// A progress or done line not of this shape.
    Malformed(&'static str),
}

impl fmt::Display for ParseError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::NotKeyValue(t) => write!(f, "'{t}' is not key=value"),
            ParseError::UnknownKey(k) => write!(f, "unknown key '{k}'"),
            ParseError::Duplicate(k) => write!(f, "key '{k}' appears twice"),
            ParseError::OutOfOrder { key, after } => {
                write!(
                    f,
                    "key '{key}' comes after '{after}', out of the documented order"
                )
            }
            ParseError::Missing(k) => write!(f, "missing key '{k}'"),
            ParseError::BadValue {
                key,
                value,
                expected,
            } => write!(f, "{key}='{value}' is not {expected}"),
            ParseError::Malformed(shape) => write!(f, "not of the form '{shape}'"),
        }
    }
}

/// Parses one console line (surrounding whitespace ignored): Ok(None) if it is no benchmark
/// line, Err if it starts like one (`bench disk=`, `bench progress `, `bench done `) but is
/// malformed.
pub fn parse_line(line: &str) -> Result<Option<Line<'_>>, ParseError<'_>> {
    let Some(rest) = line.trim().strip_prefix(PREFIX) else {
        return Ok(None);
    };
    if rest.starts_with("disk=") {
        return parse_record(rest).map(|r| Some(Line::Record(r)));
    }
    if let Some(p) = rest.strip_prefix("progress ") {
        const SHAPE: &str = "bench progress N/N";
        let (n, of) = p.split_once('/').ok_or(ParseError::Malformed(SHAPE))?;
        return match (parse_uint(n), parse_uint(of)) {
            (Some(n), Some(of)) => Ok(Some(Line::Progress { n, of })),
            _ => Err(ParseError::Malformed(SHAPE)),
        };
    }
    if let Some(why) = rest.strip_prefix("error: ") {
        return Ok(Some(Line::Error(why)));
    }
    if let Some(why) = rest.strip_prefix("skip: ") {
        return Ok(Some(Line::Skip(why)));
    }
    if let Some(d) = rest.strip_prefix("done ") {
        let cells = d.strip_suffix(" cells").and_then(parse_uint);
        return cells
            .map(|cells| Some(Line::Done { cells }))
            .ok_or(ParseError::Malformed("bench done N cells"));
    }
    if let Some(w) = rest.strip_prefix("window ") {
        let ns = w.strip_prefix("ns=").and_then(parse_uint);
        return ns
            .map(|ns| Some(Line::Window { ns }))
            .ok_or(ParseError::Malformed("bench window ns=N"));
    }
    Ok(None)
}

/// The fields after `bench `, checked against `KEYS`, then typed in `KEYS` order.
fn parse_record(fields: &str) -> Result<Record, ParseError<'_>> {
    let mut values: [Option<&str>; KEYS.len()] = [None; KEYS.len()];
    let mut last: Option<usize> = None;
    for token in fields.split_whitespace() {
        let (k, v) = token
            .split_once('=')
            .ok_or(ParseError::NotKeyValue(token))?;
        let i = KEYS
            .iter()
            .position(|&key| key == k)
            .ok_or(ParseError::UnknownKey(k))?;
        if values[i].is_some() {
            return Err(ParseError::Duplicate(KEYS[i]));
        }
        if let Some(l) = last.filter(|&l| l > i) {
            return Err(ParseError::OutOfOrder {
                key: KEYS[i],
                after: KEYS[l],
            });
        }
        values[i] = Some(v);
        last = Some(i);
    }
    let f = Fields(values);
    // Struct fields are evaluated in the order written, which is KEYS order: the first
    // error reported is the first bad key of the line.
    Ok(Record {
        disk: f.int("disk")?,
        imp: f.word("impl", Impl::from_word, Impl::WORDS)?,
        pattern: f.word("pattern", Pattern::from_word, Pattern::WORDS)?,
        op: f.word("op", Op::from_word, Op::WORDS)?,
        bs: f.int("bs")?,
        qd: f.int("qd")?,
        mode: f.word("mode", Mode::from_word, Mode::WORDS)?,
        event_idx: f.word("event_idx", on_off_word, &["on", "off"])?,
        ops: f.int("ops")?,
        bytes: f.int("bytes")?,
        ns: f.int("ns")?,
        iops: f.int("iops")?,
        mib_s: f.fixed("mib_s")?,
        lat_p50_us: f.fixed("lat_p50_us")?,
        lat_p99_us: f.fixed("lat_p99_us")?,
        kicks_per_op: f.fixed("kicks_per_op")?,
        irqs_per_op: f.fixed("irqs_per_op")?,
        polls_per_op: f.fixed("polls_per_op")?,
        submit_ns_per_op: f.int("submit_ns_per_op")?,
        complete_ns_per_op: f.int("complete_ns_per_op")?,
        clock: f.word("clock", Clock::from_word, Clock::WORDS)?,
    })
}

fn on_off_word(word: &str) -> Option<bool> {
    match word {
        "on" => Some(true),
        "off" => Some(false),
        _ => None,
    }
}

/// A record's values, indexed like `KEYS`.
struct Fields<'a>([Option<&'a str>; KEYS.len()]);

impl<'a> Fields<'a> {
    /// The value of `key` (one of `KEYS`), or Missing.
    fn get(&self, key: &'static str) -> Result<&'a str, ParseError<'a>> {
        let i = KEYS.iter().position(|&k| k == key);
        debug_assert!(i.is_some(), "{key} is not in KEYS");
        i.and_then(|i| self.0[i]).ok_or(ParseError::Missing(key))
    }

    fn int<T: TryFrom<u64>>(&self, key: &'static str) -> Result<T, ParseError<'a>> {
        let value = self.get(key)?;
        parse_uint(value)
            .and_then(|v| T::try_from(v).ok())
            .ok_or(ParseError::BadValue {
                key,
                value,
                expected: Expected::Integer,
            })
    }

    fn fixed<const P: u32>(&self, key: &'static str) -> Result<Fixed<P>, ParseError<'a>> {
        let value = self.get(key)?;
        Fixed::parse(value).ok_or(ParseError::BadValue {
            key,
            value,
            expected: Expected::Decimal(P),
        })
    }

    fn word<T>(
        &self,
        key: &'static str,
        from_word: fn(&str) -> Option<T>,
        words: &'static [&'static str],
    ) -> Result<T, ParseError<'a>> {
        let value = self.get(key)?;
        from_word(value).ok_or(ParseError::BadValue {
            key,
            value,
            expected: Expected::OneOf(words),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::{String, ToString};
    use std::vec::Vec;

    /// README's example record, as text and as the values it stands for.
    const README_LINE: &str = "bench disk=0 impl=driver pattern=rand op=read bs=4096 qd=16 mode=intr event_idx=on ops=2048 bytes=8388608 ns=32899000 iops=62251 mib_s=243.1 lat_p50_us=125.0 lat_p99_us=202.0 kicks_per_op=0.062 irqs_per_op=0.062 polls_per_op=0.000 submit_ns_per_op=7020 complete_ns_per_op=3618 clock=rtc";

    fn readme_record() -> Record {
        Record {
            disk: 0,
            imp: Impl::Driver,
            pattern: Pattern::Rand,
            op: Op::Read,
            bs: 4096,
            qd: 16,
            mode: Mode::Intr,
            event_idx: true,
            ops: 2048,
            bytes: 8_388_608,
            ns: 32_899_000,
            iops: 62251,
            mib_s: Fixed::from_scaled(2431),
            lat_p50_us: Fixed::from_scaled(1250),
            lat_p99_us: Fixed::from_scaled(2020),
            kicks_per_op: Fixed::from_scaled(62),
            irqs_per_op: Fixed::from_scaled(62),
            polls_per_op: Fixed::from_scaled(0),
            submit_ns_per_op: 7020,
            complete_ns_per_op: 3618,
            clock: Clock::Rtc,
        }
    }

    fn floor_getid() -> Record {
        Record {
            disk: 3,
            imp: Impl::Floor,
            pattern: Pattern::Seq,
            op: Op::GetId,
            bs: 20,
            qd: 1,
            mode: Mode::Polled,
            event_idx: false,
            ops: 1,
            bytes: 20,
            ns: u64::MAX,
            iops: 0,
            mib_s: Fixed::from_scaled(u64::MAX),
            lat_p50_us: Fixed::from_scaled(9),
            lat_p99_us: Fixed::from_scaled(10),
            kicks_per_op: Fixed::from_scaled(1000),
            irqs_per_op: Fixed::from_scaled(1),
            polls_per_op: Fixed::from_scaled(123_456),
            submit_ns_per_op: 0,
            complete_ns_per_op: 1,
            clock: Clock::Rtc,
        }
    }

    #[test]
    fn the_readme_record_formats_and_parses() {
        assert_eq!(readme_record().to_string(), README_LINE);
        assert_eq!(
            parse_line(README_LINE),
            Ok(Some(Line::Record(readme_record())))
        );
        assert_eq!(
            floor_getid().to_string(),
            "bench disk=3 impl=floor pattern=seq op=getid bs=20 qd=1 mode=polled event_idx=off ops=1 bytes=20 ns=18446744073709551615 iops=0 mib_s=1844674407370955161.5 lat_p50_us=0.9 lat_p99_us=1.0 kicks_per_op=1.000 irqs_per_op=0.001 polls_per_op=123.456 submit_ns_per_op=0 complete_ns_per_op=1 clock=rtc"
        );
    }

    #[test]
    fn records_round_trip() {
        let mut write = readme_record();
        write.op = Op::Write;
        write.mode = Mode::Polled;
        for r in [readme_record(), floor_getid(), write] {
            let line = r.to_string();
            assert_eq!(parse_line(&line), Ok(Some(Line::Record(r))), "{line}");
            // Console lines may carry a carriage return or indentation.
            let padded = std::format!("  {line}\r");
            assert!(matches!(parse_line(&padded), Ok(Some(Line::Record(_)))));
        }
    }

    #[test]
    fn the_record_carries_its_keys_in_keys_order() {
        let keys: Vec<&str> = README_LINE
            .strip_prefix(PREFIX)
            .unwrap()
            .split(' ')
            .map(|t| t.split_once('=').unwrap().0)
            .collect();
        assert_eq!(keys, KEYS);
    }

    #[test]
    fn words() {
        assert_eq!(Impl::WORDS, ["driver", "floor"]);
        assert_eq!(Pattern::WORDS, ["seq", "rand"]);
        assert_eq!(Op::WORDS, ["read", "write", "getid"]);
        assert_eq!(Mode::WORDS, ["intr", "polled"]);
        assert_eq!(Clock::WORDS, ["rtc"]);
        assert_eq!(Op::from_word("getid"), Some(Op::GetId));
        assert_eq!(Op::from_word("GETID"), None);
        assert_eq!((on_off(true), on_off(false)), ("on", "off"));
    }

    #[test]
    fn fixed_point() {
        // 1 kick per 16 requests: 0.0625, truncated.
        assert_eq!(Fixed::<3>::ratio(1, 16).to_string(), "0.062");
        assert_eq!(Fixed::<3>::ratio(37_829, 16_000).to_string(), "2.364");
        assert_eq!(Fixed::<3>::ratio(5, 0).to_string(), "5.000");
        // ns to µs with one place: 78 049 ns is 78.0 µs.
        assert_eq!(Fixed::<1>::ratio(78_049, 1000).to_string(), "78.0");
        assert_eq!(Fixed::<1>::ratio(202_999, 1000).to_string(), "202.9");
        assert_eq!(Fixed::<0>::ratio(7, 2).to_string(), "3");
        assert_eq!(Fixed::<1>::from_scaled(5).to_string(), "0.5");
        // A denominator so large that rest * 10 overflows: 1/3 of it is still 0.3.
        assert_eq!(Fixed::<1>::ratio(u64::MAX / 3, u64::MAX).to_string(), "0.3");
        assert_eq!(Fixed::<1>::ratio(u64::MAX, 1).scaled(), u64::MAX);
        assert_eq!(Fixed::<3>::parse("2.364"), Some(Fixed::from_scaled(2364)));
        assert_eq!(Fixed::<1>::parse("0.5"), Some(Fixed::from_scaled(5)));
        assert_eq!(Fixed::<0>::parse("42"), Some(Fixed::from_scaled(42)));
        for bad in [
            "2.36", "2.3640", "2", ".364", "+2.364", "2.-64", "2,364", "",
        ] {
            assert_eq!(Fixed::<3>::parse(bad), None, "{bad}");
        }
        assert_eq!(Fixed::<0>::parse("4.0"), None);
        assert_eq!(Fixed::<1>::parse("18446744073709551616.0"), None);
        assert_eq!(Fixed::<3>::from_scaled(2364).to_f64(), 2.364);
    }

    #[test]
    fn framing_lines() {
        assert_eq!(Progress { n: 1, of: 14 }.to_string(), "bench progress 1/14");
        assert_eq!(Done { cells: 14 }.to_string(), "bench done 14 cells");
        assert_eq!(
            Error("Cell { imp: Floor }: does not fit").to_string(),
            "bench error: Cell { imp: Floor }: does not fit"
        );
        assert_eq!(
            parse_line("bench progress 3/14"),
            Ok(Some(Line::Progress { n: 3, of: 14 }))
        );
        assert_eq!(
            parse_line("bench done 14 cells"),
            Ok(Some(Line::Done { cells: 14 }))
        );
        assert_eq!(
            parse_line("bench error: x: y"),
            Ok(Some(Line::Error("x: y")))
        );
        assert_eq!(Skip("c: too big").to_string(), "bench skip: c: too big");
        assert_eq!(
            parse_line("bench skip: c: too big"),
            Ok(Some(Line::Skip("c: too big")))
        );
        assert_eq!(parse_line("test a ... ok"), Ok(None));
        assert_eq!(parse_line("bench: no scratch disk in slot 0"), Ok(None));
        assert_eq!(parse_line("benchmark disk=0"), Ok(None));
        assert_eq!(
            parse_line("bench progress 3 of 14"),
            Err(ParseError::Malformed("bench progress N/N"))
        );
        assert_eq!(
            parse_line("bench done 14"),
            Err(ParseError::Malformed("bench done N cells"))
        );
    }

    #[test]
    fn window_lines() {
        let line = Window { ns: 1_234_567 }.to_string();
        assert_eq!(line, "bench window ns=1234567");
        assert_eq!(parse_line(&line), Ok(Some(Line::Window { ns: 1_234_567 })));
        for bad in ["bench window 12", "bench window ns=", "bench window ns=-1"] {
            assert_eq!(
                parse_line(bad),
                Err(ParseError::Malformed("bench window ns=N")),
                "{bad}"
            );
        }
    }

    #[test]
    fn cell_specs_round_trip_and_refuse_anything_else() {
        let s = CellSpec::parse("driver,rand,read,4096,1,intr,on").unwrap();
        assert_eq!(
            s,
            CellSpec {
                imp: Impl::Driver,
                pattern: Pattern::Rand,
                op: Op::Read,
                bs: 4096,
                qd: 1,
                mode: Mode::Intr,
                event_idx: true,
            }
        );
        assert_eq!(s.to_string(), "driver,rand,read,4096,1,intr,on");
        let f = CellSpec::parse("floor,seq,getid,20,1,polled,off").unwrap();
        assert_eq!(CellSpec::parse(&f.to_string()), Some(f));
        // The spec of a record is its key fields.
        assert_eq!(
            CellSpec::of(&readme_record()).to_string(),
            "driver,rand,read,4096,16,intr,on"
        );
        for bad in [
            "",
            "driver",
            "driver,rand,read,4096,1,intr",
            "driver,rand,read,4096,1,intr,on,",
            "driver,rand,read,4096,1,intr,on,x",
            "driver,rand,read,4k,1,intr,on",
            "driver,rand,read,4096,-1,intr,on",
            "driver,rand,read,4096,1,interrupt,on",
            "Driver,rand,read,4096,1,intr,on",
            "driver rand read 4096 1 intr on",
        ] {
            assert_eq!(CellSpec::parse(bad), None, "{bad}");
        }
    }

    fn error_of(line: &str) -> String {
        parse_line(line).unwrap_err().to_string()
    }

    #[test]
    fn malformed_records_are_rejected_with_a_reason() {
        let cases = [
            ("bench disk=0 impl=driver", "missing key 'pattern'"),
            (
                "bench disk=0 impl=turbo pattern=seq",
                "impl='turbo' is not one of driver, floor",
            ),
            ("bench disk=0 bogus=1", "unknown key 'bogus'"),
            ("bench disk=0 impl", "'impl' is not key=value"),
            ("bench disk=0 disk=1", "key 'disk' appears twice"),
            (
                "bench disk=0 pattern=seq impl=driver",
                "key 'impl' comes after 'pattern', out of the documented order",
            ),
            ("bench disk=x", "disk='x' is not an integer"),
            ("bench disk=-1", "disk='-1' is not an integer"),
            // disk is a u32.
            (
                "bench disk=4294967296",
                "disk='4294967296' is not an integer",
            ),
        ];
        for (line, why) in cases {
            assert_eq!(error_of(line), why, "{line}");
        }
        let swap = |from: &str, to: &str| error_of(&README_LINE.replace(from, to));
        assert_eq!(
            swap("iops=62251", "iops=fast"),
            "iops='fast' is not an integer"
        );
        assert_eq!(
            swap("mib_s=243.1", "mib_s=243.10"),
            "mib_s='243.10' is not a number with 1 decimal(s)"
        );
        assert_eq!(
            swap("event_idx=on", "event_idx=yes"),
            "event_idx='yes' is not one of on, off"
        );
        assert_eq!(swap(" clock=rtc", ""), "missing key 'clock'");
        assert_eq!(
            swap("clock=rtc", "clock=tsc"),
            "clock='tsc' is not one of rtc"
        );
    }
}
