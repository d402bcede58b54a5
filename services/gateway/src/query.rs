//! The results routes' query, the one input the gateway checks itself
//! (`top` is a number in the URL, so its range is known before any probe
//! call); the bodies are telegen_common::rest's.

use serde::Deserialize;
use telegen_common::rest::limits::{DEFAULT_TOP, MAX_TOP, RESULT_FORMATS};
use utoipa::IntoParams;

use crate::error::ApiError;

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ResultsQuery {
    /// Only json.
    #[param(schema_with = telegen_common::rest::schema::result_format)]
    pub format: Option<String>,
    /// How many top flows to return, by bytes.
    #[param(schema_with = telegen_common::rest::schema::top)]
    pub top: Option<String>,
}

/// The query of GET /jobs/{job_id}/capture.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CaptureQuery {
    /// `now`: only packets captured from now on; default `start`.
    #[param(value_type = Option<String>, example = "now")]
    pub from: Option<String>,
}

impl CaptureQuery {
    pub fn from_now(&self) -> Result<bool, ApiError> {
        match self.from.as_deref() {
            None | Some("start") => Ok(false),
            Some("now") => Ok(true),
            Some(other) => Err(ApiError::invalid(format!(
                "from must be start or now, not {:?}",
                other.chars().take(32).collect::<String>()
            ))),
        }
    }
}

impl ResultsQuery {
    /// Check the query: `format` must be json, `top` a decimal integer in
    /// 0..=MAX_TOP. Returns `top` for GetResultsRequest (0 = the default).
    pub fn top(&self) -> Result<u32, ApiError> {
        if let Some(f) = self
            .format
            .as_deref()
            .filter(|f| !RESULT_FORMATS.contains(f))
        {
            return Err(ApiError::not_supported(format!(
                "format {:?} is not supported; use json",
                f.chars().take(32).collect::<String>()
            )));
        }
        let Some(t) = self.top.as_deref() else {
            return Ok(0);
        };
        let bad = || {
            ApiError::invalid(format!(
                "top must be an integer from 0 to {MAX_TOP} (0 = {DEFAULT_TOP}), not {:?}",
                t.chars().take(32).collect::<String>()
            ))
        };
        if t.is_empty() || t.len() > 10 || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        match t.parse::<u32>() {
            Ok(n) if n <= MAX_TOP => Ok(n),
            _ => Err(bad()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What axum's `Query` extractor makes of a query string.
    fn query(q: &str) -> Result<ResultsQuery, String> {
        use axum::extract::Query;
        let uri: axum::http::Uri = format!("/x?{q}").parse().unwrap();
        Query::<ResultsQuery>::try_from_uri(&uri)
            .map(|Query(q)| q)
            .map_err(|e| e.body_text())
    }

    #[test]
    fn top_is_an_integer_from_0_to_100() {
        for (q, top) in [
            ("", 0),
            ("top=0", 0),
            ("top=1", 1),
            ("top=10", 10),
            ("top=100", 100),
            ("top=007", 7),
            ("format=json&top=25", 25),
            ("format=json", 0),
        ] {
            let parsed = query(q).unwrap_or_else(|e| panic!("{q}: {e}"));
            assert_eq!(parsed.top().unwrap(), top, "{q}");
        }
        for q in [
            "top=101",
            "top=-1",
            "top=+5",
            "top=1.5",
            "top=ten",
            "top=",
            "top=%20",
            "top=4294967296",
            "top=99999999999999999999",
            "top=1e2",
            "top=0x10",
        ] {
            let e = query(q).unwrap().top().expect_err(q);
            assert_eq!((e.status.as_u16(), e.code), (400, "invalid_request"), "{q}");
            assert!(e.message.starts_with("top must be"), "{q}: {}", e.message);
        }
        // Echoed input is bounded.
        let long = format!("top={}", "9".repeat(500));
        let e = query(&long).unwrap().top().unwrap_err();
        assert!(e.message.len() < 100, "{}", e.message);
        // Repeated or unknown keys are refused by the extractor, naming them.
        assert!(query("top=1&top=2").unwrap_err().contains("top"));
        assert!(query("tpo=1").unwrap_err().contains("tpo"));
        // format is checked as before.
        let e = query("format=csv&top=5").unwrap().top().unwrap_err();
        assert_eq!((e.code, e.message.contains("csv")), ("not_supported", true));
    }
}
