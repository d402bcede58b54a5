//! The coverage line of a job's results.

/// `coverage: complete` or what is missing, one line.
pub(super) fn coverage_line(c: &telegen_common::rest::Coverage) -> String {
    let mut gaps = Vec::new();
    for (n, what) in [
        (c.upstream_lost, "lost upstream (GRE sequence gaps)"),
        (c.flow_evictions, "flow evictions"),
        (c.flow_update_failures, "flow updates refused"),
        (c.capture_dropped, "capture drops"),
        (c.exports_failed, "failed exports"),
    ] {
        if n > 0 {
            gaps.push(format!("{n} {what}"));
        }
    }
    let mut line = if c.complete {
        "coverage: complete".to_string()
    } else {
        format!("coverage: incomplete: {}", gaps.join(", "))
    };
    if c.tunnel_sequenced > 0 {
        line.push_str(&format!(
            "; {} sequenced tunnel packets",
            c.tunnel_sequenced
        ));
    }
    if !c.error_bound.is_empty() {
        line.push_str(&format!(
            "; sampled 1 in {}: {}",
            c.sample_rate, c.error_bound
        ));
    }
    line
}
