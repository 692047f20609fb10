//! The probe of every internal gRPC port (security review H1; issue 13's acceptance): each rpc of
//! each service, read from `proto/`, is called on the port of the running process without
//! credentials (refused: `UNAUTHENTICATED`) and with a user's access token alone (refused:
//! `PERMISSION_DENIED`). A forged service token, a token for another port, and the platform key
//! on the render-lease port are refused too; the right token gets through.
//!
//! Run it alone: `cargo test -p studio-e2e --test internal_ports -- --nocapture` prints the
//! answer of every port and rpc.

use std::collections::BTreeMap;

use studio_auth::service::{self, audience, ServiceIdentity};
use studio_e2e::api::Api;
use studio_e2e::{Broker, Options, Platform};
use studio_proto::render::v1::GetWorkerStatusRequest as Empty;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::metadata::MetadataKey;

/// Every rpc of the services that run as processes, `/package.Service/Method`, by service.
fn rpcs() -> BTreeMap<String, Vec<String>> {
    let mut rpcs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for name in ["user", "project", "job", "render"] {
        let path = studio_testkit::repo().join(format!("proto/studio/{name}/v1/{name}.proto"));
        let text = std::fs::read_to_string(&path).unwrap();
        let package = text
            .lines()
            .find_map(|l| l.strip_prefix("package "))
            .unwrap()
            .trim_end_matches(';')
            .to_owned();
        let mut service = None;
        for line in text.lines().map(str::trim) {
            if let Some(rest) = line.strip_prefix("service ") {
                service = Some(format!("{package}.{}", rest.trim_end_matches('{').trim()));
            } else if let (Some(rest), Some(service)) = (line.strip_prefix("rpc "), &service) {
                let method = rest.split('(').next().unwrap().trim();
                rpcs.entry(service.clone())
                    .or_default()
                    .push(format!("/{service}/{method}"));
            }
        }
    }
    rpcs
}

/// Calls `path` on `port` with `metadata`, sending an empty message (the check comes before
/// the message is read).
async fn call(port: u16, path: &str, metadata: &[(&str, String)]) -> Result<(), tonic::Status> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let mut request = tonic::Request::new(Empty {});
    for (key, value) in metadata {
        let key = MetadataKey::from_bytes(key.as_bytes()).unwrap();
        request.metadata_mut().insert(key, value.parse().unwrap());
    }
    let path = PathAndQuery::try_from(path.to_owned()).unwrap();
    let codec = tonic_prost::ProstCodec::<Empty, Empty>::default();
    grpc.unary(request, path, codec).await.map(|_| ())
}

fn token(tokens: &service::ServiceToken) -> (&'static str, String) {
    (
        service::METADATA,
        tokens.token().to_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn every_internal_port_refuses_callers_without_a_service_identity() {
    let platform = Platform::start(Options::new(Broker::local_rabbitmq())).await;
    let user = Api::new(&platform).register("probe@example.com").await;
    let bearer = ("authorization", format!("Bearer {user}"));
    let ports: BTreeMap<&str, (u16, &str)> = BTreeMap::from([
        (
            "studio.user.v1.UserService",
            (platform.ports.user_grpc, audience::USER),
        ),
        (
            "studio.project.v1.ProjectService",
            (platform.ports.project_grpc, audience::PROJECT),
        ),
        (
            "studio.job.v1.JobService",
            (platform.ports.job_grpc, audience::AI_JOB),
        ),
        (
            "studio.job.v1.RenderLeaseService",
            (platform.ports.job_lease, audience::RENDER_LEASE),
        ),
        (
            "studio.render.v1.RenderService",
            (platform.ports.render_grpc, audience::MEDIA_RENDER),
        ),
    ]);
    let rpcs = rpcs();
    assert_eq!(
        rpcs.keys().map(String::as_str).collect::<Vec<_>>(),
        ports.keys().copied().collect::<Vec<_>>(),
        "a service in proto/ without a port in this probe"
    );
    let gateway = ServiceIdentity::development("gateway");
    let stranger = service::IdentitySettings {
        key: "c29tZW9uZS1lbHNlcy1rZXktdGhhdC1pcy0zMi1ieXRlcw==".into(),
        ..service::IdentitySettings::development(service::LeaseKey::NotHeld)
    }
    .identity("stranger", "gateway", service::LeaseKey::NotHeld)
    .unwrap();
    for (service, methods) in &rpcs {
        let (port, aud) = ports[service.as_str()];
        for method in methods {
            let bare = call(port, method, &[]).await.unwrap_err();
            assert_eq!(
                bare.code(),
                tonic::Code::Unauthenticated,
                "{method} without credentials: {bare:?}"
            );
            let user = call(port, method, std::slice::from_ref(&bearer))
                .await
                .unwrap_err();
            assert_eq!(
                user.code(),
                tonic::Code::PermissionDenied,
                "{method} with a user token: {user:?}"
            );
            println!(
                "{service} on :{port} {method}: no credentials → {:?}, user token → {:?}",
                bare.code(),
                user.code()
            );
        }
        let method = &methods[0];
        let forged = call(port, method, &[token(&stranger.tokens(aud))])
            .await
            .unwrap_err();
        assert_eq!(
            forged.code(),
            tonic::Code::Unauthenticated,
            "{method}, forged: {forged:?}"
        );
        let elsewhere = if aud == audience::USER {
            audience::PROJECT
        } else {
            audience::USER
        };
        let other = call(port, method, &[token(&gateway.tokens(elsewhere))])
            .await
            .unwrap_err();
        let expected = if aud == audience::RENDER_LEASE {
            // Another key altogether: the platform key opens nothing here.
            tonic::Code::Unauthenticated
        } else {
            tonic::Code::PermissionDenied
        };
        assert_eq!(
            other.code(),
            expected,
            "{method}, a token for {elsewhere}: {other:?}"
        );
    }
    // The platform key, even for the render-lease audience, does not open the lease port.
    let lease = ports["studio.job.v1.RenderLeaseService"].0;
    let claim = "/studio.job.v1.RenderLeaseService/ClaimRender";
    let platform_key = call(
        lease,
        claim,
        &[token(&gateway.tokens(audience::RENDER_LEASE))],
    )
    .await
    .unwrap_err();
    assert_eq!(
        platform_key.code(),
        tonic::Code::Unauthenticated,
        "{platform_key:?}"
    );
    // The right identity gets through to the handlers.
    let worker = ServiceIdentity::development("media-render");
    let claimed = call(lease, claim, &[token(&worker.lease_tokens())]).await;
    assert!(
        !matches!(
            claimed.as_ref().map_err(|s| s.code()),
            Err(tonic::Code::Unauthenticated | tonic::Code::PermissionDenied)
        ),
        "{claimed:?}"
    );
    let status = call(
        platform.ports.render_grpc,
        "/studio.render.v1.RenderService/GetWorkerStatus",
        &[token(&gateway.tokens(audience::MEDIA_RENDER))],
    )
    .await;
    assert!(status.is_ok(), "{status:?}");
    platform.stop().await;
}
