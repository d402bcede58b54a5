//! Reconciliation: make the attachments and the classifier config of one
//! interface match the jobs that want it. Used by start, stop, expiry and
//! restart adoption alike, so there is one path that attaches and detaches.

use tracing::{info, warn};

use super::{Inner, JobManager};
use crate::attach::{AttachMode, DIR_NAMES};
use crate::maps::layout::{put_str, HookRec, IfCfg, IfaceRec, MAX_JOBS_PER_HOOK, PROG_GENERATION};
use crate::timefmt::now_ns;

impl JobManager {
    /// Returns the attach mode in use on the interface, None when nothing
    /// is attached (no job wants it, or no datapath).
    pub(super) async fn reconcile(
        &self,
        inner: &mut Inner,
        ifindex: u32,
    ) -> Result<Option<AttachMode>, String> {
        if inner.dp.is_none() {
            return Ok(None);
        }
        let mut want: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
        let mut deep = 0u8;
        for job in inner
            .jobs
            .iter()
            .flatten()
            .filter(|j| j.ifindex == ifindex && j.wants_attachment())
        {
            for (dir, slots) in want.iter_mut().enumerate() {
                if job.hook_direction().has(dir) && slots.len() < MAX_JOBS_PER_HOOK {
                    slots.push(job.slot as u8);
                    if job.is_deep() {
                        deep |= 1 << dir;
                    }
                }
            }
        }
        let existing = inner
            .ifaces
            .iter()
            .position(|r| r.used != 0 && r.ifindex == ifindex);
        if want.iter().all(Vec::is_empty) {
            if let Some(s) = existing {
                self.release_iface(inner, s).await;
            }
            return Ok(None);
        }
        let name = self
            .netlink
            .ifname(ifindex)
            .await
            .map_err(|e| format!("interface lookup: {e}"))?
            .ok_or_else(|| format!("interface {ifindex} disappeared"))?;
        let mut first_prio = [None, None];
        if inner
            .dp
            .as_ref()
            .is_some_and(|dp| dp.mode == AttachMode::Tc)
        {
            for (dir, prio) in first_prio.iter_mut().enumerate() {
                *prio = self
                    .netlink
                    .first_filter_prio(ifindex, dir)
                    .await
                    .map_err(|e| format!("listing tc filters: {e}"))?;
            }
        }
        let dp = inner.dp.as_mut().expect("checked above");
        // A hook adopted from a probe before filters runs a classifier that
        // ignores them: a filtered job there would count everything.
        if let Some(rec) = existing.map(|s| inner.ifaces[s]) {
            for (dir, (h, dir_name)) in rec.hook.iter().zip(DIR_NAMES).enumerate() {
                if deep & (1 << dir) != 0 && h.attached != 0 && h.generation < PROG_GENERATION {
                    return Err(format!(
                        "the classifier on {name} {dir_name} was attached by an older probe that cannot filter or track flows; stop the jobs on this interface first, so it is re-attached"
                    ));
                }
            }
        }
        if deep != 0 {
            dp.ensure_deep().map_err(|e| {
                format!(
                    "loading the filter and flow program: {}",
                    crate::datapath::brief(&e.to_string())
                )
            })?;
        }
        let s = match existing {
            Some(s) => s,
            None => {
                let s = inner
                    .ifaces
                    .iter()
                    .position(|r| r.used == 0)
                    .ok_or("all interface slots are in use")?;
                dp.maps
                    .reset_iface(s as u32, ifindex)
                    .map_err(|e| format!("resetting interface counters: {e}"))?;
                inner.ifaces[s] = IfaceRec {
                    ifindex,
                    used: 1,
                    name: put_str(&name),
                    start_unix_ns: now_ns(),
                    ..Default::default()
                };
                s
            }
        };
        // Config first: the first packet after attach already counts.
        let mut cfg = IfCfg {
            slot: s as u32,
            valid: 1,
            deep,
            ..Default::default()
        };
        for (dir, slots) in want.iter().enumerate() {
            cfg.njobs[dir] = slots.len() as u8;
            cfg.jobs[dir][..slots.len()].copy_from_slice(slots);
        }
        dp.maps
            .set_ifcfg(ifindex, &cfg)
            .map_err(|e| format!("writing interface config: {e}"))?;
        let mut rec = inner.ifaces[s];
        let mut result = Ok(());
        for (dir, slots) in want.iter().enumerate() {
            let attached = rec.hook[dir].attached != 0;
            if !slots.is_empty() && !attached {
                match dp.attach_hook(&name, ifindex, dir, first_prio[dir]) {
                    Ok(a) => {
                        rec.hook[dir] = a.hook;
                        rec.created_qdisc |= a.created_qdisc as u8;
                    }
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
            } else if slots.is_empty() && attached {
                dp.detach_hook(&name, ifindex, dir, &rec.hook[dir])?;
                rec.hook[dir] = HookRec::default();
            }
            // Recorded after each step, so a crash leaves no unrecorded hook.
            if let Err(e) = dp.maps.set_iface_rec(s as u32, &rec) {
                warn!(ifindex, error = %e, "persisting attachment record");
            }
        }
        inner.ifaces[s] = rec;
        result?;
        Ok(rec.hook.iter().find_map(|h| AttachMode::from_code(h.mode)))
    }

    /// Detach every hook of interface slot `s`, clear its config, and remove
    /// the clsact qdisc only when we created it and no filter is left on it.
    async fn release_iface(&self, inner: &mut Inner, s: usize) {
        let mut rec = inner.ifaces[s];
        let dp = inner.dp.as_mut().expect("caller checked");
        let name = self.netlink.ifname(rec.ifindex).await.ok().flatten();
        let ifindex = rec.ifindex;
        for (dir, hook) in rec.hook.iter_mut().enumerate() {
            if hook.attached == 0 {
                continue;
            }
            if let Some(name) = &name {
                if let Err(e) = dp.detach_hook(name, ifindex, dir, hook) {
                    warn!(ifindex, dir = DIR_NAMES[dir], error = %e, "detach");
                }
            } else if AttachMode::from_code(hook.mode) == Some(AttachMode::Tcx) {
                // Interface gone: its TCX link is defunct; drop our pin.
                let _ = std::fs::remove_file(dp.link_pin(ifindex, dir));
            }
            *hook = HookRec::default();
        }
        if let Err(e) = dp.maps.clear_ifcfg(rec.ifindex) {
            warn!(ifindex = rec.ifindex, error = %e, "clearing interface config");
        }
        if rec.created_qdisc != 0 && name.is_some() {
            match self.netlink.clsact_filters(rec.ifindex).await {
                Ok(0) => match self.netlink.delete_clsact(rec.ifindex).await {
                    Ok(()) => info!(ifindex = rec.ifindex, "removed the clsact qdisc we created"),
                    Err(e) => warn!(ifindex = rec.ifindex, error = %e, "removing our clsact qdisc"),
                },
                Ok(n) => info!(
                    ifindex = rec.ifindex,
                    filters = n,
                    "leaving clsact qdisc: other filters use it"
                ),
                Err(e) => {
                    warn!(ifindex = rec.ifindex, error = %e, "listing tc filters; leaving clsact")
                }
            }
        }
        let rec = IfaceRec::default();
        if let Err(e) = dp.maps.set_iface_rec(s as u32, &rec) {
            warn!(error = %e, "persisting attachment record");
        }
        inner.ifaces[s] = rec;
    }

    /// TCX link pins under links/ that no record mentions are ours (only the
    /// probe writes there) and orphaned by a crash mid-attach: unpin them.
    pub(super) fn remove_unrecorded_links(&self, inner: &Inner) {
        let Some(dp) = inner.dp.as_ref() else { return };
        let Ok(entries) = std::fs::read_dir(dp.pin_dir.join("links")) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let recorded = inner.ifaces.iter().filter(|r| r.used != 0).any(|r| {
                (0..2).any(|d| {
                    r.hook[d].mode == AttachMode::Tcx as u8 && dp.link_pin(r.ifindex, d) == path
                })
            });
            if !recorded {
                warn!(path = %path.display(), "removing orphaned tcx link pin");
                let _ = std::fs::remove_file(&path);
            }
        }
    }
}
