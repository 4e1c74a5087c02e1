/* boot/runtime.c: the freestanding runtime that wasm2c's generated C expects.
 *
 * Owns: linear memory placement (a fixed physical window, natural byte order, see
 * docs/toolchain.md), the function-type registry and funcref table behind call_indirect,
 * the call-depth counter, traps, and the few libc/libm functions the generated code calls.
 * It must not hold kernel policy: traps are handed to machine.c, which hands them to Rust.
 */
#include <stdarg.h>

#include "wasm-rt.h"
#include "machine.h"

#define PAGE_SIZE 65536u

/* ---- call depth and traps -------------------------------------------------------------- */

uint32_t wasm_rt_call_stack_depth;

bool wasm_rt_is_initialized(void) { return true; }

void wasm_rt_trap(wasm_rt_trap_t code)
{
    /* The return address of the call in the generated function that trapped (the call may be
     * that function's last instruction: the xtask looks up the byte before it with addr2line,
     * and prints the Rust function's name). */
    machine_wasm_trap((u32)code, (u32)__builtin_return_address(0));
}

/* ---- linear memory ----------------------------------------------------------------------- */

static u32 ram_end;

void machine_memory_set_limit(u32 physical_end) { ram_end = physical_end; }
u32 machine_memory_limit(void) { return ram_end; }

/* The bounds checks' size (xtask/src/memory_model.h): the placeholder the linker wrote into
 * them (by a name of its own: a use of __linear_memory_bound here would be in the table
 * and patched too, this code included), and the table of every 32-bit field holding it
 * (linker.ld, filled by the xtask). */
extern u8 __linear_memory_placeholder[];
extern const u32 __bound_sites_start[], __bound_sites_end[];

/* Adds (size - placeholder) to every field that holds the placeholder (plus a site's
 * constant): the code then compares against size, as if linked with it. Runs before any Rust
 * (the only code with such fields), with the caches off as QEMU leaves them (entry.S): no
 * stale instruction can remain. */
static void patch_bound_sites(u32 size)
{
    u32 delta = size - (u32)__linear_memory_placeholder;
    for (const u32 *site = __bound_sites_start; site < __bound_sites_end; site++) {
        /* 2-byte aligned (an instruction's extension words): fine from the 68020 on. */
        u32 *field = (u32 *)*site;
        *field += delta;
    }
}

/* Linear memory is every whole 64 KiB page between __linear_memory_base and the end of RAM
 * (at most what the module allows and 65535 pages), from instantiation on: its size never
 * changes afterwards, so the bounds checks can compare with it as a constant. */
void wasm_rt_allocate_memory(wasm_rt_memory_t *mem, uint32_t initial_pages, uint32_t max_pages)
{
    u32 window = ram_end > (u32)__linear_memory_base ? ram_end - (u32)__linear_memory_base : 0;
    u32 pages = window / PAGE_SIZE;
    if (pages > max_pages)
        pages = max_pages;
    if (pages > 65535u)
        pages = 65535u;
    if (pages < initial_pages || pages * PAGE_SIZE < (u32)__linear_memory_placeholder) {
        machine_fallback_puts("fatal: RAM ends at ");
        machine_fallback_hex(ram_end);
        machine_fallback_puts(" but the kernel's linear memory needs ");
        machine_fallback_hex((u32)__linear_memory_base);
        machine_fallback_puts("-");
        machine_fallback_hex((u32)__linear_memory_base + initial_pages * PAGE_SIZE);
        machine_fallback_puts(": give QEMU more memory (-m)\n");
        machine_fallback_exit_failure();
    }
    mem->data = __linear_memory_base;
    mem->pages = pages;
    mem->max_pages = max_pages;
    mem->size = pages * PAGE_SIZE;
    patch_bound_sites(mem->size);
    /* wasm memory starts zeroed; Rust's .bss relies on it. */
    memset(mem->data, 0, mem->size);
}

/* memory.grow: the memory is already as large as it can be (above); only a grow by 0
 * pages succeeds. A grow that changed the size would leave the bounds checks behind. */
uint32_t wasm_rt_grow_memory(wasm_rt_memory_t *mem, uint32_t delta)
{
    return delta == 0 ? mem->pages : (uint32_t)-1;
}

void wasm_rt_free_memory(wasm_rt_memory_t *mem) { (void)mem; }

/* ---- function types and tables ------------------------------------------------------------ */

#define MAX_FUNC_TYPES 1024
#define MAX_TYPE_ARITY 32

struct func_type {
    u8 params, results;
    u8 types[MAX_TYPE_ARITY];
};

static struct func_type func_types[MAX_FUNC_TYPES];
static u32 func_type_count;

static void __attribute__((noreturn)) runtime_fatal(const char *what)
{
    machine_fallback_puts("fatal: wasm runtime: ");
    machine_fallback_puts(what);
    machine_fallback_puts("\n");
    machine_fallback_exit_failure();
}

/* Identical signatures must get identical indices: call_indirect compares them. Index 0 is
 * left for the null funcref. */
uint32_t wasm_rt_register_func_type(uint32_t params, uint32_t results, ...)
{
    struct func_type t;
    va_list ap;
    u32 i;

    if (params + results > MAX_TYPE_ARITY)
        runtime_fatal("function type with too many parameters");
    memset(&t, 0, sizeof t);
    t.params = (u8)params;
    t.results = (u8)results;
    va_start(ap, results);
    for (i = 0; i < params + results; i++)
        t.types[i] = (u8)va_arg(ap, int);
    va_end(ap);

    for (i = 0; i < func_type_count; i++)
        if (memcmp(&func_types[i], &t, sizeof t) == 0)
            return i + 1;
    if (func_type_count == MAX_FUNC_TYPES)
        runtime_fatal("too many function types");
    func_types[func_type_count] = t;
    return ++func_type_count;
}

#define FUNCREF_POOL 8192
static wasm_rt_funcref_t funcref_pool[FUNCREF_POOL];
static u32 funcref_used;

void wasm_rt_allocate_funcref_table(wasm_rt_funcref_table_t *table, uint32_t elements,
                                    uint32_t max_elements)
{
    if (elements > FUNCREF_POOL - funcref_used)
        runtime_fatal("funcref table larger than the pool");
    table->data = &funcref_pool[funcref_used];
    table->size = elements;
    table->max_size = elements < max_elements ? elements : max_elements;
    funcref_used += elements;
}

void wasm_rt_free_funcref_table(wasm_rt_funcref_table_t *table) { (void)table; }

/* ---- libc ---------------------------------------------------------------------------------- */

/* `used`: with LTO, GCC may otherwise drop them before the generated code's calls resolve. */
__attribute__((used)) void *memcpy(void *dst, const void *src, size_t n)
{
    u8 *d = dst;
    const u8 *s = src;
    if ((((u32)d | (u32)s) & 3) == 0) {
        while (n >= 16) {
            ((u32 *)d)[0] = ((const u32 *)s)[0];
            ((u32 *)d)[1] = ((const u32 *)s)[1];
            ((u32 *)d)[2] = ((const u32 *)s)[2];
            ((u32 *)d)[3] = ((const u32 *)s)[3];
            d += 16;
            s += 16;
            n -= 16;
        }
        while (n >= 4) {
            *(u32 *)d = *(const u32 *)s;
            d += 4;
            s += 4;
            n -= 4;
        }
    }
    while (n--)
        *d++ = *s++;
    return dst;
}

__attribute__((used)) void *memmove(void *dst, const void *src, size_t n)
{
    u8 *d = dst;
    const u8 *s = src;
    if (d <= s || d >= s + n)
        return memcpy(dst, src, n);
    while (n--)
        d[n] = s[n];
    return dst;
}

__attribute__((used)) void *memset(void *dst, int c, size_t n)
{
    u8 *d = dst;
    u32 w = (u8)c;
    w |= w << 8;
    w |= w << 16;
    while (n && ((u32)d & 3)) {
        *d++ = (u8)c;
        n--;
    }
    while (n >= 16) {
        ((u32 *)d)[0] = w;
        ((u32 *)d)[1] = w;
        ((u32 *)d)[2] = w;
        ((u32 *)d)[3] = w;
        d += 16;
        n -= 16;
    }
    while (n--)
        *d++ = (u8)c;
    return dst;
}

__attribute__((used)) int memcmp(const void *a, const void *b, size_t n)
{
    const u8 *x = a, *y = b;
    for (; n; n--, x++, y++)
        if (*x != *y)
            return *x < *y ? -1 : 1;
    return 0;
}

size_t strlen(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

void abort(void) { runtime_fatal("abort"); }

void machine_assert_fail(const char *expr, const char *file, int line)
{
    machine_fallback_puts("fatal: assertion failed in generated code: ");
    machine_fallback_puts(expr);
    machine_fallback_puts(" at ");
    machine_fallback_puts(file);
    machine_fallback_puts(":");
    machine_fallback_hex((u32)line);
    machine_fallback_puts("\n");
    machine_fallback_exit_failure();
}

/* ---- libm -----------------------------------------------------------------------------------
 * Rounding is done on the IEEE bit patterns: exact, and free of fint/fintrz, which a real
 * 68040 does not implement. The callers (wasm_floor etc.) have already handled NaN. */

static double round_toward_zero(double x)
{
    union { double d; u64 u; } v = { x };
    int exp = (int)((v.u >> 52) & 0x7ff) - 1023;
    if (exp >= 52)
        return x;                         /* already integral (or inf) */
    if (exp < 0) {
        v.u &= 0x8000000000000000ull;     /* |x| < 1: signed zero */
        return v.d;
    }
    v.u &= ~(0x000fffffffffffffull >> exp);
    return v.d;
}

static float round_toward_zerof(float x)
{
    union { float f; u32 u; } v = { x };
    int exp = (int)((v.u >> 23) & 0xff) - 127;
    if (exp >= 23)
        return x;
    if (exp < 0) {
        v.u &= 0x80000000u;
        return v.f;
    }
    v.u &= ~(0x007fffffu >> exp);
    return v.f;
}

double trunc(double x) { return round_toward_zero(x); }
float truncf(float x) { return round_toward_zerof(x); }

double floor(double x)
{
    double t = round_toward_zero(x);
    return (t > x) ? t - 1.0 : t;
}

float floorf(float x)
{
    float t = round_toward_zerof(x);
    return (t > x) ? t - 1.0f : t;
}

double ceil(double x)
{
    double t = round_toward_zero(x);
    return (t < x) ? t + 1.0 : t;
}

float ceilf(float x)
{
    float t = round_toward_zerof(x);
    return (t < x) ? t + 1.0f : t;
}

/* Round half to even, as wasm's f64.nearest requires. x - t is exact for |x| < 2^52. */
double nearbyint(double x)
{
    double t = round_toward_zero(x);
    double frac = x - t;
    if (frac > 0.5 || (frac == 0.5 && round_toward_zero(t * 0.5) != t * 0.5))
        return t + 1.0;
    if (frac < -0.5 || (frac == -0.5 && round_toward_zero(t * 0.5) != t * 0.5))
        return t - 1.0;
    return (t == 0.0) ? (x < 0 ? -0.0 : 0.0) : t;
}

float nearbyintf(float x) { return (float)nearbyint((double)x); }

double fabs(double x)
{
    union { double d; u64 u; } v = { x };
    v.u &= 0x7fffffffffffffffull;
    return v.d;
}

float fabsf(float x)
{
    union { float f; u32 u; } v = { x };
    v.u &= 0x7fffffffu;
    return v.f;
}

/* fsqrt is in the 68881/68882 and the 68040 FPU. FPCR rounding precision is set to double at
 * boot (machine.c), so one instruction gives the correctly rounded double. */
double sqrt(double x)
{
    double r;
    __asm__("fsqrt.x %1,%0" : "=f"(r) : "f"(x));
    return r;
}

float sqrtf(float x) { return (float)sqrt((double)x); }
