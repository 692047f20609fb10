//! One trait per capability, and the [`Capability`] descriptor that lets a single
//! [`crate::Chain`] and [`crate::cache`] serve all of them.
//!
//! A provider writes its files into the scratch folder it is given (`out`) and returns paths
//! inside it; the cache moves that folder into place once the call succeeds, so a result is
//! either wholly stored or not at all.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use futures_util::future::BoxFuture;
use serde::{de::DeserializeOwned, Serialize};

use crate::error::ProviderError;
use crate::types::*;

/// A provider's identity, part of every cache key.
pub trait Describe: Send + Sync {
    /// Provider name as in settings (`espeak-ng`, `text-planner`, …).
    fn name(&self) -> &str;
    /// Model and version, plus anything else that changes results (a folder's digest).
    fn model(&self) -> String;
}

/// A result and what it cost.
#[derive(Debug, Clone, PartialEq)]
pub struct Produced<T> {
    /// The result.
    pub output: T,
    /// What the call cost, micro-USD (0 for local providers).
    pub cost_micro_usd: u64,
}

impl<T> Produced<T> {
    /// A result that cost nothing (a local provider).
    pub fn free(output: T) -> Self {
        Self {
            output,
            cost_micro_usd: 0,
        }
    }
}

/// Files a result points at, so the cache can move them.
pub trait Artifacts {
    /// Every file path in the result.
    fn artifacts_mut(&mut self) -> Vec<&mut PathBuf>;
}

impl Artifacts for ScenePlan {
    fn artifacts_mut(&mut self) -> Vec<&mut PathBuf> {
        Vec::new()
    }
}
impl Artifacts for Speech {
    fn artifacts_mut(&mut self) -> Vec<&mut PathBuf> {
        vec![&mut self.audio]
    }
}
impl Artifacts for Image {
    fn artifacts_mut(&mut self) -> Vec<&mut PathBuf> {
        vec![&mut self.path]
    }
}
impl Artifacts for Clip {
    fn artifacts_mut(&mut self) -> Vec<&mut PathBuf> {
        vec![&mut self.path]
    }
}
impl Artifacts for Music {
    fn artifacts_mut(&mut self) -> Vec<&mut PathBuf> {
        vec![&mut self.path]
    }
}

/// Turns text or a topic into a [`ScenePlan`].
#[async_trait]
pub trait ScriptWriter: Describe {
    /// Plans a video. Errors: `Invalid` for an unknown section or empty text; `Unavailable`
    /// when this writer cannot serve the source kind (a topic for an extractive planner).
    async fn plan(
        &self,
        request: &PlanRequest,
        out: &Path,
    ) -> Result<Produced<ScenePlan>, ProviderError>;

    /// Whether this writer can write a script from a topic alone ([`PlanSource::Topic`]), not
    /// only plan given text. Default false.
    fn writes_from_topics(&self) -> bool {
        false
    }

    /// Expected cost of planning `request`, micro-USD, computed without calling anyone.
    /// Default 0 (local writers).
    fn estimate(&self, _request: &PlanRequest) -> u64 {
        0
    }
}

/// Turns sentences into speech with per-sentence timings.
#[async_trait]
pub trait SpeechSynth: Describe {
    /// Speaks `request.sentences` into one WAV under `out`.
    async fn synthesize(
        &self,
        request: &SpeechRequest,
        out: &Path,
    ) -> Result<Produced<Speech>, ProviderError>;

    /// This voice's pace: seconds of speech per letter at 1 word per minute (divide by the words
    /// per minute asked for), used to size scenes and budgets before any audio exists. `None`
    /// when unmeasured (the narration is then sized by espeak-ng's pace).
    fn seconds_per_letter_wpm(&self) -> Option<f64> {
        None
    }

    /// Expected cost of speaking `characters` characters, micro-USD. Default 0 (local voices).
    fn estimate(&self, _characters: u64) -> u64 {
        0
    }
}

/// Finds or draws a picture for a scene.
#[async_trait]
pub trait ImageGen: Describe {
    /// Writes one picture under `out`. `Unavailable` when nothing fits (a media folder without
    /// a match).
    async fn image(
        &self,
        request: &ImageRequest,
        out: &Path,
    ) -> Result<Produced<Image>, ProviderError>;

    /// Expected cost of one picture for a `width`×`height` canvas, micro-USD, computed without
    /// calling anyone. Default 0 (cards, media folders).
    fn estimate(&self, _width: u32, _height: u32) -> u64 {
        0
    }
}

/// Makes a short video clip from a prompt or a still.
#[async_trait]
pub trait ClipGen: Describe {
    /// Writes one clip under `out`. `Invalid` when the vendor refuses the prompt or the still
    /// (content policy); `Unavailable` when this provider cannot animate the request (no still).
    async fn clip(
        &self,
        request: &ClipRequest,
        out: &Path,
    ) -> Result<Produced<Clip>, ProviderError>;

    /// Expected cost of one clip for a scene of `duration_s` seconds, micro-USD, computed
    /// without calling anyone. Default 0.
    fn estimate(&self, _duration_s: f64) -> u64 {
        0
    }
}

/// Makes a music bed.
#[async_trait]
pub trait MusicGen: Describe {
    /// Writes one piece at least `request.duration_s` long under `out`.
    async fn music(
        &self,
        request: &MusicRequest,
        out: &Path,
    ) -> Result<Produced<Music>, ProviderError>;
}

/// Ties a capability's trait to its request and result types.
pub trait Capability: Send + Sync + 'static {
    /// Name in cache paths, settings and reports (`script`, `speech`, `image`, `clip`, `music`).
    const NAME: &'static str;
    /// What the caller asks for.
    type Request: Serialize + Send + Sync;
    /// What comes back.
    type Output: Serialize + DeserializeOwned + Artifacts + Clone + Send + Sync;
    /// The capability's trait object.
    type Provider: ?Sized + Describe;
    /// Calls `provider`.
    fn call<'a>(
        provider: &'a Self::Provider,
        request: &'a Self::Request,
        out: &'a Path,
    ) -> BoxFuture<'a, Result<Produced<Self::Output>, ProviderError>>;
}

macro_rules! capability {
    ($(#[$doc:meta])* $marker:ident, $name:literal, $trait:ident, $req:ty, $out:ty, $method:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy)]
        pub struct $marker;
        impl Capability for $marker {
            const NAME: &'static str = $name;
            type Request = $req;
            type Output = $out;
            type Provider = dyn $trait;
            fn call<'a>(
                provider: &'a Self::Provider,
                request: &'a Self::Request,
                out: &'a Path,
            ) -> BoxFuture<'a, Result<Produced<Self::Output>, ProviderError>> {
                provider.$method(request, out)
            }
        }
    };
}

capability!(
    /// Planning: [`ScriptWriter`].
    Script, "script", ScriptWriter, PlanRequest, ScenePlan, plan
);
capability!(
    /// Narration: [`SpeechSynth`].
    Narration, "speech", SpeechSynth, SpeechRequest, Speech, synthesize
);
capability!(
    /// Pictures: [`ImageGen`].
    Picture, "image", ImageGen, ImageRequest, Image, image
);
capability!(
    /// Clips: [`ClipGen`].
    Motion, "clip", ClipGen, ClipRequest, Clip, clip
);
capability!(
    /// Music: [`MusicGen`].
    Score, "music", MusicGen, MusicRequest, Music, music
);
