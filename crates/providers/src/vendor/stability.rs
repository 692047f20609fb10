//! `stability`: pictures from Stability AI's Stable Image API (platform.stability.ai/docs/api-reference,
//! "Generate"): `POST {base_url}/v2beta/stable-image/generate/{core|ultra}`, or `…/generate/sd3`
//! with `model` (`sd3.5-large`, `sd3.5-large-turbo`, `sd3.5-medium`), as `multipart/form-data`
//! with `prompt`, `negative_prompt`, `aspect_ratio`, `seed` and `output_format`, asked with
//! `Accept: application/json`: the answer is `{"image": base64, "finish_reason", "seed"}`, where
//! `finish_reason` `CONTENT_FILTERED` means the picture was blurred by the vendor's filter.
//!
//! The project seed is sent (the API takes 0..=4,294,967,294; 0 means random, so it is never
//! sent), so every scene of a video shares it and a scene can be drawn again exactly.

use std::path::Path;

use async_trait::async_trait;
use base64::Engine as _;
use reqwest::Method;
use serde::Deserialize;

use super::{picture, Endpoint};
use crate::capability::{Describe, ImageGen, Produced};
use crate::error::ProviderError;
use crate::prices::Price;
use crate::types::*;

/// Stability AI's API base URL.
pub const BASE_URL: &str = "https://api.stability.ai";
/// Where the key is read from by default.
pub const KEY_ENV: &str = "STABILITY_API_KEY";
/// Model used when settings name none.
pub const MODEL: &str = "core";
/// The aspect ratios the API draws (`aspect_ratio`).
pub const ASPECT_RATIOS: [(&str, u32, u32); 9] = [
    ("21:9", 21, 9),
    ("16:9", 16, 9),
    ("3:2", 3, 2),
    ("5:4", 5, 4),
    ("1:1", 1, 1),
    ("4:5", 4, 5),
    ("2:3", 2, 3),
    ("9:16", 9, 16),
    ("9:21", 9, 21),
];
/// The largest seed the API takes.
pub const MAX_SEED: u64 = 4_294_967_294;

/// The account's credit balance (`GET /v1/user/balance`, `{"credits": …}`): a free probe of
/// the key and the URL.
pub async fn balance(endpoint: &Endpoint) -> Result<f64, ProviderError> {
    #[derive(Deserialize)]
    struct Balance {
        credits: f64,
    }
    let balance: Balance = endpoint
        .json(endpoint.request(Method::GET, "/v1/user/balance"))
        .await?;
    Ok(balance.credits)
}

/// The Stable Image API.
#[derive(Debug)]
pub struct StabilityImages {
    endpoint: Endpoint,
    model: String,
    price: Option<Price>,
}

#[derive(Debug, Deserialize)]
struct Answer {
    image: String,
    #[serde(default)]
    finish_reason: Option<String>,
    #[serde(default)]
    seed: Option<u64>,
}

impl StabilityImages {
    /// Pictures from `model` (`core`, `ultra`, `sd3.5-large`, …) at `endpoint`.
    pub fn new(endpoint: Endpoint, model: &str, price: Option<Price>) -> Self {
        Self {
            endpoint,
            model: model.to_owned(),
            price,
        }
    }

    /// The supported aspect ratio closest to `width`:`height`.
    pub fn aspect_ratio(width: u32, height: u32) -> &'static str {
        let want = f64::from(width.max(1)) / f64::from(height.max(1));
        ASPECT_RATIOS
            .iter()
            .min_by(|a, b| {
                let off =
                    |r: &(&str, u32, u32)| (f64::from(r.1) / f64::from(r.2) / want).ln().abs();
                off(a).total_cmp(&off(b))
            })
            .map(|r| r.0)
            .unwrap_or("1:1")
    }

    /// The seed sent for `project_seed`: in 1..=[`MAX_SEED`] (0 would mean "random").
    pub fn seed(project_seed: u64) -> u64 {
        project_seed % MAX_SEED + 1
    }

    fn path(&self) -> String {
        match self.model.as_str() {
            "core" | "ultra" => format!("/v2beta/stable-image/generate/{}", self.model),
            _ => "/v2beta/stable-image/generate/sd3".to_owned(),
        }
    }
}

impl Describe for StabilityImages {
    fn name(&self) -> &str {
        "stability"
    }

    fn model(&self) -> String {
        self.model.clone()
    }
}

#[async_trait]
impl ImageGen for StabilityImages {
    async fn image(
        &self,
        request: &ImageRequest,
        out: &Path,
    ) -> Result<Produced<Image>, ProviderError> {
        let prompt = if request.prompt.trim().is_empty() {
            format!("{}: {}", request.caption, request.terms.join(", "))
        } else {
            request.prompt.trim().to_owned()
        };
        // The API takes prompts of up to 10,000 characters.
        let prompt: String = prompt.chars().take(10_000).collect();
        let seed = Self::seed(request.project_seed);
        let mut form = reqwest::multipart::Form::new()
            .text("prompt", prompt.clone())
            .text(
                "aspect_ratio",
                Self::aspect_ratio(request.width, request.height),
            )
            .text("seed", seed.to_string())
            .text("output_format", "png");
        if !request.negative_prompt.trim().is_empty() {
            form = form.text("negative_prompt", request.negative_prompt.trim().to_owned());
        }
        if !matches!(self.model.as_str(), "core" | "ultra") {
            form = form.text("model", self.model.clone());
        }
        let call = self
            .endpoint
            .request(Method::POST, &self.path())
            .header("accept", "application/json")
            .multipart(form);
        let answer: Answer = self.endpoint.json(call).await?;
        if answer.finish_reason.as_deref() == Some("CONTENT_FILTERED") {
            return Err(ProviderError::invalid(
                "stability refused the request under its content policy: the picture was filtered (finish_reason CONTENT_FILTERED); change the scene's words",
            ));
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(answer.image.trim())
            .map_err(|e| {
                ProviderError::transient(format!("stability sent an image that is not base64: {e}"))
            })?;
        let checked = picture::check("stability", &bytes)?;
        let path = out.join(format!("picture.{}", checked.extension()));
        std::fs::write(&path, &bytes)
            .map_err(|e| ProviderError::transient(format!("{}: {e}", path.display())))?;
        Ok(Produced {
            cost_micro_usd: self.price.map(|p| p.per_image).unwrap_or(0),
            output: Image {
                path,
                width: checked.width,
                height: checked.height,
                source: ImageSource::Model {
                    prompt,
                    seed: Some(answer.seed.unwrap_or(seed)),
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
    fn canvases_map_to_the_nearest_aspect_ratio_and_seeds_stay_in_range() {
        assert_eq!(StabilityImages::aspect_ratio(1920, 1080), "16:9");
        assert_eq!(StabilityImages::aspect_ratio(1080, 1920), "9:16");
        assert_eq!(StabilityImages::aspect_ratio(1080, 1080), "1:1");
        assert_eq!(StabilityImages::aspect_ratio(1080, 1350), "4:5");
        assert_eq!(StabilityImages::seed(0), 1);
        assert_eq!(StabilityImages::seed(u64::MAX), u64::MAX % MAX_SEED + 1);
        assert!(StabilityImages::seed(u64::MAX) <= MAX_SEED);
    }
}
