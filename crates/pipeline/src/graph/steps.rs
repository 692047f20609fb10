//! The built-in provider steps: each builds its request with [`crate::requests`] (so both
//! executors ask for the same thing and hit the same cache entry), runs the capability's chain
//! and says how a failure ends the step.

use studio_providers::{ChainError, Generated, PlanSource, Providers};

use super::{narration_seconds, Ran, StepError, StepInput, StepKey, StepKind, StepOutput};
use crate::request::{narration_budget, VideoRequest};
use crate::requests;

fn ran<T>(g: Generated<T>, wrap: impl FnOnce(T) -> StepOutput) -> Ran {
    Ran {
        output: wrap(g.output),
        provenance: Some(g.provenance),
    }
}

/// Plans the video. A topic that no provider of the chain writes from is
/// [`StepError::NoLanguageModel`], whatever the providers said.
pub(super) async fn plan(request: &VideoRequest, providers: &Providers) -> Result<Ran, StepError> {
    let key = StepKey::job(StepKind::Plan);
    let budget = narration_budget(request).map_err(|e| StepError::fatal(&key, e.to_string()))?;
    let topic = matches!(request.source, PlanSource::Topic { .. });
    if topic && !providers.can_plan_topics() {
        return Err(StepError::NoLanguageModel);
    }
    match providers
        .script
        .run(&requests::plan_request(
            request,
            budget,
            providers.speech.seconds_per_letter_wpm(),
        ))
        .await
    {
        Ok(g) => Ok(ran(g, StepOutput::Plan)),
        Err(ChainError::Invalid { message, .. }) => Err(StepError::Unplannable(message)),
        Err(e) => Err(StepError::from_chain(&key, e)),
    }
}

/// Speaks the scene's sentences, or the moral when the step has no scene.
pub(super) async fn narration(
    key: StepKey,
    input: StepInput<'_>,
    providers: &Providers,
) -> Result<Ran, StepError> {
    let sentences = match input.scene {
        Some(i) => input
            .plan
            .scenes
            .get(i)
            .ok_or_else(|| StepError::fatal(&key, format!("the plan has no scene {}", i + 1)))?
            .sentences
            .clone(),
        None => input.plan.moral.iter().cloned().collect(),
    };
    let g = providers
        .speech
        .run(&requests::speech_request(input.request, sentences))
        .await
        .map_err(|e| StepError::from_chain(&key, e))?;
    Ok(ran(g, StepOutput::Narration))
}

/// Finds or draws the scene's picture.
pub(super) async fn picture(
    key: StepKey,
    input: StepInput<'_>,
    providers: &Providers,
) -> Result<Ran, StepError> {
    let i = input
        .scene
        .filter(|&i| i < input.plan.scenes.len())
        .ok_or_else(|| StepError::fatal(&key, "a picture step needs a scene of the plan"))?;
    let g = providers
        .image
        .run(&requests::image_request(input.request, input.plan, i))
        .await
        .map_err(|e| StepError::from_chain(&key, e))?;
    Ok(ran(g, StepOutput::Picture))
}

/// Composes a music bed as long as every narration (the finished steps) plus the cards.
pub(super) async fn music(
    key: StepKey,
    input: StepInput<'_>,
    providers: &Providers,
) -> Result<Ran, StepError> {
    let narration_s = narration_seconds(input.done);
    let g = providers
        .music
        .run(&requests::music_request(
            input.request,
            input.plan,
            narration_s,
        ))
        .await
        .map_err(|e| StepError::from_chain(&key, e))?;
    Ok(ran(g, StepOutput::Music))
}
