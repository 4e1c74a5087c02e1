//! A simulated virtio device for host tests: it reads the rings straight from memory (as a
//! DMA engine does, past any cache model), and writes the used ring piecemeal: the element
//! first, idx in a separate step, so the driver's syncs are tested against a device that is
//! caught in the middle.

use super::queue::{Buffer, SplitQueue};
use crate::dma::sim::SimPlatform;
use crate::dma::{DmaRegion, Platform};
use alloc::vec::Vec;

const DESC_F_NEXT: u16 = 1;
const DESC_F_WRITE: u16 = 2;
const DESC_F_INDIRECT: u16 = 4;

fn raw_read(r: &DmaRegion<SimPlatform>, off: u32, buf: &mut [u8]) {
    for (i, b) in buf.iter_mut().enumerate() {
        // SAFETY: offsets computed from the queue's layout, inside the region.
        *b = unsafe { core::ptr::read_volatile(r.raw_pointer().add(off as usize + i)) };
    }
}

fn raw_write(r: &DmaRegion<SimPlatform>, off: u32, data: &[u8]) {
    for (i, &b) in data.iter().enumerate() {
        // SAFETY: as above.
        unsafe { core::ptr::write_volatile(r.raw_pointer().add(off as usize + i), b) };
    }
}

fn u16_at(r: &DmaRegion<SimPlatform>, off: u32) -> u16 {
    let mut b = [0u8; 2];
    raw_read(r, off, &mut b);
    u16::from_le_bytes(b)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    pub head: u16,
    pub bufs: Vec<Buffer>,
}

#[derive(Default)]
pub struct SimDevice {
    last_avail: u16,
    pub used_idx: u16,
}

impl SimDevice {
    /// Takes every chain the driver published since the last call.
    pub fn fetch(&mut self, q: &SplitQueue<SimPlatform>, platform: &SimPlatform) -> Vec<Chain> {
        let (ring, _, _) = q.regions();
        let idx = u16_at(ring, q.avail_off() + 2);
        let mut out = Vec::new();
        while self.last_avail != idx {
            let head = u16_at(ring, q.avail_ring_off(self.last_avail));
            self.last_avail = self.last_avail.wrapping_add(1);
            let mut bufs = Vec::new();
            let mut d = head;
            loop {
                let mut e = [0u8; 16];
                raw_read(ring, u32::from(d) * 16, &mut e);
                let addr = u64::from_le_bytes(e[0..8].try_into().unwrap()) as u32;
                let len = u32::from_le_bytes(e[8..12].try_into().unwrap());
                let flags = u16::from_le_bytes([e[12], e[13]]);
                let next = u16::from_le_bytes([e[14], e[15]]);
                if flags & DESC_F_INDIRECT != 0 {
                    let table = platform.pointer(addr);
                    for i in 0..(len / 16) as usize {
                        let mut t = [0u8; 16];
                        for (k, b) in t.iter_mut().enumerate() {
                            // SAFETY: the indirect table the driver pointed at.
                            *b = unsafe { core::ptr::read_volatile(table.add(i * 16 + k)) };
                        }
                        bufs.push(Buffer {
                            addr: u64::from_le_bytes(t[0..8].try_into().unwrap()) as u32,
                            len: u32::from_le_bytes(t[8..12].try_into().unwrap()),
                            device_writes: u16::from_le_bytes([t[12], t[13]]) & DESC_F_WRITE != 0,
                        });
                    }
                    break;
                }
                bufs.push(Buffer {
                    addr,
                    len,
                    device_writes: flags & DESC_F_WRITE != 0,
                });
                if flags & DESC_F_NEXT == 0 {
                    break;
                }
                d = next;
            }
            out.push(Chain { head, bufs });
        }
        out
    }

    /// Step 1 of a completion: the element at the next used slot.
    pub fn write_element(&self, q: &SplitQueue<SimPlatform>, slot: u16, id: u32, len: u32) {
        let (_, used, _) = q.regions();
        let off = q.used_elem_off(slot);
        raw_write(used, off, &id.to_le_bytes());
        raw_write(used, off + 4, &len.to_le_bytes());
    }

    /// Step 2: publish used idx.
    pub fn write_used_idx(&self, q: &SplitQueue<SimPlatform>, idx: u16) {
        let (_, used, _) = q.regions();
        raw_write(used, 2, &idx.to_le_bytes());
    }

    /// A whole completion, in two steps.
    pub fn complete(&mut self, q: &SplitQueue<SimPlatform>, head: u16, len: u32) {
        self.write_element(q, self.used_idx, head.into(), len);
        self.used_idx = self.used_idx.wrapping_add(1);
        self.write_used_idx(q, self.used_idx);
    }

    pub fn set_no_notify(&self, q: &SplitQueue<SimPlatform>, on: bool) {
        let (_, used, _) = q.regions();
        raw_write(used, 0, &u16::from(on).to_le_bytes());
    }

    pub fn set_avail_event(&self, q: &SplitQueue<SimPlatform>, v: u16) {
        let (_, used, _) = q.regions();
        raw_write(used, q.avail_event_off(), &v.to_le_bytes());
    }

    pub fn avail_flags(&self, q: &SplitQueue<SimPlatform>) -> u16 {
        let (ring, _, _) = q.regions();
        u16_at(ring, q.avail_off())
    }

    pub fn used_event(&self, q: &SplitQueue<SimPlatform>) -> u16 {
        let (ring, _, _) = q.regions();
        u16_at(ring, q.used_event_off())
    }
}
