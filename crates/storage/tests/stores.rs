//! One behaviour suite for the local-folder store and the S3 store, the latter against a real
//! S3-protocol server (s3s-fs, in-process on a loopback port, with SigV4 authentication), including
//! multipart uploads and presigned URLs that stop working after their expiry.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use studio_storage::local::LocalStore;
use studio_storage::s3::{S3Settings, S3Store};
use studio_storage::{keys, put_content_addressed, ObjectKey, ObjectStore, StorageError};

use studio_testkit::s3::{S3Server, ACCESS_KEY, SECRET_KEY};

async fn s3_store(endpoint: &str, bucket: &str) -> S3Store {
    let store = S3Store::new(S3Settings {
        bucket: bucket.to_owned(),
        region: "us-east-1".to_owned(),
        endpoint: Some(endpoint.to_owned()),
        access_key_id: ACCESS_KEY.to_owned(),
        secret_access_key: SECRET_KEY.to_owned().into(),
        force_path_style: None,
        multipart_threshold_bytes: 6 * 1024 * 1024,
        part_size_bytes: 5 * 1024 * 1024,
    })
    .unwrap();
    store.ensure_bucket().await.unwrap();
    store
}

fn key(s: &str) -> ObjectKey {
    ObjectKey::parse(s).unwrap()
}

async fn suite(store: Arc<dyn ObjectStore>) {
    let dir = tempfile::tempdir().unwrap();
    let out = keys::job_output("p1", "j1", "captions.srt").unwrap();
    store
        .put(
            &out,
            Bytes::from_static(b"1\n00:00:00,000 --> 00:00:01,000\nHi\n"),
            "application/x-subrip",
        )
        .await
        .unwrap();
    assert_eq!(
        store.get(&out).await.unwrap().as_ref(),
        b"1\n00:00:00,000 --> 00:00:01,000\nHi\n"
    );
    assert_eq!(store.head(&out).await.unwrap().unwrap().size, 35);

    // A 13 MiB file: three parts on S3 (5 + 5 + 3 MiB), one copy locally.
    let big: Vec<u8> = (0..13 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    let source = dir.path().join("final.mp4");
    std::fs::write(&source, &big).unwrap();
    let video = keys::job_output("p1", "j1", "final.mp4").unwrap();
    store.put_file(&video, &source, "video/mp4").await.unwrap();
    let fetched = dir.path().join("fetched.mp4");
    assert_eq!(
        store.get_to_file(&video, &fetched).await.unwrap(),
        big.len() as u64
    );
    assert!(
        std::fs::read(&fetched).unwrap() == big,
        "round trip is byte-identical"
    );

    let listed: Vec<String> = store
        .list("projects/p1/jobs/j1/")
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.key)
        .collect();
    assert_eq!(
        listed,
        vec![
            "projects/p1/jobs/j1/outputs/captions.srt",
            "projects/p1/jobs/j1/outputs/final.mp4"
        ]
    );
    assert!(store.list("projects/p2/").await.unwrap().is_empty());

    // Content-addressed: equal bytes, one object.
    let a = put_content_addressed(
        store.as_ref(),
        "speech",
        Bytes::from_static(b"RIFF...."),
        "audio/wav",
    )
    .await
    .unwrap();
    let b = put_content_addressed(
        store.as_ref(),
        "speech",
        Bytes::from_static(b"RIFF...."),
        "audio/wav",
    )
    .await
    .unwrap();
    assert_eq!(a, b);
    assert!(a.as_str().starts_with("cache/speech/"));
    assert_eq!(store.list("cache/speech/").await.unwrap().len(), 1);

    // Missing objects.
    let missing = key("projects/p1/jobs/j1/outputs/nothing.jpg");
    assert!(matches!(
        store.get(&missing).await,
        Err(StorageError::NotFound(_))
    ));
    assert!(matches!(
        store.get_to_file(&missing, &dir.path().join("x")).await,
        Err(StorageError::NotFound(_))
    ));
    assert!(store.head(&missing).await.unwrap().is_none());
    store.delete(&out).await.unwrap();
    store.delete(&out).await.expect("deleting twice is fine");
    assert!(store.head(&out).await.unwrap().is_none());
}

#[tokio::test]
async fn local_store() {
    let root = tempfile::tempdir().unwrap();
    let store = LocalStore::new(root.path()).unwrap();
    suite(Arc::new(store.clone())).await;
    let k = key("projects/p/x.txt");
    store
        .put(&k, Bytes::from_static(b"x"), "text/plain")
        .await
        .unwrap();
    let url = store
        .presign_get(&k, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(url.scheme(), "file");
    assert_eq!(std::fs::read(url.to_file_path().unwrap()).unwrap(), b"x");
}

#[tokio::test]
async fn s3_store_against_an_s3_server() {
    let root = tempfile::tempdir().unwrap();
    let server = S3Server::start(root.path()).await;
    let endpoint = server.endpoint.clone();
    let store = s3_store(&endpoint, "studio-test").await;
    suite(Arc::new(store.clone())).await;

    // Wrong credentials are refused by the server.
    let impostor = S3Store::new(S3Settings {
        bucket: "studio-test".into(),
        region: "us-east-1".into(),
        endpoint: Some(endpoint.clone()),
        access_key_id: ACCESS_KEY.into(),
        secret_access_key: "wrong".to_owned().into(),
        force_path_style: None,
        multipart_threshold_bytes: 16 << 20,
        part_size_bytes: 8 << 20,
    })
    .unwrap();
    assert!(matches!(
        impostor
            .get(&key("projects/p1/jobs/j1/outputs/final.mp4"))
            .await,
        Err(StorageError::Backend(_))
    ));
}

#[tokio::test]
async fn presigned_urls_work_then_expire() {
    let root = tempfile::tempdir().unwrap();
    let server = S3Server::start(root.path()).await;
    let store = s3_store(&server.endpoint, "studio-presign").await;
    let http = reqwest::Client::new();

    // Upload through a presigned PUT, download through a presigned GET, no credentials.
    let k = keys::job_output("p9", "j9", "thumbnail.jpg").unwrap();
    let put = store
        .presign_put(&k, Duration::from_secs(60), "image/jpeg")
        .await
        .unwrap();
    let status = http
        .put(put)
        .header("content-type", "image/jpeg")
        .body(b"\xff\xd8\xff\xe0 jpeg".to_vec())
        .send()
        .await
        .unwrap()
        .status();
    assert!(status.is_success(), "presigned PUT: {status}");
    let get = store.presign_get(&k, Duration::from_secs(2)).await.unwrap();
    let response = http.get(get.clone()).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.bytes().await.unwrap().as_ref(),
        b"\xff\xd8\xff\xe0 jpeg"
    );
    // A tampered URL is refused.
    let tampered = get.as_str().replace("thumbnail.jpg", "final.mp4");
    assert_eq!(http.get(tampered).send().await.unwrap().status(), 403);
    // After its expiry the same URL is refused by the server.
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let status = http.get(get).send().await.unwrap().status();
    assert_eq!(status, 403, "an expired presigned URL must not work");
}

/// A writer killed mid-upload leaves a multipart upload open; `abort_stale_uploads` aborts it
/// (security review L5). Against moto's S3 (PyPI), which implements `ListMultipartUploads`
/// (s3s-fs does not); moto dates every upload 2010, so the age rule itself is checked below.
#[tokio::test]
async fn stale_multipart_uploads_are_aborted() {
    let moto = studio_testkit::moto::Moto::start().await;
    let store = S3Store::new(S3Settings {
        bucket: "studio-stale".to_owned(),
        region: "us-east-1".to_owned(),
        endpoint: Some(moto.endpoint()),
        access_key_id: "testing".to_owned(),
        secret_access_key: "testing".to_owned().into(),
        force_path_style: None,
        multipart_threshold_bytes: 6 * 1024 * 1024,
        part_size_bytes: 5 * 1024 * 1024,
    })
    .unwrap();
    store.ensure_bucket().await.unwrap();
    let client = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                "testing", "testing", None, None, "test",
            ))
            .endpoint_url(moto.endpoint())
            .force_path_style(true)
            .build(),
    );
    // A killed writer's upload, with one part sent, and a finished object beside it.
    let started = client
        .create_multipart_upload()
        .bucket("studio-stale")
        .key("projects/p/jobs/j/outputs/1/final.mp4")
        .send()
        .await
        .unwrap();
    client
        .upload_part()
        .bucket("studio-stale")
        .key("projects/p/jobs/j/outputs/1/final.mp4")
        .upload_id(started.upload_id().unwrap())
        .part_number(1)
        .body(vec![7u8; 5 * 1024 * 1024].into())
        .send()
        .await
        .unwrap();
    store
        .put(
            &key("projects/p/keep.png"),
            Bytes::from_static(b"png"),
            "image/png",
        )
        .await
        .unwrap();
    let open = || async {
        client
            .list_multipart_uploads()
            .bucket("studio-stale")
            .send()
            .await
            .unwrap()
            .uploads()
            .len()
    };
    assert_eq!(open().await, 1);
    assert_eq!(
        store
            .abort_stale_uploads(Duration::from_secs(24 * 3600))
            .await
            .unwrap(),
        1
    );
    assert_eq!(open().await, 0);
    assert_eq!(store.abort_stale_uploads(Duration::ZERO).await.unwrap(), 0);
    assert!(store
        .head(&key("projects/p/keep.png"))
        .await
        .unwrap()
        .is_some());

    // The age rule: an upload a day old is stale for 24 h, one an hour old is not, nor one from
    // a clock ahead of ours.
    use std::time::SystemTime;
    use studio_storage::s3::is_stale;
    let now = SystemTime::now();
    let day = Duration::from_secs(24 * 3600);
    assert!(is_stale(now - day, now, day));
    assert!(!is_stale(now - Duration::from_secs(3600), now, day));
    assert!(!is_stale(
        now + Duration::from_secs(60),
        now,
        Duration::ZERO
    ));
}
