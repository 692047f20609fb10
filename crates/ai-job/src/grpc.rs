//! The gRPC adapters: prost ↔ domain only. `studio.job.v1.JobService` (for signed-in users
//! through the gateway; every call is scoped to the caller's own jobs) and
//! `studio.job.v1.RenderLeaseService` (for media-render workers inside the cluster) call
//! [`crate::service`]; the project service is reached through [`GrpcProjects`].

use std::pin::Pin;
use std::sync::Arc;

use futures_util::Stream;
use studio_auth::service::ServiceChannel;
use studio_auth::{Caller, JwksVerifier};
use studio_core::id::{JobId, ProjectId, StepId};
use studio_core::page::Page;
use studio_core::Error;
use studio_media::timeline::AspectPreset;
use studio_proto::common::v1 as common;
use studio_proto::job::v1 as pb;
use studio_proto::project::v1 as project_pb;
use studio_proto::project::v1::project_service_client::ProjectServiceClient;
use studio_proto::render::v1 as render_pb;
use tonic::metadata::MetadataValue;
use tonic::{Request, Response, Status};

use crate::messages;
use crate::service::{
    lease_len, JobView, Jobs, ProjectSource, Projects, RenderLeases, RenderReport,
};
use crate::store::{JobEvent, RenderOutput, RenderedFile, State, Step};

fn ms(t: chrono::DateTime<chrono::Utc>) -> i64 {
    t.timestamp_millis()
}

impl From<State> for pb::State {
    fn from(state: State) -> pb::State {
        match state {
            State::Queued => pb::State::Queued,
            State::Running => pb::State::Running,
            State::Succeeded => pb::State::Succeeded,
            State::Failed => pb::State::Failed,
            State::Cancelled => pb::State::Cancelled,
        }
    }
}

impl From<Step> for pb::Step {
    fn from(s: Step) -> pb::Step {
        pb::Step {
            id: s.id.to_string(),
            kind: s.kind,
            scene: s.scene.map(|n| n as u32),
            state: pb::State::from(s.state) as i32,
            attempts: s.attempts as u32,
            error: s.error,
            cost_micro_usd: s.cost_micro_usd,
            started_at_ms: s.started_at.map(ms).unwrap_or_default(),
            finished_at_ms: s.finished_at.map(ms).unwrap_or_default(),
        }
    }
}

impl From<JobView> for pb::Job {
    fn from(view: JobView) -> pb::Job {
        let percent = view.percent();
        let outputs = view
            .outputs()
            .into_iter()
            .map(|f| pb::Output {
                kind: f.kind,
                storage_key: f.storage_key,
                size_bytes: f.size_bytes,
            })
            .collect();
        let job = view.job;
        pb::Job {
            id: job.id.to_string(),
            project_id: job.project_id.to_string(),
            owner_id: job.owner_id.to_string(),
            state: pb::State::from(job.state) as i32,
            percent,
            stage: job.stage,
            error: job.error,
            cost_micro_usd: job.cost_micro_usd,
            outputs,
            steps: view.steps.into_iter().map(pb::Step::from).collect(),
            created_at_ms: ms(job.created_at),
            updated_at_ms: ms(job.updated_at),
        }
    }
}

impl From<JobEvent> for pb::JobEvent {
    fn from(e: JobEvent) -> pb::JobEvent {
        pb::JobEvent {
            job_id: e.job_id.to_string(),
            sequence: e.sequence as u64,
            state: pb::State::from(e.state) as i32,
            stage: e.stage,
            percent: e.percent,
            message: e.message,
            cost_micro_usd: e.cost_micro_usd,
            at_ms: ms(e.at),
        }
    }
}

impl From<render_pb::RenderResult> for RenderReport {
    fn from(result: render_pb::RenderResult) -> RenderReport {
        if !result.ok {
            return RenderReport::Failed {
                error: result.error,
                retryable: result.retryable,
            };
        }
        RenderReport::Done(RenderOutput {
            files: result
                .files
                .into_iter()
                .map(|f| RenderedFile {
                    kind: f.kind,
                    storage_key: f.storage_key,
                    size_bytes: f.size_bytes,
                    sha256: f.sha256,
                })
                .collect(),
            duration_s: result.duration_s,
            render_seconds: result.render_seconds,
            encoder: result.encoder,
            worker: result.worker,
        })
    }
}

fn aspect_from_pb(aspect: i32) -> AspectPreset {
    match common::Aspect::try_from(aspect) {
        Ok(common::Aspect::Portrait) => AspectPreset::Portrait,
        Ok(common::Aspect::Square) => AspectPreset::Square,
        Ok(common::Aspect::Feed) => AspectPreset::Feed,
        _ => AspectPreset::Landscape,
    }
}

impl From<project_pb::Project> for ProjectSource {
    fn from(p: project_pb::Project) -> ProjectSource {
        let settings = p.settings.unwrap_or_default();
        ProjectSource {
            source_text: p.source_text,
            topic: p.topic,
            aspect: aspect_from_pb(p.aspect),
            style: p.style,
            section: settings.section,
            duration_s: settings.duration_s,
            voice: settings.voice,
            rate_wpm: settings.rate_wpm,
            music: settings.music,
            seed: settings.seed,
        }
    }
}

/// [`Projects`] over the project service's gRPC API.
#[derive(Debug, Clone)]
pub struct GrpcProjects(pub ProjectServiceClient<ServiceChannel>);

/// The caller's `authorization` value, passed on to the project service.
fn bearer<T>(request: &Request<T>) -> Result<String, Status> {
    Ok(request
        .metadata()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| Status::unauthenticated("missing bearer token"))?
        .to_owned())
}

fn with_bearer<T>(body: T, bearer: &str) -> Result<Request<T>, Error> {
    let mut request = Request::new(body);
    let value = MetadataValue::try_from(bearer)
        .map_err(|_| Error::new(studio_core::ErrorCode::Unauthenticated, "malformed token"))?;
    request.metadata_mut().insert("authorization", value);
    Ok(request)
}

#[tonic::async_trait]
impl Projects for GrpcProjects {
    async fn project(&self, bearer: &str, id: ProjectId) -> Result<ProjectSource, Error> {
        let get = project_pb::GetProjectRequest { id: id.to_string() };
        let project = self
            .0
            .clone()
            .get_project(with_bearer(get, bearer)?)
            .await
            .map_err(Error::from)?
            .into_inner();
        Ok(project.into())
    }

    async fn preset(&self, bearer: &str, name: &str) -> Result<Option<String>, Error> {
        // One preset by name: the start of a job does not depend on how many the user has
        // (security review L7).
        let get = with_bearer(
            project_pb::GetPresetRequest {
                name: name.to_owned(),
            },
            bearer,
        )?;
        match self.0.clone().get_preset(get).await {
            Ok(preset) => Ok(Some(preset.into_inner().style_toml)),
            Err(status) if status.code() == tonic::Code::NotFound => Ok(None),
            Err(status) => Err(Error::from(status)),
        }
    }
}

/// `studio.job.v1.JobService`.
#[derive(Debug, Clone)]
pub struct GrpcJobs {
    pub jobs: Jobs,
    pub verifier: Arc<JwksVerifier>,
}

impl GrpcJobs {
    async fn caller<T>(&self, request: &Request<T>) -> Result<Caller, Status> {
        self.verifier.verify_request(request).await
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
        let bearer = bearer(&request)?;
        let body = request.into_inner();
        let project = ProjectId::parse("project_id", &body.project_id)?;
        let (view, _) = self
            .jobs
            .start(caller.user_id, &bearer, project, &body.idempotency_key)
            .await?;
        Ok(Response::new(view.into()))
    }

    async fn get_job(
        &self,
        request: Request<pb::GetJobRequest>,
    ) -> Result<Response<pb::Job>, Status> {
        let caller = self.caller(&request).await?;
        let id = JobId::parse("id", &request.get_ref().id)?;
        Ok(Response::new(
            self.jobs.get(caller.user_id, id).await?.into(),
        ))
    }

    async fn cancel_job(
        &self,
        request: Request<pb::CancelJobRequest>,
    ) -> Result<Response<pb::Job>, Status> {
        let caller = self.caller(&request).await?;
        let id = JobId::parse("id", &request.get_ref().id)?;
        Ok(Response::new(
            self.jobs.cancel(caller.user_id, id).await?.into(),
        ))
    }

    async fn delete_project_jobs(
        &self,
        request: Request<pb::DeleteProjectJobsRequest>,
    ) -> Result<Response<pb::DeleteProjectJobsResponse>, Status> {
        let caller = self.caller(&request).await?;
        let bearer = bearer(&request)?;
        let project = ProjectId::parse("project_id", &request.get_ref().project_id)?;
        let deleted = self
            .jobs
            .delete_project(caller.user_id, &bearer, project)
            .await?;
        Ok(Response::new(pb::DeleteProjectJobsResponse {
            jobs_deleted: deleted as i64,
        }))
    }

    async fn list_jobs(
        &self,
        request: Request<pb::ListJobsRequest>,
    ) -> Result<Response<pb::ListJobsResponse>, Status> {
        let caller = self.caller(&request).await?;
        let body = request.into_inner();
        let project = match &body.project_id {
            Some(p) => Some(ProjectId::parse("project_id", p)?),
            None => None,
        };
        let page_req = body.page.unwrap_or_default();
        let page = Page::parse(page_req.page_size, &page_req.page_token)?;
        let (jobs, next_page_token) = self.jobs.list(caller.user_id, project, &page).await?;
        Ok(Response::new(pb::ListJobsResponse {
            jobs: jobs.into_iter().map(pb::Job::from).collect(),
            next_page_token,
        }))
    }

    type WatchJobStream = EventStream;

    async fn watch_job(
        &self,
        request: Request<pb::WatchJobRequest>,
    ) -> Result<Response<Self::WatchJobStream>, Status> {
        let caller = self.caller(&request).await?;
        let id = JobId::parse("id", &request.get_ref().id)?;
        let watch = self.jobs.watch(caller.user_id, id).await?;
        let stream = futures_util::stream::unfold(Some(watch), |state| async move {
            let mut watch = state?;
            match watch.next().await {
                Ok(Some(event)) => Some((Ok(event.into()), Some(watch))),
                Ok(None) => None,
                Err(err) => Some((Err(Status::from(Error::from(err))), None)),
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
        let id = JobId::parse("id", &body.id)?;
        let url = self.jobs.output_url(caller.user_id, id, &body.kind).await?;
        Ok(Response::new(pb::OutputUrl {
            url: url.url,
            expires_at_ms: url.expires_at_ms,
            size_bytes: url.size_bytes,
        }))
    }
}

/// `studio.job.v1.RenderLeaseService`.
#[derive(Debug, Clone)]
pub struct GrpcRenderLeases {
    pub leases: RenderLeases,
}

#[tonic::async_trait]
impl pb::render_lease_service_server::RenderLeaseService for GrpcRenderLeases {
    async fn claim_render(
        &self,
        request: Request<pb::ClaimRenderRequest>,
    ) -> Result<Response<pb::ClaimRenderResponse>, Status> {
        let body = request.into_inner();
        let step = StepId::parse("step_id", &body.step_id)?;
        let claimed = self
            .leases
            .claim(step, &body.worker, lease_len(body.lease_s))
            .await?;
        let Some((lease, input)) = claimed else {
            return Ok(Response::new(pb::ClaimRenderResponse::default()));
        };
        Ok(Response::new(pb::ClaimRenderResponse {
            claimed: true,
            attempt: lease.attempt as u32,
            task: Some(messages::render_task(&lease, input)),
        }))
    }

    async fn heartbeat_render(
        &self,
        request: Request<pb::HeartbeatRenderRequest>,
    ) -> Result<Response<pb::HeartbeatRenderResponse>, Status> {
        let body = request.into_inner();
        let step = StepId::parse("step_id", &body.step_id)?;
        self.leases
            .heartbeat(step, body.fencing_token as i64, lease_len(body.lease_s))
            .await?;
        Ok(Response::new(pb::HeartbeatRenderResponse {}))
    }

    async fn finish_render(
        &self,
        request: Request<render_pb::RenderResult>,
    ) -> Result<Response<pb::FinishRenderResponse>, Status> {
        let result = request.into_inner();
        let step = StepId::parse("step_id", &result.step_id)?;
        let token = result.fencing_token as i64;
        self.leases.finish(step, token, result.into()).await?;
        Ok(Response::new(pb::FinishRenderResponse {}))
    }
}
