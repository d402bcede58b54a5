//! What a job's results and the counter stream say, as plain values (the
//! rpc layer turns them into protobuf).

use std::net::IpAddr;

use super::filter::proto_name;
use super::Job;

/// Packets, bytes and the size histogram of one class.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClassCounts {
    pub packets: u64,
    pub bytes: u64,
    pub hist: Vec<u64>,
}

impl ClassCounts {
    pub fn add(&mut self, o: &ClassCounts) {
        self.packets += o.packets;
        self.bytes += o.bytes;
        if self.hist.len() < o.hist.len() {
            self.hist.resize(o.hist.len(), 0);
        }
        for (a, b) in self.hist.iter_mut().zip(&o.hist) {
            *a += b;
        }
    }
}

/// One flow of a job's top flows, scaled by the sample rate when sampled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
    pub proto: u8,
    pub packets: u64,
    pub bytes: u64,
    pub estimated: bool,
}

impl Flow {
    /// The protocol's name in upper case (`UDP`), else its number.
    pub fn protocol(&self) -> String {
        proto_name(self.proto).to_ascii_uppercase()
    }

    /// `src:port->dst:port/PROTO`, IPv6 addresses in brackets.
    pub fn five_tuple(&self) -> String {
        let end = |a: IpAddr, port: u16| match a {
            IpAddr::V6(_) => format!("[{a}]:{port}"),
            IpAddr::V4(_) => format!("{a}:{port}"),
        };
        format!(
            "{}->{}/{}",
            end(self.src, self.sport),
            end(self.dst, self.dport),
            self.protocol()
        )
    }
}

/// How a flows job's table fared.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlowStats {
    pub sample_rate: u32,
    pub estimated: bool,
    pub table_size: u32,
    pub table_entries: u64,
    pub flows_seen: u64,
    pub evictions: u64,
    pub sampled_packets: u64,
    pub update_failures: u64,
}

/// A capture job's figures: kept (written to its file) and let go, by why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaptureResults {
    pub spec: super::capture::CaptureSpec,
    pub packets: u64,
    pub bytes: u64,
    pub ring_full: u64,
    pub rate_limited: u64,
    pub cap_reached: u64,
    pub copy_failed: u64,
    pub spool_dropped: u64,
    pub file_bytes: u64,
}

/// A job's results.
#[derive(Debug, Clone, PartialEq)]
pub struct Results {
    pub job: Job,
    pub window_sec: f64,
    /// (class name, counts) in the classifier's class order.
    pub by_class: Vec<(&'static str, ClassCounts)>,
    pub total: ClassCounts,
    pub hist_bounds: Vec<u64>,
    pub top_flows: Vec<Flow>,
    pub flow_stats: Option<FlowStats>,
    /// The per-job packet errors, by name.
    pub errors: Vec<(&'static str, u64)>,
    /// Filtered jobs: the packets on the job's hook its filter rejected.
    pub filter_rejected: Option<u64>,
    /// Capture jobs: what was kept and let go.
    pub capture: Option<CaptureResults>,
    pub coverage: super::coverage::Coverage,
    pub otlp_endpoint: String,
}

/// One interface's series in the counter stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfaceSeries {
    pub ifindex: u32,
    pub name: String,
    pub direction: String,
    pub start_ns: u64,
    pub by_class: Vec<(&'static str, ClassCounts)>,
}

/// One job's series in the counter stream.
#[derive(Debug, Clone, PartialEq)]
pub struct JobSeries {
    pub job: Job,
    pub by_class: Vec<(&'static str, ClassCounts)>,
}

/// Every counter at one moment, for the exporter.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub time_ns: u64,
    /// When the counters were created (0: no datapath).
    pub start_ns: u64,
    pub global: Vec<(&'static str, ClassCounts)>,
    pub interfaces: Vec<IfaceSeries>,
    pub jobs: Vec<JobSeries>,
    pub errors: Vec<(&'static str, u64)>,
    pub tunnel: Vec<(&'static str, u64)>,
    pub hist_bounds: Vec<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_tuples() {
        let f = Flow {
            src: "10.0.0.1".parse().unwrap(),
            dst: "2001:db8::1".parse().unwrap(),
            sport: 5,
            dport: 443,
            proto: 6,
            packets: 1,
            bytes: 2,
            estimated: false,
        };
        assert_eq!(f.five_tuple(), "10.0.0.1:5->[2001:db8::1]:443/TCP");
        let f = Flow { proto: 200, ..f };
        assert_eq!(f.protocol(), "200");
    }

    #[test]
    fn counts_add_up() {
        let mut a = ClassCounts::default();
        a.add(&ClassCounts {
            packets: 2,
            bytes: 100,
            hist: vec![1, 1],
        });
        a.add(&ClassCounts {
            packets: 1,
            bytes: 50,
            hist: vec![0, 1],
        });
        assert_eq!((a.packets, a.bytes, a.hist), (3, 150, vec![1, 2]));
    }
}
