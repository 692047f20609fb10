//! Cartesia text-to-speech (Sonic) over Server-Sent Events with word timestamps: each
//! sentence's audio streams in base64 chunks beside the vendor's own word times.
//!
//! API reference: <https://docs.cartesia.ai/api-reference/tts/sse> (`POST /tts/sse` with
//! `add_timestamps: true`; `data:` events of type `chunk` {data: base64 PCM}, `timestamps`
//! {word_timestamps: {words, start, end}}, `done`, and `error` {title, message, status_code}),
//! <https://docs.cartesia.ai/api-reference/voices/list> (`GET /voices`), and "API conventions"
//! (every request carries `Cartesia-Version`; the key goes in `Authorization: Bearer`).
//! Pricing: about 1 credit per character on every TTS endpoint (<https://docs.cartesia.ai/pricing>).

use std::path::Path;

use async_trait::async_trait;
use base64::Engine as _;
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use super::{Endpoint, Usage};
use crate::capability::{Describe, Produced, SpeechSynth};
use crate::error::ProviderError;
use crate::local::espeak::write_wav;
use crate::prices::Price;
use crate::types::*;

/// Cartesia's API base URL.
pub const BASE_URL: &str = "https://api.cartesia.ai";
/// Where the key is read from by default.
pub const KEY_ENV: &str = "CARTESIA_API_KEY";
/// The API version this adapter speaks, sent as `Cartesia-Version`.
pub const API_VERSION: &str = "2025-04-16";
/// Model used when settings name none.
pub const MODEL: &str = "sonic-2";
/// Voice used when settings name none (the voice of Cartesia's own quick-start examples).
pub const VOICE: &str = "694f9389-aac1-45b6-b726-9d9369183238";
/// The audio asked for: raw 16-bit little-endian PCM, mono, at this rate (Hz).
pub const SAMPLE_RATE: u32 = 24_000;

/// Cartesia speech.
#[derive(Debug)]
pub struct CartesiaSpeech {
    endpoint: Endpoint,
    model: String,
    voice: String,
    price: Option<Price>,
}

#[derive(Debug, Deserialize)]
struct Event {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    data: Option<String>,
    #[serde(default)]
    word_timestamps: Option<WordTimestamps>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    status_code: Option<u16>,
}

#[derive(Debug, Default, Deserialize)]
struct WordTimestamps {
    words: Vec<String>,
    start: Vec<f64>,
    end: Vec<f64>,
}

impl CartesiaSpeech {
    /// Speech with `model` and `voice` (a voice id) through `endpoint`, which this sends
    /// `Cartesia-Version` with.
    pub fn new(endpoint: Endpoint, model: &str, voice: &str, price: Option<Price>) -> Self {
        Self {
            endpoint: endpoint.with_header("cartesia-version", API_VERSION),
            model: model.to_owned(),
            voice: voice.to_owned(),
            price,
        }
    }

    /// The voices the key can use (`GET /voices`): names and ids, a free probe of the key.
    pub async fn voices(&self) -> Result<Vec<(String, String)>, ProviderError> {
        #[derive(Deserialize)]
        struct V {
            id: String,
            name: String,
        }
        // Paginated ({data, has_more}) since 2025-04-16; a bare list before.
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Voices {
            Page { data: Vec<V> },
            List(Vec<V>),
        }
        let voices: Voices = self
            .endpoint
            .json(self.endpoint.request(Method::GET, "/voices"))
            .await?;
        let (Voices::Page { data: v } | Voices::List(v)) = voices;
        Ok(v.into_iter().map(|v| (v.name, v.id)).collect())
    }

    async fn sentence(
        &self,
        text: &str,
        speed: f64,
    ) -> Result<(Vec<i16>, Vec<TimedWord>), ProviderError> {
        let mut body = json!({
            "model_id": self.model,
            "transcript": text,
            "voice": {"mode": "id", "id": self.voice},
            "output_format": {
                "container": "raw",
                "encoding": "pcm_s16le",
                "sample_rate": SAMPLE_RATE,
            },
            "language": "en",
            "add_timestamps": true,
        });
        if (speed - 1.0).abs() > 0.01 {
            // Sonic's documented range for generation_config.speed.
            body["generation_config"] = json!({"speed": speed.clamp(0.6, 1.5)});
        }
        let request = self
            .endpoint
            .request(Method::POST, "/tts/sse")
            .header("accept", "text/event-stream")
            .json(&body);
        let (_, bytes) = self.endpoint.bytes(request).await?;
        let stream = String::from_utf8_lossy(&bytes);
        let mut pcm = Vec::new();
        let mut timestamps = WordTimestamps::default();
        let mut done = false;
        for data in sse_data(&stream) {
            let event: Event = serde_json::from_str(&data).map_err(|e| {
                ProviderError::transient(format!(
                    "cartesia sent an event that is not the JSON it documents ({e}): {data}"
                ))
            })?;
            match event.kind.as_str() {
                "chunk" => {
                    let chunk = event.data.unwrap_or_default();
                    let audio = base64::engine::general_purpose::STANDARD
                        .decode(chunk.as_bytes())
                        .map_err(|e| {
                            ProviderError::transient(format!(
                                "cartesia sent audio that is not base64: {e}"
                            ))
                        })?;
                    pcm.extend_from_slice(&audio);
                }
                "timestamps" => {
                    if let Some(w) = event.word_timestamps {
                        timestamps.words.extend(w.words);
                        timestamps.start.extend(w.start);
                        timestamps.end.extend(w.end);
                    }
                }
                "done" => {
                    done = true;
                    break;
                }
                "error" => return Err(stream_error(&event)),
                _ => {} // phoneme timestamps, flush acknowledgements: not needed
            }
        }
        let samples = super::pcm16(&pcm);
        if !done || samples.is_empty() {
            return Err(ProviderError::transient(format!(
                "cartesia's stream for \"{text}\" ended before it was done ({} bytes of audio)",
                pcm.len()
            )));
        }
        Ok((samples, words(text, &timestamps)))
    }
}

/// The `data:` payloads of a Server-Sent Events stream, one per event (multi-line data joined
/// with newlines, as the SSE specification says).
fn sse_data(stream: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    for line in stream.lines().chain(std::iter::once("")) {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            if !current.is_empty() {
                out.push(current.join("\n"));
                current.clear();
            }
        } else if let Some(data) = line.strip_prefix("data:") {
            current.push(data.strip_prefix(' ').unwrap_or(data));
        }
    }
    out
}

/// An `error` event, classified like an HTTP error of its `status_code`.
fn stream_error(event: &Event) -> ProviderError {
    let message = match (&event.title, &event.message, &event.error) {
        (Some(t), Some(m), _) => format!("{t}: {m}"),
        (_, Some(m), _) | (_, _, Some(m)) | (Some(m), None, None) => m.clone(),
        _ => "an unexplained error".to_owned(),
    };
    let message = format!("cartesia: {message}");
    match event.status_code.unwrap_or(500) {
        429 | 500.. => ProviderError::transient(message),
        401 | 403 | 404 => ProviderError::unavailable(message),
        _ => ProviderError::invalid(message),
    }
}

/// The sentence's words with Cartesia's times. Cartesia names words without their
/// punctuation; its times are kept when it timed as many words as the sentence has, and the
/// sentence's own words (punctuation attached) carry them. Otherwise no word times.
fn words(text: &str, t: &WordTimestamps) -> Vec<TimedWord> {
    let tokens: Vec<&str> = text.split_whitespace().collect();
    if tokens.len() != t.words.len()
        || t.start.len() != t.words.len()
        || t.end.len() != t.words.len()
    {
        return Vec::new();
    }
    tokens
        .iter()
        .zip(t.start.iter().zip(&t.end))
        .map(|(w, (&start, &end))| TimedWord {
            text: (*w).to_owned(),
            start,
            end: end.max(start),
        })
        .collect()
}

impl Describe for CartesiaSpeech {
    fn name(&self) -> &str {
        "cartesia"
    }
    fn model(&self) -> String {
        format!("{}/{}", self.model, self.voice)
    }
}

#[async_trait]
impl SpeechSynth for CartesiaSpeech {
    async fn synthesize(
        &self,
        request: &SpeechRequest,
        out: &Path,
    ) -> Result<Produced<Speech>, ProviderError> {
        request.check_words()?;
        let speed = f64::from(request.voice.rate_wpm) / f64::from(studio_style::narrator::RATE_WPM);
        let mut joined = super::Joined::default();
        let mut characters = 0u64;
        for sentence in &request.sentences {
            let (samples, words) = self.sentence(sentence, speed).await?;
            characters += sentence.chars().count() as u64;
            joined
                .push(sentence, SAMPLE_RATE, &samples, request.sentence_pause_s)
                .map_err(ProviderError::transient)?;
            joined.time_words(words);
        }
        let audio = out.join("speech.wav");
        write_wav(&audio, joined.sample_rate, &joined.samples)?;
        Ok(Produced {
            output: joined.speech(audio),
            cost_micro_usd: self.estimate(characters),
        })
    }

    fn estimate(&self, characters: u64) -> u64 {
        let usage = Usage {
            characters,
            ..Usage::default()
        };
        self.price.map(|p| p.cost(&usage)).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_read_from_the_stream() {
        let stream = "event: chunk\r\ndata: {\"type\":\"chunk\",\"data\":\"AAE=\"}\r\n\r\n\
                      data: {\"type\":\"done\",\n\
                      data: \"done\":true}\n\n: a comment\n\ndata: tail";
        assert_eq!(
            sse_data(stream),
            [
                "{\"type\":\"chunk\",\"data\":\"AAE=\"}",
                "{\"type\":\"done\",\n\"done\":true}",
                "tail"
            ]
        );
    }

    #[test]
    fn words_keep_the_sentences_punctuation_and_cartesias_times() {
        let t = WordTimestamps {
            words: vec!["Slow".into(), "but".into(), "steady".into()],
            start: vec![0.0, 0.4, 0.6],
            end: vec![0.35, 0.55, 1.1],
        };
        let w = words("Slow but steady.", &t);
        assert_eq!(w[2].text, "steady.");
        assert_eq!((w[1].start, w[1].end), (0.4, 0.55));
        assert!(words("Slow but steady, I said.", &t).is_empty());
    }

    #[test]
    fn stream_errors_are_classified_by_their_status() {
        let event = |status: u16| Event {
            kind: "error".into(),
            data: None,
            word_timestamps: None,
            title: Some("Invalid model".into()),
            message: Some("The model is not valid.".into()),
            error: None,
            status_code: Some(status),
        };
        use crate::ErrorKind::*;
        assert_eq!(stream_error(&event(400)).kind, Invalid);
        assert_eq!(stream_error(&event(429)).kind, Transient);
        assert_eq!(stream_error(&event(503)).kind, Transient);
        assert_eq!(stream_error(&event(401)).kind, Unavailable);
        assert_eq!(
            stream_error(&event(400)).message,
            "cartesia: Invalid model: The model is not valid."
        );
    }
}
