//! Reconciliation: make the attachments and the classifier config of one
//! interface match the job slots that want it. Start, stop, expiry and
//! restart adoption all come here, so there is one path that attaches and
//! detaches. The interface records (`ifaces`) are the kernel side's own.

use tracing::{info, warn};

use super::attach;
use super::datapath::PROG_NAMES;
use super::maps::layout::{put_str, HookRec, IfCfg, IfaceRec, PROG_GENERATION};
use super::records::{attach_code, attach_from_code};
use super::LiveKernel;
use crate::domain::{AttachMode, DIR_NAMES};
use crate::jobs::ports::{HookWant, Hooked, KernelError};

/// `HookRec::attached` of a tc filter recorded but maybe not attached yet.
const ATTACHING: u8 = 2;

/// What a recorded tc hook's (priority, handle) holds now.
enum Found {
    Ours,
    /// Gone, or someone else's filter: never ours to detach.
    Lost(Option<String>),
}
use crate::timefmt::now_ns;

fn netlink(what: &'static str) -> impl FnOnce(rtnetlink::Error) -> KernelError {
    move |e| KernelError::Netlink {
        what,
        source: std::io::Error::other(e.to_string()),
    }
}

fn map(what: &'static str) -> impl FnOnce(aya::maps::MapError) -> KernelError {
    move |source| KernelError::Map { what, source }
}

impl LiveKernel {
    /// Returns the attach mode in use on the interface, None when nothing
    /// is attached (no job wants it).
    pub(super) async fn reconcile_hooks(
        &mut self,
        ifindex: u32,
        want: &HookWant,
    ) -> Result<Hooked, KernelError> {
        let deep = want.deep;
        let existing = self
            .ifaces
            .iter()
            .position(|r| r.used != 0 && r.ifindex == ifindex);
        let lost = match existing {
            Some(s) => self.forget_lost_hooks(s).await?,
            None => Vec::new(),
        };
        if let Some(s) = existing {
            self.move_bases(s as u32, ifindex, want)?;
        }
        if want.is_empty() {
            if let Some(s) = existing {
                self.release_iface(s).await;
            }
            return Ok(Hooked { mode: None, lost });
        }
        let name = self
            .netlink
            .ifname(ifindex)
            .await
            .map_err(netlink("interface lookup"))?
            .ok_or(KernelError::InterfaceGone(ifindex))?;
        let mut first_prio = [None, None];
        if self.dp.mode == AttachMode::Tc {
            for (dir, prio) in first_prio.iter_mut().enumerate() {
                *prio = self
                    .netlink
                    .first_filter_prio(ifindex, dir)
                    .await
                    .map_err(netlink("listing tc filters"))?;
            }
        }
        // A hook adopted from a probe before filters runs a classifier that
        // ignores them: a filtered job there would count everything.
        if let Some(rec) = existing.map(|s| self.ifaces[s]) {
            for (dir, (h, dir_name)) in rec.hook.iter().zip(DIR_NAMES).enumerate() {
                if deep & (1 << dir) != 0 && h.attached != 0 && h.generation < PROG_GENERATION {
                    return Err(KernelError::OldClassifier {
                        iface: name,
                        dir: dir_name,
                    });
                }
            }
        }
        let dp = &mut self.dp;
        // Degraded (no programs loaded): hooks already attached keep
        // tail-calling the deep program an earlier probe pinned.
        if deep != 0 && dp.off.is_none() {
            dp.ensure_deep()
                .map_err(|e| KernelError::DeepProgram(super::datapath::brief(&e.to_string())))?;
        }
        let s = match existing {
            Some(s) => s,
            None => {
                let s = self
                    .ifaces
                    .iter()
                    .position(|r| r.used == 0)
                    .ok_or(KernelError::NoInterfaceSlot)?;
                dp.maps
                    .reset_iface(s as u32, ifindex)
                    .map_err(map("resetting interface counters"))?;
                dp.maps
                    .take_iface_base(s as u32)
                    .map_err(map("taking the interface's base"))?;
                self.ifaces[s] = IfaceRec {
                    ifindex,
                    used: 1,
                    name: put_str(&name),
                    start_unix_ns: now_ns(),
                    ..Default::default()
                };
                s
            }
        };
        if existing.is_none() {
            self.move_bases(s as u32, ifindex, want)?;
        }
        let dp = &mut self.dp;
        // Config first: the first packet after attach already counts.
        let mut cfg = IfCfg {
            slot: s as u32,
            valid: 1,
            deep,
            ..Default::default()
        };
        for (dir, slots) in want.slots.iter().enumerate() {
            cfg.njobs[dir] = slots.len() as u8;
            cfg.jobs[dir][..slots.len()].copy_from_slice(slots);
        }
        dp.maps
            .set_ifcfg(ifindex, &cfg)
            .map_err(map("writing interface config"))?;
        let mut rec = self.ifaces[s];
        let mut result = Ok(());
        for (dir, slots) in want.slots.iter().enumerate() {
            let attached = rec.hook[dir].attached != 0;
            if !slots.is_empty() && !attached {
                if let Err(e) = dp.maps.resync_gre(ifindex) {
                    warn!(ifindex, error = %e, "resynchronising GRE sequence tracking");
                }
                let prio = attach::tc_priority(&name, dir, first_prio[dir]);
                if dp.mode == AttachMode::Tc {
                    // Intent first: the filter is named before it exists.
                    rec.hook[dir] = HookRec {
                        attached: ATTACHING,
                        mode: attach_code(AttachMode::Tc),
                        generation: PROG_GENERATION,
                        priority: prio.into(),
                        handle: attach::TC_HANDLE,
                    };
                    dp.maps
                        .set_iface_rec(s as u32, &rec)
                        .map_err(map("recording the tc filter about to be attached"))?;
                }
                match dp.attach_hook(&name, ifindex, dir, prio) {
                    Ok(a) => {
                        rec.hook[dir] = a.hook;
                        rec.created_qdisc |= a.created_qdisc as u8;
                    }
                    Err(e) => {
                        rec.hook[dir] = HookRec::default();
                        result = Err(KernelError::Attach(e.to_string()));
                    }
                }
            } else if slots.is_empty() && attached {
                dp.detach_hook(&name, ifindex, dir, &rec.hook[dir])
                    .map_err(|e| KernelError::Attach(e.to_string()))?;
                rec.hook[dir] = HookRec::default();
            }
            // Recorded after each step, so a crash leaves no unrecorded hook.
            if let Err(e) = dp.maps.set_iface_rec(s as u32, &rec) {
                warn!(ifindex, error = %e, "persisting attachment record");
            }
            if result.is_err() {
                break;
            }
        }
        self.ifaces[s] = rec;
        result?;
        Ok(Hooked {
            mode: rec.hook.iter().find_map(|h| attach_from_code(h.mode)),
            lost,
        })
    }

    /// Whether the tc filter a hook record names is still there and ours
    /// (a bpf filter running one of our programs, by name).
    async fn tc_hook(&self, ifindex: u32, dir: usize, h: &HookRec) -> Result<Found, KernelError> {
        let at = self
            .netlink
            .tc_filter_at(ifindex, dir, h.priority as u16, h.handle)
            .await
            .map_err(netlink("listing tc filters"))?;
        Ok(match at {
            Some(name) if PROG_NAMES.contains(&name.as_str()) => Found::Ours,
            other => Found::Lost(other),
        })
    }

    /// Drop from interface slot `s`'s record the hooks that are gone or
    /// taken (an operator's `tc qdisc del`, another tool at our old
    /// priority and handle, a TCX link detached by hand), so that they are
    /// attached again if wanted and never detached. Which hooks were lost.
    async fn forget_lost_hooks(&mut self, s: usize) -> Result<Vec<&'static str>, KernelError> {
        let mut rec = self.ifaces[s];
        let mut lost = Vec::new();
        let mut changed = false;
        for (dir, dir_name) in DIR_NAMES.iter().enumerate() {
            let h = rec.hook[dir];
            if h.attached == 0 {
                continue;
            }
            if attach_from_code(h.mode) == Some(AttachMode::Tcx) {
                // A detached link (`bpftool link detach`) keeps its pin.
                let pin = self.dp.link_pin(rec.ifindex, dir);
                match super::attach::tcx_link_ifindex(&pin) {
                    Ok(Some(i)) if i == rec.ifindex => {}
                    Ok(found) => {
                        warn!(ifindex = rec.ifindex, dir = dir_name, found = ?found, "our tcx link is gone or detached; forgetting it");
                        let _ = std::fs::remove_file(&pin);
                        rec.hook[dir] = HookRec::default();
                        lost.push(*dir_name);
                    }
                    Err(e) => warn!(ifindex = rec.ifindex, error = %e, "checking our tcx link"),
                }
                continue;
            }
            let found = self.tc_hook(rec.ifindex, dir, &h).await?;
            if h.attached == ATTACHING {
                // A probe died attaching: what it named is ours if there;
                // nothing was lost if not.
                rec.hook[dir] = match found {
                    Found::Ours => HookRec { attached: 1, ..h },
                    Found::Lost(_) => HookRec::default(),
                };
                info!(
                    ifindex = rec.ifindex,
                    dir = dir_name,
                    adopted = rec.hook[dir].attached != 0,
                    "finished an interrupted tc attach"
                );
                changed = true;
                continue;
            }
            if let Found::Lost(found) = found {
                warn!(ifindex = rec.ifindex, dir = dir_name, priority = h.priority, handle = h.handle, found = ?found, "our tc filter is gone or taken; forgetting it");
                rec.hook[dir] = HookRec::default();
                // Whose clsact is there now is not known: never delete it.
                rec.created_qdisc = 0;
                lost.push(*dir_name);
            }
        }
        if changed || !lost.is_empty() {
            self.dp
                .maps
                .set_iface_rec(s as u32, &rec)
                .map_err(map("persisting attachment record"))?;
            self.ifaces[s] = rec;
        }
        Ok(lost)
    }

    /// Detach every hook of interface slot `s`, clear its config, and remove
    /// the clsact qdisc only when we created it and no filter is left on it.
    async fn release_iface(&mut self, s: usize) {
        let mut rec = self.ifaces[s];
        let dp = &mut self.dp;
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
            } else if attach_from_code(hook.mode) == Some(AttachMode::Tcx) {
                // Interface gone: its TCX link is defunct; drop our pin.
                let _ = std::fs::remove_file(dp.link_pin(ifindex, dir));
            }
            *hook = HookRec::default();
        }
        if let Err(e) = dp.maps.clear_ifcfg(rec.ifindex) {
            warn!(ifindex = rec.ifindex, error = %e, "clearing interface config");
        }
        if let Err(e) = dp.maps.forget_gre(rec.ifindex) {
            warn!(ifindex = rec.ifindex, error = %e, "freeing its GRE sequence entries");
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
        self.ifaces[s] = rec;
    }

    /// TCX link pins under links/ that no record mentions are ours (only the
    /// probe writes there) and orphaned by a crash mid-attach: unpin them.
    pub(super) fn unpin_unrecorded_links(&self) {
        let dp = &self.dp;
        let Ok(entries) = std::fs::read_dir(dp.pin_dir.join("links")) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let recorded = self.ifaces.iter().filter(|r| r.used != 0).any(|r| {
                (0..2).any(|d| {
                    r.hook[d].mode == attach_code(AttachMode::Tcx)
                        && dp.link_pin(r.ifindex, d) == path
                })
            });
            if !recorded {
                warn!(path = %path.display(), "removing orphaned tcx link pin");
                let _ = std::fs::remove_file(&path);
            }
        }
    }
}
