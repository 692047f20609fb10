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
//!
//! Both libraries serve videos too ([`StockVideos`], the same kinds in `[[providers.clip]]`): a
//! scene then shows a stock video found by its terms instead of its still. Pexels: `GET
//! {base_url}/videos/search?query&orientation&per_page=15`, `{"videos": [{"id", "width",
//! "height", "url", "duration", "user": {"name"}, "video_files": [{"quality", "file_type",
//! "width", "height", "link"}]}]}`, the MP4 file widest within the canvas taken. Pixabay: `GET
//! {base_url}/api/videos/?key&q&video_type=film&safesearch=true&per_page=20`, `{"hits": [{"id",
//! "pageURL", "duration", "videos": {"large"|"medium"|"small"|"tiny": {"url", "width",
//! "height"}}, "user"}]}`, the largest rendition within the canvas taken. Among the five most
//! relevant, a video at least as long as the scene and closest to its shape wins. Credits:
//! "Video by NAME on Pexels", "Video by NAME from Pixabay".

use std::path::Path;

use async_trait::async_trait;
use reqwest::Method;
use serde::Deserialize;

use super::{clip, picture, Endpoint};
use crate::capability::{ClipGen, Describe, ImageGen, Produced};
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
    /// The library of provider kind `kind`.
    pub fn of(kind: &str) -> Option<Library> {
        match kind {
            "pexels" => Some(Library::Pexels),
            "pixabay" => Some(Library::Pixabay),
            _ => None,
        }
    }

    /// Its provider kind.
    pub fn name(self) -> &'static str {
        match self {
            Library::Pexels => "pexels",
            Library::Pixabay => "pixabay",
        }
    }
}

/// `library`'s orientation word for a `width`×`height` canvas.
pub fn orientation(library: Library, width: u32, height: u32) -> &'static str {
    let ratio = f64::from(width.max(1)) / f64::from(height.max(1));
    match (library, ratio) {
        (Library::Pexels, r) if r > 1.1 => "landscape",
        (Library::Pexels, r) if r < 0.9 => "portrait",
        (Library::Pexels, _) => "square",
        (Library::Pixabay, r) if r > 1.1 => "horizontal",
        (Library::Pixabay, r) if r < 0.9 => "vertical",
        (Library::Pixabay, _) => "all",
    }
}

/// The search words for a scene: its first three non-empty `terms`, or `fallback` when it has
/// none; at most 100 characters (Pixabay's limit).
pub fn search_words(terms: &[String], fallback: &str) -> String {
    let words: Vec<&str> = terms
        .iter()
        .map(|t| t.trim())
        .filter(|t| !t.is_empty())
        .take(3)
        .collect();
    let query = if words.is_empty() {
        fallback.trim().to_owned()
    } else {
        words.join(" ")
    };
    query.chars().take(100).collect()
}

/// Pixabay answers a bad key with a 400 in plain text: that is the key's fault, not the
/// request's, so the chain goes on to its next provider naming the variable to set.
fn pixabay_key(e: ProviderError, key_env: &str) -> ProviderError {
    if e.kind == ErrorKind::Invalid && e.message.contains("API key") {
        ProviderError::unavailable(format!("{}; set {key_env} to a valid key", e.message))
    } else {
        e
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

    /// The search words for `request`: its first three terms, or its heading
    /// ([`search_words`]).
    pub fn query(request: &ImageRequest) -> String {
        search_words(&request.terms, &request.caption)
    }

    /// The library's orientation word for a `width`×`height` canvas ([`orientation`]).
    pub fn orientation(&self, width: u32, height: u32) -> &'static str {
        orientation(self.library, width, height)
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
                let answer: PixabayAnswer = self
                    .endpoint
                    .json(call)
                    .await
                    .map_err(|e| pixabay_key(e, &self.endpoint.key_env))?;
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

/// One video the library offered.
#[derive(Debug, Clone, PartialEq)]
pub struct FoundVideo {
    /// Its id.
    pub id: String,
    /// Who made it.
    pub author: String,
    /// The file to download.
    pub url: String,
    /// Width of that file, pixels.
    pub width: u32,
    /// Height of that file, pixels.
    pub height: u32,
    /// Length, seconds.
    pub duration_s: f64,
}

#[derive(Deserialize)]
struct PexelsVideos {
    #[serde(default)]
    videos: Vec<PexelsVideo>,
}

#[derive(Deserialize)]
struct PexelsVideo {
    id: u64,
    duration: f64,
    user: PexelsUser,
    #[serde(default)]
    video_files: Vec<PexelsFile>,
}

#[derive(Deserialize)]
struct PexelsUser {
    name: String,
}

#[derive(Deserialize)]
struct PexelsFile {
    #[serde(default)]
    file_type: String,
    #[serde(default)]
    width: Option<u32>,
    #[serde(default)]
    height: Option<u32>,
    link: String,
}

#[derive(Deserialize)]
struct PixabayVideos {
    #[serde(default)]
    hits: Vec<PixabayVideo>,
}

#[derive(Deserialize)]
struct PixabayVideo {
    id: u64,
    duration: f64,
    user: String,
    videos: std::collections::BTreeMap<String, PixabayFile>,
}

#[derive(Deserialize)]
struct PixabayFile {
    url: String,
    width: u32,
    height: u32,
}

/// The largest of `files` (`(width, height, url)`) within `limit` pixels on its long side, or
/// the smallest when all are larger.
fn largest_within(files: Vec<(u32, u32, String)>, limit: u32) -> Option<(u32, u32, String)> {
    let long = |f: &(u32, u32, String)| f.0.max(f.1);
    let (within, over): (Vec<_>, Vec<_>) = files
        .into_iter()
        .filter(|f| f.0 > 0 && f.1 > 0 && !f.2.is_empty())
        .partition(|f| long(f) <= limit);
    match within.into_iter().max_by_key(long) {
        Some(f) => Some(f),
        None => over.into_iter().min_by_key(long),
    }
}

/// Stock videos from a library, in place of a scene's still.
#[derive(Debug)]
pub struct StockVideos {
    library: Library,
    endpoint: Endpoint,
}

impl StockVideos {
    /// Videos from `library` at `endpoint`.
    pub fn new(library: Library, endpoint: Endpoint) -> Self {
        Self { library, endpoint }
    }

    /// Searches the library for `request`'s terms; the most relevant first.
    pub async fn search(&self, request: &ClipRequest) -> Result<Vec<FoundVideo>, ProviderError> {
        let query = search_words(&request.terms, "");
        if query.is_empty() {
            return Err(ProviderError::unavailable(
                "the scene has no search terms to look for",
            ));
        }
        let limit = request.width.max(request.height);
        match self.library {
            Library::Pexels => {
                let call = self
                    .endpoint
                    .request(Method::GET, "/videos/search")
                    .query(&[
                        ("query", query.as_str()),
                        (
                            "orientation",
                            orientation(self.library, request.width, request.height),
                        ),
                        ("per_page", "15"),
                    ]);
                let answer: PexelsVideos = self.endpoint.json(call).await?;
                Ok(answer
                    .videos
                    .into_iter()
                    .filter_map(|v| {
                        let files = v
                            .video_files
                            .into_iter()
                            .filter(|f| f.file_type == "video/mp4")
                            .map(|f| (f.width.unwrap_or(0), f.height.unwrap_or(0), f.link))
                            .collect();
                        let (width, height, url) = largest_within(files, limit)?;
                        Some(FoundVideo {
                            id: v.id.to_string(),
                            author: v.user.name,
                            url,
                            width,
                            height,
                            duration_s: v.duration,
                        })
                    })
                    .collect())
            }
            Library::Pixabay => {
                let call = self.endpoint.request(Method::GET, "/api/videos/").query(&[
                    ("q", query.as_str()),
                    ("video_type", "film"),
                    ("safesearch", "true"),
                    ("per_page", "20"),
                ]);
                let answer: PixabayVideos = self
                    .endpoint
                    .json(call)
                    .await
                    .map_err(|e| pixabay_key(e, &self.endpoint.key_env))?;
                Ok(answer
                    .hits
                    .into_iter()
                    .filter_map(|v| {
                        let files = v
                            .videos
                            .into_values()
                            .map(|f| (f.width, f.height, f.url))
                            .collect();
                        let (width, height, url) = largest_within(files, limit)?;
                        Some(FoundVideo {
                            id: v.id.to_string(),
                            author: v.user,
                            url,
                            width,
                            height,
                            duration_s: v.duration,
                        })
                    })
                    .collect())
            }
        }
    }

    /// The credit line for a video by `author`.
    pub fn credit(&self, author: &str) -> String {
        match self.library {
            Library::Pexels => format!("Video by {author} on Pexels"),
            Library::Pixabay => format!("Video by {author} from Pixabay"),
        }
    }
}

/// Among the first five of `found`, the one at least `seconds` long (any, when none is) whose
/// shape is closest to `width`:`height`.
pub fn closest_video(
    found: &[FoundVideo],
    width: u32,
    height: u32,
    seconds: f64,
) -> Option<&FoundVideo> {
    let want = f64::from(width.max(1)) / f64::from(height.max(1));
    let off = |f: &FoundVideo| {
        (f64::from(f.width.max(1)) / f64::from(f.height.max(1)) / want)
            .ln()
            .abs()
    };
    let first: Vec<&FoundVideo> = found.iter().take(5).collect();
    let long_enough: Vec<&FoundVideo> = first
        .iter()
        .copied()
        .filter(|f| f.duration_s >= seconds)
        .collect();
    let pool = if long_enough.is_empty() {
        first
    } else {
        long_enough
    };
    pool.into_iter().min_by(|a, b| off(a).total_cmp(&off(b)))
}

impl Describe for StockVideos {
    fn name(&self) -> &str {
        self.library.name()
    }

    fn model(&self) -> String {
        "video search".into()
    }
}

#[async_trait]
impl ClipGen for StockVideos {
    async fn clip(
        &self,
        request: &ClipRequest,
        out: &Path,
    ) -> Result<Produced<Clip>, ProviderError> {
        let found = self.search(request).await?;
        let video = closest_video(&found, request.width, request.height, request.duration_s)
            .ok_or_else(|| {
                ProviderError::unavailable(format!(
                    "{} has no video for \"{}\"",
                    self.library.name(),
                    search_words(&request.terms, "")
                ))
            })?;
        let bytes = self.endpoint.download(&video.url).await?;
        let checked = clip::check(self.library.name(), &bytes, out).await?;
        Ok(Produced::free(Clip {
            path: checked.path,
            duration_s: checked.duration_s,
            width: checked.width,
            height: checked.height,
            prompt: String::new(),
            seed: None,
            credit: Some(self.credit(&video.author)),
        }))
    }
}
