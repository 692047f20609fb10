//! The gRPC adapters: `studio.job.v1.JobService` (for signed-in users through the gateway; every
//! call is scoped to the caller's own jobs) and `studio.job.v1.RenderLeaseService` (for
//! media-render workers inside the cluster).

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::Stream;
use studio_auth::{Caller, JwksVerifier};
use studio_core::error::ErrorCode;
use studio_core::page::Page;
use studio_core::Error;
use studio_media::timeline::AspectPreset;
use studio_pipeline::{requests, MusicChoice, Style, VideoRequest};
use studio_proto::common::v1 as common;
use studio_proto::job::v1 as pb;
use studio_proto::project::v1 as project_pb;
use studio_proto::project::v1::project_service_client::ProjectServiceClient;
use studio_proto::render::v1 as render_pb;
use studio_providers::{PlanSource, Providers, Voice};
use studio_storage::{ObjectKey, ObjectStore};
use tonic::transport::Channel;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::steps::PlanInput;
use crate::store::{
    Failure, Job, JobEvent, JobStore, NewStep, RenderInput, State, Step, StoreError, RENDER_KIND,
};
use crate::watch::{EventHub, Watch};

/// Seconds of silence after each narrated sentence, as in `studio render`.
const SENTENCE_PAUSE_S: f64 = 0.35;
/// Frames per second of every video.
const FPS: u32 = 30;

/// Everything both services share.
#[derive(Clone)]
pub struct Shared {
    pub store: JobStore,
    pub storage: Arc<dyn ObjectStore>,
    pub providers: Arc<Providers>,
    pub projects: ProjectServiceClient<Channel>,
    pub verifier: Arc<JwksVerifier>,
    pub output_url_ttl: Duration,
    pub max_attempts: i32,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

fn internal(context: &str, err: impl std::fmt::Display) -> Status {
    tracing::error!(error = %err, "{context}");
    Error::internal().into()
}

fn store_error(err: StoreError) -> Status {
    match err {
        StoreError::NotFound(what) => Error::not_found(what).into(),
        StoreError::AlreadyFinal(state) => Error::new(
            ErrorCode::FailedPrecondition,
            format!("the job already ended ({})", state.as_str()),
        )
        .into(),
        StoreError::Fenced { .. } => Error::new(
            ErrorCode::FailedPrecondition,
            "fenced: another worker holds this step now",
        )
        .into(),
        StoreError::Database(e) => internal("job store", e),
    }
}

fn parse_id(field: &str, value: &str) -> Result<Uuid, Status> {
    Uuid::parse_str(value)
        .map_err(|_| Error::invalid(field, "must be a UUID such as 0192f8a4-…").into())
}

fn ms(t: chrono::DateTime<chrono::Utc>) -> i64 {
    t.timestamp_millis()
}

fn state_pb(state: State) -> pb::State {
    match state {
        State::Queued => pb::State::Queued,
        State::Running => pb::State::Running,
        State::Succeeded => pb::State::Succeeded,
        State::Failed => pb::State::Failed,
        State::Cancelled => pb::State::Cancelled,
    }
}

/// The files a render step uploaded, from its output.
fn outputs(steps: &[Step]) -> Vec<pb::Output> {
    let Some(render) = steps
        .iter()
        .find(|s| s.kind == RENDER_KIND && s.state == State::Succeeded)
    else {
        return Vec::new();
    };
    let files = render
        .output
        .as_ref()
        .and_then(|o| o.get("files"))
        .and_then(|f| f.as_array())
        .cloned()
        .unwrap_or_default();
    files
        .iter()
        .map(|f| pb::Output {
            kind: f["kind"].as_str().unwrap_or_default().to_owned(),
            storage_key: f["storage_key"].as_str().unwrap_or_default().to_owned(),
            size_bytes: f["size_bytes"].as_u64().unwrap_or_default(),
        })
        .collect()
}

fn job_pb(job: Job, steps: Vec<Step>) -> pb::Job {
    let done = steps.iter().filter(|s| s.state == State::Succeeded).count();
    let percent = if steps.is_empty() {
        0.0
    } else {
        100.0 * done as f64 / steps.len() as f64
    };
    pb::Job {
        id: job.id.to_string(),
        project_id: job.project_id.to_string(),
        owner_id: job.owner_id.to_string(),
        state: state_pb(job.state) as i32,
        percent,
        stage: job.stage,
        error: job.error,
        cost_micro_usd: job.cost_micro_usd,
        outputs: outputs(&steps),
        steps: steps
            .into_iter()
            .map(|s| pb::Step {
                id: s.id.to_string(),
                kind: s.kind,
                scene: s.scene.map(|n| n as u32),
                state: state_pb(s.state) as i32,
                attempts: s.attempts as u32,
                error: s.error,
                cost_micro_usd: s.cost_micro_usd,
                started_at_ms: s.started_at.map(ms).unwrap_or_default(),
                finished_at_ms: s.finished_at.map(ms).unwrap_or_default(),
            })
            .collect(),
        created_at_ms: ms(job.created_at),
        updated_at_ms: ms(job.updated_at),
    }
}

/// A job event as sent to clients.
pub fn event_pb(e: JobEvent) -> pb::JobEvent {
    pb::JobEvent {
        job_id: e.job_id.to_string(),
        sequence: e.sequence as u64,
        state: state_pb(e.state) as i32,
        stage: e.stage,
        percent: e.percent,
        message: e.message,
        cost_micro_usd: e.cost_micro_usd,
        at_ms: ms(e.at),
    }
}

/// Maps an output kind of the API to the file the render uploads.
fn output_file(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "video" => "final.mp4",
        "captions_srt" => "captions.srt",
        "captions_vtt" => "captions.vtt",
        "thumbnail" => "thumbnail.jpg",
        _ => return None,
    })
}

/// `studio.job.v1.JobService`.
#[derive(Debug, Clone)]
pub struct GrpcJobs {
    pub shared: Shared,
    /// Progress announcements for `WatchJob`.
    pub events: Arc<EventHub>,
}

impl GrpcJobs {
    async fn caller<T>(&self, request: &Request<T>) -> Result<Caller, Status> {
        self.shared.verifier.verify_request(request).await
    }

    async fn full(&self, job: Job) -> Result<pb::Job, Status> {
        let steps = self.shared.store.steps(job.id).await.map_err(store_error)?;
        Ok(job_pb(job, steps))
    }

    /// Asks the project service for the project as the caller (so someone else's project is
    /// NOT_FOUND there too) and turns it into a video request.
    async fn video_request<T>(
        &self,
        request: &Request<T>,
        project_id: Uuid,
    ) -> Result<VideoRequest, Status> {
        let auth = request
            .metadata()
            .get("authorization")
            .cloned()
            .ok_or_else(|| Status::unauthenticated("missing bearer token"))?;
        let mut projects = self.shared.projects.clone();
        let mut get = Request::new(project_pb::GetProjectRequest {
            id: project_id.to_string(),
        });
        get.metadata_mut().insert("authorization", auth.clone());
        let project = projects
            .get_project(get)
            .await
            .map_err(|s| Status::from(Error::from(s)))?
            .into_inner();
        let settings = project.settings.clone().unwrap_or_default();
        let source =
            match (project.source_text.clone(), project.topic.clone()) {
                (Some(text), _) if !text.trim().is_empty() => PlanSource::Text {
                    text,
                    section: Some(settings.section.clone()).filter(|s| !s.trim().is_empty()),
                },
                (_, Some(topic)) if !topic.trim().is_empty() => {
                    let planners = self.shared.providers.script.providers();
                    if planners.iter().all(|p| p == "text-planner") {
                        return Err(Error::new(
                        ErrorCode::FailedPrecondition,
                        "the project has a topic but no text, and this deployment has no language \
                         model to write a script from a topic: set the project's source_text to \
                         the words to narrate",
                    )
                    .with_field("source_text")
                    .into());
                    }
                    PlanSource::Topic { topic }
                }
                _ => return Err(Error::new(
                    ErrorCode::FailedPrecondition,
                    "the project has no text to narrate: set its source_text (or a topic) first",
                )
                .with_field("source_text")
                .into()),
            };
        let aspect = match common::Aspect::try_from(project.aspect) {
            Ok(common::Aspect::Portrait) => AspectPreset::Portrait,
            Ok(common::Aspect::Square) => AspectPreset::Square,
            Ok(common::Aspect::Feed) => AspectPreset::Feed,
            _ => AspectPreset::Landscape,
        };
        let style = match Style::load(&project.style) {
            Ok(style) => style,
            Err(studio_pipeline::style::StyleError::Unknown { .. }) => {
                let mut list = Request::new(project_pb::ListPresetsRequest {});
                list.metadata_mut().insert("authorization", auth);
                let presets = projects
                    .list_presets(list)
                    .await
                    .map_err(|s| Status::from(Error::from(s)))?
                    .into_inner()
                    .presets;
                let preset = presets
                    .into_iter()
                    .find(|p| p.name == project.style)
                    .ok_or_else(|| {
                        Status::from(
                            Error::new(
                                ErrorCode::FailedPrecondition,
                                format!(
                                    "the project's style preset {:?} no longer exists: pick another style",
                                    project.style
                                ),
                            )
                            .with_field("style"),
                        )
                    })?;
                Style::parse(&preset.name, &preset.style_toml).map_err(|e| {
                    Status::from(
                        Error::new(ErrorCode::FailedPrecondition, e.to_string())
                            .with_field("style"),
                    )
                })?
            }
            Err(e) => {
                return Err(Error::new(ErrorCode::FailedPrecondition, e.to_string())
                    .with_field("style")
                    .into())
            }
        };
        let request = VideoRequest {
            source,
            aspect,
            fps: FPS,
            duration_s: Some(settings.duration_s).filter(|d| *d > 0.0),
            style,
            voice: Voice {
                name: if settings.voice.is_empty() {
                    "en-us".to_owned()
                } else {
                    settings.voice.clone()
                },
                rate_wpm: if settings.rate_wpm == 0 {
                    165
                } else {
                    settings.rate_wpm
                },
                pitch: 50,
            },
            sentence_pause_s: SENTENCE_PAUSE_S,
            music: if settings.music {
                MusicChoice::Generate
            } else {
                MusicChoice::Silent
            },
            seed: settings.seed,
        };
        requests::narration_budget(&request).map_err(|e| {
            Status::from(
                Error::new(ErrorCode::FailedPrecondition, e.to_string())
                    .with_field("settings.duration_s"),
            )
        })?;
        Ok(request)
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::JobEvent, Status>> + Send>>;

#[tonic::async_trait]
impl pb::job_service_server::JobService for GrpcJobs {
    async fn start_job(
        &self,
        request: Request<pb::StartJobRequest>,
    ) -> Result<Response<pb::Job>, Status> {
        let caller = self.caller(&request).await?;
        let body = request.get_ref();
        let project = parse_id("project_id", &body.project_id)?;
        let key = body.idempotency_key.trim().to_owned();
        if key.is_empty() || key.len() > 200 {
            return Err(Error::invalid(
                "idempotency_key",
                "must be 1 to 200 characters; reuse it to retry the same start",
            )
            .into());
        }
        let video = self.video_request(&request, project).await?;
        let plan = NewStep {
            kind: "plan".to_owned(),
            scene: None,
            stage: 0,
            max_attempts: self.shared.max_attempts,
            input: serde_json::to_value(PlanInput { request: video })
                .map_err(|e| internal("encoding the plan input", e))?,
        };
        let (job, created) = self
            .shared
            .store
            .create_job(caller.user_id.0, project, &key, &[plan])
            .await
            .map_err(store_error)?;
        if created {
            metrics::counter!("ai_job_jobs_started_total").increment(1);
            tracing::info!(job = %job.id, %project, "job started");
        } else if job.project_id != project {
            return Err(Error::new(
                ErrorCode::AlreadyExists,
                "this idempotency_key already started a job for another project; use a new key",
            )
            .with_field("idempotency_key")
            .into());
        }
        Ok(Response::new(self.full(job).await?))
    }

    async fn get_job(
        &self,
        request: Request<pb::GetJobRequest>,
    ) -> Result<Response<pb::Job>, Status> {
        let caller = self.caller(&request).await?;
        let id = parse_id("id", &request.get_ref().id)?;
        let job = self
            .shared
            .store
            .job_for_owner(caller.user_id.0, id)
            .await
            .map_err(store_error)?;
        Ok(Response::new(self.full(job).await?))
    }

    async fn cancel_job(
        &self,
        request: Request<pb::CancelJobRequest>,
    ) -> Result<Response<pb::Job>, Status> {
        let caller = self.caller(&request).await?;
        let id = parse_id("id", &request.get_ref().id)?;
        let job = self
            .shared
            .store
            .cancel(caller.user_id.0, id)
            .await
            .map_err(store_error)?;
        Ok(Response::new(self.full(job).await?))
    }

    async fn list_jobs(
        &self,
        request: Request<pb::ListJobsRequest>,
    ) -> Result<Response<pb::ListJobsResponse>, Status> {
        let caller = self.caller(&request).await?;
        let body = request.get_ref();
        let project = match &body.project_id {
            Some(p) => Some(parse_id("project_id", p)?),
            None => None,
        };
        let page_req = body.page.clone().unwrap_or_default();
        let page = Page::parse(page_req.page_size, &page_req.page_token)?;
        let before = match &page.after {
            Some(cursor) => Some(Uuid::parse_str(cursor).map_err(|_| {
                Status::from(Error::invalid(
                    "page_token",
                    "is not a token this service returned; pass next_page_token unchanged",
                ))
            })?),
            None => None,
        };
        let rows = self
            .shared
            .store
            .list_jobs(caller.user_id.0, project, before, page.fetch())
            .await
            .map_err(store_error)?;
        let (rows, next_page_token) = studio_core::page::finish(&page, rows, |j| j.id.to_string());
        let mut jobs = Vec::with_capacity(rows.len());
        for job in rows {
            jobs.push(self.full(job).await?);
        }
        Ok(Response::new(pb::ListJobsResponse {
            jobs,
            next_page_token,
        }))
    }

    type WatchJobStream = EventStream;

    async fn watch_job(
        &self,
        request: Request<pb::WatchJobRequest>,
    ) -> Result<Response<Self::WatchJobStream>, Status> {
        let caller = self.caller(&request).await?;
        let id = parse_id("id", &request.get_ref().id)?;
        let store = &self.shared.store;
        store
            .job_for_owner(caller.user_id.0, id)
            .await
            .map_err(store_error)?;
        // The current state first: start just before the latest event.
        let latest = sqlx::query_scalar!(r#"SELECT event_seq FROM jobs WHERE id = $1"#, id)
            .fetch_one(&store.pool)
            .await
            .map_err(|e| internal("reading the job's event sequence", e))?;
        let watch = Watch::start(store.clone(), &self.events, id, (latest - 1).max(0))
            .await
            .map_err(store_error)?;
        let stream = futures_util::stream::unfold(Some(watch), |state| async move {
            let mut watch = state?;
            match watch.next().await {
                Ok(Some(event)) => Some((Ok(event_pb(event)), Some(watch))),
                Ok(None) => None,
                Err(err) => Some((Err(store_error(err)), None)),
            }
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn get_output_url(
        &self,
        request: Request<pb::GetOutputUrlRequest>,
    ) -> Result<Response<pb::OutputUrl>, Status> {
        let caller = self.caller(&request).await?;
        let body = request.get_ref();
        let id = parse_id("id", &body.id)?;
        let job = self
            .shared
            .store
            .job_for_owner(caller.user_id.0, id)
            .await
            .map_err(store_error)?;
        if output_file(&body.kind).is_none() {
            return Err(Error::invalid(
                "kind",
                "must be one of video, captions_srt, captions_vtt, thumbnail",
            )
            .into());
        }
        if job.state != State::Succeeded {
            return Err(Error::new(
                ErrorCode::FailedPrecondition,
                format!(
                    "the job has no outputs yet: it is {}; wait for it to succeed",
                    job.state.as_str()
                ),
            )
            .into());
        }
        let steps = self.shared.store.steps(id).await.map_err(store_error)?;
        let output = outputs(&steps)
            .into_iter()
            .find(|o| o.kind == body.kind)
            .ok_or_else(|| Status::from(Error::not_found("output")))?;
        let key = ObjectKey::parse(output.storage_key.clone())
            .map_err(|e| internal("stored output key", e))?;
        let ttl = self.shared.output_url_ttl;
        let url = self
            .shared
            .storage
            .presign_get(&key, ttl)
            .await
            .map_err(|e| internal("presigning a download", e))?;
        Ok(Response::new(pb::OutputUrl {
            url: url.to_string(),
            expires_at_ms: chrono::Utc::now().timestamp_millis() + ttl.as_millis() as i64,
            size_bytes: output.size_bytes,
        }))
    }
}

/// `studio.job.v1.RenderLeaseService`.
#[derive(Debug, Clone)]
pub struct GrpcRenderLeases {
    pub shared: Shared,
}

fn lease_len(seconds: u32) -> Duration {
    Duration::from_secs(seconds.clamp(5, 3600) as u64)
}

#[tonic::async_trait]
impl pb::render_lease_service_server::RenderLeaseService for GrpcRenderLeases {
    async fn claim_render(
        &self,
        request: Request<pb::ClaimRenderRequest>,
    ) -> Result<Response<pb::ClaimRenderResponse>, Status> {
        let body = request.into_inner();
        let step = parse_id("step_id", &body.step_id)?;
        let lease = self
            .shared
            .store
            .claim_kind(
                step,
                Some(RENDER_KIND),
                &body.worker,
                lease_len(body.lease_s),
            )
            .await
            .map_err(store_error)?;
        let Some(lease) = lease else {
            return Ok(Response::new(pb::ClaimRenderResponse::default()));
        };
        let input: RenderInput = serde_json::from_value(lease.input.clone())
            .map_err(|e| internal("render step input", e))?;
        Ok(Response::new(pb::ClaimRenderResponse {
            claimed: true,
            attempt: lease.attempt as u32,
            task: Some(render_pb::RenderTask {
                job_id: lease.job_id.to_string(),
                project_id: lease.project_id.to_string(),
                fencing_token: lease.fencing_token as u64,
                timeline_key: input.timeline_key,
                inputs: input.inputs.into_iter().collect(),
                output_prefix: input.output_prefix,
                encoder: String::new(),
                step_id: step.to_string(),
            }),
        }))
    }

    async fn heartbeat_render(
        &self,
        request: Request<pb::HeartbeatRenderRequest>,
    ) -> Result<Response<pb::HeartbeatRenderResponse>, Status> {
        let body = request.into_inner();
        let step = parse_id("step_id", &body.step_id)?;
        self.shared
            .store
            .heartbeat_step(step, body.fencing_token as i64, lease_len(body.lease_s))
            .await
            .map_err(store_error)?;
        Ok(Response::new(pb::HeartbeatRenderResponse {}))
    }

    async fn finish_render(
        &self,
        request: Request<render_pb::RenderResult>,
    ) -> Result<Response<pb::FinishRenderResponse>, Status> {
        let result = request.into_inner();
        let step = parse_id("step_id", &result.step_id)?;
        let store = &self.shared.store;
        let lease = store
            .lease_of(step, result.fencing_token as i64)
            .await
            .map_err(store_error)?;
        if result.ok {
            let files: Vec<serde_json::Value> = result
                .files
                .iter()
                .map(|f| {
                    serde_json::json!({
                        "kind": f.kind, "storage_key": f.storage_key,
                        "size_bytes": f.size_bytes, "sha256": f.sha256,
                    })
                })
                .collect();
            let output = serde_json::json!({
                "files": files,
                "duration_s": result.duration_s,
                "render_seconds": result.render_seconds,
                "encoder": result.encoder,
                "worker": result.worker,
            });
            store
                .complete(&lease, output, 0, &[])
                .await
                .map_err(store_error)?;
        } else {
            let failure = if result.retryable {
                Failure::Retryable {
                    error: result.error,
                    backoff: Duration::from_secs(1),
                }
            } else {
                Failure::Final {
                    error: result.error,
                }
            };
            store.fail(&lease, failure).await.map_err(store_error)?;
        }
        Ok(Response::new(pb::FinishRenderResponse {}))
    }
}
