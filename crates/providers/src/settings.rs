//! Which providers make up each capability's chain, as serde-typed settings.
//!
//! In TOML (a `[providers]` table of the Studio settings):
//! ```toml
//! [providers.retry]
//! max_attempts = 3
//!
//! [[providers.image]]
//! kind = "media-folder"
//! path = "my-photos"
//!
//! [[providers.image]]
//! kind = "card"
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::cache::ResultCache;
use crate::capability::{Motion, Narration, Picture, Score, Script};
use crate::chain::{Chain, RetryPolicy};
use crate::error::ProviderError;
use crate::limits::BreakerPolicy;
use crate::local::align::{Aligned, PocketSphinx, WordTiming};
use crate::local::{card, espeak, media, music, piper, planner};
use crate::prices::{Price, PriceTable};
use crate::tasks::{MemoryTaskLog, TaskLog};
use crate::vendor::openai::{self, AudioFormat, StructuredOutput};
use crate::vendor::{anthropic, cartesia, elevenlabs, openai_images, replicate, stability};
use crate::vendor::{comfyui, luma, replicate_clips, runway, stock};
use crate::vendor::{vendor_of, Endpoint};
use crate::writer::LlmWriter;

/// One provider in a chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSpec {
    /// Provider kind: `text-planner`, `openai`, `anthropic` (script); `espeak-ng`, `piper`,
    /// `openai-speech`, `elevenlabs`, `cartesia` (speech); `openai-images`, `stability`,
    /// `replicate`, `comfyui`, `pexels`, `pixabay`, `media-folder`, `card` (image);
    /// `replicate`, `runway`, `luma`, `pexels`, `pixabay` (clip);
    /// `fluidsynth` (music).
    pub kind: String,
    /// Calls to this provider at a time. Default 2.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Executable, for providers that run one (`espeak-ng`, `fluidsynth`; for `piper` the Python
    /// of its environment, default `~/.cache/studio/piper/bin/python`); default from `PATH`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binary: Option<PathBuf>,
    /// Folder, for `media-folder`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// Workflow in ComfyUI's API format with `{{prompt}}`, `{{negative_prompt}}`, `{{seed}}`,
    /// `{{width}}`, `{{height}}` and `{{model}}` placeholders, for `comfyui`; default the shipped
    /// text-to-image workflow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow: Option<PathBuf>,
    /// Soundfont, for `fluidsynth`; default Debian's FluidR3_GM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soundfont: Option<PathBuf>,
    /// API base URL, for vendor providers; default the vendor's own (`https://api.openai.com/v1`).
    /// Point it at any compatible server: `http://127.0.0.1:11434/v1` for Ollama.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// Model, for vendor providers; default per vendor (`gpt-4o-mini`, `gpt-4o-mini-tts`). For
    /// `piper`, the path of an `.onnx` voice (default the joe voice).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Name of the environment variable that holds the API key (the key itself never sits in a
    /// settings file); default per vendor (`OPENAI_API_KEY`); `""` for a server that takes none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
    /// Seconds before a vendor request is given up as transient. Default 60.
    #[serde(default = "default_timeout_s")]
    pub timeout_s: f64,
    /// Requests a minute to this provider, all requests of the process together; 0 for no
    /// limit. Default 0.
    #[serde(default)]
    pub requests_per_minute: u32,
    /// Voice, for vendor speech (`alloy` for OpenAI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voice: Option<String>,
    /// How an OpenAI-compatible chat server is asked for JSON: `json-schema` (default), `tools`
    /// or `json`.
    #[serde(default)]
    pub structured_output: StructuredOutput,
    /// Audio format asked of an OpenAI-compatible speech server: `pcm` (default) or `wav`.
    #[serde(default)]
    pub audio_format: AudioFormat,
    /// ElevenLabs `voice_settings`, sent as given (`stability`, `similarity_boost`, `style`,
    /// `use_speaker_boost`, `speed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voice_settings: Option<serde_json::Value>,
    /// How a voice's words are timed, for speech: `auto` (default: the voice's own times, else
    /// PocketSphinx forced alignment when installed, else by letters), `pocketsphinx` (required)
    /// or `letters`.
    #[serde(default)]
    pub word_timing: WordTiming,
}

fn default_timeout_s() -> f64 {
    60.0
}

fn default_concurrency() -> usize {
    2
}

impl ProviderSpec {
    /// A provider of `kind` with default options.
    pub fn new(kind: &str) -> Self {
        Self {
            kind: kind.into(),
            concurrency: default_concurrency(),
            binary: None,
            path: None,
            workflow: None,
            soundfont: None,
            base_url: None,
            model: None,
            api_key_env: None,
            timeout_s: default_timeout_s(),
            requests_per_minute: 0,
            voice: None,
            structured_output: StructuredOutput::default(),
            audio_format: AudioFormat::default(),
            voice_settings: None,
            word_timing: WordTiming::default(),
        }
    }

    /// The environment variable a vendor provider reads its key from (`api_key_env`, or the
    /// vendor's default); `None` for local kinds and servers that take no key.
    pub fn key_env(&self) -> Option<String> {
        let (_, _, default, _) = vendor_of(&self.kind)?;
        Some(
            self.api_key_env
                .clone()
                .unwrap_or_else(|| default.to_owned()),
        )
        .filter(|e| !e.is_empty())
    }

    /// The endpoint of a vendor provider: `base_url`, `api_key_env` and `timeout_s`, or the
    /// vendor's defaults ([`vendor_of`]).
    ///
    /// Errors: `Unavailable` for a local kind, when the key's variable is unset (naming it), or
    /// the URL is not http(s); `timeout_s` not a positive number.
    pub fn endpoint(&self) -> Result<Endpoint, ProviderError> {
        let (vendor, base_url, key_env, auth) = vendor_of(&self.kind).ok_or_else(|| {
            ProviderError::unavailable(format!("{} is not a vendor provider", self.kind))
        })?;
        if !(self.timeout_s.is_finite() && self.timeout_s > 0.0) {
            return Err(ProviderError::unavailable(format!(
                "timeout_s must be a positive number of seconds, not {}",
                self.timeout_s
            )));
        }
        Endpoint::new(
            vendor,
            self.base_url.as_deref().unwrap_or(base_url),
            self.api_key_env.as_deref().unwrap_or(key_env),
            auth,
            std::time::Duration::from_secs_f64(self.timeout_s),
        )
    }
}

/// Chains for every capability.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProvidersSettings {
    /// Retries of transient errors, for every provider.
    pub retry: RetryPolicy,
    /// When each provider's circuit breaker opens, for every provider.
    pub breaker: BreakerPolicy,
    /// Prices by `"<kind>/<model>"`, replacing or adding to the shipped table
    /// ([`PriceTable::shipped`]).
    pub prices: BTreeMap<String, Price>,
    /// Planning. Default `text-planner`.
    pub script: Vec<ProviderSpec>,
    /// Narration. Default `espeak-ng`.
    pub speech: Vec<ProviderSpec>,
    /// Pictures. Default `card`.
    pub image: Vec<ProviderSpec>,
    /// Clips: a scene's still set in motion, for styles that ask for clips (`[pictures]
    /// clips = true`). Default none.
    pub clip: Vec<ProviderSpec>,
    /// Music. Default `fluidsynth`.
    pub music: Vec<ProviderSpec>,
}

impl Default for ProvidersSettings {
    fn default() -> Self {
        Self {
            retry: RetryPolicy::default(),
            breaker: BreakerPolicy::default(),
            prices: BTreeMap::new(),
            script: vec![ProviderSpec::new("text-planner")],
            speech: vec![ProviderSpec::new("espeak-ng")],
            image: vec![ProviderSpec::new("card")],
            clip: Vec::new(),
            music: vec![ProviderSpec::new("fluidsynth")],
        }
    }
}

/// A settings error naming the entry (`providers.speech[0]`) and the fix.
#[derive(Debug, Clone, thiserror::Error)]
#[error("providers.{capability}[{index}] ({kind}): {message}")]
pub struct SettingsError {
    /// Capability table.
    pub capability: &'static str,
    /// Index in the chain.
    pub index: usize,
    /// The entry's kind.
    pub kind: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// Every capability's chain, ready to serve.
#[derive(Debug)]
pub struct Providers {
    /// Planning.
    pub script: Chain<Script>,
    /// Narration.
    pub speech: Chain<Narration>,
    /// Pictures.
    pub image: Chain<Picture>,
    /// Clips.
    pub clip: Chain<Motion>,
    /// Music.
    pub music: Chain<Score>,
}

impl Providers {
    /// Provider calls made so far, all capabilities together (cache hits excluded).
    pub fn calls(&self) -> u64 {
        self.script.calls()
            + self.speech.calls()
            + self.image.calls()
            + self.clip.calls()
            + self.music.calls()
    }

    /// Whether the planning chain can write a script from a topic (a language model is
    /// configured), not only plan given text.
    pub fn can_plan_topics(&self) -> bool {
        self.script.accepts_topics()
    }
}

impl ProvidersSettings {
    /// Builds the chains, with results cached in `cache` when given.
    ///
    /// Errors: an unknown kind or one in the wrong table, a missing option (`path` for
    /// `media-folder`), a local tool that cannot be run (with the package to install), an
    /// unreadable media folder.
    pub fn build(&self, cache: Option<Arc<ResultCache>>) -> Result<Providers, SettingsError> {
        let builder = Builder {
            settings: self,
            cache,
            prices: PriceTable::shipped().with(&self.prices),
        };
        Ok(Providers {
            script: builder.script()?,
            speech: builder.speech()?,
            image: builder.image()?,
            clip: builder.clip()?,
            music: builder.music()?,
        })
    }
}

/// Builds one chain per capability from [`ProvidersSettings`].
struct Builder<'a> {
    settings: &'a ProvidersSettings,
    cache: Option<Arc<ResultCache>>,
    prices: PriceTable,
}

impl SettingsError {
    fn new(capability: &'static str, index: usize, spec: &ProviderSpec, message: String) -> Self {
        SettingsError {
            capability,
            index,
            kind: spec.kind.clone(),
            message,
        }
    }

    /// The entry's kind is not one of `known` for this capability.
    fn unknown(capability: &'static str, index: usize, spec: &ProviderSpec, known: &str) -> Self {
        Self::new(
            capability,
            index,
            spec,
            format!("unknown provider kind for {capability}; use one of: {known}"),
        )
    }

    /// A provider of the entry could not be made.
    fn provider(
        capability: &'static str,
        index: usize,
        spec: &ProviderSpec,
        e: ProviderError,
    ) -> Self {
        Self::new(capability, index, spec, e.message)
    }
}

impl Builder<'_> {
    /// An empty chain with the shared retry, breaker and cache settings.
    fn chain<C: crate::Capability>(&self) -> Chain<C> {
        let chain = Chain::new(self.settings.retry).with_breaker(self.settings.breaker);
        match &self.cache {
            Some(c) => chain.with_cache(c.clone()),
            None => chain,
        }
    }

    /// The price of a vendor model. A model missing from the table is counted as free (right
    /// for self-hosted servers), and said so once at start.
    fn priced(&self, kind: &str, model: &str) -> Option<Price> {
        let price = self.prices.get(kind, model);
        if price.is_none() {
            tracing::warn!(
                provider = kind,
                model,
                "no price for {kind}/{model} in the price table; its calls are counted as 0 micro-USD (add providers.prices.\"{kind}/{model}\")"
            );
        }
        price
    }

    fn script(&self) -> Result<Chain<Script>, SettingsError> {
        let mut script = self.chain::<Script>();
        for (i, spec) in self.settings.script.iter().enumerate() {
            let endpoint = || {
                spec.endpoint()
                    .map_err(|e| SettingsError::provider("script", i, spec, e))
            };
            let writer = match spec.kind.as_str() {
                "text-planner" => {
                    script.push(Arc::new(planner::TextPlanner), spec.concurrency);
                    continue;
                }
                "openai" => {
                    let model = spec.model.as_deref().unwrap_or(openai::CHAT_MODEL);
                    let chat = openai::OpenAiChat::new(endpoint()?, model, spec.structured_output);
                    LlmWriter::new("openai", Box::new(chat), self.priced("openai", model))
                }
                "anthropic" => {
                    let model = spec.model.as_deref().unwrap_or(anthropic::MODEL);
                    let chat = anthropic::AnthropicChat::new(endpoint()?, model);
                    LlmWriter::new("anthropic", Box::new(chat), self.priced("anthropic", model))
                }
                _ => {
                    let known = "text-planner, openai, anthropic";
                    return Err(SettingsError::unknown("script", i, spec, known));
                }
            };
            script.push_limited(Arc::new(writer), spec.concurrency, spec.requests_per_minute)
        }
        Ok(script)
    }

    fn speech(&self) -> Result<Chain<Narration>, SettingsError> {
        let mut speech = self.chain::<Narration>();
        // PocketSphinx, looked for once, at the first voice that may need it.
        let mut aligner: Option<Result<PocketSphinx, ProviderError>> = None;
        for (i, spec) in self.settings.speech.iter().enumerate() {
            let fail = |e: ProviderError| SettingsError::provider("speech", i, spec, e);
            let voice: Arc<dyn crate::SpeechSynth> = match spec.kind.as_str() {
                "espeak-ng" => {
                    Arc::new(espeak::EspeakSpeech::detect(spec.binary.clone()).map_err(fail)?)
                }
                "piper" => Arc::new(
                    piper::PiperSpeech::detect(
                        spec.binary.clone(),
                        spec.model.as_ref().map(PathBuf::from),
                    )
                    .map_err(fail)?,
                ),
                "openai-speech" => {
                    let model = spec.model.as_deref().unwrap_or(openai::SPEECH_MODEL);
                    Arc::new(openai::OpenAiSpeech::new(
                        "openai-speech",
                        spec.endpoint().map_err(fail)?,
                        model,
                        spec.voice.as_deref().unwrap_or(openai::VOICE),
                        spec.audio_format,
                        self.priced("openai-speech", model),
                    ))
                }
                "elevenlabs" => {
                    let model = spec.model.as_deref().unwrap_or(elevenlabs::MODEL);
                    Arc::new(elevenlabs::ElevenLabsSpeech::new(
                        spec.endpoint().map_err(fail)?,
                        model,
                        spec.voice.as_deref().unwrap_or(elevenlabs::VOICE),
                        spec.voice_settings.clone(),
                        self.priced("elevenlabs", model),
                    ))
                }
                "cartesia" => {
                    let model = spec.model.as_deref().unwrap_or(cartesia::MODEL);
                    Arc::new(cartesia::CartesiaSpeech::new(
                        spec.endpoint().map_err(fail)?,
                        model,
                        spec.voice.as_deref().unwrap_or(cartesia::VOICE),
                        self.priced("cartesia", model),
                    ))
                }
                _ => {
                    let known = "espeak-ng, piper, openai-speech, elevenlabs, cartesia";
                    return Err(SettingsError::unknown("speech", i, spec, known));
                }
            };
            // ElevenLabs times every word itself; the others may need the aligner.
            let voice = if spec.kind == "elevenlabs" {
                voice
            } else {
                timed(&mut aligner, i, spec, voice)?
            };
            if vendor_of(&spec.kind).is_some() {
                speech.push_limited(voice, spec.concurrency, spec.requests_per_minute)
            } else {
                speech.push(voice, spec.concurrency)
            }
        }
        Ok(speech)
    }

    fn image(&self) -> Result<Chain<Picture>, SettingsError> {
        let mut image = self.chain::<Picture>();
        for (i, spec) in self.settings.image.iter().enumerate() {
            match spec.kind.as_str() {
                "card" => image.push(Arc::new(card::CardImages), spec.concurrency),
                "replicate" => {
                    let model = spec.model.as_deref().unwrap_or(replicate::MODEL);
                    let endpoint = spec
                        .endpoint()
                        .map_err(|e| SettingsError::provider("image", i, spec, e))?;
                    let price = self.priced("replicate", model);
                    image.push_limited(
                        Arc::new(replicate::ReplicateImages::new(endpoint, model, price)),
                        spec.concurrency,
                        spec.requests_per_minute,
                    )
                }
                "stability" => {
                    let model = spec.model.as_deref().unwrap_or(stability::MODEL);
                    let endpoint = spec
                        .endpoint()
                        .map_err(|e| SettingsError::provider("image", i, spec, e))?;
                    let price = self.priced("stability", model);
                    image.push_limited(
                        Arc::new(stability::StabilityImages::new(endpoint, model, price)),
                        spec.concurrency,
                        spec.requests_per_minute,
                    )
                }
                "pexels" | "pixabay" => {
                    let library = stock::Library::of(&spec.kind).unwrap_or(stock::Library::Pexels);
                    let endpoint = spec
                        .endpoint()
                        .map_err(|e| SettingsError::provider("image", i, spec, e))?;
                    image.push_limited(
                        Arc::new(stock::StockPhotos::new(library, endpoint)),
                        spec.concurrency,
                        spec.requests_per_minute,
                    )
                }
                "comfyui" => {
                    let fail = |m: String| SettingsError::new("image", i, spec, m);
                    let workflow = match &spec.workflow {
                        Some(path) => std::fs::read_to_string(path)
                            .map_err(|e| fail(format!("workflow {}: {e}", path.display())))?,
                        None => comfyui::DEFAULT_WORKFLOW.to_owned(),
                    };
                    let endpoint = spec.endpoint().map_err(|e| fail(e.message))?;
                    let model = spec.model.as_deref().unwrap_or(comfyui::MODEL);
                    let comfy = comfyui::ComfyUiImages::new(endpoint, model, &workflow)
                        .map_err(|e| fail(e.message))?;
                    image.push_limited(Arc::new(comfy), spec.concurrency, spec.requests_per_minute)
                }
                "openai-images" => {
                    let model = spec.model.as_deref().unwrap_or(openai_images::IMAGE_MODEL);
                    let endpoint = spec
                        .endpoint()
                        .map_err(|e| SettingsError::provider("image", i, spec, e))?;
                    let price = self.priced("openai-images", model);
                    image.push_limited(
                        Arc::new(openai_images::OpenAiImages::new(endpoint, model, price)),
                        spec.concurrency,
                        spec.requests_per_minute,
                    )
                }
                "media-folder" => {
                    let path = spec.path.as_ref().ok_or_else(|| {
                        let message = "needs `path`, the folder of pictures".into();
                        SettingsError::new("image", i, spec, message)
                    })?;
                    let folder = media::MediaFolder::open(path)
                        .map_err(|e| SettingsError::provider("image", i, spec, e))?;
                    image.push(Arc::new(folder), spec.concurrency)
                }
                _ => {
                    return Err(SettingsError::unknown(
                        "image",
                        i,
                        spec,
                        "openai-images, stability, replicate, comfyui, pexels, pixabay, media-folder, card",
                    ))
                }
            }
        }
        Ok(image)
    }

    /// Where clip providers remember vendor tasks under way: beside the result cache, so a
    /// restarted process resumes them; in memory without a cache.
    fn task_log(&self) -> Arc<dyn TaskLog> {
        match &self.cache {
            Some(cache) => cache.tasks(),
            None => Arc::new(MemoryTaskLog::default()),
        }
    }

    fn clip(&self) -> Result<Chain<Motion>, SettingsError> {
        let mut clip = self.chain::<Motion>();
        for (i, spec) in self.settings.clip.iter().enumerate() {
            if let Some(library) = stock::Library::of(&spec.kind) {
                let endpoint = spec
                    .endpoint()
                    .map_err(|e| SettingsError::provider("clip", i, spec, e))?;
                let videos = stock::StockVideos::new(library, endpoint);
                clip.push_limited(Arc::new(videos), spec.concurrency, spec.requests_per_minute);
                continue;
            }
            let default_model = match spec.kind.as_str() {
                "replicate" => replicate_clips::CLIP_MODEL,
                "runway" => runway::MODEL,
                "luma" => luma::MODEL,
                _ => {
                    let known = "replicate, runway, luma, pexels, pixabay";
                    return Err(SettingsError::unknown("clip", i, spec, known));
                }
            };
            let model = spec.model.as_deref().unwrap_or(default_model);
            let endpoint = spec
                .endpoint()
                .map_err(|e| SettingsError::provider("clip", i, spec, e))?;
            let price = self.priced(&spec.kind, model);
            let tasks = self.task_log();
            let provider: Arc<dyn crate::ClipGen> = match spec.kind.as_str() {
                "replicate" => Arc::new(replicate_clips::ReplicateClips::new(
                    endpoint, model, price, tasks,
                )),
                "runway" => Arc::new(runway::RunwayClips::new(endpoint, model, price, tasks)),
                _ => Arc::new(luma::LumaClips::new(
                    endpoint,
                    model,
                    price,
                    tasks,
                    self.cache.clone(),
                )),
            };
            clip.push_limited(provider, spec.concurrency, spec.requests_per_minute)
        }
        Ok(clip)
    }

    fn music(&self) -> Result<Chain<Score>, SettingsError> {
        let mut music = self.chain::<Score>();
        for (i, spec) in self.settings.music.iter().enumerate() {
            match spec.kind.as_str() {
                "fluidsynth" => {
                    let p =
                        music::FluidSynthMusic::detect(spec.binary.clone(), spec.soundfont.clone())
                            .map_err(|e| SettingsError::provider("music", i, spec, e))?;
                    music.push(Arc::new(p), spec.concurrency)
                }
                _ => return Err(SettingsError::unknown("music", i, spec, "fluidsynth")),
            }
        }
        Ok(music)
    }
}

/// `voice` with its untimed words force-aligned by PocketSphinx, unless `word_timing` is
/// `letters`. PocketSphinx is looked for once (`aligner`); missing, it is an error only when
/// `word_timing = "pocketsphinx"` asks for it.
fn timed(
    aligner: &mut Option<Result<PocketSphinx, ProviderError>>,
    i: usize,
    spec: &ProviderSpec,
    voice: Arc<dyn crate::SpeechSynth>,
) -> Result<Arc<dyn crate::SpeechSynth>, SettingsError> {
    if spec.word_timing == WordTiming::Letters {
        return Ok(voice);
    }
    match aligner.get_or_insert_with(|| PocketSphinx::detect(None)) {
        Ok(a) => Ok(Arc::new(Aligned::new(voice, a.clone()))),
        Err(e) if spec.word_timing == WordTiming::Pocketsphinx => Err(SettingsError::new(
            "speech",
            i,
            spec,
            format!("word_timing = \"pocketsphinx\": {}", e.message),
        )),
        Err(e) => {
            tracing::debug!(reason = %e.message, "captions without the voice's own word times are timed by letters");
            Ok(voice)
        }
    }
}
