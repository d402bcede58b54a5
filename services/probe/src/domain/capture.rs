//! Packet capture settings (result_detail `pcaplike`, issue 18): what is
//! kept of each packet and how much, validated, with the defaults and the
//! bounds an operator can rely on. The kernel enforces them (capture.h).

/// Bytes kept of a packet by default, and at most (a jumbo frame).
pub const DEFAULT_SNAPLEN: u32 = 128;
pub const MAX_SNAPLEN: u32 = 9216;
pub const DEFAULT_MAX_PACKETS: u64 = 10_000;
pub const MAX_MAX_PACKETS: u64 = 10_000_000;
pub const DEFAULT_MAX_BYTES: u64 = 16 << 20;
pub const MAX_MAX_BYTES: u64 = 1 << 30;
pub const DEFAULT_MAX_PPS: u32 = 1000;
pub const MAX_MAX_PPS: u32 = 100_000;

/// A capture job's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaptureSpec {
    pub snaplen: u32,
    pub max_packets: u64,
    /// pcapng bytes of the job's packet blocks (32 bytes of block and the
    /// data padded to 4, each).
    pub max_bytes: u64,
    pub max_pps: u32,
    /// A tunnel's outer frame rather than the one inside.
    pub outer: bool,
}

impl Default for CaptureSpec {
    fn default() -> Self {
        CaptureSpec {
            snaplen: DEFAULT_SNAPLEN,
            max_packets: DEFAULT_MAX_PACKETS,
            max_bytes: DEFAULT_MAX_BYTES,
            max_pps: DEFAULT_MAX_PPS,
            outer: false,
        }
    }
}

impl CaptureSpec {
    pub fn frame(&self) -> &'static str {
        if self.outer {
            "outer"
        } else {
            "inner"
        }
    }
}

/// A capture request as it came (unset: default).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaptureRequest {
    pub snaplen: Option<u32>,
    pub max_packets: Option<u64>,
    pub max_bytes: Option<u64>,
    pub max_pps: Option<u32>,
    pub frame: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("capture.{field}: {msg}")]
pub struct CaptureError {
    pub field: &'static str,
    pub msg: String,
}

fn bounded<T: PartialOrd + Copy + std::fmt::Display>(
    field: &'static str,
    v: Option<T>,
    default: T,
    min: T,
    max: T,
) -> Result<T, CaptureError> {
    match v {
        None => Ok(default),
        Some(v) if v >= min && v <= max => Ok(v),
        Some(v) => Err(CaptureError {
            field,
            msg: format!("{v} is not from {min} to {max}"),
        }),
    }
}

pub fn parse(r: &CaptureRequest) -> Result<CaptureSpec, CaptureError> {
    Ok(CaptureSpec {
        snaplen: bounded("snaplen", r.snaplen, DEFAULT_SNAPLEN, 14, MAX_SNAPLEN)?,
        max_packets: bounded(
            "max_packets",
            r.max_packets,
            DEFAULT_MAX_PACKETS,
            1,
            MAX_MAX_PACKETS,
        )?,
        max_bytes: bounded(
            "max_bytes",
            r.max_bytes,
            DEFAULT_MAX_BYTES,
            64,
            MAX_MAX_BYTES,
        )?,
        max_pps: bounded("max_pps", r.max_pps, DEFAULT_MAX_PPS, 1, MAX_MAX_PPS)?,
        outer: match r.frame.as_str() {
            "" | "inner" => false,
            "outer" => true,
            other => {
                return Err(CaptureError {
                    field: "frame",
                    msg: format!(
                        "{:?} is not inner or outer",
                        other.chars().take(16).collect::<String>()
                    ),
                })
            }
        },
    })
}

/// The pcapng bytes one packet of `cap_len` bytes takes (what max_bytes
/// counts; the kernel's CAPTURE_EPB_OVERHEAD).
pub fn block_bytes(cap_len: u32) -> u64 {
    32 + u64::from((cap_len + 3) & !3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_bounds_and_frames() {
        assert_eq!(
            parse(&CaptureRequest::default()),
            Ok(CaptureSpec::default())
        );
        let r = CaptureRequest {
            snaplen: Some(9216),
            max_packets: Some(5),
            max_bytes: Some(4096),
            max_pps: Some(10),
            frame: "outer".into(),
        };
        let s = parse(&r).unwrap();
        assert_eq!(
            (s.snaplen, s.max_packets, s.max_bytes, s.max_pps, s.outer),
            (9216, 5, 4096, 10, true)
        );
        for (r, field) in [
            (
                CaptureRequest {
                    snaplen: Some(9217),
                    ..Default::default()
                },
                "snaplen",
            ),
            (
                CaptureRequest {
                    snaplen: Some(0),
                    ..Default::default()
                },
                "snaplen",
            ),
            (
                CaptureRequest {
                    max_packets: Some(0),
                    ..Default::default()
                },
                "max_packets",
            ),
            (
                CaptureRequest {
                    max_bytes: Some(1 << 31),
                    ..Default::default()
                },
                "max_bytes",
            ),
            (
                CaptureRequest {
                    max_pps: Some(100_001),
                    ..Default::default()
                },
                "max_pps",
            ),
            (
                CaptureRequest {
                    frame: "middle".into(),
                    ..Default::default()
                },
                "frame",
            ),
        ] {
            assert_eq!(parse(&r).unwrap_err().field, field, "{r:?}");
        }
        assert_eq!(block_bytes(1), 36);
        assert_eq!(block_bytes(128), 160);
    }
}
