//! The fakes' shared world: what they have done, which steps fail, and
//! the probe's life (a dead probe's fakes do nothing more).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use uuid::Uuid;

use crate::domain::Job;
use crate::jobs::ports::HookWant;

/// A step of a port that can be made to fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    Lookup,
    Persist,
    Prepare,
    Reconcile,
    Ensure,
    Release,
    Create,
    WriteAcl,
    WaitActive,
    Delete,
}

pub const ALL_STEPS: [Step; 10] = [
    Step::Lookup,
    Step::Persist,
    Step::Prepare,
    Step::Reconcile,
    Step::Ensure,
    Step::Release,
    Step::Create,
    Step::WriteAcl,
    Step::WaitActive,
    Step::Delete,
];

pub const PORT_IFINDEX: u32 = 7;
pub const NETDEV_IFINDEX: u32 = 20;

/// What the fakes have done to the world.
#[derive(Debug, Default)]
pub struct World {
    /// Pinned job records by slot.
    pub records: BTreeMap<u32, Job>,
    /// Hooks attached, by ifindex: the job slots they count.
    pub hooks: BTreeMap<u32, HookWant>,
    /// SONiC sessions in CONFIG_DB, by job.
    pub sessions: BTreeSet<Uuid>,
    /// Jobs with ACL tables and rules in CONFIG_DB (with their rule count).
    pub acls: BTreeMap<Uuid, usize>,
    /// Capture files by job: whether closed.
    pub captures: BTreeMap<Uuid, bool>,
    /// The erspan netdev exists (created by us).
    pub netdev: bool,
    /// Interfaces whose hook an operator removed (reconcile finds it lost).
    pub lost: BTreeSet<u32>,
    pub failing: BTreeSet<Step>,
    pub now_ns: u64,
    pub boot_ns: u64,
    /// The probe's life: fakes of an older one (a crashed probe) have no
    /// effect any more, and their async steps never return.
    pub generation: u64,
    /// Effects (writes, creates, deletes, waits) done so far.
    pub effects: u64,
    /// The probe "is SIGKILLed" right after this many effects.
    pub crash_after: Option<u64>,
}

/// The world, as seen by the fakes of one probe's life (`.1`).
#[derive(Clone, Default)]
pub struct Shared(pub Arc<Mutex<World>>, u64);

impl Shared {
    pub fn world(&self) -> std::sync::MutexGuard<'_, World> {
        self.0.lock().unwrap()
    }
    /// Whether step `s` fails now: injected, or this probe is dead.
    pub(super) fn fails(&self, s: Step) -> bool {
        let w = self.world();
        w.generation != self.1 || w.failing.contains(&s)
    }
    /// An async step: never returns once this probe is dead (as a killed
    /// process's syscall never does); else whether it fails.
    pub(super) async fn gate(&self, s: Step) -> bool {
        if self.world().generation != self.1 {
            std::future::pending::<()>().await;
        }
        self.fails(s)
    }
    /// After an effect: counted; the probe dies if it was the last one.
    pub(super) fn done(&self) {
        let mut w = self.world();
        w.effects += 1;
        if w.crash_after == Some(w.effects) {
            w.generation += 1;
            w.crash_after = None;
        }
    }
    /// The probe dies right after `n` more effects.
    pub fn crash_after(&self, n: u64) {
        let mut w = self.world();
        w.crash_after = Some(w.effects + n);
    }
    /// The fakes' view for a probe started now.
    pub(super) fn life(&self) -> Shared {
        Shared(self.0.clone(), self.world().generation)
    }

    pub fn fail(&self, s: Step) {
        self.world().failing.insert(s);
    }
    pub fn heal(&self) {
        self.world().failing.clear();
    }
    /// Time passes: both clocks move.
    pub fn advance(&self, secs: u64) {
        let mut w = self.world();
        w.now_ns += secs * 1_000_000_000;
        w.boot_ns += secs * 1_000_000_000;
    }
    /// An NTP step: only the wall clock jumps.
    pub fn step_wall(&self, secs: i64) {
        let mut w = self.world();
        w.now_ns = w.now_ns.saturating_add_signed(secs * 1_000_000_000);
    }
}
