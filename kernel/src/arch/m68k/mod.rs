//! The m68k (68020-68060): the machine layer's imports, the interrupt priority level, CPU
//! identification, cache control and the bus_dma sync steps for each cache.
//!
//! Knows nothing about the board (addresses, interrupt numbers) or about virtio.
pub mod cache;
pub mod cpu;
#[cfg(target_arch = "wasm32")]
pub mod dma;
pub mod dma_sync;
pub mod ipl;
#[cfg(target_arch = "wasm32")]
pub mod machine;
pub mod traps;
