//! Coverage: what a job's figures may lack, with every result. Counters
//! are exact for what reached the classifier; coverage says what did not
//! reach it (GRE sequence gaps upstream), what a job's flows and captures
//! kept of what did (sampling, evictions, drops), and what did not reach
//! the OTLP backend (failed exports).

use super::Job;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coverage {
    pub sample_rate: u32,
    pub error_bound: String,
    pub tunnel_sequenced: u64,
    pub upstream_lost: u64,
    pub upstream_late: u64,
    pub flow_evictions: u64,
    pub flow_update_failures: u64,
    pub capture_dropped: u64,
    pub exports_failed: u64,
    pub complete: bool,
}

/// The 95% bound of a flow estimate of `estimate` packets from 1-in-`rate`
/// sampling: each packet is sampled with p = 1/rate, so the estimate
/// (sampled x rate) has a variance of estimate x (rate - 1) (binomial).
pub fn error_95(estimate: u64, rate: u32) -> f64 {
    1.96 * (estimate as f64 * (rate.max(1) - 1) as f64).sqrt()
}

impl Coverage {
    /// `raw`: the job's [GRE sequenced, lost, late, failed exports] since
    /// it started; `flows`: its flow table's evictions and refused updates;
    /// `capture_dropped`: the packets its capture let go.
    pub fn of(job: &Job, raw: [u64; 4], flows: (u64, u64), capture_dropped: u64) -> Coverage {
        let samples = job.flows_detail || job.capture.is_some();
        let rate = if samples { job.sample_rate.max(1) } else { 1 };
        let error_bound = if rate > 1 {
            format!(
                "flow estimates: +-1.96*sqrt(estimate*{}) packets at 95% confidence (+-{:.0}% at 1000 packets)",
                rate - 1,
                100.0 * error_95(1000, rate) / 1000.0
            )
        } else {
            String::new()
        };
        let mut c = Coverage {
            sample_rate: rate,
            error_bound,
            tunnel_sequenced: raw[0],
            upstream_lost: raw[1],
            upstream_late: raw[2],
            flow_evictions: flows.0,
            flow_update_failures: flows.1,
            capture_dropped,
            exports_failed: if job.otlp_export { raw[3] } else { 0 },
            complete: false,
        };
        c.complete = [
            c.upstream_lost,
            c.flow_evictions,
            c.flow_update_failures,
            c.capture_dropped,
            c.exports_failed,
        ]
        .iter()
        .all(|&n| n == 0);
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_loss_makes_a_job_incomplete_and_sampling_states_its_bound() {
        let mut job = crate::jobs::fakes::job_template();
        job.otlp_export = true;
        let c = Coverage::of(&job, [10, 0, 0, 0], (0, 0), 0);
        assert!(c.complete, "{c:?}");
        assert_eq!((c.sample_rate, c.error_bound.as_str()), (1, ""));
        for (i, raw) in [[10, 1, 0, 0], [10, 0, 0, 2]].into_iter().enumerate() {
            assert!(!Coverage::of(&job, raw, (0, 0), 0).complete, "case {i}");
        }
        // Late packets alone lose nothing.
        assert!(Coverage::of(&job, [10, 0, 3, 0], (0, 0), 0).complete);
        assert!(!Coverage::of(&job, [0; 4], (4, 0), 0).complete, "evictions");
        assert!(
            !Coverage::of(&job, [0; 4], (0, 0), 3).complete,
            "capture drops"
        );
        job.otlp_export = false;
        assert!(
            Coverage::of(&job, [0, 0, 0, 5], (0, 0), 0).complete,
            "not exported"
        );
        job.flows_detail = true;
        job.sample_rate = 100;
        let c = Coverage::of(&job, [0; 4], (0, 0), 0);
        assert_eq!(c.sample_rate, 100);
        // sqrt(1000 * 99) * 1.96 = 616.7: +-62% at 1000 packets.
        assert!(c.error_bound.contains("+-62% at 1000"), "{}", c.error_bound);
        assert!((error_95(1000, 100) - 616.7).abs() < 0.1);
    }
}
