//! What each step kind does. A job starts with one `plan` step; the plan adds the rest:
//!
//! | stage | kind | per | does |
//! | --- | --- | --- | --- |
//! | 0 | `plan` | job | plans scenes from the text |
//! | 1 | `narration` | scene, and the moral (no scene) | speech + sentence timings |
//! | 1 | `picture` | scene | a picture at canvas size |
//! | 2 | `music` | job (when the project wants music) | a music bed as long as the video |
//! | 3 | `timeline` | job | writes the timeline and adds the render step |
//! | 4 | `render` | job | run by a media-render worker |
//!
//! Every artifact is stored under `projects/{p}/jobs/{j}/steps/{s}/`; a step's output (JSON in
//! Postgres) names its artifacts by object key. Requests are built by
//! [`studio_pipeline::requests`], the same as in the embedded `studio render`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::json;
use studio_pipeline::compose::{self, Assets, SceneAssets};
use studio_pipeline::{requests, VideoRequest};
use studio_providers::{
    ChainError, ErrorKind, Generated, Image, ImageSource, Music, PlanSource, Providers, ScenePlan,
    Speech,
};
use studio_storage::{keys, ObjectStore};

use crate::store::{JobStore, Lease, NewStep, RenderInput, Step, RENDER_KIND};

/// What a step needs to run.
#[derive(Clone)]
pub struct StepContext {
    pub store: JobStore,
    pub storage: Arc<dyn ObjectStore>,
    pub providers: Arc<Providers>,
    /// Scratch space for this process.
    pub work_dir: PathBuf,
    /// Attempts given to the steps a step adds.
    pub max_attempts: i32,
}

impl std::fmt::Debug for StepContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepContext")
            .field("work_dir", &self.work_dir)
            .finish_non_exhaustive()
    }
}

/// A finished step.
#[derive(Debug)]
pub struct Done {
    pub output: serde_json::Value,
    pub cost_micro_usd: i64,
    /// Steps to add to the job.
    pub spawn: Vec<NewStep>,
}

/// A failed attempt.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// Worth another attempt (a provider timed out, storage was unreachable).
    #[error("{0}")]
    Retryable(String),
    /// No attempt will do better; the message tells the user what to change.
    #[error("{0}")]
    Final(String),
}

/// The plan step's input: the whole request, resolved when the job started.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlanInput {
    pub request: VideoRequest,
}

/// What the later steps are given.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SceneInput {
    request: VideoRequest,
    plan: ScenePlan,
    /// Scene index; `None` for the moral's narration.
    scene: Option<usize>,
}

/// A narration step's output.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct NarrationOutput {
    /// `speech.audio` is the object key of the WAV.
    speech: Speech,
}

/// A picture step's output.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PictureOutput {
    /// `image.path` is the object key of the picture.
    image: Image,
}

/// The music step's output.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct MusicOutput {
    /// `music.path` is the object key of the audio.
    music: Music,
}

fn chain_error(what: &str, e: ChainError) -> StepError {
    match &e {
        ChainError::Invalid { .. } => StepError::Final(format!("{what}: {e}")),
        ChainError::Exhausted { failures, .. }
            if failures.iter().any(|f| f.kind == ErrorKind::Transient) =>
        {
            StepError::Retryable(format!("{what}: {e}"))
        }
        ChainError::Exhausted { .. } => StepError::Final(format!("{what}: {e}")),
        ChainError::Cache(_) => StepError::Retryable(format!("{what}: {e}")),
    }
}

fn storage_error(e: studio_storage::StorageError) -> StepError {
    StepError::Retryable(format!("storage: {e}"))
}

fn input<T: for<'de> Deserialize<'de>>(lease: &Lease) -> Result<T, StepError> {
    serde_json::from_value(lease.input.clone()).map_err(|e| {
        StepError::Final(format!(
            "{} step has an unreadable input ({e}); start the job again",
            lease.kind
        ))
    })
}

fn output<T: for<'de> Deserialize<'de>>(step: &Step) -> Result<T, StepError> {
    let value = step.output.clone().unwrap_or_default();
    serde_json::from_value(value).map_err(|e| {
        StepError::Final(format!(
            "{} step {} has an unreadable output ({e}); start the job again",
            step.kind, step.id
        ))
    })
}

fn to_json<T: Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or_default()
}

impl StepContext {
    /// Runs one claimed step.
    pub async fn run(&self, lease: &Lease) -> Result<Done, StepError> {
        match lease.kind.as_str() {
            "plan" => self.plan(lease).await,
            "narration" => self.narration(lease).await,
            "picture" => self.picture(lease).await,
            "music" => self.music(lease).await,
            "timeline" => self.timeline(lease).await,
            other => Err(StepError::Final(format!(
                "this worker does not run {other:?} steps"
            ))),
        }
    }

    /// Records a provider call of this step once (keyed by step, capability and request) with
    /// its cost; returns the cost to charge.
    async fn record<T>(&self, lease: &Lease, g: &Generated<T>) -> Result<i64, StepError> {
        let p = &g.provenance;
        let key = format!("{}:{}:{}", lease.step_id, p.capability, p.request_hash);
        let cost = p.cost_micro_usd as i64;
        self.store
            .record_provider_call(lease, &key, &p.provider, &p.model, cost, p.cache_hit)
            .await
            .map_err(|e| StepError::Retryable(format!("recording the provider call: {e}")))?;
        Ok(cost)
    }

    /// Uploads a produced file as this step's artifact `name`; returns its key.
    async fn upload(&self, lease: &Lease, path: &Path, name: &str) -> Result<String, StepError> {
        let key = keys::step_artifact(
            &lease.project_id.to_string(),
            &lease.job_id.to_string(),
            &lease.step_id.to_string(),
            name,
        )
        .map_err(storage_error)?;
        self.storage
            .put_file(&key, path, content_type(name))
            .await
            .map_err(storage_error)?;
        Ok(key.as_str().to_owned())
    }

    async fn plan(&self, lease: &Lease) -> Result<Done, StepError> {
        let PlanInput { request } = input(lease)?;
        let budget = requests::narration_budget(&request)
            .map_err(|e| StepError::Final(format!("settings.duration_s: {e}")))?;
        let plan = match self
            .providers
            .script
            .run(&requests::plan_request(&request, budget))
            .await
        {
            Ok(plan) => plan,
            Err(ChainError::Exhausted { .. })
                if matches!(request.source, PlanSource::Topic { .. }) =>
            {
                return Err(StepError::Final(
                    studio_pipeline::PipelineError::NoLanguageModel.to_string(),
                ))
            }
            Err(e) => return Err(chain_error("planning", e)),
        };
        let cost = self.record(lease, &plan).await?;
        let plan = plan.output;
        let step = |kind: &str, scene: Option<usize>, stage: i32| NewStep {
            kind: kind.to_owned(),
            scene: scene.map(|s| s as i32),
            stage,
            max_attempts: self.max_attempts,
            input: to_json(&SceneInput {
                request: request.clone(),
                plan: plan.clone(),
                scene,
            }),
        };
        let mut spawn = Vec::new();
        for i in 0..plan.scenes.len() {
            spawn.push(step("narration", Some(i), 1));
            spawn.push(step("picture", Some(i), 1));
        }
        if plan.moral.is_some() {
            spawn.push(step("narration", None, 1));
        }
        if matches!(request.music, studio_pipeline::MusicChoice::Generate) {
            spawn.push(step("music", None, 2));
        }
        spawn.push(step("timeline", None, 3));
        Ok(Done {
            output: json!({ "plan": plan }),
            cost_micro_usd: cost,
            spawn,
        })
    }

    async fn narration(&self, lease: &Lease) -> Result<Done, StepError> {
        let input: SceneInput = input(lease)?;
        let sentences = match input.scene {
            Some(i) => input
                .plan
                .scenes
                .get(i)
                .ok_or_else(|| StepError::Final(format!("the plan has no scene {}", i + 1)))?
                .sentences
                .clone(),
            None => input.plan.moral.iter().cloned().collect(),
        };
        let what = match input.scene {
            Some(i) => format!("narration of scene {}", i + 1),
            None => "narration of the moral".to_owned(),
        };
        let g = self
            .providers
            .speech
            .run(&requests::speech_request(&input.request, sentences))
            .await
            .map_err(|e| chain_error(&what, e))?;
        let cost = self.record(lease, &g).await?;
        let mut speech = g.output;
        speech.audio = self
            .upload(lease, &speech.audio, "narration.wav")
            .await?
            .into();
        Ok(Done {
            output: to_json(&NarrationOutput { speech }),
            cost_micro_usd: cost,
            spawn: Vec::new(),
        })
    }

    async fn picture(&self, lease: &Lease) -> Result<Done, StepError> {
        let input: SceneInput = input(lease)?;
        let i = input
            .scene
            .filter(|&i| i < input.plan.scenes.len())
            .ok_or_else(|| StepError::Final("a picture step needs a scene of the plan".into()))?;
        let g = self
            .providers
            .image
            .run(&requests::image_request(&input.request, &input.plan, i))
            .await
            .map_err(|e| chain_error(&format!("picture for scene {}", i + 1), e))?;
        let cost = self.record(lease, &g).await?;
        let mut image = g.output;
        let ext = image
            .path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("png")
            .to_ascii_lowercase();
        image.path = self
            .upload(lease, &image.path, &format!("picture.{ext}"))
            .await?
            .into();
        Ok(Done {
            output: to_json(&PictureOutput { image }),
            cost_micro_usd: cost,
            spawn: Vec::new(),
        })
    }

    async fn music(&self, lease: &Lease) -> Result<Done, StepError> {
        let input: SceneInput = input(lease)?;
        let steps = self.steps(lease).await?;
        let mut narration_s = 0.0;
        for s in steps.iter().filter(|s| s.kind == "narration") {
            narration_s += output::<NarrationOutput>(s)?.speech.duration_s;
        }
        let g = self
            .providers
            .music
            .run(&requests::music_request(
                &input.request,
                &input.plan,
                narration_s,
            ))
            .await
            .map_err(|e| chain_error("music", e))?;
        let cost = self.record(lease, &g).await?;
        let mut music = g.output;
        music.path = self.upload(lease, &music.path, "music.wav").await?.into();
        Ok(Done {
            output: to_json(&MusicOutput { music }),
            cost_micro_usd: cost,
            spawn: Vec::new(),
        })
    }

    async fn steps(&self, lease: &Lease) -> Result<Vec<Step>, StepError> {
        self.store
            .steps(lease.job_id)
            .await
            .map_err(|e| StepError::Retryable(format!("reading the job's steps: {e}")))
    }

    /// Composes the timeline from every narration, picture and the music, stores it, and adds
    /// the render step with the inputs it must fetch.
    async fn timeline(&self, lease: &Lease) -> Result<Done, StepError> {
        let input: SceneInput = input(lease)?;
        let (request, plan) = (&input.request, &input.plan);
        let steps = self.steps(lease).await?;
        let mut inputs = BTreeMap::new();
        let mut scenes = Vec::new();
        let mut images = Vec::new();
        for i in 0..plan.scenes.len() {
            let find = |kind: &str| {
                steps
                    .iter()
                    .find(|s| s.kind == kind && s.scene == Some(i as i32))
                    .ok_or_else(|| {
                        StepError::Final(format!("the {kind} of scene {} is missing", i + 1))
                    })
            };
            let speech = output::<NarrationOutput>(find("narration")?)?.speech;
            let image = output::<PictureOutput>(find("picture")?)?.image;
            let speech_path = format!("narration/{i}.wav");
            let ext = image
                .path
                .extension()
                .and_then(|e| e.to_str())
                .unwrap_or("png");
            let picture_path = format!("pictures/{i}.{ext}");
            inputs.insert(speech_path.clone(), speech.audio.display().to_string());
            inputs.insert(picture_path.clone(), image.path.display().to_string());
            scenes.push(SceneAssets {
                speech,
                speech_path,
                picture_path,
                generated: matches!(image.source, ImageSource::Generated),
            });
            images.push(image);
        }
        let moral = match steps
            .iter()
            .find(|s| s.kind == "narration" && s.scene.is_none())
        {
            Some(s) => {
                let speech = output::<NarrationOutput>(s)?.speech;
                let path = "narration/moral.wav".to_owned();
                inputs.insert(path.clone(), speech.audio.display().to_string());
                Some((speech, path))
            }
            None => None,
        };
        let music = match steps.iter().find(|s| s.kind == "music") {
            Some(s) => Some(output::<MusicOutput>(s)?.music),
            None => None,
        };
        let music_path = music.as_ref().map(|m| {
            inputs.insert("music.wav".to_owned(), m.path.display().to_string());
            "music.wav".to_owned()
        });
        let music_credit = music.as_ref().and_then(|m| m.credit.clone());
        let assets = Assets {
            scenes,
            moral,
            music_path,
            credits: requests::credit_lines(&images, music_credit.as_deref()),
            music_credit,
        };
        let timeline = compose::timeline(
            plan,
            &assets,
            &request.style,
            compose::Format {
                aspect: request.aspect,
                fps: request.fps,
            },
        );
        let (project, job) = (lease.project_id.to_string(), lease.job_id.to_string());
        let key = keys::job_timeline(&project, &job).map_err(storage_error)?;
        let bytes = serde_json::to_vec_pretty(&timeline)
            .map_err(|e| StepError::Final(format!("timeline: {e}")))?;
        self.storage
            .put(&key, bytes.into(), "application/json")
            .await
            .map_err(storage_error)?;
        let output_prefix = format!("projects/{project}/jobs/{job}/outputs/");
        let render = RenderInput {
            timeline_key: key.as_str().to_owned(),
            inputs,
            output_prefix,
        };
        Ok(Done {
            output: json!({ "timeline_key": key.as_str(), "scenes": plan.scenes.len() }),
            cost_micro_usd: 0,
            spawn: vec![NewStep {
                kind: RENDER_KIND.to_owned(),
                scene: None,
                stage: 4,
                max_attempts: self.max_attempts,
                input: to_json(&render),
            }],
        })
    }
}

/// The content type stored with an artifact, by file extension.
pub fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next().unwrap_or("") {
        "wav" => "audio/wav",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "bmp" => "image/bmp",
        "mp4" => "video/mp4",
        "json" => "application/json",
        "srt" => "application/x-subrip",
        "vtt" => "text/vtt",
        _ => "application/octet-stream",
    }
}
