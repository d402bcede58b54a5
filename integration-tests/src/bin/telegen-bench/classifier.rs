//! Section 1, classifier: per-packet cost under BPF_PROG_TEST_RUN: telegen's
//! classifier, the empty baseline and the seed-like program on the frames of
//! six packet classes, in interleaved rounds; then a check of the counters.

use std::fmt::Write as _;

use anyhow::{anyhow, Result};
use aya::{maps::PerCpuArray, Ebpf};
use telegen_probe::{
    datapath::OBJECT,
    maps::layout::{Counters, CLASS_NAMES, N_CLASSES, N_ERRORS},
};

use crate::common::{cell, median};
use crate::testrun::{frames, Frame, Prog};

pub fn bench(repeat: u32, rounds: usize) -> Result<String> {
    let mut real = Prog::telegen("", OBJECT)?;
    // Test-run skbs arrive on loopback (ifindex 1): configure it as an
    // interface in slot 0 with one plain ingress job in slot 0. Layout 2:
    // each packet updates its hook's counter set only; the global, the
    // interface's and the job's figures are derived from it.
    crate::breakdown::monitor_loopback(&mut real.ebpf)?;
    let empty = Prog::empty()?;
    let seed = Prog::seed_like()?;
    let progs = [&empty, &real, &seed];
    let frames = frames();

    // samples[prog][frame] = ns per run, one per round
    let mut samples = vec![vec![Vec::with_capacity(rounds); frames.len()]; progs.len()];
    for r in 0..rounds {
        for (fi, f) in frames.iter().enumerate() {
            // Rotate the program order so none always runs first.
            for k in 0..progs.len() {
                let pi = (k + r) % progs.len();
                samples[pi][fi].push(progs[pi].test_run(&f.bytes, repeat)?);
            }
        }
    }
    let mut s = table(&frames, &samples, repeat, rounds)?;
    sanity(
        &mut s,
        &real.ebpf,
        &frames,
        u64::from(repeat) * rounds as u64,
    )?;
    Ok(s)
}

/// The figures: `samples[prog][frame]` (empty, telegen, seed-like) in ns.
fn table(
    frames: &[Frame],
    samples: &[Vec<Vec<u64>>],
    repeat: u32,
    rounds: usize,
) -> Result<String> {
    let mut s = String::new();
    writeln!(
        s,
        "repeat {repeat} per run, {rounds} interleaved rounds (each round runs every program on every frame once); \
         figures are the median over rounds of the kernel's ns/packet (integer ns), with min-max over rounds. \
         telegen = `telegen_ingress` with loopback configured as a monitored interface with one plain ingress job \
         (layout 2: one counter set updated per packet, the hook's; the global, interface and job figures are derived from it); \
         seed-like = per-proto per-CPU array + per-{{ifindex,proto}} per-CPU hash, ICMPv6 counted twice.\n"
    )?;
    writeln!(
        s,
        "| packet | bytes | empty ns | telegen ns | telegen above empty | seed-like ns | seed-like above empty | seed-like / telegen (above empty) |"
    )?;
    writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|")?;
    let mut ipv4_above = None;
    for (fi, f) in frames.iter().enumerate() {
        let e = median(&samples[0][fi]);
        let t = median(&samples[1][fi]);
        let sd = median(&samples[2][fi]);
        let (ta, sa) = (t - e, sd - e);
        if fi == 0 {
            ipv4_above = Some(ta);
        }
        let ratio = if ta >= 1.0 {
            format!("{:.1}x", sa / ta)
        } else {
            "n/a (telegen < 1 ns above empty)".into()
        };
        writeln!(
            s,
            "| {} | {} | {} | {} | {:+.0} | {} | {:+.0} | {ratio} |",
            f.name,
            f.bytes.len(),
            cell(&samples[0][fi]),
            cell(&samples[1][fi]),
            ta,
            cell(&samples[2][fi]),
            sa
        )?;
    }
    if let Some(a) = ipv4_above {
        writeln!(
            s,
            "\nTelegen IPv4 cost above empty: {a:+.0} ns ({}).",
            if a <= 8.0 {
                "within the 8 ns target"
            } else {
                "ABOVE the 8 ns target"
            }
        )?;
    }
    Ok(s)
}

/// "ipv4=..., ipv6=..., ..." of per-class packets.
fn by_class(packets: &[u64]) -> String {
    packets
        .iter()
        .zip(CLASS_NAMES)
        .map(|(n, c)| format!("{c}={n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Sanity: the real program (`ebpf`) took the counting path, in the right
/// classes, for `per` packets of each frame.
fn sanity(s: &mut String, ebpf: &Ebpf, frames: &[Frame], per: u64) -> Result<()> {
    writeln!(
        s,
        "\nSanity checks (telegen's pinned counters after the runs):\n"
    )?;
    let mut expected = [0u64; N_CLASSES as usize];
    for f in frames {
        expected[f.class] += per;
    }
    let sum = |ebpf: &Ebpf, name: &str| -> Result<Vec<u64>> {
        let m: PerCpuArray<_, Counters> = PerCpuArray::try_from(
            ebpf.map(name)
                .ok_or_else(|| anyhow!("map {name} missing"))?,
        )?;
        (0..N_CLASSES)
            .map(|c| Ok(m.get(&c, 0)?.iter().map(|v| v.packets).sum()))
            .collect()
    };
    // Interface slot 0, ingress: keys 0..N_CLASSES are its classes.
    let checks = [(
        "hook_stats_percpu slot 0 ingress (the global, interface and job figures)",
        sum(ebpf, "hook_stats_percpu")?,
    )];
    let legacy: u64 = sum(ebpf, "stats_percpu")?.iter().sum();
    if legacy != 0 {
        writeln!(s, "- **stats_percpu (layout 1) written: {legacy}**")?;
    }
    let mut all_ok = true;
    for (name, got) in &checks {
        let total: u64 = got.iter().sum();
        let good = got.as_slice() == expected.as_slice();
        all_ok &= good;
        if total == 0 {
            writeln!(
                s,
                "- **{name}: all zero: the program did NOT run its counting path**"
            )?;
        } else if good {
            writeln!(s, "- {name}: ok ({})", by_class(got))?;
        } else {
            writeln!(
                s,
                "- **{name}: MISMATCH**: {} (expected {})",
                by_class(got),
                by_class(&expected)
            )?;
        }
    }
    let errors: Vec<u64> = {
        let m: PerCpuArray<_, u64> = PerCpuArray::try_from(
            ebpf.map("errors_percpu")
                .ok_or_else(|| anyhow!("map errors_percpu missing"))?,
        )?;
        (0..N_ERRORS)
            .map(|i| Ok(m.get(&i, 0)?.iter().sum()))
            .collect::<Result<_>>()?
    };
    if errors.iter().all(|&e| e == 0) {
        writeln!(s, "- errors_percpu: all zero (ok)")?;
    } else {
        all_ok = false;
        writeln!(s, "- **errors_percpu not zero**: {errors:?}")?;
    }
    if !all_ok {
        writeln!(
            s,
            "\n**The telegen figures above may not measure the full counting path.**"
        )?;
    }
    Ok(())
}
