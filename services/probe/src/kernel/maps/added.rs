//! The maps added after the first layout, which pins of an earlier probe
//! lack (each optional, ADDED_MAPS): a job's filter-rejected packets and
//! note (issue 17), and the capture maps (issue 18): the ring the probe
//! reads, each job's (and the probe's) limits and drops.

use aya::maps::{MapData, MapError, RingBuf};

use super::layout::{CaptureDrops, CaptureLimit, JobNote};
use super::Maps;

impl Maps {
    /// The packets a job's filter rejected, summed over CPUs (0 where the
    /// map is missing).
    pub fn job_rejected(&self, slot: u32) -> Result<u64, MapError> {
        match &self.job_rejected {
            Some(m) => Ok(m.get(&slot, 0)?.iter().sum()),
            None => Ok(0),
        }
    }

    pub fn job_note(&self, slot: u32) -> Result<Option<JobNote>, MapError> {
        self.job_notes.as_ref().map(|m| m.get(&slot, 0)).transpose()
    }

    pub fn set_job_note(&mut self, slot: u32, n: &JobNote) -> Result<(), MapError> {
        match &mut self.job_notes {
            Some(m) => m.set(slot, n, 0),
            None => Ok(()),
        }
    }

    /// Whether the capture ring is there (pins of an earlier probe may
    /// lack it). The reader maps it from its pin, only while captures
    /// want it (capture/ring.rs).
    pub fn has_capture_ring(&self) -> bool {
        self.capture_ring.is_some()
    }

    /// The capture ring, mapped (the bench reads it directly).
    pub fn take_capture_ring(&mut self) -> Option<RingBuf<MapData>> {
        self.capture_ring.take()?.try_into().ok()
    }

    pub fn capture_limit(&self, slot: u32) -> Result<Option<CaptureLimit>, MapError> {
        self.capture_limits
            .as_ref()
            .map(|m| m.get(&slot, 0))
            .transpose()
    }

    /// Write a capture limit (its counters restart from those given).
    pub fn set_capture_limit(&mut self, slot: u32, l: &CaptureLimit) -> Result<(), MapError> {
        match &mut self.capture_limits {
            Some(m) => m.set(slot, l, 0),
            None => Ok(()),
        }
    }

    /// A job's capture drops, summed over CPUs.
    pub fn capture_drops(&self, slot: u32) -> Result<CaptureDrops, MapError> {
        let mut out = CaptureDrops::default();
        if let Some(m) = &self.capture_drops {
            for d in m.get(&slot, 0)?.iter() {
                out.ring_full += d.ring_full;
                out.rate_limited += d.rate_limited;
                out.cap_reached += d.cap_reached;
                out.copy_failed += d.copy_failed;
            }
        }
        Ok(out)
    }
}
