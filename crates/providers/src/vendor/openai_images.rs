//! `openai-images`: pictures from OpenAI's Images API and servers that speak it
//! (<https://platform.openai.com/docs/api-reference/images/create>).
//!
//! `POST {base_url}/images/generations` with `{model, prompt, n: 1, size}`; the GPT image models
//! (`gpt-image-1`) answer `data[0].b64_json` and report token `usage`, DALL·E models are asked for
//! `response_format: "b64_json"` and may still answer a `url`, which is downloaded here (never
//! handed to FFmpeg). Sizes follow the canvas's orientation: `1536x1024` / `1024x1536` /
//! `1024x1024` for GPT image models, `1792x1024` / `1024x1792` / `1024x1024` for DALL·E 3. The
//! Images API takes no seed: the project seed is recorded with the picture, not sent.

use std::path::Path;

use async_trait::async_trait;
use base64::Engine as _;
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use super::{picture, Endpoint, Usage};
use crate::capability::{Describe, ImageGen, Produced};
use crate::error::ProviderError;
use crate::prices::Price;
use crate::types::*;

/// Picture model used when settings name none.
pub const IMAGE_MODEL: &str = "gpt-image-1";
/// The longest prompt sent: DALL·E 3 takes 4,000 characters (GPT image models 32,000).
pub const MAX_PROMPT_CHARS: usize = 4000;

/// The Images API.
#[derive(Debug)]
pub struct OpenAiImages {
    endpoint: Endpoint,
    model: String,
    price: Option<Price>,
}

#[derive(Debug, Deserialize)]
struct Answer {
    data: Vec<Datum>,
    #[serde(default)]
    usage: Option<ImageUsage>,
}

#[derive(Debug, Deserialize)]
struct Datum {
    #[serde(default)]
    b64_json: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    revised_prompt: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ImageUsage {
    #[serde(default)]
    input_tokens: u64,
    #[serde(default)]
    output_tokens: u64,
}

impl OpenAiImages {
    /// Pictures from `model` at `endpoint`, priced by `price` (`None`: counted as free).
    pub fn new(endpoint: Endpoint, model: &str, price: Option<Price>) -> Self {
        Self {
            endpoint,
            model: model.to_owned(),
            price,
        }
    }

    fn dalle(&self) -> bool {
        self.model.starts_with("dall-e")
    }

    /// The size asked for a `width`×`height` canvas: the model's size of the same orientation.
    pub fn size_for(model: &str, width: u32, height: u32) -> &'static str {
        let (landscape, portrait) = (width > height, height > width);
        match model {
            "dall-e-2" => "1024x1024",
            m if m.starts_with("dall-e") => match (landscape, portrait) {
                (true, _) => "1792x1024",
                (_, true) => "1024x1792",
                _ => "1024x1024",
            },
            _ => match (landscape, portrait) {
                (true, _) => "1536x1024",
                (_, true) => "1024x1536",
                _ => "1024x1024",
            },
        }
    }

    /// The prompt sent: the request's, else its caption and terms; at most
    /// [`MAX_PROMPT_CHARS`].
    fn prompt(request: &ImageRequest) -> String {
        let prompt = if request.prompt.trim().is_empty() {
            format!("{}: {}", request.caption, request.terms.join(", "))
        } else {
            request.prompt.trim().to_owned()
        };
        prompt.chars().take(MAX_PROMPT_CHARS).collect()
    }

    /// What the call cost: the reported tokens at the table's token prices, else one image at
    /// `per_image` (DALL·E 3's non-square sizes list at twice the square price, so count two).
    fn cost(&self, usage: Option<&ImageUsage>, size: &str) -> u64 {
        let Some(price) = self.price else {
            return 0;
        };
        match usage {
            Some(u) if price.input_per_1k_tokens + price.output_per_1k_tokens > 0 => {
                price.cost(&Usage {
                    input_tokens: u.input_tokens,
                    output_tokens: u.output_tokens,
                    characters: 0,
                })
            }
            _ => {
                let images = if self.dalle() && size != "1024x1024" {
                    2
                } else {
                    1
                };
                price.per_image * images
            }
        }
    }
}

impl Describe for OpenAiImages {
    fn name(&self) -> &str {
        "openai-images"
    }

    fn model(&self) -> String {
        self.model.clone()
    }
}

/// Prompt tokens assumed per picture in an estimate: a style prefix, a scene and two
/// characters come to about 400 characters.
const ESTIMATED_PROMPT_TOKENS: u64 = 100;
/// Image tokens of a medium-quality picture (OpenAI, "Image generation" guide): 1,056 for
/// 1024x1024, 1,584 for 1536x1024 and 1024x1536.
fn estimated_image_tokens(size: &str) -> u64 {
    if size == "1024x1024" {
        1056
    } else {
        1584
    }
}

#[async_trait]
impl ImageGen for OpenAiImages {
    fn estimate(&self, width: u32, height: u32) -> u64 {
        let size = Self::size_for(&self.model, width, height);
        let usage = (!self.dalle()).then(|| ImageUsage {
            input_tokens: ESTIMATED_PROMPT_TOKENS,
            output_tokens: estimated_image_tokens(size),
        });
        self.cost(usage.as_ref(), size)
    }

    async fn image(
        &self,
        request: &ImageRequest,
        out: &Path,
    ) -> Result<Produced<Image>, ProviderError> {
        let prompt = Self::prompt(request);
        let size = Self::size_for(&self.model, request.width, request.height);
        let mut body = json!({
            "model": self.model,
            "prompt": prompt,
            "n": 1,
            "size": size,
        });
        if self.dalle() {
            body["response_format"] = json!("b64_json");
        }
        let call = self
            .endpoint
            .request(Method::POST, "/images/generations")
            .json(&body);
        let answer: Answer = self.endpoint.json(call).await?;
        let datum = answer.data.into_iter().next().ok_or_else(|| {
            ProviderError::transient("openai-images answered without a picture (empty data)")
        })?;
        let bytes = match (&datum.b64_json, &datum.url) {
            (Some(b64), _) => base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|e| {
                    ProviderError::invalid(format!(
                        "openai-images sent b64_json that is not base64: {e}"
                    ))
                })?,
            (None, Some(url)) => self.endpoint.download(url).await?,
            (None, None) => {
                return Err(ProviderError::transient(
                    "openai-images answered with neither b64_json nor url",
                ))
            }
        };
        let checked = picture::check("openai-images", &bytes)?;
        let path = out.join(format!("picture.{}", checked.extension()));
        std::fs::write(&path, &bytes)
            .map_err(|e| ProviderError::transient(format!("{}: {e}", path.display())))?;
        Ok(Produced {
            cost_micro_usd: self.cost(answer.usage.as_ref(), size),
            output: Image {
                path,
                width: checked.width,
                height: checked.height,
                source: ImageSource::Model {
                    prompt,
                    seed: None,
                    revised_prompt: datum.revised_prompt,
                },
                credit: None,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_the_canvas_orientation() {
        assert_eq!(
            OpenAiImages::size_for("gpt-image-1", 1920, 1080),
            "1536x1024"
        );
        assert_eq!(
            OpenAiImages::size_for("gpt-image-1", 1080, 1920),
            "1024x1536"
        );
        assert_eq!(
            OpenAiImages::size_for("gpt-image-1", 1080, 1350),
            "1024x1536"
        );
        assert_eq!(
            OpenAiImages::size_for("gpt-image-1", 1080, 1080),
            "1024x1024"
        );
        assert_eq!(OpenAiImages::size_for("dall-e-3", 1920, 1080), "1792x1024");
        assert_eq!(OpenAiImages::size_for("dall-e-3", 1080, 1920), "1024x1792");
        assert_eq!(OpenAiImages::size_for("dall-e-2", 1920, 1080), "1024x1024");
    }
}
