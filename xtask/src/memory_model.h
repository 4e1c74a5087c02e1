/* Linear memory in natural byte order (inserted by the xtask in place of wasm2c's
 * big-endian model, which stores memory byte-reversed so that loads are native).
 *
 * Wasm address p lives at mem->data + p, which the machine layer places at physical
 * LINEAR_MEMORY_BASE + p: a device doing DMA sees each byte where Rust put it. Wasm values
 * are little-endian, so multi-byte loads and stores swap on this big-endian CPU; bytes do not.
 *
 * Bounds: every access is checked (the only wall between Rust and kernel memory). Memory is
 * under 4 GiB, so the check is "no carry out of the 32-bit address, and addr <= size - n",
 * cheaper on the m68k than wasm2c's 64-bit comparison; at the sites the xtask rewrites to the
 * `_at` form (almost all: see W2K_AT_IN_BOUNDS) it is one 32-bit compare.
 */
static inline __attribute__((always_inline)) u16 w2k_swap16(u16 v) { return (u16)((v << 8) | (v >> 8)); }

/* Two 32-bit rotates, meant to avoid GCC's own bswap (ror.w, swap, ror.w), slow under QEMU;
 * GCC 12 recognizes the pattern and emits ror.w, swap, ror.w anyway (docs/toolchain.md). */
static inline __attribute__((always_inline)) u32 w2k_swap32(u32 v)
{
  u32 r8 = (v >> 8) | (v << 24);
  u32 l8 = (v << 8) | (v >> 24);
  return (r8 & 0xff00ff00u) | (l8 & 0x00ff00ffu);
}

static inline __attribute__((always_inline)) u64 w2k_swap64(u64 v)
{
  return ((u64)w2k_swap32((u32)v) << 32) | w2k_swap32((u32)(v >> 32));
}

static inline f32 w2k_swapf32(f32 v)
{
  u32 b;
  memcpy(&b, &v, 4);
  b = w2k_swap32(b);
  memcpy(&v, &b, 4);
  return v;
}

static inline f64 w2k_swapf64(f64 v)
{
  u64 b;
  memcpy(&b, &v, 8);
  b = w2k_swap64(b);
  memcpy(&v, &b, 8);
  return v;
}

#define W2K_LE(x)                            \
  _Generic((x),                              \
      u8: (x),                               \
      s8: (x),                               \
      u16: w2k_swap16((u16)(x)),             \
      s16: (s16)w2k_swap16((u16)(x)),        \
      u32: w2k_swap32((u32)(x)),             \
      s32: (s32)w2k_swap32((u32)(x)),        \
      u64: w2k_swap64((u64)(x)),             \
      s64: (s64)w2k_swap64((u64)(x)),        \
      f32: w2k_swapf32((f32)(x)),            \
      f64: w2k_swapf64((f64)(x)))

#define W2K_IN_BOUNDS(mem, addr, n) \
  LIKELY(((u32)((addr) >> 32)) == 0 && (u32)(addr) <= (mem)->size - (u32)(n))

static inline void load_data(void* dest, const void* src, size_t n) {
  memcpy(dest, src, n);
}
#define LOAD_DATA(m, o, i, s)      \
  do {                             \
    RANGE_CHECK((&m), o, s);       \
    load_data(&(m.data[o]), i, s); \
  } while (0)

/* The same check for an access at base + off, off being the site's constant: wasm2c passes
 * (u64)base + off, whose carry word GCC keeps in a register pair (often spilled to the
 * stack); the xtask rewrites each site to name_at(mem, base, off) where off + 8 is at most
 * the module's initial memory size (rewrite.rs). The size is at least that, so
 * size - (off + n) cannot wrap, and base <= size - (off + n) is exactly base + off + n <= size:
 * the same bound, one 32-bit compare, and base + off cannot wrap once it holds.
 *
 * The size here is W2K_BOUND: the address of the absolute symbol __linear_memory_bound, so
 * that GCC folds size - (off + n) into the compare's immediate (cmp.l #__linear_memory_bound-K)
 * instead of loading mem->size after every store (a store may alias the instance). The
 * symbol's link-time value is a placeholder: the xtask lists every place the linker wrote it
 * (section .bound_sites) and the machine layer adds the real size to each before any Rust
 * runs, the size linear memory then keeps (boot/runtime.c, wasm_rt_allocate_memory). */
#ifndef W2K_BOUND
extern u8 __linear_memory_bound[];
/* What GCC may assume of the size: at least the placeholder (8 MiB, linker.ld), which the
 * machine layer refuses to go below, and at most 65535 pages. With it, base <= size - 12
 * implies base <= size - 8 (no wrap), and GCC drops such a second check as it would with a
 * number. */
static inline __attribute__((always_inline)) u32 w2k_bound(void)
{
  u32 size = (u32)(uintptr_t)__linear_memory_bound;
  if (size < 0x00800000u || size > 0xffff0000u)
    __builtin_unreachable();
  return size;
}
#define W2K_BOUND w2k_bound()
#endif
#define W2K_AT_IN_BOUNDS(mem, base, off, n) \
  LIKELY((u32)(base) <= W2K_BOUND - ((u32)(off) + (u32)(n)))

/* The rewritten sites are all the kernel's one memory, whose data the machine layer places
 * at the link-time address __linear_memory_base (boot/runtime.c, wasm_rt_allocate_memory):
 * addressed as a constant, it is not reloaded from the instance after every call. */
extern u8 __linear_memory_base[];

#define DEFINE_LOAD(name, t1, t2, t3)                                \
  static inline __attribute__((always_inline)) t3 name(wasm_rt_memory_t* mem, u64 addr) { \
    t1 result;                                                       \
    if (!W2K_IN_BOUNDS(mem, addr, sizeof(t1)))                       \
      TRAP(OOB);                                                     \
    wasm_rt_memcpy(&result, &mem->data[(u32)addr], sizeof(t1));      \
    result = W2K_LE(result);                                         \
    return (t3)(t2)result;                                           \
  }                                                                  \
  static inline __attribute__((always_inline)) t3 name##_at(wasm_rt_memory_t* mem, u32 base, u32 off) { \
    t1 result;                                                       \
    if (!W2K_AT_IN_BOUNDS(mem, base, off, sizeof(t1)))               \
      TRAP(OOB);                                                     \
    wasm_rt_memcpy(&result, &__linear_memory_base[base + off], sizeof(t1)); \
    result = W2K_LE(result);                                         \
    return (t3)(t2)result;                                           \
  }

#define DEFINE_STORE(name, t1, t2)                                     \
  static inline __attribute__((always_inline)) void name(wasm_rt_memory_t* mem, u64 addr, t2 value) { \
    t1 wrapped = (t1)value;                                            \
    if (!W2K_IN_BOUNDS(mem, addr, sizeof(t1)))                         \
      TRAP(OOB);                                                       \
    wrapped = W2K_LE(wrapped);                                         \
    wasm_rt_memcpy(&mem->data[(u32)addr], &wrapped, sizeof(t1));       \
  }                                                                    \
  static inline __attribute__((always_inline)) void name##_at(wasm_rt_memory_t* mem, u32 base, u32 off, t2 value) { \
    t1 wrapped = (t1)value;                                            \
    if (!W2K_AT_IN_BOUNDS(mem, base, off, sizeof(t1)))                 \
      TRAP(OOB);                                                       \
    wrapped = W2K_LE(wrapped);                                         \
    wasm_rt_memcpy(&__linear_memory_base[base + off], &wrapped, sizeof(t1)); \
  }
