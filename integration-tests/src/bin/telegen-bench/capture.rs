//! Section 1c, capture: the per-packet cost of a capture job (result_detail
//! pcaplike) at sample_rate 1 and 100 against the same filtered job without
//! capture, under BPF_PROG_TEST_RUN, above the empty program in the same
//! interleaved rounds. The ring is drained after every run, so each packet
//! takes the real path (limits, copy, ring) and never the ring-full one.

use std::fmt::Write as _;

use anyhow::{anyhow, ensure, Result};
use telegen_probe::{
    datapath::OBJECT,
    maps::layout::{CaptureLimit, IfCfg, KJobFilter, CAPTURE_PROBE_SLOT, F_CAPTURE},
    maps::Maps,
};

use crate::common::{cell, median};
use crate::filters::{bench_filter_and_frame, publish_deep};
use crate::testrun::Prog;

/// (name, capture, sample_rate)
const CASES: [(&str, bool, u32); 3] = [
    ("1 filtered job (no capture)", false, 1),
    ("1 filtered job + capture, sample_rate 1", true, 1),
    ("1 filtered job + capture, sample_rate 100", true, 100),
];

/// Packets per run: what the 8 MiB ring holds of the frame at sample_rate
/// 1 (each record is the frame, a 24-byte header and 8 of the ring's).
pub const CAPTURE_REPEAT: u32 = 40_000;

pub fn bench(rounds: usize) -> Result<String> {
    let mut real = Prog::telegen("-capture", OBJECT)?;
    let mut maps = Maps::take(&mut real.ebpf)?;
    publish_deep(&mut real.ebpf)?;
    let mut ring = maps
        .take_capture_ring()
        .ok_or_else(|| anyhow!("no capture ring"))?;
    let empty = Prog::empty()?;
    let (filter, frame) = bench_filter_and_frame()?;
    let repeat = CAPTURE_REPEAT;
    // No limit in the way: the bench measures the capture, not a drop.
    maps.set_capture_limit(CAPTURE_PROBE_SLOT, &CaptureLimit::default())?;
    let mut samples = vec![(Vec::new(), Vec::new()); CASES.len()];
    let mut captured = vec![0u64; CASES.len()];
    for r in 0..rounds {
        for (ci, &(_, capture, rate)) in CASES.iter().enumerate() {
            let mut k = filter.to_kernel(false, rate);
            if capture {
                k.flags |= F_CAPTURE;
                k.snaplen = 9216;
            }
            prepare(&mut maps, &k)?;
            let run = |p: &Prog| p.test_run(&frame, repeat);
            if r % 2 == 0 {
                samples[ci].0.push(run(&empty)?);
                samples[ci].1.push(run(&real)?);
            } else {
                samples[ci].1.push(run(&real)?);
                samples[ci].0.push(run(&empty)?);
            }
            let mut n = 0u64;
            while ring.next().is_some() {
                n += 1;
            }
            captured[ci] = n;
            let d = maps.capture_drops(0)?;
            ensure!(
                d.ring_full == 0 && d.cap_reached == 0 && d.rate_limited == 0,
                "{}: the capture dropped packets ({d:?}): the figure would not be the capture's",
                CASES[ci].0
            );
        }
    }
    ensure!(
        captured[1] == u64::from(repeat),
        "sample_rate 1 captured {} of {repeat}",
        captured[1]
    );
    let mut s = String::new();
    writeln!(
        s,
        "The filtered job of the previous table, the same frame ({} bytes, kept whole: snaplen 9216), \
         with and without a capture; repeat {repeat} per run (what the ring holds at sample_rate 1; \
         it is drained after each run), {rounds} interleaved rounds, median ns/packet (min-max).\n",
        frame.len()
    )?;
    writeln!(s, "| job | empty ns | telegen ns | above empty | the capture's cost | packets captured per run |")?;
    writeln!(s, "|---|---:|---:|---:|---:|---:|")?;
    let above: Vec<f64> = samples.iter().map(|(e, t)| median(t) - median(e)).collect();
    for (ci, (name, _, _)) in CASES.iter().enumerate() {
        writeln!(
            s,
            "| {name} | {} | {} | {:+.0} | {:+.0} | {} |",
            cell(&samples[ci].0),
            cell(&samples[ci].1),
            above[ci],
            above[ci] - above[0],
            captured[ci]
        )?;
    }
    writeln!(
        s,
        "\nA capture costs {:+.0} ns per captured packet at sample_rate 1 (the copy into the ring, two spin-locked limits), and {:+.0} ns per packet at sample_rate 100.",
        above[1] - above[0],
        above[2] - above[0]
    )?;
    Ok(s)
}

/// Job slot 0 as the probe prepares it (no capture limit, the filter,
/// fresh counters) and published on loopback's ingress.
fn prepare(maps: &mut Maps, k: &KJobFilter) -> Result<()> {
    maps.set_capture_limit(0, &CaptureLimit::default())?;
    maps.prepare_job(0, k, 0).map_err(|e| anyhow!(e))?;
    let cfg = IfCfg {
        slot: 0,
        valid: 1,
        njobs: [1, 0],
        deep: 1,
        ..Default::default()
    };
    maps.set_ifcfg(1, &cfg)?;
    Ok(())
}
