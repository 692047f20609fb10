//! What every handler can reach: [`AppState`], the gRPC clients of the services, the token
//! verifier, the rate limiters and the upstream deadline. Routes, extractors and the rate
//! limiter take it from here, so none of them reaches into `startup`.

use std::sync::Arc;
use std::time::Duration;

use studio_auth::service::ServiceChannel;
use studio_auth::JwksVerifier;
use studio_proto::job::v1::job_service_client::JobServiceClient;
use studio_proto::project::v1::project_service_client::ProjectServiceClient;
use studio_proto::user::v1::user_service_client::UserServiceClient;

use crate::rate::Limits;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    pub user: UserServiceClient<ServiceChannel>,
    pub project: ProjectServiceClient<ServiceChannel>,
    pub jobs: JobServiceClient<ServiceChannel>,
    pub verifier: Arc<JwksVerifier>,
    pub limits: Arc<Limits>,
    /// Deadline of each call to a service.
    pub timeout: Duration,
    /// (service, host:port) of the gRPC upstreams, for readiness.
    pub upstreams: Arc<Vec<(String, String)>>,
}
