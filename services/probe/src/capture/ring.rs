//! The one reader of the kernel's capture ring: every record goes to its
//! job's file in the spool, as soon as the ring says there is one.
//!
//! The ring is mapped only while a capture may still get records: mapped,
//! its 8 MiB of pages (twice, the kernel's layout) count in the probe's
//! resident memory, 16 MiB of a probe that otherwise needs about 12.

use std::{path::PathBuf, sync::Arc, time::Duration};

use aya::maps::{Map, MapData, RingBuf};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tracing::{debug, error, info};

use super::Spool;

/// How often the reader looks, besides the kernel's wake-ups: the kernel
/// wakes a reader only when the ring was empty, so records a killed probe
/// left behind announce nothing.
const TICK: Duration = Duration::from_millis(250);

fn open(pin: &PathBuf) -> Result<AsyncFd<RingBuf<MapData>>, String> {
    let map = MapData::from_pin(pin).map_err(|e| e.to_string())?;
    let ring: RingBuf<MapData> = Map::RingBuf(map)
        .try_into()
        .map_err(|e: aya::maps::MapError| e.to_string())?;
    // SAFETY: the ring owns its map's fd, open and the same for as long as
    // the ring (and so the AsyncFd owning it) lives.
    unsafe { AsyncFd::register_with_interest(ring, Interest::READABLE) }.map_err(|e| e.to_string())
}

/// Read the ring pinned at `pin` into `spool` for as long as the probe
/// runs, mapping it while captures want it.
pub fn spawn_reader(pin: PathBuf, spool: Arc<Spool>) {
    tokio::spawn(async move {
        let mut mapped: Option<AsyncFd<RingBuf<MapData>>> = None;
        let mut failed = false;
        loop {
            if mapped.is_none() && spool.awaiting_records() {
                match open(&pin) {
                    Ok(fd) => {
                        info!(dir = %spool.dir().display(), "reading the capture ring");
                        mapped = Some(fd);
                        failed = false;
                    }
                    Err(e) if !failed => {
                        error!(error = %e, ring = %pin.display(), "opening the capture ring; captures will not be written");
                        failed = true;
                    }
                    Err(_) => {}
                }
            }
            let Some(fd) = mapped.as_mut() else {
                tokio::time::sleep(TICK).await;
                continue;
            };
            let ring = fd.get_mut();
            while let Some(item) = ring.next() {
                spool.write_record(&item);
            }
            if !spool.awaiting_records() {
                debug!("no capture running: the capture ring is unmapped");
                mapped = None;
                continue;
            }
            tokio::select! {
                ready = fd.readable_mut() => match ready {
                    Ok(mut guard) => guard.clear_ready(),
                    Err(e) => {
                        error!(error = %e, "waiting on the capture ring; opening it again");
                        mapped = None;
                        tokio::time::sleep(TICK).await;
                    }
                },
                () = tokio::time::sleep(TICK) => {}
            }
        }
    });
}
