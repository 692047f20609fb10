//! `luma`: a scene's still set in motion by Luma's Dream Machine API (docs.lumalabs.ai, "Video
//! Generation": create, get).
//!
//! `POST {base_url}/generations/video` with `Authorization: Bearer` and `{"prompt", "model",
//! "aspect_ratio", "duration", "resolution", "loop": false, "keyframes": {"frame0": {"type":
//! "image", "url"}}}` answers the generation object `{"id", "state", "failure_reason", "assets":
//! {"video"}, …}` at once; its id is recorded in the [`TaskLog`] before any waiting, so a process
//! that dies while the clip is made resumes the same generation. `GET {base_url}/generations/{id}`
//! is polled with backoff (1 s doubling to 5 s) for at most [`MAX_WAIT`]: `queued`, `dreaming`,
//! then `completed` with `assets.video`, or `failed` with `failure_reason` (a moderation refusal
//! says so and is final). The video is downloaded here and checked.
//!
//! Luma fetches keyframe images itself, from a public HTTPS URL (it has no upload endpoint and
//! takes no data URIs). In the platform the still is published to the shared object store and
//! handed over as a presigned URL valid for [`STILL_URL_VALID`]; an embedded run has no such
//! store, so `luma` is skipped there with a message saying so (the chain's next provider serves).
//!
//! Models `ray-2` (default) and `ray-flash-2`; durations `5s` and `9s` (9 when the scene is
//! longer than 7 s); aspect ratios 16:9, 9:16, 1:1, 4:3, 3:4, 21:9, 9:21; resolution 720p.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use super::{clip, picture, Endpoint};
use crate::cache::ResultCache;
use crate::capability::{ClipGen, Describe, Produced};
use crate::error::{ErrorKind, ProviderError};
use crate::prices::Price;
use crate::tasks::{Task, TaskLog};
use crate::types::*;

/// Luma's API base URL.
pub const BASE_URL: &str = "https://api.lumalabs.ai/dream-machine/v1";
/// Where the key is read from by default.
pub const KEY_ENV: &str = "LUMAAI_API_KEY";
/// Model used when settings name none.
pub const MODEL: &str = "ray-2";
/// The longest a generation is waited for by one attempt; a later attempt resumes it.
pub const MAX_WAIT: Duration = Duration::from_secs(900);
/// How long the still's presigned URL stays valid: longer than Luma's queue.
pub const STILL_URL_VALID: Duration = Duration::from_secs(6 * 3600);
const RATIOS: [(&str, f64); 7] = [
    ("16:9", 16.0 / 9.0),
    ("9:16", 9.0 / 16.0),
    ("1:1", 1.0),
    ("4:3", 4.0 / 3.0),
    ("3:4", 0.75),
    ("21:9", 21.0 / 9.0),
    ("9:21", 9.0 / 21.0),
];

/// A generation as the API shows it.
#[derive(Debug, Clone, Deserialize)]
pub struct Generation {
    pub id: String,
    pub state: String,
    #[serde(default)]
    pub failure_reason: Option<String>,
    #[serde(default)]
    pub assets: Option<Assets>,
}

/// A generation's files.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Assets {
    #[serde(default)]
    pub video: Option<String>,
}

/// The account's credits (`GET /credits`, `{"credit_balance"}`): a free probe of the key.
pub async fn credit_balance(endpoint: &Endpoint) -> Result<f64, ProviderError> {
    #[derive(Deserialize)]
    struct Credits {
        credit_balance: f64,
    }
    let credits: Credits = endpoint
        .json(endpoint.request(Method::GET, "/credits"))
        .await?;
    Ok(credits.credit_balance)
}

/// Clips from Luma.
#[derive(Debug)]
pub struct LumaClips {
    endpoint: Endpoint,
    model: String,
    price: Option<Price>,
    tasks: Arc<dyn TaskLog>,
    /// Where stills are published for Luma to fetch.
    cache: Option<Arc<ResultCache>>,
}

impl LumaClips {
    /// Clips from `model` at `endpoint`; generations under way remembered in `tasks`, stills
    /// published through `cache`'s shared store.
    pub fn new(
        endpoint: Endpoint,
        model: &str,
        price: Option<Price>,
        tasks: Arc<dyn TaskLog>,
        cache: Option<Arc<ResultCache>>,
    ) -> Self {
        Self {
            endpoint,
            model: model.to_owned(),
            price,
            tasks,
            cache,
        }
    }

    /// The aspect ratio closest to `width`:`height`.
    pub fn aspect_ratio(width: u32, height: u32) -> &'static str {
        let want = f64::from(width.max(1)) / f64::from(height.max(1));
        RATIOS
            .iter()
            .min_by(|a, b| (a.1 / want).ln().abs().total_cmp(&(b.1 / want).ln().abs()))
            .map(|r| r.0)
            .unwrap_or("16:9")
    }

    /// Seconds of video asked for (and billed) for a scene of `scene_s` seconds.
    pub fn clip_seconds(scene_s: f64) -> u32 {
        if scene_s > 7.0 {
            9
        } else {
            5
        }
    }

    /// The request body for `request`, the still at `url`.
    pub fn body(&self, request: &ClipRequest, url: &str) -> serde_json::Value {
        json!({
            "prompt": request.prompt.trim(),
            "model": self.model,
            "aspect_ratio": Self::aspect_ratio(request.width, request.height),
            "duration": format!("{}s", Self::clip_seconds(request.duration_s)),
            "resolution": "720p",
            "loop": false,
            "keyframes": {"frame0": {"type": "image", "url": url}},
        })
    }

    fn task_key(&self, request: &ClipRequest) -> String {
        let json = json!({"provider": "luma", "model": self.model, "request": request});
        crate::sha256_hex(json.to_string().as_bytes())
    }

    async fn get(&self, id: &str) -> Result<Generation, ProviderError> {
        self.endpoint
            .json(
                self.endpoint
                    .request(Method::GET, &format!("/generations/{id}")),
            )
            .await
    }

    async fn resume(&self, key: &str) -> Result<Option<Generation>, ProviderError> {
        let Some(task) = self
            .tasks
            .recall(key)
            .await
            .filter(|t| t.provider == "luma")
        else {
            return Ok(None);
        };
        match self.get(&task.id).await {
            Ok(g) => {
                tracing::info!(generation = %g.id, state = %g.state, "resuming a Luma generation an earlier attempt started");
                Ok(Some(g))
            }
            Err(e) if e.kind == ErrorKind::Unavailable => {
                self.tasks.forget(key).await;
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Publishes the still and creates the generation.
    async fn create(
        &self,
        request: &ClipRequest,
        still: &Path,
    ) -> Result<Generation, ProviderError> {
        let bytes = std::fs::read(still)
            .map_err(|e| ProviderError::transient(format!("{}: {e}", still.display())))?;
        let checked = picture::check("the picture step", &bytes)?;
        let published = match &self.cache {
            Some(cache) => cache
                .public_still(&bytes, checked.extension(), STILL_URL_VALID)
                .await
                .map_err(|e| {
                    ProviderError::transient(format!("publishing the still for luma: {e}"))
                })?,
            None => None,
        };
        let url = published.ok_or_else(|| {
            ProviderError::unavailable(
                "luma fetches the still from a public URL, and this run has no shared object \
                 store to publish it (the platform has one); use replicate or runway here",
            )
        })?;
        let call = self
            .endpoint
            .request(Method::POST, "/generations/video")
            .json(&self.body(request, &url));
        self.endpoint.json(call).await
    }

    async fn wait(&self, mut generation: Generation) -> Result<Generation, ProviderError> {
        let started = Instant::now();
        let mut wait = Duration::from_secs(1);
        while !matches!(generation.state.as_str(), "completed" | "failed") {
            if started.elapsed() > MAX_WAIT {
                return Err(ProviderError::transient(format!(
                    "luma generation {} still {} after {} s",
                    generation.id,
                    generation.state,
                    MAX_WAIT.as_secs()
                )));
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(5));
            generation = self.get(&generation.id).await?;
        }
        Ok(generation)
    }
}

impl Describe for LumaClips {
    fn name(&self) -> &str {
        "luma"
    }

    fn model(&self) -> String {
        self.model.clone()
    }
}

#[async_trait]
impl ClipGen for LumaClips {
    async fn clip(
        &self,
        request: &ClipRequest,
        out: &Path,
    ) -> Result<Produced<Clip>, ProviderError> {
        let still = request.image.as_deref().ok_or_else(|| {
            ProviderError::unavailable("luma sets a still in motion; the scene has none")
        })?;
        let key = self.task_key(request);
        let generation = match self.resume(&key).await? {
            Some(g) => g,
            None => {
                let created = self.create(request, still).await?;
                let task = Task {
                    provider: "luma".into(),
                    id: created.id.clone(),
                };
                self.tasks.record(&key, &task).await.map_err(|e| {
                    ProviderError::transient(format!(
                        "recording luma generation {} before waiting on it: {e}",
                        created.id
                    ))
                })?;
                created
            }
        };
        let ended = self.wait(generation).await?;
        self.tasks.forget(&key).await;
        if ended.state == "failed" {
            let why = ended
                .failure_reason
                .clone()
                .unwrap_or_else(|| "no reason given".into());
            let lower = why.to_lowercase();
            return Err(
                if lower.contains("moderation") || lower.contains("policy") {
                    ProviderError::invalid(format!("luma refused the request: {why}"))
                } else {
                    ProviderError::transient(format!("luma generation {} failed: {why}", ended.id))
                },
            );
        }
        let url = ended
            .assets
            .as_ref()
            .and_then(|a| a.video.clone())
            .ok_or_else(|| {
                ProviderError::transient(format!(
                    "luma generation {} completed without a video",
                    ended.id
                ))
            })?;
        let bytes = self.endpoint.download(&url).await?;
        let checked = clip::check("luma", &bytes, out).await?;
        Ok(Produced {
            cost_micro_usd: self.estimate(request.duration_s),
            output: Clip {
                path: checked.path,
                duration_s: checked.duration_s,
                width: checked.width,
                height: checked.height,
                prompt: request.prompt.trim().to_owned(),
                seed: None,
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

    #[test]
    fn shapes_and_lengths() {
        assert_eq!(LumaClips::aspect_ratio(1920, 1080), "16:9");
        assert_eq!(LumaClips::aspect_ratio(1080, 1350), "3:4");
        assert_eq!(LumaClips::aspect_ratio(1080, 1080), "1:1");
        assert_eq!(LumaClips::clip_seconds(8.0), 9);
        assert_eq!(LumaClips::clip_seconds(6.0), 5);
    }
}
