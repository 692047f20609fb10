//! `studio providers check`: each configured provider, whether its key is present, and a
//! cheap live probe where the vendor offers one (its model or voice list; nothing billed).

use serde::Serialize;

use crate::local::{espeak, media, music};
use crate::settings::{ProviderSpec, ProvidersSettings};
use crate::types::ImageRequest;
use crate::vendor::{anthropic, cartesia, comfyui, elevenlabs, openai, openai_images};
use crate::vendor::{luma, replicate, runway, stability, stock};

/// What was found about one configured provider.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Checked {
    /// Capability table (`script`, `speech`, …).
    pub capability: &'static str,
    /// Index in the chain.
    pub index: usize,
    /// Provider kind.
    pub kind: String,
    /// The environment variable holding its key, and whether it is set; `None` for providers
    /// that take none.
    pub key: Option<(String, bool)>,
    /// What the probe found (`42 models; gpt-4o-mini offered`), or why it failed.
    pub probe: Result<String, String>,
}

impl Checked {
    /// Whether the provider is ready to use.
    pub fn ok(&self) -> bool {
        self.probe.is_ok() && self.key.as_ref().is_none_or(|(_, set)| *set)
    }
}

/// Checks every provider of `settings`, in table order.
pub async fn check(settings: &ProvidersSettings) -> Vec<Checked> {
    let tables: [(&'static str, &Vec<ProviderSpec>); 5] = [
        ("script", &settings.script),
        ("speech", &settings.speech),
        ("image", &settings.image),
        ("clip", &settings.clip),
        ("music", &settings.music),
    ];
    let mut out = Vec::new();
    for (capability, specs) in tables {
        for (index, spec) in specs.iter().enumerate() {
            let key = spec.key_env().map(|env| {
                let set = std::env::var(&env).is_ok_and(|v| !v.trim().is_empty());
                (env, set)
            });
            out.push(Checked {
                capability,
                index,
                kind: spec.kind.clone(),
                key,
                probe: probe(capability, spec).await,
            });
        }
    }
    out
}

fn offered(models: &[String], wanted: &str) -> String {
    if models.iter().any(|m| m == wanted) {
        format!("{} models; {wanted} offered", models.len())
    } else {
        format!(
            "{} models; {wanted} is not among them (check `model`)",
            models.len()
        )
    }
}

async fn probe(capability: &str, spec: &ProviderSpec) -> Result<String, String> {
    let e = |e: crate::ProviderError| e.message;
    match (capability, spec.kind.as_str()) {
        ("script", "text-planner") => Ok("local, nothing to probe".into()),
        ("image", "card") => Ok("local, nothing to probe".into()),
        ("script", "openai") | ("speech", "openai-speech") => {
            let endpoint = spec.endpoint().map_err(e)?;
            let default = if capability == "script" {
                openai::CHAT_MODEL
            } else {
                openai::SPEECH_MODEL
            };
            let models = openai::list_models(&endpoint).await.map_err(e)?;
            Ok(offered(&models, spec.model.as_deref().unwrap_or(default)))
        }
        ("script", "anthropic") => {
            let endpoint = spec.endpoint().map_err(e)?;
            let model = spec.model.as_deref().unwrap_or(anthropic::MODEL);
            let chat = anthropic::AnthropicChat::new(endpoint, model);
            let models = chat.models().await.map_err(e)?;
            Ok(offered(&models, model))
        }
        ("speech", "elevenlabs") => {
            let endpoint = spec.endpoint().map_err(e)?;
            let voice = spec.voice.as_deref().unwrap_or(elevenlabs::VOICE);
            let speech =
                elevenlabs::ElevenLabsSpeech::new(endpoint, elevenlabs::MODEL, voice, None, None);
            voice_found(&speech.voices().await.map_err(e)?, voice)
        }
        ("speech", "cartesia") => {
            let endpoint = spec.endpoint().map_err(e)?;
            let voice = spec.voice.as_deref().unwrap_or(cartesia::VOICE);
            let speech = cartesia::CartesiaSpeech::new(endpoint, cartesia::MODEL, voice, None);
            voice_found(&speech.voices().await.map_err(e)?, voice)
        }
        ("speech", "espeak-ng") => espeak::EspeakSpeech::detect(spec.binary.clone())
            .map(|p| crate::Describe::model(&p))
            .map_err(e),
        ("speech", "piper") => crate::local::piper::PiperSpeech::detect(
            spec.binary.clone(),
            spec.model.as_ref().map(std::path::PathBuf::from),
        )
        .map(|p| crate::Describe::model(&p))
        .map_err(e),
        ("music", "fluidsynth") => {
            music::FluidSynthMusic::detect(spec.binary.clone(), spec.soundfont.clone())
                .map(|p| crate::Describe::model(&p))
                .map_err(e)
        }
        ("image", "openai-images") => {
            let endpoint = spec.endpoint().map_err(e)?;
            let models = openai::list_models(&endpoint).await.map_err(e)?;
            let model = spec.model.as_deref().unwrap_or(openai_images::IMAGE_MODEL);
            Ok(offered(&models, model))
        }
        ("image", "stability") => {
            let endpoint = spec.endpoint().map_err(e)?;
            let credits = stability::balance(&endpoint).await.map_err(e)?;
            Ok(format!("{credits} credits left"))
        }
        ("image", "replicate") | ("clip", "replicate") => {
            let endpoint = spec.endpoint().map_err(e)?;
            let account = replicate::account(&endpoint).await.map_err(e)?;
            Ok(format!("account {account}"))
        }
        ("image" | "clip", kind @ ("pexels" | "pixabay")) => {
            let endpoint = spec.endpoint().map_err(e)?;
            let library = match kind {
                "pexels" => stock::Library::Pexels,
                _ => stock::Library::Pixabay,
            };
            let probe = ImageRequest {
                terms: vec!["nature".into()],
                caption: "nature".into(),
                width: 1920,
                height: 1080,
                seed: 0,
                palette: Vec::new(),
                prompt: String::new(),
                negative_prompt: String::new(),
                project_seed: 0,
            };
            let found = stock::StockPhotos::new(library, endpoint)
                .search(&probe)
                .await
                .map_err(e)?;
            Ok(format!(
                "search works ({} photos for \"nature\")",
                found.len()
            ))
        }
        ("clip", "runway") => {
            let endpoint = spec.endpoint().map_err(e)?;
            let credits = runway::credit_balance(&endpoint).await.map_err(e)?;
            Ok(format!("{credits} credits left"))
        }
        ("clip", "luma") => {
            let endpoint = spec.endpoint().map_err(e)?;
            let credits = luma::credit_balance(&endpoint).await.map_err(e)?;
            Ok(format!("{credits} credits left"))
        }
        ("image", "comfyui") => {
            let endpoint = spec.endpoint().map_err(e)?;
            comfyui::system_stats(&endpoint).await.map_err(e)
        }
        ("image", "media-folder") => match &spec.path {
            Some(path) => media::MediaFolder::open(path)
                .map(|m| crate::Describe::model(&m))
                .map_err(e),
            None => Err("needs `path`, the folder of pictures".into()),
        },
        (capability, kind) => Err(format!("unknown provider kind {kind} for {capability}")),
    }
}

/// Whether `voice` is among `voices` (name, id), or what to set instead.
fn voice_found(voices: &[(String, String)], voice: &str) -> Result<String, String> {
    match voices.iter().find(|(_, id)| id == voice) {
        Some((name, _)) => Ok(format!("{} voices; {voice} ({name}) found", voices.len())),
        None => Err(format!(
            "{} voices, none with id {voice}; set `voice` to one of: {}",
            voices.len(),
            voices
                .iter()
                .map(|(n, id)| format!("{id} ({n})"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}
