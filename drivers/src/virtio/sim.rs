//! A simulated virtio device for host tests: it reads the rings straight from memory (as a
//! DMA engine does, past any cache model), and writes the used ring piecemeal: the element
//! first, idx in a separate step, so the driver's syncs are tested against a device that is
//! caught in the middle.
//!
//! It knows the rings only as a device does: the three addresses the driver gives the
//! transport (`SplitQueue::addresses`) and the field layout of virtio 1.2, 2.7 (descriptor 16
//! bytes; avail flags, idx, ring[], used_event; used flags, idx, ring[{id, len}], avail_event;
//! little-endian), never the queue's own offset helpers, so a layout bug shows here.

use super::queue::{Buffer, SplitQueue};
use crate::dma::sim::SimPlatform;
use crate::dma::Platform;
use alloc::vec::Vec;

const DESC_F_NEXT: u16 = 1;
const DESC_F_WRITE: u16 = 2;
const DESC_F_INDIRECT: u16 = 4;

/// Where `len` bytes at physical `phys` live: inside one of the queue's regions, or a panic
/// (the driver gave the device an address outside its ring memory).
fn at(q: &SplitQueue<SimPlatform>, phys: u32, len: u32) -> *mut u8 {
    let (ring, used, _) = q.regions();
    for r in [ring, used] {
        if phys >= r.phys() && phys + len <= r.phys() + r.len() {
            // SAFETY: inside the region's memory, as just checked.
            return unsafe { r.raw_pointer().add((phys - r.phys()) as usize) };
        }
    }
    panic!("ring address {phys:#x}+{len} is outside the queue's memory");
}

fn raw_read(q: &SplitQueue<SimPlatform>, phys: u32, buf: &mut [u8]) {
    let p = at(q, phys, buf.len() as u32);
    for (i, b) in buf.iter_mut().enumerate() {
        // SAFETY: `at` checked the whole range.
        *b = unsafe { core::ptr::read_volatile(p.add(i)) };
    }
}

fn raw_write(q: &SplitQueue<SimPlatform>, phys: u32, data: &[u8]) {
    let p = at(q, phys, data.len() as u32);
    for (i, &b) in data.iter().enumerate() {
        // SAFETY: as above.
        unsafe { core::ptr::write_volatile(p.add(i), b) };
    }
}

fn u16_at(q: &SplitQueue<SimPlatform>, phys: u32) -> u16 {
    let mut b = [0u8; 2];
    raw_read(q, phys, &mut b);
    u16::from_le_bytes(b)
}

// Field offsets (virtio 1.2, 2.7.6 and 2.7.8).
const AVAIL_FLAGS: u32 = 0;
const AVAIL_IDX: u32 = 2;
const AVAIL_RING: u32 = 4;
const USED_FLAGS: u32 = 0;
const USED_IDX: u32 = 2;
const USED_RING: u32 = 4;
const USED_ELEM: u32 = 8;

fn desc(q: &SplitQueue<SimPlatform>) -> u32 {
    q.addresses().0
}
fn avail(q: &SplitQueue<SimPlatform>) -> u32 {
    q.addresses().1
}
fn used(q: &SplitQueue<SimPlatform>) -> u32 {
    q.addresses().2
}
fn size(q: &SplitQueue<SimPlatform>) -> u32 {
    q.size().into()
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
        let idx = u16_at(q, avail(q) + AVAIL_IDX);
        let mut out = Vec::new();
        while self.last_avail != idx {
            let slot = u32::from(self.last_avail) % size(q);
            let head = u16_at(q, avail(q) + AVAIL_RING + 2 * slot);
            self.last_avail = self.last_avail.wrapping_add(1);
            let mut bufs = Vec::new();
            let mut d = head;
            loop {
                let mut e = [0u8; 16];
                raw_read(q, desc(q) + u32::from(d) * 16, &mut e);
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
        let elem = used(q) + USED_RING + USED_ELEM * (u32::from(slot) % size(q));
        raw_write(q, elem, &id.to_le_bytes());
        raw_write(q, elem + 4, &len.to_le_bytes());
    }

    /// Step 2: publish used idx.
    pub fn write_used_idx(&self, q: &SplitQueue<SimPlatform>, idx: u16) {
        raw_write(q, used(q) + USED_IDX, &idx.to_le_bytes());
    }

    /// A whole completion, in two steps.
    pub fn complete(&mut self, q: &SplitQueue<SimPlatform>, head: u16, len: u32) {
        self.write_element(q, self.used_idx, head.into(), len);
        self.used_idx = self.used_idx.wrapping_add(1);
        self.write_used_idx(q, self.used_idx);
    }

    pub fn set_no_notify(&self, q: &SplitQueue<SimPlatform>, on: bool) {
        raw_write(q, used(q) + USED_FLAGS, &u16::from(on).to_le_bytes());
    }

    pub fn set_avail_event(&self, q: &SplitQueue<SimPlatform>, v: u16) {
        let avail_event = used(q) + USED_RING + USED_ELEM * size(q);
        raw_write(q, avail_event, &v.to_le_bytes());
    }

    pub fn avail_flags(&self, q: &SplitQueue<SimPlatform>) -> u16 {
        u16_at(q, avail(q) + AVAIL_FLAGS)
    }

    pub fn used_event(&self, q: &SplitQueue<SimPlatform>) -> u16 {
        u16_at(q, avail(q) + AVAIL_RING + 2 * size(q))
    }
}
