//! The gateway's routes as telegenctl calls them; the bodies are
//! telegen_common::rest's.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use telegen_common::rest::paths;

/// Bytes of a job id sent as they are; everything else is percent-encoded,
/// `/`, `?`, `#`, `%` and `.` included, so an id is always exactly one path
/// segment (`..` becomes `%2E%2E`, which no client or server resolves).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'~');

/// A job id as one escaped path segment.
pub fn escape_segment(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

pub const START: &str = paths::START;
pub const LIST: &str = paths::JOBS;

/// A job route with the id in place.
fn with_id(route: &str, id: &str) -> String {
    route.replace(paths::JOB_ID, &escape_segment(id))
}

pub fn job_path(id: &str) -> String {
    with_id(paths::JOB, id)
}

/// `GET /jobs/{id}/results`, with `?top=N` when `top` is given.
pub fn results_path(id: &str, top: Option<u32>) -> String {
    let path = with_id(paths::RESULTS, id);
    match top {
        Some(n) => format!("{path}?top={n}"),
        None => path,
    }
}

pub fn capture_path(id: &str, from_now: bool) -> String {
    let path = with_id(paths::CAPTURE, id);
    if from_now {
        format!("{path}?from=now")
    } else {
        path
    }
}

pub fn stop_path(id: &str) -> String {
    with_id(paths::STOP, id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_stay_one_path_segment() {
        let id = "3f0c2a9e-1b2c-4d5e-8f90-0123456789ab";
        assert_eq!(job_path(id), format!("/jobs/{id}"));
        assert_eq!(results_path(id, None), format!("/jobs/{id}/results"));
        assert_eq!(
            results_path(id, Some(25)),
            format!("/jobs/{id}/results?top=25")
        );
        assert_eq!(
            results_path("a?top=1", Some(0)),
            "/jobs/a%3Ftop%3D1/results?top=0"
        );
        assert_eq!(stop_path(id), format!("/jobs/{id}/stop"));
        assert_eq!(stop_path("a/../../x"), "/jobs/a%2F%2E%2E%2F%2E%2E%2Fx/stop");
        assert_eq!(job_path("start"), "/jobs/start");
        assert_eq!(job_path("x?y=1#z"), "/jobs/x%3Fy%3D1%23z");
        assert_eq!(job_path(".."), "/jobs/%2E%2E");
        assert_eq!(job_path("."), "/jobs/%2E");
        assert_eq!(job_path("50%"), "/jobs/50%25");
        assert_eq!(job_path("a b\n"), "/jobs/a%20b%0A");
        assert_eq!(job_path("é"), "/jobs/%C3%A9");
        assert_eq!(job_path("A_z~-9"), "/jobs/A_z~-9");
    }
}
