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

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::cache::ResultCache;
use crate::capability::{Motion, Narration, Picture, Score, Script};
use crate::chain::{Chain, RetryPolicy};
use crate::error::ProviderError;
use crate::local::{card, espeak, media, music, planner};

/// One provider in a chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSpec {
    /// Provider kind: `text-planner` (script), `espeak-ng` (speech), `media-folder` and `card`
    /// (image), `fluidsynth` (music).
    pub kind: String,
    /// Calls to this provider at a time. Default 2.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Executable, for providers that run one (`espeak-ng`, `fluidsynth`); default from `PATH`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binary: Option<PathBuf>,
    /// Folder, for `media-folder`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// Soundfont, for `fluidsynth`; default Debian's FluidR3_GM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soundfont: Option<PathBuf>,
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
            soundfont: None,
        }
    }
}

/// Chains for every capability.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProvidersSettings {
    /// Retries of transient errors, for every provider.
    pub retry: RetryPolicy,
    /// Planning. Default `text-planner`.
    pub script: Vec<ProviderSpec>,
    /// Narration. Default `espeak-ng`.
    pub speech: Vec<ProviderSpec>,
    /// Pictures. Default `card`.
    pub image: Vec<ProviderSpec>,
    /// Clips. Default none.
    pub clip: Vec<ProviderSpec>,
    /// Music. Default `fluidsynth`.
    pub music: Vec<ProviderSpec>,
}

impl Default for ProvidersSettings {
    fn default() -> Self {
        Self {
            retry: RetryPolicy::default(),
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
        fn chain<C: crate::Capability>(
            retry: RetryPolicy,
            cache: &Option<Arc<ResultCache>>,
        ) -> Chain<C> {
            let chain = Chain::new(retry);
            match cache {
                Some(c) => chain.with_cache(c.clone()),
                None => chain,
            }
        }
        let err = |capability: &'static str, index: usize, spec: &ProviderSpec, e: String| {
            SettingsError {
                capability,
                index,
                kind: spec.kind.clone(),
                message: e,
            }
        };
        let unknown = |capability: &'static str, index: usize, spec: &ProviderSpec, known: &str| {
            err(
                capability,
                index,
                spec,
                format!("unknown provider kind for {capability}; use one of: {known}"),
            )
        };
        let pe = |e: ProviderError| e.message;

        let mut script = chain::<Script>(self.retry, &cache);
        for (i, spec) in self.script.iter().enumerate() {
            match spec.kind.as_str() {
                "text-planner" => script.push(Arc::new(planner::TextPlanner), spec.concurrency),
                _ => return Err(unknown("script", i, spec, "text-planner")),
            }
        }
        let mut speech = chain::<Narration>(self.retry, &cache);
        for (i, spec) in self.speech.iter().enumerate() {
            match spec.kind.as_str() {
                "espeak-ng" => {
                    let p = espeak::EspeakSpeech::detect(spec.binary.clone())
                        .map_err(|e| err("speech", i, spec, pe(e)))?;
                    speech.push(Arc::new(p), spec.concurrency)
                }
                _ => return Err(unknown("speech", i, spec, "espeak-ng")),
            }
        }
        let mut image = chain::<Picture>(self.retry, &cache);
        for (i, spec) in self.image.iter().enumerate() {
            match spec.kind.as_str() {
                "card" => image.push(Arc::new(card::CardImages), spec.concurrency),
                "media-folder" => {
                    let path = spec.path.as_ref().ok_or_else(|| {
                        err(
                            "image",
                            i,
                            spec,
                            "needs `path`, the folder of pictures".into(),
                        )
                    })?;
                    let folder =
                        media::MediaFolder::open(path).map_err(|e| err("image", i, spec, pe(e)))?;
                    image.push(Arc::new(folder), spec.concurrency)
                }
                _ => return Err(unknown("image", i, spec, "media-folder, card")),
            }
        }
        let clip = chain::<Motion>(self.retry, &cache);
        if let Some((i, spec)) = self.clip.iter().enumerate().next() {
            return Err(unknown("clip", i, spec, "(no local clip provider yet)"));
        }
        let mut music = chain::<Score>(self.retry, &cache);
        for (i, spec) in self.music.iter().enumerate() {
            match spec.kind.as_str() {
                "fluidsynth" => {
                    let p =
                        music::FluidSynthMusic::detect(spec.binary.clone(), spec.soundfont.clone())
                            .map_err(|e| err("music", i, spec, pe(e)))?;
                    music.push(Arc::new(p), spec.concurrency)
                }
                _ => return Err(unknown("music", i, spec, "fluidsynth")),
            }
        }
        Ok(Providers {
            script,
            speech,
            image,
            clip,
            music,
        })
    }
}
