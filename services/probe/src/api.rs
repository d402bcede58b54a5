//! The `telegen.v1.Probe` gRPC service: a thin mapping from calls to the job
//! manager and from its typed errors to status codes (SPEC section 3).

use std::{pin::Pin, sync::Arc, time::Duration};

use telegen_common::BuildInfo;
use telegen_proto::v1::{self as pb, probe_server::Probe};
use tokio_stream::Stream;
use tonic::{Request, Response, Status};
use tracing::debug;

use crate::jobs::{JobError, JobManager};
use crate::maps::layout::HIST_BOUNDS;

pub struct ProbeService {
    mgr: Arc<JobManager>,
}

impl ProbeService {
    pub fn new(mgr: Arc<JobManager>) -> Self {
        ProbeService { mgr }
    }
}

impl From<JobError> for Status {
    fn from(e: JobError) -> Status {
        let msg = e.to_string();
        match e {
            // Valid requests for what this build cannot do yet: the gateway
            // answers them with 400 not_supported rather than invalid input.
            JobError::Invalid(ref i) if i.is_not_supported() => Status::unimplemented(msg),
            JobError::Invalid(_) => Status::invalid_argument(msg),
            JobError::NotFound(_) => Status::not_found(msg),
            JobError::Capacity(_) => Status::resource_exhausted(msg),
            JobError::Precondition(_) => Status::failed_precondition(msg),
            JobError::Internal(_) => Status::internal(msg),
            JobError::Unavailable(_) => Status::unavailable(msg),
        }
    }
}

type SnapshotStream = Pin<Box<dyn Stream<Item = Result<pb::CounterSnapshot, Status>> + Send>>;

#[tonic::async_trait]
impl Probe for ProbeService {
    async fn start_job(
        &self,
        req: Request<pb::StartJobRequest>,
    ) -> Result<Response<pb::Job>, Status> {
        let job = self.mgr.start(req.into_inner()).await?;
        Ok(Response::new(job.to_proto()))
    }

    async fn get_job(&self, req: Request<pb::GetJobRequest>) -> Result<Response<pb::Job>, Status> {
        Ok(Response::new(
            self.mgr.get(&req.into_inner().job_id).await?.to_proto(),
        ))
    }

    async fn list_jobs(
        &self,
        _: Request<pb::ListJobsRequest>,
    ) -> Result<Response<pb::ListJobsResponse>, Status> {
        let jobs = self.mgr.list().await.iter().map(|j| j.to_proto()).collect();
        Ok(Response::new(pb::ListJobsResponse { jobs }))
    }

    async fn stop_job(
        &self,
        req: Request<pb::StopJobRequest>,
    ) -> Result<Response<pb::Job>, Status> {
        Ok(Response::new(
            self.mgr.stop(&req.into_inner().job_id).await?.to_proto(),
        ))
    }

    async fn get_results(
        &self,
        req: Request<pb::GetResultsRequest>,
    ) -> Result<Response<pb::Results>, Status> {
        Ok(Response::new({
            let r = req.into_inner();
            self.mgr.results(&r.job_id, r.top).await?
        }))
    }

    type WatchCountersStream = SnapshotStream;

    async fn watch_counters(
        &self,
        req: Request<pb::WatchCountersRequest>,
    ) -> Result<Response<Self::WatchCountersStream>, Status> {
        let ms = match req.into_inner().interval_ms {
            0 => 1000,
            ms => ms.clamp(100, 3_600_000),
        };
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        let mgr = Arc::clone(&self.mgr);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(ms as u64));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let snap = mgr.snapshot().await.map_err(Status::from);
                if tx.send(snap).await.is_err() {
                    debug!("counter watcher went away");
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn get_info(&self, _: Request<pb::GetInfoRequest>) -> Result<Response<pb::Info>, Status> {
        let m = &self.mgr;
        let b = BuildInfo::CURRENT;
        let attach_mode = m
            .kernel
            .resolve(m.cfg.attach)
            .map(|a| a.as_str().to_string())
            .unwrap_or_default();
        Ok(Response::new(pb::Info {
            version: b.version.into(),
            commit: b.commit.into(),
            build_date: b.date.into(),
            kernel: m.kernel.release.clone(),
            btf: m.kernel.btf,
            attach_modes: m
                .kernel
                .attach_modes()
                .into_iter()
                .map(String::from)
                .collect(),
            attach_mode,
            pin_dir: m.cfg.pin_dir.display().to_string(),
            mirror_mode: m.cfg.mirror_mode.as_str().into(),
            datapath_enabled: m.datapath_enabled(),
            datapath_reason: m.dp_reason.clone(),
            max_jobs: m.cfg.max_jobs,
            hist_bounds: HIST_BOUNDS.to_vec(),
        }))
    }
}
