//! Stock photos found by a scene's search terms: `pexels` (pexels.com/api/documentation,
//! "Search for Photos") and `pixabay` (pixabay.com/api/docs, "Search Images").
//!
//! - Pexels: `GET {base_url}/v1/search?query=…&orientation=landscape|portrait|square&per_page=15`
//!   with the key as `Authorization` (no scheme); `{"photos": [{"id", "width", "height", "url",
//!   "photographer", "photographer_url", "src": {"original", "large2x", …}, "alt"}]}`. The
//!   `large2x` rendition (940 × 650 at DPR 2) is used. Credit: "Photo by NAME on Pexels" (the
//!   Pexels licence does not require it; its guidelines ask for it, and so do we).
//! - Pixabay: `GET {base_url}/api/?key=…&q=…&image_type=photo&orientation=horizontal|vertical|all
//!   &safesearch=true&per_page=20`; `{"totalHits", "hits": [{"id", "pageURL", "tags",
//!   "largeImageURL", "imageWidth", "imageHeight", "user"}]}`; errors are plain text
//!   (`[ERROR 400] Invalid or missing API key`). The `largeImageURL` rendition (1280 px on the
//!   long side) is used. Credit: "Image by NAME from Pixabay" (Pixabay's API terms ask that users
//!   are shown where the pictures come from).
//!
//! The query is the scene's first three search terms (its heading when it has none), the
//! orientation the canvas's. The photo whose shape is closest to the canvas among the library's
//! most relevant answers is downloaded here, checked before use, and credited on the end card.
//! Searches cost nothing.

use std::path::Path;

use async_trait::async_trait;
use reqwest::Method;
use serde::Deserialize;

use super::{picture, Endpoint};
use crate::capability::{Describe, ImageGen, Produced};
use crate::error::{ErrorKind, ProviderError};
use crate::types::*;

/// Pexels' API base URL.
pub const PEXELS_URL: &str = "https://api.pexels.com";
/// Where the Pexels key is read from by default.
pub const PEXELS_KEY_ENV: &str = "PEXELS_API_KEY";
/// Pixabay's API base URL.
pub const PIXABAY_URL: &str = "https://pixabay.com";
/// Where the Pixabay key is read from by default.
pub const PIXABAY_KEY_ENV: &str = "PIXABAY_API_KEY";

/// A stock library.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Library {
    /// pexels.com.
    Pexels,
    /// pixabay.com.
    Pixabay,
}

impl Library {
    /// Its provider kind.
    pub fn name(self) -> &'static str {
        match self {
            Library::Pexels => "pexels",
            Library::Pixabay => "pixabay",
        }
    }
}

/// One photo the library offered.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    /// Its id.
    pub id: String,
    /// Its page.
    pub page: String,
    /// Who took it.
    pub photographer: String,
    /// The rendition to download.
    pub url: String,
    /// Width of the original, pixels.
    pub width: u32,
    /// Height of the original, pixels.
    pub height: u32,
}

#[derive(Deserialize)]
struct PexelsAnswer {
    #[serde(default)]
    photos: Vec<PexelsPhoto>,
}

#[derive(Deserialize)]
struct PexelsPhoto {
    id: u64,
    width: u32,
    height: u32,
    url: String,
    photographer: String,
    src: PexelsSrc,
}

#[derive(Deserialize)]
struct PexelsSrc {
    large2x: String,
}

#[derive(Deserialize)]
struct PixabayAnswer {
    #[serde(default)]
    hits: Vec<PixabayHit>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PixabayHit {
    id: u64,
    #[serde(rename = "pageURL")]
    page_url: String,
    #[serde(rename = "largeImageURL")]
    large_image_url: String,
    image_width: u32,
    image_height: u32,
    user: String,
}

/// Photos from a stock library.
#[derive(Debug)]
pub struct StockPhotos {
    library: Library,
    endpoint: Endpoint,
}

impl StockPhotos {
    /// Photos from `library` at `endpoint`.
    pub fn new(library: Library, endpoint: Endpoint) -> Self {
        Self { library, endpoint }
    }

    /// The search words for `request`: its first three terms, or its heading.
    pub fn query(request: &ImageRequest) -> String {
        let terms: Vec<&str> = request
            .terms
            .iter()
            .map(|t| t.trim())
            .filter(|t| !t.is_empty())
            .take(3)
            .collect();
        let query = if terms.is_empty() {
            request.caption.trim().to_owned()
        } else {
            terms.join(" ")
        };
        // Pixabay takes at most 100 characters.
        query.chars().take(100).collect()
    }

    /// The library's orientation word for a `width`×`height` canvas.
    pub fn orientation(&self, width: u32, height: u32) -> &'static str {
        let ratio = f64::from(width.max(1)) / f64::from(height.max(1));
        match (self.library, ratio) {
            (Library::Pexels, r) if r > 1.1 => "landscape",
            (Library::Pexels, r) if r < 0.9 => "portrait",
            (Library::Pexels, _) => "square",
            (Library::Pixabay, r) if r > 1.1 => "horizontal",
            (Library::Pixabay, r) if r < 0.9 => "vertical",
            (Library::Pixabay, _) => "all",
        }
    }

    /// Searches the library; the most relevant answers first.
    pub async fn search(&self, request: &ImageRequest) -> Result<Vec<Found>, ProviderError> {
        let query = Self::query(request);
        if query.is_empty() {
            return Err(ProviderError::unavailable(
                "the scene has no search terms to look for",
            ));
        }
        let orientation = self.orientation(request.width, request.height);
        match self.library {
            Library::Pexels => {
                let call = self.endpoint.request(Method::GET, "/v1/search").query(&[
                    ("query", query.as_str()),
                    ("orientation", orientation),
                    ("per_page", "15"),
                    ("page", "1"),
                ]);
                let answer: PexelsAnswer = self.endpoint.json(call).await?;
                Ok(answer
                    .photos
                    .into_iter()
                    .map(|p| Found {
                        id: p.id.to_string(),
                        page: p.url,
                        photographer: p.photographer,
                        url: p.src.large2x,
                        width: p.width,
                        height: p.height,
                    })
                    .collect())
            }
            Library::Pixabay => {
                let call = self.endpoint.request(Method::GET, "/api/").query(&[
                    ("q", query.as_str()),
                    ("image_type", "photo"),
                    ("orientation", orientation),
                    ("safesearch", "true"),
                    ("per_page", "20"),
                ]);
                let answer: PixabayAnswer = match self.endpoint.json(call).await {
                    Ok(a) => a,
                    // Pixabay answers a bad key with a 400 in plain text.
                    Err(e) if e.kind == ErrorKind::Invalid && e.message.contains("API key") => {
                        return Err(ProviderError::unavailable(format!(
                            "{}; set {} to a valid key",
                            e.message, self.endpoint.key_env
                        )))
                    }
                    Err(e) => return Err(e),
                };
                Ok(answer
                    .hits
                    .into_iter()
                    .map(|h| Found {
                        id: h.id.to_string(),
                        page: h.page_url,
                        photographer: h.user,
                        url: h.large_image_url,
                        width: h.image_width,
                        height: h.image_height,
                    })
                    .collect())
            }
        }
    }

    /// The credit line for a photo by `photographer`.
    pub fn credit(&self, photographer: &str) -> String {
        match self.library {
            Library::Pexels => format!("Photo by {photographer} on Pexels"),
            Library::Pixabay => format!("Image by {photographer} from Pixabay"),
        }
    }
}

/// Among the first five of `found`, the one whose shape is closest to `width`:`height`.
pub fn closest(found: &[Found], width: u32, height: u32) -> Option<&Found> {
    let want = f64::from(width.max(1)) / f64::from(height.max(1));
    let off = |f: &Found| {
        (f64::from(f.width.max(1)) / f64::from(f.height.max(1)) / want)
            .ln()
            .abs()
    };
    found
        .iter()
        .take(5)
        .min_by(|a, b| off(a).total_cmp(&off(b)))
}

impl Describe for StockPhotos {
    fn name(&self) -> &str {
        self.library.name()
    }

    fn model(&self) -> String {
        "search".into()
    }
}

#[async_trait]
impl ImageGen for StockPhotos {
    async fn image(
        &self,
        request: &ImageRequest,
        out: &Path,
    ) -> Result<Produced<Image>, ProviderError> {
        let found = self.search(request).await?;
        let photo = closest(&found, request.width, request.height).ok_or_else(|| {
            ProviderError::unavailable(format!(
                "{} has no photo for \"{}\"",
                self.library.name(),
                Self::query(request)
            ))
        })?;
        let bytes = self.endpoint.download(&photo.url).await?;
        let checked = picture::check(self.library.name(), &bytes)?;
        let path = out.join(format!("picture.{}", checked.extension()));
        std::fs::write(&path, &bytes)
            .map_err(|e| ProviderError::transient(format!("{}: {e}", path.display())))?;
        Ok(Produced::free(Image {
            path,
            width: checked.width,
            height: checked.height,
            source: ImageSource::Stock {
                library: self.library.name().to_owned(),
                id: photo.id.clone(),
                page: photo.page.clone(),
                photographer: photo.photographer.clone(),
            },
            credit: Some(self.credit(&photo.photographer)),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(id: &str, width: u32, height: u32) -> Found {
        Found {
            id: id.into(),
            page: String::new(),
            photographer: String::new(),
            url: String::new(),
            width,
            height,
        }
    }

    #[test]
    fn the_closest_shape_among_the_most_relevant_wins() {
        let answers = [
            found("square", 3000, 3000),
            found("wide", 6000, 3376),
            found("tall", 2000, 3000),
            found("b", 1, 1),
            found("c", 1, 1),
            found("exact-but-late", 1920, 1080),
        ];
        assert_eq!(closest(&answers, 1920, 1080).unwrap().id, "wide");
        assert_eq!(closest(&answers, 1080, 1920).unwrap().id, "tall");
        assert!(closest(&[], 1, 1).is_none());
        let request = ImageRequest {
            terms: vec![
                "hare".into(),
                " ".into(),
                "meadow".into(),
                "race".into(),
                "x".into(),
            ],
            caption: "The race".into(),
            width: 1,
            height: 1,
            seed: 0,
            palette: vec![],
            prompt: String::new(),
            negative_prompt: String::new(),
            project_seed: 0,
        };
        assert_eq!(StockPhotos::query(&request), "hare meadow race");
    }
}
