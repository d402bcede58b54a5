//! Packet capture (result_detail pcaplike, issue 18): the kernel's ring of
//! captured packets (ring.rs) written as one pcapng file per job
//! (pcapng.rs) in a bounded spool (spool.rs), followed live by readers
//! (follow.rs).

pub mod file;
pub mod follow;
pub mod pcapng;
pub mod ring;
pub mod spool;

pub use file::Capture;
pub use spool::{reserve_bytes, Spool};
