//! The internal gRPC ports of the in-process platform refuse callers without a service identity
//! (security review H1): ai-job's render-lease listener answers `UNAUTHENTICATED` with no
//! credentials, `PERMISSION_DENIED` to a user's access token, `UNAUTHENTICATED` to a token signed
//! with the platform key (only the render-lease key opens it); the job API refuses a user token
//! without the gateway's service token.

mod support;

use studio_auth::service::{audience, ServiceIdentity};
use studio_proto::job::v1 as pb;
use studio_proto::job::v1::job_service_client::JobServiceClient;
use studio_proto::job::v1::render_lease_service_client::RenderLeaseServiceClient;
use support::Platform;

fn with_bearer<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

fn claim() -> pb::ClaimRenderRequest {
    pb::ClaimRenderRequest {
        step_id: uuid::Uuid::new_v4().to_string(),
        worker: "intruder".into(),
        lease_s: 3600,
    }
}

#[tokio::test]
async fn render_leases_need_a_service_identity() {
    let p = Platform::start().await;
    let (user, _, _) = p.register("lease-intruder@example.com").await;
    let mut bare = RenderLeaseServiceClient::connect(p.job_lease.clone())
        .await
        .unwrap();
    let none = bare.claim_render(claim()).await.unwrap_err();
    assert_eq!(none.code(), tonic::Code::Unauthenticated, "{none:?}");
    let as_user = bare
        .claim_render(with_bearer(claim(), &user))
        .await
        .unwrap_err();
    assert_eq!(as_user.code(), tonic::Code::PermissionDenied, "{as_user:?}");

    // The gateway's identity (the platform key) does not open the lease listener.
    let gateway = ServiceIdentity::development("gateway");
    let mut platform_key = RenderLeaseServiceClient::new(
        gateway
            .tokens(audience::RENDER_LEASE)
            .connect(p.job_lease.clone())
            .await
            .unwrap(),
    );
    let refused = platform_key.claim_render(claim()).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");

    // A render worker's identity reaches the handler: an unknown step is simply not claimed.
    let worker = ServiceIdentity::development("media-render");
    let mut leases = RenderLeaseServiceClient::new(
        worker
            .lease_tokens()
            .connect(p.job_lease.clone())
            .await
            .unwrap(),
    );
    let answer = leases.claim_render(claim()).await;
    assert!(
        !matches!(
            answer.as_ref().map_err(|s| s.code()),
            Err(tonic::Code::Unauthenticated | tonic::Code::PermissionDenied)
        ),
        "{answer:?}"
    );

    // The job API: a user token alone is refused; with the gateway's token it is the user's call.
    let mut jobs = JobServiceClient::connect(p.job_grpc.clone()).await.unwrap();
    let list = pb::ListJobsRequest::default();
    let alone = jobs
        .list_jobs(with_bearer(list.clone(), &user))
        .await
        .unwrap_err();
    assert_eq!(alone.code(), tonic::Code::PermissionDenied, "{alone:?}");
    let mut jobs = JobServiceClient::new(
        gateway
            .tokens(audience::AI_JOB)
            .connect(p.job_grpc.clone())
            .await
            .unwrap(),
    );
    jobs.list_jobs(with_bearer(list, &user)).await.unwrap();
    p.stop().await;
}
