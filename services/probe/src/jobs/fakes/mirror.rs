//! The fakes of the mirror backends (the erspan netdev, SONiC's sessions
//! and ACLs) and of the capture spool.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use uuid::Uuid;

use super::world::{Shared, Step, NETDEV_IFINDEX};
use crate::domain::acl::{AclPlan, AclStatus, Platform};
use crate::domain::Job;
use crate::jobs::ports::{
    AclContext, CaptureChunks, CaptureFileStats, CaptureStore, ErspanBackend, NetdevError,
    Provisioned, SessionError, SessionSpec, SonicBackend,
};

pub struct FakeErspan(pub Shared);

#[tonic::async_trait]
impl ErspanBackend for FakeErspan {
    async fn ensure(
        &self,
        _local: Ipv4Addr,
        _remote: Ipv4Addr,
        _port: &str,
    ) -> Result<Provisioned, NetdevError> {
        if self.0.gate(Step::Ensure).await {
            return Err(NetdevError::Failed("injected".into()));
        }
        let created = !std::mem::replace(&mut self.0.world().netdev, true);
        self.0.done();
        Ok(Provisioned {
            ifindex: NETDEV_IFINDEX,
            created,
            ours: true,
        })
    }
    async fn release(&self) -> Result<bool, NetdevError> {
        if self.0.gate(Step::Release).await {
            return Err(NetdevError::Failed("injected".into()));
        }
        let had = std::mem::take(&mut self.0.world().netdev);
        self.0.done();
        Ok(had)
    }
}

pub struct FakeSonic(pub Shared);

fn redis_down() -> SessionError {
    SessionError::Unavailable("injected: redis down".into())
}

#[tonic::async_trait]
impl SonicBackend for FakeSonic {
    async fn create(&self, job: Uuid, _spec: &SessionSpec) -> Result<(), SessionError> {
        if self.0.gate(Step::Create).await {
            return Err(redis_down());
        }
        self.0.world().sessions.insert(job);
        self.0.done();
        Ok(())
    }
    async fn acl_context(&self) -> Result<AclContext, SessionError> {
        if self.0.gate(Step::WriteAcl).await {
            return Err(redis_down());
        }
        Ok(AclContext {
            platform: Platform {
                mirror_v6: true,
                egress_mirror: true,
            },
            tables: Vec::new(),
        })
    }
    async fn write_acl(&self, job: Uuid, plan: &AclPlan) -> Result<(), SessionError> {
        if self.0.gate(Step::WriteAcl).await {
            return Err(redis_down());
        }
        self.0.world().acls.insert(job, plan.rules.len());
        self.0.done();
        Ok(())
    }
    async fn wait_active(&self, _job: Uuid) -> Result<AclStatus, SessionError> {
        if self.0.gate(Step::WaitActive).await {
            return Err(SessionError::Inactive("injected: inactive".into()));
        }
        self.0.done();
        Ok(AclStatus::Active)
    }
    async fn sessions(&self) -> Result<Vec<Uuid>, SessionError> {
        if self.0.fails(Step::Delete) {
            return Err(redis_down());
        }
        let w = self.0.world();
        let mut ids: BTreeSet<Uuid> = w.sessions.clone();
        ids.extend(w.acls.keys());
        Ok(ids.into_iter().collect())
    }
    async fn delete(&self, job: Uuid) -> Result<bool, SessionError> {
        if self.0.gate(Step::Delete).await {
            return Err(redis_down());
        }
        // Rules and tables, then the session: a crash between leaves the
        // session alone, as the real backend's order does.
        let acl = self.0.world().acls.remove(&job).is_some();
        if acl {
            self.0.done();
            if self.0.gate(Step::Delete).await {
                return Err(redis_down());
            }
        }
        let had = self.0.world().sessions.remove(&job);
        self.0.done();
        Ok(had || acl)
    }
}

/// Capture files, by job: opened, closed.
pub struct FakeCaptures(pub Shared);

impl CaptureStore for FakeCaptures {
    fn open(&self, job: &Job, _ended: bool) -> std::io::Result<()> {
        self.0.world().captures.insert(job.id, false);
        Ok(())
    }
    fn close(&self, job: Uuid, _kernel_packets: u64) {
        if let Some(c) = self.0.world().captures.get_mut(&job) {
            *c = true;
        }
    }
    fn remove(&self, job: Uuid) {
        self.0.world().captures.remove(&job);
    }
    fn stats(&self, job: Uuid) -> Option<CaptureFileStats> {
        self.0
            .world()
            .captures
            .contains_key(&job)
            .then(CaptureFileStats::default)
    }
    fn max_bytes(&self) -> u64 {
        64 << 20
    }
    fn follow(&self, _job: Uuid, _from_now: bool) -> Option<CaptureChunks> {
        None
    }
}
