//! Section 1b, filters: the cost of job filters and flow tracking under BPF_PROG_TEST_RUN:
//! plain, filtered and flow-tracking jobs on loopback's ingress, each above
//! the empty program in the same interleaved rounds.

use std::{fmt::Write as _, fs};

use anyhow::{anyhow, ensure, Context, Result};
use aya::{maps::ProgramArray, programs::SchedClassifier, Ebpf};
use telegen_probe::{
    datapath::OBJECT,
    domain::{filter, JobFilter},
    maps::layout::{IfCfg, JobBase},
    maps::Maps,
    rpc::convert::filter_spec,
};
use telegen_proto::v1 as pb;

use crate::common::{cell, median};
use crate::testrun::{frames, Prog};

/// One job layout of the filter bench: which job slots count on loopback's
/// ingress, with which filter, flows and sample rate.
pub struct FilterCase {
    pub name: &'static str,
    pub jobs: &'static [(bool, bool, u32)], // (filtered, flows, sample_rate)
}

pub const FILTER_CASES: [FilterCase; 7] = [
    FilterCase {
        name: "1 plain job (the plain counters)",
        jobs: &[(false, false, 1)],
    },
    FilterCase {
        name: "2 plain jobs",
        jobs: &[(false, false, 1), (false, false, 1)],
    },
    FilterCase {
        name: "8 plain jobs",
        jobs: &[(false, false, 1); 8],
    },
    FilterCase {
        name: "1 filtered job",
        jobs: &[(true, false, 1)],
    },
    FilterCase {
        name: "2 filtered jobs",
        jobs: &[(true, false, 1), (true, false, 1)],
    },
    FilterCase {
        name: "1 filtered job + flows, sample_rate 1",
        jobs: &[(true, true, 1)],
    },
    FilterCase {
        name: "1 filtered job + flows, sample_rate 100",
        jobs: &[(true, true, 100)],
    },
];

/// Configure loopback (test-run skbs arrive on ifindex 1) for `case`, through
/// the probe's own map code, with fresh counters and flow tables.
pub fn apply_filter_case(maps: &mut Maps, case: &FilterCase, filter: &JobFilter) -> Result<()> {
    let mut cfg = IfCfg {
        slot: 0,
        valid: 1,
        njobs: [case.jobs.len() as u8, 0],
        ..Default::default()
    };
    for (slot, &(filtered, flows, rate)) in case.jobs.iter().enumerate() {
        let f = if filtered {
            filter.to_kernel(flows, rate)
        } else {
            JobFilter::default().to_kernel(flows, rate)
        };
        maps.prepare_job(slot as u32, &f, if flows { 1024 } else { 0 })
            .map_err(|e| anyhow!(e))?;
        if !filtered {
            // Published on loopback's ingress (interface slot 0): counted
            // from the hook's series since now, as the probe does.
            let base = JobBase {
                valid: 1,
                if_slot: 0,
                base: [maps.hook_counts(0, 0)?, Default::default()],
                ..Default::default()
            };
            maps.set_job_base(slot as u32, &base)?;
        }
        cfg.jobs[0][slot] = slot as u8;
        if filtered || flows {
            cfg.deep |= 1;
        }
    }
    maps.set_ifcfg(1, &cfg).context("writing ifcfg[1]")?;
    Ok(())
}

pub fn bench(repeat: u32, rounds: usize) -> Result<String> {
    // BENCH_OBJECT: another build of ebpf/telegen.bpf.c (to compare variants).
    let variant = match std::env::var_os("BENCH_OBJECT") {
        Some(p) => Some(fs::read(&p).with_context(|| format!("reading {p:?}"))?),
        None => None,
    };
    let mut real = Prog::telegen("-filters", variant.as_deref().unwrap_or(OBJECT))?;
    let mut maps = Maps::take(&mut real.ebpf)?;
    publish_deep(&mut real.ebpf)?;
    let empty = Prog::empty()?;
    let (filter, frame) = bench_filter_and_frame()?;

    // samples[case] = (empty, telegen) ns per run, one per round
    let mut samples = vec![(Vec::new(), Vec::new()); FILTER_CASES.len()];
    let mut last_flows = None;
    for r in 0..rounds {
        for (ci, case) in FILTER_CASES.iter().enumerate() {
            apply_filter_case(&mut maps, case, &filter)?;
            if r % 2 == 0 {
                samples[ci].0.push(empty.test_run(&frame, repeat)?);
                samples[ci].1.push(real.test_run(&frame, repeat)?);
            } else {
                samples[ci].1.push(real.test_run(&frame, repeat)?);
                samples[ci].0.push(empty.test_run(&frame, repeat)?);
            }
            let counted: u64 = maps
                .job_counters(0, !case.jobs[0].0)?
                .0
                .iter()
                .map(|c| c.packets)
                .sum();
            ensure!(
                variant.is_some() || counted == u64::from(repeat),
                "{}: job 0 counted {counted} of {repeat} packets: the filter did not match",
                case.name
            );
            if case.jobs[0].1 && variant.is_none() {
                let t = maps
                    .flow_table(0)?
                    .ok_or_else(|| anyhow!("{}: no flow table", case.name))?;
                let aux = maps.job_aux(0)?;
                last_flows = Some((case.name, t.count(), aux.sampled, case.jobs[0].2));
                ensure!(t.count() == 1, "{}: {} flows", case.name, t.count());
            }
        }
    }

    let mut s = String::new();
    writeln!(
        s,
        "The IPv4/UDP frame of the table above on loopback's ingress, with the jobs of each row on it; \
         repeat {repeat} per run, {rounds} interleaved rounds, median ns/packet (min-max). \
         A filtered job's filter matches the frame on protocol, destination port (3-entry list), \
         destination prefix (2-entry list) and DSCP, so every check runs. \
         Flows: the frame is one flow, so the table update is the existing-flow path. \
         The last column compares the fastest round of each (noise on a shared machine only adds).\n"
    )?;
    writeln!(
        s,
        "| jobs on the hook | empty ns | telegen ns | above empty | above the plain counters | same, from the fastest rounds |"
    )?;
    writeln!(s, "|---|---:|---:|---:|---:|---:|")?;
    let above: Vec<f64> = samples.iter().map(|(e, t)| median(t) - median(e)).collect();
    let fastest = |v: &[u64]| *v.iter().min().unwrap_or(&0) as f64;
    let above_min: Vec<f64> = samples
        .iter()
        .map(|(e, t)| fastest(t) - fastest(e))
        .collect();
    for (ci, case) in FILTER_CASES.iter().enumerate() {
        writeln!(
            s,
            "| {} | {} | {} | {:+.0} | {:+.0} | {:+.0} |",
            case.name,
            cell(&samples[ci].0),
            cell(&samples[ci].1),
            above[ci],
            above[ci] - above[0],
            above_min[ci] - above_min[0]
        )?;
    }
    // Against the targets of counters v2 (issue 19): the case, its name in
    // the text, and the most it may add over the plain counters.
    let verdict = |ci: usize, what: &str, limit: f64| {
        let over = above[ci] - above[0];
        format!(
            "{what} adds {over:+.0} ns/packet over the plain counters ({:+.0} from the fastest rounds; {} the {limit:.0} ns target)",
            above_min[ci] - above_min[0],
            if over <= limit { "within" } else { "ABOVE" }
        )
    };
    writeln!(
        s,
        "\n- {}.\n- {}.\n- {}.",
        verdict(2, "Going from 1 to 8 plain jobs on one hook", 1.0),
        verdict(3, "A filtered job", 15.0),
        verdict(6, "A filtered job with flows at sample_rate 100", 20.0),
    )?;
    if let Some((name, flows, sampled, rate)) = last_flows {
        writeln!(
            s,
            "\nSanity: every case's job 0 counted all {repeat} packets of each run; last flows case ({name}): {flows} flow, {sampled} packets sampled of {repeat} (1 in {rate})."
        )?;
    }
    drop(maps);
    drop(real);
    Ok(s)
}

/// A filter the IPv4/UDP frame (the first of the classifier table) matches
/// on every field it sets, so each check runs: protocol, destination port
/// list, destination prefix, DSCP; and that frame.
pub fn bench_filter_and_frame() -> Result<(JobFilter, Vec<u8>)> {
    let filter = filter::parse(&filter_spec(pb::Filters {
        ip_proto: vec!["udp".into(), "tcp".into()],
        l4_dport: vec![53, 443, 5001],
        dst_cidr: vec!["192.0.2.0/24".into(), "10.0.0.0/8".into()],
        dscp: vec![0, 46],
        ..Default::default()
    }))
    .map_err(|e| anyhow!(e))?;
    let frame = frames()
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("no frames"))?
        .bytes;
    Ok((filter, frame))
}

/// Load the deep program, tail-called on hooks where a job filters or tracks
/// flows, and publish it in deep_progs_v2 as the probe does.
pub fn publish_deep(ebpf: &mut Ebpf) -> Result<()> {
    let deep: &mut SchedClassifier = ebpf
        .program_mut("telegen_deep")
        .ok_or_else(|| anyhow!("program telegen_deep missing"))?
        .try_into()?;
    deep.load().context("loading telegen_deep")?;
    let fd = deep.fd()?.try_clone()?;
    let mut progs: ProgramArray<_> = ProgramArray::try_from(
        ebpf.map_mut("deep_progs_v2")
            .ok_or_else(|| anyhow!("map deep_progs_v2 missing"))?,
    )?;
    progs.set(0, &fd, 0)?;
    Ok(())
}
