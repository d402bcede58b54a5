//! Following a capture file as it grows: the bytes a StreamCapture (and
//! so REST's download and `telegenctl capture`) sends, in chunks that end
//! on block boundaries, until the job has ended and its file is complete.

use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::file::Capture;
use super::pcapng;

/// The most bytes one chunk carries.
const CHUNK: usize = 256 << 10;

/// Send `cap`'s file on `tx`: its header, then its packets from the start
/// (or those written from now on), then each new one, until it is complete
/// or the receiver is gone.
pub async fn follow(cap: Arc<Capture>, from_now: bool, tx: mpsc::Sender<std::io::Result<Vec<u8>>>) {
    let mut grown = cap.subscribe();
    let header = cap.header.clone();
    let mut offset = if from_now {
        *grown.borrow_and_update()
    } else {
        header.len() as u64
    };
    if tx.send(Ok(header)).await.is_err() {
        return;
    }
    loop {
        let target = *grown.borrow_and_update();
        if offset < target {
            let path = cap.path.clone();
            let read =
                tokio::task::spawn_blocking(move || read_blocks(&path, offset, target)).await;
            match read {
                Ok(Ok(chunk)) if !chunk.is_empty() => {
                    offset += chunk.len() as u64;
                    if tx.send(Ok(chunk)).await.is_err() {
                        return;
                    }
                    continue;
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
                Err(e) => {
                    let _ = tx.send(Err(std::io::Error::other(e))).await;
                    return;
                }
            }
        }
        if cap.complete() && offset >= *grown.borrow() {
            return;
        }
        // A write wakes us; the tick re-checks completion (settling).
        tokio::select! {
            r = grown.changed() => if r.is_err() { return },
            () = tokio::time::sleep(Duration::from_millis(250)) => {}
            () = tx.closed() => return,
        }
    }
}

/// Whole blocks of the file from `offset`, up to `end` and CHUNK bytes.
fn read_blocks(path: &std::path::Path, offset: u64, end: u64) -> std::io::Result<Vec<u8>> {
    let mut f = std::fs::File::open(path)?;
    f.seek(SeekFrom::Start(offset))?;
    let want = ((end - offset) as usize).min(CHUNK.max(64 << 10));
    let mut buf = vec![0; want];
    f.read_exact(&mut buf)?;
    // Cut after the last whole block (a block larger than CHUNK is sent
    // whole: the read above is then extended to it).
    let mut at = 0;
    while let Some(n) = pcapng::block_len(&buf[at..]) {
        at += n;
    }
    if at == 0 {
        let total = buf
            .get(4..8)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u32::from_le_bytes) as u64;
        if total < 12 {
            return Err(std::io::Error::other(format!(
                "no pcapng block at offset {offset} of {}",
                path.display()
            )));
        }
        let mut whole = vec![0; total.min(end - offset) as usize];
        f.seek(SeekFrom::Start(offset))?;
        f.read_exact(&mut whole)?;
        return Ok(whole);
    }
    buf.truncate(at);
    Ok(buf)
}
