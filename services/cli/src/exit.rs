//! Exit codes and the one-line error report on stderr.

use std::{fmt, io::Write};

use telegen_common::rest::ErrorBody;

/// `telegenctl` exit codes (also in `--help` and the crate documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// The gateway answered 2xx.
    Ok = 0,
    /// An answer that could not be understood, or a 5xx other than 503.
    Unexpected = 1,
    /// Bad arguments (clap's code); nothing was sent.
    Usage = 2,
    /// The gateway refused the request: 400, 409, 413, 415 (and other 4xx
    /// without a code of their own).
    Rejected = 3,
    /// 404: no such job.
    NotFound = 4,
    /// 429: the concurrency cap is reached.
    ConcurrencyLimit = 5,
    /// 503 (the probe is unavailable), or the gateway could not be reached
    /// or did not answer in time.
    Unavailable = 6,
    /// 401 or 403.
    Unauthorized = 7,
}

impl Exit {
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// The exit code for an HTTP status.
pub fn exit_for_status(status: u16) -> Exit {
    match status {
        200..=299 => Exit::Ok,
        401 | 403 => Exit::Unauthorized,
        404 => Exit::NotFound,
        429 => Exit::ConcurrencyLimit,
        400..=499 => Exit::Rejected,
        503 => Exit::Unavailable,
        _ => Exit::Unexpected,
    }
}

/// Text of the exit-code table, for `--help`.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success
  1  unexpected: an answer that cannot be understood, or HTTP 5xx other than 503
  2  usage error (bad arguments); nothing was sent
  3  request rejected: HTTP 400, 409, 413, 415 (and other 4xx not listed here)
  4  job not found: HTTP 404
  5  concurrency limit reached: HTTP 429
  6  unavailable: HTTP 503, or the gateway cannot be reached or does not answer in time
  7  unauthorized: HTTP 401, 403

Errors are reported on stderr as `ERROR: <message> (HTTP <status>)`; with --json the
gateway's error body is also printed on stdout.";

/// Why a command did not succeed.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// The gateway answered with a non-2xx status.
    Http {
        status: u16,
        /// The body's `message`, else its `error` code, else the status text.
        message: String,
    },
    /// No HTTP answer: connection refused, timeout, name not found...
    Unreachable { url: String, reason: String },
    /// An answer that is not what the API promises.
    BadResponse { url: String, reason: String },
}

impl Failure {
    /// A failure for a non-2xx answer, its message taken from the body.
    pub fn from_http(status: u16, body: &str) -> Self {
        Failure::Http {
            status,
            message: error_message(status, body),
        }
    }

    pub fn exit(&self) -> Exit {
        match self {
            Failure::Http { status, .. } => match exit_for_status(*status) {
                // A non-2xx we could not classify (1xx/3xx) is unexpected.
                Exit::Ok => Exit::Unexpected,
                e => e,
            },
            Failure::Unreachable { .. } => Exit::Unavailable,
            Failure::BadResponse { .. } => Exit::Unexpected,
        }
    }

    /// Write the stderr line, `ERROR: ...` and a newline.
    pub fn write_line(&self, err: &mut impl Write) -> std::io::Result<()> {
        writeln!(err, "{self}")
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Http { status, message } => write!(f, "ERROR: {message} (HTTP {status})"),
            Failure::Unreachable { url, reason } => {
                write!(f, "ERROR: cannot reach the gateway at {url}: {reason}")
            }
            Failure::BadResponse { url, reason } => {
                write!(
                    f,
                    "ERROR: unexpected answer from the gateway at {url}: {reason}"
                )
            }
        }
    }
}

/// Longest message taken from a body that is not the API's error JSON.
const MAX_RAW_MESSAGE: usize = 200;

/// The person-readable message of an error answer: `message` of the API's
/// error JSON, else its `error` code, else the start of a plain-text body,
/// else the status's reason phrase.
pub fn error_message(status: u16, body: &str) -> String {
    if let Ok(e) = serde_json::from_str::<ErrorBody>(body) {
        for s in [e.message.trim(), e.error.trim()] {
            if !s.is_empty() {
                return one_line(s);
            }
        }
    }
    let text = body.trim();
    if !text.is_empty() && !text.starts_with('{') && !text.starts_with('<') {
        let line = one_line(text);
        if line.chars().count() > MAX_RAW_MESSAGE {
            return line.chars().take(MAX_RAW_MESSAGE).collect::<String>() + "...";
        }
        return line;
    }
    reason_phrase(status).to_string()
}

/// Collapse line breaks and control characters so the report stays one line.
fn one_line(s: &str) -> String {
    s.split(|c: char| c.is_control())
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        413 => "Payload Too Large",
        415 => "Unsupported Media Type",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "unexpected HTTP status",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_documented_codes() {
        let cases = [
            (200, 0),
            (201, 0),
            (400, 3),
            (409, 3),
            (413, 3),
            (415, 3),
            (405, 3),
            (404, 4),
            (429, 5),
            (503, 6),
            (401, 7),
            (403, 7),
            (500, 1),
            (502, 1),
            (504, 1),
        ];
        for (status, code) in cases {
            assert_eq!(exit_for_status(status).code(), code, "HTTP {status}");
        }
        // A redirect or informational status is not success.
        assert_eq!(Failure::from_http(302, "").exit(), Exit::Unexpected);
        assert_eq!(Failure::from_http(503, "").exit(), Exit::Unavailable);
    }

    #[test]
    fn transport_failures_map_to_codes() {
        let u = Failure::Unreachable {
            url: "http://127.0.0.1:1".into(),
            reason: "connection refused".into(),
        };
        assert_eq!(u.exit().code(), 6);
        assert_eq!(
            u.to_string(),
            "ERROR: cannot reach the gateway at http://127.0.0.1:1: connection refused"
        );
        let b = Failure::BadResponse {
            url: "http://h:1".into(),
            reason: "not JSON".into(),
        };
        assert_eq!(b.exit().code(), 1);
    }

    #[test]
    fn error_line_uses_the_api_message() {
        let body = r#"{"error":"concurrency_limit","message":"At most 2 concurrent jobs are allowed. Try again later."}"#;
        let f = Failure::from_http(429, body);
        let mut buf = Vec::new();
        f.write_line(&mut buf).unwrap();
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "ERROR: At most 2 concurrent jobs are allowed. Try again later. (HTTP 429)\n"
        );
        assert_eq!(f.exit().code(), 5);
    }

    #[test]
    fn error_message_falls_back_sensibly() {
        assert_eq!(
            error_message(404, r#"{"error":"not_found"}"#),
            "not_found",
            "the code when there is no message"
        );
        assert_eq!(error_message(400, r#"{"error":"x","message":"  "}"#), "x");
        assert_eq!(error_message(502, ""), "Bad Gateway");
        assert_eq!(
            error_message(500, "<html>oops</html>"),
            "Internal Server Error"
        );
        assert_eq!(error_message(418, "{"), "unexpected HTTP status");
        assert_eq!(
            error_message(400, "bad\nthing\r\n"),
            "bad thing",
            "plain text, one line"
        );
        assert_eq!(
            error_message(400, r#"{"message":"two\nlines"}"#),
            "two lines"
        );
        let long = "x".repeat(1000);
        assert_eq!(error_message(400, &long).chars().count(), 203);
    }
}
