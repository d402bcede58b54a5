//! telegen-probe: the privileged half of telegen-sonic. It loads the tc
//! classifier once, attaches it per job, keeps job state in pinned maps so a
//! restart adopts everything, and serves the `telegen.v1.Probe` gRPC API.
//!
//! Rooms: `domain` (jobs, requests, results: no I/O), `jobs` (the core over
//! ports), `kernel` (BPF datapath, maps, netlink), `mirror` (erspan netdev,
//! SONiC sessions), `rpc` (gRPC), `assemble` (the real ports, wired).

pub mod assemble;
pub mod capture;
pub mod config;
pub mod domain;
pub mod jobs;
pub mod kernel;
pub mod mirror;
pub mod rpc;
#[cfg(test)]
mod testutil;
pub mod timefmt;

// Paths the bench and the integration tests use.
pub use kernel::{datapath, maps};
