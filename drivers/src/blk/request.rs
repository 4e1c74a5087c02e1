//! The virtio-blk request format (virtio 1.2, 5.2.6), the one home of its numbers and byte
//! layouts: the driver, the simulated device and the in-guest raw-queue tests and benchmark
//! all encode (or decode) requests through this module.
//!
//! A request is a descriptor chain: the 16-byte header (device-readable), the data buffers,
//! then one status byte (device-writable). Every multi-byte field is little-endian
//! (VIRTIO_F_VERSION_1). Encoders return arrays on the stack: no allocation, one copy into
//! the DMA slot, as writing the fields one by one would cost.
#![forbid(unsafe_code)]

/// Request types (the header's `type` field, 5.2.6).
pub const VIRTIO_BLK_T_IN: u32 = 0;
pub const VIRTIO_BLK_T_OUT: u32 = 1;
pub const VIRTIO_BLK_T_FLUSH: u32 = 4;
pub const VIRTIO_BLK_T_GET_ID: u32 = 8;
pub const VIRTIO_BLK_T_DISCARD: u32 = 11;
pub const VIRTIO_BLK_T_WRITE_ZEROES: u32 = 13;

/// Status values (the last byte of the chain, written by the device).
pub const VIRTIO_BLK_S_OK: u8 = 0;
pub const VIRTIO_BLK_S_IOERR: u8 = 1;
pub const VIRTIO_BLK_S_UNSUPP: u8 = 2;

/// Header: `{le32 type, le32 reserved, le64 sector}`, 16 bytes.
pub const HEADER_LEN: u32 = 16;
/// Byte offset of the header's `type` field.
pub const HEADER_TYPE_AT: u32 = 0;
/// Byte offset of the header's `reserved` field (written 0).
pub const HEADER_RESERVED_AT: u32 = 4;
/// Byte offset of the header's `sector` field (512-byte units, whatever the blk_size).
pub const HEADER_SECTOR_AT: u32 = 8;

/// Discard / write-zeroes segment: `{le64 sector, le32 num_sectors, le32 flags}`, 16 bytes.
pub const SEGMENT_LEN: u32 = 16;
/// The segment flag `unmap` (write-zeroes only): the device may deallocate the range.
pub const VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP: u32 = 1;

/// The GET_ID data buffer: 20 bytes of serial, NUL-padded when shorter.
pub const VIRTIO_BLK_ID_BYTES: u32 = 20;

/// The request header for `kind` (a `VIRTIO_BLK_T_*`) at `sector` (512-byte units), as the
/// device reads it.
#[inline]
pub fn header_bytes(kind: u32, sector: u64) -> [u8; HEADER_LEN as usize] {
    let mut h = [0u8; HEADER_LEN as usize];
    let (t, s) = (HEADER_TYPE_AT as usize, HEADER_SECTOR_AT as usize);
    h[t..t + 4].copy_from_slice(&kind.to_le_bytes());
    h[s..s + 8].copy_from_slice(&sector.to_le_bytes());
    h
}

/// A header as the device sees it: `(type, sector)`; the reserved field is ignored, as the
/// spec lets a device do.
pub fn parse_header(h: &[u8; HEADER_LEN as usize]) -> (u32, u64) {
    let (t, s) = (HEADER_TYPE_AT as usize, HEADER_SECTOR_AT as usize);
    let mut kind = [0u8; 4];
    kind.copy_from_slice(&h[t..t + 4]);
    let mut sector = [0u8; 8];
    sector.copy_from_slice(&h[s..s + 8]);
    (u32::from_le_bytes(kind), u64::from_le_bytes(sector))
}

/// One discard / write-zeroes segment: `num_sectors` 512-byte sectors from `sector`, with
/// `flags` (0, or [`VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP`] for write-zeroes).
#[inline]
pub fn segment_bytes(sector: u64, num_sectors: u32, flags: u32) -> [u8; SEGMENT_LEN as usize] {
    let mut seg = [0u8; SEGMENT_LEN as usize];
    seg[0..8].copy_from_slice(&sector.to_le_bytes());
    seg[8..12].copy_from_slice(&num_sectors.to_le_bytes());
    seg[12..16].copy_from_slice(&flags.to_le_bytes());
    seg
}

/// A segment as the device sees it: `(sector, num_sectors, flags)`.
pub fn parse_segment(seg: &[u8; SEGMENT_LEN as usize]) -> (u64, u32, u32) {
    let mut sector = [0u8; 8];
    sector.copy_from_slice(&seg[0..8]);
    let mut n = [0u8; 4];
    n.copy_from_slice(&seg[8..12]);
    let mut flags = [0u8; 4];
    flags.copy_from_slice(&seg[12..16]);
    (
        u64::from_le_bytes(sector),
        u32::from_le_bytes(n),
        u32::from_le_bytes(flags),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected bytes written out by hand from virtio 1.2, 5.2.6: struct virtio_blk_req
    // {le32 type; le32 reserved; le64 sector; ...} and struct
    // virtio_blk_discard_write_zeroes {le64 sector; le32 num_sectors; le32 flags}, each
    // field least significant byte first.

    #[test]
    fn header_layout_matches_the_spec() {
        // OUT (1) at sector 0x0102_0304_0506_0708.
        assert_eq!(
            header_bytes(VIRTIO_BLK_T_OUT, 0x0102_0304_0506_0708),
            [
                0x01, 0x00, 0x00, 0x00, // type
                0x00, 0x00, 0x00, 0x00, // reserved
                0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, // sector
            ]
        );
        // WRITE_ZEROES (13 = 0x0d) at the last 64-bit sector.
        assert_eq!(
            header_bytes(VIRTIO_BLK_T_WRITE_ZEROES, u64::MAX),
            [
                0x0d, 0x00, 0x00, 0x00, //
                0x00, 0x00, 0x00, 0x00, //
                0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            ]
        );
        // GET_ID (8) carries sector 0.
        assert_eq!(
            header_bytes(VIRTIO_BLK_T_GET_ID, 0),
            [8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        );
    }

    #[test]
    fn header_parses_as_the_device_reads_it() {
        // IN (0) at sector 0x1234; reserved holds junk a device must ignore.
        let h = [
            0x00, 0x00, 0x00, 0x00, 0xde, 0xad, 0xbe, 0xef, 0x34, 0x12, 0, 0, 0, 0, 0, 0,
        ];
        assert_eq!(parse_header(&h), (VIRTIO_BLK_T_IN, 0x1234));
        let h = [
            0x0b, 0x00, 0x00, 0x00, 0, 0, 0, 0, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
        ];
        assert_eq!(parse_header(&h), (VIRTIO_BLK_T_DISCARD, 1 << 32));
    }

    #[test]
    fn segment_layout_matches_the_spec() {
        assert_eq!(
            segment_bytes(
                0x0000_0001_0000_0200,
                0x0000_0080,
                VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP
            ),
            [
                0x00, 0x02, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, // sector
                0x80, 0x00, 0x00, 0x00, // num_sectors
                0x01, 0x00, 0x00, 0x00, // flags: unmap is bit 0
            ]
        );
        let seg = [
            0x10, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x01, 0, 0, 0x00, 0x00, 0x00, 0x00,
        ];
        assert_eq!(parse_segment(&seg), (0x10, 0x100, 0));
    }

    #[test]
    fn numbers_are_the_specs() {
        // 5.2.6: the type and status defines, copied from the spec's listing.
        assert_eq!(
            [
                VIRTIO_BLK_T_IN,
                VIRTIO_BLK_T_OUT,
                VIRTIO_BLK_T_FLUSH,
                VIRTIO_BLK_T_GET_ID,
                VIRTIO_BLK_T_DISCARD,
                VIRTIO_BLK_T_WRITE_ZEROES,
            ],
            [0, 1, 4, 8, 11, 13]
        );
        assert_eq!(
            [VIRTIO_BLK_S_OK, VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_UNSUPP],
            [0, 1, 2]
        );
        assert_eq!((HEADER_LEN, SEGMENT_LEN, VIRTIO_BLK_ID_BYTES), (16, 16, 20));
    }
}
