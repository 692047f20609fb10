//! Providers that call a vendor's HTTP API, and the plumbing they share: one [`Endpoint`] per
//! configured provider (base URL, API key, timeout) and one error classification.
//!
//! Errors are classified from the vendors' documented status codes (OpenAI "Error codes",
//! Anthropic "Errors", ElevenLabs "Errors", Cartesia "API conventions", Stability "Errors"):
//! - a content-moderation refusal (OpenAI's `content_policy_violation` / `moderation_blocked`,
//!   Stability's 403 `content_moderation`) → [`ErrorKind::Invalid`] with the vendor's reason;
//! - 408, 409, 429 (with `Retry-After`), 5xx and Anthropic's 529 "overloaded", timeouts and
//!   connection failures → [`ErrorKind::Transient`], retried with backoff that honours
//!   `Retry-After`;
//! - 401/403 → [`ErrorKind::Unavailable`], naming the environment variable that holds the key;
//!   404 (an unknown model or voice) and OpenAI's `insufficient_quota` 429 → unavailable too, so
//!   the chain falls back;
//! - other 4xx (validation, content policy) → [`ErrorKind::Invalid`], the vendor's message passed
//!   to the user.
//!
//! [`ErrorKind::Transient`]: crate::ErrorKind::Transient
//! [`ErrorKind::Unavailable`]: crate::ErrorKind::Unavailable
//! [`ErrorKind::Invalid`]: crate::ErrorKind::Invalid

pub mod anthropic;
mod audio;
pub mod cartesia;
pub mod clip;
pub mod comfyui;
pub mod elevenlabs;
pub mod luma;
pub mod openai;
pub mod openai_images;
pub mod picture;
pub mod replicate;
pub mod replicate_clips;
pub mod runway;
pub mod stability;
pub mod stock;

use std::time::Duration;

pub use audio::{parse_wav, pcm16, Joined};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;

use crate::error::ProviderError;

/// The largest result file downloaded from a vendor's link: 200 MiB, above any picture or
/// short clip.
pub const MAX_DOWNLOAD_BYTES: u64 = 200 << 20;

/// How a vendor takes its API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// `Authorization: Bearer <key>` (OpenAI and compatible servers).
    Bearer,
    /// The key in a header of its own (`x-api-key` for Anthropic, `xi-api-key` for ElevenLabs,
    /// `Authorization` without a scheme for Pexels).
    Header(&'static str),
    /// The key in a query parameter (`key` for Pixabay); kept out of every error message.
    Query(&'static str),
}

/// Where and how to reach one vendor.
pub struct Endpoint {
    /// Vendor name in messages (`openai`).
    pub vendor: &'static str,
    /// Base URL without a trailing slash, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    /// Name of the environment variable the key came from (empty: the server takes none).
    pub key_env: String,
    key: Option<SecretString>,
    auth: Auth,
    headers: HeaderMap,
    timeout: Duration,
    client: reqwest::Client,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("vendor", &self.vendor)
            .field("base_url", &self.base_url)
            .field("key_env", &self.key_env)
            .field("key", &self.key.as_ref().map(|_| "[redacted]"))
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// How to reach the vendor behind a provider kind: its name in messages, its base URL, the
/// environment variable its key is read from by default, and how it takes the key. `None` for
/// local kinds.
pub fn vendor_of(kind: &str) -> Option<(&'static str, &'static str, &'static str, Auth)> {
    match kind {
        "openai" | "openai-speech" | "openai-images" => {
            Some(("openai", openai::BASE_URL, openai::KEY_ENV, Auth::Bearer))
        }
        "anthropic" => Some((
            "anthropic",
            anthropic::BASE_URL,
            anthropic::KEY_ENV,
            Auth::Header("x-api-key"),
        )),
        "elevenlabs" => Some((
            "elevenlabs",
            elevenlabs::BASE_URL,
            elevenlabs::KEY_ENV,
            Auth::Header("xi-api-key"),
        )),
        "replicate" => Some((
            "replicate",
            replicate::BASE_URL,
            replicate::KEY_ENV,
            Auth::Bearer,
        )),
        "comfyui" => Some(("comfyui", comfyui::BASE_URL, "", Auth::Bearer)),
        "runway" => Some(("runway", runway::BASE_URL, runway::KEY_ENV, Auth::Bearer)),
        "luma" => Some(("luma", luma::BASE_URL, luma::KEY_ENV, Auth::Bearer)),
        "pexels" => Some((
            "pexels",
            stock::PEXELS_URL,
            stock::PEXELS_KEY_ENV,
            Auth::Header("authorization"),
        )),
        "pixabay" => Some((
            "pixabay",
            stock::PIXABAY_URL,
            stock::PIXABAY_KEY_ENV,
            Auth::Query("key"),
        )),
        "stability" => Some((
            "stability",
            stability::BASE_URL,
            stability::KEY_ENV,
            Auth::Bearer,
        )),
        "cartesia" => Some((
            "cartesia",
            cartesia::BASE_URL,
            cartesia::KEY_ENV,
            Auth::Bearer,
        )),
        _ => None,
    }
}

/// Reads the API key from the environment variable `key_env`; `Ok(None)` when `key_env` is
/// empty (a server that takes no key).
///
/// Errors: `Unavailable` when the variable is unset or empty, naming it.
pub fn key_from_env(vendor: &str, key_env: &str) -> Result<Option<SecretString>, ProviderError> {
    if key_env.is_empty() {
        return Ok(None);
    }
    match std::env::var(key_env) {
        Ok(v) if !v.trim().is_empty() => Ok(Some(SecretString::from(v.trim().to_owned()))),
        _ => Err(ProviderError::unavailable(format!(
            "{vendor} needs an API key: set the environment variable {key_env} (or point \
             api_key_env at the variable that holds it; api_key_env = \"\" for a server that \
             takes none)"
        ))),
    }
}

impl Endpoint {
    /// An endpoint at `base_url` whose key is read from `key_env` now.
    ///
    /// Errors: `Unavailable` when the key's variable is unset, or the base URL is not http(s).
    pub fn new(
        vendor: &'static str,
        base_url: &str,
        key_env: &str,
        auth: Auth,
        timeout: Duration,
    ) -> Result<Self, ProviderError> {
        let base_url = base_url.trim_end_matches('/').to_owned();
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(ProviderError::unavailable(format!(
                "base_url \"{base_url}\" is not an http:// or https:// URL"
            )));
        }
        let key = key_from_env(vendor, key_env)?;
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("studio/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ProviderError::unavailable(format!("{vendor} HTTP client: {e}")))?;
        Ok(Self {
            vendor,
            base_url,
            key_env: key_env.to_owned(),
            key,
            auth,
            headers: HeaderMap::new(),
            timeout,
            client,
        })
    }

    /// Sends `header: value` with every request (`anthropic-version`).
    pub fn with_header(mut self, header: &'static str, value: &'static str) -> Self {
        self.headers.insert(
            HeaderName::from_static(header),
            HeaderValue::from_static(value),
        );
        self
    }

    /// A request to `path` (relative to the base URL, starting with `/`) with auth and headers.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut builder = self
            .client
            .request(method, format!("{}{path}", self.base_url))
            .headers(self.headers.clone());
        if let Some(key) = &self.key {
            builder = match self.auth {
                Auth::Bearer => builder.bearer_auth(key.expose_secret()),
                Auth::Header(name) => builder.header(name, key.expose_secret()),
                Auth::Query(name) => builder.query(&[(name, key.expose_secret())]),
            };
        }
        builder
    }

    /// Sends `request`; a success status gives the response, anything else the classified
    /// error.
    pub async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ProviderError> {
        let response = request.send().await.map_err(|e| self.network(e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let headers = response.headers().clone();
        let body = response.text().await.unwrap_or_default();
        Err(classify(
            self.vendor,
            &self.key_env,
            status.as_u16(),
            &headers,
            &body,
        ))
    }

    /// Sends `request` and reads a JSON answer of type `T`.
    ///
    /// Errors: the classified HTTP error; `Transient` for a body that is not the JSON `T`
    /// (a vendor's bad moment, worth another try).
    pub async fn json<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, ProviderError> {
        let response = self.send(request).await?;
        let bytes = response.bytes().await.map_err(|e| self.network(e))?;
        serde_json::from_slice(&bytes).map_err(|e| {
            ProviderError::transient(format!(
                "{} sent an answer that is not the JSON it documents ({e}): {}",
                self.vendor,
                excerpt(&String::from_utf8_lossy(&bytes))
            ))
        })
    }

    /// Sends `request` and reads the whole body (audio) with the response headers.
    pub async fn bytes(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<(HeaderMap, Vec<u8>), ProviderError> {
        let response = self.send(request).await?;
        let headers = response.headers().clone();
        let bytes = response.bytes().await.map_err(|e| self.network(e))?;
        Ok((headers, bytes.to_vec()))
    }

    /// Downloads a file the vendor points at (a signed URL of a result), without the API key,
    /// at most [`MAX_DOWNLOAD_BYTES`].
    ///
    /// Errors: `Transient` when it cannot be fetched (expired links included: the next try asks
    /// the vendor again); `Invalid` for a URL that is not http(s) or a file over the limit.
    pub async fn download(&self, url: &str) -> Result<Vec<u8>, ProviderError> {
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(ProviderError::invalid(format!(
                "{} pointed at a result that is not an http(s) URL: {}",
                self.vendor,
                excerpt(url)
            )));
        }
        let mut response = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| self.network(e))?;
        if !response.status().is_success() {
            return Err(ProviderError::transient(format!(
                "{}'s result link answered {}",
                self.vendor,
                response.status()
            )));
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.network(e))? {
            bytes.extend_from_slice(&chunk);
            if bytes.len() as u64 > MAX_DOWNLOAD_BYTES {
                return Err(ProviderError::invalid(format!(
                    "{}'s result is over {} MiB",
                    self.vendor,
                    MAX_DOWNLOAD_BYTES >> 20
                )));
            }
        }
        Ok(bytes)
    }

    fn network(&self, e: reqwest::Error) -> ProviderError {
        // The URL may carry a key (Auth::Query): never in a message.
        let e = e.without_url();
        if e.is_timeout() {
            ProviderError::transient(format!(
                "{} did not answer within {} s ({}); raise timeout_s if its answers are slow",
                self.vendor,
                self.timeout.as_secs_f64(),
                self.base_url
            ))
        } else {
            ProviderError::transient(format!(
                "{} cannot be reached at {}: {}",
                self.vendor,
                self.base_url,
                error_chain(&e)
            ))
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// At most 300 characters of `body`, for messages.
fn excerpt(body: &str) -> String {
    let body = body.trim();
    match body.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &body[..i]),
        None => body.to_owned(),
    }
}

/// The vendor's own words from an error body: `error.message` (OpenAI, Anthropic),
/// `detail.message` or `detail` (ElevenLabs), `message`, else the body itself.
pub fn vendor_message(body: &str) -> String {
    let Ok(json) = serde_json::from_str::<serde_json::Value>(body) else {
        return excerpt(body);
    };
    let text = |v: Option<&serde_json::Value>| v.and_then(|v| v.as_str()).map(str::to_owned);
    text(json.pointer("/error/message"))
        .or_else(|| text(json.pointer("/detail/message")))
        .or_else(|| text(json.get("detail")))
        .or_else(|| text(json.get("message")))
        .or_else(|| text(json.get("error")))
        .or_else(|| text(json.pointer("/errors/0")))
        .unwrap_or_else(|| excerpt(body))
}

fn vendor_code(body: &str) -> String {
    let Ok(json) = serde_json::from_str::<serde_json::Value>(body) else {
        return String::new();
    };
    [
        "/error/code",
        "/error/type",
        "/detail/status",
        "/code",
        "/name",
    ]
    .iter()
    .find_map(|p| json.pointer(p).and_then(|v| v.as_str()))
    .unwrap_or_default()
    .to_owned()
}

/// How long `Retry-After` (seconds or an HTTP date, RFC 9110 §10.2.3) or OpenAI's
/// `retry-after-ms` asks us to wait.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(ms) = header("retry-after-ms").and_then(|v| v.trim().parse::<f64>().ok()) {
        return Some(Duration::from_secs_f64(ms.max(0.0) / 1000.0));
    }
    let value = header("retry-after")?.trim();
    if let Ok(seconds) = value.parse::<f64>() {
        return Some(Duration::from_secs_f64(seconds.max(0.0)));
    }
    let when = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = when.signed_duration_since(chrono::Utc::now());
    Some(wait.to_std().unwrap_or_default())
}

/// Classifies a vendor's non-success answer (see the module docs).
pub fn classify(
    vendor: &str,
    key_env: &str,
    status: u16,
    headers: &HeaderMap,
    body: &str,
) -> ProviderError {
    let message = vendor_message(body);
    let code = vendor_code(body);
    let moderated = code.contains("content_policy")
        || code.contains("content_moderation")
        || code == "moderation_blocked"
        || message.contains("safety system");
    match status {
        400 | 403 if moderated => ProviderError::invalid(format!(
            "{vendor} refused the request under its content policy: {message}"
        )),
        401 | 403 => ProviderError::unavailable(if key_env.is_empty() {
            format!("{vendor} refused the request ({status}): {message}; it needs an API key: set api_key_env")
        } else {
            format!("{vendor} refused the API key in {key_env} ({status}): {message}; set {key_env} to a valid key")
        }),
        429 if code == "insufficient_quota" => ProviderError::unavailable(format!(
            "{vendor} quota exhausted ({status}): {message}; check the account's plan and billing"
        )),
        408 | 409 | 429 | 500..=599 => {
            ProviderError::transient(format!("{vendor} answered {status}: {message}"))
                .retry_after(retry_after(headers))
        }
        404 => ProviderError::unavailable(format!("{vendor} answered 404: {message}")),
        _ if moderated => ProviderError::invalid(format!(
            "{vendor} refused the request under its content policy: {message}"
        )),
        _ => ProviderError::invalid(format!(
            "{vendor} rejected the request ({status}): {message}"
        )),
    }
}

/// What a call used, as the vendor reports it or as counted here.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Completion tokens.
    pub output_tokens: u64,
    /// Characters of text spoken.
    pub characters: u64,
}

impl std::ops::AddAssign for Usage {
    fn add_assign(&mut self, other: Usage) {
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.characters += other.characters;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn statuses_are_classified_as_documented() {
        let none = HeaderMap::new();
        let openai = r#"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#;
        let e = classify(
            "openai",
            "OPENAI_API_KEY",
            429,
            &headers(&[("retry-after", "7")]),
            openai,
        );
        assert_eq!(e.kind, ErrorKind::Transient);
        assert_eq!(e.retry_after, Some(Duration::from_secs(7)));
        assert!(e.message.contains("Rate limit reached"), "{}", e.message);

        let quota = r#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}"#;
        assert_eq!(
            classify("openai", "K", 429, &none, quota).kind,
            ErrorKind::Unavailable
        );

        let e = classify(
            "openai",
            "OPENAI_API_KEY",
            401,
            &none,
            r#"{"error":{"message":"Incorrect API key provided"}}"#,
        );
        assert_eq!(e.kind, ErrorKind::Unavailable);
        assert!(e.message.contains("OPENAI_API_KEY") && e.message.contains("Incorrect API key"));

        let policy = r#"{"error":{"message":"Your request was rejected as a result of our safety system.","type":"invalid_request_error","code":"content_policy_violation"}}"#;
        let e = classify("openai", "K", 400, &none, policy);
        assert_eq!(e.kind, ErrorKind::Invalid);
        assert!(e.message.contains("content policy"), "{}", e.message);

        let anthropic =
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
        assert_eq!(
            classify("anthropic", "K", 529, &none, anthropic).kind,
            ErrorKind::Transient
        );
        let eleven = r#"{"detail":{"status":"voice_not_found","message":"A voice with the voice_id x was not found."}}"#;
        let e = classify("elevenlabs", "K", 404, &none, eleven);
        assert_eq!(e.kind, ErrorKind::Unavailable);
        assert!(e.message.contains("voice_id x"));
        assert_eq!(
            classify("x", "K", 500, &none, "<html>oops</html>").message,
            "x answered 500: <html>oops</html>"
        );
    }

    #[test]
    fn retry_after_reads_seconds_milliseconds_and_dates() {
        assert_eq!(
            retry_after(&headers(&[("retry-after", "2")])),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            retry_after(&headers(&[("retry-after-ms", "250"), ("retry-after", "2")])),
            Some(Duration::from_millis(250))
        );
        let later = (chrono::Utc::now() + chrono::Duration::seconds(30)).to_rfc2822();
        let wait = retry_after(&headers(&[("retry-after", &later)])).unwrap();
        assert!(
            wait > Duration::from_secs(25) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
        assert_eq!(retry_after(&headers(&[("retry-after", "soon")])), None);
    }

    #[test]
    fn a_missing_key_names_its_variable() {
        let e = key_from_env("openai", "STUDIO_TEST_SURELY_UNSET_KEY").unwrap_err();
        assert_eq!(e.kind, ErrorKind::Unavailable);
        assert!(e.message.contains("STUDIO_TEST_SURELY_UNSET_KEY"));
        assert!(key_from_env("ollama", "").unwrap().is_none());
    }
}
