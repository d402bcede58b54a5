//! Capture jobs' files (the CaptureStore port): opened before the kernel
//! counts, closed at the end, bounded by the spool, removed with the record.

use super::*;

/// A capture job's file is opened before the kernel counts for it and
/// closed once nothing does; a capture larger than the spool is refused
/// before anything is recorded.
#[tokio::test]
async fn capture_files_follow_their_jobs_and_the_spool_is_bounded() {
    use crate::domain::capture::CaptureRequest;
    let world = Shared::default();
    let mgr = fakes::manager(&world).await;
    let mut r = req("direct", 0);
    r.result_detail = "pcaplike".into();
    let job = mgr.start(&r).await.unwrap();
    let job = settled(&mgr, &job.id.to_string()).await;
    assert_eq!(job.state, JobState::Running);
    assert_eq!(job.capture.map(|c| c.snaplen), Some(128));
    assert_eq!(world.world().captures.get(&job.id), Some(&false));
    mgr.stop(&job.id.to_string()).await.unwrap();
    assert_eq!(world.world().captures.get(&job.id), Some(&true), "closed");
    r.capture = Some(CaptureRequest {
        max_bytes: Some(1 << 30),
        ..Default::default()
    });
    let e = mgr.start(&r).await.unwrap_err();
    assert!(matches!(e, JobError::SpoolCapacity { .. }), "{e}");
    assert_eq!(mgr.list().await.len(), 1, "nothing recorded");
    r.result_detail = "summary".into();
    assert!(matches!(
        mgr.start(&r).await.unwrap_err(),
        JobError::Invalid(crate::domain::InvalidInput::CaptureWithoutPcaplike)
    ));
}

/// A capture file lives as long as its job's record: when the slot is
/// reused by a later job, the file goes with the old record.
#[tokio::test]
async fn a_capture_file_goes_with_its_record_when_the_slot_is_reused() {
    let world = Shared::default();
    let mgr = fakes::manager(&world).await;
    let mut r = req("direct", 0);
    r.result_detail = "pcaplike".into();
    let first = mgr.start(&r).await.unwrap();
    settled(&mgr, &first.id.to_string()).await;
    mgr.stop(&first.id.to_string()).await.unwrap();
    assert!(
        world.world().captures.contains_key(&first.id),
        "kept after the end"
    );
    r.result_detail = "summary".into();
    // Every other slot is taken once; the next start recycles the oldest.
    for _ in 1..crate::domain::limits::MAX_JOB_SLOTS {
        let j = mgr.start(&r).await.unwrap();
        settled(&mgr, &j.id.to_string()).await;
        mgr.stop(&j.id.to_string()).await.unwrap();
        assert!(world.world().captures.contains_key(&first.id));
    }
    let j = mgr.start(&r).await.unwrap();
    assert_eq!(j.slot, first.slot, "the oldest slot is reused");
    assert!(
        !world.world().captures.contains_key(&first.id),
        "removed with its record"
    );
}
