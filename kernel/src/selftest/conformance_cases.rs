//! Codegen conformance cases: ordinary Rust whose results the compilation route must get
//! right. This file is compiled twice: by `build.rs` on the host, which records each case's
//! output as the expected value, and into the kernel, where the guest recomputes it. Inputs
//! pass through `black_box` so the guest really computes them instead of LLVM folding the
//! answer at compile time. Results must not depend on the width of `usize`, and arithmetic
//! that may overflow is explicitly wrapping (build.rs runs with overflow checks on).
#![forbid(unsafe_code)]
// The cases deliberately keep code shapes a linter would rewrite: indexed loops (the
// stack-array bug), NaN self-comparisons, float literals that are not the std constants.
#![allow(
    clippy::approx_constant,
    clippy::eq_op,
    clippy::needless_range_loop,
    clippy::type_complexity,
    clippy::manual_is_multiple_of
)]

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;
use core::hint::black_box;

/// (name, case): each case returns a string that the host and the guest must agree on.
pub const CASES: &[(&str, fn() -> String)] = &[
    ("u32_arith", u32_arith),
    ("u32_div_rem", u32_div_rem),
    ("i32_div_rem", i32_div_rem),
    ("u64_mul", u64_mul),
    ("u64_div_rem", u64_div_rem),
    ("i64_div_rem", i64_div_rem),
    ("int64_sweep", int64_sweep),
    ("u128_arith", u128_arith),
    ("shifts_by_variable", shifts_by_variable),
    ("rotates", rotates),
    ("bit_counts", bit_counts),
    ("byte_order", byte_order),
    ("checked_saturating", checked_saturating),
    ("stack_array_var_index", stack_array_var_index),
    ("stack_array_u32_2d", stack_array_u32_2d),
    ("compare_branch_chain", compare_branch_chain),
    ("sort_unstable", sort_unstable),
    ("sort_stable_by_key", sort_stable_by_key),
    ("iterators", iterators),
    ("closures", closures),
    ("trait_objects", trait_objects),
    ("btreemap", btreemap),
    ("vec_ops", vec_ops),
    ("format_padding", format_padding),
    ("format_int_extremes", format_int_extremes),
    ("f64_arith", f64_arith),
    ("f32_arith", f32_arith),
    ("float_int_conversions", float_int_conversions),
    ("float_format", float_format),
    ("float_special", float_special),
    ("parse_numbers", parse_numbers),
    ("match_jump_table", match_jump_table),
    ("recursion", recursion),
    ("struct_by_value", struct_by_value),
    ("copy_within_overlap", copy_within_overlap),
    ("utf8_text", utf8_text),
    ("hash_and_crc", hash_and_crc),
    ("option_result_niche", option_result_niche),
    ("nested_allocation", nested_allocation),
];

fn lcg(state: &mut u32) -> u32 {
    *state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
    *state
}

fn u32_arith() -> String {
    let a = black_box(0xdead_beefu32);
    let b = black_box(0x1234_5678u32);
    format!(
        "{:x} {:x} {:x} {:x} {}",
        a.wrapping_add(b),
        a.wrapping_sub(b),
        a.wrapping_mul(b),
        a ^ (b << 3),
        (a as u64 * b as u64) >> 32
    )
}

fn u32_div_rem() -> String {
    let mut out = String::new();
    for (n, d) in [
        (100u32, 7u32),
        (0xffff_ffff, 3),
        (0x8000_0000, 0xffff),
        (12345, 12346),
        (1 << 31, 1),
    ] {
        let (n, d) = (black_box(n), black_box(d));
        write!(out, "{}/{}={},{} ", n, d, n / d, n % d).unwrap();
    }
    out
}

fn i32_div_rem() -> String {
    let mut out = String::new();
    for (n, d) in [
        (-100i32, 7i32),
        (100, -7),
        (-100, -7),
        (i32::MIN, -1),
        (i32::MIN, 2),
        (7, 100),
    ] {
        let (n, d) = (black_box(n), black_box(d));
        write!(
            out,
            "{} {} {} ",
            n.wrapping_div(d),
            n.wrapping_rem(d),
            n.wrapping_rem_euclid(d)
        )
        .unwrap();
    }
    out
}

fn u64_mul() -> String {
    let a = black_box(0x0123_4567_89ab_cdefu64);
    let b = black_box(0xfedc_ba98_7654_3210u64);
    format!(
        "{:x} {:x} {:x}",
        a.wrapping_mul(b),
        a.wrapping_mul(3),
        (a >> 7).wrapping_mul(b >> 9)
    )
}

fn u64_div_rem() -> String {
    let mut out = String::new();
    for (n, d) in [
        (u64::MAX, 10u64),
        (0x0123_4567_89ab_cdef, 0x1_0000_0001),
        (1 << 63, 0xffff_ffff),
        (987_654_321_987_654_321, 123_456_789),
        (5, 0xffff_ffff_ffff),
    ] {
        let (n, d) = (black_box(n), black_box(d));
        write!(out, "{} {} ", n / d, n % d).unwrap();
    }
    out
}

fn i64_div_rem() -> String {
    let mut out = String::new();
    for (n, d) in [
        (-9_000_000_000_000i64, 7i64),
        (i64::MIN, -1),
        (i64::MIN, 3),
        (123, -45_678_901_234),
    ] {
        let (n, d) = (black_box(n), black_box(d));
        write!(out, "{} {} ", n.wrapping_div(d), n.wrapping_rem(d)).unwrap();
    }
    out
}

/// 64-bit multiply, divide and remainder over operands of every width (1 to 64 bits, and
/// divisors below 2^16, below 2^32 and above): on the m68k these run boot/int64.c, whose
/// normalisation and correction steps depend on the operands' leading zeros. Folded into
/// checksums, with INT64_MIN / -1 left out (wasm traps it).
fn int64_sweep() -> String {
    let mut x = black_box(0x9e37_79b9_7f4a_7c15u64);
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let (mut mul, mut udiv, mut urem, mut sdiv, mut srem) = (0u64, 0u64, 0u64, 0u64, 0u64);
    for i in 0..3000u32 {
        let n = next() >> (i % 64);
        let mut d = next() >> ((i / 64) % 64);
        if i % 3 == 1 {
            d &= 0xffff_ffff;
        } else if i % 3 == 2 {
            d &= 0xffff;
        }
        let d = d.max(1);
        mul = mul.rotate_left(7) ^ n.wrapping_mul(d);
        udiv = udiv.rotate_left(7) ^ (n / d);
        urem = urem.rotate_left(7) ^ (n % d);
        let sn = if i & 1 != 0 {
            (n as i64).wrapping_neg()
        } else {
            n as i64
        };
        let sd = if i & 2 != 0 {
            (d as i64).wrapping_neg()
        } else {
            d as i64
        };
        if !(sn == i64::MIN && sd == -1) {
            sdiv = sdiv.rotate_left(7) ^ sn.wrapping_div(sd) as u64;
            srem = srem.rotate_left(7) ^ sn.wrapping_rem(sd) as u64;
        }
    }
    let edges = [
        (u64::MAX, u64::MAX),
        (u64::MAX, 1 << 32),
        (1 << 63, (1 << 32) + 1),
        (0xffff_fffe_0000_0001, 0xffff_ffff),
        (0x0000_8000_ffff_ffff, 0x8000_ffff),
        (0x7fff_ffff_ffff_ffff, 0x8000_0001),
    ];
    let mut out = format!("{mul:x} {udiv:x} {urem:x} {sdiv:x} {srem:x}");
    for (n, d) in edges {
        let (n, d) = (black_box(n), black_box(d));
        write!(out, " {:x}/{:x}", n / d, n % d).unwrap();
    }
    out
}

fn u128_arith() -> String {
    let a = black_box(0x0123_4567_89ab_cdef_0011_2233_4455_6677u128);
    let b = black_box(0xfedc_ba98_7654_3210u128);
    format!(
        "{:x} {} {} {}",
        a.wrapping_mul(b),
        a / b,
        a % b,
        (a as i128).wrapping_neg() >> 70
    )
}

fn shifts_by_variable() -> String {
    let mut out = String::new();
    let v32 = black_box(0x8421_1248u32);
    let v64 = black_box(0x8000_4000_2000_1001u64);
    let s = black_box(-5i32);
    for n in [0u32, 1, 7, 16, 31] {
        let n = black_box(n);
        write!(out, "{:x} {:x} {} ", v32 << n, v32 >> n, s >> n).unwrap();
    }
    for n in [0u32, 1, 31, 32, 33, 63] {
        let n = black_box(n);
        write!(out, "{:x} {:x} ", v64 << n, v64 >> n).unwrap();
    }
    out
}

fn rotates() -> String {
    let a = black_box(0x1234_5678u32);
    let b = black_box(0x0102_0304_0506_0708u64);
    let n = black_box(13u32);
    format!(
        "{:x} {:x} {:x} {:x}",
        a.rotate_left(n),
        a.rotate_right(n),
        b.rotate_left(n + 20),
        b.rotate_right(n)
    )
}

fn bit_counts() -> String {
    let mut out = String::new();
    for v in [0u32, 1, 0x8000_0000, 0x00f0_0f00, u32::MAX] {
        let v = black_box(v);
        write!(
            out,
            "{} {} {} ",
            v.leading_zeros(),
            v.trailing_zeros(),
            v.count_ones()
        )
        .unwrap();
    }
    for v in [0u64, 1 << 40, 0x0000_00ff_0000_0000, u64::MAX] {
        let v = black_box(v);
        write!(
            out,
            "{} {} {} ",
            v.leading_zeros(),
            v.trailing_zeros(),
            v.count_ones()
        )
        .unwrap();
    }
    out
}

fn byte_order() -> String {
    let a = black_box(0x1122_3344u32);
    let b = black_box(0x1122_3344_5566_7788u64);
    let bytes = black_box([1u8, 2, 3, 4, 5, 6, 7, 8]);
    format!(
        "{:x} {:x} {:?} {:?} {:x} {:x} {:x}",
        a.swap_bytes(),
        b.swap_bytes(),
        a.to_le_bytes(),
        b.to_be_bytes(),
        u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]),
        u64::from_be_bytes(bytes),
        u16::from_le_bytes([bytes[6], bytes[7]])
    )
}

fn checked_saturating() -> String {
    let a = black_box(250u8);
    let b = black_box(10u8);
    let c = black_box(i32::MAX);
    format!(
        "{:?} {} {:?} {} {:?} {:?}",
        a.checked_add(b),
        a.saturating_add(b),
        c.overflowing_add(1),
        c.saturating_mul(-2),
        b.checked_sub(a),
        (c as i64).checked_mul(c as i64)
    )
}

fn stack_array_var_index() -> String {
    // LLVM's M68k backend drops the variable index of a stack-array store.
    let mut a = [0u8; 16];
    let n = black_box(40usize);
    for i in 0..n {
        a[(i * 7) & 15] = a[(i * 7) & 15].wrapping_add(i as u8);
    }
    let k = black_box(9usize);
    format!("{:?} {}", a, a[k])
}

fn stack_array_u32_2d() -> String {
    let mut grid = [[0u32; 8]; 8];
    let n = black_box(8usize);
    for r in 0..n {
        for c in 0..n {
            grid[r][c] =
                ((r * 8 + c) as u32).wrapping_mul(2654435761u32.wrapping_mul(r as u32 + 1));
        }
    }
    let mut diag = 0u32;
    for i in 0..n {
        diag = diag.wrapping_add(grid[i][n - 1 - i]);
    }
    format!("{} {}", diag, grid[black_box(5)][black_box(3)])
}

fn compare_branch_chain() -> String {
    // Many compare-and-branch sites close together (the flags-clobber bug's shape).
    let mut counts = [0u32; 5];
    let mut s = black_box(7u32);
    for _ in 0..1000 {
        let v = lcg(&mut s) >> 20;
        let bucket = if v < 100 {
            0
        } else if v < 1000 {
            1
        } else if v >= 3000 && v != 3500 {
            2
        } else if v == 3500 {
            3
        } else {
            4
        };
        counts[bucket] += 1;
    }
    format!("{counts:?}")
}

fn sort_unstable() -> String {
    let mut s = black_box(12345u32);
    let mut v: Vec<u32> = (0..2000).map(|_| lcg(&mut s) % 100_000).collect();
    v.sort_unstable();
    let ok = v.windows(2).all(|w| w[0] <= w[1]);
    let sum: u64 = v.iter().map(|&x| x as u64).sum();
    format!("{} {} {} {} {}", ok, v[0], v[999], v[1999], sum)
}

fn sort_stable_by_key() -> String {
    let mut s = black_box(99u32);
    let mut v: Vec<(u8, u16)> = (0..300u16).map(|i| ((lcg(&mut s) % 7) as u8, i)).collect();
    v.sort_by_key(|&(k, _)| k);
    let stable = v
        .windows(2)
        .all(|w| w[0].0 < w[1].0 || (w[0].0 == w[1].0 && w[0].1 < w[1].1));
    format!("{} {:?} {:?}", stable, v[0], v[150])
}

fn iterators() -> String {
    let n = black_box(1000u32);
    let a: u32 = (0..n).filter(|x| x % 3 == 0).map(|x| x * 2).sum();
    let b: Vec<u32> = (1..=n).rev().step_by(97).collect();
    let c: u64 = (0..n)
        .zip((0..n).skip(5))
        .map(|(x, y)| x as u64 * y as u64)
        .fold(0, |s, v| s ^ v);
    let d = (0..n).position(|x| x * x > 500_000);
    let e: Vec<(usize, char)> = "m68k".chars().enumerate().collect();
    format!("{a} {b:?} {c} {d:?} {e:?} {}", (1..=20u64).product::<u64>())
}

fn closures() -> String {
    let base = black_box(10u32);
    let add = move |x: u32| x + base;
    let mut counter = 0u32;
    let mut bump = |by: u32| {
        counter += by;
        counter
    };
    bump(3);
    bump(4);
    let fns: Vec<Box<dyn Fn(u32) -> u32>> = alloc::vec![
        Box::new(add),
        Box::new(|x| x * x),
        Box::new(move |x| x.wrapping_sub(base))
    ];
    let applied: Vec<u32> = fns.iter().map(|f| f(black_box(7))).collect();
    format!("{} {} {:?}", add(5), counter, applied)
}

trait Shape {
    fn area_x100(&self) -> u64;
    fn name(&self) -> &'static str;
}
struct Rect(u32, u32);
struct Tri(u32, u32);
struct Square(u32);
impl Shape for Rect {
    fn area_x100(&self) -> u64 {
        self.0 as u64 * self.1 as u64 * 100
    }
    fn name(&self) -> &'static str {
        "rect"
    }
}
impl Shape for Tri {
    fn area_x100(&self) -> u64 {
        self.0 as u64 * self.1 as u64 * 50
    }
    fn name(&self) -> &'static str {
        "tri"
    }
}
impl Shape for Square {
    fn area_x100(&self) -> u64 {
        self.0 as u64 * self.0 as u64 * 100
    }
    fn name(&self) -> &'static str {
        "square"
    }
}

fn trait_objects() -> String {
    let k = black_box(3u32);
    let shapes: Vec<Box<dyn Shape>> = alloc::vec![
        Box::new(Rect(k, 4)),
        Box::new(Tri(k + 2, 9)),
        Box::new(Square(k * 5))
    ];
    let total: u64 = shapes.iter().map(|s| s.area_x100()).sum();
    let names: Vec<&str> = shapes.iter().map(|s| s.name()).collect();
    format!("{total} {names:?}")
}

fn btreemap() -> String {
    let mut m = BTreeMap::new();
    let mut s = black_box(4242u32);
    for i in 0..500u32 {
        m.insert(lcg(&mut s) % 1000, i);
    }
    for k in (0..1000).step_by(3) {
        m.remove(&k);
    }
    let range: Vec<(u32, u32)> = m.range(100..130).map(|(k, v)| (*k, *v)).collect();
    format!(
        "{} {:?} {:?} {:?}",
        m.len(),
        m.first_key_value(),
        m.last_key_value(),
        range
    )
}

fn vec_ops() -> String {
    let n = black_box(10_000u32);
    let mut v: Vec<u32> = (0..n).map(|i| i % 97).collect();
    v.retain(|&x| x % 2 == 1);
    v.sort_unstable();
    v.dedup();
    let mut w = v.clone();
    w.reverse();
    w.truncate(5);
    w.insert(2, 1000);
    let removed = w.remove(0);
    format!("{} {:?} {} {:?}", v.len(), w, removed, v.binary_search(&51))
}

fn format_padding() -> String {
    let a = black_box(42u32);
    let s = black_box("m68k");
    format!(
        "[{:>8}] [{:<6}] [{:^9}] [{:08x}] [{:#06b}] [{:+}] [{:*^7}] [{:#X}] [{:>5.2}] [{:o}]",
        a,
        s,
        s,
        a * 1000,
        a & 7,
        a as i32 - 50,
        s,
        a * 255,
        "abcdef",
        a
    )
}

fn format_int_extremes() -> String {
    format!(
        "{} {} {} {} {} {}",
        black_box(u64::MAX),
        black_box(i64::MIN),
        black_box(i128::MIN),
        black_box(u128::MAX),
        black_box(i32::MIN),
        black_box(0u8)
    )
}

fn f64_arith() -> String {
    let a = black_box(1.0f64 / 3.0);
    let b = black_box(2.718281828459045f64);
    let mut sum = 0.0f64;
    for i in 1..=black_box(1000) {
        sum += 1.0 / (i as f64 * i as f64);
    }
    format!(
        "{:?} {:?} {:?} {:?} {:?} {:?}",
        a * b,
        a / b,
        a - b,
        b * 1.0 + a,
        sum,
        (a + b) * (a - b)
    )
}

fn f32_arith() -> String {
    let a = black_box(0.1f32);
    let b = black_box(16_777_217.0f32);
    let mut acc = 0.0f32;
    for i in 0..black_box(100) {
        acc += a * i as f32;
    }
    format!(
        "{:?} {:?} {:?} {:?} {:?}",
        a + 0.2,
        b,
        acc,
        a / 3.0,
        (a as f64) * 3.0
    )
}

fn float_int_conversions() -> String {
    let xs = black_box([2.5f64, -2.5, 1e10, -1e20, f64::NAN, 4294967295.9, -0.9]);
    let mut out = String::new();
    for x in xs {
        write!(out, "{} {} {} ", x as i32, x as u32, x as i64).unwrap();
    }
    let big = black_box(u64::MAX - 1234);
    let neg = black_box(-1234567890123i64);
    write!(
        out,
        "{:?} {:?} {:?} {:?}",
        big as f64,
        big as f32,
        neg as f64,
        (big >> 11) as f64
    )
    .unwrap();
    out
}

fn float_format() -> String {
    let x = black_box(3.14159265358979f64);
    let y = black_box(-0.000123456f64);
    let z = black_box(6.02214076e23f64);
    format!(
        "{:.3} {:10.2} {:e} {:e} {:.0} {} {} {:?}",
        x,
        x,
        y,
        z,
        black_box(2.5f64),
        y,
        z,
        1.5f32
    )
}

fn float_special() -> String {
    let inf = black_box(f64::INFINITY);
    let nan = black_box(f64::NAN);
    let nz = black_box(-0.0f64);
    format!(
        "{} {} {} {} {} {:?} {:x} {:?} {:?} {}",
        inf - inf == nan,
        nan < 1.0,
        nz == 0.0,
        (1.0 / nz).is_sign_negative(),
        inf > f64::MAX,
        f64::MAX * black_box(2.0),
        black_box(-1.5f64).to_bits(),
        f64::from_bits(black_box(0x4009_21fb_5444_2d18)),
        f64::MIN_POSITIVE / black_box(2.0),
        nan.max(1.0)
    )
}

fn parse_numbers() -> String {
    let a: i32 = black_box("-12345").parse().unwrap();
    let b = u64::from_str_radix(black_box("deadbeefcafe"), 16).unwrap();
    let c: f64 = black_box("3.14159").parse().unwrap();
    let d: f64 = black_box("1e-7").parse().unwrap();
    let e: Result<u8, _> = black_box("300").parse::<u8>();
    let f: f32 = black_box("-0.0").parse().unwrap();
    format!("{} {} {:?} {:?} {} {:?}", a, b, c, d, e.is_err(), f)
}

fn match_jump_table() -> String {
    let mut out = String::new();
    for i in 0..black_box(20u32) {
        let w = match i {
            0 => "zero",
            1 => "one",
            2 => "two",
            3 | 4 => "few",
            5 => "five",
            6 => "six",
            7 => "seven",
            8 => "eight",
            9 => "nine",
            10..=12 => "teen",
            13 => "bad",
            14 => "fourteen",
            _ => "many",
        };
        out.push_str(w);
        out.push(',');
    }
    out
}

fn fib(n: u32) -> u64 {
    if n < 2 {
        n as u64
    } else {
        fib(n - 1) + fib(n - 2)
    }
}

fn ackermann(m: u32, n: u32) -> u32 {
    match (m, n) {
        (0, n) => n + 1,
        (m, 0) => ackermann(m - 1, 1),
        (m, n) => ackermann(m - 1, ackermann(m, n - 1)),
    }
}

fn recursion() -> String {
    format!(
        "{} {}",
        fib(black_box(22)),
        ackermann(black_box(2), black_box(3))
    )
}

#[derive(Debug, Clone, Copy)]
struct Triple {
    a: u64,
    b: u64,
    c: u64,
}

#[inline(never)]
fn make_triple(x: u64) -> Triple {
    Triple {
        a: x,
        b: x.wrapping_mul(3),
        c: !x,
    }
}

#[inline(never)]
fn combine(t: Triple, u: Triple, k: [u16; 9]) -> Triple {
    Triple {
        a: t.a ^ u.c,
        b: t.b.wrapping_add(u.b),
        c: k.iter().map(|&x| x as u64).sum::<u64>() + t.c.rotate_left(5),
    }
}

fn struct_by_value() -> String {
    let t = make_triple(black_box(0x1234_5678_9abc));
    let u = make_triple(black_box(77));
    let k = black_box([1u16, 2, 3, 4, 5, 6, 7, 8, 9]);
    format!("{:x?}", combine(t, u, k))
}

fn copy_within_overlap() -> String {
    let mut v: Vec<u8> = (0..black_box(64u8)).collect();
    v.copy_within(0..40, 7);
    v.copy_within(20..60, 3);
    let mut w = [0u32; 33];
    for (i, x) in w.iter_mut().enumerate() {
        *x = i as u32 * 0x0101_0101;
    }
    w.copy_within(1.., 0);
    format!("{:?} {:x} {:x}", v, w[0], w[31])
}

fn utf8_text() -> String {
    let s = black_box("héllo wörld ∑ 𝄞");
    let up: String = s.to_uppercase();
    let chars = s.chars().count();
    let words: Vec<&str> = s.split(' ').collect();
    format!(
        "{} {} {} {:?} {:?} {}",
        s.len(),
        chars,
        up,
        words,
        char::from_u32(black_box(0x1f980)),
        s.replace("ö", "oe")
    )
}

fn hash_and_crc() -> String {
    let mut buf = alloc::vec![0u8; 4096];
    let mut s = black_box(1u32);
    for b in buf.iter_mut() {
        *b = (lcg(&mut s) >> 24) as u8;
    }
    let mut fnv = 0xcbf2_9ce4_8422_2325u64;
    for &b in &buf {
        fnv ^= b as u64;
        fnv = fnv.wrapping_mul(0x0100_0000_01b3);
    }
    let mut crc = 0xffff_ffffu32;
    for &b in &buf {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    format!("{:x} {:x}", fnv, !crc)
}

fn halve(x: u32) -> Result<u32, &'static str> {
    if x % 2 == 0 {
        Ok(x / 2)
    } else {
        Err("odd")
    }
}

fn chain(x: u32) -> Result<u32, &'static str> {
    let y = halve(x)?;
    let z = halve(y)?;
    Ok(z + 1)
}

fn option_result_niche() -> String {
    use core::num::NonZeroU32;
    let a = NonZeroU32::new(black_box(0));
    let b = NonZeroU32::new(black_box(5));
    let c: Option<&u32> = [1u32, 2, 3].get(black_box(7));
    format!(
        "{:?} {:?} {:?} {:?} {:?} {}",
        a,
        b,
        c,
        chain(black_box(12)),
        chain(black_box(6)),
        core::mem::size_of::<Option<NonZeroU32>>()
    )
}

fn nested_allocation() -> String {
    let n = black_box(50usize);
    let table: Vec<Vec<u32>> = (0..n)
        .map(|i| (0..i as u32).map(|j| j * i as u32).collect())
        .collect();
    let total: u64 = table.iter().flatten().map(|&x| x as u64).sum();
    let boxed: Box<[u64]> = (0..n as u64).map(|x| x * x).collect();
    let s: String = (0..n).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
    format!(
        "{} {} {} {}",
        total,
        table[n - 1].len(),
        boxed.iter().sum::<u64>(),
        s
    )
}
