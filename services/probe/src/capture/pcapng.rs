//! The pcapng blocks a capture file is made of (IETF draft-ietf-opsawg-
//! pcapng): a section header, one interface description (the job's port:
//! Ethernet, its snaplen, nanosecond timestamps), then an enhanced packet
//! block per packet. Little-endian, the byte-order magic says so.

const SHB: u32 = 0x0A0D_0D0A;
const IDB: u32 = 0x0000_0001;
const EPB: u32 = 0x0000_0006;
const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;
const LINKTYPE_ETHERNET: u16 = 1;
const OPT_END: u16 = 0;
const OPT_SHB_USERAPPL: u16 = 4;
const OPT_IF_NAME: u16 = 2;
const OPT_IF_TSRESOL: u16 = 9;

fn pad4(n: usize) -> usize {
    (n + 3) & !3
}

fn option(out: &mut Vec<u8>, code: u16, value: &[u8]) {
    out.extend_from_slice(&code.to_le_bytes());
    out.extend_from_slice(&(value.len() as u16).to_le_bytes());
    out.extend_from_slice(value);
    out.resize(pad4(out.len()), 0);
}

/// A block of `kind` around `body` (already padded to 4).
fn block(kind: u32, body: &[u8]) -> Vec<u8> {
    let total = (12 + body.len()) as u32;
    let mut b = Vec::with_capacity(total as usize);
    b.extend_from_slice(&kind.to_le_bytes());
    b.extend_from_slice(&total.to_le_bytes());
    b.extend_from_slice(body);
    b.extend_from_slice(&total.to_le_bytes());
    b
}

/// The section header and the interface description of `port`: what every
/// capture file and stream begins with.
pub fn header(port: &str, snaplen: u32) -> Vec<u8> {
    let mut shb = Vec::new();
    shb.extend_from_slice(&BYTE_ORDER_MAGIC.to_le_bytes());
    shb.extend_from_slice(&1u16.to_le_bytes());
    shb.extend_from_slice(&0u16.to_le_bytes());
    shb.extend_from_slice(&u64::MAX.to_le_bytes()); // section length unknown
    option(&mut shb, OPT_SHB_USERAPPL, b"telegen-sonic");
    option(&mut shb, OPT_END, &[]);
    let mut idb = Vec::new();
    idb.extend_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
    idb.extend_from_slice(&0u16.to_le_bytes());
    idb.extend_from_slice(&snaplen.to_le_bytes());
    option(&mut idb, OPT_IF_NAME, port.as_bytes());
    option(&mut idb, OPT_IF_TSRESOL, &[9]); // 10^-9: nanoseconds
    option(&mut idb, OPT_END, &[]);
    let mut out = block(SHB, &shb);
    out.extend(block(IDB, &idb));
    out
}

/// An enhanced packet block on interface 0: `data` (as captured), the
/// packet's original length, and its wall-clock time in ns since the epoch.
pub fn packet(ts_ns: u64, orig_len: u32, data: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(20 + pad4(data.len()));
    body.extend_from_slice(&0u32.to_le_bytes());
    body.extend_from_slice(&((ts_ns >> 32) as u32).to_le_bytes());
    body.extend_from_slice(&(ts_ns as u32).to_le_bytes());
    body.extend_from_slice(&(data.len() as u32).to_le_bytes());
    body.extend_from_slice(&orig_len.to_le_bytes());
    body.extend_from_slice(data);
    body.resize(pad4(body.len()), 0);
    block(EPB, &body)
}

/// The length of the block at the start of `b`, when it is all there.
pub fn block_len(b: &[u8]) -> Option<usize> {
    let total = u32::from_le_bytes(b.get(4..8)?.try_into().ok()?) as usize;
    (total >= 12 && b.len() >= total).then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_as_the_format_says() {
        let h = header("Ethernet16", 128);
        assert_eq!(&h[..4], &SHB.to_le_bytes());
        let shb_len = block_len(&h).unwrap();
        assert_eq!(&h[8..12], &BYTE_ORDER_MAGIC.to_le_bytes());
        assert_eq!(&h[shb_len - 4..shb_len], &h[4..8], "trailing length");
        let idb = &h[shb_len..];
        assert_eq!(&idb[..4], &IDB.to_le_bytes());
        assert_eq!(block_len(idb), Some(idb.len()));
        assert_eq!(u16::from_le_bytes([idb[8], idb[9]]), LINKTYPE_ETHERNET);
        assert_eq!(u32::from_le_bytes(idb[12..16].try_into().unwrap()), 128);
        let p = packet(0x0000_0001_0000_0002, 1500, &[0xab; 5]);
        // 32 bytes of block and 5 bytes padded to 8: what the kernel counts.
        assert_eq!(p.len() as u64, crate::domain::capture::block_bytes(5));
        assert_eq!(
            u32::from_le_bytes(p[12..16].try_into().unwrap()),
            1,
            "ts high"
        );
        assert_eq!(
            u32::from_le_bytes(p[16..20].try_into().unwrap()),
            2,
            "ts low"
        );
        assert_eq!(u32::from_le_bytes(p[20..24].try_into().unwrap()), 5);
        assert_eq!(u32::from_le_bytes(p[24..28].try_into().unwrap()), 1500);
        assert_eq!(block_len(&p[..p.len() - 1]), None, "incomplete");
    }
}
