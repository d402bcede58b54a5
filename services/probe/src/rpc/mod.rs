//! The gRPC face of the probe: the `telegen.v1.Probe` service over the job
//! core (service.rs), protobuf <-> domain conversion and status codes
//! (convert.rs), who may call and the audit trail (access.rs), and serving
//! on a unix socket or TCP (serve.rs).

pub mod access;
pub mod convert;
pub mod serve;
pub mod service;
pub mod tls;

pub use serve::serve;
pub use service::{ProbeInfo, ProbeService};
