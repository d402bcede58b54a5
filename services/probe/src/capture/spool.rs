//! The capture spool: one pcapng file per capture job,
//! `<TELEGEN_CAPTURE_DIR>/<job id>.pcapng`, in a directory whose total size
//! is bounded (TELEGEN_CAPTURE_DIR_MAX_BYTES). The ring reader appends the
//! kernel's records; readers follow a file as it grows (follow.rs). A file
//! lives as long as its job's record: removed when the slot is reused.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tracing::warn;
use uuid::Uuid;

use super::file::{Capture, FileState};
use super::pcapng;
use crate::domain::Job;
use crate::jobs::ports::{CaptureChunks, CaptureFileStats, CaptureStore};
use crate::kernel::maps::layout::CaptureHdr;

pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    used: AtomicU64,
    by_slot: Mutex<HashMap<u32, Arc<Capture>>>,
    by_job: Mutex<HashMap<Uuid, Arc<Capture>>>,
}

/// CLOCK_REALTIME minus CLOCK_MONOTONIC, in ns: what turns the kernel's
/// timestamps into wall-clock time.
fn wall_offset_ns() -> i128 {
    let read = |clock| {
        let mut t = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime fills the struct it is given.
        unsafe { libc::clock_gettime(clock, &mut t) };
        i128::from(t.tv_sec) * 1_000_000_000 + i128::from(t.tv_nsec)
    };
    read(libc::CLOCK_REALTIME) - read(libc::CLOCK_MONOTONIC)
}

impl Spool {
    /// The spool in `dir`, bounded to `max_bytes`; the directory is made
    /// (0700) by the first capture (an unprivileged probe that never
    /// captures needs none).
    pub fn new(dir: PathBuf, max_bytes: u64) -> Self {
        let used = fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .sum();
        Spool {
            dir,
            max_bytes,
            used: AtomicU64::new(used),
            by_slot: Mutex::new(HashMap::new()),
            by_job: Mutex::new(HashMap::new()),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether a capture may still get records: one running, or one ended
    /// whose file still waits for what the kernel let through.
    pub fn awaiting_records(&self) -> bool {
        self.by_slot
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .any(|c| !c.complete())
    }

    pub fn get(&self, job: Uuid) -> Option<Arc<Capture>> {
        self.by_job
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&job)
            .cloned()
    }

    fn path(&self, job: Uuid) -> PathBuf {
        self.dir.join(format!("{job}.pcapng"))
    }

    /// One ring record: appended to its job's file, unless the spool is
    /// full (counted). Records of no open capture are dropped.
    pub fn write_record(&self, rec: &[u8]) {
        let hdr_len = std::mem::size_of::<CaptureHdr>();
        let Some(h) = rec.get(..hdr_len) else {
            return;
        };
        // SAFETY: CaptureHdr is plain old data and `h` is exactly its size.
        let h: CaptureHdr = unsafe { std::ptr::read_unaligned(h.as_ptr().cast()) };
        let Some(data) = rec.get(hdr_len..hdr_len + h.cap_len as usize) else {
            return;
        };
        let cap = self
            .by_slot
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&h.slot)
            .cloned();
        let Some(cap) = cap.filter(|c| h.ts_ns >= c.since_mono_ns) else {
            return;
        };
        let wall = (i128::from(h.ts_ns) + wall_offset_ns()).max(0) as u64;
        let block = pcapng::packet(wall, h.orig_len, data);
        let mut s = cap.state.lock().unwrap_or_else(|e| e.into_inner());
        let size = block.len() as u64;
        if self.used.load(Ordering::Relaxed) + size > self.max_bytes {
            s.stats.spool_dropped += 1;
            return;
        }
        let written = s.file.as_mut().map(|f| f.write_all(&block));
        match written {
            Some(Ok(())) => {
                self.used.fetch_add(size, Ordering::Relaxed);
                s.stats.packets += 1;
                s.stats.bytes += u64::from(h.cap_len);
                s.stats.file_bytes += size;
                let len = s.stats.file_bytes;
                drop(s);
                cap.grown.send_replace(len);
            }
            Some(Err(e)) => {
                warn!(job_id = %cap.job, error = %e, "writing a captured packet");
                s.stats.spool_dropped += 1;
            }
            None => s.stats.spool_dropped += 1,
        }
    }
}

impl CaptureStore for Spool {
    fn open(&self, job: &Job, ended: bool) -> std::io::Result<()> {
        let Some(spec) = &job.capture else {
            return Ok(());
        };
        if self.get(job.id).is_some() {
            return Ok(());
        }
        {
            use std::os::unix::fs::DirBuilderExt;
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&self.dir)?;
        }
        let path = self.path(job.id);
        let header = pcapng::header(&job.port, spec.snaplen);
        let existing = fs::metadata(&path).map(|m| m.len()).ok();
        let mut file = OpenOptions::new().create(true).append(true).open(&path)?;
        let mut stats = CaptureFileStats::default();
        match existing {
            // A restarted probe continues the file: its packets are
            // counted again, and a block a killed probe left half-written
            // is cut off.
            Some(len) if len >= header.len() as u64 => {
                let (packets, bytes, whole) = scan_blocks(&path)?;
                if whole < len {
                    warn!(job_id = %job.id, cut = len - whole, "cutting a half-written packet off a capture file");
                    file.set_len(whole)?;
                }
                stats.packets = packets;
                stats.bytes = bytes;
                stats.file_bytes = whole;
            }
            _ => {
                file.set_len(0)?;
                file.write_all(&header)?;
                stats.file_bytes = header.len() as u64;
                self.used.fetch_add(header.len() as u64, Ordering::Relaxed);
            }
        }
        let offset = wall_offset_ns();
        let cap = Arc::new(Capture {
            job: job.id,
            path,
            header,
            since_mono_ns: (i128::from(job.started_ns) - offset).max(0) as u64,
            state: Mutex::new(FileState {
                file: (!ended).then_some(file),
                stats: stats.clone(),
                expected: None,
                ended_at: ended.then(Instant::now),
            }),
            grown: tokio::sync::watch::channel(stats.file_bytes).0,
        });
        self.by_job
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(job.id, Arc::clone(&cap));
        if !ended {
            self.by_slot
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(job.slot, cap);
        }
        Ok(())
    }

    fn close(&self, job: Uuid, kernel_packets: u64) {
        let Some(cap) = self.get(job) else {
            return;
        };
        let len = {
            let mut s = cap.state.lock().unwrap_or_else(|e| e.into_inner());
            if s.ended_at.is_none() {
                s.ended_at = Some(Instant::now());
                s.expected = Some(kernel_packets);
            }
            s.stats.file_bytes
        };
        cap.grown.send_replace(len);
    }

    fn remove(&self, job: Uuid) {
        let cap = self
            .by_job
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&job);
        self.by_slot
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, c| c.job != job);
        let path = cap
            .map(|c| c.path.clone())
            .unwrap_or_else(|| self.path(job));
        if let Ok(m) = fs::metadata(&path) {
            if fs::remove_file(&path).is_ok() {
                self.used.fetch_sub(
                    m.len().min(self.used.load(Ordering::Relaxed)),
                    Ordering::Relaxed,
                );
            }
        }
    }

    fn stats(&self, job: Uuid) -> Option<CaptureFileStats> {
        self.get(job).map(|c| c.stats())
    }

    fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    fn follow(&self, job: Uuid, from_now: bool) -> Option<CaptureChunks> {
        let cap = self.get(job)?;
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tokio::spawn(super::follow::follow(cap, from_now, tx));
        Some(rx)
    }
}

/// The packet blocks of a capture file: (packets, captured bytes, the
/// length of its whole blocks).
fn scan_blocks(path: &Path) -> std::io::Result<(u64, u64, u64)> {
    use std::io::{BufReader, Read, Seek};
    let mut r = BufReader::new(File::open(path)?);
    let (mut packets, mut bytes, mut at) = (0u64, 0u64, 0u64);
    let mut head = [0u8; 24];
    loop {
        match r.read_exact(&mut head) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Ok((packets, bytes, at))
            }
            Err(e) => return Err(e),
        }
        let kind = u32::from_le_bytes(head[0..4].try_into().unwrap_or_default());
        let len = u64::from(u32::from_le_bytes(
            head[4..8].try_into().unwrap_or_default(),
        ));
        if len < 12 || len % 4 != 0 {
            return Ok((packets, bytes, at));
        }
        // Skip to the block's end; a block cut short ends the scan.
        if r.seek_relative(len as i64 - 24).is_err() || r.stream_position()? > path_len(&r)? {
            return Ok((packets, bytes, at));
        }
        if kind == 6 {
            packets += 1;
            bytes += u64::from(u32::from_le_bytes(
                head[20..24].try_into().unwrap_or_default(),
            ));
        }
        at += len;
    }
}

fn path_len(r: &std::io::BufReader<File>) -> std::io::Result<u64> {
    Ok(r.get_ref().metadata()?.len())
}

/// What a capture job reserves of the spool: its packet blocks at most, and
/// its header.
pub fn reserve_bytes(max_bytes: u64) -> u64 {
    max_bytes + 256
}

// The kernel's struct capture_hdr.
const _: () = assert!(std::mem::size_of::<CaptureHdr>() == 24);
