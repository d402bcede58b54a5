//! Wall-clock helpers: unix nanoseconds and RFC 3339 UTC strings.

use time::{format_description::well_known::Rfc3339, OffsetDateTime};

pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// RFC 3339 UTC with second precision, e.g. 2026-11-25T19:20:48Z.
pub fn rfc3339(ns: u64) -> String {
    OffsetDateTime::from_unix_timestamp((ns / 1_000_000_000) as i64)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_utc() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
    }
}
