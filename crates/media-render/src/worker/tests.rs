//! The worker's tests: reuse of an earlier attempt's upload, paths, and what errors show.

use super::*;
use studio_auth::service::LeaseKey;

/// An earlier attempt's `final.mp4` of the recorded size but other bytes (a zombie's late
/// upload over its successor's) is not reused: it is rendered again (security review M1).
#[tokio::test]
async fn an_earlier_upload_is_reused_only_with_its_recorded_sha256() {
    let dir = tempfile::tempdir().unwrap();
    let storage: Arc<dyn ObjectStore> =
        Arc::new(studio_storage::local::LocalStore::new(dir.path().join("objects")).unwrap());
    let channel = tonic::transport::Channel::from_static("http://127.0.0.1:9").connect_lazy();
    let identity = studio_auth::service::IdentitySettings::development(LeaseKey::Held)
        .identity("media_render", "media-render", LeaseKey::Held)
        .unwrap();
    let worker = Worker {
        id: "w".into(),
        queue: Arc::new(studio_queue::memory::MemoryQueue::new()),
        queue_name: "render".into(),
        storage: storage.clone(),
        leases: RenderLeaseServiceClient::new(identity.lease_tokens().channel(channel)),
        encoder: VideoEncoder::default(),
        lease: Duration::from_secs(60),
        grace: Duration::from_secs(1),
        render_jobs: 1,
        work_dir: dir.path().join("work"),
        render_timeout: Duration::from_secs(60),
        status: Arc::default(),
    };
    // Attempt 1 uploaded under its own prefix; attempt 2 writes under its own and looks
    // under the earlier ones for a finished upload.
    let earlier = RenderTask {
        output_prefix: "projects/p/jobs/j/outputs/1/".into(),
        step_id: "s".into(),
        fencing_token: 1,
        ..RenderTask::default()
    };
    let task = RenderTask {
        output_prefix: "projects/p/jobs/j/outputs/2/".into(),
        earlier_output_prefixes: vec![
            "projects/p/jobs/j/outputs/1/".into(),
            "projects/p/jobs/j/outputs/".into(),
        ],
        fencing_token: 2,
        ..earlier.clone()
    };
    let video = b"the successor's video".to_vec();
    let (size, sha) = {
        let path = dir.path().join("v");
        std::fs::write(&path, &video).unwrap();
        digest(&path).await.unwrap()
    };
    let key = worker.key(&earlier, "final.mp4").unwrap();
    let manifest = Manifest {
        files: vec![ManifestFile {
            kind: "video".into(),
            storage_key: key.to_string(),
            size_bytes: size,
            sha256: sha,
        }],
        duration_s: 1.0,
        render_seconds: 1.0,
        encoder: "libx264".into(),
    };
    storage
        .put(
            &worker.key(&earlier, MANIFEST).unwrap(),
            serde_json::to_vec(&manifest).unwrap().into(),
            "application/json",
        )
        .await
        .unwrap();
    storage
        .put(&key, video.clone().into(), "video/mp4")
        .await
        .unwrap();
    let reused = worker.finished_upload(&task).await.unwrap().unwrap();
    assert_eq!(reused.files[0].storage_key, key.to_string());
    // A task that does not name that attempt's prefix does not look there.
    let unrelated = RenderTask {
        earlier_output_prefixes: vec!["projects/p/jobs/j/outputs/".into()],
        ..task.clone()
    };
    assert!(worker.finished_upload(&unrelated).await.unwrap().is_none());
    let mut other = video.clone();
    other.reverse(); // same size, other bytes
    storage.put(&key, other.into(), "video/mp4").await.unwrap();
    assert!(worker.finished_upload(&task).await.unwrap().is_none());
}

#[test]
fn input_paths_stay_inside_the_task_folder() {
    let root = Path::new("/tmp/task");
    assert_eq!(
        safe_join(root, "narration/0.wav"),
        Some(PathBuf::from("/tmp/task/narration/0.wav"))
    );
    assert_eq!(safe_join(root, "../etc/passwd"), None);
    assert_eq!(safe_join(root, "/etc/passwd"), None);
    assert_eq!(safe_join(root, "a/../../b"), None);
}

mod public_errors {
    use super::super::public_error;
    use studio_media::MediaError;

    #[test]
    fn the_owner_sees_their_own_problems_but_not_the_workers_internals() {
        let ffmpeg = MediaError::Ffmpeg {
            status: Some(1),
            stderr: "/var/tmp/studio-media-render/tasks/x/input/a.png: No such file".into(),
        };
        let shown = public_error("job", &ffmpeg);
        assert!(!shown.contains("/var/tmp"), "{shown}");
        assert!(shown.contains("error "), "{shown}");
        let outside = MediaError::OutsideSandbox {
            path: "/etc/hostname".into(),
            roots: "/var/tmp/studio-media-render".into(),
        };
        let shown = public_error("job", &outside);
        assert!(
            !shown.contains("/etc/hostname") && !shown.contains("/var/tmp"),
            "{shown}"
        );
        let too_large = MediaError::TooLarge {
            size: 10,
            max_bytes: 5,
        };
        assert!(public_error("job", &too_large).contains("max_bytes"));
    }
}
