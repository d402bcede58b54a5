//! The OTLP request: every series of one snapshot in one
//! ExportMetricsServiceRequest (one request per interval, however many
//! series), cumulative temporality, the kernel's own histogram buckets.

use opentelemetry_proto::tonic::{
    collector::metrics::v1::ExportMetricsServiceRequest,
    common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue},
    metrics::v1::{
        metric::Data, number_data_point, AggregationTemporality, Gauge, Histogram,
        HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
    },
    resource::v1::Resource,
};
use telegen_common::BuildInfo;

use crate::{
    series::{Attr, Collected},
    stats::StatsSnapshot,
};

pub const SCOPE: &str = "telegen-sonic";
const CUMULATIVE: i32 = AggregationTemporality::Cumulative as i32;

pub fn kv(key: &str, v: &Attr) -> KeyValue {
    let value = match v {
        Attr::Str(s) => any_value::Value::StringValue(s.clone()),
        Attr::Int(i) => any_value::Value::IntValue(*i),
    };
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn attrs(list: &[(&'static str, Attr)]) -> Vec<KeyValue> {
    list.iter().map(|(k, v)| kv(k, v)).collect()
}

fn int_point(attributes: Vec<KeyValue>, start: u64, time: u64, v: u64) -> NumberDataPoint {
    NumberDataPoint {
        attributes,
        start_time_unix_nano: start,
        time_unix_nano: time,
        value: Some(number_data_point::Value::AsInt(
            v.min(i64::MAX as u64) as i64
        )),
        ..Default::default()
    }
}

fn monotonic_sum(
    name: &str,
    description: &str,
    unit: &str,
    points: Vec<NumberDataPoint>,
) -> Metric {
    Metric {
        name: name.into(),
        description: description.into(),
        unit: unit.into(),
        data: Some(Data::Sum(Sum {
            data_points: points,
            aggregation_temporality: CUMULATIVE,
            is_monotonic: true,
        })),
        ..Default::default()
    }
}

/// The kernel counters as `bpf.packets`, `bpf.bytes` and `bpf.errors`.
pub fn kernel_metrics(c: &Collected) -> Vec<Metric> {
    let t = c.time_ns;
    let packets = c
        .points
        .iter()
        .map(|p| int_point(attrs(&p.attrs), p.start_ns, t, p.packets))
        .collect();
    let bounds: Vec<f64> = c.bounds.iter().map(|b| *b as f64).collect();
    let hist_points = c
        .points
        .iter()
        .map(|p| HistogramDataPoint {
            attributes: attrs(&p.attrs),
            start_time_unix_nano: p.start_ns,
            time_unix_nano: t,
            count: p.packets,
            sum: Some(p.bytes as f64),
            bucket_counts: p.hist.clone(),
            explicit_bounds: bounds.clone(),
            ..Default::default()
        })
        .collect();
    // Labelled global counters: (attribute value, count) since the epoch.
    let labelled = |key: &str, list: &[(String, u64)]| -> Vec<NumberDataPoint> {
        list.iter()
            .map(|(v, n)| {
                int_point(
                    vec![kv(key, &Attr::Str(v.clone()))],
                    c.errors_start_ns,
                    t,
                    *n,
                )
            })
            .collect()
    };
    let errors = labelled("reason", &c.errors);
    let tunnel = labelled("kind", &c.tunnel);
    vec![
        monotonic_sum(
            "bpf.packets",
            "Packets counted by the tc classifier",
            "{packet}",
            packets,
        ),
        Metric {
            name: "bpf.bytes".into(),
            description: "Sizes of the packets counted by the tc classifier (wire length)".into(),
            unit: "By".into(),
            data: Some(Data::Histogram(Histogram {
                data_points: hist_points,
                aggregation_temporality: CUMULATIVE,
            })),
            ..Default::default()
        },
        monotonic_sum(
            "bpf.errors",
            "Packets or parts of their accounting the classifier could not record",
            "{event}",
            errors,
        ),
        monotonic_sum(
            "bpf.tunnel",
            "GRE/ERSPAN packets by how they were counted: by the packet inside (erspan1/2/3, \
             gre_eth, gre_ip) or as the outer packet (outer_unopened)",
            "{packet}",
            tunnel,
        ),
    ]
}

/// The exporter's own health, in the same request.
pub fn self_metrics(s: &StatsSnapshot, now_ns: u64) -> Vec<Metric> {
    let result = |r: &str| vec![kv("result", &Attr::Str(r.into()))];
    let mut m = vec![monotonic_sum(
        "telegen.exporter.exports",
        "OTLP export attempts of the exporter, by result",
        "{export}",
        vec![
            int_point(result("ok"), s.started_ns, now_ns, s.exports_ok),
            int_point(result("failed"), s.started_ns, now_ns, s.exports_failed),
        ],
    )];
    if let Some(last) = s.last_success_ns {
        m.push(Metric {
            name: "telegen.exporter.last_success".into(),
            description: "When an export last succeeded (Unix time)".into(),
            unit: "s".into(),
            data: Some(Data::Gauge(Gauge {
                data_points: vec![NumberDataPoint {
                    time_unix_nano: now_ns,
                    value: Some(number_data_point::Value::AsDouble(last as f64 / 1e9)),
                    ..Default::default()
                }],
            })),
            ..Default::default()
        });
    }
    m
}

pub fn request(resource: &Resource, metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(resource.clone()),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: SCOPE.into(),
                    version: BuildInfo::CURRENT.version.into(),
                    ..Default::default()
                }),
                metrics,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::series::{collect, tests::snapshot, JobGrace};

    #[test]
    fn histogram_carries_the_kernel_buckets() {
        let c = collect(
            &snapshot(),
            &JobGrace::new(std::time::Duration::from_secs(1)),
        );
        let m = kernel_metrics(&c);
        assert_eq!(m[0].name, "bpf.packets");
        let Some(Data::Sum(s)) = &m[0].data else {
            panic!("sum")
        };
        assert!(s.is_monotonic);
        assert_eq!(s.aggregation_temporality, CUMULATIVE);
        let Some(Data::Histogram(h)) = &m[1].data else {
            panic!("histogram")
        };
        for p in &h.data_points {
            assert_eq!(p.bucket_counts.iter().sum::<u64>(), p.count);
            assert_eq!(p.explicit_bounds.len() + 1, p.bucket_counts.len());
            assert_eq!(p.explicit_bounds[7], 9216.0);
        }
        assert_eq!(h.data_points.len(), s.data_points.len());
    }
}
