//! The distributed executor of the step graph (`studio_pipeline::graph`): one claimed step at a
//! time, its inputs from Postgres, its files in object storage.
//!
//! A job starts with one `plan` step; the plan adds the steps the graph's spawn rule gives
//! ([`Graph::after_plan`]), each at its stage, and the timeline step adds the render, which
//! media-render workers run. A step is given the outputs of every succeeded step of lower
//! stages. Every artifact is stored under `projects/{p}/jobs/{j}/steps/{s}/`; a step's output
//! (JSON in Postgres, [`StepOutput::to_json`]) names its artifacts by object key. Every provider
//! call is recorded once per `{step}:{capability}:{request hash}`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use studio_media::outputs::content_type;
use studio_pipeline::graph::{
    self, Finished, Graph, StepError as GraphError, StepInput, StepKey, StepKind, StepOutput,
};
use studio_pipeline::VideoRequest;
use studio_providers::{Provenance, Providers, ScenePlan};
use studio_storage::{keys, ObjectStore};

use crate::store::{Failure, JobStore, Lease, NewStep, RenderInput, State};

/// What a step needs to run.
#[derive(Clone)]
pub struct StepContext {
    pub store: JobStore,
    pub storage: Arc<dyn ObjectStore>,
    pub providers: Arc<Providers>,
    /// The step graph this worker runs.
    pub graph: Arc<Graph>,
    /// Scratch space for this process.
    pub work_dir: PathBuf,
    /// Attempts given to the steps a step adds.
    pub max_attempts: i32,
}

impl std::fmt::Debug for StepContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepContext")
            .field("work_dir", &self.work_dir)
            .field("graph", &self.graph)
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

/// The plan step's input. The request, resolved when the job started, is stored once on the
/// job and read from there (security review H2); jobs started before carry it here.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PlanInput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<VideoRequest>,
}

/// What the steps after the plan are given: which scene. The request and the plan are read
/// from the job's row and the plan step's output, each stored once; jobs started before carry
/// copies of both here.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SceneInput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    request: Option<VideoRequest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    plan: Option<ScenePlan>,
    /// Scene index; `None` for per-job steps and the moral's narration.
    scene: Option<usize>,
}

/// The request, the plan and the finished outputs a step after the plan works from.
struct Context {
    request: VideoRequest,
    plan: ScenePlan,
    scene: Option<usize>,
    done: Vec<Finished>,
}

/// The timeline step's output.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct TimelineOutput {
    /// Object key of the timeline JSON.
    timeline_key: String,
    /// Planned scenes.
    scenes: usize,
}

/// How a step of the graph ends an attempt.
fn failure(e: GraphError) -> Failure {
    if e.retryable() {
        Failure::Retryable(e.to_string())
    } else {
        Failure::Final(e.to_string())
    }
}

fn storage_error(e: studio_storage::StorageError) -> Failure {
    Failure::Retryable(format!("storage: {e}"))
}

fn to_json<T: Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or_default()
}

fn input<T: for<'de> Deserialize<'de>>(lease: &Lease) -> Result<T, Failure> {
    serde_json::from_value(lease.input.clone()).map_err(|e| {
        Failure::Final(format!(
            "{} step has an unreadable input ({e}); start the job again",
            lease.kind
        ))
    })
}

impl StepContext {
    /// Runs one claimed step.
    ///
    /// Errors: a final [`Failure`] for a kind this worker's graph lacks or one that runs
    /// elsewhere (the render), or an unreadable input; otherwise as the step fails.
    pub async fn run(&self, lease: &Lease) -> Result<Done, Failure> {
        let kind = self.graph.kind(&lease.kind).ok_or_else(|| {
            Failure::Final(format!("this worker does not run {:?} steps", lease.kind))
        })?;
        match kind {
            StepKind::Plan => self.plan(lease).await,
            StepKind::Timeline => self.timeline(lease).await,
            StepKind::Render => Err(Failure::Final(
                "render steps run on media-render workers".into(),
            )),
            kind => self.step(kind, lease).await,
        }
    }

    /// Records a provider call of this step once (keyed by step, capability and request) with
    /// its cost; returns the cost to charge.
    async fn record(&self, lease: &Lease, p: &Provenance) -> Result<i64, Failure> {
        let key = format!("{}:{}:{}", lease.step_id, p.capability, p.request_hash);
        let cost = p.cost_micro_usd as i64;
        self.store
            .record_provider_call(lease, &key, &p.provider, &p.model, cost, p.cache_hit)
            .await
            .map_err(|e| Failure::Retryable(format!("recording the provider call: {e}")))?;
        Ok(cost)
    }

    /// The key of this attempt's artifact `name`.
    fn artifact(&self, lease: &Lease, name: &str) -> Result<studio_storage::ObjectKey, Failure> {
        keys::step_artifact(
            &lease.project_id.to_string(),
            &lease.job_id.to_string(),
            &lease.step_id.to_string(),
            lease.attempt,
            name,
        )
        .map_err(storage_error)
    }

    /// Uploads a produced file as this attempt's artifact `name`; returns its key.
    async fn upload(&self, lease: &Lease, path: &Path, name: &str) -> Result<String, Failure> {
        let key = self.artifact(lease, name)?;
        self.storage
            .put_file(&key, path, content_type(name))
            .await
            .map_err(storage_error)?;
        Ok(key.as_str().to_owned())
    }

    /// The job's request: the copy a step of an older job carries, or the one stored on the
    /// job.
    async fn request(
        &self,
        lease: &Lease,
        carried: Option<VideoRequest>,
    ) -> Result<VideoRequest, Failure> {
        if let Some(request) = carried {
            return Ok(request);
        }
        let stored = self
            .store
            .job_request(lease.job_id)
            .await
            .map_err(|e| Failure::Retryable(format!("reading the job's request: {e}")))?
            .ok_or_else(|| {
                Failure::Final("the job has no stored request; start the job again".into())
            })?;
        serde_json::from_value(stored).map_err(|e| {
            Failure::Final(format!(
                "the job's request is unreadable ({e}); start the job again"
            ))
        })
    }

    /// What a step after the plan works from: its scene, the request, the plan (the plan
    /// step's output) and the outputs of the job's succeeded steps of stages below `stage`,
    /// read back from their rows.
    async fn context(&self, lease: &Lease, stage: u32) -> Result<Context, Failure> {
        let input: SceneInput = input(lease)?;
        let steps = self
            .store
            .steps(lease.job_id)
            .await
            .map_err(|e| Failure::Retryable(format!("reading the job's steps: {e}")))?;
        let mut plan = input.plan;
        let mut done = Vec::new();
        for step in steps.into_iter().filter(|s| s.state == State::Succeeded) {
            let Some(kind) = self.graph.kind(&step.kind) else {
                continue;
            };
            let is_plan = matches!(kind, StepKind::Plan);
            if (is_plan && plan.is_some()) || (!is_plan && self.graph.stage(kind) >= stage) {
                continue;
            }
            let output =
                StepOutput::from_json(kind, step.output.unwrap_or_default()).map_err(|e| {
                    Failure::Final(format!(
                        "{} step {} has an unreadable output ({e}); start the job again",
                        step.kind, step.id
                    ))
                })?;
            if is_plan {
                plan = output.into_plan();
                continue;
            }
            let scene = step.scene.map(|s| s as usize);
            done.push(Finished {
                key: StepKey { kind, scene },
                output,
            });
        }
        let plan = plan.ok_or_else(|| {
            Failure::Final("the job's plan step has no plan; start the job again".into())
        })?;
        Ok(Context {
            request: self.request(lease, input.request).await?,
            plan,
            scene: input.scene,
            done,
        })
    }

    async fn plan(&self, lease: &Lease) -> Result<Done, Failure> {
        let PlanInput { request: carried } = input(lease)?;
        // A job started by an earlier release has no request of its own: its steps carry it.
        let carries = carried.is_some();
        let request = self.request(lease, carried).await?;
        let ran = self
            .graph
            .plan(&request, &self.providers)
            .await
            .map_err(failure)?;
        let cost = match &ran.provenance {
            Some(p) => self.record(lease, p).await?,
            None => 0,
        };
        let output = ran.output.to_json();
        let plan = ran.output.into_plan().expect("the plan step makes a plan");
        // Each spawned step names its scene only: the request and the plan stay stored once.
        let spawn = self
            .graph
            .after_plan(&request, &plan)
            .into_iter()
            .map(|key| NewStep {
                kind: key.kind.name().to_owned(),
                scene: key.scene.map(|s| s as i32),
                stage: self.graph.stage(key.kind) as i32,
                max_attempts: self.max_attempts,
                input: to_json(&SceneInput {
                    request: carries.then(|| request.clone()),
                    plan: carries.then(|| plan.clone()),
                    scene: key.scene,
                }),
            })
            .collect();
        Ok(Done {
            output,
            cost_micro_usd: cost,
            spawn,
        })
    }

    /// A provider step or an extension: runs it with the outputs before it, records its provider
    /// call, and uploads its files.
    async fn step(&self, kind: StepKind, lease: &Lease) -> Result<Done, Failure> {
        let mut context = self.context(lease, self.graph.stage(kind)).await?;
        // A clip sets the scene's picture in motion: the picture comes down from storage.
        let scratch = self.work_dir.join("inputs").join(lease.step_id.to_string());
        if kind == StepKind::Clip {
            self.fetch_pictures(&mut context, &scratch).await?;
        }
        let ran = self.run_step(kind, lease, &context).await;
        let _ = tokio::fs::remove_dir_all(&scratch).await;
        ran
    }

    /// Downloads the pictures of the step's scene among `context.done` into `scratch` and
    /// points the outputs at the local files.
    async fn fetch_pictures(&self, context: &mut Context, scratch: &Path) -> Result<(), Failure> {
        let scene = context.scene;
        tokio::fs::create_dir_all(scratch)
            .await
            .map_err(|e| Failure::Retryable(format!("{}: {e}", scratch.display())))?;
        for finished in context
            .done
            .iter_mut()
            .filter(|f| f.key.kind == StepKind::Picture && f.key.scene == scene)
        {
            for (path, name) in finished.output.files_mut() {
                let key = studio_storage::ObjectKey::parse(path.display().to_string())
                    .map_err(storage_error)?;
                let local = scratch.join(&name);
                self.storage
                    .get_to_file(&key, &local)
                    .await
                    .map_err(storage_error)?;
                *path = local;
            }
        }
        Ok(())
    }

    async fn run_step(
        &self,
        kind: StepKind,
        lease: &Lease,
        context: &Context,
    ) -> Result<Done, Failure> {
        let key = StepKey {
            kind,
            scene: context.scene,
        };
        let step_input = StepInput {
            request: &context.request,
            plan: &context.plan,
            scene: context.scene,
            done: &context.done,
        };
        let ran = self
            .graph
            .run(key, step_input, &self.providers)
            .await
            .map_err(failure)?;
        let cost = match &ran.provenance {
            Some(p) => self.record(lease, p).await?,
            None => 0,
        };
        let mut output = ran.output;
        for (path, name) in output.files_mut() {
            *path = self.upload(lease, path, &name).await?.into();
        }
        Ok(Done {
            output: output.to_json(),
            cost_micro_usd: cost,
            spawn: Vec::new(),
        })
    }

    /// Composes the timeline from the outputs before it, stores it, and adds the render step
    /// with the inputs it must fetch.
    async fn timeline(&self, lease: &Lease) -> Result<Done, Failure> {
        let context = self
            .context(lease, self.graph.stage(StepKind::Timeline))
            .await?;
        let assembly =
            graph::assemble(&context.request, &context.plan, &context.done).map_err(failure)?;
        let (project, job) = (lease.project_id.to_string(), lease.job_id.to_string());
        let key = self.artifact(lease, "timeline.json")?;
        let bytes = serde_json::to_vec_pretty(&assembly.timeline)
            .map_err(|e| Failure::Final(format!("timeline: {e}")))?;
        self.storage
            .put(&key, bytes.into(), "application/json")
            .await
            .map_err(storage_error)?;
        let render = RenderInput {
            timeline_key: key.as_str().to_owned(),
            inputs: assembly
                .inputs
                .into_iter()
                .map(|(path, object)| (path, object.display().to_string()))
                .collect(),
            output_prefix: keys::job_outputs_prefix(&project, &job).map_err(storage_error)?,
        };
        Ok(Done {
            output: to_json(&TimelineOutput {
                timeline_key: key.as_str().to_owned(),
                scenes: context.plan.scenes.len(),
            }),
            cost_micro_usd: 0,
            spawn: vec![NewStep {
                kind: StepKind::Render.name().to_owned(),
                scene: None,
                stage: self.graph.stage(StepKind::Render) as i32,
                max_attempts: self.max_attempts,
                input: to_json(&render),
            }],
        })
    }
}
