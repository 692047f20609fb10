//! The business rules of the ai-job service, in domain types (no prost): [`Jobs`] starts a job
//! from a project, lists, cancels and watches jobs and presigns their outputs, each scoped to the
//! caller; [`RenderLeases`] lets media-render workers claim, keep and settle render steps.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use studio_core::error::ErrorCode;
use studio_core::id::{JobId, ProjectId, StepId, UserId};
use studio_core::page::Page;
use studio_core::Error;
use studio_media::outputs::OutputKind;
use studio_media::timeline::AspectPreset;
use studio_pipeline::graph::{Graph, StepKind};
use studio_pipeline::request::{DEFAULT_FPS, DEFAULT_SENTENCE_PAUSE_S};
use studio_pipeline::style::StyleError;
use studio_pipeline::{MusicChoice, Style, VideoRequest};
use studio_providers::{PlanSource, Providers, Voice};
use studio_storage::{ObjectKey, ObjectStore};

use crate::steps::PlanInput;
use crate::store::{
    Failure, Job, JobStore, Lease, NewStep, RenderInput, RenderOutput, RenderedFile, State, Step,
    StepSummary, StoreError,
};
use crate::watch::{EventHub, Watch};

impl From<StoreError> for Error {
    fn from(err: StoreError) -> Error {
        match err {
            StoreError::NotFound(what) => Error::not_found(what),
            StoreError::AlreadyFinal(state) => Error::new(
                ErrorCode::FailedPrecondition,
                format!("the job already ended ({})", state.as_str()),
            ),
            StoreError::Fenced { .. } => Error::new(
                ErrorCode::FailedPrecondition,
                "fenced: another worker holds this step now",
            ),
            StoreError::TooManyActive(active) => Error::new(
                ErrorCode::ResourceExhausted,
                format!("{active} jobs are already queued or running"),
            ),
            StoreError::Database(e) => internal("job store", e),
            StoreError::Corrupt(e) => internal("job store", e),
        }
    }
}

/// Logs `err` and returns an internal error that says nothing of it.
pub fn internal(context: &str, err: impl std::fmt::Display) -> Error {
    tracing::error!(error = %err, "{context}");
    Error::internal()
}

/// A project as a job needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectSource {
    /// The words to narrate, if any.
    pub source_text: Option<String>,
    /// What to write about, if there is no text.
    pub topic: Option<String>,
    pub aspect: AspectPreset,
    /// A built-in style or one of the owner's presets, by name.
    pub style: String,
    /// A section title of the text; empty for the whole text.
    pub section: String,
    /// Target length, seconds; 0 for the whole text.
    pub duration_s: f64,
    /// Narrator voice; empty for the default.
    pub voice: String,
    /// Words per minute; 0 for the default.
    pub rate_wpm: u32,
    pub music: bool,
    pub seed: u64,
}

/// Where projects come from: the project service, asked with the caller's own token so that
/// someone else's project is not found there either.
#[async_trait]
pub trait Projects: Send + Sync + 'static {
    /// The project `id` as `bearer` sees it. Errors as the project service answers
    /// (`NotFound` for someone else's).
    async fn project(&self, bearer: &str, id: ProjectId) -> Result<ProjectSource, Error>;
    /// The TOML of the caller's preset `name`, if there is one.
    async fn preset(&self, bearer: &str, name: &str) -> Result<Option<String>, Error>;
}

/// A job with its steps, or (in lists) with a summary of them.
#[derive(Debug, Clone)]
pub struct JobView {
    pub job: Job,
    /// Every step; empty in lists, which carry `summary` instead.
    pub steps: Vec<Step>,
    /// The steps in brief, when `steps` is not loaded.
    pub summary: Option<StepSummary>,
}

impl JobView {
    /// Finished steps over all steps, 0..=100.
    pub fn percent(&self) -> f64 {
        let (done, total) = match &self.summary {
            Some(s) => (s.done as usize, s.total as usize),
            None => (
                self.steps
                    .iter()
                    .filter(|s| s.state == State::Succeeded)
                    .count(),
                self.steps.len(),
            ),
        };
        if total == 0 {
            0.0
        } else {
            100.0 * done as f64 / total as f64
        }
    }

    /// The files the render step uploaded, once it succeeded.
    pub fn outputs(&self) -> Vec<RenderedFile> {
        let output = match &self.summary {
            Some(s) => s.render_output.clone(),
            None => self
                .steps
                .iter()
                .find(|s| {
                    StepKind::built_in(&s.kind) == Some(StepKind::Render)
                        && s.state == State::Succeeded
                })
                .and_then(|s| s.output.clone()),
        };
        output
            .and_then(|o| serde_json::from_value::<RenderOutput>(o).ok())
            .map(|o| o.files)
            .unwrap_or_default()
    }
}

/// A presigned download.
#[derive(Debug, Clone)]
pub struct OutputUrl {
    pub url: String,
    /// Milliseconds since the Unix epoch.
    pub expires_at_ms: i64,
    pub size_bytes: u64,
}

/// The job service.
#[derive(Clone)]
pub struct Jobs {
    pub store: JobStore,
    pub storage: Arc<dyn ObjectStore>,
    pub providers: Arc<Providers>,
    pub projects: Arc<dyn Projects>,
    pub graph: Arc<Graph>,
    /// Progress announcements for watchers.
    pub events: Arc<EventHub>,
    /// Lifetime of a download URL.
    pub output_url_ttl: Duration,
    /// Attempts given to every step.
    pub max_attempts: i32,
    /// What one job and one user may ask for.
    pub limits: crate::limits::Limits,
}

impl std::fmt::Debug for Jobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jobs").finish_non_exhaustive()
    }
}

impl Jobs {
    async fn view(&self, job: Job) -> Result<JobView, Error> {
        let steps = self.store.steps(job.id).await?;
        Ok(JobView {
            job,
            steps,
            summary: None,
        })
    }

    /// Starts a job for `caller`'s `project` (fetched with `bearer`), once per `key`: a repeat
    /// returns the first job and `false`.
    ///
    /// Errors: `idempotency_key` empty or over 200 characters; the project's own errors
    /// ([`video_request`]); `FailedPrecondition` for a video over the size limits
    /// ([`crate::limits::Limits::check`]); `ResourceExhausted` when the caller already has
    /// `max_active_jobs_per_user` jobs queued or running (a repeat of an earlier start still
    /// returns its job); `AlreadyExists` naming `idempotency_key` when the key started a job
    /// for another project.
    pub async fn start(
        &self,
        caller: UserId,
        bearer: &str,
        project: ProjectId,
        key: &str,
    ) -> Result<(JobView, bool), Error> {
        let key = key.trim();
        if key.is_empty() || key.len() > 200 {
            return Err(Error::invalid(
                "idempotency_key",
                "must be 1 to 200 characters; reuse it to retry the same start",
            ));
        }
        let source = self.projects.project(bearer, project).await?;
        let style = self.style(bearer, &source.style).await?;
        let request = video_request(source, style, self.providers.can_plan_topics())?;
        self.limits
            .check(&request, self.providers.speech.seconds_per_letter_wpm())?;
        let plan = NewStep {
            kind: StepKind::Plan.name().to_owned(),
            scene: None,
            stage: self.graph.stage(StepKind::Plan) as i32,
            max_attempts: self.max_attempts,
            input: serde_json::to_value(PlanInput::default())
                .map_err(|e| internal("encoding the plan input", e))?,
        };
        let request =
            serde_json::to_value(&request).map_err(|e| internal("encoding the request", e))?;
        let active_limit = self.limits.max_active_jobs_per_user;
        let (job, created) = self
            .store
            .create_job(
                caller,
                project,
                key,
                Some(&request),
                &[plan],
                i64::from(active_limit),
            )
            .await
            .map_err(|e| match e {
                StoreError::TooManyActive(active) => {
                    crate::limits::too_many_active(active, active_limit)
                }
                e => e.into(),
            })?;
        if created {
            metrics::counter!("ai_job_jobs_started_total").increment(1);
            tracing::info!(job = %job.id, %project, "job started");
        } else if job.project_id != project {
            return Err(Error::new(
                ErrorCode::AlreadyExists,
                "this idempotency_key already started a job for another project; use a new key",
            )
            .with_field("idempotency_key"));
        }
        Ok((self.view(job).await?, created))
    }

    /// The style named `name`: a built-in one or the caller's preset.
    async fn style(&self, bearer: &str, name: &str) -> Result<Style, Error> {
        let field = |e: String| Error::new(ErrorCode::FailedPrecondition, e).with_field("style");
        match Style::load(name) {
            Ok(style) => Ok(style),
            Err(StyleError::Unknown { .. }) => {
                let toml = self.projects.preset(bearer, name).await?.ok_or_else(|| {
                    field(format!(
                        "the project's style preset {name:?} no longer exists: pick another style"
                    ))
                })?;
                Style::parse(name, &toml).map_err(|e| field(e.to_string()))
            }
            Err(e) => Err(field(e.to_string())),
        }
    }

    /// The caller's job `id`; `NotFound` for someone else's.
    pub async fn get(&self, caller: UserId, id: JobId) -> Result<JobView, Error> {
        let job = self.store.job_for_owner(caller, id).await?;
        self.view(job).await
    }

    /// Cancels the caller's job `id`; `FailedPrecondition` when it already ended.
    pub async fn cancel(&self, caller: UserId, id: JobId) -> Result<JobView, Error> {
        let job = self.store.cancel(caller, id).await?;
        self.view(job).await
    }

    /// One page of the caller's jobs (of `project`, when given), newest first, and the token of
    /// the next page (empty after the last). Each job carries a summary of its steps, not the
    /// steps themselves.
    pub async fn list(
        &self,
        caller: UserId,
        project: Option<ProjectId>,
        page: &Page,
    ) -> Result<(Vec<JobView>, String), Error> {
        let before = match &page.after {
            Some(cursor) => Some(JobId::parse("page_token", cursor).map_err(|_| {
                Error::invalid(
                    "page_token",
                    "is not a token this service returned; pass next_page_token unchanged",
                )
            })?),
            None => None,
        };
        let rows = self
            .store
            .list_jobs(caller, project, before, page.fetch())
            .await?;
        let (rows, next) = studio_core::page::finish(page, rows, |j| j.id.to_string());
        // Steps in brief, for the whole page in one query: a list stays small however many
        // steps its jobs have (security review M9); GetJob gives a job's steps.
        let ids: Vec<JobId> = rows.iter().map(|j| j.id).collect();
        let mut summaries = self.store.summaries(&ids).await?;
        let jobs = rows
            .into_iter()
            .map(|job| JobView {
                summary: Some(summaries.remove(&job.id).unwrap_or_default()),
                steps: Vec::new(),
                job,
            })
            .collect();
        Ok((jobs, next))
    }

    /// Progress events of the caller's job `id`, the current state first.
    pub async fn watch(&self, caller: UserId, id: JobId) -> Result<Watch, Error> {
        self.store.job_for_owner(caller, id).await?;
        let latest = self.store.latest_event(id).await?;
        Ok(Watch::start(self.store.clone(), &self.events, id, (latest - 1).max(0)).await?)
    }

    /// A presigned download of output `kind` (its API name) of the caller's job `id`.
    ///
    /// Errors: `NotFound` for a job of someone else's (checked first, so the answer says nothing
    /// of it); `InvalidArgument` naming `kind` for a name that is not an output;
    /// `FailedPrecondition` until the job succeeded; `NotFound` for an output the render did
    /// not make.
    pub async fn output_url(
        &self,
        caller: UserId,
        id: JobId,
        kind: &str,
    ) -> Result<OutputUrl, Error> {
        let job = self.store.job_for_owner(caller, id).await?;
        let kind = OutputKind::parse(kind).ok_or_else(|| {
            Error::invalid(
                "kind",
                format!("must be one of {}", OutputKind::api_names()),
            )
        })?;
        if job.state != State::Succeeded {
            return Err(Error::new(
                ErrorCode::FailedPrecondition,
                format!(
                    "the job has no outputs yet: it is {}; wait for it to succeed",
                    job.state.as_str()
                ),
            ));
        }
        let view = self.view(job).await?;
        let output = view
            .outputs()
            .into_iter()
            .find(|o| o.kind == kind.api_name())
            .ok_or_else(|| Error::not_found("output"))?;
        // Only keys under the job's own output prefix are ever presigned, whatever was stored
        // (security review H1).
        let (project, job) = (view.job.project_id.to_string(), view.job.id.to_string());
        let prefix = studio_storage::keys::job_outputs_prefix(&project, &job)
            .map_err(|e| internal("output prefix", e))?;
        if !within(&output.storage_key, &prefix) {
            return Err(internal(
                "stored output key outside the job's outputs",
                &output.storage_key,
            ));
        }
        let key = ObjectKey::parse(output.storage_key.clone())
            .map_err(|e| internal("stored output key", e))?;
        let ttl = self.output_url_ttl;
        let url = self
            .storage
            .presign_get(&key, ttl)
            .await
            .map_err(|e| internal("presigning a download", e))?;
        Ok(OutputUrl {
            url: url.to_string(),
            expires_at_ms: chrono::Utc::now().timestamp_millis() + ttl.as_millis() as i64,
            size_bytes: output.size_bytes,
        })
    }
}

/// Turns a project into a self-contained video request, filling in the defaults.
///
/// Errors (`FailedPrecondition`): no text and no topic (field `source_text`); a topic where no
/// script writer takes topics (`topics_ok` false; field `source_text`); a duration that leaves
/// no narration (field `settings.duration_s`).
pub fn video_request(
    project: ProjectSource,
    style: Style,
    topics_ok: bool,
) -> Result<VideoRequest, Error> {
    let precondition = |field: &str, message: String| {
        Error::new(ErrorCode::FailedPrecondition, message).with_field(field)
    };
    let source = match (project.source_text, project.topic) {
        (Some(text), _) if !text.trim().is_empty() => PlanSource::Text {
            text,
            section: Some(project.section).filter(|s| !s.trim().is_empty()),
        },
        (_, Some(topic)) if !topic.trim().is_empty() => {
            if !topics_ok {
                return Err(precondition(
                    "source_text",
                    "the project has a topic but no text, and this deployment has no language \
                     model to write a script from a topic: set the project's source_text to \
                     the words to narrate"
                        .into(),
                ));
            }
            PlanSource::Topic {
                topic,
                audience: None,
                tone: None,
            }
        }
        _ => {
            return Err(precondition(
                "source_text",
                "the project has no text to narrate: set its source_text (or a topic) first".into(),
            ))
        }
    };
    let default = Voice::default();
    let request = VideoRequest {
        source,
        aspect: project.aspect,
        fps: DEFAULT_FPS,
        duration_s: Some(project.duration_s).filter(|d| *d > 0.0),
        style,
        voice: Voice {
            name: Some(project.voice)
                .filter(|v| !v.is_empty())
                .unwrap_or(default.name),
            rate_wpm: Some(project.rate_wpm)
                .filter(|r| *r > 0)
                .unwrap_or(default.rate_wpm),
            pitch: default.pitch,
        },
        sentence_pause_s: DEFAULT_SENTENCE_PAUSE_S,
        music: if project.music {
            MusicChoice::Generate
        } else {
            MusicChoice::Silent
        },
        seed: project.seed,
    };
    studio_pipeline::request::check(&request)
        .map_err(|e| precondition("settings.duration_s", e.to_string()))?;
    Ok(request)
}

/// Whether `key` names an object under `prefix` (which ends in `/`): no `..` or empty segment
/// climbs out of it.
fn within(key: &str, prefix: &str) -> bool {
    key.strip_prefix(prefix).is_some_and(|rest| {
        !rest.is_empty()
            && rest
                .split('/')
                .all(|s| !s.is_empty() && s != "." && s != "..")
    })
}

/// What a media-render worker reports at the end of a render.
#[derive(Debug, Clone)]
pub enum RenderReport {
    /// It rendered and uploaded everything.
    Done(RenderOutput),
    /// It failed; `retryable` when another attempt could succeed.
    Failed { error: String, retryable: bool },
}

/// The render leases media-render workers hold.
#[derive(Debug, Clone)]
pub struct RenderLeases {
    pub store: JobStore,
}

/// Wait before a failed render that may succeed is announced again.
const RENDER_RETRY_BACKOFF: Duration = Duration::from_secs(1);

/// A lease asked for, in seconds, held between 5 s and an hour.
pub fn lease_len(seconds: u32) -> Duration {
    Duration::from_secs(seconds.clamp(5, 3600) as u64)
}

impl RenderLeases {
    /// Claims render step `step` for `worker`; `None` when it is not claimable now.
    pub async fn claim(
        &self,
        step: StepId,
        worker: &str,
        lease: Duration,
    ) -> Result<Option<(Lease, RenderInput)>, Error> {
        let kind = StepKind::Render.name();
        let Some(lease) = self
            .store
            .claim_kind(step, Some(kind), worker, lease)
            .await?
        else {
            return Ok(None);
        };
        let input: RenderInput = serde_json::from_value(lease.input.clone())
            .map_err(|e| internal("render step input", e))?;
        Ok(Some((lease, input)))
    }

    /// Extends the lease `token` holds on `step`; `FailedPrecondition` when it is not held or
    /// is not a render step.
    pub async fn heartbeat(&self, step: StepId, token: i64, lease: Duration) -> Result<(), Error> {
        self.render_lease(step, token).await?;
        Ok(self.store.heartbeat_step(step, token, lease).await?)
    }

    /// The lease `token` holds on render step `step`. Render workers settle render steps only:
    /// the step workers' steps are not theirs to touch.
    async fn render_lease(&self, step: StepId, token: i64) -> Result<Lease, Error> {
        let lease = self.store.lease_of(step, token).await?;
        if StepKind::built_in(&lease.kind) != Some(StepKind::Render) {
            return Err(Error::new(
                ErrorCode::FailedPrecondition,
                "not a render step: render workers settle render steps only",
            ));
        }
        Ok(lease)
    }

    /// Settles render step `step` held by `token` with `report`.
    ///
    /// Errors: `FailedPrecondition` when `token` does not hold the step or the step is not a
    /// render step; `InvalidArgument` naming `files` for a file of an unknown kind or whose key
    /// is not under the job's output prefix (the step stays running).
    pub async fn finish(
        &self,
        step: StepId,
        token: i64,
        report: RenderReport,
    ) -> Result<(), Error> {
        let lease = self.render_lease(step, token).await?;
        match report {
            RenderReport::Done(output) => {
                let input: RenderInput = serde_json::from_value(lease.input.clone())
                    .map_err(|e| internal("render step input", e))?;
                for file in &output.files {
                    if OutputKind::parse(&file.kind).is_none() {
                        return Err(Error::invalid(
                            "files",
                            format!(
                                "{:?} is not an output kind; use one of {}",
                                file.kind,
                                OutputKind::api_names()
                            ),
                        ));
                    }
                    if !within(&file.storage_key, &input.output_prefix) {
                        return Err(Error::invalid(
                            "files",
                            format!(
                                "{} is not under this job's outputs ({})",
                                file.storage_key, input.output_prefix
                            ),
                        ));
                    }
                }
                let output =
                    serde_json::to_value(output).map_err(|e| internal("render output", e))?;
                self.store.complete(&lease, output, 0, &[]).await?;
            }
            RenderReport::Failed { error, retryable } => {
                let failure = if retryable {
                    Failure::Retryable(error)
                } else {
                    Failure::Final(error)
                };
                self.store
                    .fail(&lease, failure, RENDER_RETRY_BACKOFF)
                    .await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project() -> ProjectSource {
        ProjectSource {
            source_text: Some("A lion slept. A mouse ran over him.".into()),
            topic: None,
            aspect: AspectPreset::Square,
            style: "storybook".into(),
            section: String::new(),
            duration_s: 0.0,
            voice: String::new(),
            rate_wpm: 0,
            music: false,
            seed: 7,
        }
    }

    fn style() -> Style {
        Style::load("storybook").unwrap()
    }

    #[test]
    fn a_project_becomes_a_request_with_the_defaults_filled_in() {
        let r = video_request(project(), style(), false).unwrap();
        assert_eq!(r.voice, Voice::default());
        assert_eq!((r.fps, r.seed, r.duration_s), (DEFAULT_FPS, 7, None));
        assert!(matches!(r.music, MusicChoice::Silent));
        assert!(matches!(r.source, PlanSource::Text { section: None, .. }));
    }

    #[test]
    fn a_topic_needs_a_chain_that_takes_topics() {
        let topic = ProjectSource {
            source_text: None,
            topic: Some("tea".into()),
            ..project()
        };
        let e = video_request(topic.clone(), style(), false).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("source_text"));
        let r = video_request(topic, style(), true).unwrap();
        assert!(matches!(r.source, PlanSource::Topic { .. }));
        let nothing = ProjectSource {
            source_text: Some("  ".into()),
            ..project()
        };
        let e = video_request(nothing, style(), true).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("source_text"));
    }

    #[test]
    fn a_duration_without_room_for_narration_names_the_setting() {
        let short = ProjectSource {
            duration_s: 6.0,
            ..project()
        };
        let e = video_request(short, style(), false).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("settings.duration_s"));
    }

    #[test]
    fn only_keys_under_the_prefix_are_within_it() {
        let prefix = "projects/p/jobs/j/outputs/";
        assert!(within("projects/p/jobs/j/outputs/final.mp4", prefix));
        assert!(within("projects/p/jobs/j/outputs/3/final.mp4", prefix));
        assert!(!within("projects/p/jobs/j/outputs/", prefix));
        assert!(!within(
            "projects/p/jobs/j/outputs/../../k/final.mp4",
            prefix
        ));
        assert!(!within("projects/p/jobs/j/outputs//final.mp4", prefix));
        assert!(!within("projects/q/jobs/j/outputs/final.mp4", prefix));
        assert!(!within("other/projects/p/jobs/j/outputs/final.mp4", prefix));
    }
}
