//! The memory-model rewrite of wasm2c's output (see docs/toolchain.md, "natural order").
//!
//! wasm2c 1.0.32 emits one fixed block, `#if WABT_BIG_ENDIAN ... #else ... #endif`, that
//! defines how linear memory is laid out and accessed. We replace that whole block with our
//! natural-order model. The block is pinned by a hash: any other wabt release may lay memory
//! out differently, and a silent mismatch would corrupt every DMA buffer, so an unknown block
//! is refused with the wabt version named.

const BLOCK_START: &str = "#if WABT_BIG_ENDIAN\n";
/// The first line after the block in wasm2c 1.0.32's output.
const BLOCK_FOLLOWER: &str = "\nDEFINE_LOAD(i32_load, u32, u32, u32)\n";
/// FNV-1a 64 of the block (start marker through its `#endif` line) in wabt 1.0.32.
pub const PINNED_BLOCK_HASH: u64 = 0x9188_722d_2b62_a09e;
pub const PINNED_WABT: &str = "1.0.32";

const NATURAL_MODEL: &str = include_str!("memory_model.h");

pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[derive(Debug, PartialEq, Eq)]
pub enum RewriteError {
    NoBlock,
    UnknownBlock { hash: u64 },
}

/// Finds the memory-model block: (start, end) byte offsets, end just after its `#endif\n`.
fn find_block(c: &str) -> Option<(usize, usize)> {
    let start = c.find(BLOCK_START)?;
    let follower = start + c[start..].find(BLOCK_FOLLOWER)?;
    // The block ends with the "#endif\n" right before the blank line and the follower.
    let end = follower;
    c[start..end].ends_with("#endif\n").then_some((start, end))
}

/// Returns the generated C with the memory model replaced.
pub fn rewrite(c: &str) -> Result<String, RewriteError> {
    let (start, end) = find_block(c).ok_or(RewriteError::NoBlock)?;
    let hash = fnv1a64(&c.as_bytes()[start..end]);
    if hash != PINNED_BLOCK_HASH {
        return Err(RewriteError::UnknownBlock { hash });
    }
    let mut out = String::with_capacity(c.len() + NATURAL_MODEL.len());
    out.push_str(&c[..start]);
    out.push_str(NATURAL_MODEL);
    out.push_str(&c[end..]);
    Ok(out)
}

/// wasm2c 1.0.32's call-depth guard: a counter in memory, incremented, compared and stored on
/// every call, decremented on every return.
const DEPTH_GUARD: &str = "#define FUNC_PROLOGUE                                            \\
  if (++wasm_rt_call_stack_depth > WASM_RT_MAX_CALL_STACK_DEPTH) \\
    TRAP(EXHAUSTION);

#define FUNC_EPILOGUE --wasm_rt_call_stack_depth
";

/// The guard that replaces it: the stack pointer against a limit (boot/entry.S,
/// `w2k_stack_limit`, 32 KiB above the native stack's bottom, lowered for the report of a
/// fatal trap), three instructions at entry and nothing at return. It guards what the counter stood for, the native stack's bytes, and
/// counts them rather than frames.
const SP_GUARD: &str = "extern char* w2k_stack_limit;
#define FUNC_PROLOGUE                                                          \\
  do {                                                                         \\
    char* w2k_sp;                                                              \\
    __asm__(\"move.l %%sp,%0\" : \"=r\"(w2k_sp));                             \\
    if (UNLIKELY(w2k_sp < w2k_stack_limit))                                    \\
      TRAP(EXHAUSTION);                                                        \\
  } while (0)

#define FUNC_EPILOGUE
";

/// Replaces wasm2c's call-depth counter with the stack-pointer guard; None when the pinned
/// text is not there (another wabt).
pub fn stack_guard(c: &str) -> Option<String> {
    c.contains(DEPTH_GUARD)
        .then(|| c.replacen(DEPTH_GUARD, SP_GUARD, 1))
}

/// How wasm2c 1.0.32 calls the machine layer's compiler barrier (an import taking the
/// machine instance).
const BARRIER_CALL: &str = "(*Z_machineZ_barrier)(instance->Z_machine_instance);";
/// What replaces it: the barrier itself, in place. An empty asm with a memory clobber keeps
/// GCC from moving linear-memory loads and stores across it, as the opaque call did
/// (toolchain.md rule 3), without the call: the argument's push, the JSR, the RTS, the
/// stack adjust and the caller-saved registers around it, four times per request.
const BARRIER_INLINE: &str = "__asm__ volatile(\"\" ::: \"memory\");";

/// Replaces every call of the barrier import with the barrier in place; None when there is
/// no call in the pinned form (another wabt, or a kernel that makes no DMA sync).
pub fn inline_barrier(c: &str) -> Option<(String, usize)> {
    let n = c.matches(BARRIER_CALL).count();
    (n > 0).then(|| (c.replace(BARRIER_CALL, BARRIER_INLINE), n))
}

/// What [`constant_offsets`] did: sites rewritten to the `_at` form, and sites kept as
/// wasm2c wrote them (an offset too large for the one-compare check).
#[derive(Debug, PartialEq, Eq)]
pub struct OffsetSites {
    pub rewritten: usize,
    pub kept: usize,
}

/// How wasm2c 1.0.32 passes the address of every linear-memory access.
const MEM_ARG: &str = "(&instance->w2c_memory, (u64)(";

/// The module's initial linear memory in bytes (wasm2c's `wasm_rt_allocate_memory` call in
/// the instance's init): memory never shrinks below it.
fn initial_memory(c: &str) -> Option<u64> {
    let key = "wasm_rt_allocate_memory(&instance->w2c_memory, ";
    let at = c.find(key)? + key.len();
    let pages: u64 = c[at..].split(',').next()?.trim().parse().ok()?;
    Some(pages * 65536)
}

/// Whether `name` is one of the accessors the memory model defines with an `_at` form.
fn is_accessor(name: &str) -> bool {
    let Some(rest) = ["i32_", "i64_", "f32_", "f64_"]
        .iter()
        .find_map(|p| name.strip_prefix(p))
    else {
        return false;
    };
    (rest.starts_with("load") || rest.starts_with("store"))
        && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Rewrites every access `NAME(&instance->w2c_memory, (u64)(VAR) + OFF...` (or without
/// `+ OFF`) to `NAME_at(&instance->w2c_memory, VAR, OFFu...`, whose bounds check is one 32-bit
/// compare (memory_model.h, `W2K_AT_IN_BOUNDS`), where OFF + 8 fits the initial memory: the
/// check is then exactly wasm's. Other sites are kept.
///
/// None when `c` has no allocation call to read the initial size from.
pub fn constant_offsets(c: &str) -> Option<(String, OffsetSites)> {
    let min = initial_memory(c)?;
    let mut out = String::with_capacity(c.len() + c.len() / 8);
    let mut sites = OffsetSites {
        rewritten: 0,
        kept: 0,
    };
    let mut rest = c;
    while let Some(i) = rest.find(MEM_ARG) {
        let (before, after) = rest.split_at(i);
        let args = &after[MEM_ARG.len()..];
        let name_start = before
            .rfind(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_'))
            .map_or(0, |k| k + 1);
        match parse_site(args) {
            Some((var, off, used)) if is_accessor(&before[name_start..]) && off + 8 <= min => {
                out.push_str(before);
                out.push_str("_at(&instance->w2c_memory, ");
                out.push_str(var);
                out.push_str(", ");
                out.push_str(&off.to_string());
                out.push('u');
                rest = &args[used..];
                sites.rewritten += 1;
            }
            _ => {
                out.push_str(before);
                out.push_str(MEM_ARG);
                rest = args;
                sites.kept += 1;
            }
        }
    }
    out.push_str(rest);
    Some((out, sites))
}

/// `VAR) + OFFu` or `VAR)` (then `)` or `,`): the variable, the offset and the bytes up to
/// that closing character.
fn parse_site(args: &str) -> Option<(&str, u64, usize)> {
    let var_end = args.find(')')?;
    let var = &args[..var_end];
    if var.is_empty() || !var.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return None;
    }
    let mut used = var_end + 1;
    let mut off = 0u64;
    if let Some(t) = args[used..].strip_prefix(" + ") {
        let digits = t.bytes().take_while(u8::is_ascii_digit).count();
        off = t[..digits].parse().ok()?;
        used += 3 + digits;
        if args[used..].starts_with('u') {
            used += 1;
        }
    }
    matches!(args[used..].chars().next(), Some(')' | ',')).then_some((var, off, used))
}

/// The block's hash in `c`, for diagnostics.
#[cfg(test)]
pub fn block_hash(c: &str) -> Option<u64> {
    find_block(c).map(|(s, e)| fnv1a64(&c.as_bytes()[s..e]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_barrier_import_is_replaced_by_a_memory_clobber() {
        let c = "void f(w2c_kernel* instance) {\n  i32_store(x);\n  (*Z_machineZ_barrier)(instance->Z_machine_instance);\n  y = i32_load(z);\n  (*Z_machineZ_barrier)(instance->Z_machine_instance);\n}\n";
        let (out, n) = inline_barrier(c).expect("two calls");
        assert_eq!(n, 2);
        assert_eq!(
            out,
            "void f(w2c_kernel* instance) {\n  i32_store(x);\n  __asm__ volatile(\"\" ::: \"memory\");\n  y = i32_load(z);\n  __asm__ volatile(\"\" ::: \"memory\");\n}\n"
        );
        // Another call form (another wabt) is not guessed at.
        assert_eq!(inline_barrier("Z_machineZ_barrier(instance);"), None);
    }

    fn generated(block_body: &str) -> String {
        format!(
            "/* head */\n#define TRAP(x) x\n{BLOCK_START}{block_body}#endif\n\nDEFINE_LOAD(i32_load, u32, u32, u32)\nrest\n"
        )
    }

    #[test]
    fn unknown_block_is_refused_with_its_hash() {
        let c = generated("something else\n#else\nother\n");
        let err = rewrite(&c).unwrap_err();
        assert_eq!(
            err,
            RewriteError::UnknownBlock {
                hash: block_hash(&c).unwrap()
            }
        );
    }

    #[test]
    fn missing_block_is_refused() {
        assert_eq!(rewrite("int x;\n"), Err(RewriteError::NoBlock));
        // start marker without the follower line
        assert_eq!(
            rewrite("#if WABT_BIG_ENDIAN\n#endif\n"),
            Err(RewriteError::NoBlock)
        );
    }

    #[test]
    fn the_depth_counter_becomes_a_stack_pointer_check() {
        let c = format!("#if WASM_RT_USE_STACK_DEPTH_COUNT\n{DEPTH_GUARD}#else\n#endif\n");
        let out = stack_guard(&c).unwrap();
        assert!(!out.contains("wasm_rt_call_stack_depth"));
        assert!(out.contains("w2k_sp < w2k_stack_limit"));
        assert!(out.contains("#define FUNC_EPILOGUE\n"));
        assert_eq!(stack_guard("#define FUNC_PROLOGUE\n"), None);
    }

    const INIT: &str = "  wasm_rt_allocate_memory(&instance->w2c_memory, 2, 65536);\n";

    #[test]
    fn constant_offsets_rewrites_loads_and_stores() {
        let c = format!(
            "{INIT}x = i32_load(&instance->w2c_memory, (u64)(w2c_i0) + 508u);\n\
             i64_store8(&instance->w2c_memory, (u64)(w2c_i1) + 24, w2c_j0);\n\
             y = i32_load8_u(&instance->w2c_memory, (u64)(w2c_l12));\n\
             f64_store(&instance->w2c_memory, (u64)(w2c_p0), w2c_d1);\n"
        );
        let (out, sites) = constant_offsets(&c).unwrap();
        assert_eq!(
            out,
            format!(
                "{INIT}x = i32_load_at(&instance->w2c_memory, w2c_i0, 508u);\n\
                 i64_store8_at(&instance->w2c_memory, w2c_i1, 24u, w2c_j0);\n\
                 y = i32_load8_u_at(&instance->w2c_memory, w2c_l12, 0u);\n\
                 f64_store_at(&instance->w2c_memory, w2c_p0, 0u, w2c_d1);\n"
            )
        );
        assert_eq!(
            sites,
            OffsetSites {
                rewritten: 4,
                kept: 0
            }
        );
    }

    #[test]
    fn constant_offsets_keeps_what_the_one_compare_check_cannot_take() {
        // Initial memory 131072 bytes: an 8-byte access at offset 131064 is the last that fits.
        let c = format!(
            "{INIT}a = i64_load(&instance->w2c_memory, (u64)(w2c_i0) + 131064u);\n\
             b = i64_load(&instance->w2c_memory, (u64)(w2c_i0) + 131065u);\n\
             c = i32_load(&instance->w2c_memory, (u64)(w2c_i0 + 1) + 4u);\n\
             d = not_an_accessor(&instance->w2c_memory, (u64)(w2c_i0) + 4u);\n"
        );
        let (out, sites) = constant_offsets(&c).unwrap();
        assert!(out.contains("a = i64_load_at(&instance->w2c_memory, w2c_i0, 131064u);"));
        assert!(out.contains("b = i64_load(&instance->w2c_memory, (u64)(w2c_i0) + 131065u);"));
        assert!(out.contains("c = i32_load(&instance->w2c_memory, (u64)(w2c_i0 + 1) + 4u);"));
        assert!(out.contains("d = not_an_accessor(&instance->w2c_memory, (u64)(w2c_i0) + 4u);"));
        assert_eq!(
            sites,
            OffsetSites {
                rewritten: 1,
                kept: 3
            }
        );
        assert_eq!(
            constant_offsets("x = i32_load(&instance->w2c_memory, (u64)(w2c_i0));"),
            None
        );
    }

    /// The memory model's two bounds checks, compiled by the host C compiler (`cc`, which
    /// cargo needs as its linker anyway) with stub definitions, against wasm's rule (an access
    /// of n bytes at base + off traps iff base + off + n > size, in exact arithmetic) for
    /// edge bases and offsets, loads and stores of 1, 2, 4 and 8 bytes.
    #[test]
    fn the_one_compare_check_traps_exactly_where_wasm_does() {
        let dir = tempfile::tempdir().unwrap();
        let c = dir.path().join("check.c");
        std::fs::write(&c, BOUNDS_TEST_C).unwrap();
        let exe = dir.path().join("check");
        let model_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src");
        let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
        let built = std::process::Command::new(&cc)
            .args(["-O2", "-w", "-I", model_dir, "-o"])
            .arg(&exe)
            .arg(&c)
            .output()
            .expect("a host C compiler (cc)");
        assert!(
            built.status.success(),
            "{}",
            String::from_utf8_lossy(&built.stderr)
        );
        let run = std::process::Command::new(&exe).output().unwrap();
        let out = String::from_utf8_lossy(&run.stdout);
        assert!(run.status.success(), "{out}");
        // Every (base, off, width, load/store) case ran, each both ways.
        assert!(out.contains("cases 1280 mismatches 0"), "{out}");
    }

    const BOUNDS_TEST_C: &str = r#"
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
typedef uint8_t u8; typedef int8_t s8; typedef uint16_t u16; typedef int16_t s16;
typedef uint32_t u32; typedef int32_t s32; typedef uint64_t u64; typedef int64_t s64;
typedef float f32; typedef double f64;
typedef struct { u8 *data; u32 pages; u32 max_pages; u32 size; } wasm_rt_memory_t;
#define LIKELY(x) __builtin_expect(!!(x), 1)
#define wasm_rt_memcpy memcpy
#define RANGE_CHECK(mem, offset, len)
static jmp_buf trap_at;
#define TRAP(x) longjmp(trap_at, 1)
#define SIZE 131072u
/* The _at form's bound: on the m68k a patched link-time symbol (memory_model.h). */
#define W2K_BOUND SIZE
#include "memory_model.h"
DEFINE_LOAD(i32_load8_u, u8, u32, u32)
DEFINE_LOAD(i32_load16_u, u16, u32, u32)
DEFINE_LOAD(i32_load, u32, u32, u32)
DEFINE_LOAD(i64_load, u64, u64, u64)
DEFINE_STORE(i32_store8, u8, u32)
DEFINE_STORE(i32_store16, u16, u32)
DEFINE_STORE(i32_store, u32, u32)
DEFINE_STORE(i64_store, u64, u64)
u8 __linear_memory_base[SIZE];
static wasm_rt_memory_t mem = { __linear_memory_base, 2, 2, SIZE };
/* Whether the access traps: kind 0-3 loads of 1, 2, 4, 8 bytes, 4-7 stores; at: the _at form. */
static int traps(int kind, int at, u32 base, u32 off) {
  if (setjmp(trap_at)) return 1;
  volatile u64 sink = 0;
  u64 a = (u64)base + off;
  switch (kind * 2 + at) {
  case 0: sink = i32_load8_u(&mem, a); break;    case 1: sink = i32_load8_u_at(&mem, base, off); break;
  case 2: sink = i32_load16_u(&mem, a); break;   case 3: sink = i32_load16_u_at(&mem, base, off); break;
  case 4: sink = i32_load(&mem, a); break;       case 5: sink = i32_load_at(&mem, base, off); break;
  case 6: sink = i64_load(&mem, a); break;       case 7: sink = i64_load_at(&mem, base, off); break;
  case 8: i32_store8(&mem, a, 1); break;         case 9: i32_store8_at(&mem, base, off, 1); break;
  case 10: i32_store16(&mem, a, 1); break;       case 11: i32_store16_at(&mem, base, off, 1); break;
  case 12: i32_store(&mem, a, 1); break;         case 13: i32_store_at(&mem, base, off, 1); break;
  case 14: i64_store(&mem, a, 1); break;         case 15: i64_store_at(&mem, base, off, 1); break;
  }
  (void)sink;
  return 0;
}
int main(void) {
  static const u32 bases[] = { 0, 1, 7, 8, SIZE - 9, SIZE - 8, SIZE - 5, SIZE - 4, SIZE - 2, SIZE - 1,
                               SIZE, SIZE + 1, 0x7fffffffu, 0xfffffff8u, 0xfffffffcu, 0xffffffffu };
  static const u32 offs[] = { 0, 1, 4, 8, 508, 65536, SIZE - 16, SIZE - 9, SIZE - 8, 2 };
  static const u32 width[] = { 1, 2, 4, 8 };
  int cases = 0, mismatches = 0;
  for (unsigned b = 0; b < sizeof bases / sizeof *bases; b++)
    for (unsigned o = 0; o < sizeof offs / sizeof *offs; o++)
      for (int kind = 0; kind < 8; kind++)
        for (int at = 0; at < 2; at++) {
          u64 end = (u64)bases[b] + offs[o] + width[kind & 3];
          int want = end > SIZE;
          int got = traps(kind, at, bases[b], offs[o]);
          if (at) cases++;
          if (got != want) {
            mismatches++;
            printf("kind %d at %d base %#x off %#x: trap %d, wasm %d\n", kind, at, bases[b], offs[o], got, want);
          }
        }
  printf("cases %d mismatches %d\n", cases, mismatches);
  return mismatches != 0;
}
"#;

    #[test]
    fn fnv_reference_values() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn natural_model_defines_what_the_generated_code_uses() {
        for name in ["DEFINE_LOAD", "DEFINE_STORE", "LOAD_DATA", "load_data"] {
            assert!(NATURAL_MODEL.contains(name), "{name}");
        }
        assert!(!NATURAL_MODEL.contains("WABT_BIG_ENDIAN"));
    }
}
