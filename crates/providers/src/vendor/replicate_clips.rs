//! `replicate` clips: a scene's still set in motion by an image-to-video model hosted on
//! Replicate (replicate.com/docs/reference/http).
//!
//! The still is uploaded with the Files API (`POST {base_url}/v1/files`, multipart field
//! `content`; its `urls.get` becomes the model's image input: data URLs are meant for files
//! under 256 KB), then a prediction is created *without* `Prefer: wait` so that its id comes
//! back at once, and that id is recorded in the [`TaskLog`] before any waiting. A process that
//! dies while the clip is made — a killed worker, a lost lease — finds the id under the same
//! request and polls the same prediction again instead of paying for another one. Polling
//! follows `urls.get` with backoff (0.5 s doubling to 5 s) for at most [`CLIP_MAX_WAIT`]; the
//! output video is downloaded here and checked ([`super::clip::check`]) before use.
//!
//! Inputs by model family (each model's page on replicate.com):
//! - Kling (`kwaivgi/kling-*`): `prompt`, `negative_prompt`, `start_image`, `duration` (5 or
//!   10 seconds: 10 when the scene is longer than 7.5 s);
//! - MiniMax Hailuo (`minimax/video-01*`): `prompt`, `first_frame_image`, `prompt_optimizer`
//!   (off, so the prompt stays ours); 6 seconds;
//! - any other (Wan 2.1 i2v, Stable Video Diffusion, …): `prompt`, `image`, `seed`; 5 seconds.
//!
//! The window between Replicate creating a prediction and the id being recorded is one HTTP
//! answer long; Replicate takes no idempotency key, so a crash inside it is the one case that
//! pays twice.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Value};

use super::replicate::{self, Prediction};
use super::{clip, Endpoint};
use crate::capability::{ClipGen, Describe, Produced};
use crate::error::ProviderError;
use crate::prices::Price;
use crate::tasks::{Task, TaskLog};
use crate::types::*;

/// Image-to-video model used when settings name none.
pub const CLIP_MODEL: &str = "kwaivgi/kling-v1.6-standard";
/// The longest a clip prediction is waited for by one attempt; a later attempt resumes it.
pub const CLIP_MAX_WAIT: Duration = Duration::from_secs(900);

/// How a model family takes its inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `kwaivgi/kling-*`.
    Kling,
    /// `minimax/video-01*`.
    Minimax,
    /// Every other image-to-video model.
    Generic,
}

/// Clips from a Replicate image-to-video model.
#[derive(Debug)]
pub struct ReplicateClips {
    endpoint: Endpoint,
    model: String,
    price: Option<Price>,
    tasks: Arc<dyn TaskLog>,
}

impl ReplicateClips {
    /// Clips from `model` (`owner/name` or `owner/name:version`) at `endpoint`, predictions
    /// under way remembered in `tasks`.
    pub fn new(
        endpoint: Endpoint,
        model: &str,
        price: Option<Price>,
        tasks: Arc<dyn TaskLog>,
    ) -> Self {
        Self {
            endpoint,
            model: model.to_owned(),
            price,
            tasks,
        }
    }

    /// The model's family, from its name.
    pub fn family(&self) -> Family {
        let name = self.model.to_lowercase();
        if name.starts_with("kwaivgi/kling") {
            Family::Kling
        } else if name.starts_with("minimax/") {
            Family::Minimax
        } else {
            Family::Generic
        }
    }

    /// Seconds of video the model is asked for (and billed for) when the scene lasts
    /// `scene_s` seconds.
    pub fn clip_seconds(&self, scene_s: f64) -> u32 {
        match self.family() {
            Family::Kling if scene_s > 7.5 => 10,
            Family::Kling => 5,
            Family::Minimax => 6,
            Family::Generic => 5,
        }
    }

    /// The prediction's `input` for `request`, the still at `image_url`.
    pub fn input(&self, request: &ClipRequest, image_url: &str) -> Value {
        let prompt = request.prompt.trim();
        match self.family() {
            Family::Kling => json!({
                "prompt": prompt,
                "negative_prompt": request.negative_prompt,
                "start_image": image_url,
                "duration": self.clip_seconds(request.duration_s),
            }),
            Family::Minimax => json!({
                "prompt": prompt,
                "first_frame_image": image_url,
                "prompt_optimizer": false,
            }),
            Family::Generic => json!({
                "prompt": prompt,
                "image": image_url,
                // Replicate's models take 32-bit seeds.
                "seed": request.seed % (u64::from(u32::MAX) + 1),
            }),
        }
    }

    /// The task log's key of `request`: provider, model and request (the still by digest).
    fn task_key(&self, request: &ClipRequest) -> String {
        let json = json!({"provider": "replicate", "model": self.model, "request": request});
        crate::sha256_hex(json.to_string().as_bytes())
    }

    /// Uploads the still with the Files API; returns its `urls.get`.
    async fn upload(&self, still: &Path) -> Result<String, ProviderError> {
        #[derive(Deserialize)]
        struct File {
            urls: FileUrls,
        }
        #[derive(Deserialize)]
        struct FileUrls {
            get: String,
        }
        let bytes = std::fs::read(still)
            .map_err(|e| ProviderError::transient(format!("{}: {e}", still.display())))?;
        let checked = super::picture::check("the picture step", &bytes)?;
        let name = format!("still.{}", checked.extension());
        let mime = match checked.extension() {
            "jpg" => "image/jpeg",
            "webp" => "image/webp",
            _ => "image/png",
        };
        let part = reqwest::multipart::Part::bytes(bytes)
            .file_name(name)
            .mime_str(mime)
            .map_err(|e| ProviderError::invalid(e.to_string()))?;
        let form = reqwest::multipart::Form::new().part("content", part);
        let call = self
            .endpoint
            .request(Method::POST, "/v1/files")
            .multipart(form);
        let file: File = self.endpoint.json(call).await?;
        Ok(file.urls.get)
    }

    /// The prediction recorded for `key` by an earlier attempt, as it stands now; `None` when
    /// none is recorded or Replicate no longer knows it.
    async fn resume(&self, key: &str) -> Result<Option<Prediction>, ProviderError> {
        let Some(task) = self
            .tasks
            .recall(key)
            .await
            .filter(|t| t.provider == "replicate")
        else {
            return Ok(None);
        };
        let path = format!("/v1/predictions/{}", task.id);
        match self
            .endpoint
            .json::<Prediction>(self.endpoint.request(Method::GET, &path))
            .await
        {
            Ok(prediction) => {
                tracing::info!(prediction = %task.id, status = %prediction.status, "resuming a clip prediction an earlier attempt started");
                Ok(Some(prediction))
            }
            // Unknown (404) or no longer ours: start anew.
            Err(e) if e.kind == crate::ErrorKind::Unavailable => {
                self.tasks.forget(key).await;
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}

impl Describe for ReplicateClips {
    fn name(&self) -> &str {
        "replicate"
    }

    fn model(&self) -> String {
        self.model.clone()
    }
}

#[async_trait]
impl ClipGen for ReplicateClips {
    async fn clip(
        &self,
        request: &ClipRequest,
        out: &Path,
    ) -> Result<Produced<Clip>, ProviderError> {
        let still = request.image.as_deref().ok_or_else(|| {
            ProviderError::unavailable("replicate clips set a still in motion; the scene has none")
        })?;
        let key = self.task_key(request);
        let prediction = match self.resume(&key).await? {
            Some(p) => p,
            None => {
                let url = self.upload(still).await?;
                let created = replicate::create(
                    &self.endpoint,
                    &self.model,
                    self.input(request, &url),
                    false,
                )
                .await?;
                let task = Task {
                    provider: "replicate".into(),
                    id: created.id.clone(),
                };
                self.tasks.record(&key, &task).await.map_err(|e| {
                    ProviderError::transient(format!(
                        "recording replicate prediction {} before waiting on it: {e}",
                        created.id
                    ))
                })?;
                created
            }
        };
        // Polling errors and timeouts keep the id: the next attempt resumes the prediction.
        let ended = replicate::wait(&self.endpoint, prediction, CLIP_MAX_WAIT).await?;
        self.tasks.forget(&key).await;
        let done = replicate::succeeded(ended)?;
        let url = done.output_urls().into_iter().next().ok_or_else(|| {
            ProviderError::transient(format!(
                "replicate prediction {} succeeded without an output",
                done.id
            ))
        })?;
        let bytes = self.endpoint.download(&url).await?;
        let checked = clip::check("replicate", &bytes, out).await?;
        let seed = done.input_seed();
        Ok(Produced {
            cost_micro_usd: self.estimate(request.duration_s),
            output: Clip {
                path: checked.path,
                duration_s: checked.duration_s,
                width: checked.width,
                height: checked.height,
                prompt: request.prompt.trim().to_owned(),
                seed,
                credit: None,
            },
        })
    }

    fn estimate(&self, duration_s: f64) -> u64 {
        let per_second = self.price.map(|p| p.per_video_second).unwrap_or(0);
        per_second * u64::from(self.clip_seconds(duration_s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::MemoryTaskLog;

    fn clips(model: &str) -> ReplicateClips {
        let endpoint = Endpoint::new(
            "replicate",
            "http://127.0.0.1:9",
            "",
            super::super::Auth::Bearer,
            Duration::from_secs(1),
        )
        .unwrap();
        let price = Price {
            per_video_second: 50_000,
            ..Price::default()
        };
        ReplicateClips::new(
            endpoint,
            model,
            Some(price),
            Arc::new(MemoryTaskLog::default()),
        )
    }

    #[test]
    fn families_take_their_own_inputs_and_lengths() {
        let request = ClipRequest {
            prompt: " the hare runs ".into(),
            negative_prompt: "text".into(),
            image_sha256: Some("ab".into()),
            image: None,
            duration_s: 8.0,
            width: 1920,
            height: 1080,
            seed: 7,
            terms: Vec::new(),
        };
        let kling = clips(CLIP_MODEL);
        assert_eq!(kling.family(), Family::Kling);
        let input = kling.input(&request, "https://f/1");
        assert_eq!(input["start_image"], "https://f/1");
        assert_eq!(input["duration"], 10);
        assert_eq!(input["prompt"], "the hare runs");
        assert_eq!(kling.estimate(8.0), 500_000);
        assert_eq!(kling.estimate(4.0), 250_000);
        let minimax = clips("minimax/video-01-live");
        assert_eq!(minimax.input(&request, "u")["first_frame_image"], "u");
        assert_eq!(minimax.clip_seconds(3.0), 6);
        let wan = clips("wavespeedai/wan-2.1-i2v-480p");
        assert_eq!(wan.input(&request, "u")["image"], "u");
        assert_eq!(wan.input(&request, "u")["seed"], 7);
        // The task key ignores the still's local path: a later process finds the same task.
        let mut moved = request.clone();
        moved.image = Some("/elsewhere/still.png".into());
        assert_eq!(kling.task_key(&request), kling.task_key(&moved));
    }
}
