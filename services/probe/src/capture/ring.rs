//! The one reader of the kernel's capture ring: every record goes to its
//! job's file in the spool, as soon as the ring says there is one.

use std::sync::Arc;

use aya::maps::{MapData, RingBuf};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tracing::{error, info};

use super::Spool;

/// Read `ring` into `spool` for as long as the probe runs.
pub fn spawn_reader(ring: RingBuf<MapData>, spool: Arc<Spool>) {
    tokio::spawn(async move {
        // SAFETY: the ring owns its map's fd, open and the same for as
        // long as the ring (and so the AsyncFd owning it) lives.
        let registered = unsafe { AsyncFd::register_with_interest(ring, Interest::READABLE) };
        let mut fd = match registered {
            Ok(fd) => fd,
            Err(e) => {
                error!(error = %e, "watching the capture ring; captures will not be written");
                return;
            }
        };
        info!(dir = %spool.dir().display(), "reading the capture ring");
        // Drain first, then on every wake-up; and every 250 ms besides:
        // the kernel wakes a reader only when the ring was empty, so
        // records a killed probe left behind announce nothing.
        loop {
            let ring = fd.get_mut();
            while let Some(item) = ring.next() {
                spool.write_record(&item);
            }
            tokio::select! {
                ready = fd.readable_mut() => match ready {
                    Ok(mut guard) => guard.clear_ready(),
                    Err(e) => {
                        error!(error = %e, "waiting on the capture ring; captures will not be written");
                        return;
                    }
                },
                () = tokio::time::sleep(std::time::Duration::from_millis(250)) => {}
            }
        }
    });
}
