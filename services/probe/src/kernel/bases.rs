//! Bases of the derived figures (maps/hooks.rs), moved when a hook's job
//! list changes: a job published on a hook takes that hook's figures as
//! its base; a job leaving one folds what it counted there. Called before
//! the new config is published, so a base never misses a packet the job's
//! hook counted for it, and each move is one write of the job's base.

use super::maps::layout::{IfCfg, JobBase, F_MATCH};
use super::LiveKernel;
use crate::jobs::ports::{HookWant, KernelError};

fn map(what: &'static str) -> impl FnOnce(aya::maps::MapError) -> KernelError {
    move |source| KernelError::Map { what, source }
}

pub(super) fn listed(cfg: &IfCfg, dir: usize) -> &[u8] {
    let n = (cfg.njobs[dir] as usize).min(cfg.jobs[dir].len());
    if cfg.valid == 0 {
        &[]
    } else {
        &cfg.jobs[dir][..n]
    }
}

impl LiveKernel {
    /// Interface slot `s` of `ifindex` goes from its published job lists to
    /// `want`'s.
    pub(super) fn move_bases(
        &mut self,
        s: u32,
        ifindex: u32,
        want: &HookWant,
    ) -> Result<(), KernelError> {
        let maps = &mut self.dp.maps;
        if !maps.has_hook_series() {
            return Ok(());
        }
        let mut old = maps
            .if_cfg(ifindex)
            .map_err(map("reading interface config"))?;
        if old.slot != s {
            old.valid = 0;
        }
        let same = |dir: usize| {
            let before = listed(&old, dir);
            before.len() == want.slots[dir].len()
                && before.iter().all(|j| want.slots[dir].contains(j))
        };
        if same(0) && same(1) {
            return Ok(());
        }
        let gre = maps.coverage_totals(ifindex);
        let mut touched: Vec<u8> = Vec::new();
        for dir in 0..2 {
            let before = listed(&old, dir);
            let after = &want.slots[dir];
            for &j in after.iter().filter(|j| !before.contains(j)) {
                take_base(maps, j, dir, s, gre, false)?;
                touched.push(j);
            }
            for &j in before.iter().filter(|j| !after.contains(j)) {
                let mut b = maps
                    .job_base(j.into())
                    .map_err(map("reading a job's base"))?;
                fold(maps, &mut b, dir, s)?;
                let stays = want.slots.iter().any(|l| l.contains(&j)) || touched.contains(&j);
                if !stays && b.cov_valid != 0 {
                    for (f, (now, base)) in b.cov_folded.iter_mut().zip(gre.iter().zip(b.cov_base))
                    {
                        *f += now.saturating_sub(base);
                    }
                    b.cov_valid = 0;
                }
                maps.set_job_base(j.into(), &b)
                    .map_err(map("writing a job's base"))?;
            }
        }
        Ok(())
    }
}

/// Job `j` is published on hook (`s`, `dir`): a plain job takes the
/// hook's figures as its base there (`only_missing`: unless it has one),
/// every job the coverage figures (tunnel, exports) unless it has them.
pub(super) fn take_base(
    maps: &mut super::maps::Maps,
    j: u8,
    dir: usize,
    s: u32,
    gre: super::maps::layout::CoverageTotals,
    only_missing: bool,
) -> Result<(), KernelError> {
    let plain = maps
        .job_filter(j.into())
        .map_err(map("reading a job's filter"))?
        .flags
        & F_MATCH
        == 0;
    let mut b = maps
        .job_base(j.into())
        .map_err(map("reading a job's base"))?;
    let has = b.valid & (1 << dir) != 0 && b.if_slot == s;
    if plain && !(only_missing && has) {
        b.valid |= 1 << dir;
        b.if_slot = s;
        b.base[dir] = maps
            .hook_counts(s, dir as u32)
            .map_err(map("reading hook counters"))?;
    }
    if b.cov_valid == 0 {
        b.cov_base = gre;
        b.cov_valid = 1;
    }
    maps.set_job_base(j.into(), &b)
        .map_err(map("writing a job's base"))
}

/// What job base `b` counted on hook (`s`, `dir`), into its folded figures.
fn fold(maps: &super::maps::Maps, b: &mut JobBase, dir: usize, s: u32) -> Result<(), KernelError> {
    if b.valid & (1 << dir) == 0 || b.if_slot != s {
        return Ok(());
    }
    let now = maps
        .hook_counts(s, dir as u32)
        .map_err(map("reading hook counters"))?;
    b.folded.add(&now.since(&b.base[dir]));
    b.valid &= !(1 << dir);
    Ok(())
}
