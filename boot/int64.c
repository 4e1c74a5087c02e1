/* boot/int64.c: the 64-bit multiply and divide helpers GCC calls (__muldi3, __udivdi3,
 * __umoddi3, __divdi3, __moddi3), built from 32-bit operations only.
 *
 * Owns: nothing but arithmetic. Why it exists: the kernel is compiled with -m68020-60 so one
 * image runs on the 68020-68060, and the 68060 lacks the 64-bit forms of mulu.l/muls.l/
 * divu.l/divs.l (it traps them: vector 61 on silicon, 4 under QEMU). GCC then calls these
 * helpers, and libgcc's own (built for the 68020) use exactly those forms; being linked
 * before libgcc, these replace them. The build checks the linked kernel for the 64-bit forms
 * (xtask/src/pipeline.rs), and the codegen conformance cases check the results against the
 * host's. Nothing here may use a 64-bit `*`, `/` or `%`: GCC would call these very helpers.
 */
#include "machine.h"

typedef int64_t s64;

/* Prototypes for -Wmissing-declarations-style hygiene; GCC calls them by these names. */
u64 __muldi3(u64 a, u64 b);
u64 __udivdi3(u64 n, u64 d);
u64 __umoddi3(u64 n, u64 d);
s64 __divdi3(s64 n, s64 d);
s64 __moddi3(s64 n, s64 d);

static inline u32 hi32(u64 x) { return (u32)(x >> 32); }
static inline u32 lo32(u64 x) { return (u32)x; }
static inline u64 make64(u32 hi, u32 lo) { return (u64)hi << 32 | lo; }

/* The full 64-bit product of two 32-bit numbers, from four 16 x 16 -> 32 products. */
static u64 mul32x32(u32 a, u32 b)
{
    u32 a0 = a & 0xffffu, a1 = a >> 16, b0 = b & 0xffffu, b1 = b >> 16;
    u32 p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
    /* Neither sum can carry out of 32 bits: each is at most (2^16-1)^2 + 2^16-1. */
    u32 mid = p01 + (p00 >> 16);
    u32 mid2 = (mid & 0xffffu) + p10;
    return make64(p11 + (mid >> 16) + (mid2 >> 16), mid2 << 16 | (p00 & 0xffffu));
}

u64 __muldi3(u64 a, u64 b)
{
    /* The low 64 bits: the cross products only reach the high word. */
    u32 cross = hi32(a) * lo32(b) + lo32(a) * hi32(b);
    return mul32x32(lo32(a), lo32(b)) + make64(cross, 0);
}

/* (nh:nl) / d for nh < d (so the quotient fits in 32 bits), remainder in *rem: long
 * division in base 2^16 with the divisor shifted until its top bit is set, each quotient
 * digit estimated from the divisor's top digit and corrected (at most twice, Knuth 4.3.1). */
static u32 div64by32(u32 nh, u32 nl, u32 d, u32 *rem)
{
    unsigned s = (unsigned)__builtin_clz(d);
    u32 dn = d << s, d1 = dn >> 16, d0 = dn & 0xffffu;
    u32 n32 = s ? (nh << s | nl >> (32 - s)) : nh;
    u32 n10 = nl << s, n1 = n10 >> 16, n0 = n10 & 0xffffu;
    u32 q1, q0, r, n21;

    q1 = n32 / d1;
    r = n32 - q1 * d1;
    while (q1 > 0xffffu || q1 * d0 > (r << 16 | n1)) {
        q1--;
        r += d1;
        if (r > 0xffffu)
            break;
    }
    /* The partial remainder is below dn, so arithmetic modulo 2^32 is exact here. */
    n21 = (n32 << 16 | n1) - q1 * dn;
    q0 = n21 / d1;
    r = n21 - q0 * d1;
    while (q0 > 0xffffu || q0 * d0 > (r << 16 | n0)) {
        q0--;
        r += d1;
        if (r > 0xffffu)
            break;
    }
    *rem = ((n21 << 16 | n0) - q0 * dn) >> s;
    return q1 << 16 | q0;
}

static u64 udivmod64(u64 n, u64 d, u64 *rem)
{
    u32 nh = hi32(n), nl = lo32(n), dh = hi32(d), dl = lo32(d);
    u32 r32, qh, ql, q, v1, q1;
    unsigned s;
    u64 r;

    if (dh == 0) {
        if (nh == 0) {
            /* 32-bit divu.l (a divisor of 0 traps there, as wasm2c has checked already). */
            *rem = nl % dl;
            return nl / dl;
        }
        qh = nh / dl;
        ql = div64by32(nh - qh * dl, nl, dl, &r32);
        *rem = r32;
        return make64(qh, ql);
    }
    if (n < d) {
        *rem = n;
        return 0;
    }
    /* d >= 2^32, so the quotient fits in 32 bits. Estimate it from n/2 over d's top 32
     * bits (normalised; n/2 keeps the estimate's dividend below that divisor): the estimate
     * minus one is the quotient or one below it. */
    s = (unsigned)__builtin_clz(dh);
    v1 = s ? (dh << s | dl >> (32 - s)) : dh;
    q1 = div64by32(hi32(n >> 1), lo32(n >> 1), v1, &r32);
    q = q1 >> (31 - s);
    if (q != 0)
        q--;
    /* q * d fits in 64 bits (q <= n / d); its low 64 bits are all there is. */
    r = n - (mul32x32(dl, q) + make64(dh * q, 0));
    if (r >= d) {
        q++;
        r -= d;
    }
    *rem = r;
    return q;
}

u64 __udivdi3(u64 n, u64 d)
{
    u64 r;
    return udivmod64(n, d, &r);
}

u64 __umoddi3(u64 n, u64 d)
{
    u64 r;
    udivmod64(n, d, &r);
    return r;
}

/* Signed forms: C's truncating division, on magnitudes (negation in u64 is exact, also for
 * INT64_MIN; INT64_MIN / -1 wraps, and wasm2c traps it before calling). */
static u64 magnitude(s64 x) { return x < 0 ? -(u64)x : (u64)x; }

s64 __divdi3(s64 n, s64 d)
{
    u64 r, q = udivmod64(magnitude(n), magnitude(d), &r);
    return (s64)((n < 0) != (d < 0) ? -q : q);
}

s64 __moddi3(s64 n, s64 d)
{
    u64 r;
    udivmod64(magnitude(n), magnitude(d), &r);
    return (s64)(n < 0 ? -r : r);
}
