//! A reader of the pcapng the probe writes, to check it field by field
//! (tcpdump and capinfos read it too, in the tests).

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub ts_ns: u64,
    pub orig_len: u32,
    pub data: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Capture {
    pub if_name: String,
    pub snaplen: u32,
    /// if_tsresol (9: nanoseconds).
    pub tsresol: u8,
    pub packets: Vec<Packet>,
}

fn u32le(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

/// Every block of `b`, which must be a whole little-endian section.
pub fn parse(b: &[u8]) -> anyhow::Result<Capture> {
    let mut c = Capture::default();
    let mut at = 0;
    anyhow::ensure!(
        b.len() >= 12 && u32le(b, 0) == 0x0A0D_0D0A,
        "no section header"
    );
    anyhow::ensure!(u32le(b, 8) == 0x1A2B_3C4D, "not little-endian");
    while at < b.len() {
        anyhow::ensure!(b.len() - at >= 12, "truncated block at {at}");
        let (kind, len) = (u32le(b, at), u32le(b, at + 4) as usize);
        anyhow::ensure!(
            len >= 12 && at + len <= b.len(),
            "bad block length {len} at {at}"
        );
        anyhow::ensure!(
            u32le(b, at + len - 4) as usize == len,
            "trailing length at {at}"
        );
        let body = &b[at + 8..at + len - 4];
        match kind {
            1 => {
                c.snaplen = u32le(body, 4);
                let mut o = 8;
                while o + 4 <= body.len() {
                    let code = u16::from_le_bytes([body[o], body[o + 1]]);
                    let n = u16::from_le_bytes([body[o + 2], body[o + 3]]) as usize;
                    let v = &body[o + 4..o + 4 + n];
                    match code {
                        0 => break,
                        2 => c.if_name = String::from_utf8_lossy(v).into(),
                        9 => c.tsresol = v[0],
                        _ => {}
                    }
                    o += 4 + ((n + 3) & !3);
                }
            }
            6 => {
                let ts = (u64::from(u32le(body, 4)) << 32) | u64::from(u32le(body, 8));
                let cap = u32le(body, 12) as usize;
                c.packets.push(Packet {
                    ts_ns: ts,
                    orig_len: u32le(body, 16),
                    data: body[20..20 + cap].to_vec(),
                });
            }
            _ => {}
        }
        at += len;
    }
    Ok(c)
}
