//! What a run is expected to cost, before anything is spent ([`estimate`], `studio render
//! --estimate`): the planner's calls from the prompts it would send, the narration's characters
//! from the text (or the script length a topic asks for), each priced by the first provider of
//! its chain.

use serde::Serialize;
use studio_providers::local::planner::Outline;
use studio_providers::writer::{script_words, CHARS_PER_WORD};
use studio_providers::{Estimate, PlanSource, Providers};

use crate::request::{narration_budget, VideoRequest};
use crate::requests::plan_request;
use crate::PipelineError;

/// A run's expected cost.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunEstimate {
    /// Characters expected to be spoken (scenes and moral).
    pub characters: u64,
    /// One line per capability that costs something or may: planning, narration, pictures,
    /// clips.
    pub lines: Vec<Estimate>,
    /// The lines together, micro-USD.
    pub total_micro_usd: u64,
}

/// Estimates `request` on `providers` without calling any of them.
///
/// Errors: [`PipelineError::Input`] for a bad duration; [`PipelineError::Plan`] for text that
/// cannot be planned (empty, unknown section); [`PipelineError::NoLanguageModel`] for a topic no
/// provider writes from.
pub fn estimate(
    request: &VideoRequest,
    providers: &Providers,
) -> Result<RunEstimate, PipelineError> {
    let budget = narration_budget(request)?;
    let plan = plan_request(request, budget, providers.speech.seconds_per_letter_wpm());
    let mut narration_s = budget.unwrap_or(0.0);
    let characters = match &request.source {
        PlanSource::Text { text, section } => {
            let outline = Outline::of_text(text, section.as_deref())
                .map_err(|e| PipelineError::Plan(e.message))?;
            let texts = outline.texts();
            let chars: u64 = texts.iter().map(|s| s.chars().count() as u64).sum();
            let seconds = plan.pace.estimate(&texts);
            let moral_s = outline.moral_seconds(&plan.pace);
            let kept = match budget {
                Some(b) if seconds + moral_s > b => ((b - moral_s).max(0.0) / seconds).min(1.0),
                _ => 1.0,
            };
            narration_s = seconds * kept + moral_s;
            let moral = outline.moral.as_deref().map(|m| m.chars().count() as u64);
            (chars as f64 * kept).round() as u64 + moral.unwrap_or(0)
        }
        PlanSource::Topic { .. } => {
            if !providers.can_plan_topics() {
                return Err(PipelineError::NoLanguageModel);
            }
            (script_words(budget) as f64 * CHARS_PER_WORD).round() as u64
        }
    };
    // One picture a scene, scenes of the style's length.
    let pictures = (narration_s / request.style.scenes.seconds.max(1.0))
        .ceil()
        .max(1.0) as u64;
    let (width, height) = request.aspect.size();
    // A clip a scene when the style asks for them, each as long as a scene.
    let clips = match request.style.pictures.clips {
        true => {
            let scene_s = narration_s / pictures as f64;
            providers.clip.estimate(&vec![scene_s; pictures as usize])
        }
        false => None,
    };
    let lines: Vec<Estimate> = [
        providers.script.estimate(&plan),
        providers.speech.estimate(characters),
        providers.image.estimate(pictures, width, height),
        clips,
    ]
    .into_iter()
    .flatten()
    .collect();
    Ok(RunEstimate {
        characters,
        total_micro_usd: lines.iter().map(|l| l.cost_micro_usd).sum(),
        lines,
    })
}
