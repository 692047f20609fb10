//! `replicate`: pictures from models hosted on Replicate (replicate.com/docs/reference/http).
//!
//! A prediction is created with `POST {base_url}/v1/models/{owner}/{name}/predictions` for an
//! official model named `owner/name` (FLUX), or `POST {base_url}/v1/predictions` with `version`
//! for a model pinned as `owner/name:version` (SDXL and other community models), body
//! `{"input": {...}}` and `Prefer: wait` (the answer may already be final). Until `status` is
//! `succeeded`, `failed` or `canceled`, `urls.get` is polled with backoff (0.5 s doubling to 5 s)
//! for at most [`MAX_WAIT`]; the output (a URL, or a list of them) is downloaded here and checked
//! before use. Inputs by family: FLUX models take `prompt`, `aspect_ratio`, `seed`,
//! `output_format`, `num_outputs`; others `prompt`, `negative_prompt`, `width`, `height`, `seed`.

use std::path::Path;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{picture, Endpoint};
use crate::capability::{Describe, ImageGen, Produced};
use crate::error::ProviderError;
use crate::prices::Price;
use crate::types::*;

/// Replicate's API base URL (paths start with `/v1`).
pub const BASE_URL: &str = "https://api.replicate.com";
/// Where the key is read from by default.
pub const KEY_ENV: &str = "REPLICATE_API_TOKEN";
/// Model used when settings name none.
pub const MODEL: &str = "black-forest-labs/flux-schnell";
/// The longest a prediction is waited for.
pub const MAX_WAIT: Duration = Duration::from_secs(600);
/// FLUX's aspect ratios.
const FLUX_RATIOS: [(&str, f64); 9] = [
    ("21:9", 21.0 / 9.0),
    ("16:9", 16.0 / 9.0),
    ("3:2", 1.5),
    ("5:4", 1.25),
    ("1:1", 1.0),
    ("4:5", 0.8),
    ("2:3", 2.0 / 3.0),
    ("9:16", 9.0 / 16.0),
    ("9:21", 9.0 / 21.0),
];

/// A prediction as the API shows it.
#[derive(Debug, Clone, Deserialize)]
pub struct Prediction {
    pub id: String,
    pub status: String,
    #[serde(default)]
    pub input: Value,
    #[serde(default)]
    pub output: Value,
    #[serde(default)]
    pub error: Option<Value>,
    #[serde(default)]
    pub urls: Urls,
}

/// Where a prediction is followed.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Urls {
    #[serde(default)]
    pub get: Option<String>,
}

impl Prediction {
    /// Whether it ended (`succeeded`, `failed` or `canceled`).
    pub fn ended(&self) -> bool {
        matches!(self.status.as_str(), "succeeded" | "failed" | "canceled")
    }

    /// The seed the prediction ran with, when its input has one.
    pub fn input_seed(&self) -> Option<u64> {
        self.input.get("seed").and_then(Value::as_u64)
    }

    /// The output URLs, in order (a single URL or a list of them).
    pub fn output_urls(&self) -> Vec<String> {
        match &self.output {
            Value::String(url) => vec![url.clone()],
            Value::Array(items) => items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// Follows `prediction` at its `urls.get` until it ends (`succeeded`, `failed` or `canceled`)
/// or `max_wait` passes, polling with backoff (0.5 s doubling to 5 s).
///
/// Errors: `Transient` when it does not end in time or polling fails (the prediction may still
/// end: its id is worth keeping).
pub async fn wait(
    endpoint: &Endpoint,
    mut prediction: Prediction,
    max_wait: Duration,
) -> Result<Prediction, ProviderError> {
    let started = Instant::now();
    let mut wait = Duration::from_millis(500);
    while !prediction.ended() {
        if started.elapsed() > max_wait {
            return Err(ProviderError::transient(format!(
                "replicate prediction {} still {} after {} s",
                prediction.id,
                prediction.status,
                max_wait.as_secs()
            )));
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(5));
        let get = prediction.urls.get.clone().ok_or_else(|| {
            ProviderError::transient(format!(
                "replicate prediction {} has no urls.get",
                prediction.id
            ))
        })?;
        let path = get
            .strip_prefix(&endpoint.base_url)
            .map(str::to_owned)
            .unwrap_or_else(|| format!("/v1/predictions/{}", prediction.id));
        prediction = endpoint.json(endpoint.request(Method::GET, &path)).await?;
    }
    Ok(prediction)
}

/// An ended prediction's outcome.
///
/// Errors: `Invalid` for a prediction the model refused as unsafe (its `error` says NSFW);
/// `Transient` for other failures and cancellations (another prediction may succeed).
pub fn succeeded(prediction: Prediction) -> Result<Prediction, ProviderError> {
    match prediction.status.as_str() {
        "succeeded" => Ok(prediction),
        status => {
            let error = prediction
                .error
                .as_ref()
                .map(|e| {
                    e.as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| e.to_string())
                })
                .unwrap_or_else(|| "no reason given".to_owned());
            if error.to_lowercase().contains("nsfw") {
                Err(ProviderError::invalid(format!(
                    "replicate refused the request under its content policy: {error}"
                )))
            } else {
                Err(ProviderError::transient(format!(
                    "replicate prediction {} {status}: {error}",
                    prediction.id
                )))
            }
        }
    }
}

/// Follows `prediction` until it ends or [`MAX_WAIT`] passes ([`wait`]) and returns it when it
/// succeeded ([`succeeded`]).
pub async fn follow(
    endpoint: &Endpoint,
    prediction: Prediction,
) -> Result<Prediction, ProviderError> {
    succeeded(wait(endpoint, prediction, MAX_WAIT).await?)
}

/// Creates a prediction of `model` (`owner/name` for an official model, `owner/name:version`
/// for a pinned one) with `input`; `prefer_wait` asks the API to hold the answer until the
/// prediction ends or 60 s pass.
pub async fn create(
    endpoint: &Endpoint,
    model: &str,
    input: Value,
    prefer_wait: bool,
) -> Result<Prediction, ProviderError> {
    let (path, body) = match model.split_once(':') {
        Some((_, version)) => (
            "/v1/predictions".to_owned(),
            json!({"version": version, "input": input}),
        ),
        None => (
            format!("/v1/models/{model}/predictions"),
            json!({"input": input}),
        ),
    };
    let mut call = endpoint.request(Method::POST, &path).json(&body);
    if prefer_wait {
        call = call.header("prefer", "wait");
    }
    endpoint.json(call).await
}

/// The token's account (`GET /v1/account`, `{"type", "username", "name"}`): a free probe of
/// the token and the URL.
pub async fn account(endpoint: &Endpoint) -> Result<String, ProviderError> {
    #[derive(Deserialize)]
    struct Account {
        username: String,
    }
    let account: Account = endpoint
        .json(endpoint.request(Method::GET, "/v1/account"))
        .await?;
    Ok(account.username)
}

/// Pictures from a Replicate model.
#[derive(Debug)]
pub struct ReplicateImages {
    endpoint: Endpoint,
    model: String,
    price: Option<Price>,
}

impl ReplicateImages {
    /// Pictures from `model` (`owner/name` or `owner/name:version`) at `endpoint`.
    pub fn new(endpoint: Endpoint, model: &str, price: Option<Price>) -> Self {
        Self {
            endpoint,
            model: model.to_owned(),
            price,
        }
    }

    fn flux(&self) -> bool {
        self.model.contains("flux")
    }

    /// The FLUX aspect ratio closest to `width`:`height`.
    pub fn aspect_ratio(width: u32, height: u32) -> &'static str {
        let want = f64::from(width.max(1)) / f64::from(height.max(1));
        FLUX_RATIOS
            .iter()
            .min_by(|a, b| (a.1 / want).ln().abs().total_cmp(&(b.1 / want).ln().abs()))
            .map(|r| r.0)
            .unwrap_or("1:1")
    }

    /// Width and height of about one megapixel in the canvas's shape, multiples of 64
    /// ([`picture::megapixel_size`]).
    pub fn megapixel_size(width: u32, height: u32) -> (u32, u32) {
        picture::megapixel_size(width, height)
    }

    /// The prediction's `input` for `request`.
    pub fn input(&self, request: &ImageRequest) -> Value {
        let prompt = if request.prompt.trim().is_empty() {
            format!("{}: {}", request.caption, request.terms.join(", "))
        } else {
            request.prompt.trim().to_owned()
        };
        // Replicate's models take 32-bit seeds.
        let seed = request.project_seed % (u64::from(u32::MAX) + 1);
        if self.flux() {
            json!({
                "prompt": prompt,
                "aspect_ratio": Self::aspect_ratio(request.width, request.height),
                "seed": seed,
                "output_format": "png",
                "num_outputs": 1,
            })
        } else {
            let (width, height) = Self::megapixel_size(request.width, request.height);
            json!({
                "prompt": prompt,
                "negative_prompt": request.negative_prompt,
                "width": width,
                "height": height,
                "seed": seed,
                "num_outputs": 1,
            })
        }
    }

    /// Creates the prediction (`Prefer: wait`: the answer may already be final).
    pub async fn create(&self, input: Value) -> Result<Prediction, ProviderError> {
        create(&self.endpoint, &self.model, input, true).await
    }
}

impl Describe for ReplicateImages {
    fn name(&self) -> &str {
        "replicate"
    }

    fn model(&self) -> String {
        self.model.clone()
    }
}

#[async_trait]
impl ImageGen for ReplicateImages {
    async fn image(
        &self,
        request: &ImageRequest,
        out: &Path,
    ) -> Result<Produced<Image>, ProviderError> {
        let input = self.input(request);
        let created = self.create(input.clone()).await?;
        let done = follow(&self.endpoint, created).await?;
        let url = done.output_urls().into_iter().next().ok_or_else(|| {
            ProviderError::transient(format!(
                "replicate prediction {} succeeded without an output",
                done.id
            ))
        })?;
        let bytes = self.endpoint.download(&url).await?;
        let checked = picture::check("replicate", &bytes)?;
        let path = out.join(format!("picture.{}", checked.extension()));
        std::fs::write(&path, &bytes)
            .map_err(|e| ProviderError::transient(format!("{}: {e}", path.display())))?;
        Ok(Produced {
            cost_micro_usd: self.estimate(request.width, request.height),
            output: Image {
                path,
                width: checked.width,
                height: checked.height,
                source: ImageSource::Model {
                    prompt: input["prompt"].as_str().unwrap_or_default().to_owned(),
                    seed: input["seed"].as_u64(),
                    revised_prompt: None,
                },
                credit: None,
            },
        })
    }

    fn estimate(&self, _width: u32, _height: u32) -> u64 {
        self.price.map(|p| p.per_image).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_follow_the_canvas() {
        assert_eq!(ReplicateImages::aspect_ratio(1920, 1080), "16:9");
        assert_eq!(ReplicateImages::aspect_ratio(1080, 1350), "4:5");
        assert_eq!(ReplicateImages::megapixel_size(1920, 1080), (1344, 768));
        assert_eq!(ReplicateImages::megapixel_size(1080, 1080), (1024, 1024));
        assert_eq!(ReplicateImages::megapixel_size(1080, 1920), (768, 1344));
    }
}
