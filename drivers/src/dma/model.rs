//! A software model of a CPU data cache, so that QEMU (which models none) can show what a
//! missing or misplaced sync does on real hardware.
//!
//! Only DMA memory goes through it: driver reads and writes of DMA regions are served by the
//! model (a miss fills a line from memory, a hit returns what the line holds, however stale),
//! devices write memory directly (as DMA does), and sync operations act on the model's lines
//! through the same cache steps the real CPU executes.
#![forbid(unsafe_code)]

use super::CacheStep;
use alloc::vec::Vec;

const PAGE: u32 = 4096;

/// Raw access to the memory behind the model, by physical address.
pub trait Memory {
    fn read(&self, phys: u32, buf: &mut [u8]);
    fn write(&self, phys: u32, data: &[u8]);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WritePolicy {
    /// Stores go to memory at once (and to the line if present); no dirty lines.
    WriteThrough,
    /// Stores fill and dirty the line; memory sees them when the line is pushed or evicted.
    Copyback,
}

/// Cache geometry and policy, supplied by the platform (the CPU's manual gives the numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    pub sets: u32,
    pub ways: u32,
    /// Line size in bytes, a power of two.
    pub line: u32,
    pub policy: WritePolicy,
}

impl Geometry {
    /// Total size in bytes.
    pub fn size(&self) -> u32 {
        self.sets * self.ways * self.line
    }
}

#[derive(Clone, Copy, Default)]
struct Line {
    /// Line-aligned physical address, when valid.
    tag: Option<u32>,
    dirty: bool,
    last_use: u64,
}

pub struct CacheModel {
    geometry: Geometry,
    lines: Vec<Line>,
    /// The lines' bytes: way `i` holds `data[i * line..(i + 1) * line]`.
    data: Vec<u8>,
    clock: u64,
    /// Counters, for tests and reports.
    pub hits: u64,
    pub misses: u64,
    pub writebacks: u64,
    /// Dirty lines dropped by an invalidate (their CPU writes are lost, as on hardware).
    pub discarded_dirty: u64,
}

impl CacheModel {
    /// An empty cache of `geometry`. Panics if its line size is not a power of two.
    pub fn new(geometry: Geometry) -> Self {
        assert!(
            geometry.line.is_power_of_two(),
            "cache line size {}",
            geometry.line
        );
        let ways = (geometry.sets * geometry.ways) as usize;
        CacheModel {
            geometry,
            lines: alloc::vec![Line::default(); ways],
            data: alloc::vec![0; ways * geometry.line as usize],
            clock: 0,
            hits: 0,
            misses: 0,
            writebacks: 0,
            discarded_dirty: 0,
        }
    }

    pub fn geometry(&self) -> Geometry {
        self.geometry
    }

    fn set_of(&self, line_addr: u32) -> usize {
        ((line_addr / self.geometry.line) % self.geometry.sets) as usize
    }

    /// The bytes of way `i`.
    fn bytes(&mut self, i: usize) -> &mut [u8] {
        let l = self.geometry.line as usize;
        &mut self.data[i * l..(i + 1) * l]
    }

    fn line_of(&self, phys: u32) -> u32 {
        phys & !(self.geometry.line - 1)
    }

    fn ways(&self, line_addr: u32) -> core::ops::Range<usize> {
        let set = self.set_of(line_addr);
        let w = self.geometry.ways as usize;
        set * w..set * w + w
    }

    fn find(&self, line_addr: u32) -> Option<usize> {
        self.ways(line_addr)
            .find(|&i| self.lines[i].tag == Some(line_addr))
    }

    /// Whether the model holds the line containing `phys`.
    pub fn holds(&self, phys: u32) -> bool {
        self.find(self.line_of(phys)).is_some()
    }

    fn write_back(&mut self, i: usize, mem: &dyn Memory) {
        let line = self.lines[i];
        if let (Some(tag), true) = (line.tag, line.dirty) {
            mem.write(tag, self.bytes(i));
            self.writebacks += 1;
            self.lines[i].dirty = false;
        }
    }

    /// The way holding `line_addr`, filling it from memory on a miss (evicting the least
    /// recently used way of its set, pushing it first if dirty).
    fn fill(&mut self, line_addr: u32, mem: &dyn Memory) -> usize {
        self.clock += 1;
        if let Some(i) = self.find(line_addr) {
            self.hits += 1;
            self.lines[i].last_use = self.clock;
            return i;
        }
        self.misses += 1;
        let victim = self
            .ways(line_addr)
            .min_by_key(|&i| (self.lines[i].tag.is_some(), self.lines[i].last_use))
            .expect("a set has at least one way");
        self.write_back(victim, mem);
        mem.read(line_addr, self.bytes(victim));
        self.lines[victim] = Line {
            tag: Some(line_addr),
            dirty: false,
            last_use: self.clock,
        };
        victim
    }

    /// A CPU read of `buf.len()` bytes at `phys`, as the cache would answer it.
    pub fn read(&mut self, phys: u32, buf: &mut [u8], mem: &dyn Memory) {
        let mut done = 0usize;
        while done < buf.len() {
            let addr = phys + done as u32;
            let line_addr = self.line_of(addr);
            let within = (addr - line_addr) as usize;
            let n = (self.geometry.line as usize - within).min(buf.len() - done);
            let i = self.fill(line_addr, mem);
            buf[done..done + n].copy_from_slice(&self.bytes(i)[within..within + n]);
            done += n;
        }
    }

    /// A CPU write of `data` at `phys`.
    pub fn write(&mut self, phys: u32, data: &[u8], mem: &dyn Memory) {
        let mut done = 0usize;
        while done < data.len() {
            let addr = phys + done as u32;
            let line_addr = self.line_of(addr);
            let within = (addr - line_addr) as usize;
            let n = (self.geometry.line as usize - within).min(data.len() - done);
            let chunk = &data[done..done + n];
            match self.geometry.policy {
                WritePolicy::WriteThrough => {
                    mem.write(addr, chunk);
                    if let Some(i) = self.find(line_addr) {
                        self.bytes(i)[within..within + n].copy_from_slice(chunk);
                    }
                }
                WritePolicy::Copyback => {
                    let i = self.fill(line_addr, mem);
                    self.bytes(i)[within..within + n].copy_from_slice(chunk);
                    self.lines[i].dirty = true;
                }
            }
            done += n;
        }
    }

    fn drop_line(&mut self, i: usize, push: bool, mem: &dyn Memory) {
        if push {
            self.write_back(i, mem);
        } else if self.lines[i].dirty {
            self.discarded_dirty += 1;
        }
        self.lines[i] = Line::default();
    }

    /// Applies one cache-maintenance step (68040 CPUSH also invalidates, as modelled here).
    pub fn apply(&mut self, step: CacheStep, mem: &dyn Memory) {
        match step {
            CacheStep::Line { addr, push } => {
                if let Some(i) = self.find(self.line_of(addr)) {
                    self.drop_line(i, push, mem);
                }
            }
            CacheStep::Page { addr, push } => {
                let page = addr & !(PAGE - 1);
                for i in 0..self.lines.len() {
                    if self.lines[i].tag.is_some_and(|t| t & !(PAGE - 1) == page) {
                        self.drop_line(i, push, mem);
                    }
                }
            }
            CacheStep::InvalidateAll | CacheStep::PushInvalidateAll => {
                let push = step == CacheStep::PushInvalidateAll;
                for i in 0..self.lines.len() {
                    if self.lines[i].tag.is_some() {
                        self.drop_line(i, push, mem);
                    }
                }
            }
        }
    }

    /// Forgets everything without writing back (for switching models between tests).
    pub fn reset(&mut self) {
        self.lines.iter_mut().for_each(|l| *l = Line::default());
    }
}

/// Simulated physical memory starting at `base`, for host tests of anything cache-related.
pub struct SimMemory {
    pub base: u32,
    pub bytes: core::cell::RefCell<Vec<u8>>,
}

impl SimMemory {
    pub fn new(base: u32, len: usize) -> Self {
        SimMemory {
            base,
            bytes: core::cell::RefCell::new(alloc::vec![0; len]),
        }
    }
    /// A device write: straight to memory, past any cache.
    pub fn device_write(&self, phys: u32, data: &[u8]) {
        self.write(phys, data);
    }
    pub fn get(&self, phys: u32) -> u8 {
        self.bytes.borrow()[(phys - self.base) as usize]
    }
}

impl Memory for SimMemory {
    fn read(&self, phys: u32, buf: &mut [u8]) {
        let o = (phys - self.base) as usize;
        buf.copy_from_slice(&self.bytes.borrow()[o..o + buf.len()]);
    }
    fn write(&self, phys: u32, data: &[u8]) {
        let o = (phys - self.base) as usize;
        self.bytes.borrow_mut()[o..o + data.len()].copy_from_slice(data);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Host tests' write-through cache: 16 sets x 1 way x 16 bytes (the 68030's numbers).
    pub(crate) const WRITE_THROUGH_256: Geometry = Geometry {
        sets: 16,
        ways: 1,
        line: 16,
        policy: WritePolicy::WriteThrough,
    };
    /// Host tests' copyback cache: 64 sets x 4 ways x 16 bytes (the 68040's numbers).
    pub(crate) const COPYBACK_4K: Geometry = Geometry {
        sets: 64,
        ways: 4,
        line: 16,
        policy: WritePolicy::Copyback,
    };

    fn read_u8(m: &mut CacheModel, mem: &SimMemory, phys: u32) -> u8 {
        let mut b = [0u8];
        m.read(phys, &mut b, mem);
        b[0]
    }

    #[test]
    fn a_cached_line_goes_stale_until_invalidated() {
        for g in [WRITE_THROUGH_256, COPYBACK_4K] {
            let mem = SimMemory::new(0x1000, 8192);
            let mut m = CacheModel::new(g);
            assert_eq!(read_u8(&mut m, &mem, 0x1004), 0);
            mem.device_write(0x1004, &[7]);
            assert_eq!(read_u8(&mut m, &mem, 0x1004), 0, "stale hit");
            m.apply(
                CacheStep::Line {
                    addr: 0x1000,
                    push: false,
                },
                &mem,
            );
            assert_eq!(read_u8(&mut m, &mem, 0x1004), 7);
        }
    }

    #[test]
    fn write_through_reaches_memory_copyback_waits_for_a_push() {
        let mem = SimMemory::new(0, 8192);
        let mut wt = CacheModel::new(WRITE_THROUGH_256);
        wt.write(0x10, &[1, 2], &mem);
        assert_eq!(mem.get(0x10), 1);
        let mut cb = CacheModel::new(COPYBACK_4K);
        cb.write(0x20, &[9], &mem);
        assert_eq!(mem.get(0x20), 0, "still only in the cache");
        cb.apply(
            CacheStep::Line {
                addr: 0x20,
                push: true,
            },
            &mem,
        );
        assert_eq!(mem.get(0x20), 9);
        assert!(!cb.holds(0x20), "cpush also invalidates on the 68040");
    }

    #[test]
    fn invalidating_a_dirty_line_loses_the_write() {
        let mem = SimMemory::new(0, 8192);
        let mut cb = CacheModel::new(COPYBACK_4K);
        cb.write(0x30, &[5], &mem);
        cb.apply(
            CacheStep::Line {
                addr: 0x30,
                push: false,
            },
            &mem,
        );
        assert_eq!(mem.get(0x30), 0);
        assert_eq!(cb.discarded_dirty, 1);
    }

    #[test]
    fn direct_mapped_conflict_evicts_and_lru_keeps_four_ways() {
        let mem = SimMemory::new(0, 64 * 1024);
        let mut m = CacheModel::new(WRITE_THROUGH_256);
        read_u8(&mut m, &mem, 0x000);
        read_u8(&mut m, &mem, 0x100); // same set in a 256-byte direct-mapped cache
        assert!(!m.holds(0x000));
        let mut m = CacheModel::new(COPYBACK_4K);
        for k in 0..4 {
            read_u8(&mut m, &mem, k * 0x400); // same set (64 sets x 16 bytes = 1 KiB apart)
        }
        assert!((0..4).all(|k| m.holds(k * 0x400)));
        read_u8(&mut m, &mem, 0x1000);
        assert!(!m.holds(0x000), "least recently used way evicted");
    }

    #[test]
    fn eviction_pushes_dirty_lines() {
        let mem = SimMemory::new(0, 64 * 1024);
        let mut m = CacheModel::new(COPYBACK_4K);
        m.write(0x0, &[3], &mem);
        for k in 1..=4 {
            read_u8(&mut m, &mem, k * 0x400);
        }
        assert_eq!(mem.get(0), 3);
        assert_eq!(m.writebacks, 1);
    }

    #[test]
    fn page_and_all_steps() {
        let mem = SimMemory::new(0, 16 * 1024);
        let mut m = CacheModel::new(COPYBACK_4K);
        m.write(0x1010, &[1], &mem);
        read_u8(&mut m, &mem, 0x2010);
        m.apply(
            CacheStep::Page {
                addr: 0x1000,
                push: true,
            },
            &mem,
        );
        assert!(!m.holds(0x1010) && m.holds(0x2010));
        assert_eq!(mem.get(0x1010), 1);
        m.write(0x3000, &[4], &mem);
        m.apply(CacheStep::PushInvalidateAll, &mem);
        assert!(!m.holds(0x2010) && !m.holds(0x3000));
        assert_eq!(mem.get(0x3000), 4);
    }

    #[test]
    fn reads_spanning_lines() {
        let mem = SimMemory::new(0, 4096);
        mem.device_write(0x0c, &[1, 2, 3, 4, 5, 6, 7, 8]);
        let mut m = CacheModel::new(COPYBACK_4K);
        let mut buf = [0u8; 8];
        m.read(0x0c, &mut buf, &mem);
        assert_eq!(buf, [1, 2, 3, 4, 5, 6, 7, 8]);
        assert!(m.holds(0x00) && m.holds(0x10));
    }
}
