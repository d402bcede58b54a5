//! Layout 2's derived figures. The classifier counts each packet once, in
//! its hook's series (interface slot, direction, class), never zeroed
//! while pinned; everything else is a sum or a difference of those:
//! - the global figures: every slot's series, plus what layout-1
//!   classifiers counted before an upgrade (stats_percpu);
//! - an interface's series per direction: its hook's series minus the base
//!   taken when the slot was given to the interface (iface_base);
//! - a plain job's: its hooks' series minus the base taken when it was
//!   published on each (job_base), plus what it counted on hooks it left
//!   (folded) and its own layout-1 counters. A filtered job counts its own.
//!
//! Bases are set, never added to: a base written again after a crash can
//! only start a figure later, never count a packet twice.

use aya::maps::{MapData, MapError, PerCpuArray};

use super::layout::*;
use super::{ClassCounters, Maps};

impl Maps {
    /// Whether the layout-2 maps are here (not in degraded mode over
    /// layout-1 pins, where the layout-1 counters are all there is).
    pub fn has_hook_series(&self) -> bool {
        self.hook_stats.is_some() && self.job_base.is_some() && self.iface_base.is_some()
    }

    fn sum_percpu<T: aya::Pod + Default>(
        map: &PerCpuArray<MapData, T>,
        key: u32,
        mut add: impl FnMut(&T),
    ) -> Result<(), MapError> {
        for v in map.get(&key, 0)?.iter() {
            add(v);
        }
        Ok(())
    }

    /// Hook (`slot`, `dir`)'s figures now, summed over CPUs.
    pub fn hook_counts(&self, slot: u32, dir: u32) -> Result<HookCounts, MapError> {
        let mut out = HookCounts::default();
        let hook = slot * 2 + dir;
        if let Some(m) = &self.hook_stats {
            for (class, c) in out.c.iter_mut().enumerate() {
                Self::sum_percpu(m, hook * N_CLASSES + class as u32, |v| c.add(v))?;
            }
        }
        if let Some(m) = &self.hook_errors {
            for (i, e) in out.err.iter_mut().enumerate() {
                Self::sum_percpu(m, hook * N_JOB_ERRORS as u32 + i as u32, |v| *e += v)?;
            }
        }
        Ok(out)
    }

    /// Every packet counted since the pins were created.
    pub fn global(&self) -> Result<ClassCounters, MapError> {
        let mut out = self.legacy_global()?;
        if self.hook_stats.is_none() {
            return Ok(out);
        }
        for slot in 0..MAX_IF_SLOTS {
            for dir in 0..2 {
                let h = self.hook_counts(slot, dir)?;
                for (a, b) in out.iter_mut().zip(h.c.iter()) {
                    a.add(b);
                }
            }
        }
        Ok(out)
    }

    /// Give interface slot `slot` a fresh start: its series count from now.
    pub fn take_iface_base(&mut self, slot: u32) -> Result<(), MapError> {
        let base = IfaceBase {
            dir: [self.hook_counts(slot, 0)?, self.hook_counts(slot, 1)?],
        };
        match &mut self.iface_base {
            Some(m) => m.set(slot, base, 0),
            None => Ok(()),
        }
    }

    /// Interface slot `slot`'s series on hook `dir` since the slot's start.
    pub fn iface_series(&self, slot: u32, dir: u32) -> Result<ClassCounters, MapError> {
        let base = match &self.iface_base {
            Some(m) => m.get(&slot, 0)?,
            None => IfaceBase::default(),
        };
        Ok(self
            .hook_counts(slot, dir)?
            .since(&base.dir[dir as usize])
            .c)
    }

    pub fn job_base(&self, slot: u32) -> Result<JobBase, MapError> {
        match &self.job_base {
            Some(m) => m.get(&slot, 0),
            None => Ok(JobBase::default()),
        }
    }

    pub fn set_job_base(&mut self, slot: u32, b: &JobBase) -> Result<(), MapError> {
        match &mut self.job_base {
            Some(m) => m.set(slot, b, 0),
            None => Ok(()),
        }
    }

    /// A plain job's figures from its hooks: folded plus, for each hook it
    /// is on, that hook's series since its base.
    pub fn derived_job(&self, b: &JobBase) -> Result<HookCounts, MapError> {
        let mut out = b.folded;
        for dir in 0..2u32 {
            if b.valid & (1 << dir) != 0 {
                out.add(
                    &self
                        .hook_counts(b.if_slot, dir)?
                        .since(&b.base[dir as usize]),
                );
            }
        }
        Ok(out)
    }

    /// A job's counters by class and its errors (job_aux order): its own
    /// (filtered, or layout 1's) plus, for a plain job, the derived ones.
    pub fn job_counters(
        &self,
        slot: u32,
        plain: bool,
    ) -> Result<(ClassCounters, [u64; N_JOB_ERRORS]), MapError> {
        let mut classes = self.own_job_counters(slot)?;
        let mut errors = self.job_aux(slot)?.err;
        if plain {
            let d = self.derived_job(&self.job_base(slot)?)?;
            for (a, b) in classes.iter_mut().zip(d.c.iter()) {
                a.add(b);
            }
            for (a, b) in errors.iter_mut().zip(d.err.iter()) {
                *a += b;
            }
        }
        Ok((classes, errors))
    }

    /// The GRE sequence figures of the tunnels arriving on `ifindex`, and
    /// the failed exports.
    pub fn coverage_totals(&self, ifindex: u32) -> CoverageTotals {
        let mut out = [0; 4];
        out[3] = self.exports_failed();
        for e in self.gre_entries(ifindex) {
            out[0] += e.v.packets;
            out[1] += e.v.lost;
            out[2] += e.v.late;
        }
        out
    }

    /// The tunnels gre_seq follows on `ifindex`, with their entries' index.
    fn gre_entries(&self, ifindex: u32) -> Vec<GreSeqEntry> {
        self.gre_indexed(ifindex)
            .into_iter()
            .map(|(_, e)| e)
            .collect()
    }

    fn gre_indexed(&self, ifindex: u32) -> Vec<(u32, GreSeqEntry)> {
        let Some(m) = &self.gre_seq else {
            return Vec::new();
        };
        (0..GRE_SEQ_ENTRIES)
            .filter_map(|i| m.get(&i, 0).ok().map(|e| (i, e)))
            .filter(|(_, e)| e.k.ifindex == ifindex && ifindex != 0)
            .collect()
    }

    /// The interface's hooks are all gone: free its tunnels' entries (no
    /// job counts on it any more, each folded what it saw).
    pub fn forget_gre(&mut self, ifindex: u32) -> Result<(), MapError> {
        for (i, _) in self.gre_indexed(ifindex) {
            if let Some(m) = &mut self.gre_seq {
                m.set(i, GreSeqEntry::default(), 0)?;
            }
        }
        Ok(())
    }

    /// A job's coverage figures since its start: for each of
    /// CoverageTotals, folded plus (while it runs) now minus its base.
    pub fn job_coverage(&self, slot: u32, ifindex: u32) -> Result<CoverageTotals, MapError> {
        let b = self.job_base(slot)?;
        let mut out = b.cov_folded;
        if b.cov_valid != 0 {
            let now = self.coverage_totals(ifindex);
            for ((o, n), base) in out.iter_mut().zip(now).zip(b.cov_base) {
                *o += n.saturating_sub(base);
            }
        }
        Ok(out)
    }

    /// A hook of `ifindex` is attached (again): the tunnels arriving there
    /// may have sent sequence numbers nobody saw meanwhile, which are not
    /// losses a job could have seen. Their next packet resynchronises.
    pub fn resync_gre(&mut self, ifindex: u32) -> Result<(), MapError> {
        for (i, mut e) in self.gre_indexed(ifindex) {
            e.v.resync = 1;
            if let Some(m) = &mut self.gre_seq {
                m.set(i, e, 0)?;
            }
        }
        Ok(())
    }

    /// Failed exports, as the exporters reported them.
    pub fn exports_failed(&self) -> u64 {
        self.export_recs
            .as_ref()
            .and_then(|m| m.get(&0, 0).ok())
            .map_or(0, |r| r.failed)
    }

    /// An exporter `instance` has failed `failed` exports since it began:
    /// what it did not report before is added to the total. A repeated
    /// report adds nothing; an instance not seen takes the place of the
    /// one heard from least recently.
    pub fn report_exports(
        &mut self,
        instance: [u8; 16],
        failed: u64,
        now_ns: u64,
    ) -> Result<u64, MapError> {
        let Some(m) = &mut self.export_recs else {
            return Ok(0);
        };
        let recs: Vec<ExportRec> = (0..EXPORT_RECS)
            .map(|i| m.get(&i, 0))
            .collect::<Result<_, _>>()?;
        let slot = (1..EXPORT_RECS as usize)
            .find(|&i| recs[i].instance == instance)
            .or_else(|| (1..EXPORT_RECS as usize).min_by_key(|&i| recs[i].updated_unix_ns))
            .unwrap_or(1);
        let known = recs[slot].instance == instance;
        let before = if known { recs[slot].failed } else { 0 };
        let added = failed.saturating_sub(before);
        let mut total = recs[0];
        total.failed += added;
        total.updated_unix_ns = now_ns;
        // The instance's record first: a crash between the two writes can
        // lose a report, never count one twice.
        let rec = ExportRec {
            instance,
            failed: failed.max(before),
            updated_unix_ns: now_ns,
        };
        m.set(slot as u32, rec, 0)?;
        m.set(0, total, 0)?;
        Ok(total.failed)
    }
}

impl Maps {
    /// The classifier's config of `ifindex` as published.
    pub fn if_cfg(&self, ifindex: u32) -> Result<IfCfg, MapError> {
        if ifindex < IFCFG_ARRAY_SIZE {
            self.ifcfg.get(&ifindex, 0)
        } else {
            match self.ifcfg_hash.get(&ifindex, 0) {
                Err(MapError::KeyNotFound) => Ok(IfCfg::default()),
                r => r,
            }
        }
    }
}
