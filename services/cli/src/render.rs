//! Human output (aligned tables) and `--json` output. Every function writes
//! to a `Write`, so the exact text is unit-tested.

use std::{
    fmt::Display,
    io::{self, Write},
};

use serde_json::Value;
use telegen_common::rest::{FlowStats, Job, Results};

mod coverage;
mod json;

use coverage::coverage_line;
pub use json::pretty_json;

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
    let mut rows: Vec<(&str, String)> = vec![
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
    // Sonic jobs only: what the switch's session copies, and why.
    if let Some(scope) = &j.mirror_scope {
        let at = rows
            .iter()
            .position(|(k, _)| *k == "attach_mode")
            .unwrap_or(0);
        rows.insert(at, ("mirror_scope", scope.clone()));
        if let Some(why) = &j.mirror_scope_reason {
            rows.insert(at + 1, ("mirror_scope_reason", why.clone()));
        }
    }
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
    if let Some(n) = r.filter_rejected {
        writeln!(
            out,
            "filter_rejected: {n} packets on the hook did not match the filters"
        )?;
    }
    if let Some(c) = &r.coverage {
        writeln!(out, "{}", coverage_line(c))?;
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

#[cfg(test)]
mod tests;
