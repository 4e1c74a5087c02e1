//! virtio: the mmio transport and the split virtqueue (machine-independent).
pub mod mmio;
pub mod queue;

#[cfg(test)]
pub(crate) mod sim;
#[cfg(test)]
mod tests;
