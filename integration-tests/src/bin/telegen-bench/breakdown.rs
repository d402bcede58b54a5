//! Section 1c, breakdown: where the classifier's nanoseconds go. The
//! classifier cut at each stage (bench_objects::STAGES: parse and classify,
//! then the interface config lookup, then the hook's counter, then GRE
//! sequence tracking, i.e. all of it) under BPF_PROG_TEST_RUN beside the
//! empty program, in interleaved rounds, each stage's cost the difference to
//! the one before; then what the verifier and the JIT made of each program
//! of the real object (verified, translated and jitted sizes).

use std::fmt::Write as _;

use anyhow::{anyhow, Context, Result};
use aya::{maps::Array, programs::SchedClassifier, Ebpf, EbpfLoader};
use telegen_integration_tests::bench_objects::STAGES;
use telegen_probe::{datapath::OBJECT, maps::layout::IfCfg};

use crate::common::{median, ScratchDir};
use crate::testrun::{frames, Prog};

/// Loopback (test-run skbs arrive on ifindex 1) as a monitored interface in
/// slot 0 with one plain ingress job, as the probe would publish it.
pub fn monitor_loopback(ebpf: &mut Ebpf) -> Result<()> {
    let mut ifcfg: Array<_, IfCfg> = Array::try_from(
        ebpf.map_mut("ifcfg")
            .ok_or_else(|| anyhow!("map ifcfg missing"))?,
    )?;
    let mut cfg = IfCfg {
        slot: 0,
        valid: 1,
        njobs: [1, 0],
        ..Default::default()
    };
    cfg.jobs[0][0] = 0;
    ifcfg.set(1, cfg, 0).context("writing ifcfg[1]")
}

pub fn bench(repeat: u32, rounds: usize) -> Result<String> {
    let empty = Prog::empty()?;
    let mut stages = Vec::new();
    for (name, object) in STAGES {
        let mut p = Prog::telegen(&format!("-stage-{name}"), object)?;
        monitor_loopback(&mut p.ebpf)?;
        stages.push(p);
    }
    let wanted = [
        "IPv4/UDP",
        "802.1Q IPv4/UDP",
        "IPv6/TCP",
        "IPv4/UDP inside ERSPAN II",
    ];
    let frames: Vec<_> = frames()
        .into_iter()
        .filter(|f| wanted.contains(&f.name))
        .collect();
    let progs: Vec<&Prog> = std::iter::once(&empty).chain(stages.iter()).collect();
    // samples[frame][prog] = ns per packet, one per round
    let mut samples = vec![vec![Vec::with_capacity(rounds); progs.len()]; frames.len()];
    for r in 0..rounds {
        for (fi, f) in frames.iter().enumerate() {
            for k in 0..progs.len() {
                let pi = (k + r) % progs.len();
                samples[fi][pi].push(progs[pi].test_run(&f.bytes, repeat)?);
            }
        }
    }
    let mut s = String::new();
    writeln!(
        s,
        "repeat {repeat} per run, {rounds} interleaved rounds; medians over rounds of the kernel's ns/packet. \
         Each column is what one stage adds to the one before it (the classifier built cut after that stage, \
         `integration-tests/build.rs`); the last is the whole classifier above the empty program.\n"
    )?;
    writeln!(
        s,
        "| packet | parse + classify | + interface config lookup | + the hook's counter | + GRE sequence tracking | whole classifier above empty |"
    )?;
    writeln!(s, "|---|---:|---:|---:|---:|---:|")?;
    for (fi, f) in frames.iter().enumerate() {
        let m: Vec<f64> = samples[fi].iter().map(|v| median(v)).collect();
        let step = |i: usize| m[i] - m[i - 1];
        writeln!(
            s,
            "| {} | {:+.1} | {:+.1} | {:+.1} | {:+.1} | {:+.1} |",
            f.name,
            step(1),
            step(2),
            step(3),
            step(4),
            m[4] - m[0]
        )?;
    }
    writeln!(s, "\n{}", verifier_figures()?)?;
    Ok(s)
}

/// The verifier's and the JIT's figures of each program of the object.
fn verifier_figures() -> Result<String> {
    let pins = ScratchDir::fresh(
        format!("/sys/fs/bpf/telegen-bench-verifier-{}", std::process::id()).into(),
    )?;
    let mut ebpf = EbpfLoader::new()
        .default_map_pin_directory(&pins.0)
        .load(OBJECT)
        .context("loading the telegen object")?;
    let mut s = String::new();
    writeln!(
        s,
        "What the verifier walked and the JIT emitted (this kernel; `verified` counts the instructions the verifier \
         processed over all paths, the measure of its work, which kernels before 6.3 must keep under 1M with less \
         pruning; `translated` is the program's length):\n"
    )?;
    writeln!(
        s,
        "| program | verified insns | translated insns | jitted bytes | load + verify ms |"
    )?;
    writeln!(s, "|---|---:|---:|---:|---:|")?;
    for name in ["telegen_ingress", "telegen_egress", "telegen_deep"] {
        let p: &mut SchedClassifier = ebpf
            .program_mut(name)
            .ok_or_else(|| anyhow!("program {name} missing"))?
            .try_into()?;
        let t = std::time::Instant::now();
        p.load().with_context(|| format!("loading {name}"))?;
        let ms = t.elapsed().as_secs_f64() * 1e3;
        let info = p.info()?;
        writeln!(
            s,
            "| `{name}` | {} | {} | {} | {ms:.0} |",
            info.verified_instruction_count()
                .map_or("n/a".into(), |n| n.to_string()),
            info.size_translated().map_or(0, |b| b / 8),
            info.size_jitted()
        )?;
    }
    Ok(s)
}
