//! telegen-probe: the privileged half of telegen-sonic. It loads the tc
//! classifier once, attaches it per job, keeps job state in pinned maps so a
//! restart adopts everything, and serves the `telegen.v1.Probe` gRPC API.

pub mod api;
pub mod attach;
pub mod config;
pub mod datapath;
pub mod filters;
pub mod jobs;
pub mod maps;
pub mod mirror;
pub mod netlink;
pub mod rlimit;
pub mod server;
pub mod timefmt;
pub mod validate;
