//! Local stand-ins for two stock photo libraries, following their documented search APIs:
//!
//! - [`FakePexels`]: `GET /v1/search?query&orientation&per_page&page` with the key as
//!   `Authorization` (401 `{"error"}` otherwise), answering `{"total_results", "page",
//!   "per_page", "photos": [{"id", "width", "height", "url", "photographer", "photographer_url",
//!   "photographer_id", "avg_color", "src": {"original", "large2x", "large", "medium", "small",
//!   "portrait", "landscape", "tiny"}, "liked", "alt"}], "next_page"}`;
//! - [`FakePixabay`]: `GET /api/?key&q&image_type&orientation&safesearch&per_page`, a bad key
//!   answered `400` with the plain text `[ERROR 400] Invalid or missing API key`, else
//!   `{"total", "totalHits", "hits": [{"id", "pageURL", "type", "tags", "previewURL",
//!   "webformatURL", "largeImageURL", "imageWidth", "imageHeight", "user_id", "user", …}]}`.
//!
//! Both also search videos (`GET /videos/search` on Pexels, `GET /api/videos/` on Pixabay, in
//! their documented shapes): three 12-second videos a query, each with several renditions (the
//! largest 1920 px wide), served as real MP4s filled with [`clip_colour`] of the query.
//!
//! Each query finds three photos (landscape 6000 × 4000, portrait 4000 × 6000, square 4000 ×
//! 4000), the asked orientation first; a query with "zzz" in it finds none. Renditions are real
//! PNGs served by the fake (at most 1880 px a side), filled with [`picture_colour`] of the query,
//! so a test can tell which search a frame came from.

use std::collections::HashMap;

use serde_json::{json, Value};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::openai_images::{picture_colour, png};
use crate::replicate::{clip_colour, mp4};

/// Seconds of every stock video of the fakes.
pub const VIDEO_SECONDS: u32 = 12;

/// The key the Pexels fake accepts.
pub const PEXELS_KEY: &str = "pexels-test-key";
/// The key the Pixabay fake accepts.
pub const PIXABAY_KEY: &str = "12345-pixabaytestkey";

/// The photographer of photo `n` (1-based) of a search.
pub fn photographer(n: usize) -> String {
    ["Ana Lima", "Kenji Sato", "Marta Nowak"][(n - 1) % 3].to_owned()
}

/// The three photos of a search, `(id suffix, width, height, orientation words)`, in the order
/// the orientation asks.
fn catalogue(orientation: &str) -> Vec<(usize, u32, u32)> {
    let mut photos = vec![(1, 6000, 4000), (2, 4000, 6000), (3, 4000, 4000)];
    let first = match orientation {
        "portrait" | "vertical" => 2,
        "square" => 3,
        _ => 1,
    };
    photos.sort_by_key(|p| p.0 != first);
    photos
}

fn rendition(width: u32, height: u32) -> (u32, u32) {
    let scale = 1880.0 / f64::from(width.max(height));
    (
        (f64::from(width) * scale).round() as u32,
        (f64::from(height) * scale).round() as u32,
    )
}

fn query_of(request: &Request) -> HashMap<String, String> {
    request.url.query_pairs().into_owned().collect()
}

/// Serves `/files/{query}/{n}.png` (the rendition of photo `n` of a search) and
/// `/files/{query}/v{n}-{width}.mp4` (a rendition of video `n`, made small: 320 px wide in the
/// video's shape).
struct Renditions;

impl Respond for Renditions {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        if request.url.path().ends_with(".mp4") {
            return video_rendition(request);
        }
        let parts: Vec<String> = request
            .url
            .path_segments()
            .map(|s| s.map(str::to_owned).collect())
            .unwrap_or_default();
        let (Some(query), Some(file)) = (parts.get(1), parts.get(2)) else {
            return ResponseTemplate::new(404);
        };
        let query = url_decode(query);
        let n: usize = file.trim_end_matches(".png").parse().unwrap_or(0);
        let Some(&(_, w, h)) = catalogue("").iter().find(|p| p.0 == n) else {
            return ResponseTemplate::new(404);
        };
        let (w, h) = rendition(w, h);
        ResponseTemplate::new(200)
            .insert_header("content-type", "image/png")
            .set_body_bytes(png(w, h, picture_colour(&query)))
    }
}

fn url_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn video_rendition(request: &Request) -> ResponseTemplate {
    let parts: Vec<String> = request
        .url
        .path_segments()
        .map(|s| s.map(str::to_owned).collect())
        .unwrap_or_default();
    let (Some(query), Some(file)) = (parts.get(1), parts.get(2)) else {
        return ResponseTemplate::new(404);
    };
    let query = url_decode(query);
    let n: usize = file
        .trim_start_matches('v')
        .split('-')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let Some(&(_, w, h)) = catalogue("").iter().find(|p| p.0 == n) else {
        return ResponseTemplate::new(404);
    };
    let (w, h) = (320, (320 * h / w) / 2 * 2);
    ResponseTemplate::new(200)
        .insert_header("content-type", "video/mp4")
        .set_body_bytes(mp4(w, h, VIDEO_SECONDS, clip_colour(&query)))
}

/// The renditions of video `n` (`(width, height)`, largest first) in its shape.
fn video_files(n: usize) -> Vec<(u32, u32)> {
    let (_, w, h) = catalogue("")
        .into_iter()
        .find(|p| p.0 == n)
        .unwrap_or((1, 6000, 4000));
    [1920u32, 1280, 640]
        .iter()
        .map(|&long| {
            if w >= h {
                (long, long * h / w)
            } else {
                (long * w / h, long)
            }
        })
        .collect()
}

fn encoded(query: &str) -> String {
    query
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn video_url(base: &str, query: &str, n: usize, width: u32) -> String {
    format!("{base}/files/{}/v{n}-{width}.mp4", encoded(query))
}

fn rendition_url(base: &str, query: &str, n: usize) -> String {
    format!("{base}/files/{}/{n}.png", encoded(query))
}

/// A fake Pexels API on a free local port.
pub struct FakePexels {
    /// The wiremock server.
    pub server: MockServer,
}

impl FakePexels {
    /// Starts the fake.
    pub async fn start() -> FakePexels {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/v1/search"))
            .respond_with(PexelsSearch(server.uri()))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path_regex(r"^/files/[^/]+/(\d\.png|v\d-\d+\.mp4)$"))
            .respond_with(Renditions)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/videos/search"))
            .respond_with(PexelsVideoSearch(server.uri()))
            .mount(&server)
            .await;
        FakePexels { server }
    }

    /// `http://127.0.0.1:{port}`, the `base_url` to configure.
    pub fn base_url(&self) -> String {
        self.server.uri()
    }

    /// The query parameters of every search, in order.
    pub async fn searches(&self) -> Vec<HashMap<String, String>> {
        searches(&self.server, "/v1/search").await
    }
}

async fn searches(server: &MockServer, route: &str) -> Vec<HashMap<String, String>> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.url.path() == route)
        .map(query_of)
        .collect()
}

struct PexelsSearch(String);

impl Respond for PexelsSearch {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let key = request
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        if key != Some(PEXELS_KEY) {
            return ResponseTemplate::new(401)
                .set_body_json(json!({"error": "Authorization field missing or invalid"}));
        }
        let q = query_of(request);
        let query = q.get("query").cloned().unwrap_or_default();
        if query.trim().is_empty() {
            return ResponseTemplate::new(400).set_body_json(json!({"error": "query is required"}));
        }
        let orientation = q.get("orientation").cloned().unwrap_or_default();
        let photos: Vec<Value> = if query.contains("zzz") {
            Vec::new()
        } else {
            catalogue(&orientation)
                .into_iter()
                .map(|(n, w, h)| {
                    let id = 1_000_000 + n as u64;
                    let url = rendition_url(&self.0, &query, n);
                    json!({
                        "id": id,
                        "width": w,
                        "height": h,
                        "url": format!("https://www.pexels.com/photo/{id}/"),
                        "photographer": photographer(n),
                        "photographer_url": format!("https://www.pexels.com/@p{n}"),
                        "photographer_id": n,
                        "avg_color": "#7E8C6A",
                        "src": {
                            "original": url, "large2x": url, "large": url, "medium": url,
                            "small": url, "portrait": url, "landscape": url, "tiny": url
                        },
                        "liked": false,
                        "alt": query
                    })
                })
                .collect()
        };
        ResponseTemplate::new(200).set_body_json(json!({
            "total_results": photos.len(),
            "page": 1,
            "per_page": q.get("per_page").and_then(|p| p.parse::<u32>().ok()).unwrap_or(15),
            "photos": photos,
            "next_page": Value::Null
        }))
    }
}

/// A fake Pixabay API on a free local port.
pub struct FakePixabay {
    /// The wiremock server.
    pub server: MockServer,
}

impl FakePixabay {
    /// Starts the fake.
    pub async fn start() -> FakePixabay {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/api/"))
            .respond_with(PixabaySearch(server.uri()))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path_regex(r"^/files/[^/]+/(\d\.png|v\d-\d+\.mp4)$"))
            .respond_with(Renditions)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/api/videos/"))
            .respond_with(PixabayVideoSearch(server.uri()))
            .mount(&server)
            .await;
        FakePixabay { server }
    }

    /// `http://127.0.0.1:{port}`, the `base_url` to configure.
    pub fn base_url(&self) -> String {
        self.server.uri()
    }

    /// The query parameters of every search, in order.
    pub async fn searches(&self) -> Vec<HashMap<String, String>> {
        searches(&self.server, "/api/").await
    }
}

struct PixabaySearch(String);

impl Respond for PixabaySearch {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let q = query_of(request);
        if q.get("key").map(String::as_str) != Some(PIXABAY_KEY) {
            return ResponseTemplate::new(400)
                .insert_header("content-type", "text/html; charset=utf-8")
                .set_body_string(
                    "[ERROR 400] Invalid or missing API key (https://pixabay.com/api/docs/).",
                );
        }
        let query = q.get("q").cloned().unwrap_or_default();
        let orientation = q.get("orientation").cloned().unwrap_or_default();
        let hits: Vec<Value> = if query.contains("zzz") {
            Vec::new()
        } else {
            catalogue(&orientation)
                .into_iter()
                .map(|(n, w, h)| {
                    let id = 2_000_000 + n as u64;
                    let url = rendition_url(&self.0, &query, n);
                    json!({
                        "id": id,
                        "pageURL": format!("https://pixabay.com/photos/{id}/"),
                        "type": "photo",
                        "tags": query,
                        "previewURL": url,
                        "previewWidth": 150,
                        "previewHeight": 100,
                        "webformatURL": url,
                        "webformatWidth": 640,
                        "webformatHeight": 427,
                        "largeImageURL": url,
                        "imageWidth": w,
                        "imageHeight": h,
                        "imageSize": 4_000_000,
                        "views": 1000,
                        "downloads": 500,
                        "likes": 20,
                        "comments": 3,
                        "user_id": n,
                        "user": photographer(n),
                        "userImageURL": ""
                    })
                })
                .collect()
        };
        ResponseTemplate::new(200).set_body_json(json!({
            "total": hits.len(),
            "totalHits": hits.len(),
            "hits": hits
        }))
    }
}

struct PexelsVideoSearch(String);

impl Respond for PexelsVideoSearch {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let key = request
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        if key != Some(PEXELS_KEY) {
            return ResponseTemplate::new(401)
                .set_body_json(json!({"error": "Authorization field missing or invalid"}));
        }
        let q = query_of(request);
        let query = q.get("query").cloned().unwrap_or_default();
        let orientation = q.get("orientation").cloned().unwrap_or_default();
        let videos: Vec<Value> = if query.contains("zzz") {
            Vec::new()
        } else {
            catalogue(&orientation)
                .into_iter()
                .map(|(n, w, h)| {
                    let id = 3_000_000 + n as u64;
                    let files: Vec<Value> = video_files(n)
                        .into_iter()
                        .enumerate()
                        .map(|(i, (fw, fh))| {
                            json!({
                                "id": id * 10 + i as u64,
                                "quality": if fw.max(fh) >= 1920 { "hd" } else { "sd" },
                                "file_type": "video/mp4",
                                "width": fw,
                                "height": fh,
                                "fps": 25.0,
                                "link": video_url(&self.0, &query, n, fw)
                            })
                        })
                        .collect();
                    json!({
                        "id": id,
                        "width": w,
                        "height": h,
                        "url": format!("https://www.pexels.com/video/{id}/"),
                        "image": "",
                        "duration": VIDEO_SECONDS,
                        "user": {"id": n, "name": photographer(n), "url": format!("https://www.pexels.com/@p{n}")},
                        "video_files": files,
                        "video_pictures": []
                    })
                })
                .collect()
        };
        ResponseTemplate::new(200).set_body_json(json!({
            "page": 1,
            "per_page": 15,
            "total_results": videos.len(),
            "url": "",
            "videos": videos
        }))
    }
}

struct PixabayVideoSearch(String);

impl Respond for PixabayVideoSearch {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let q = query_of(request);
        if q.get("key").map(String::as_str) != Some(PIXABAY_KEY) {
            return ResponseTemplate::new(400)
                .insert_header("content-type", "text/html; charset=utf-8")
                .set_body_string(
                    "[ERROR 400] Invalid or missing API key (https://pixabay.com/api/docs/).",
                );
        }
        let query = q.get("q").cloned().unwrap_or_default();
        let hits: Vec<Value> = if query.contains("zzz") {
            Vec::new()
        } else {
            catalogue("")
                .into_iter()
                .map(|(n, _, _)| {
                    let id = 4_000_000 + n as u64;
                    let sizes = video_files(n);
                    let file = |i: usize| {
                        let (w, h) = sizes[i.min(sizes.len() - 1)];
                        json!({"url": video_url(&self.0, &query, n, w), "width": w, "height": h, "size": 1_000_000, "thumbnail": ""})
                    };
                    json!({
                        "id": id,
                        "pageURL": format!("https://pixabay.com/videos/{id}/"),
                        "type": "film",
                        "tags": query,
                        "duration": VIDEO_SECONDS,
                        "videos": {"large": file(0), "medium": file(1), "small": file(2), "tiny": file(2)},
                        "views": 100,
                        "downloads": 10,
                        "likes": 1,
                        "comments": 0,
                        "user_id": n,
                        "user": photographer(n),
                        "userImageURL": ""
                    })
                })
                .collect()
        };
        ResponseTemplate::new(200).set_body_json(json!({
            "total": hits.len(),
            "totalHits": hits.len(),
            "hits": hits
        }))
    }
}
