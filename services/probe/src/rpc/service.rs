//! The `telegen.v1.Probe` gRPC service: each call is one call of the job
//! core, converted both ways by convert.rs (SPEC section 3).

use std::{pin::Pin, sync::Arc, time::Duration};

use telegen_common::BuildInfo;
use telegen_proto::v1::{self as pb, probe_server::Probe};
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};
use tracing::{debug, info};

use super::access;
use super::convert;
use crate::jobs::JobManager;

/// What GetInfo reports besides the build: fixed at start-up.
#[derive(Debug, Clone)]
pub struct ProbeInfo {
    pub kernel: String,
    pub btf: bool,
    pub attach_modes: Vec<&'static str>,
    /// The attach mode jobs get ("" when the preference cannot be met).
    pub attach_mode: String,
    pub pin_dir: String,
    pub hist_bounds: Vec<u64>,
}

pub struct ProbeService {
    mgr: Arc<JobManager>,
    info: ProbeInfo,
}

impl ProbeService {
    pub fn new(mgr: Arc<JobManager>, info: ProbeInfo) -> Self {
        ProbeService { mgr, info }
    }
}

/// Run `work` in its own task, so that it completes whatever happens to the
/// caller's future.
async fn run_to_completion<T: Send + 'static>(
    work: impl std::future::Future<Output = T> + Send + 'static,
) -> Result<T, Status> {
    tokio::spawn(work)
        .await
        .map_err(|e| Status::internal(format!("the request's task ended: {e}")))
}

type SnapshotStream = Pin<Box<dyn Stream<Item = Result<pb::CounterSnapshot, Status>> + Send>>;
type ChunkStream = Pin<Box<dyn Stream<Item = Result<pb::CaptureChunk, Status>> + Send>>;

#[tonic::async_trait]
impl Probe for ProbeService {
    async fn start_job(
        &self,
        req: Request<pb::StartJobRequest>,
    ) -> Result<Response<pb::Job>, Status> {
        let who = access::caller(&req);
        let req = convert::start_request(req.into_inner());
        let port = req.port.clone();
        let mgr = Arc::clone(&self.mgr);
        // A state change runs to its end even when the client goes away
        // (a deadline, a Ctrl-C): dropping this handler drops only the wait.
        let job = run_to_completion(async move { mgr.start(&req).await })
            .await?
            .map_err(Status::from);
        match &job {
            Ok(j) => {
                info!(target: "audit", caller = ?who.to_string(), claimed = who.claimed.as_deref().unwrap_or("-"), action = "start", job_id = %j.id, port = ?port, mirror_mode = j.mirror_mode.as_str(), result = "ok")
            }
            Err(s) => {
                info!(target: "audit", caller = ?who.to_string(), claimed = who.claimed.as_deref().unwrap_or("-"), action = "start", port = ?port, result = ?s.code(), reason = s.message())
            }
        }
        Ok(Response::new(convert::job(&job?)))
    }

    async fn get_job(&self, req: Request<pb::GetJobRequest>) -> Result<Response<pb::Job>, Status> {
        let job = self.mgr.get(&req.into_inner().job_id).await?;
        Ok(Response::new(convert::job(&job)))
    }

    async fn list_jobs(
        &self,
        _: Request<pb::ListJobsRequest>,
    ) -> Result<Response<pb::ListJobsResponse>, Status> {
        let jobs = self.mgr.list().await.iter().map(convert::job).collect();
        Ok(Response::new(pb::ListJobsResponse { jobs }))
    }

    async fn stop_job(
        &self,
        req: Request<pb::StopJobRequest>,
    ) -> Result<Response<pb::Job>, Status> {
        let who = access::caller(&req);
        let id = req.into_inner().job_id;
        let mgr = Arc::clone(&self.mgr);
        let asked = id.clone();
        let job = run_to_completion(async move { mgr.stop(&asked).await })
            .await?
            .map_err(Status::from);
        match &job {
            Ok(j) => {
                info!(target: "audit", caller = ?who.to_string(), claimed = who.claimed.as_deref().unwrap_or("-"), action = "stop", job_id = ?id, status = j.state.as_str(), result = "ok")
            }
            Err(s) => {
                info!(target: "audit", caller = ?who.to_string(), claimed = who.claimed.as_deref().unwrap_or("-"), action = "stop", job_id = ?id, result = ?s.code(), reason = s.message())
            }
        }
        Ok(Response::new(convert::job(&job?)))
    }

    async fn get_results(
        &self,
        req: Request<pb::GetResultsRequest>,
    ) -> Result<Response<pb::Results>, Status> {
        let r = req.into_inner();
        let results = self.mgr.results(&r.job_id, r.top).await?;
        Ok(Response::new(convert::results(results)))
    }

    async fn report_exports(
        &self,
        req: Request<pb::ReportExportsRequest>,
    ) -> Result<Response<pb::ReportExportsResponse>, Status> {
        let r = req.into_inner();
        let instance: [u8; 16] = r.instance.as_slice().try_into().map_err(|_| {
            Status::invalid_argument(format!(
                "instance: 16 bytes expected, got {}",
                r.instance.len()
            ))
        })?;
        let failed_total = self.mgr.report_exports(instance, r.failed_total).await?;
        Ok(Response::new(pb::ReportExportsResponse { failed_total }))
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
                // A watcher that went away ends this at once, not at the
                // next tick (a scrape's one-shot stream asks for an hour).
                tokio::select! {
                    _ = tick.tick() => {}
                    () = tx.closed() => return,
                }
                let snap = mgr
                    .snapshot()
                    .await
                    .map(convert::snapshot)
                    .map_err(Status::from);
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

    type StreamCaptureStream = ChunkStream;

    async fn stream_capture(
        &self,
        req: Request<pb::StreamCaptureRequest>,
    ) -> Result<Response<ChunkStream>, Status> {
        let req = req.into_inner();
        let rx = self.mgr.capture_stream(&req.job_id, req.from_now).await?;
        let chunks = tokio_stream::wrappers::ReceiverStream::new(rx).map(|c| match c {
            Ok(data) => Ok(pb::CaptureChunk { data }),
            Err(e) => Err(Status::internal(format!("reading the capture file: {e}"))),
        });
        Ok(Response::new(Box::pin(chunks)))
    }

    async fn get_info(&self, _: Request<pb::GetInfoRequest>) -> Result<Response<pb::Info>, Status> {
        let b = BuildInfo::CURRENT;
        let i = &self.info;
        let s = self.mgr.settings();
        Ok(Response::new(pb::Info {
            version: b.version.into(),
            commit: b.commit.into(),
            build_date: b.date.into(),
            kernel: i.kernel.clone(),
            btf: i.btf,
            attach_modes: i.attach_modes.iter().map(|m| m.to_string()).collect(),
            attach_mode: i.attach_mode.clone(),
            pin_dir: i.pin_dir.clone(),
            mirror_mode: s.mirror_mode.as_str().into(),
            datapath_enabled: self.mgr.datapath_enabled(),
            datapath_reason: match self.mgr.datapath() {
                crate::jobs::DatapathStatus::On => String::new(),
                crate::jobs::DatapathStatus::Off(why) => why.clone(),
            },
            max_jobs: s.max_jobs,
            hist_bounds: i.hist_bounds.clone(),
        }))
    }
}
