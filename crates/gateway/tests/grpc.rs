//! The user and project services over gRPC directly (no gateway): the main flow, the
//! authorization matrix generated from `proto/studio/project/v1/project.proto`, and Google sign-in
//! (authorization code + PKCE) against a local fake of Google's token and userinfo endpoints.

mod support;

use std::collections::BTreeSet;

use base64::Engine as _;
use studio_proto::common::v1 as common;
use studio_proto::project::v1 as pb;
use studio_proto::project::v1::project_service_client::ProjectServiceClient;
use studio_proto::user::v1 as upb;
use studio_proto::user::v1::user_service_client::UserServiceClient;
use support::{fable, Options, Platform};
use tonic::transport::Channel;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn authed<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

async fn register(users: &mut UserServiceClient<Channel>, email: &str) -> String {
    users
        .register(upb::RegisterRequest {
            email: email.to_owned(),
            password: "correct horse battery".to_owned(),
            display_name: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .access_token
}

#[tokio::test]
async fn the_main_flow_over_grpc() {
    let p = Platform::start().await;
    let mut users = UserServiceClient::connect(p.user_grpc.clone())
        .await
        .unwrap();
    let mut projects = ProjectServiceClient::connect(p.project_grpc.clone())
        .await
        .unwrap();
    register(&mut users, "grpc@example.com").await;
    let pair = users
        .sign_in(upb::SignInRequest {
            email: "grpc@example.com".into(),
            password: "correct horse battery".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let token = pair.access_token;
    let me = users
        .get_me(authed(upb::GetMeRequest {}, &token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(me.email, "grpc@example.com");
    let wrong = users
        .sign_in(upb::SignInRequest {
            email: "grpc@example.com".into(),
            password: "wrong horse battery".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), tonic::Code::Unauthenticated);

    let created = projects
        .create_project(authed(
            pb::CreateProjectRequest {
                title: "The Lion And The Mouse".into(),
                source_text: Some(fable()),
                topic: None,
                aspect: common::Aspect::Portrait as i32,
                style: "bold".into(),
                settings: None,
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.owner_id, me.id);
    assert_eq!(created.settings.as_ref().unwrap().rate_wpm, 165);
    let list = projects
        .list_projects(authed(pb::ListProjectsRequest { page: None }, &token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.projects.len(), 1);
    let updated = projects
        .update_project(authed(
            pb::UpdateProjectRequest {
                id: created.id.clone(),
                update_mask: vec!["topic".into()],
                topic: Some("Mice helping lions".into()),
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.topic.as_deref(), Some("Mice helping lions"));
    assert_eq!(updated.source_text, None, "a topic replaces the text");
    let bad_mask = projects
        .update_project(authed(
            pb::UpdateProjectRequest {
                id: created.id.clone(),
                update_mask: vec!["owner_id".into()],
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap_err();
    assert_eq!(bad_mask.code(), tonic::Code::InvalidArgument);
    assert_eq!(
        bad_mask
            .metadata()
            .get("studio-field")
            .unwrap()
            .to_str()
            .unwrap(),
        "update_mask"
    );
    let got = projects
        .get_project(authed(
            pb::GetProjectRequest {
                id: created.id.clone(),
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.title, "The Lion And The Mouse");
    projects
        .delete_project(authed(
            pb::DeleteProjectRequest {
                id: created.id.clone(),
            },
            &token,
        ))
        .await
        .unwrap();
    let gone = projects
        .get_project(authed(pb::GetProjectRequest { id: created.id }, &token))
        .await
        .unwrap_err();
    assert_eq!(gone.code(), tonic::Code::NotFound);
    p.stop().await;
}

/// The rpcs of `ProjectService`, read from its contract.
fn project_rpcs() -> BTreeSet<String> {
    let proto = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../proto/studio/project/v1/project.proto"
    ))
    .unwrap();
    proto
        .lines()
        .filter_map(|l| l.trim().strip_prefix("rpc "))
        .map(|l| l.split('(').next().unwrap().trim().to_owned())
        .collect()
}

#[tokio::test]
async fn another_users_objects_answer_not_found_over_grpc() {
    let p = Platform::start().await;
    let mut users = UserServiceClient::connect(p.user_grpc.clone())
        .await
        .unwrap();
    let mut c = ProjectServiceClient::connect(p.project_grpc.clone())
        .await
        .unwrap();
    let a = register(&mut users, "grpc-a@example.com").await;
    let b = register(&mut users, "grpc-b@example.com").await;
    let project = c
        .create_project(authed(
            pb::CreateProjectRequest {
                title: "A's".into(),
                topic: Some("owls".into()),
                ..Default::default()
            },
            &a,
        ))
        .await
        .unwrap()
        .into_inner();
    let scene = c
        .create_scene(authed(
            pb::CreateSceneRequest {
                project_id: project.id.clone(),
                narration: "A's scene".into(),
                ..Default::default()
            },
            &a,
        ))
        .await
        .unwrap()
        .into_inner();
    let asset = c
        .create_asset(authed(
            pb::CreateAssetRequest {
                project_id: project.id.clone(),
                kind: pb::AssetKind::Image as i32,
                storage_key: format!("projects/{}/a.png", project.id),
                ..Default::default()
            },
            &a,
        ))
        .await
        .unwrap()
        .into_inner();
    c.create_preset(authed(
        pb::CreatePresetRequest {
            name: "a-style".into(),
            description: String::new(),
            style_toml: studio_pipeline::style::BUILT_IN[1].1.into(),
        },
        &a,
    ))
    .await
    .unwrap();

    // Rpcs that take no id act on the caller's own objects only; the rest must be in the matrix.
    let without_id: BTreeSet<&str> = [
        "CreateProject",
        "ListProjects",
        "ListPresets",
        "CreatePreset",
    ]
    .into();
    let (pid, sid, aid) = (project.id.clone(), scene.id.clone(), asset.id.clone());
    let mut checked = BTreeSet::new();
    for rpc in project_rpcs() {
        if without_id.contains(rpc.as_str()) {
            continue;
        }
        let result: Result<(), tonic::Status> = match rpc.as_str() {
            "GetProject" => c
                .get_project(authed(pb::GetProjectRequest { id: pid.clone() }, &b))
                .await
                .map(drop),
            "UpdateProject" => c
                .update_project(authed(
                    pb::UpdateProjectRequest {
                        id: pid.clone(),
                        update_mask: vec!["title".into()],
                        title: Some("mine".into()),
                        ..Default::default()
                    },
                    &b,
                ))
                .await
                .map(drop),
            "DeleteProject" => c
                .delete_project(authed(pb::DeleteProjectRequest { id: pid.clone() }, &b))
                .await
                .map(drop),
            "CreateScene" => c
                .create_scene(authed(
                    pb::CreateSceneRequest {
                        project_id: pid.clone(),
                        narration: "x".into(),
                        ..Default::default()
                    },
                    &b,
                ))
                .await
                .map(drop),
            "GetScene" => c
                .get_scene(authed(pb::GetSceneRequest { id: sid.clone() }, &b))
                .await
                .map(drop),
            "ListScenes" => c
                .list_scenes(authed(
                    pb::ListScenesRequest {
                        project_id: pid.clone(),
                        page: None,
                    },
                    &b,
                ))
                .await
                .map(drop),
            "UpdateScene" => c
                .update_scene(authed(
                    pb::UpdateSceneRequest {
                        id: sid.clone(),
                        update_mask: vec!["narration".into()],
                        narration: Some("x".into()),
                        ..Default::default()
                    },
                    &b,
                ))
                .await
                .map(drop),
            "DeleteScene" => c
                .delete_scene(authed(pb::DeleteSceneRequest { id: sid.clone() }, &b))
                .await
                .map(drop),
            "CreateAsset" => c
                .create_asset(authed(
                    pb::CreateAssetRequest {
                        project_id: pid.clone(),
                        kind: 1,
                        storage_key: format!("projects/{pid}/b.png"),
                        ..Default::default()
                    },
                    &b,
                ))
                .await
                .map(drop),
            "GetAsset" => c
                .get_asset(authed(pb::GetAssetRequest { id: aid.clone() }, &b))
                .await
                .map(drop),
            "ListAssets" => c
                .list_assets(authed(
                    pb::ListAssetsRequest {
                        project_id: pid.clone(),
                        page: None,
                    },
                    &b,
                ))
                .await
                .map(drop),
            "DeleteAsset" => c
                .delete_asset(authed(pb::DeleteAssetRequest { id: aid.clone() }, &b))
                .await
                .map(drop),
            "DeletePreset" => c
                .delete_preset(authed(
                    pb::DeletePresetRequest {
                        name: "a-style".into(),
                    },
                    &b,
                ))
                .await
                .map(drop),
            other => panic!("rpc {other} is not in the gRPC authorization matrix"),
        };
        let status = result.expect_err(&rpc);
        assert_eq!(
            status.code(),
            tonic::Code::NotFound,
            "user B on {rpc}: {status:?}"
        );
        checked.insert(rpc);
    }
    assert_eq!(checked.len(), 13);
    // A's objects are intact.
    let scenes = c
        .list_scenes(authed(
            pb::ListScenesRequest {
                project_id: pid.clone(),
                page: None,
            },
            &a,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(scenes.scenes.len(), 1);
    assert_eq!(scenes.scenes[0].narration, "A's scene");
    c.get_asset(authed(pb::GetAssetRequest { id: aid }, &a))
        .await
        .unwrap();
    p.stop().await;
}

#[tokio::test]
async fn google_sign_in_with_pkce_against_a_fake_google() {
    let google = MockServer::start().await;
    // Google's token endpoint (developers.google.com/identity/protocols/oauth2/web-server#exchange-authorization-code).
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "access_token": "ya29.fake-access-token",
            "expires_in": 3599,
            "token_type": "Bearer",
            "scope": "openid https://www.googleapis.com/auth/userinfo.email https://www.googleapis.com/auth/userinfo.profile",
            "id_token": "header.payload.signature"
        })))
        .mount(&google)
        .await;
    // The OpenID Connect userinfo endpoint.
    Mock::given(method("GET"))
        .and(path("/v1/userinfo"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "sub": "110169484474386276334",
            "name": "Ada Lovelace",
            "given_name": "Ada",
            "email": "ada.lovelace@gmail.com",
            "email_verified": true,
            "picture": "https://lh3.googleusercontent.com/a/x"
        })))
        .mount(&google)
        .await;
    let redirect = "http://localhost:3000/auth/google/callback";
    let p = Platform::start_with(Options {
        google: Some(studio_user::settings::GoogleSettings {
            client_id: "studio-test.apps.googleusercontent.com".into(),
            client_secret: secrecy::SecretString::from("GOCSPX-test".to_owned()),
            redirect_uris: vec![redirect.into()],
            auth_url: format!("{}/o/oauth2/v2/auth", google.uri()),
            token_url: format!("{}/token", google.uri()),
            userinfo_url: format!("{}/v1/userinfo", google.uri()),
            state_ttl_s: 600,
        }),
        ..Options::default()
    })
    .await;

    let (status, _, problem) = p
        .call(
            "GET",
            "/v1/auth/google/start?redirect_uri=https%3A%2F%2Fevil.example%2Fcb",
            None,
            None,
        )
        .await;
    assert_eq!(
        (status, problem["field"].as_str()),
        (400, Some("redirect_uri"))
    );

    let (status, _, started) = p
        .call(
            "GET",
            &format!("/v1/auth/google/start?redirect_uri={}", urlencode(redirect)),
            None,
            None,
        )
        .await;
    assert_eq!(status, 200, "{started}");
    let url = reqwest::Url::parse(started["authorization_url"].as_str().unwrap()).unwrap();
    let q: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["redirect_uri"], redirect);
    assert_eq!(q["state"], started["state"].as_str().unwrap());
    assert!(q["scope"].contains("openid") && q["scope"].contains("email"));

    let finish = |code: &str, state: &str| {
        let body = serde_json::json!({"code": code, "state": state});
        let p = &p;
        async move {
            p.call("POST", "/v1/auth/google/finish", None, Some(body))
                .await
        }
    };
    let (status, _, _) = finish("4/0Afake", "not-a-state").await;
    assert_eq!(status, 401);
    let state = q["state"].clone();
    let (status, _, pair) = finish("4/0Afake-code", &state).await;
    assert_eq!(status, 200, "{pair}");
    assert_eq!(pair["user"]["email"], "ada.lovelace@gmail.com");
    assert_eq!(pair["user"]["display_name"], "Ada Lovelace");
    assert_eq!(
        pair["user"]["sign_in_methods"],
        serde_json::json!(["google"])
    );

    // The token request carried the code and the verifier whose S256 hash is the challenge.
    let requests = google.received_requests().await.unwrap();
    let token_request = requests.iter().find(|r| r.url.path() == "/token").unwrap();
    let form: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(&token_request.body)
            .into_owned()
            .collect();
    assert_eq!(form["grant_type"], "authorization_code");
    assert_eq!(form["code"], "4/0Afake-code");
    assert_eq!(form["redirect_uri"], redirect);
    let digest = ring::digest::digest(&ring::digest::SHA256, form["code_verifier"].as_bytes());
    assert_eq!(
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref()),
        q["code_challenge"]
    );
    let userinfo = requests
        .iter()
        .find(|r| r.url.path() == "/v1/userinfo")
        .unwrap();
    assert_eq!(
        userinfo.headers["authorization"].to_str().unwrap(),
        "Bearer ya29.fake-access-token"
    );

    // The state is single-use; a second sign-in with a new state finds the same account.
    let (status, _, _) = finish("4/0Afake-code", &state).await;
    assert_eq!(status, 401, "a state cannot be replayed");
    let (_, _, again) = p
        .call(
            "GET",
            &format!("/v1/auth/google/start?redirect_uri={}", urlencode(redirect)),
            None,
            None,
        )
        .await;
    let (status, _, second) = finish("4/0Aother", again["state"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(second["user"]["id"], pair["user"]["id"]);
    p.stop().await;
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
