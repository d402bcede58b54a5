//! The probe's domain: what a job is, what a valid request looks like, and
//! what results say. No I/O, no protobuf, no kernel layout.

pub mod acl;
pub mod capture;
pub mod coverage;
pub mod filter;
pub mod job;
pub mod limits;
pub mod modes;
pub mod policy;
pub mod results;
pub mod validate;

pub use filter::{FilterError, FilterSpec, JobFilter};
pub use job::{Job, MirrorScope};
pub use modes::{AttachMode, Direction, JobState, MirrorMode, DIR_NAMES};
pub use results::{ClassCounts, Flow, FlowStats, Results, Snapshot};
pub use validate::{InvalidInput, StartRequest, StartSpec};
