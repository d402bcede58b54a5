//! The kernel side: the BPF datapath (load, pins, attach), its maps, and
//! netlink, the probe's only user of rtnetlink. `LiveKernel` is the job
//! core's `Kernel` port over them.

pub mod attach;
mod bases;
pub mod datapath;
pub mod error;
pub mod info;
pub mod maps;
mod migrate;
pub mod netlink;
mod pins;
mod reconcile;
pub mod records;
pub mod rlimit;

use std::sync::Arc;

use crate::domain::{AttachMode, ClassCounts, Job, DIR_NAMES};
use crate::jobs::ports::{
    DeepLoader, FlowSource, FlowTableRead, HookWant, Hooked, IfaceCounters, JobCounters, Kernel,
    KernelCapture, KernelCounters, KernelError, RawFlow,
};
use datapath::Datapath;
use maps::layout::{
    get_str, Counters, IfaceRec, ERROR_NAMES, JOB_ERROR_INDEX, MAX_IF_SLOTS, MAX_JOB_SLOTS,
    TUNNEL_NAMES,
};
use maps::{ClassCounters, MapStep};
use netlink::Netlink;

impl From<MapStep> for KernelError {
    fn from(e: MapStep) -> Self {
        KernelError::Map {
            what: e.what,
            source: e.source,
        }
    }
}

fn map(what: &'static str) -> impl FnOnce(aya::maps::MapError) -> KernelError {
    move |source| KernelError::Map { what, source }
}

fn counts(c: &Counters) -> ClassCounts {
    ClassCounts {
        packets: c.packets,
        bytes: c.bytes,
        hist: c.hist.to_vec(),
    }
}

fn classes(cc: &ClassCounters) -> Vec<ClassCounts> {
    cc.iter().map(counts).collect()
}

impl FlowSource for maps::flows::FlowTable {
    fn size(&self) -> u32 {
        self.size
    }
    fn kept_of(&self) -> Option<u64> {
        self.kept_of
    }
    fn for_each(&self, f: &mut dyn FnMut(RawFlow)) {
        maps::flows::FlowTable::for_each(self, |k, v| f(records::raw_flow(k, v)));
    }
}

/// The loaded datapath with its interface records.
pub struct LiveKernel {
    dp: Datapath,
    netlink: Arc<Netlink>,
    /// The pinned `ifaces` records, by interface slot.
    ifaces: Vec<IfaceRec>,
}

impl LiveKernel {
    pub fn new(dp: Datapath, netlink: Arc<Netlink>) -> Self {
        let ifaces = (0..MAX_IF_SLOTS)
            .map(|s| dp.maps.iface_rec(s).unwrap_or_default())
            .collect();
        LiveKernel {
            dp,
            netlink,
            ifaces,
        }
    }

    pub fn attach_mode(&self) -> AttachMode {
        self.dp.mode
    }
}

#[tonic::async_trait]
impl Kernel for LiveKernel {
    fn load_jobs(&self) -> Vec<Job> {
        (0..MAX_JOB_SLOTS)
            .filter_map(|slot| {
                let rec = self.dp.maps.job_rec(slot).ok()?;
                let mut job = records::job_from_rec(slot, &rec)?;
                if let Ok(k) = self.dp.maps.job_filter(slot) {
                    job.filter = crate::domain::JobFilter::from_kernel(&k);
                    let limit = self.dp.maps.capture_limit(slot).ok().flatten();
                    records::apply_capture(&mut job, &k, limit.as_ref());
                }
                if let Ok(Some(n)) = self.dp.maps.job_note(slot) {
                    records::apply_note(&mut job, &n);
                }
                Some(job)
            })
            .collect()
    }

    fn persist(&mut self, job: &Job) -> Result<(), KernelError> {
        // The filter first: a record never names a filter it lacks.
        if job.state.is_active() {
            self.dp
                .maps
                .set_job_filter(job.slot, &records::job_filter(job))
                .map_err(map("writing the job's filter"))?;
        }
        // The note before the record that points at it.
        self.dp
            .maps
            .set_job_note(job.slot, &records::job_note(job))
            .map_err(map("writing the job's note"))?;
        self.dp
            .maps
            .set_job_rec(job.slot, &records::job_to_rec(job))
            .map_err(map("writing the job record"))
    }

    fn forget(&mut self, slot: u32) -> Result<(), KernelError> {
        self.dp
            .maps
            .set_job_rec(slot, &Default::default())
            .map_err(map("freeing the job record"))
    }

    fn prepare_job(&mut self, job: &Job) -> Result<(), KernelError> {
        // The limit before the filter that turns capturing on.
        let limit = job
            .capture
            .as_ref()
            .map(records::capture_limit)
            .unwrap_or_default();
        self.dp
            .maps
            .set_capture_limit(job.slot, &limit)
            .map_err(map("writing the job's capture limits"))?;
        Ok(self
            .dp
            .maps
            .prepare_job(job.slot, &records::job_filter(job), job.flow_table_size)?)
    }

    fn deep_loader(&self) -> Option<DeepLoader> {
        let load = self.dp.deep_loader()?;
        Some(Box::new(move || {
            load().map_err(|e| KernelError::DeepProgram(datapath::brief(&e.to_string())))
        }))
    }

    async fn reconcile(&mut self, ifindex: u32, want: &HookWant) -> Result<Hooked, KernelError> {
        self.reconcile_hooks(ifindex, want).await
    }

    fn hooked_ifindexes(&self) -> Vec<u32> {
        self.ifaces
            .iter()
            .filter(|r| r.used != 0)
            .map(|r| r.ifindex)
            .collect()
    }

    fn remove_unrecorded_links(&mut self) {
        self.unpin_unrecorded_links();
    }

    fn job_counters(&self, job: &Job) -> Result<JobCounters, KernelError> {
        let maps = &self.dp.maps;
        let plain = records::job_filter(job).flags & maps::layout::F_MATCH == 0;
        let (cc, err) = maps
            .job_counters(job.slot, plain)
            .map_err(map("reading job counters"))?;
        let aux = maps.job_aux(job.slot).map_err(map("reading job errors"))?;
        let filter_rejected = maps
            .job_rejected(job.slot)
            .map_err(map("reading the job's rejected packets"))?;
        let capture = match job.capture {
            None => None,
            Some(_) => {
                let l = maps
                    .capture_limit(job.slot)
                    .map_err(map("reading the job's capture limit"))?
                    .unwrap_or_default();
                let d = maps
                    .capture_drops(job.slot)
                    .map_err(map("reading the job's capture drops"))?;
                Some(KernelCapture {
                    packets: l.packets,
                    ring_full: d.ring_full,
                    rate_limited: d.rate_limited,
                    cap_reached: d.cap_reached,
                    copy_failed: d.copy_failed,
                })
            }
        };
        let flows = FlowTableRead {
            flows_seen: aux.flows_new,
            sampled_packets: aux.sampled,
            update_failures: aux.flow_fail,
            ..Default::default()
        };
        Ok(JobCounters {
            classes: classes(&cc),
            errors: crate::domain::limits::JOB_ERROR_NAMES
                .iter()
                .zip(JOB_ERROR_INDEX)
                .map(|(&name, i)| (name, err[i]))
                .collect(),
            flows,
            filter_rejected,
            capture,
            coverage: maps
                .job_coverage(job.slot, job.ifindex)
                .map_err(map("reading the job's coverage"))?,
        })
    }

    fn flow_table(&self, job: &Job) -> Result<Option<Box<dyn FlowSource>>, KernelError> {
        if !job.flows_detail {
            return Ok(None);
        }
        let table = self
            .dp
            .maps
            .flow_table(job.slot)
            .map_err(map("opening the flow table"))?;
        Ok(table.map(|t| Box::new(t) as Box<dyn FlowSource>))
    }

    fn keep_flows(
        &mut self,
        job: &Job,
        top: &[RawFlow],
        size: u32,
        held: u64,
    ) -> Result<(), KernelError> {
        let top: Vec<_> = top.iter().map(records::flow_entry).collect();
        self.dp
            .maps
            .keep_flow_table(job.slot, &top, size, held)
            .map_err(map("keeping the top flows"))
    }

    fn report_exports(&mut self, instance: [u8; 16], failed: u64) -> Result<u64, KernelError> {
        self.dp
            .maps
            .report_exports(instance, failed, crate::timefmt::now_ns())
            .map_err(map("recording failed exports"))
    }

    fn counters(&self) -> Result<KernelCounters, KernelError> {
        let maps = &self.dp.maps;
        let mut interfaces = Vec::new();
        for (slot, rec) in self.ifaces.iter().enumerate().filter(|(_, r)| r.used != 0) {
            let slot = slot as u32;
            let attached = (0..2).filter(|&d| rec.hook[d].attached != 0);
            let series = |hooks: String, cc: ClassCounters| IfaceCounters {
                ifindex: rec.ifindex,
                name: get_str(&rec.name),
                hooks,
                start_ns: rec.start_unix_ns,
                classes: classes(&cc),
            };
            if !maps.has_hook_series() {
                // Degraded over layout-1 pins: one series per interface.
                let dirs: Vec<&str> = attached.map(|d| DIR_NAMES[d]).collect();
                let hooks = if dirs.len() == 2 {
                    "both".into()
                } else {
                    dirs.concat()
                };
                let cc = maps
                    .iface_counters(slot)
                    .map_err(map("reading interface counters"))?;
                interfaces.push(series(hooks, cc));
                continue;
            }
            for d in attached {
                let cc = maps
                    .iface_series(slot, d as u32)
                    .map_err(map("reading interface counters"))?;
                interfaces.push(series(DIR_NAMES[d].into(), cc));
            }
        }
        let errors = maps.errors().map_err(map("reading error counters"))?;
        let tunnel = maps.tunnel().map_err(map("reading tunnel counters"))?;
        Ok(KernelCounters {
            epoch_ns: self.dp.epoch_ns,
            global: classes(&maps.global().map_err(map("reading global counters"))?),
            interfaces,
            errors: ERROR_NAMES.iter().copied().zip(errors).collect(),
            tunnel: TUNNEL_NAMES.iter().copied().zip(tunnel).collect(),
        })
    }
}
