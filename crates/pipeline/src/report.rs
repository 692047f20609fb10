//! What an embedded run did, written to `report.json`: [`PipelineReport`] with one
//! [`StepReport`] per provider step.

use serde::Serialize;
use studio_media::RenderReport;
use studio_providers::{Image, ImageSource, Skipped};

use crate::graph::{Ran, SceneClip, StepKey, StepKind, StepOutput};

/// One provider step in the report.
#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    /// `plan`, `speech`, `image`, `music` or an extension's name ([`StepKind::report_name`]).
    pub step: &'static str,
    /// Scene number (1-based) for per-scene steps; 0 for the end card's moral.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scene: Option<usize>,
    /// Provider that produced the result.
    pub provider: String,
    /// Its model and version.
    pub model: String,
    /// Cache key.
    pub request_hash: String,
    /// Served from the cache without calling a provider.
    pub cache_hit: bool,
    /// Cost, micro-USD.
    pub cost_micro_usd: u64,
    /// Wall time, seconds.
    pub seconds: f64,
    /// Provider calls made by this run.
    pub attempts: u32,
    /// Providers passed over, and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<Skipped>,
    /// What came out, in a few words.
    pub detail: String,
    /// For a picture a model drew, or a clip: the prompt sent, so the scene can be drawn again exactly
    /// (or with another `seed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// The seed sent with that prompt, for models that take one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

impl StepReport {
    /// The report of step `key`, which produced `ran`.
    pub fn new(key: &StepKey, ran: &Ran) -> StepReport {
        let scene = match (key.kind, key.scene) {
            (_, Some(i)) => Some(i + 1),
            (StepKind::Narration, None) => Some(0),
            _ => None,
        };
        let p = ran.provenance.clone().unwrap_or_default();
        let (prompt, seed) = match &ran.output {
            StepOutput::Picture(Image {
                source: ImageSource::Model { prompt, seed, .. },
                ..
            }) => (Some(prompt.clone()), *seed),
            StepOutput::Clip(SceneClip {
                clip: Some(clip), ..
            }) => (Some(clip.prompt.clone()), clip.seed),
            _ => (None, None),
        };
        StepReport {
            step: key.kind.report_name(),
            scene,
            provider: if p.provider.is_empty() {
                key.kind.name().to_owned()
            } else {
                p.provider
            },
            model: p.model,
            request_hash: p.request_hash,
            cache_hit: p.cache_hit,
            cost_micro_usd: p.cost_micro_usd,
            seconds: p.seconds,
            attempts: p.attempts,
            skipped: p.skipped,
            detail: ran.output.detail(key),
            prompt,
            seed,
        }
    }
}

/// Time spent per stage, seconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StageTimes {
    /// Planning.
    pub plan_s: f64,
    /// Speech, summed over scenes (they run concurrently with pictures).
    pub speech_s: f64,
    /// Pictures, summed over scenes.
    pub visuals_s: f64,
    /// Wall time of the per-scene stage.
    pub scenes_wall_s: f64,
    /// Music.
    pub music_s: f64,
    /// Clips, summed over scenes (they run concurrently with the music).
    pub clips_s: f64,
    /// Render.
    pub render_s: f64,
    /// The whole run.
    pub total_s: f64,
}

/// A picture from the user's media folder used in a scene.
#[derive(Debug, Clone, Serialize)]
pub struct MediaUse {
    /// Scene number, 1-based.
    pub scene: usize,
    /// File name in the media folder.
    pub file: String,
    /// Scene terms that matched.
    pub matched: Vec<String>,
}

impl MediaUse {
    /// The media-folder picture of step `key`, if that is what it produced.
    pub fn of(key: &StepKey, output: &StepOutput) -> Option<MediaUse> {
        match (output, key.scene) {
            (StepOutput::Picture(image), Some(i)) => match &image.source {
                ImageSource::File { name, matched } => Some(MediaUse {
                    scene: i + 1,
                    file: name.clone(),
                    matched: matched.clone(),
                }),
                ImageSource::Generated | ImageSource::Model { .. } | ImageSource::Stock { .. } => {
                    None
                }
            },
            _ => None,
        }
    }
}

/// What a run did, written to `report.json`.
#[derive(Debug, Clone, Serialize)]
pub struct PipelineReport {
    /// Video title, the subtitle included ([`studio_providers::ScenePlan::full_title`]).
    pub title: String,
    /// Style preset.
    pub style: String,
    /// Aspect preset.
    pub aspect: String,
    /// Length of the video, seconds.
    pub duration_s: f64,
    /// Narration, seconds (all voice clips).
    pub narration_s: f64,
    /// Every provider step, in order.
    pub steps: Vec<StepReport>,
    /// Steps served from the cache.
    pub cache_hits: usize,
    /// Provider calls made by this run.
    pub provider_calls: u64,
    /// Total cost of the results used, micro-USD.
    pub cost_micro_usd: u64,
    /// Pictures from the media folder, by scene.
    pub media_used: Vec<MediaUse>,
    /// Credit lines shown on the end card.
    pub credits: Vec<String>,
    /// Time per stage.
    pub stages: StageTimes,
    /// The render engine's report.
    pub render: RenderReport,
    /// Files written to the output folder.
    pub outputs: Vec<String>,
}
