//! A probe that answers GetJob and GetResults, for the routes' tests.

use std::sync::{Arc, Mutex};

use telegen_proto::v1::{self as pb, probe_server::Probe};
use tonic::{Request as GrpcRequest, Response, Status};

/// Answers GetJob and GetResults; records every GetResults request.
#[derive(Clone, Default)]
pub(super) struct FakeProbe {
    pub(super) results_calls: Arc<Mutex<Vec<pb::GetResultsRequest>>>,
}

#[tonic::async_trait]
impl Probe for FakeProbe {
    async fn start_job(
        &self,
        _: GrpcRequest<pb::StartJobRequest>,
    ) -> Result<Response<pb::Job>, Status> {
        Err(Status::unimplemented("fake"))
    }
    async fn get_job(
        &self,
        r: GrpcRequest<pb::GetJobRequest>,
    ) -> Result<Response<pb::Job>, Status> {
        Ok(Response::new(pb::Job {
            job_id: r.into_inner().job_id,
            status: "running".into(),
            result_detail: "flows".into(),
            sample_rate: 10,
            flow_table_size: 4096,
            filters: Some(pb::Filters {
                ip_proto: vec!["tcp".into(), "udp".into()],
                l4_dport: vec![443],
                dscp: vec![46],
                vlan: Some(100),
                ..Default::default()
            }),
            ..Default::default()
        }))
    }
    async fn list_jobs(
        &self,
        _: GrpcRequest<pb::ListJobsRequest>,
    ) -> Result<Response<pb::ListJobsResponse>, Status> {
        Ok(Response::new(pb::ListJobsResponse::default()))
    }
    async fn stop_job(
        &self,
        _: GrpcRequest<pb::StopJobRequest>,
    ) -> Result<Response<pb::Job>, Status> {
        Err(Status::unimplemented("fake"))
    }
    async fn get_results(
        &self,
        r: GrpcRequest<pb::GetResultsRequest>,
    ) -> Result<Response<pb::Results>, Status> {
        let r = r.into_inner();
        self.results_calls.lock().unwrap().push(r.clone());
        if r.top > 100 {
            return Err(Status::invalid_argument("top: at most 100"));
        }
        Ok(Response::new(pb::Results {
            job_id: r.job_id,
            status: "running".into(),
            top_flows: vec![pb::Flow {
                five_tuple: "10.0.0.1:1->10.0.0.2:443/TCP".into(),
                pkts: 10,
                bytes: 1000,
                estimated: true,
                protocol: "TCP".into(),
                ..Default::default()
            }],
            flow_stats: Some(pb::FlowStats {
                sample_rate: 10,
                table_size: 4096,
                evictions: 2,
                ..Default::default()
            }),
            ..Default::default()
        }))
    }
    type StreamCaptureStream =
        tonic::codegen::tokio_stream::Empty<Result<pb::CaptureChunk, Status>>;
    async fn stream_capture(
        &self,
        _: GrpcRequest<pb::StreamCaptureRequest>,
    ) -> Result<Response<Self::StreamCaptureStream>, Status> {
        Err(Status::failed_precondition(
            "fake: job x does not capture packets",
        ))
    }
    type WatchCountersStream =
        tonic::codegen::tokio_stream::Empty<Result<pb::CounterSnapshot, Status>>;
    async fn watch_counters(
        &self,
        _: GrpcRequest<pb::WatchCountersRequest>,
    ) -> Result<Response<Self::WatchCountersStream>, Status> {
        Err(Status::unimplemented("fake"))
    }
    async fn report_exports(
        &self,
        _: GrpcRequest<pb::ReportExportsRequest>,
    ) -> Result<Response<pb::ReportExportsResponse>, Status> {
        Ok(Response::new(Default::default()))
    }

    async fn get_info(
        &self,
        _: GrpcRequest<pb::GetInfoRequest>,
    ) -> Result<Response<pb::Info>, Status> {
        Ok(Response::new(pb::Info::default()))
    }
}
