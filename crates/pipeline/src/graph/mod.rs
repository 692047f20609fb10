//! The step graph of a video, declared once. Both executors run it: the embedded `studio render`
//! ([`crate::run`], in one process, steps of a stage concurrently) and the ai-job service
//! (steps as Postgres rows with leases, announced on queues).
//!
//! | stage | kind | per | input → output |
//! | --- | --- | --- | --- |
//! | 0 | `plan` | job | the request → a [`ScenePlan`] |
//! | 1 | `narration` | scene, and the moral (no scene) | sentences → [`Speech`] with timings |
//! | 1 | `picture` | scene | the scene's terms → an [`Image`] at canvas size |
//! | 2 | `music` | job, when the request wants generated music | narration length → [`Music`] |
//! | 2 | `clip` | scene, when the style asks for clips | the scene's picture → a [`Clip`] |
//! | 3 | `timeline` | job | every output above → a [`studio_media::Timeline`] ([`assemble`]) |
//! | 4 | `render` | job | the timeline → `final.mp4`, captions, thumbnail |
//!
//! A step of stage *n* starts once every step of the lower stages succeeded, and is given their
//! outputs ([`StepInput::done`]). The plan decides the rest ([`Graph::after_plan`]); the timeline
//! step adds the render. Kinds keep their stored names ([`StepKind::name`]) for good: ai-job's
//! rows carry them. More kinds join the graph as [`Extension`]s ([`Graph::with`]), which both
//! executors run without knowing them.

mod assemble;
mod steps;
pub mod testing;

use std::path::PathBuf;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use studio_providers::{
    ChainError, Clip, ErrorKind, Image, ImageSource, Music, Provenance, Providers, ScenePlan,
    Speech,
};

pub use assemble::{assemble, credit_from_sidecar, narration_seconds, Assembly};
pub use steps::NO_CLIP_PROVIDER;

use crate::request::VideoRequest;

/// What a user hears when a topic reaches a deployment with no script writer that writes from
/// topics.
pub const NO_LANGUAGE_MODEL: &str = "a topic needs a language model to write the script, and \
    none is configured here: the local text planner only plans from given text (providers.script \
    has no writer that takes topics); give the words to narrate instead";

/// A kind of step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StepKind {
    /// Plans scenes from the text.
    Plan,
    /// Speaks one scene's sentences, or the moral.
    Narration,
    /// Finds or draws one scene's picture.
    Picture,
    /// Composes the music bed.
    Music,
    /// Sets one scene's picture in motion.
    Clip,
    /// Composes the timeline from everything before it.
    Timeline,
    /// Renders the timeline (a media-render worker in the platform).
    Render,
    /// A kind added with [`Graph::with`], by its name.
    Extension(&'static str),
}

/// Who runs a kind in the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runner {
    /// ai-job's step workers (queue `studio.steps`).
    StepWorker,
    /// media-render workers (queue `studio.render`).
    RenderWorker,
}

impl StepKind {
    /// The kinds every graph has, in stage order.
    pub const BUILT_IN: [StepKind; 7] = [
        StepKind::Plan,
        StepKind::Narration,
        StepKind::Picture,
        StepKind::Music,
        StepKind::Clip,
        StepKind::Timeline,
        StepKind::Render,
    ];

    /// The stored name: ai-job's `steps.kind`, metrics labels, progress messages.
    pub fn name(self) -> &'static str {
        match self {
            StepKind::Plan => "plan",
            StepKind::Narration => "narration",
            StepKind::Picture => "picture",
            StepKind::Music => "music",
            StepKind::Clip => "clip",
            StepKind::Timeline => "timeline",
            StepKind::Render => "render",
            StepKind::Extension(name) => name,
        }
    }

    /// The built-in kind stored as `name`; `None` for anything else (an extension's name among
    /// them: ask [`Graph::kind`]).
    pub fn built_in(name: &str) -> Option<StepKind> {
        StepKind::BUILT_IN.into_iter().find(|k| k.name() == name)
    }

    /// Who runs it in the platform.
    pub fn runner(self) -> Runner {
        match self {
            StepKind::Render => Runner::RenderWorker,
            _ => Runner::StepWorker,
        }
    }

    /// The name in `report.json` (`plan`, `speech`, `image`, `music`, `clip`, an extension's
    /// name).
    pub fn report_name(self) -> &'static str {
        match self {
            StepKind::Narration => "speech",
            StepKind::Picture => "image",
            other => other.name(),
        }
    }

    /// Its stage among the built-in kinds; an extension's is its own ([`Graph::stage`]).
    fn built_in_stage(self) -> Option<u32> {
        Some(match self {
            StepKind::Plan => 0,
            StepKind::Narration | StepKind::Picture => 1,
            StepKind::Music | StepKind::Clip => 2,
            StepKind::Timeline => 3,
            StepKind::Render => 4,
            StepKind::Extension(_) => return None,
        })
    }
}

impl std::fmt::Display for StepKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One step of a job: its kind and, for per-scene kinds, its scene (0-based; `None` for the
/// moral's narration and for per-job kinds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StepKey {
    /// Kind.
    pub kind: StepKind,
    /// Scene index, 0-based.
    pub scene: Option<usize>,
}

impl StepKey {
    /// A per-job step of `kind`.
    pub fn job(kind: StepKind) -> StepKey {
        StepKey { kind, scene: None }
    }

    /// A step of `kind` for scene `index` (0-based).
    pub fn scene(kind: StepKind, index: usize) -> StepKey {
        StepKey {
            kind,
            scene: Some(index),
        }
    }

    /// What the step does, for messages: `planning`, `narration of scene 3`, `narration of the
    /// moral`, `picture for scene 2`, `music`.
    pub fn describe(&self) -> String {
        match (self.kind, self.scene) {
            (StepKind::Plan, _) => "planning".into(),
            (StepKind::Narration, Some(i)) => format!("narration of scene {}", i + 1),
            (StepKind::Narration, None) => "narration of the moral".into(),
            (StepKind::Picture, Some(i)) => format!("picture for scene {}", i + 1),
            (StepKind::Clip, Some(i)) => format!("clip for scene {}", i + 1),
            (kind, Some(i)) => format!("{kind} of scene {}", i + 1),
            (kind, None) => kind.name().into(),
        }
    }
}

/// What a step is given.
#[derive(Debug, Clone, Copy)]
pub struct StepInput<'a> {
    /// The whole request.
    pub request: &'a VideoRequest,
    /// The plan.
    pub plan: &'a ScenePlan,
    /// The step's scene, 0-based.
    pub scene: Option<usize>,
    /// Outputs of every finished step of lower stages.
    pub done: &'a [Finished],
}

/// A finished step and its output.
#[derive(Debug, Clone)]
pub struct Finished {
    /// Which step.
    pub key: StepKey,
    /// What it made.
    pub output: StepOutput,
}

/// What a step made. Files are named by path: local files in the embedded run, object keys once
/// ai-job uploaded them ([`StepOutput::files_mut`]).
#[derive(Debug, Clone, PartialEq)]
pub enum StepOutput {
    /// The plan.
    Plan(ScenePlan),
    /// A narration.
    Narration(Speech),
    /// A picture.
    Picture(Image),
    /// The music bed.
    Music(Music),
    /// A scene's clip, or why the scene keeps its still.
    Clip(SceneClip),
    /// An extension's output.
    Extension(serde_json::Value),
}

/// What a clip step made: the clip, or why the scene keeps its still picture (the clip
/// providers refused the scene, or none could serve it). Stored as `{"clip": …}` or
/// `{"clip": null, "skipped": "…"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SceneClip {
    /// The clip.
    pub clip: Option<Clip>,
    /// Why there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

/// The stored JSON shapes of the outputs, as ai-job's rows have held them from the start.
#[derive(Serialize, Deserialize)]
struct PlanJson {
    plan: ScenePlan,
}
#[derive(Serialize, Deserialize)]
struct NarrationJson {
    speech: Speech,
}
#[derive(Serialize, Deserialize)]
struct PictureJson {
    image: Image,
}
#[derive(Serialize, Deserialize)]
struct MusicJson {
    music: Music,
}

impl StepOutput {
    /// The output as stored: `{"plan": …}`, `{"speech": …}`, `{"image": …}`, `{"music": …}`, or
    /// an extension's own JSON.
    pub fn to_json(&self) -> serde_json::Value {
        let value = match self {
            StepOutput::Plan(plan) => serde_json::to_value(PlanJson { plan: plan.clone() }),
            StepOutput::Narration(s) => serde_json::to_value(NarrationJson { speech: s.clone() }),
            StepOutput::Picture(i) => serde_json::to_value(PictureJson { image: i.clone() }),
            StepOutput::Music(m) => serde_json::to_value(MusicJson { music: m.clone() }),
            StepOutput::Clip(c) => serde_json::to_value(c),
            StepOutput::Extension(v) => Ok(v.clone()),
        };
        value.unwrap_or_default()
    }

    /// Reads a stored output of `kind` back. Errors (the JSON parser's message) when it does not
    /// have the kind's shape; kinds whose output the executor keeps (`timeline`, `render`) have
    /// none here.
    pub fn from_json(kind: StepKind, value: serde_json::Value) -> Result<StepOutput, String> {
        let e = |e: serde_json::Error| e.to_string();
        Ok(match kind {
            StepKind::Plan => {
                StepOutput::Plan(serde_json::from_value::<PlanJson>(value).map_err(e)?.plan)
            }
            StepKind::Narration => StepOutput::Narration(
                serde_json::from_value::<NarrationJson>(value)
                    .map_err(e)?
                    .speech,
            ),
            StepKind::Picture => StepOutput::Picture(
                serde_json::from_value::<PictureJson>(value)
                    .map_err(e)?
                    .image,
            ),
            StepKind::Music => {
                StepOutput::Music(serde_json::from_value::<MusicJson>(value).map_err(e)?.music)
            }
            StepKind::Clip => StepOutput::Clip(serde_json::from_value(value).map_err(e)?),
            StepKind::Extension(_) => StepOutput::Extension(value),
            StepKind::Timeline | StepKind::Render => {
                return Err(format!("{kind} outputs are kept by the executor"))
            }
        })
    }

    /// The plan, when this is one.
    pub fn into_plan(self) -> Option<ScenePlan> {
        match self {
            StepOutput::Plan(plan) => Some(plan),
            _ => None,
        }
    }

    /// Every file the output names, with the artifact name to store it under
    /// (`narration.wav`, `picture.png`, `music.wav`), so an executor can move it and put the new
    /// place in.
    pub fn files_mut(&mut self) -> Vec<(&mut PathBuf, String)> {
        match self {
            StepOutput::Narration(s) => vec![(&mut s.audio, "narration.wav".into())],
            StepOutput::Picture(i) => {
                let name = format!("picture.{}", extension(&i.path, "png"));
                vec![(&mut i.path, name)]
            }
            StepOutput::Music(m) => vec![(&mut m.path, "music.wav".into())],
            StepOutput::Clip(SceneClip { clip: Some(c), .. }) => {
                let name = format!("clip.{}", extension(&c.path, "mp4"));
                vec![(&mut c.path, name)]
            }
            StepOutput::Plan(_) | StepOutput::Clip(_) | StepOutput::Extension(_) => Vec::new(),
        }
    }

    /// What came out, in a few words, for reports.
    pub fn detail(&self, key: &StepKey) -> String {
        match self {
            StepOutput::Plan(p) => format!(
                "{} scenes, {} of {} sentences",
                p.scenes.len(),
                p.sentences_kept,
                p.sentences_total
            ),
            StepOutput::Narration(s) if key.scene.is_none() => {
                format!("moral, {:.2} s", s.duration_s)
            }
            StepOutput::Narration(s) => {
                format!("{:.2} s, {} sentences", s.duration_s, s.sentences.len())
            }
            StepOutput::Picture(i) => match &i.source {
                ImageSource::File { name, matched } => {
                    format!("{name} (matched {})", matched.join(", "))
                }
                ImageSource::Generated => format!("generated {}x{}", i.width, i.height),
                ImageSource::Stock {
                    library,
                    photographer,
                    ..
                } => format!("{library} photo by {photographer}"),
                ImageSource::Model { seed, .. } => match seed {
                    Some(seed) => format!("drawn {}x{}, seed {seed}", i.width, i.height),
                    None => format!("drawn {}x{}", i.width, i.height),
                },
            },
            StepOutput::Music(m) => format!("{} bpm, {:.1} s", m.tempo_bpm, m.duration_s),
            StepOutput::Clip(SceneClip { clip: Some(c), .. }) => {
                format!("{:.1} s clip, {}x{}", c.duration_s, c.width, c.height)
            }
            StepOutput::Clip(SceneClip { skipped, .. }) => format!(
                "kept the still: {}",
                skipped.as_deref().unwrap_or("no clip")
            ),
            StepOutput::Extension(v) => {
                let text = v.to_string();
                text.chars().take(120).collect()
            }
        }
    }
}

/// A file's extension in lowercase, or `default` when it has none.
pub(crate) fn extension(path: &std::path::Path, default: &str) -> String {
    path.extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_else(|| default.to_owned())
}

/// A step that ran: its output and, for provider steps, where it came from and what it cost.
#[derive(Debug, Clone)]
pub struct Ran {
    /// The output.
    pub output: StepOutput,
    /// The provider call behind it (none for extensions that call no provider chain).
    pub provenance: Option<Provenance>,
}

/// Why a step failed, and whether another attempt could do better.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StepError {
    /// The text cannot be planned (empty, an unknown section): the user must change it.
    #[error("planning: {0}")]
    Unplannable(String),
    /// A topic, and no script writer that writes from topics.
    #[error("{NO_LANGUAGE_MODEL}")]
    NoLanguageModel,
    /// The step's providers gave up.
    #[error("{step}: {message}")]
    Failed {
        /// What the step was doing ([`StepKey::describe`]).
        step: String,
        /// Why, as the providers said.
        message: String,
        /// Worth another attempt (a transient provider error, the cache unreachable).
        retryable: bool,
    },
}

impl StepError {
    /// Whether another attempt could succeed.
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            StepError::Failed {
                retryable: true,
                ..
            }
        )
    }

    /// A final failure of `key` with `message`.
    pub fn fatal(key: &StepKey, message: impl Into<String>) -> StepError {
        StepError::Failed {
            step: key.describe(),
            message: message.into(),
            retryable: false,
        }
    }

    /// How a provider chain's error ends step `key`: a refused request is final; a chain that
    /// gave up after a transient failure, or a cache it could not reach, is worth another try.
    pub fn from_chain(key: &StepKey, e: ChainError) -> StepError {
        let retryable = match &e {
            ChainError::Invalid { .. } => false,
            ChainError::Exhausted { failures, .. } => {
                failures.iter().any(|f| f.kind == ErrorKind::Transient)
            }
            ChainError::Cache(_) => true,
        };
        StepError::Failed {
            step: key.describe(),
            message: e.to_string(),
            retryable,
        }
    }
}

/// A kind of step added to a [`Graph`]: both executors run it at its stage, after every step of
/// the lower stages, and record its output; neither needs to know it.
pub trait Extension: Send + Sync + 'static {
    /// Its stored name; must differ from every other kind's.
    fn name(&self) -> &'static str;
    /// Its stage, between the plan's and the timeline's (exclusive).
    fn stage(&self) -> u32;
    /// The steps of this kind a plan needs: one per scene index given, `None` for one per job.
    fn instances(&self, request: &VideoRequest, plan: &ScenePlan) -> Vec<Option<usize>>;
    /// Runs one step.
    fn run<'a>(
        &'a self,
        input: StepInput<'a>,
        providers: &'a Providers,
    ) -> BoxFuture<'a, Result<serde_json::Value, StepError>>;
}

/// The step graph: the built-in kinds and any extensions.
#[derive(Clone, Default)]
pub struct Graph {
    extensions: Vec<Arc<dyn Extension>>,
}

impl std::fmt::Debug for Graph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<_> = self.extensions.iter().map(|e| e.name()).collect();
        f.debug_struct("Graph").field("extensions", &names).finish()
    }
}

impl Graph {
    /// The graph of the table above.
    pub fn standard() -> Graph {
        Graph::default()
    }

    /// The graph with `extension` added.
    ///
    /// Panics when its name is taken or its stage is not between the plan's and the
    /// timeline's: a programming error, found the first time the graph is built.
    pub fn with(mut self, extension: impl Extension) -> Graph {
        let name = extension.name();
        assert!(
            self.kind(name).is_none(),
            "step kind {name:?} is already in the graph"
        );
        let (plan, timeline) = (self.stage(StepKind::Plan), self.stage(StepKind::Timeline));
        assert!(
            (plan + 1..timeline).contains(&extension.stage()),
            "step kind {name:?} must have a stage in {}..{timeline}",
            plan + 1
        );
        self.extensions.push(Arc::new(extension));
        self
    }

    /// The kind stored as `name`; `None` when this graph has no such kind.
    pub fn kind(&self, name: &str) -> Option<StepKind> {
        StepKind::built_in(name).or_else(|| {
            self.extensions
                .iter()
                .find(|e| e.name() == name)
                .map(|e| StepKind::Extension(e.name()))
        })
    }

    /// The stage of `kind`: steps of a stage start once every step of lower stages succeeded.
    /// An unknown extension sorts just before the timeline.
    pub fn stage(&self, kind: StepKind) -> u32 {
        match kind {
            StepKind::Extension(name) => self
                .extension(name)
                .map(|e| e.stage())
                .unwrap_or(StepKind::Timeline.built_in_stage().unwrap_or_default() - 1),
            built_in => built_in.built_in_stage().unwrap_or_default(),
        }
    }

    fn extension(&self, name: &str) -> Option<&Arc<dyn Extension>> {
        self.extensions.iter().find(|e| e.name() == name)
    }

    /// The steps a plan needs, in the order their results are reported: a narration and a
    /// picture per scene, the moral's narration, the music (when the request wants it
    /// generated), a clip per scene (when the style asks for clips), every extension's, then
    /// the timeline. The timeline adds the render.
    pub fn after_plan(&self, request: &VideoRequest, plan: &ScenePlan) -> Vec<StepKey> {
        let mut steps = Vec::new();
        for i in 0..plan.scenes.len() {
            steps.push(StepKey::scene(StepKind::Narration, i));
            steps.push(StepKey::scene(StepKind::Picture, i));
        }
        if plan.moral.is_some() {
            steps.push(StepKey::job(StepKind::Narration));
        }
        if matches!(request.music, crate::MusicChoice::Generate) {
            steps.push(StepKey::job(StepKind::Music));
        }
        if request.style.pictures.clips {
            steps.extend((0..plan.scenes.len()).map(|i| StepKey::scene(StepKind::Clip, i)));
        }
        for e in &self.extensions {
            let kind = StepKind::Extension(e.name());
            steps.extend(
                e.instances(request, plan)
                    .into_iter()
                    .map(|scene| StepKey { kind, scene }),
            );
        }
        steps.push(StepKey::job(StepKind::Timeline));
        steps
    }

    /// Runs the plan step.
    ///
    /// Errors: [`StepError::Unplannable`] for text that cannot be planned,
    /// [`StepError::NoLanguageModel`] for a topic no provider writes from, and
    /// [`StepError::Failed`] when the chain gives up otherwise.
    pub async fn plan(
        &self,
        request: &VideoRequest,
        providers: &Providers,
    ) -> Result<Ran, StepError> {
        steps::plan(request, providers).await
    }

    /// Runs step `key` after the plan with `input`. The timeline and the render are the
    /// executor's own (they place files): for them, and for kinds this graph lacks, a final
    /// [`StepError::Failed`] saying so.
    pub async fn run(
        &self,
        key: StepKey,
        input: StepInput<'_>,
        providers: &Providers,
    ) -> Result<Ran, StepError> {
        match key.kind {
            StepKind::Narration => steps::narration(key, input, providers).await,
            StepKind::Picture => steps::picture(key, input, providers).await,
            StepKind::Music => steps::music(key, input, providers).await,
            StepKind::Clip => steps::clip(key, input, providers).await,
            StepKind::Extension(name) => {
                let e = self.extension(name).ok_or_else(|| {
                    StepError::fatal(&key, "this version of Studio does not have this kind")
                })?;
                Ok(Ran {
                    output: StepOutput::Extension(e.run(input, providers).await?),
                    provenance: None,
                })
            }
            StepKind::Plan | StepKind::Timeline | StepKind::Render => Err(StepError::fatal(
                &key,
                "is run by the executor, not as a provider step",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_kinds_keep_their_stored_names_and_stages() {
        let graph = Graph::standard();
        let stored: Vec<_> = StepKind::BUILT_IN
            .iter()
            .map(|k| (k.name(), graph.stage(*k)))
            .collect();
        assert_eq!(
            stored,
            [
                ("plan", 0),
                ("narration", 1),
                ("picture", 1),
                ("music", 2),
                ("clip", 2),
                ("timeline", 3),
                ("render", 4)
            ]
        );
        for kind in StepKind::BUILT_IN {
            assert_eq!(graph.kind(kind.name()), Some(kind));
        }
        assert_eq!(graph.kind("critic"), None);
        assert_eq!(StepKind::Render.runner(), Runner::RenderWorker);
        assert_eq!(StepKind::Music.runner(), Runner::StepWorker);
    }

    #[test]
    fn chain_errors_say_whether_to_retry() {
        let key = StepKey::scene(StepKind::Picture, 2);
        let invalid = ChainError::Invalid {
            provider: "card".into(),
            message: "no".into(),
        };
        let e = StepError::from_chain(&key, invalid);
        assert!(!e.retryable());
        assert_eq!(e.to_string(), "picture for scene 3: no");
        assert_eq!(
            StepKey::job(StepKind::Narration).describe(),
            "narration of the moral"
        );
    }
}
