//! The project service over gRPC directly: projects' lifecycle with field-named errors, and the
//! authorization matrix generated from `proto/studio/project/v1/project.proto`: every rpc that
//! takes an id answers NOT_FOUND to someone else, exactly like a missing object.

mod support;

use std::collections::BTreeSet;

use studio_auth::service::ServiceChannel;
use studio_proto::common::v1 as common;
use studio_proto::project::v1 as pb;
use studio_proto::user::v1 as upb;
use studio_proto::user::v1::user_service_client::UserServiceClient;
use support::Services;

fn authed<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

async fn register(users: &mut UserServiceClient<ServiceChannel>, email: &str) -> String {
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
async fn a_project_lives_and_dies_over_grpc() {
    let p = Services::start().await;
    let mut users = p.users().await;
    let mut projects = p.projects().await;
    let token = register(&mut users, "grpc@example.com").await;
    let me = users
        .get_me(authed(upb::GetMeRequest {}, &token))
        .await
        .unwrap()
        .into_inner();
    let created = projects
        .create_project(authed(
            pb::CreateProjectRequest {
                title: "The Lion And The Mouse".into(),
                source_text: Some(studio_testkit::texts::fable("The Lion And The Mouse")),
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
    let p = Services::start().await;
    let mut users = p.users().await;
    let mut c = p.projects().await;
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
            style_toml: studio_style::BUILT_IN[1].1.into(),
        },
        &a,
    ))
    .await
    .unwrap();
    // One preset by name: the owner's, and a built-in one for anyone (security review L7).
    let own = c
        .get_preset(authed(
            pb::GetPresetRequest {
                name: "a-style".into(),
            },
            &a,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (own.built_in, own.style_toml.as_str()),
        (false, studio_style::BUILT_IN[1].1)
    );
    let built_in = c
        .get_preset(authed(
            pb::GetPresetRequest {
                name: studio_style::BUILT_IN[0].0.into(),
            },
            &b,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(built_in.built_in);

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
            "GetPreset" => c
                .get_preset(authed(
                    pb::GetPresetRequest {
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
    assert_eq!(checked.len(), 14);
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
