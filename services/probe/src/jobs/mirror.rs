//! Where a job counts: the mirror mode it really runs in, the erspan netdev
//! and the SONiC session it needs, and giving those back.

use std::net::Ipv4Addr;

use tracing::{info, warn};
use uuid::Uuid;

use super::ports::{NetdevError, SessionError, SessionSpec};
use super::{Inner, JobError, JobManager};
use crate::domain::acl::{self, AclPlan, PortScope};
use crate::domain::validate::StartSpec;
use crate::domain::{Direction, MirrorMode, MirrorScope};

/// The mode a job runs in and where it counts.
pub(super) struct Resolved {
    pub mode: MirrorMode,
    pub iface: String,
    pub ifindex: u32,
    /// Why the mode differs from the request.
    pub fallback: Option<String>,
    /// The erspan netdev was created for this start.
    pub created_netdev: bool,
    /// A SONiC mirror session was written for this start.
    pub session: bool,
}

impl JobManager {
    /// The mode a job really runs in, the interface it counts on, and why
    /// when the mode differs from the request (seed rule: erspan not
    /// configured or failing falls back to placeholder, which does nothing
    /// privileged). Called under the job mutex, so provisioning the erspan
    /// netdev is serialised with the stops that may remove it.
    pub(super) async fn resolve_mirror(
        &self,
        requested: MirrorMode,
        port: &str,
        port_ifindex: u32,
        id: Uuid,
    ) -> Result<Resolved, JobError> {
        let name = &self.settings.erspan_name;
        let placeholder = |why: Option<String>| {
            Ok(Resolved {
                mode: MirrorMode::Placeholder,
                iface: name.clone(),
                ifindex: port_ifindex,
                fallback: why.map(|w| format!("{w}; fell back to placeholder")),
                created_netdev: false,
                session: false,
            })
        };
        let off = match &self.datapath {
            super::DatapathStatus::On => None,
            super::DatapathStatus::Off(why) => Some(why.clone()),
        };
        match requested {
            MirrorMode::Placeholder => placeholder(None),
            MirrorMode::Direct => match off {
                None => Ok(Resolved {
                    mode: MirrorMode::Direct,
                    iface: port.to_string(),
                    ifindex: port_ifindex,
                    fallback: None,
                    created_netdev: false,
                    session: false,
                }),
                Some(why) => Err(JobError::Precondition(format!(
                    "mirror mode direct needs the BPF datapath, which is off: {why}"
                ))),
            },
            MirrorMode::Erspan | MirrorMode::Sonic => {
                let mode = requested.as_str();
                let (local, remote) = match &self.settings.erspan_endpoints {
                    Ok(e) => *e,
                    Err(missing) => {
                        return placeholder(Some(format!(
                            "{mode} mode is not configured ({} unset; TELEGEN_ERSPAN_LOCAL and TELEGEN_ERSPAN_REMOTE are required)",
                            missing.join(" and ")
                        )))
                    }
                };
                if let Some(why) = off {
                    return placeholder(Some(format!(
                        "{mode} mode needs the BPF datapath, which is off: {why}"
                    )));
                }
                if requested == MirrorMode::Sonic {
                    return self
                        .resolve_sonic(local, remote, port, port_ifindex, id)
                        .await;
                }
                match self.erspan.ensure(local, remote, port).await {
                    Ok(p) => {
                        info!(interface = %name, ifindex = p.ifindex, created = p.created, ours = p.ours, "erspan netdev ready");
                        Ok(Resolved {
                            mode: MirrorMode::Erspan,
                            iface: name.clone(),
                            ifindex: p.ifindex,
                            fallback: None,
                            created_netdev: p.created,
                            session: false,
                        })
                    }
                    Err(NetdevError::Conflict(e)) => Err(JobError::Precondition(e)),
                    Err(e) => placeholder(Some(format!("erspan provisioning failed: {e}"))),
                }
            }
        }
    }

    /// Whether a `sonic` start writes a session: only with the tunnel
    /// configured and the datapath on (else the job falls back to
    /// placeholder and writes nothing).
    fn sonic_endpoints(&self) -> Option<(Ipv4Addr, Ipv4Addr)> {
        let e = self.settings.erspan_endpoints.as_ref().ok()?;
        (self.datapath == super::DatapathStatus::On).then_some(*e)
    }

    /// Mode `sonic`, first step, run without the job lock (redis may take
    /// seconds): the job's SONiC mirror session and, when the switch can
    /// carry the job's filter, the ACL tables and rules that feed it
    /// (issue 17); else the session mirrors the whole port. Redis down:
    /// UNAVAILABLE (what was written is the record's to give back). None
    /// when nothing was written (placeholder).
    pub(super) async fn write_session(
        &self,
        id: Uuid,
        spec: &StartSpec,
    ) -> Result<Option<MirrorScope>, JobError> {
        let Some((local, remote)) = self.sonic_endpoints() else {
            return Ok(None);
        };
        let unavailable = |e: SessionError| match e {
            SessionError::Unavailable(e) => JobError::Unavailable(e),
            e => JobError::Precondition(e.to_string()),
        };
        let _one_at_a_time = self.acl_writes.lock().await;
        let plan = self.acl_plan(id, spec).await.map_err(unavailable)?;
        let session = SessionSpec {
            src_port: plan.is_err().then(|| {
                (
                    spec.port.clone(),
                    match spec.direction {
                        Direction::Ingress => "RX",
                        Direction::Egress => "TX",
                        Direction::Both => "BOTH",
                    },
                )
            }),
            ..self.session_spec(local, remote)
        };
        self.sonic.create(id, &session).await.map_err(unavailable)?;
        info!(job_id = %id, "wrote the SONiC mirror session");
        match plan {
            Ok(plan) => {
                self.sonic.write_acl(id, &plan).await.map_err(unavailable)?;
                info!(job_id = %id, tables = plan.tables.len(), rules = plan.rules.len(), "wrote the job's ACL mirror tables and rules");
                Ok(Some(MirrorScope::Acl(String::new())))
            }
            Err(PortScope(why)) => {
                info!(job_id = %id, reason = %why, "the session mirrors the whole port");
                Ok(Some(MirrorScope::Port(why)))
            }
        }
    }

    /// The ACL tables and rules that select what `spec`'s filter does on
    /// this switch, or why the whole port is mirrored instead.
    async fn acl_plan(
        &self,
        id: Uuid,
        spec: &StartSpec,
    ) -> Result<Result<AclPlan, PortScope>, SessionError> {
        let max = self.settings.acl_max_rules;
        if spec.filter.is_empty() {
            return Ok(Err(PortScope(
                "no filter: the whole port is mirrored".into(),
            )));
        }
        if max == 0 {
            return Ok(Err(PortScope(
                "ACL mirroring is off (TELEGEN_ACL_MAX_RULES=0)".into(),
            )));
        }
        let ctx = self.sonic.acl_context().await?;
        let session = crate::mirror::sonic::session_name(id);
        let plan = acl::plan(
            id,
            &spec.port,
            spec.direction,
            &spec.filter,
            &session,
            ctx.platform,
            max,
        );
        Ok(plan.and_then(|p| match acl::conflict(&p, &ctx.tables) {
            Some(why) => Err(why),
            None => Ok(p),
        }))
    }

    /// Mode `sonic`, once its session is written: the erspan netdev as in
    /// `erspan`. When the netdev cannot be created (a kernel without
    /// ip_gre), the job counts on the device the tunnel arrives on instead
    /// (TELEGEN_ERSPAN_DEV, else the port): the classifier decapsulates
    /// ERSPAN itself, so the session is still useful; the job's fallback
    /// says so.
    async fn resolve_sonic(
        &self,
        local: Ipv4Addr,
        remote: Ipv4Addr,
        port: &str,
        port_ifindex: u32,
        id: Uuid,
    ) -> Result<Resolved, JobError> {
        let name = &self.settings.erspan_name;
        match self.erspan.ensure(local, remote, port).await {
            Ok(p) => {
                info!(interface = %name, ifindex = p.ifindex, created = p.created, ours = p.ours, "erspan netdev ready");
                Ok(Resolved {
                    mode: MirrorMode::Sonic,
                    iface: name.clone(),
                    ifindex: p.ifindex,
                    fallback: None,
                    created_netdev: p.created,
                    session: true,
                })
            }
            Err(NetdevError::Conflict(e)) => {
                let _ = self.delete_session(id).await;
                Err(JobError::Precondition(e))
            }
            Err(e) => {
                let dev = self.settings.erspan_dev.as_deref().unwrap_or(port);
                let ifindex = if dev == port {
                    Some(port_ifindex)
                } else {
                    self.interfaces.ifindex(dev).await.ok().flatten()
                };
                let Some(ifindex) = ifindex else {
                    let _ = self.delete_session(id).await;
                    return Err(JobError::Precondition(format!(
                        "erspan provisioning failed ({e}) and TELEGEN_ERSPAN_DEV {dev} does not exist"
                    )));
                };
                Ok(Resolved {
                    mode: MirrorMode::Sonic,
                    iface: dev.to_string(),
                    ifindex,
                    fallback: Some(format!(
                        "erspan netdev {name} could not be created ({e}); counting on {dev} itself, where the classifier decapsulates the mirrored ERSPAN"
                    )),
                    created_netdev: false,
                    session: true,
                })
            }
        }
    }

    /// The CONFIG_DB session of a sonic job, mirroring no port yet.
    fn session_spec(&self, local: Ipv4Addr, remote: Ipv4Addr) -> SessionSpec {
        SessionSpec {
            src_ip: local,
            dst_ip: remote,
            dscp: self.settings.session_dscp,
            ttl: self.settings.session_ttl,
            queue: 0,
            src_port: None,
        }
    }

    /// Give back what resolving a start took, when the start goes no
    /// further (the job was never recorded).
    pub(super) async fn undo_resolve(&self, inner: &mut Inner, id: Uuid, r: &Resolved) {
        if r.created_netdev {
            let _ = self.release_erspan_if_unused(inner).await;
        }
        if r.session {
            let _ = self.delete_session(id).await;
        }
    }

    /// Delete a sonic job's ACL rules, tables and mirror session; an error
    /// is logged and returned.
    pub(super) async fn delete_session(&self, id: Uuid) -> Result<(), SessionError> {
        match self.sonic.delete(id).await {
            Ok(true) => {
                info!(job_id = %id, "deleted the SONiC mirror session and ACL rules");
                Ok(())
            }
            Ok(false) => Ok(()),
            Err(e) => {
                warn!(job_id = %id, error = %e, "deleting the SONiC mirror session");
                Err(e)
            }
        }
    }

    /// Delete the erspan netdev when no active erspan or sonic job counts on
    /// it and this probe created it (it carries our owner mark); a reused
    /// one stays.
    pub(super) async fn release_erspan_if_unused(&self, inner: &Inner) -> Result<(), NetdevError> {
        let name = &self.settings.erspan_name;
        let in_use = inner.slots.iter().any(|j| {
            j.mirror_mode.uses_erspan_netdev() && j.iface == *name && j.wants_attachment()
        });
        if in_use {
            return Ok(());
        }
        match self.erspan.release().await {
            Ok(true) => info!(interface = %name, "removed the erspan netdev we created"),
            Ok(false) => {}
            Err(e) => {
                warn!(error = %e, "removing the erspan netdev we created");
                return Err(e);
            }
        }
        Ok(())
    }
}
