//! Upgrading the pins of layout 1 (a probe before counters v2) in place:
//! running jobs keep running and their counts continue.
//!
//! Layout 2 keeps every layout-1 map as it was and adds its own, so the
//! upgrade only has to move counting from one program to the other, hook by
//! hook, such that each packet is counted by exactly one of them:
//! 1. every interface slot takes its base (its layout-2 series start now);
//! 2. every plain job on a hook takes that hook's base (zero: no layout-2
//!    program counts there yet), so its figures become what the layout-1
//!    classifier counted for it (job_stats_percpu, frozen once replaced)
//!    plus what the layout-2 one counts from the replacement on;
//! 3. each hook's program is replaced in place (TCX link update, tc filter
//!    replace at the same priority and handle): never two, never none;
//! 4. once no hook runs a layout-1 program, layout 1's deep prog array is
//!    unpinned and the pins say layout 2.
//!
//! Every step is idempotent: a probe killed half-way finishes the upgrade
//! when it starts again (bases are taken only where missing; hooks already
//! replaced say so in their record). A hook left on layout 1 (its
//! replacement failed) counts right too: into the layout-1 counters, which
//! the derived figures include.

use tracing::{info, warn};

use super::bases::{listed, take_base};
use super::maps::layout::{MAX_JOB_SLOTS, PROG_GENERATION};
use super::maps::V1_DEEP_PROGS;
use super::LiveKernel;
use crate::domain::DIR_NAMES;
use crate::jobs::ports::KernelError;
use crate::timefmt::now_ns;

fn map(what: &'static str) -> impl FnOnce(aya::maps::MapError) -> KernelError {
    move |source| KernelError::Map { what, source }
}

impl LiveKernel {
    /// Upgrade pins of an older layout, if these are. Returns the hooks
    /// replaced.
    pub async fn upgrade_pins(&mut self) -> Result<usize, KernelError> {
        let from = self.dp.pinned_layout;
        if self.dp.off.is_some() || from >= super::maps::layout::LAYOUT_VERSION {
            return Ok(0);
        }
        info!(
            from,
            to = super::maps::layout::LAYOUT_VERSION,
            "upgrading the pinned maps in place"
        );
        // A job's base that a layout-1 probe never wrote is all zero: only
        // the slots of jobs not yet ended are looked at.
        let live: Vec<u8> = (0..MAX_JOB_SLOTS as u8)
            .filter(|&j| {
                let rec = self.dp.maps.job_rec(j.into()).ok();
                rec.and_then(|r| super::records::job_from_rec(j.into(), &r))
                    .is_some_and(|job| !job.state.is_final())
            })
            .collect();
        // A deep hook's new classifier tail-calls the layout-2 deep program:
        // it must be there before the first hook is replaced.
        let deep = self.ifaces.iter().filter(|r| r.used != 0).any(|r| {
            self.dp
                .maps
                .if_cfg(r.ifindex)
                .is_ok_and(|c| c.valid != 0 && c.deep != 0)
        });
        if deep {
            self.dp
                .ensure_deep()
                .map_err(|e| KernelError::DeepProgram(super::datapath::brief(&e.to_string())))?;
        }
        let mut replaced = 0;
        let mut left = 0;
        for s in 0..self.ifaces.len() {
            let mut rec = self.ifaces[s];
            if rec.used == 0 {
                continue;
            }
            let pending = rec
                .hook
                .iter()
                .any(|h| h.attached != 0 && h.generation < PROG_GENERATION);
            if pending {
                self.dp
                    .maps
                    .take_iface_base(s as u32)
                    .map_err(map("taking the interface's base"))?;
                rec.start_unix_ns = now_ns();
            }
            let cfg = self
                .dp
                .maps
                .if_cfg(rec.ifindex)
                .map_err(map("reading interface config"))?;
            let gre = self.dp.maps.coverage_totals(rec.ifindex);
            for dir in 0..2 {
                for &j in listed(&cfg, dir).iter().filter(|j| live.contains(j)) {
                    take_base(&mut self.dp.maps, j, dir, s as u32, gre, true)?;
                }
            }
            let name = self.netlink.ifname(rec.ifindex).await.ok().flatten();
            for (dir, dir_name) in DIR_NAMES.iter().enumerate() {
                let h = rec.hook[dir];
                if h.attached == 0 || h.generation >= PROG_GENERATION {
                    continue;
                }
                let Some(name) = &name else {
                    left += 1;
                    continue;
                };
                match self.dp.replace_hook(name, rec.ifindex, dir, &h) {
                    Ok(new) => {
                        rec.hook[dir] = new;
                        replaced += 1;
                    }
                    Err(e) => {
                        left += 1;
                        warn!(ifindex = rec.ifindex, dir = dir_name, error = %e, "hook left on the older classifier; it keeps counting into the older counters");
                    }
                }
            }
            self.dp
                .maps
                .set_iface_rec(s as u32, &rec)
                .map_err(map("persisting attachment record"))?;
            self.ifaces[s] = rec;
        }
        if left > 0 {
            warn!(
                left,
                replaced, "upgrade incomplete; the next start tries again"
            );
            return Ok(replaced);
        }
        let old = self.dp.pin_dir.join(V1_DEEP_PROGS);
        if old.exists() {
            if let Err(e) = std::fs::remove_file(&old) {
                warn!(path = %old.display(), error = %e, "unpinning layout 1's deep program");
            }
        }
        let mut meta = self.dp.maps.meta().map_err(map("reading the pins' meta"))?;
        meta.layout_version = super::maps::layout::LAYOUT_VERSION;
        self.dp
            .maps
            .set_meta(&meta)
            .map_err(map("writing the pins' layout"))?;
        self.dp.pinned_layout = meta.layout_version;
        info!(replaced, "pinned maps upgraded; counts continue");
        Ok(replaced)
    }
}
