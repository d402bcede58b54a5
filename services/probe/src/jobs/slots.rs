//! The job table: one entry per job slot (the index of the job's counters
//! and record in the pinned maps), and the order jobs were started in.

use uuid::Uuid;

use crate::domain::Job;

pub struct Slots {
    jobs: Vec<Option<Job>>,
    seq: u64,
}

impl Slots {
    pub fn new(n: usize) -> Self {
        Slots {
            jobs: vec![None; n],
            seq: 0,
        }
    }

    /// The table as an earlier probe left it.
    pub fn from_jobs(n: usize, jobs: Vec<Job>) -> Self {
        let mut s = Slots::new(n);
        for j in jobs {
            if let Some(e) = s.jobs.get_mut(j.slot as usize) {
                s.seq = s.seq.max(j.seq);
                *e = Some(j);
            }
        }
        s
    }

    /// The next start's sequence number.
    pub fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    pub fn iter(&self) -> impl Iterator<Item = &Job> {
        self.jobs.iter().flatten()
    }

    /// Jobs in the order they were started.
    pub fn by_start(&self) -> Vec<&Job> {
        let mut v: Vec<&Job> = self.iter().collect();
        v.sort_by_key(|j| j.seq);
        v
    }

    pub fn find(&self, id: Uuid) -> Option<&Job> {
        self.iter().find(|j| j.id == id)
    }

    pub fn get(&self, slot: u32, id: Uuid) -> Option<&Job> {
        self.jobs
            .get(slot as usize)?
            .as_ref()
            .filter(|j| j.id == id)
    }

    pub fn get_mut(&mut self, slot: u32, id: Uuid) -> Option<&mut Job> {
        self.jobs
            .get_mut(slot as usize)?
            .as_mut()
            .filter(|j| j.id == id)
    }

    pub fn active(&self) -> usize {
        self.iter().filter(|j| j.state.is_active()).count()
    }

    /// Slots and ids of the jobs matching `f`.
    pub fn select(&self, f: impl Fn(&Job) -> bool) -> Vec<(u32, Uuid)> {
        self.iter()
            .filter(|j| f(j))
            .map(|j| (j.slot, j.id))
            .collect()
    }

    /// A free slot, else the slot of the oldest finished job (its record
    /// and counters are recycled: the probe keeps the last N jobs).
    pub fn free_slot(&self) -> Option<u32> {
        if let Some(i) = self.jobs.iter().position(Option::is_none) {
            return Some(i as u32);
        }
        self.iter()
            .filter(|j| j.state.is_final())
            .min_by_key(|j| j.seq)
            .map(|j| j.slot)
    }

    /// Put `job` in its slot (replacing whatever was there).
    pub fn put(&mut self, job: Job) {
        let slot = job.slot as usize;
        self.jobs[slot] = Some(job);
    }

    /// Free `slot` if it still holds job `id`.
    pub fn remove(&mut self, slot: u32, id: Uuid) {
        if self.get(slot, id).is_some() {
            self.jobs[slot as usize] = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::JobState;

    fn job(slot: u32, seq: u64, state: JobState) -> Job {
        Job {
            slot,
            seq,
            state,
            id: Uuid::new_v4(),
            ..crate::jobs::fakes::job_template()
        }
    }

    #[test]
    fn recycles_the_oldest_finished_slot() {
        let mut s = Slots::new(2);
        assert_eq!(s.free_slot(), Some(0));
        s.put(job(0, 1, JobState::Stopped));
        s.put(job(1, 2, JobState::Running));
        assert_eq!(s.free_slot(), Some(0));
        s.put(job(0, 3, JobState::Running));
        assert_eq!(s.free_slot(), None);
        let adopted = Slots::from_jobs(2, vec![job(1, 7, JobState::Running)]);
        assert_eq!(adopted.seq, 7);
        assert_eq!(adopted.free_slot(), Some(0));
    }
}
