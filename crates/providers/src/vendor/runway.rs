//! `runway`: a scene's still set in motion by Runway's image-to-video models (Runway API
//! reference, docs.dev.runwayml.com: "Generate a video from an image", "Get task detail").
//!
//! `POST {base_url}/v1/image_to_video` with `Authorization: Bearer`, `X-Runway-Version:
//! 2024-11-06` and `{"model", "promptImage", "promptText", "ratio", "duration", "seed"}` answers
//! `{"id"}` at once; the id is recorded in the [`TaskLog`] before any waiting, so a process that
//! dies while the clip is made resumes the same task. `GET {base_url}/v1/tasks/{id}` is polled
//! with backoff (1 s doubling to 5 s, Runway asks for no faster than every 5 s once running) for
//! at most [`MAX_WAIT`]: `PENDING`, `THROTTLED`, `RUNNING` (with `progress`), then `SUCCEEDED`
//! with `output: [url]`, or `FAILED` with `failure` and `failureCode` (`SAFETY.*`: the
//! moderation refused the input) or `CANCELLED`. The still travels as a data URI (the API takes
//! an HTTPS URL or a data URI of at most 5 MB); the video is downloaded here and checked.
//!
//! Ratios by model (the API's enumeration): `gen4_turbo` 1280:720, 720:1280, 1104:832, 832:1104,
//! 960:960, 1584:672; `gen3a_turbo` 1280:768, 768:1280. Clips are 5 or 10 seconds: 10 when the
//! scene is longer than 7.5 s.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine as _;
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use super::{clip, picture, Endpoint};
use crate::capability::{ClipGen, Describe, Produced};
use crate::error::{ErrorKind, ProviderError};
use crate::prices::Price;
use crate::tasks::{Task, TaskLog};
use crate::types::*;

/// Runway's API base URL.
pub const BASE_URL: &str = "https://api.dev.runwayml.com";
/// Where the key is read from by default.
pub const KEY_ENV: &str = "RUNWAYML_API_SECRET";
/// The API version every request names.
pub const API_VERSION: &str = "2024-11-06";
/// Model used when settings name none.
pub const MODEL: &str = "gen4_turbo";
/// The longest a task is waited for by one attempt; a later attempt resumes it.
pub const MAX_WAIT: Duration = Duration::from_secs(900);
/// The largest still sent as a data URI.
pub const MAX_IMAGE_BYTES: usize = 5 << 20;

/// The organization's credit balance (`GET /v1/organization`, `{"creditBalance", "tier",
/// "usage"}`): a free probe of the key.
pub async fn credit_balance(endpoint: &Endpoint) -> Result<u64, ProviderError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Organization {
        credit_balance: u64,
    }
    let endpoint_call = endpoint
        .request(Method::GET, "/v1/organization")
        .header("x-runway-version", API_VERSION);
    let org: Organization = endpoint.json(endpoint_call).await?;
    Ok(org.credit_balance)
}

/// A task as the API shows it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunwayTask {
    pub id: String,
    pub status: String,
    #[serde(default)]
    pub output: Vec<String>,
    #[serde(default)]
    pub failure: Option<String>,
    #[serde(default)]
    pub failure_code: Option<String>,
}

impl RunwayTask {
    fn ended(&self) -> bool {
        matches!(self.status.as_str(), "SUCCEEDED" | "FAILED" | "CANCELLED")
    }
}

/// Clips from Runway.
#[derive(Debug)]
pub struct RunwayClips {
    endpoint: Endpoint,
    model: String,
    price: Option<Price>,
    tasks: Arc<dyn TaskLog>,
}

impl RunwayClips {
    /// Clips from `model` at `endpoint`, tasks under way remembered in `tasks`.
    pub fn new(
        endpoint: Endpoint,
        model: &str,
        price: Option<Price>,
        tasks: Arc<dyn TaskLog>,
    ) -> Self {
        Self {
            endpoint: endpoint.with_header("x-runway-version", API_VERSION),
            model: model.to_owned(),
            price,
            tasks,
        }
    }

    /// The model's ratio closest to `width`:`height`.
    pub fn ratio(&self, width: u32, height: u32) -> &'static str {
        let ratios: &[&'static str] = if self.model.starts_with("gen3") {
            &["1280:768", "768:1280"]
        } else {
            &[
                "1280:720", "720:1280", "1104:832", "832:1104", "960:960", "1584:672",
            ]
        };
        let want = f64::from(width.max(1)) / f64::from(height.max(1));
        let of = |r: &str| {
            let (w, h) = r.split_once(':').unwrap_or(("1", "1"));
            w.parse::<f64>().unwrap_or(1.0) / h.parse::<f64>().unwrap_or(1.0)
        };
        ratios
            .iter()
            .min_by(|a, b| {
                (of(a) / want)
                    .ln()
                    .abs()
                    .total_cmp(&(of(b) / want).ln().abs())
            })
            .copied()
            .unwrap_or("1280:720")
    }

    /// Seconds of video asked for (and billed) for a scene of `scene_s` seconds.
    pub fn clip_seconds(scene_s: f64) -> u32 {
        if scene_s > 7.5 {
            10
        } else {
            5
        }
    }

    fn task_key(&self, request: &ClipRequest) -> String {
        let json = json!({"provider": "runway", "model": self.model, "request": request});
        crate::sha256_hex(json.to_string().as_bytes())
    }

    /// The request body for `request`, the still as `data_uri`.
    pub fn body(&self, request: &ClipRequest, data_uri: &str) -> serde_json::Value {
        json!({
            "model": self.model,
            "promptImage": data_uri,
            "promptText": request.prompt.trim(),
            "ratio": self.ratio(request.width, request.height),
            "duration": Self::clip_seconds(request.duration_s),
            // The API takes 0..=4294967295.
            "seed": request.seed % (u64::from(u32::MAX) + 1),
        })
    }

    async fn get(&self, id: &str) -> Result<RunwayTask, ProviderError> {
        self.endpoint
            .json(
                self.endpoint
                    .request(Method::GET, &format!("/v1/tasks/{id}")),
            )
            .await
    }

    /// The task an earlier attempt recorded for `key`, as it stands; `None` when none is
    /// recorded or Runway no longer knows it.
    async fn resume(&self, key: &str) -> Result<Option<RunwayTask>, ProviderError> {
        let Some(task) = self
            .tasks
            .recall(key)
            .await
            .filter(|t| t.provider == "runway")
        else {
            return Ok(None);
        };
        match self.get(&task.id).await {
            Ok(t) => {
                tracing::info!(task = %t.id, status = %t.status, "resuming a Runway task an earlier attempt started");
                Ok(Some(t))
            }
            Err(e) if e.kind == ErrorKind::Unavailable => {
                self.tasks.forget(key).await;
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    async fn create(
        &self,
        request: &ClipRequest,
        still: &Path,
    ) -> Result<RunwayTask, ProviderError> {
        let bytes = std::fs::read(still)
            .map_err(|e| ProviderError::transient(format!("{}: {e}", still.display())))?;
        if bytes.len() > MAX_IMAGE_BYTES {
            return Err(ProviderError::unavailable(format!(
                "the scene's picture is {} MB; Runway takes stills of at most 5 MB",
                bytes.len() >> 20
            )));
        }
        let checked = picture::check("the picture step", &bytes)?;
        let mime = match checked.extension() {
            "jpg" => "image/jpeg",
            "webp" => "image/webp",
            _ => "image/png",
        };
        let data_uri = format!(
            "data:{mime};base64,{}",
            base64::engine::general_purpose::STANDARD.encode(&bytes)
        );
        #[derive(Deserialize)]
        struct Created {
            id: String,
        }
        let call = self
            .endpoint
            .request(Method::POST, "/v1/image_to_video")
            .json(&self.body(request, &data_uri));
        let created: Created = self.endpoint.json(call).await?;
        Ok(RunwayTask {
            id: created.id,
            status: "PENDING".into(),
            output: Vec::new(),
            failure: None,
            failure_code: None,
        })
    }

    /// Polls `task` until it ends or [`MAX_WAIT`] passes.
    async fn wait(&self, mut task: RunwayTask) -> Result<RunwayTask, ProviderError> {
        let started = Instant::now();
        let mut wait = Duration::from_secs(1);
        while !task.ended() {
            if started.elapsed() > MAX_WAIT {
                return Err(ProviderError::transient(format!(
                    "runway task {} still {} after {} s",
                    task.id,
                    task.status,
                    MAX_WAIT.as_secs()
                )));
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(5));
            task = self.get(&task.id).await?;
        }
        Ok(task)
    }
}

impl Describe for RunwayClips {
    fn name(&self) -> &str {
        "runway"
    }

    fn model(&self) -> String {
        self.model.clone()
    }
}

#[async_trait]
impl ClipGen for RunwayClips {
    async fn clip(
        &self,
        request: &ClipRequest,
        out: &Path,
    ) -> Result<Produced<Clip>, ProviderError> {
        let still = request.image.as_deref().ok_or_else(|| {
            ProviderError::unavailable("runway sets a still in motion; the scene has none")
        })?;
        let key = self.task_key(request);
        let task = match self.resume(&key).await? {
            Some(t) => t,
            None => {
                let created = self.create(request, still).await?;
                let record = Task {
                    provider: "runway".into(),
                    id: created.id.clone(),
                };
                self.tasks.record(&key, &record).await.map_err(|e| {
                    ProviderError::transient(format!(
                        "recording runway task {} before waiting on it: {e}",
                        created.id
                    ))
                })?;
                created
            }
        };
        let ended = self.wait(task).await?;
        self.tasks.forget(&key).await;
        match ended.status.as_str() {
            "SUCCEEDED" => {}
            status => {
                let code = ended.failure_code.clone().unwrap_or_default();
                let why = ended
                    .failure
                    .clone()
                    .unwrap_or_else(|| "no reason given".into());
                return Err(if code.starts_with("SAFETY") {
                    ProviderError::invalid(format!(
                        "runway refused the request under its content moderation ({code}): {why}"
                    ))
                } else {
                    ProviderError::transient(format!(
                        "runway task {} {}: {why} {code}",
                        ended.id,
                        status.to_lowercase()
                    ))
                });
            }
        }
        let url = ended.output.first().ok_or_else(|| {
            ProviderError::transient(format!(
                "runway task {} succeeded without an output",
                ended.id
            ))
        })?;
        let bytes = self.endpoint.download(url).await?;
        let checked = clip::check("runway", &bytes, out).await?;
        Ok(Produced {
            cost_micro_usd: self.estimate(request.duration_s),
            output: Clip {
                path: checked.path,
                duration_s: checked.duration_s,
                width: checked.width,
                height: checked.height,
                prompt: request.prompt.trim().to_owned(),
                seed: Some(request.seed % (u64::from(u32::MAX) + 1)),
                credit: None,
            },
        })
    }

    fn estimate(&self, duration_s: f64) -> u64 {
        let per_second = self.price.map(|p| p.per_video_second).unwrap_or(0);
        per_second * u64::from(Self::clip_seconds(duration_s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::MemoryTaskLog;

    #[test]
    fn ratios_follow_the_canvas_and_the_model() {
        let endpoint = || {
            Endpoint::new(
                "runway",
                BASE_URL,
                "",
                super::super::Auth::Bearer,
                Duration::from_secs(1),
            )
            .unwrap()
        };
        let log = || Arc::new(MemoryTaskLog::default());
        let gen4 = RunwayClips::new(endpoint(), MODEL, None, log());
        assert_eq!(gen4.ratio(1920, 1080), "1280:720");
        assert_eq!(gen4.ratio(1080, 1920), "720:1280");
        assert_eq!(gen4.ratio(1080, 1080), "960:960");
        assert_eq!(gen4.ratio(1080, 1350), "832:1104");
        let gen3 = RunwayClips::new(endpoint(), "gen3a_turbo", None, log());
        assert_eq!(gen3.ratio(1080, 1080), "1280:768");
        assert_eq!(RunwayClips::clip_seconds(8.0), 10);
        assert_eq!(RunwayClips::clip_seconds(3.0), 5);
    }
}
