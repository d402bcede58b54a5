//! Typed access to the pinned maps: counters (read and zeroed by slot), the
//! classifier's interface config, and the probe's own persisted state.

mod added;
pub mod flows;
mod hooks;
pub mod layout;
mod names;

use names::ADDED_MAPS;
pub use names::{PINNED_MAPS, V1_DEEP_PROGS};

use aya::maps::{Array, HashMap, Map, MapData, MapError, PerCpuArray, PerCpuValues};
use aya::Ebpf;

use layout::*;

pub type ClassCounters = [Counters; N_CLASSES as usize];

/// A map operation that failed, and what it was for.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {source}")]
pub struct MapStep {
    pub what: &'static str,
    #[source]
    pub source: MapError,
}

pub struct Maps {
    stats: PerCpuArray<MapData, Counters>,
    if_stats: PerCpuArray<MapData, LabeledCounters>,
    job_stats: PerCpuArray<MapData, LabeledCounters>,
    errors: PerCpuArray<MapData, u64>,
    tunnel: PerCpuArray<MapData, u64>,
    ifcfg: Array<MapData, IfCfg>,
    ifcfg_hash: HashMap<MapData, u32, IfCfg>,
    meta: Array<MapData, Meta>,
    ifaces: Array<MapData, IfaceRec>,
    jobs: Array<MapData, JobRec>,
    job_filters: Array<MapData, KJobFilter>,
    job_aux: PerCpuArray<MapData, JobAux>,
    /// Added after the first layout: None in degraded mode over pins of a
    /// probe before them (what they hold is then not recorded).
    job_rejected: Option<PerCpuArray<MapData, u64>>,
    job_notes: Option<Array<MapData, JobNote>>,
    capture_limits: Option<Array<MapData, CaptureLimit>>,
    capture_drops: Option<PerCpuArray<MapData, CaptureDrops>>,
    /// Layout 2's hook series and the bases the probe derives figures
    /// from (hooks.rs); None only in degraded mode over layout-1 pins.
    hook_stats: Option<PerCpuArray<MapData, Counters>>,
    hook_errors: Option<PerCpuArray<MapData, u64>>,
    gre_seq: Option<Array<MapData, GreSeqEntry>>,
    iface_base: Option<Array<MapData, IfaceBase>>,
    job_base: Option<Array<MapData, JobBase>>,
    export_recs: Option<Array<MapData, ExportRec>>,
    /// Taken by the capture reader (take_capture_ring).
    capture_ring: Option<Map>,
    /// ARRAY_OF_MAPS by job slot: the flows jobs' LRU tables (flows.rs).
    job_flows: Map,
    /// Where the flow tables are pinned, one file per slot (flows.rs).
    flow_pin_dir: Option<std::path::PathBuf>,
    ncpus: usize,
}

impl Maps {
    /// The maps of the loaded object.
    pub fn take(ebpf: &mut Ebpf) -> Result<Self, MapError> {
        Self::build(|name| Ok(ebpf.take_map(name)))
    }

    /// The maps an earlier probe pinned in `dir`, without loading the
    /// object (degraded mode: the programs cannot be loaded, the pinned
    /// state can still be read and written).
    pub fn from_pins(dir: &std::path::Path) -> Result<Self, MapError> {
        Self::build(|name| {
            let path = dir.join(name);
            if !path.exists() && ADDED_MAPS.contains(&name) {
                return Ok(None);
            }
            Ok(Some(Map::from_map_data(MapData::from_pin(path)?)?))
        })
    }

    fn build(mut get: impl FnMut(&str) -> Result<Option<Map>, MapError>) -> Result<Self, MapError> {
        let ncpus = aya::util::nr_cpus().map_err(|(_, e)| {
            MapError::SyscallError(aya::sys::SyscallError {
                call: "nr_cpus",
                io_error: e,
            })
        })?;
        let job_rejected = get("job_rejected_percpu")?
            .map(TryInto::try_into)
            .transpose()?;
        let job_notes = get("job_notes")?.map(TryInto::try_into).transpose()?;
        let capture_limits = get("capture_limits")?.map(TryInto::try_into).transpose()?;
        let capture_drops = get("capture_drops_percpu")?
            .map(TryInto::try_into)
            .transpose()?;
        let capture_ring = get("capture_ring")?;
        let hook_stats = get("hook_stats_percpu")?
            .map(TryInto::try_into)
            .transpose()?;
        let hook_errors = get("hook_errors_percpu")?
            .map(TryInto::try_into)
            .transpose()?;
        let gre_seq = get("gre_seq")?.map(TryInto::try_into).transpose()?;
        let iface_base = get("iface_base")?.map(TryInto::try_into).transpose()?;
        let job_base = get("job_base")?.map(TryInto::try_into).transpose()?;
        let export_recs = get("export_recs")?.map(TryInto::try_into).transpose()?;
        let mut open = |name: &str| {
            get(name)?.ok_or_else(|| MapError::InvalidName {
                name: name.to_string(),
            })
        };
        Ok(Maps {
            stats: open("stats_percpu")?.try_into()?,
            if_stats: open("if_stats_percpu")?.try_into()?,
            job_stats: open("job_stats_percpu")?.try_into()?,
            errors: open("errors_percpu")?.try_into()?,
            tunnel: open("tunnel_percpu")?.try_into()?,
            ifcfg: open("ifcfg")?.try_into()?,
            ifcfg_hash: open("ifcfg_hash")?.try_into()?,
            meta: open("meta")?.try_into()?,
            ifaces: open("ifaces")?.try_into()?,
            jobs: open("jobs")?.try_into()?,
            job_filters: open("job_filters")?.try_into()?,
            job_aux: open("job_aux_percpu")?.try_into()?,
            job_rejected,
            job_notes,
            capture_limits,
            capture_drops,
            capture_ring,
            hook_stats,
            hook_errors,
            gre_seq,
            iface_base,
            job_base,
            export_recs,
            job_flows: open("job_flows")?,
            flow_pin_dir: None,
            ncpus,
        })
    }

    /// Pin flow tables under `dir` from now on (created if missing).
    pub fn pin_flow_tables(&mut self, dir: std::path::PathBuf) -> std::io::Result<()> {
        std::fs::create_dir_all(&dir)?;
        self.flow_pin_dir = Some(dir);
        Ok(())
    }

    /// What layout-1 classifiers counted in all (their global counters).
    fn legacy_global(&self) -> Result<ClassCounters, MapError> {
        let mut out = ClassCounters::default();
        for (class, slot) in out.iter_mut().enumerate() {
            for v in self.stats.get(&(class as u32), 0)?.iter() {
                slot.add(v);
            }
        }
        Ok(out)
    }

    fn sum_slot(
        map: &PerCpuArray<MapData, LabeledCounters>,
        slot: u32,
    ) -> Result<ClassCounters, MapError> {
        let mut out = ClassCounters::default();
        for (class, c) in out.iter_mut().enumerate() {
            for v in map.get(&(slot * N_CLASSES + class as u32), 0)?.iter() {
                c.add(&v.c);
            }
        }
        Ok(out)
    }

    fn zero_slot(
        ncpus: usize,
        map: &mut PerCpuArray<MapData, LabeledCounters>,
        slot: u32,
        owner: u32,
    ) -> Result<(), MapError> {
        for class in 0..N_CLASSES {
            let v = LabeledCounters {
                owner,
                proto: class,
                c: Counters::default(),
            };
            let values = PerCpuValues::try_from(vec![v; ncpus])?;
            map.set(slot * N_CLASSES + class, values, 0)?;
        }
        Ok(())
    }

    pub fn iface_counters(&self, slot: u32) -> Result<ClassCounters, MapError> {
        Self::sum_slot(&self.if_stats, slot)
    }

    /// A job's own counters: a filtered job's, or what a layout-1
    /// classifier counted for a plain one before its hook was upgraded.
    fn own_job_counters(&self, slot: u32) -> Result<ClassCounters, MapError> {
        Self::sum_slot(&self.job_stats, slot)
    }

    /// Zero an interface slot's counters and label them with the ifindex.
    pub fn reset_iface(&mut self, slot: u32, ifindex: u32) -> Result<(), MapError> {
        Self::zero_slot(self.ncpus, &mut self.if_stats, slot, ifindex)
    }

    /// Zero a job slot's counters, so the job counts from its own start.
    pub fn reset_job(&mut self, slot: u32) -> Result<(), MapError> {
        Self::zero_slot(self.ncpus, &mut self.job_stats, slot, slot)
    }

    pub fn errors(&self) -> Result<Vec<u64>, MapError> {
        (0..N_ERRORS)
            .map(|i| Ok(self.errors.get(&i, 0)?.iter().sum()))
            .collect()
    }

    /// Tunnelled packets by how they were counted (TUNNEL_NAMES order).
    pub fn tunnel(&self) -> Result<Vec<u64>, MapError> {
        (0..TUNNEL_NAMES.len() as u32)
            .map(|i| Ok(self.tunnel.get(&i, 0)?.iter().sum()))
            .collect()
    }

    pub fn set_ifcfg(&mut self, ifindex: u32, cfg: &IfCfg) -> Result<(), MapError> {
        if ifindex < IFCFG_ARRAY_SIZE {
            self.ifcfg.set(ifindex, cfg, 0)
        } else {
            self.ifcfg_hash.insert(ifindex, cfg, 0)
        }
    }

    pub fn clear_ifcfg(&mut self, ifindex: u32) -> Result<(), MapError> {
        if ifindex < IFCFG_ARRAY_SIZE {
            self.ifcfg.set(ifindex, IfCfg::default(), 0)
        } else {
            match self.ifcfg_hash.remove(&ifindex) {
                Err(MapError::KeyNotFound) => Ok(()),
                r => r,
            }
        }
    }

    pub fn meta(&self) -> Result<Meta, MapError> {
        self.meta.get(&0, 0)
    }

    pub fn set_meta(&mut self, m: &Meta) -> Result<(), MapError> {
        self.meta.set(0, m, 0)
    }

    pub fn iface_rec(&self, slot: u32) -> Result<IfaceRec, MapError> {
        self.ifaces.get(&slot, 0)
    }

    pub fn set_iface_rec(&mut self, slot: u32, r: &IfaceRec) -> Result<(), MapError> {
        self.ifaces.set(slot, r, 0)
    }

    pub fn job_rec(&self, slot: u32) -> Result<JobRec, MapError> {
        self.jobs.get(&slot, 0)
    }

    pub fn set_job_rec(&mut self, slot: u32, r: &JobRec) -> Result<(), MapError> {
        self.jobs.set(slot, r, 0)
    }

    pub fn job_filter(&self, slot: u32) -> Result<KJobFilter, MapError> {
        self.job_filters.get(&slot, 0)
    }

    /// Written before the job is published in if_cfg, for every job (a
    /// plain one gets an empty filter), so a recycled slot never keeps the
    /// filter of the job before.
    pub fn set_job_filter(&mut self, slot: u32, f: &KJobFilter) -> Result<(), MapError> {
        self.job_filters.set(slot, f, 0)
    }

    /// A job's errors and flow sampling state, summed over CPUs.
    pub fn job_aux(&self, slot: u32) -> Result<JobAux, MapError> {
        let mut out = JobAux::default();
        for v in self.job_aux.get(&slot, 0)?.iter() {
            out.add(v);
        }
        Ok(out)
    }

    /// Everything a job's slot needs before the job is published in
    /// if_cfg: zeroed counters, errors and sampling state, its filter, and
    /// a fresh flow table (`table` entries; 0: none, and the slot's old
    /// table is freed).
    pub fn prepare_job(
        &mut self,
        slot: u32,
        filter: &KJobFilter,
        table: u32,
    ) -> Result<(), MapStep> {
        let step = |what| move |source| MapStep { what, source };
        self.reset_job(slot)
            .map_err(step("resetting job counters"))?;
        self.set_job_base(slot, &JobBase::default())
            .map_err(step("resetting the job's base"))?;
        self.reset_job_aux(slot)
            .map_err(step("resetting job errors"))?;
        if table > 0 {
            self.new_flow_table(slot, table)
        } else {
            self.drop_flow_table(slot)
        }
        .map_err(step("creating the job's flow table"))?;
        self.set_job_filter(slot, filter)
            .map_err(step("writing the job's filter"))
    }

    pub fn reset_job_aux(&mut self, slot: u32) -> Result<(), MapError> {
        if let Some(m) = &mut self.capture_drops {
            let zero = PerCpuValues::try_from(vec![CaptureDrops::default(); self.ncpus])?;
            m.set(slot, zero, 0)?;
        }
        if let Some(m) = &mut self.job_rejected {
            m.set(slot, PerCpuValues::try_from(vec![0u64; self.ncpus])?, 0)?;
        }
        let values = PerCpuValues::try_from(vec![JobAux::default(); self.ncpus])?;
        self.job_aux.set(slot, values, 0)
    }
}
