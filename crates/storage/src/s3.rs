//! S3 (or any S3-compatible server: MinIO, Ceph, s3s) through aws-sdk-s3.
//!
//! Files above `multipart_threshold_bytes` upload in parts of `part_size_bytes` (S3's minimum
//! part is 5 MiB, the maximum 10,000 parts; AWS "Uploading and copying objects using multipart
//! upload"); a failed multipart upload is aborted so no orphan parts stay billed, and
//! [`ObjectStore::abort_stale_uploads`] aborts those of writers killed mid-upload. Presigned URLs
//! are SigV4 query-signed and expire after the requested time (1 s to 7 days).

use std::path::Path;
use std::time::{Duration, SystemTime};

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;
use bytes::Bytes;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use crate::{ObjectKey, ObjectMeta, ObjectStore, StorageError};

/// S3's smallest part (except the last).
pub const MIN_PART_BYTES: u64 = 5 * 1024 * 1024;

/// Where and how to reach the bucket.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Settings {
    pub bucket: String,
    /// Default `us-east-1`.
    #[serde(default = "default_region")]
    pub region: String,
    /// An S3-compatible endpoint, e.g. `http://127.0.0.1:9000`; AWS when unset.
    #[serde(default)]
    pub endpoint: Option<String>,
    pub access_key_id: String,
    pub secret_access_key: SecretString,
    /// `https://endpoint/bucket/key` instead of `https://bucket.endpoint/key`. Default true with
    /// a custom endpoint.
    #[serde(default)]
    pub force_path_style: Option<bool>,
    /// Files larger than this upload in parts. Default 16 MiB.
    #[serde(default = "default_threshold")]
    pub multipart_threshold_bytes: u64,
    /// Part size, at least 5 MiB. Default 8 MiB.
    #[serde(default = "default_part")]
    pub part_size_bytes: u64,
}

fn default_region() -> String {
    "us-east-1".to_owned()
}

fn default_threshold() -> u64 {
    16 * 1024 * 1024
}

fn default_part() -> u64 {
    8 * 1024 * 1024
}

/// A bucket as an object store.
#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
    settings: S3Settings,
}

fn backend<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> StorageError + '_ {
    move |e| StorageError::Backend(format!("{what}: {e}"))
}

impl S3Store {
    /// Builds the client. `Settings` for an empty bucket name or a part size under 5 MiB.
    pub fn new(settings: S3Settings) -> Result<S3Store, StorageError> {
        if settings.bucket.is_empty() {
            return Err(StorageError::Settings("bucket must not be empty".into()));
        }
        if settings.part_size_bytes < MIN_PART_BYTES {
            return Err(StorageError::Settings(format!(
                "part_size_bytes must be at least {MIN_PART_BYTES} (S3's minimum part)"
            )));
        }
        let mut config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(settings.region.clone()))
            .credentials_provider(Credentials::new(
                settings.access_key_id.clone(),
                settings.secret_access_key.expose_secret().to_owned(),
                None,
                None,
                "studio-settings",
            ))
            .force_path_style(
                settings
                    .force_path_style
                    .unwrap_or(settings.endpoint.is_some()),
            );
        if let Some(endpoint) = &settings.endpoint {
            config = config.endpoint_url(endpoint);
        }
        Ok(S3Store {
            client: Client::from_conf(config.build()),
            settings,
        })
    }

    /// Creates the bucket when it does not exist (development and tests; production buckets come
    /// from Terraform).
    pub async fn ensure_bucket(&self) -> Result<(), StorageError> {
        let bucket = &self.settings.bucket;
        if self
            .client
            .head_bucket()
            .bucket(bucket)
            .send()
            .await
            .is_ok()
        {
            return Ok(());
        }
        self.client
            .create_bucket()
            .bucket(bucket)
            .send()
            .await
            .map_err(|e| {
                StorageError::Backend(format!(
                    "create bucket {bucket}: {}",
                    e.into_service_error()
                ))
            })?;
        Ok(())
    }

    async fn put_multipart(
        &self,
        key: &ObjectKey,
        path: &Path,
        size: u64,
        content_type: &str,
    ) -> Result<(), StorageError> {
        let bucket = &self.settings.bucket;
        let created = self
            .client
            .create_multipart_upload()
            .bucket(bucket)
            .key(key.as_str())
            .content_type(content_type)
            .send()
            .await
            .map_err(|e| {
                StorageError::Backend(format!(
                    "create multipart upload: {}",
                    e.into_service_error()
                ))
            })?;
        let upload_id = created
            .upload_id()
            .ok_or_else(|| StorageError::Backend("no upload id".into()))?
            .to_owned();
        let result = async {
            let mut parts = Vec::new();
            let mut offset = 0;
            let mut number = 1;
            while offset < size {
                let length = self.settings.part_size_bytes.min(size - offset);
                let body = ByteStream::read_from()
                    .path(path)
                    .offset(offset)
                    .length(Length::Exact(length))
                    .build()
                    .await
                    .map_err(backend("read part"))?;
                let part = self
                    .client
                    .upload_part()
                    .bucket(bucket)
                    .key(key.as_str())
                    .upload_id(&upload_id)
                    .part_number(number)
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| {
                        StorageError::Backend(format!(
                            "upload part {number}: {}",
                            e.into_service_error()
                        ))
                    })?;
                parts.push(
                    CompletedPart::builder()
                        .part_number(number)
                        .set_e_tag(part.e_tag().map(str::to_owned))
                        .build(),
                );
                offset += length;
                number += 1;
            }
            self.client
                .complete_multipart_upload()
                .bucket(bucket)
                .key(key.as_str())
                .upload_id(&upload_id)
                .multipart_upload(
                    CompletedMultipartUpload::builder()
                        .set_parts(Some(parts))
                        .build(),
                )
                .send()
                .await
                .map_err(|e| {
                    StorageError::Backend(format!(
                        "complete multipart upload: {}",
                        e.into_service_error()
                    ))
                })?;
            Ok::<_, StorageError>(number - 1)
        }
        .await;
        match result {
            Ok(parts) => {
                tracing::debug!(key = %key, parts, size, "multipart upload complete");
                Ok(())
            }
            Err(err) => {
                let _ = self
                    .client
                    .abort_multipart_upload()
                    .bucket(bucket)
                    .key(key.as_str())
                    .upload_id(&upload_id)
                    .send()
                    .await;
                Err(err)
            }
        }
    }
}

impl S3Store {
    /// Starts a GET; `NotFound` when the key is absent.
    async fn get_object(
        &self,
        key: &ObjectKey,
    ) -> Result<aws_sdk_s3::operation::get_object::GetObjectOutput, StorageError> {
        self.client
            .get_object()
            .bucket(&self.settings.bucket)
            .key(key.as_str())
            .send()
            .await
            .map_err(|e| match e.into_service_error() {
                aws_sdk_s3::operation::get_object::GetObjectError::NoSuchKey(_) => {
                    StorageError::NotFound(key.to_string())
                }
                other => StorageError::Backend(format!("get {key}: {other}")),
            })
    }
}

/// Whether an upload initiated at `initiated` is at least `older_than` old at `now`.
pub fn is_stale(initiated: SystemTime, now: SystemTime, older_than: Duration) -> bool {
    now.duration_since(initiated)
        .is_ok_and(|age| age >= older_than)
}

fn expiry(expires: Duration) -> Result<PresigningConfig, StorageError> {
    PresigningConfig::expires_in(expires)
        .map_err(|e| StorageError::Settings(format!("presign expiry: {e}")))
}

#[async_trait::async_trait]
impl ObjectStore for S3Store {
    async fn put(
        &self,
        key: &ObjectKey,
        bytes: Bytes,
        content_type: &str,
    ) -> Result<(), StorageError> {
        self.client
            .put_object()
            .bucket(&self.settings.bucket)
            .key(key.as_str())
            .content_type(content_type)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| StorageError::Backend(format!("put {key}: {}", e.into_service_error())))?;
        Ok(())
    }

    async fn put_file(
        &self,
        key: &ObjectKey,
        path: &Path,
        content_type: &str,
    ) -> Result<(), StorageError> {
        let size = tokio::fs::metadata(path)
            .await
            .map_err(|source| StorageError::Io {
                path: path.display().to_string(),
                source,
            })?
            .len();
        if size > self.settings.multipart_threshold_bytes {
            return self.put_multipart(key, path, size, content_type).await;
        }
        let body = ByteStream::from_path(path)
            .await
            .map_err(backend("read file"))?;
        self.client
            .put_object()
            .bucket(&self.settings.bucket)
            .key(key.as_str())
            .content_type(content_type)
            .body(body)
            .send()
            .await
            .map_err(|e| StorageError::Backend(format!("put {key}: {}", e.into_service_error())))?;
        Ok(())
    }

    async fn get(&self, key: &ObjectKey) -> Result<Bytes, StorageError> {
        let output = self.get_object(key).await?;
        let data = output.body.collect().await.map_err(backend("read body"))?;
        Ok(data.into_bytes())
    }

    async fn get_to_file(&self, key: &ObjectKey, path: &Path) -> Result<u64, StorageError> {
        let output = self.get_object(key).await?;
        let io = |source| StorageError::Io {
            path: path.display().to_string(),
            source,
        };
        let scratch = path.with_extension(format!("{}.partial", uuid::Uuid::new_v4().simple()));
        let mut file = tokio::fs::File::create(&scratch).await.map_err(io)?;
        let mut reader = output.body.into_async_read();
        let n = tokio::io::copy(&mut reader, &mut file).await.map_err(io)?;
        file.flush().await.map_err(io)?;
        file.sync_all().await.map_err(io)?;
        drop(file);
        tokio::fs::rename(&scratch, path).await.map_err(io)?;
        Ok(n)
    }

    async fn head(&self, key: &ObjectKey) -> Result<Option<ObjectMeta>, StorageError> {
        match self
            .client
            .head_object()
            .bucket(&self.settings.bucket)
            .key(key.as_str())
            .send()
            .await
        {
            Ok(output) => Ok(Some(ObjectMeta {
                key: key.to_string(),
                size: output.content_length().unwrap_or_default().max(0) as u64,
            })),
            Err(e) => match e.into_service_error() {
                aws_sdk_s3::operation::head_object::HeadObjectError::NotFound(_) => Ok(None),
                other => Err(StorageError::Backend(format!("head {key}: {other}"))),
            },
        }
    }

    /// `ListMultipartUploads` page by page, then `AbortMultipartUpload` for each stale one; an
    /// upload that completed or was aborted meanwhile (`NoSuchUpload`) is skipped.
    async fn abort_stale_uploads(&self, older_than: Duration) -> Result<u64, StorageError> {
        let bucket = &self.settings.bucket;
        let now = SystemTime::now();
        let mut aborted = 0;
        let (mut key_marker, mut id_marker) = (None, None);
        loop {
            let page = self
                .client
                .list_multipart_uploads()
                .bucket(bucket)
                .set_key_marker(key_marker.take())
                .set_upload_id_marker(id_marker.take())
                .send()
                .await
                .map_err(|e| {
                    StorageError::Backend(format!(
                        "list multipart uploads: {}",
                        e.into_service_error()
                    ))
                })?;
            for upload in page.uploads() {
                let (Some(key), Some(id)) = (upload.key(), upload.upload_id()) else {
                    continue;
                };
                let initiated = upload
                    .initiated()
                    .and_then(|t| SystemTime::try_from(*t).ok());
                if !initiated.is_some_and(|t| is_stale(t, now, older_than)) {
                    continue;
                }
                match self
                    .client
                    .abort_multipart_upload()
                    .bucket(bucket)
                    .key(key)
                    .upload_id(id)
                    .send()
                    .await
                {
                    Ok(_) => {
                        tracing::info!(key, "aborted a stale multipart upload");
                        aborted += 1;
                    }
                    Err(e) => {
                        let e = e.into_service_error();
                        if !e.is_no_such_upload() {
                            return Err(StorageError::Backend(format!(
                                "abort multipart upload of {key}: {e}"
                            )));
                        }
                    }
                }
            }
            if page.is_truncated() == Some(true) {
                key_marker = page.next_key_marker().map(str::to_owned);
                id_marker = page.next_upload_id_marker().map(str::to_owned);
                if key_marker.is_none() && id_marker.is_none() {
                    break;
                }
            } else {
                break;
            }
        }
        Ok(aborted)
    }

    async fn delete(&self, key: &ObjectKey) -> Result<(), StorageError> {
        self.client
            .delete_object()
            .bucket(&self.settings.bucket)
            .key(key.as_str())
            .send()
            .await
            .map_err(|e| {
                StorageError::Backend(format!("delete {key}: {}", e.into_service_error()))
            })?;
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StorageError> {
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.settings.bucket)
                .prefix(prefix)
                .set_continuation_token(token)
                .send()
                .await
                .map_err(|e| {
                    StorageError::Backend(format!("list {prefix}: {}", e.into_service_error()))
                })?;
            for object in page.contents() {
                if let Some(key) = object.key() {
                    out.push(ObjectMeta {
                        key: key.to_owned(),
                        size: object.size().unwrap_or_default().max(0) as u64,
                    });
                }
            }
            match page.next_continuation_token() {
                Some(next) if page.is_truncated().unwrap_or(false) => token = Some(next.to_owned()),
                _ => break,
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn presign_get(
        &self,
        key: &ObjectKey,
        expires: Duration,
    ) -> Result<url::Url, StorageError> {
        let request = self
            .client
            .get_object()
            .bucket(&self.settings.bucket)
            .key(key.as_str())
            .presigned(expiry(expires)?)
            .await
            .map_err(|e| StorageError::Backend(format!("presign {key}: {e}")))?;
        url::Url::parse(request.uri()).map_err(backend("presigned url"))
    }

    async fn presign_put(
        &self,
        key: &ObjectKey,
        expires: Duration,
        content_type: &str,
    ) -> Result<url::Url, StorageError> {
        let request = self
            .client
            .put_object()
            .bucket(&self.settings.bucket)
            .key(key.as_str())
            .content_type(content_type)
            .presigned(expiry(expires)?)
            .await
            .map_err(|e| StorageError::Backend(format!("presign {key}: {e}")))?;
        url::Url::parse(request.uri()).map_err(backend("presigned url"))
    }
}
