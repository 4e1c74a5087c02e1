//! A simulated virtio-mmio block device for host tests of [`VirtioBlk`](super::virtio_blk).
//!
//! It is a [`Bus`]: the driver reaches it only through the mmio registers, and it finds the
//! rings at the addresses the driver wrote to QueueDesc/QueueDriver/QueueDevice. It reads and
//! writes them straight from memory with its own layout, taken from the spec (virtio 1.2,
//! 2.7.5-2.7.8), not from `SplitQueue`'s helpers, so a layout bug in the driver shows as a
//! wrong request here. Requests are served when the driver notifies (as QEMU does, inside
//! the register write), unless `hold` is set.
//!
//! Every behaviour a conformant device may choose is a knob (config values, GET_ID support,
//! limits); so are some it may not (an understated used len, a bad status byte, no
//! completion), to reach the driver's error paths.

use super::request::{
    parse_header, parse_segment, HEADER_LEN, SEGMENT_LEN, VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_OK,
    VIRTIO_BLK_S_UNSUPP, VIRTIO_BLK_T_DISCARD, VIRTIO_BLK_T_FLUSH, VIRTIO_BLK_T_GET_ID,
    VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT, VIRTIO_BLK_T_WRITE_ZEROES,
};
use crate::bus::Bus;
use crate::dma::sim::SimPlatform;
use crate::dma::{DmaTag, Platform};
use core::cell::RefCell;
use std::string::String;
use std::vec;
use std::vec::Vec;

// virtio-mmio registers (virtio 1.2, 4.2.2), little-endian.
const MAGIC_VALUE: u32 = 0x000;
const VERSION: u32 = 0x004;
const DEVICE_ID: u32 = 0x008;
const VENDOR_ID: u32 = 0x00c;
const DEVICE_FEATURES: u32 = 0x010;
const DEVICE_FEATURES_SEL: u32 = 0x014;
const DRIVER_FEATURES: u32 = 0x020;
const DRIVER_FEATURES_SEL: u32 = 0x024;
const QUEUE_SEL: u32 = 0x030;
const QUEUE_NUM_MAX: u32 = 0x034;
const QUEUE_NUM: u32 = 0x038;
const QUEUE_READY: u32 = 0x044;
const QUEUE_NOTIFY: u32 = 0x050;
const INTERRUPT_STATUS: u32 = 0x060;
const INTERRUPT_ACK: u32 = 0x064;
const STATUS: u32 = 0x070;
const QUEUE_DESC_LOW: u32 = 0x080;
const QUEUE_DRIVER_LOW: u32 = 0x090;
const QUEUE_DEVICE_LOW: u32 = 0x0a0;
const CONFIG_GENERATION: u32 = 0x0fc;
const CONFIG: u32 = 0x100;

const FEATURES_OK: u32 = 8;
const DEVICE_NEEDS_RESET: u32 = 64;

// Descriptor flags (2.7.5).
const F_NEXT: u16 = 1;
const F_WRITE: u16 = 2;
const F_INDIRECT: u16 = 4;

// Feature bits the device side needs to know.
const F_EVENT_IDX: u64 = 1 << 29;
pub const VERSION_1: u64 = 1 << 32;

pub const BASE: u32 = 0xff01_0000;

/// How the device answers GET_ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GetId {
    Serial(Vec<u8>),
    Status(u8),
    /// Never completes.
    Hang,
}

/// One request as the device saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub kind: u32,
    pub sector: u64,
    /// Data bytes (read/write), or the range's sectors (discard/write-zeroes).
    pub size: u64,
    /// Descriptors in the chain (after following an indirect table: its entries).
    pub descriptors: usize,
    pub indirect: bool,
    pub status: u8,
}

/// The device's configuration and behaviour.
#[derive(Debug, Clone)]
pub struct Knobs {
    pub device_id: u32,
    pub features: u64,
    /// Bytes 0..60 of config space (see [`Knobs::config`]).
    pub config: [u8; 64],
    pub queue_max: u32,
    pub get_id: GetId,
    /// Used len reported = the true length minus this (saturating).
    pub understate: u32,
    /// Used len reported = the true length plus this (more than the chain can hold).
    pub overstate: u32,
    /// Ignore resets (Status keeps its value when 0 is written).
    pub stuck: bool,
    /// Status byte to answer every request of this type with, instead of serving it.
    pub force_status: Option<(u32, u8)>,
    /// Leave the status byte unwritten.
    pub skip_status: bool,
    /// Serve nothing on notify (the request never completes).
    pub hold: bool,
    /// Serve nothing on notify, only on [`BlkSim::serve`] (a device that completes later,
    /// as QEMU >= 8.2 does through an ioeventfd).
    pub defer: bool,
    /// Complete with this used id instead of the chain's head.
    pub bad_id: Option<u32>,
    /// Refuse FEATURES_OK.
    pub refuse_features: bool,
    /// Set DEVICE_NEEDS_RESET (and raise a config interrupt) instead of serving.
    pub needs_reset: bool,
}

impl Knobs {
    /// A 64-sector disk offering `features` (plus VERSION_1), serial "sim-disk".
    pub fn disk(features: u64) -> Knobs {
        let mut k = Knobs {
            device_id: 2,
            features: features | VERSION_1,
            config: [0; 64],
            queue_max: 64,
            get_id: GetId::Serial(b"sim-disk".to_vec()),
            understate: 0,
            overstate: 0,
            stuck: false,
            force_status: None,
            skip_status: false,
            hold: false,
            defer: false,
            bad_id: None,
            refuse_features: false,
            needs_reset: false,
        };
        k.set32(0, 64);
        k
    }
    /// Writes a little-endian u32 config field at byte `off` (capacity's low word at 0).
    pub fn set32(&mut self, off: usize, v: u32) -> &mut Self {
        self.config[off..off + 4].copy_from_slice(&v.to_le_bytes());
        self
    }
    pub fn capacity(&mut self, sectors: u64) -> &mut Self {
        self.config[0..8].copy_from_slice(&sectors.to_le_bytes());
        self
    }
    fn blk_size(&self) -> u32 {
        const F_BLK_SIZE: u64 = 1 << 6;
        if self.features & F_BLK_SIZE != 0 {
            u32::from_le_bytes(self.config[20..24].try_into().unwrap())
        } else {
            512
        }
    }
    fn u32_at(&self, off: usize) -> u32 {
        u32::from_le_bytes(self.config[off..off + 4].try_into().unwrap())
    }
}

struct State {
    knobs: Knobs,
    status: u32,
    dev_sel: u32,
    drv_sel: u32,
    driver_features: u64,
    queue_sel: u32,
    num: u32,
    desc: u32,
    avail: u32,
    used: u32,
    ready: u32,
    interrupt: u32,
    /// Used-buffer interrupts raised (InterruptStatus bit 0 set), whether or not the driver
    /// took them.
    raised: u32,
    last_avail: u16,
    used_idx: u16,
    /// A notification not yet served (`defer`, or a held device): the device looks at the
    /// ring only after one, as a real device does.
    kicked: bool,
    disk: Vec<u8>,
}

/// The device. Leak it (`&'static`) to give the driver a `Clone` bus.
pub struct BlkSim {
    tag: &'static DmaTag<SimPlatform>,
    st: RefCell<State>,
    /// Every request served, in order.
    pub seen: RefCell<Vec<Seen>>,
    /// Protocol violations by the driver (anything here fails a test).
    pub faults: RefCell<Vec<String>>,
}

impl BlkSim {
    pub fn new(tag: &'static DmaTag<SimPlatform>, knobs: Knobs) -> &'static BlkSim {
        let cap = u64::from_le_bytes(knobs.config[0..8].try_into().unwrap()).min(1 << 16);
        std::boxed::Box::leak(std::boxed::Box::new(BlkSim {
            tag,
            st: RefCell::new(State {
                knobs,
                status: 0,
                dev_sel: 0,
                drv_sel: 0,
                driver_features: 0,
                queue_sel: 0,
                num: 0,
                desc: 0,
                avail: 0,
                used: 0,
                ready: 0,
                interrupt: 0,
                raised: 0,
                last_avail: 0,
                used_idx: 0,
                kicked: false,
                disk: vec![0; cap as usize * 512],
            }),
            seen: RefCell::new(Vec::new()),
            faults: RefCell::new(Vec::new()),
        }))
    }

    pub fn knobs(&self, f: impl FnOnce(&mut Knobs)) {
        f(&mut self.st.borrow_mut().knobs)
    }
    /// Used-buffer interrupts raised so far (each batch of completions the driver asked to
    /// hear of), whether or not the driver's handler ran.
    pub fn interrupts_raised(&self) -> u32 {
        self.st.borrow().raised
    }
    pub fn disk(&self) -> Vec<u8> {
        self.st.borrow().disk.clone()
    }
    pub fn fill_disk(&self, f: impl Fn(usize) -> u8) {
        for (i, b) in self.st.borrow_mut().disk.iter_mut().enumerate() {
            *b = f(i);
        }
    }
    /// Serves what the driver published (for a test that held the device).
    pub fn serve(&self) {
        if self.st.borrow().kicked {
            self.process();
        }
    }

    fn mem(&self, phys: u32, len: usize) -> Vec<u8> {
        let p = self.tag.platform().pointer(phys);
        // SAFETY: `phys` is an address the driver gave the device, inside the sim arena.
        (0..len)
            .map(|i| unsafe { core::ptr::read_volatile(p.add(i)) })
            .collect()
    }
    fn put(&self, phys: u32, data: &[u8]) {
        let p = self.tag.platform().pointer(phys);
        for (i, &b) in data.iter().enumerate() {
            // SAFETY: as in `mem`.
            unsafe { core::ptr::write_volatile(p.add(i), b) };
        }
    }
    fn u16_at(&self, phys: u32) -> u16 {
        let b = self.mem(phys, 2);
        u16::from_le_bytes([b[0], b[1]])
    }
    fn fault(&self, s: String) {
        self.faults.borrow_mut().push(s);
    }

    /// Reads one descriptor: (addr, len, flags, next).
    fn desc(&self, table: u32, i: u16) -> (u32, u32, u16, u16) {
        let e = self.mem(table + u32::from(i) * 16, 16);
        let addr = u64::from_le_bytes(e[0..8].try_into().unwrap());
        if addr >> 32 != 0 {
            self.fault(std::format!("descriptor address {addr:#x} above 4 GiB"));
        }
        (
            addr as u32,
            u32::from_le_bytes(e[8..12].try_into().unwrap()),
            u16::from_le_bytes([e[12], e[13]]),
            u16::from_le_bytes([e[14], e[15]]),
        )
    }

    /// The chain from `head`: (addr, len, device-writable), and whether it was indirect.
    fn chain(&self, head: u16, num: u16, desc: u32) -> (Vec<(u32, u32, bool)>, bool) {
        let mut out = Vec::new();
        let (mut table, mut limit, mut i, mut indirect) = (desc, num, head, false);
        loop {
            if i >= limit || out.len() > usize::from(num) + 64 {
                self.fault(std::format!(
                    "descriptor index {i} out of a table of {limit}"
                ));
                return (out, indirect);
            }
            let (addr, len, flags, next) = self.desc(table, i);
            if flags & F_INDIRECT != 0 {
                if indirect || !out.is_empty() {
                    self.fault("indirect descriptor inside a chain".into());
                }
                (table, limit, i, indirect) = (addr, (len / 16) as u16, 0, true);
                continue;
            }
            out.push((addr, len, flags & F_WRITE != 0));
            if flags & F_NEXT == 0 {
                return (out, indirect);
            }
            i = next;
        }
    }

    fn process(&self) {
        let (num, desc, avail, used, event_idx) = {
            let st = self.st.borrow();
            if st.ready == 0 || st.knobs.hold || st.status & 4 == 0 {
                return;
            }
            (
                st.num as u16,
                st.desc,
                st.avail,
                st.used,
                st.driver_features & F_EVENT_IDX != 0,
            )
        };
        self.st.borrow_mut().kicked = false;
        if self.st.borrow().knobs.needs_reset {
            let mut st = self.st.borrow_mut();
            st.status |= DEVICE_NEEDS_RESET;
            st.interrupt |= 2;
            return;
        }
        let idx = self.u16_at(avail + 2);
        let old_used = self.st.borrow().used_idx;
        loop {
            let last = self.st.borrow().last_avail;
            if last == idx {
                break;
            }
            let head = self.u16_at(avail + 4 + 2 * u32::from(last % num));
            self.st.borrow_mut().last_avail = last.wrapping_add(1);
            let (bufs, indirect) = self.chain(head, num, desc);
            let Some(written) = self.serve_one(&bufs, indirect) else {
                return; // taken, never completed
            };
            let st = self.st.borrow();
            let id = st.knobs.bad_id.unwrap_or(head.into());
            let len = written.saturating_sub(st.knobs.understate) + st.knobs.overstate;
            let slot = u32::from(st.used_idx % num);
            drop(st);
            // The element first, then idx (2.7.8).
            let mut e = [0u8; 8];
            e[0..4].copy_from_slice(&id.to_le_bytes());
            e[4..8].copy_from_slice(&len.to_le_bytes());
            self.put(used + 4 + 8 * slot, &e);
            let mut st = self.st.borrow_mut();
            st.used_idx = st.used_idx.wrapping_add(1);
            let u = st.used_idx;
            drop(st);
            self.put(used + 2, &u.to_le_bytes());
        }
        if event_idx {
            // avail_event: notify me when the driver publishes past what I have taken.
            self.put(used + 4 + 8 * u32::from(num), &idx.to_le_bytes());
        }
        // An interrupt only for completions the driver asked to hear of (virtio 1.2 2.7.10):
        // with EVENT_IDX when used idx moved past used_event (vring_need_event), else unless
        // avail->flags says NO_INTERRUPT. A driver that forgets to re-arm gets no interrupt
        // (its wait then ends only at its deadline's re-check; a test counts interrupts).
        let new_used = self.st.borrow().used_idx;
        if new_used == old_used {
            return;
        }
        let wanted = if event_idx {
            let used_event = self.u16_at(avail + 4 + 2 * u32::from(num));
            new_used.wrapping_sub(used_event).wrapping_sub(1) < new_used.wrapping_sub(old_used)
        } else {
            self.u16_at(avail) & 1 == 0
        };
        if wanted {
            let mut st = self.st.borrow_mut();
            st.interrupt |= 1;
            st.raised += 1;
        }
    }

    /// Serves one request; returns the bytes written to the driver (data + status), or
    /// None for a request the device keeps.
    fn serve_one(&self, bufs: &[(u32, u32, bool)], indirect: bool) -> Option<u32> {
        if bufs.len() < 2 {
            self.fault(std::format!("a chain of {} descriptors", bufs.len()));
            return Some(0);
        }
        let (h_addr, h_len, h_w) = bufs[0];
        let (s_addr, s_len, s_w) = bufs[bufs.len() - 1];
        if h_len != HEADER_LEN || h_w {
            self.fault(std::format!("header descriptor len {h_len} writable {h_w}"));
        }
        if s_len != 1 || !s_w {
            self.fault(std::format!("status descriptor len {s_len} writable {s_w}"));
        }
        let h = self.mem(h_addr, HEADER_LEN as usize);
        let (kind, sector) = parse_header(h[..].try_into().unwrap());
        let data = &bufs[1..bufs.len() - 1];
        let data_len: u64 = data.iter().map(|d| u64::from(d.1)).sum();
        let knobs = self.st.borrow().knobs.clone();
        let want_write = matches!(kind, VIRTIO_BLK_T_IN | VIRTIO_BLK_T_GET_ID);
        if data.iter().any(|d| d.2 != want_write) {
            self.fault(std::format!(
                "request type {kind}: data descriptors of the wrong direction"
            ));
        }
        let mut size = data_len;
        let mut written = 0u32;
        let status = match knobs.force_status {
            Some((k, s)) if k == kind => s,
            _ => match kind {
                VIRTIO_BLK_T_GET_ID => match &knobs.get_id {
                    GetId::Serial(s) => {
                        let mut id = [0u8; 20];
                        id[..s.len()].copy_from_slice(s);
                        written = self.scatter(data, &id);
                        VIRTIO_BLK_S_OK
                    }
                    GetId::Status(s) => *s,
                    GetId::Hang => {
                        self.st.borrow_mut().knobs.hold = true;
                        return None;
                    }
                },
                VIRTIO_BLK_T_IN | VIRTIO_BLK_T_OUT => {
                    self.rw(kind, sector, data, &knobs, &mut written)
                }
                VIRTIO_BLK_T_FLUSH => VIRTIO_BLK_S_OK,
                VIRTIO_BLK_T_DISCARD | VIRTIO_BLK_T_WRITE_ZEROES => {
                    let (st, sectors) = self.range(kind, data, &knobs);
                    size = sectors;
                    st
                }
                _ => VIRTIO_BLK_S_UNSUPP,
            },
        };
        if !knobs.skip_status {
            self.put(s_addr, &[status]);
        }
        self.seen.borrow_mut().push(Seen {
            kind,
            sector,
            size,
            descriptors: bufs.len(),
            indirect,
            status,
        });
        Some(written + 1)
    }

    /// Copies `src` into the device-writable `data` buffers; returns bytes written.
    fn scatter(&self, data: &[(u32, u32, bool)], src: &[u8]) -> u32 {
        let mut at = 0usize;
        for &(addr, len, _) in data {
            let n = (len as usize).min(src.len() - at);
            self.put(addr, &src[at..at + n]);
            at += n;
        }
        at as u32
    }

    /// A read or write, checked as QEMU does (range; alignment to the logical block).
    fn rw(
        &self,
        kind: u32,
        sector: u64,
        data: &[(u32, u32, bool)],
        knobs: &Knobs,
        written: &mut u32,
    ) -> u8 {
        let len: u64 = data.iter().map(|d| u64::from(d.1)).sum();
        let blk = u64::from(knobs.blk_size());
        let cap = self.st.borrow().disk.len() as u64;
        let start = sector * 512;
        if !start.is_multiple_of(blk) || !len.is_multiple_of(blk) || start + len > cap {
            return VIRTIO_BLK_S_IOERR;
        }
        let mut at = start as usize;
        for &(addr, l, _) in data {
            if kind == VIRTIO_BLK_T_IN {
                let chunk = self.st.borrow().disk[at..at + l as usize].to_vec();
                self.put(addr, &chunk);
                *written += l;
            } else {
                let chunk = self.mem(addr, l as usize);
                self.st.borrow_mut().disk[at..at + l as usize].copy_from_slice(&chunk);
            }
            at += l as usize;
        }
        VIRTIO_BLK_S_OK
    }

    /// A discard or write-zeroes: one segment {le64 sector, le32 sectors, le32 flags};
    /// over the config limit is IOERR (QEMU). Returns (status, sectors).
    fn range(&self, kind: u32, data: &[(u32, u32, bool)], knobs: &Knobs) -> (u8, u64) {
        if data.len() != 1 || data[0].1 != SEGMENT_LEN {
            self.fault("discard/write-zeroes without exactly one 16-byte segment".into());
            return (VIRTIO_BLK_S_IOERR, 0);
        }
        let seg = self.mem(data[0].0, SEGMENT_LEN as usize);
        let (sector, sectors, _flags) = parse_segment(seg[..].try_into().unwrap());
        let sectors = u64::from(sectors);
        let max = if kind == VIRTIO_BLK_T_DISCARD {
            knobs.u32_at(36)
        } else {
            knobs.u32_at(48)
        };
        // 0 means no limit (the spec leaves it to the driver; QEMU never offers 0).
        let max = if max == 0 { u64::MAX } else { u64::from(max) };
        let cap = self.st.borrow().disk.len() as u64 / 512;
        if sectors > max || sector + sectors > cap {
            return (VIRTIO_BLK_S_IOERR, sectors);
        }
        let (a, b) = (sector as usize * 512, (sector + sectors) as usize * 512);
        let fill = if kind == VIRTIO_BLK_T_DISCARD {
            0xdd
        } else {
            0
        };
        self.st.borrow_mut().disk[a..b].fill(fill);
        (VIRTIO_BLK_S_OK, sectors)
    }

    fn read_reg(&self, off: u32) -> u32 {
        let st = self.st.borrow();
        match off {
            MAGIC_VALUE => 0x7472_6976,
            VERSION => 2,
            DEVICE_ID => st.knobs.device_id,
            VENDOR_ID => 0x554d_4551,
            DEVICE_FEATURES => (st.knobs.features >> (32 * st.dev_sel.min(1))) as u32,
            QUEUE_NUM_MAX if st.queue_sel == 0 => st.knobs.queue_max,
            QUEUE_READY => st.ready,
            INTERRUPT_STATUS => st.interrupt,
            STATUS => st.status,
            CONFIG_GENERATION => 0,
            _ => 0,
        }
    }

    fn write_reg(&self, off: u32, v: u32) {
        let mut st = self.st.borrow_mut();
        match off {
            DEVICE_FEATURES_SEL => st.dev_sel = v,
            DRIVER_FEATURES_SEL => st.drv_sel = v,
            DRIVER_FEATURES => {
                let shift = 32 * st.drv_sel.min(1);
                st.driver_features =
                    st.driver_features & !(0xffff_ffff << shift) | u64::from(v) << shift;
            }
            QUEUE_SEL => st.queue_sel = v,
            QUEUE_NUM => st.num = v,
            QUEUE_DESC_LOW => st.desc = v,
            QUEUE_DRIVER_LOW => st.avail = v,
            QUEUE_DEVICE_LOW => st.used = v,
            QUEUE_READY => st.ready = v,
            INTERRUPT_ACK => st.interrupt &= !v,
            STATUS if v == 0 && st.knobs.stuck => {}
            STATUS if v == 0 => {
                st.status = 0;
                st.ready = 0;
                st.interrupt = 0;
                st.last_avail = 0;
                st.used_idx = 0;
                st.driver_features = 0;
                st.kicked = false;
            }
            STATUS => {
                let mut v = v;
                if v & FEATURES_OK != 0 && st.status & FEATURES_OK == 0 {
                    let extra = st.driver_features & !st.knobs.features;
                    if st.knobs.refuse_features || extra != 0 {
                        v &= !FEATURES_OK;
                    }
                }
                st.status = v | (st.status & DEVICE_NEEDS_RESET);
            }
            // The value is the index of the queue that has new buffers (virtio 1.2 4.2.2,
            // QueueNotify); this device has one, requestq 0. A notification of a queue it
            // does not have starts nothing (as QEMU's, which ignores it), and is a fault here.
            QUEUE_NOTIFY if v != 0 => {
                drop(st);
                self.fault(std::format!(
                    "QueueNotify of queue {v}: the device has only queue 0"
                ));
            }
            QUEUE_NOTIFY => {
                st.kicked = true;
                if !st.knobs.defer {
                    drop(st);
                    self.process();
                }
            }
            _ => {}
        }
    }
}

// SAFETY: a host-side simulation: every call is one access to the simulated registers, in
// the order made.
unsafe impl Bus for BlkSim {
    const BIG_ENDIAN: bool = true;
    fn read8(&self, addr: u32) -> u8 {
        let off = addr - BASE;
        if off >= CONFIG {
            let st = self.st.borrow();
            return *st.knobs.config.get((off - CONFIG) as usize).unwrap_or(&0);
        }
        self.fault(std::format!("8-bit read of register {off:#x}"));
        0
    }
    fn read16(&self, addr: u32) -> u16 {
        self.fault(std::format!("16-bit read at {addr:#x}"));
        0
    }
    fn read32(&self, addr: u32) -> u32 {
        // The 68k's native big-endian view of a little-endian register.
        self.read_reg(addr - BASE).swap_bytes()
    }
    fn write8(&self, addr: u32, _: u8) {
        self.fault(std::format!("8-bit write at {addr:#x}"));
    }
    fn write16(&self, addr: u32, _: u16) {
        self.fault(std::format!("16-bit write at {addr:#x}"));
    }
    fn write32(&self, addr: u32, value: u32) {
        self.write_reg(addr - BASE, value.swap_bytes())
    }
}
