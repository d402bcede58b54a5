//! Optional Prometheus text endpoint (TELEGEN_PROM_LISTEN): the same series
//! as the OTLP export, rendered from the same `Collected`, so both agree.

use std::{fmt::Write as _, sync::Arc};

use axum::{extract::State, http::header, response::IntoResponse, routing::get, Router};
use tracing::info;

use crate::{
    series::{Attr, Collected, Point},
    stats::StatsSnapshot,
    Shared,
};

const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn labels(attrs: &[(&'static str, Attr)], extra: Option<(&str, &str)>) -> String {
    let mut parts: Vec<String> = attrs
        .iter()
        .map(|(k, v)| format!("{}=\"{}\"", k.replace('.', "_"), escape(&v.to_string())))
        .collect();
    if let Some((k, v)) = extra {
        parts.push(format!("{k}=\"{}\"", escape(v)));
    }
    format!("{{{}}}", parts.join(","))
}

fn histogram(out: &mut String, p: &Point, bounds: &[u64]) {
    let mut cumulative = 0u64;
    for (i, n) in p.hist.iter().enumerate() {
        cumulative += n;
        let le = bounds.get(i).map_or("+Inf".to_string(), u64::to_string);
        let _ = writeln!(
            out,
            "bpf_bytes_bucket{} {cumulative}",
            labels(&p.attrs, Some(("le", &le)))
        );
    }
    let l = labels(&p.attrs, None);
    let _ = writeln!(out, "bpf_bytes_sum{l} {}", p.bytes);
    let _ = writeln!(out, "bpf_bytes_count{l} {}", p.packets);
}

pub fn render(c: Option<&Collected>, s: &StatsSnapshot) -> String {
    let mut out = String::new();
    if let Some(c) = c {
        out.push_str("# HELP bpf_packets_total Packets counted by the tc classifier.\n");
        out.push_str("# TYPE bpf_packets_total counter\n");
        for p in &c.points {
            let _ = writeln!(
                out,
                "bpf_packets_total{} {}",
                labels(&p.attrs, None),
                p.packets
            );
        }
        out.push_str(
            "# HELP bpf_bytes Sizes of the packets counted by the tc classifier, in bytes.\n",
        );
        out.push_str("# TYPE bpf_bytes histogram\n");
        for p in &c.points {
            histogram(&mut out, p, &c.bounds);
        }
        out.push_str("# HELP bpf_errors_total Packets or parts of their accounting the classifier could not record.\n");
        out.push_str("# TYPE bpf_errors_total counter\n");
        for (reason, n) in &c.errors {
            let _ = writeln!(out, "bpf_errors_total{{reason=\"{}\"}} {n}", escape(reason));
        }
        out.push_str(
            "# HELP bpf_tunnel_packets_total GRE/ERSPAN packets by how they were counted.\n",
        );
        out.push_str("# TYPE bpf_tunnel_packets_total counter\n");
        for (kind, n) in &c.tunnel {
            let _ = writeln!(
                out,
                "bpf_tunnel_packets_total{{kind=\"{}\"}} {n}",
                escape(kind)
            );
        }
    }
    if let Some(c) = c {
        out.push_str("# HELP telegen_exporter_snapshot_timestamp_seconds When the probe took the counters shown (at most 1 s before the scrape while the probe answers).\n");
        out.push_str("# TYPE telegen_exporter_snapshot_timestamp_seconds gauge\n");
        let _ = writeln!(
            out,
            "telegen_exporter_snapshot_timestamp_seconds {}",
            c.time_ns as f64 / 1e9
        );
    }
    out.push_str("# HELP telegen_exporter_exports_total OTLP export attempts, by result.\n");
    out.push_str("# TYPE telegen_exporter_exports_total counter\n");
    let _ = writeln!(
        out,
        "telegen_exporter_exports_total{{result=\"ok\"}} {}",
        s.exports_ok
    );
    let _ = writeln!(
        out,
        "telegen_exporter_exports_total{{result=\"failed\"}} {}",
        s.exports_failed
    );
    out.push_str("# HELP telegen_exporter_last_success_timestamp_seconds When an OTLP export last succeeded.\n");
    out.push_str("# TYPE telegen_exporter_last_success_timestamp_seconds gauge\n");
    let last = s.last_success_ns.map_or(0.0, |ns| ns as f64 / 1e9);
    let _ = writeln!(
        out,
        "telegen_exporter_last_success_timestamp_seconds {last}"
    );
    out.push_str(
        "# HELP telegen_exporter_probe_connected Whether the probe's counter stream is up.\n",
    );
    out.push_str("# TYPE telegen_exporter_probe_connected gauge\n");
    let _ = writeln!(
        out,
        "telegen_exporter_probe_connected {}",
        u8::from(s.probe_connected)
    );
    out
}

async fn metrics(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    shared.fresh().await;
    let collected = shared.collect();
    let body = render(collected.as_ref(), &shared.stats.get());
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], body)
}

/// Serve /metrics on an already bound listener (binding first makes a bad
/// TELEGEN_PROM_LISTEN fail the start-up, not a background task).
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
) -> anyhow::Result<()> {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .with_state(shared);
    info!(listen = %listener.local_addr()?, "serving Prometheus text on /metrics");
    axum::serve(listener, app).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        series::{collect, tests::snapshot, JobGrace},
        stats::Stats,
    };

    #[test]
    fn text_format_with_cumulative_buckets() {
        let c = collect(
            &snapshot(),
            &JobGrace::new(std::time::Duration::from_secs(1)),
        );
        let t = render(Some(&c), &Stats::default().get());
        assert!(t.contains("bpf_packets_total{proto=\"ipv4\"} 10\n"), "{t}");
        assert!(t.contains("bpf_packets_total{proto=\"ipv4\",job_id=\"a\",interface=\"eth0\",direction=\"ingress\"} 3\n"), "{t}");
        assert!(t.contains("bpf_bytes_bucket{proto=\"ipv4\",ifindex=\"7\",interface=\"eth0\",direction=\"ingress\",le=\"+Inf\"} 5\n"), "{t}");
        assert!(t.contains("bpf_bytes_count{proto=\"ipv4\"} 10\n"));
        assert!(t.contains("bpf_errors_total{reason=\"truncated\"} 2\n"));
        assert_eq!(escape("a\"b\\\n"), "a\\\"b\\\\\\n");
    }
}
