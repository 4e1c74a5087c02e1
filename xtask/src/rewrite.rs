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

/// The block's hash in `c`, for diagnostics.
#[cfg(test)]
pub fn block_hash(c: &str) -> Option<u64> {
    find_block(c).map(|(s, e)| fnv1a64(&c.as_bytes()[s..e]))
}

#[cfg(test)]
mod tests {
    use super::*;

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
