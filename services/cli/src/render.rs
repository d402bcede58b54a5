//! Human output (aligned tables) and `--json` output. Every function writes
//! to a `Write`, so the exact text is unit-tested.

use std::{
    fmt::Display,
    io::{self, Write},
};

use serde_json::Value;
use telegen_common::rest::{FlowStats, Job, Results};

const DASH: &str = "-";

fn or_dash(v: &Option<String>) -> &str {
    v.as_deref().filter(|s| !s.is_empty()).unwrap_or(DASH)
}

fn num(v: Option<impl Display>) -> String {
    v.map_or_else(|| DASH.to_string(), |n| n.to_string())
}

fn yes_no(v: Option<bool>) -> &'static str {
    match v {
        Some(true) => "yes",
        Some(false) => "no",
        None => DASH,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Align {
    Left,
    Right,
}

/// Columns separated by two spaces, padded to the widest cell; no trailing
/// spaces.
struct Table {
    headers: Vec<&'static str>,
    align: Vec<Align>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn new(columns: &[(&'static str, Align)]) -> Self {
        Table {
            headers: columns.iter().map(|c| c.0).collect(),
            align: columns.iter().map(|c| c.1).collect(),
            rows: Vec::new(),
        }
    }

    fn row(&mut self, cells: Vec<String>) {
        debug_assert_eq!(cells.len(), self.headers.len());
        self.rows.push(cells);
    }

    fn write(&self, out: &mut impl Write, with_header: bool) -> io::Result<()> {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        if !with_header {
            widths.iter_mut().for_each(|w| *w = 0);
        }
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let header: Vec<String> = self.headers.iter().map(|h| h.to_string()).collect();
        let lines = with_header.then_some(&header).into_iter().chain(&self.rows);
        for cells in lines {
            let mut line = String::new();
            for (i, cell) in cells.iter().enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                let pad = widths[i].saturating_sub(cell.chars().count());
                match self.align[i] {
                    Align::Left => {
                        line.push_str(cell);
                        line.extend(std::iter::repeat_n(' ', pad));
                    }
                    Align::Right => {
                        line.extend(std::iter::repeat_n(' ', pad));
                        line.push_str(cell);
                    }
                }
            }
            writeln!(out, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

/// The filter keys in the order the start request documents them.
const FILTER_KEYS: [&str; 7] = [
    "ip_proto", "l4_sport", "l4_dport", "src_cidr", "dst_cidr", "dscp", "vlan",
];

/// A job's filters as `KEY=VALUE` words, lists comma-separated:
/// `ip_proto=tcp,udp l4_dport=443 vlan=100`. `None` when nothing is set.
pub fn filters_line(f: &Value) -> Option<String> {
    let item = |v: &Value| match v {
        Value::String(s) => s.clone(),
        v => v.to_string(),
    };
    let words: Vec<String> = match f {
        Value::Null => return None,
        Value::Object(m) => {
            let known = FILTER_KEYS.iter().filter_map(|k| m.get_key_value(*k));
            let other = m.iter().filter(|(k, _)| !FILTER_KEYS.contains(&k.as_str()));
            known
                .chain(other)
                .filter_map(|(k, v)| {
                    let value = match v {
                        Value::Null => return None,
                        Value::Array(a) if a.is_empty() => return None,
                        Value::Array(a) => a.iter().map(item).collect::<Vec<_>>().join(","),
                        v => item(v),
                    };
                    Some(format!("{k}={value}"))
                })
                .collect()
        }
        v => vec![item(v)],
    };
    (!words.is_empty()).then(|| words.join(" "))
}

/// One job as a key/value table (`status`, `start`, `stop`), then its
/// filters on one line when it has any.
pub fn job(out: &mut impl Write, j: &Job) -> io::Result<()> {
    let duration = match j.duration_sec {
        Some(0) => "0 (until stopped)".to_string(),
        Some(s) => format!("{s} s"),
        None => DASH.to_string(),
    };
    let table_size = match j.flow_table_size {
        Some(0) | None => DASH.to_string(),
        Some(n) => n.to_string(),
    };
    let rows: [(&str, String); 18] = [
        ("job_id", or_dash(&j.job_id).into()),
        ("status", or_dash(&j.status).into()),
        ("port", or_dash(&j.port).into()),
        ("ifindex", num(j.ifindex)),
        ("direction", or_dash(&j.direction).into()),
        ("interface", or_dash(&j.interface).into()),
        ("mirror_mode", or_dash(&j.mirror_mode).into()),
        ("fallback_reason", or_dash(&j.fallback_reason).into()),
        ("attach_mode", or_dash(&j.attach_mode).into()),
        ("duration_sec", duration),
        ("sample_rate", num(j.sample_rate)),
        ("result_detail", or_dash(&j.result_detail).into()),
        ("flow_table_size", table_size),
        ("otlp_export", yes_no(j.otlp_export).into()),
        ("started_at", or_dash(&j.started_at).into()),
        ("expires_at", or_dash(&j.expires_at).into()),
        ("stopped_at", or_dash(&j.stopped_at).into()),
        ("error", or_dash(&j.error).into()),
    ];
    let mut t = Table::new(&[("KEY", Align::Left), ("VALUE", Align::Left)]);
    for (k, v) in rows {
        t.row(vec![k.to_string(), v]);
    }
    t.write(out, false)?;
    let filters = j
        .filters
        .as_ref()
        .and_then(|f| serde_json::to_value(f).ok());
    if let Some(line) = filters.as_ref().and_then(filters_line) {
        writeln!(out, "filters: {line}")?;
    }
    if let Some(why) = &j.pending {
        writeln!(out, "pending: {why} (retried until done)")?;
    }
    Ok(())
}

/// `list`: one row per job.
pub fn job_list(out: &mut impl Write, jobs: &[Job]) -> io::Result<()> {
    if jobs.is_empty() {
        return writeln!(out, "no jobs");
    }
    let mut t = Table::new(&[
        ("ID", Align::Left),
        ("STATUS", Align::Left),
        ("PORT", Align::Left),
        ("DIRECTION", Align::Left),
        ("INTERFACE", Align::Left),
        ("MODE", Align::Left),
        ("STARTED", Align::Left),
    ]);
    for j in jobs {
        t.row(vec![
            or_dash(&j.job_id).into(),
            or_dash(&j.status).into(),
            or_dash(&j.port).into(),
            or_dash(&j.direction).into(),
            or_dash(&j.interface).into(),
            or_dash(&j.mirror_mode).into(),
            or_dash(&j.started_at).into(),
        ]);
    }
    t.write(out, true)
}

/// The label of histogram bucket `i` given the upper bounds (inclusive):
/// `<=64`, `65-128`, ..., `>9216`.
pub fn bucket_label(bounds: &[u64], i: usize) -> String {
    match i {
        0 if !bounds.is_empty() => format!("<={}", bounds[0]),
        i if i < bounds.len() => format!("{}-{}", bounds[i - 1] + 1, bounds[i]),
        i if i == bounds.len() && i > 0 => format!(">{}", bounds[i - 1]),
        i => format!("bucket {i}"),
    }
}

/// The classes in a fixed order, then any others the gateway adds.
const CLASSES: [&str; 4] = ["ipv4", "ipv6", "icmp6", "other"];

/// `results`: totals, per-class and histogram tables, top flows and errors
/// when there are any.
pub fn results(out: &mut impl Write, r: &Results) -> io::Result<()> {
    let window = r
        .window_sec
        .map_or_else(|| DASH.to_string(), |w| format!("{w:.1} s"));
    writeln!(
        out,
        "job {} ({}): {} packets, {} bytes in {}",
        or_dash(&r.job_id),
        or_dash(&r.status),
        num(r.packets_total),
        num(r.bytes_total),
        window
    )?;

    writeln!(out)?;
    let mut t = Table::new(&[
        ("PROTO", Align::Left),
        ("PACKETS", Align::Right),
        ("BYTES", Align::Right),
    ]);
    let extra = r.by_proto.keys().filter(|k| !CLASSES.contains(&k.as_str()));
    for name in CLASSES.iter().copied().chain(extra.map(String::as_str)) {
        let c = r.by_proto.get(name).cloned().unwrap_or_default();
        t.row(vec![name.to_string(), num(c.packets), num(c.bytes)]);
    }
    t.write(out, true)?;

    writeln!(out)?;
    let h = &r.size_histogram;
    let mut t = Table::new(&[("SIZE (bytes)", Align::Left), ("PACKETS", Align::Right)]);
    for (i, count) in h.counts.iter().enumerate() {
        t.row(vec![bucket_label(&h.bounds, i), count.to_string()]);
    }
    t.write(out, true)?;

    if !r.top_flows.is_empty() {
        writeln!(out)?;
        let mut t = Table::new(&[
            ("FIVE_TUPLE", Align::Left),
            ("PKTS", Align::Right),
            ("BYTES", Align::Right),
        ]);
        for f in &r.top_flows {
            let tuple = f.five_tuple.clone().unwrap_or_else(|| DASH.to_string());
            let mark = |n: Option<u64>| match (f.estimated, n) {
                (Some(true), Some(n)) => format!("~{n}"),
                (_, n) => num(n),
            };
            t.row(vec![tuple, mark(f.pkts), mark(f.bytes)]);
        }
        t.write(out, true)?;
        if r.top_flows.iter().any(|f| f.estimated == Some(true)) {
            let rate = r.flow_stats.as_ref().and_then(|s| s.sample_rate);
            match rate {
                Some(n) => writeln!(
                    out,
                    "~ scaled estimate: flow tracking sampled 1 in {n} packets \
                     (the totals above are exact)"
                )?,
                None => writeln!(
                    out,
                    "~ scaled estimate from sampled packets (the totals above are exact)"
                )?,
            }
        }
    } else if r.flow_stats.is_some() {
        writeln!(out)?;
        writeln!(out, "no flows yet")?;
    }
    if let Some(s) = &r.flow_stats {
        writeln!(out, "{}", flow_stats_line(s))?;
    }

    let errors: Vec<_> = r.errors.iter().filter(|(_, n)| **n > 0).collect();
    if !errors.is_empty() {
        writeln!(out)?;
        let mut t = Table::new(&[("ERROR", Align::Left), ("COUNT", Align::Right)]);
        for (name, n) in errors {
            t.row(vec![name.clone(), n.to_string()]);
        }
        t.write(out, true)?;
    }

    if let Some(o) = &r.otel_export {
        writeln!(out)?;
        match (o.exported, o.endpoint.as_deref().filter(|e| !e.is_empty())) {
            (Some(true), Some(e)) => writeln!(out, "otlp export: yes, to {e}")?,
            (Some(false), _) => writeln!(out, "otlp export: no")?,
            (x, e) => writeln!(out, "otlp export: {} ({})", yes_no(x), e.unwrap_or(DASH))?,
        }
    }
    Ok(())
}

/// One line on the flow table; evictions (flows pushed out of a full
/// table) and refused updates are spelled out in capitals when there are any.
pub fn flow_stats_line(s: &FlowStats) -> String {
    let rate = match s.sample_rate {
        Some(1) => "every packet".to_string(),
        Some(n) => format!("1 in {n}"),
        None => DASH.to_string(),
    };
    let mut line = format!(
        "flow table: sample rate {rate}, {}/{} entries, {} flows seen, ",
        num(s.table_entries),
        num(s.table_size),
        num(s.flows_seen),
    );
    match s.evictions {
        Some(n) if n > 0 => line.push_str(&format!(
            "{n} EVICTIONS (the table was full: flows were pushed out, top flows may be incomplete)"
        )),
        n => line.push_str(&format!("{} evictions", num(n))),
    }
    if let Some(n) = s.update_failures.filter(|n| *n > 0) {
        line.push_str(&format!(", {n} UPDATE FAILURES"));
    }
    line
}

/// Pretty-print a JSON text as it is: keys in the gateway's order, numbers
/// and strings untouched; only whitespace changes (two-space indent).
/// `text` must be valid JSON (the caller checks).
pub fn pretty_json(out: &mut impl Write, text: &str) -> io::Result<()> {
    let mut s = String::with_capacity(text.len() * 2);
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut chars = text.trim().chars().peekable();
    let newline = |s: &mut String, depth: usize| {
        s.push('\n');
        s.extend(std::iter::repeat_n("  ", depth));
    };
    while let Some(c) = chars.next() {
        if in_string {
            s.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                s.push(c);
            }
            '{' | '[' => {
                s.push(c);
                // Skip whitespace to see whether the container is empty.
                while chars.peek().is_some_and(|c| c.is_whitespace()) {
                    chars.next();
                }
                if matches!(chars.peek(), Some('}') | Some(']')) {
                    s.push(chars.next().expect("peeked"));
                } else {
                    depth += 1;
                    newline(&mut s, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut s, depth);
                s.push(c);
            }
            ',' => {
                s.push(c);
                newline(&mut s, depth);
            }
            ':' => s.push_str(": "),
            c if c.is_whitespace() => {}
            c => s.push(c),
        }
    }
    writeln!(out, "{s}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn text(f: impl FnOnce(&mut Vec<u8>) -> io::Result<()>) -> String {
        let mut buf = Vec::new();
        f(&mut buf).unwrap();
        String::from_utf8(buf).unwrap()
    }

    fn job_fixture() -> serde_json::Value {
        json!({
            "job_id": "3f0c2a9e-1b2c-4d5e-8f90-0123456789ab",
            "status": "running",
            "port": "Ethernet0",
            "direction": "ingress",
            "interface": "Ethernet0",
            "mirror_mode": "direct",
            "attach_mode": "tcx",
            "started_at": "2026-05-01T10:00:00Z",
            "expires_at": "2026-05-01T10:02:00Z",
            "stopped_at": null,
            "error": null,
            "fallback_reason": null,
            "duration_sec": 120,
            "ifindex": 7,
            "otlp_export": true,
            "result_detail": "summary",
            "sample_rate": 1,
            "new_field": [1, 2]
        })
    }

    #[test]
    fn job_is_a_key_value_table() {
        let j: Job = serde_json::from_value(job_fixture()).unwrap();
        assert_eq!(
            text(|o| job(o, &j)),
            "\
job_id           3f0c2a9e-1b2c-4d5e-8f90-0123456789ab
status           running
port             Ethernet0
ifindex          7
direction        ingress
interface        Ethernet0
mirror_mode      direct
fallback_reason  -
attach_mode      tcx
duration_sec     120 s
sample_rate      1
result_detail    summary
flow_table_size  -
otlp_export      yes
started_at       2026-05-01T10:00:00Z
expires_at       2026-05-01T10:02:00Z
stopped_at       -
error            -
"
        );
        let sparse: Job =
            serde_json::from_value(json!({"job_id": "x", "duration_sec": 0})).unwrap();
        let t = text(|o| job(o, &sparse));
        assert!(t.contains("duration_sec     0 (until stopped)\n"), "{t}");
        assert!(t.contains("status           -\n"), "{t}");
        assert!(!t.contains("filters"), "{t}");
    }

    #[test]
    fn job_filters_are_one_line_after_the_table() {
        let mut v = job_fixture();
        v["result_detail"] = json!("flows");
        v["flow_table_size"] = json!(4096);
        // Keys in the request's documented order, whatever order they come in.
        v["filters"] = json!({
            "vlan": 100, "dscp": [46], "l4_dport": [443], "ip_proto": ["tcp", "udp"]
        });
        let j: Job = serde_json::from_value(v).unwrap();
        let t = text(|o| job(o, &j));
        assert!(t.contains("\nflow_table_size  4096\n"), "{t}");
        assert!(
            t.ends_with(
                "error            -\nfilters: ip_proto=tcp,udp l4_dport=443 dscp=46 vlan=100\n"
            ),
            "{t}"
        );
    }

    #[test]
    fn filters_line_shows_what_is_set() {
        let line = |v: serde_json::Value| filters_line(&v);
        assert_eq!(
            line(json!({
                "src_cidr": ["10.0.0.0/8", "2001:db8::/32"], "dst_cidr": ["192.0.2.1/32"],
                "l4_sport": [1024, 1025], "ip_proto": ["17"], "zz_new": true
            }))
            .as_deref(),
            Some("ip_proto=17 l4_sport=1024,1025 src_cidr=10.0.0.0/8,2001:db8::/32 dst_cidr=192.0.2.1/32 zz_new=true")
        );
        assert_eq!(
            line(json!({"dscp": [], "vlan": null, "l4_dport": []})),
            None
        );
        assert_eq!(line(json!({"vlan": 0})).as_deref(), Some("vlan=0"));
        assert_eq!(line(json!({})), None);
        assert_eq!(line(json!(null)), None);
        assert_eq!(line(json!("raw")).as_deref(), Some("raw"));
        // A null or empty filters object prints nothing.
        let j: Job = serde_json::from_value(json!({"job_id": "x", "filters": null})).unwrap();
        assert!(!text(|o| job(o, &j)).contains("filters"));
        let j: Job = serde_json::from_value(json!({"job_id": "x", "filters": {}})).unwrap();
        assert!(!text(|o| job(o, &j)).contains("filters"));
    }

    #[test]
    fn list_has_one_aligned_row_per_job() {
        let a: Job = serde_json::from_value(job_fixture()).unwrap();
        let b: Job = serde_json::from_value(json!({
            "job_id": "b", "status": "stopped", "port": "Ethernet12",
            "direction": "both", "interface": "erspan0", "mirror_mode": "placeholder",
            "started_at": "2026-05-01T09:00:00Z"
        }))
        .unwrap();
        assert_eq!(
            text(|o| job_list(o, &[a, b])),
            "\
ID                                    STATUS   PORT        DIRECTION  INTERFACE  MODE         STARTED
3f0c2a9e-1b2c-4d5e-8f90-0123456789ab  running  Ethernet0   ingress    Ethernet0  direct       2026-05-01T10:00:00Z
b                                     stopped  Ethernet12  both       erspan0    placeholder  2026-05-01T09:00:00Z
"
        );
        assert_eq!(text(|o| job_list(o, &[])), "no jobs\n");
    }

    #[test]
    fn bucket_labels() {
        let bounds = [64, 128, 256, 512, 1024, 1518, 4096, 9216];
        let labels: Vec<String> = (0..9).map(|i| bucket_label(&bounds, i)).collect();
        assert_eq!(
            labels,
            [
                "<=64",
                "65-128",
                "129-256",
                "257-512",
                "513-1024",
                "1025-1518",
                "1519-4096",
                "4097-9216",
                ">9216"
            ]
        );
        // More counts than bounds + 1, or no bounds: still labelled.
        assert_eq!(bucket_label(&bounds, 9), "bucket 9");
        assert_eq!(bucket_label(&[], 0), "bucket 0");
    }

    fn results_fixture() -> serde_json::Value {
        json!({
            "job_id": "3f0c",
            "status": "running",
            "window_sec": 12.345,
            "packets_total": 12,
            "bytes_total": 1624,
            "by_proto": {
                "other": {"packets": 1, "bytes": 60},
                "ipv4": {"packets": 10, "bytes": 1000},
                "icmp6": {"packets": 0, "bytes": 0},
                "ipv6": {"packets": 1, "bytes": 564}
            },
            "size_histogram": {
                "bounds": [64, 128, 256, 512, 1024, 1518, 4096, 9216],
                "counts": [1, 10, 0, 0, 1, 0, 0, 0, 0]
            },
            "top_flows": [],
            "errors": {"truncated": 0, "ipv6_exthdr_limit": 0},
            "otel_export": {"exported": true, "endpoint": "http://localhost:4317"}
        })
    }

    #[test]
    fn results_tables() {
        let r: Results = serde_json::from_value(results_fixture()).unwrap();
        assert_eq!(
            text(|o| results(o, &r)),
            "\
job 3f0c (running): 12 packets, 1624 bytes in 12.3 s

PROTO  PACKETS  BYTES
ipv4        10   1000
ipv6         1    564
icmp6        0      0
other        1     60

SIZE (bytes)  PACKETS
<=64                1
65-128             10
129-256             0
257-512             0
513-1024            1
1025-1518           0
1519-4096           0
4097-9216           0
>9216               0

otlp export: yes, to http://localhost:4317
"
        );
    }

    #[test]
    fn results_show_flows_and_nonzero_errors() {
        let mut v = results_fixture();
        v["top_flows"] = json!([
            {"five_tuple": "udp 10.0.0.1:12345 -> 10.0.0.2:9", "pkts": 10, "bytes": 1000},
            {"five_tuple": {"proto": "tcp"}, "pkts": 2, "bytes": 120}
        ]);
        v["errors"] = json!({"truncated": 3, "global_lookup": 0});
        v["otel_export"] = json!({"exported": false, "endpoint": "http://localhost:4317"});
        v["by_proto"]["arp"] = json!({"packets": 5, "bytes": 300});
        let r: Results = serde_json::from_value(v).unwrap();
        let t = text(|o| results(o, &r));
        assert!(
            t.contains(
                "\
FIVE_TUPLE                        PKTS  BYTES
udp 10.0.0.1:12345 -> 10.0.0.2:9    10   1000
{\"proto\":\"tcp\"}                      2    120
"
            ),
            "{t}"
        );
        // Exact counts: no estimate marks, no note, no flow table line.
        assert!(!t.contains('~') && !t.contains("flow table"), "{t}");
        assert!(t.contains("\nERROR      COUNT\ntruncated      3\n"), "{t}");
        assert!(!t.contains("global_lookup"), "{t}");
        assert!(
            t.contains("\nother        1     60\narp          5    300\n"),
            "{t}"
        );
        assert!(t.ends_with("otlp export: no\n"), "{t}");
    }

    #[test]
    fn sampled_flows_are_marked_as_estimates_with_the_table_state() {
        let mut v = results_fixture();
        v["top_flows"] = json!([
            {"five_tuple": "10.0.0.1:40000->10.0.0.2:443/TCP", "pkts": 1200, "bytes": 1800000,
             "estimated": true, "src_addr": "10.0.0.1", "src_port": 40000,
             "dst_addr": "10.0.0.2", "dst_port": 443, "protocol": "TCP"},
            {"five_tuple": "[2001:db8::1]:53->[2001:db8::2]:5353/UDP", "pkts": 100,
             "bytes": 9000, "estimated": true}
        ]);
        v["flow_stats"] = json!({
            "sample_rate": 100, "sampling": "random", "estimated": true,
            "table_size": 4096, "table_entries": 812, "flows_seen": 1530,
            "evictions": 0, "sampled_packets": 13, "update_failures": 0
        });
        let r: Results = serde_json::from_value(v.clone()).unwrap();
        let t = text(|o| results(o, &r));
        assert!(
            t.contains(
                "\n\
FIVE_TUPLE                                 PKTS     BYTES
10.0.0.1:40000->10.0.0.2:443/TCP          ~1200  ~1800000
[2001:db8::1]:53->[2001:db8::2]:5353/UDP   ~100     ~9000
~ scaled estimate: flow tracking sampled 1 in 100 packets (the totals above are exact)
flow table: sample rate 1 in 100, 812/4096 entries, 1530 flows seen, 0 evictions
"
            ),
            "{t}"
        );

        // A full table stands out.
        v["flow_stats"]["evictions"] = json!(37);
        v["flow_stats"]["update_failures"] = json!(2);
        let r: Results = serde_json::from_value(v.clone()).unwrap();
        let t = text(|o| results(o, &r));
        assert!(
            t.contains(
                "flow table: sample rate 1 in 100, 812/4096 entries, 1530 flows seen, \
                 37 EVICTIONS (the table was full: flows were pushed out, top flows may be \
                 incomplete), 2 UPDATE FAILURES\n"
            ),
            "{t}"
        );

        // Flows job without flows yet, every packet tracked.
        v["top_flows"] = json!([]);
        v["flow_stats"] = json!({"sample_rate": 1, "table_size": 4096, "table_entries": 0,
                                 "flows_seen": 0, "evictions": 0});
        let r: Results = serde_json::from_value(v).unwrap();
        let t = text(|o| results(o, &r));
        assert!(
            t.contains(
                "\nno flows yet\nflow table: sample rate every packet, 0/4096 entries, \
                 0 flows seen, 0 evictions\n"
            ),
            "{t}"
        );
        assert!(!t.contains('~'), "{t}");
    }

    #[test]
    fn results_with_missing_parts_still_render() {
        let r: Results = serde_json::from_value(json!({"job_id": "x"})).unwrap();
        let t = text(|o| results(o, &r));
        assert!(t.starts_with("job x (-): - packets, - bytes in -\n"), "{t}");
        assert!(t.contains("ipv4         -      -\n"), "{t}");
    }

    #[test]
    fn pretty_json_keeps_order_and_values() {
        let body = r#"{"z":1,"a":{"s":"x, y: {[\"q\"]}","e":[],"o":{ }},"n":[1.50,2e3,-0],"t":true,"u":null}"#;
        let t = text(|o| pretty_json(o, body));
        assert_eq!(
            t,
            r#"{
  "z": 1,
  "a": {
    "s": "x, y: {[\"q\"]}",
    "e": [],
    "o": {}
  },
  "n": [
    1.50,
    2e3,
    -0
  ],
  "t": true,
  "u": null
}
"#
        );
        // Same document as the input.
        let a: serde_json::Value = serde_json::from_str(body).unwrap();
        let b: serde_json::Value = serde_json::from_str(&t).unwrap();
        assert_eq!(a, b);
        // Already pretty input is re-indented, not doubled.
        let again = text(|o| pretty_json(o, &t));
        assert_eq!(again, t);
        assert_eq!(text(|o| pretty_json(o, "\"\\\\\"")), "\"\\\\\"\n");
    }
}
