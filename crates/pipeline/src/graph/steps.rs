//! The built-in provider steps: each builds its request with [`crate::requests`] (so both
//! executors ask for the same thing and hit the same cache entry), runs the capability's chain
//! and says how a failure ends the step.

use studio_providers::{ChainError, ErrorKind, Generated, PlanSource, Providers};

use super::{
    narration_seconds, Finished, Ran, SceneClip, StepError, StepInput, StepKey, StepKind,
    StepOutput,
};
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

/// What a clip step is told when clips are asked for and no clip provider is configured.
pub const NO_CLIP_PROVIDER: &str = "the style asks for clips ([pictures] clips = true) but \
    providers.clip names no clip provider; add one ([[providers.clip]] kind = \"replicate\") \
    or turn clips off";

fn scene_output(done: &[Finished], kind: StepKind, scene: usize) -> Option<&StepOutput> {
    done.iter()
        .find(|f| f.key == StepKey::scene(kind, scene))
        .map(|f| &f.output)
}

/// Sets the scene's picture in motion. A refusal (content policy) or a chain where no provider
/// can serve the scene keeps the still, saying why; a transient failure is worth another try.
pub(super) async fn clip(
    key: StepKey,
    input: StepInput<'_>,
    providers: &Providers,
) -> Result<Ran, StepError> {
    let i = input
        .scene
        .filter(|&i| i < input.plan.scenes.len())
        .ok_or_else(|| StepError::fatal(&key, "a clip step needs a scene of the plan"))?;
    if providers.clip.is_empty() {
        return Err(StepError::fatal(&key, NO_CLIP_PROVIDER));
    }
    let Some(StepOutput::Picture(image)) = scene_output(input.done, StepKind::Picture, i) else {
        return Err(StepError::fatal(&key, "the scene's picture is missing"));
    };
    let narration_s = match scene_output(input.done, StepKind::Narration, i) {
        Some(StepOutput::Narration(s)) => s.duration_s,
        _ => input.request.style.scenes.seconds,
    };
    let request = requests::clip_request(input.request, input.plan, i, image, narration_s)
        .map_err(|e| StepError::Failed {
            step: key.describe(),
            message: format!("reading the scene's picture {}: {e}", image.path.display()),
            retryable: true,
        })?;
    let kept = |why: String| {
        tracing::warn!(step = %key.describe(), reason = %why, "the scene keeps its still picture");
        Ok(Ran {
            output: StepOutput::Clip(SceneClip {
                clip: None,
                skipped: Some(why),
            }),
            provenance: None,
        })
    };
    match providers.clip.run(&request).await {
        Ok(g) => Ok(ran(g, |clip| {
            StepOutput::Clip(SceneClip {
                clip: Some(clip),
                skipped: None,
            })
        })),
        Err(ChainError::Invalid { provider, message }) => {
            kept(format!("{provider} refused the scene: {message}"))
        }
        Err(e @ ChainError::Exhausted { .. }) if !any_transient(&e) => kept(e.to_string()),
        Err(e) => Err(StepError::from_chain(&key, e)),
    }
}

/// Whether some provider of an exhausted chain failed transiently (worth another try).
fn any_transient(e: &ChainError) -> bool {
    match e {
        ChainError::Exhausted { failures, .. } => {
            failures.iter().any(|f| f.kind == ErrorKind::Transient)
        }
        _ => true,
    }
}
