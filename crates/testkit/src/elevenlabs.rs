//! A local stand-in for ElevenLabs ([`FakeElevenLabs`]): `POST
//! /v1/text-to-speech/{voice_id}/with-timestamps` answering `{audio_base64, alignment,
//! normalized_alignment}`, `GET /v1/voices`, and the documented error body (`{"detail":
//! {"status", "message"}}`).
//!
//! The audio is real 24 kHz 16-bit PCM (a tone), and the alignment is deliberately uneven:
//! letters take [`LETTER_S`], spaces and punctuation [`PAUSE_S`], so times read from it differ
//! from times shared in proportion to letters.

use base64::Engine as _;
use serde_json::{json, Value};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// The key the fake accepts (`xi-api-key`).
pub const KEY: &str = "xi-test";
/// Voice ids the fake knows.
pub const VOICES: [(&str, &str); 2] = [
    ("JBFqnCBsd6RMkjVDRZzb", "George"),
    ("21m00Tcm4TlvDq8ikWAM", "Rachel"),
];
/// Seconds per letter or digit.
pub const LETTER_S: f64 = 0.05;
/// Seconds per space or punctuation mark.
pub const PAUSE_S: f64 = 0.15;

/// A fake ElevenLabs server on a free local port.
pub struct FakeElevenLabs {
    /// The wiremock server.
    pub server: MockServer,
}

/// An ElevenLabs error answer.
pub fn error(status: u16, code: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .set_body_json(json!({"detail": {"status": code, "message": message}}))
}

/// Start and end times of each character of `text` in the fake's speech.
pub fn alignment(text: &str) -> (Vec<f64>, Vec<f64>) {
    let mut t = 0.0;
    let mut starts = Vec::new();
    let mut ends = Vec::new();
    for c in text.chars() {
        starts.push(t);
        t += if c.is_alphanumeric() {
            LETTER_S
        } else {
            PAUSE_S
        };
        ends.push(t);
    }
    (starts, ends)
}

impl FakeElevenLabs {
    /// Starts the fake.
    pub async fn start() -> FakeElevenLabs {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path_regex(r"^/v1/text-to-speech/[^/]+/with-timestamps$"))
            .respond_with(Speech)
            .with_priority(10)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/v1/voices"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "voices": VOICES.iter().map(|(id, name)| json!({"voice_id": id, "name": name, "category": "premade"})).collect::<Vec<_>>()
            })))
            .with_priority(10)
            .mount(&server)
            .await;
        FakeElevenLabs { server }
    }

    /// `http://127.0.0.1:{port}`, the `base_url` to configure.
    pub fn base_url(&self) -> String {
        self.server.uri()
    }

    /// Every speech request received: (path, query, JSON body).
    pub async fn speeches(&self) -> Vec<(String, String, Value)> {
        self.server
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .filter(|r| r.url.path().starts_with("/v1/text-to-speech/"))
            .map(|r| {
                (
                    r.url.path().to_owned(),
                    r.url.query().unwrap_or_default().to_owned(),
                    serde_json::from_slice(&r.body).unwrap_or(Value::Null),
                )
            })
            .collect()
    }
}

struct Speech;

impl Respond for Speech {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let key = request
            .headers
            .get("xi-api-key")
            .and_then(|v| v.to_str().ok());
        if key != Some(KEY) {
            return error(401, "invalid_api_key", "Invalid API key");
        }
        let voice = request.url.path().split('/').nth(3).unwrap_or_default();
        if !VOICES.iter().any(|(id, _)| *id == voice) {
            return error(
                404,
                "voice_not_found",
                &format!("A voice with the voice_id {voice} was not found."),
            );
        }
        let format = request
            .url
            .query_pairs()
            .find(|(k, _)| k == "output_format")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_else(|| "mp3_44100_128".into());
        if format != "pcm_24000" {
            return error(
                422,
                "invalid_output_format",
                &format!("output_format {format} is not served by this fake"),
            );
        }
        let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
            return error(400, "invalid_json", "The request body is not valid JSON.");
        };
        let Some(text) = body["text"].as_str().filter(|t| !t.is_empty()) else {
            return error(422, "missing_text", "text: Field required");
        };
        let (starts, ends) = alignment(text);
        let seconds = ends.last().copied().unwrap_or(0.0);
        let audio = base64::engine::general_purpose::STANDARD.encode(crate::openai::tone(seconds));
        let alignment = json!({
            "characters": text.chars().map(String::from).collect::<Vec<_>>(),
            "character_start_times_seconds": starts,
            "character_end_times_seconds": ends,
        });
        ResponseTemplate::new(200).set_body_json(json!({
            "audio_base64": audio,
            "alignment": alignment,
            "normalized_alignment": alignment,
        }))
    }
}
