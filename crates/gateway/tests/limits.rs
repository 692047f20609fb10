//! What one user and one job may ask for, through the gateway: active jobs per user and the
//! size of a video, each refused with a message naming the limit before any step exists
//! (security review H2, H3).

mod support;

use serde_json::{json, Value};
use support::{fable, Options, Platform};

async fn project(p: &Platform, token: &str, body: Value) -> String {
    let (status, _, project) = p
        .call("POST", "/v1/projects", Some(token), Some(body))
        .await;
    assert_eq!(status, 201, "{project}");
    project["id"].as_str().unwrap().to_owned()
}

async fn start(p: &Platform, token: &str, project: &str) -> (u16, Value) {
    let (status, _, body) = p
        .call(
            "POST",
            &format!("/v1/projects/{project}/jobs"),
            Some(token),
            None,
        )
        .await;
    (status, body)
}

#[tokio::test]
async fn a_user_may_run_only_n_jobs_at_once() {
    let p = Platform::start_with(Options {
        limits: studio_ai_job::limits::Limits {
            max_active_jobs_per_user: 2,
            ..Default::default()
        },
        ..Options::default()
    })
    .await;
    let (token, _, _) = p.register("busy@example.com").await;
    let (other, _, _) = p.register("other@example.com").await;
    let fable = json!({"title": "Fable", "source_text": fable()});
    let id = project(&p, &token, fable.clone()).await;
    let (status, first) = start(&p, &token, &id).await;
    assert_eq!(status, 201, "{first}");
    let (status, _) = start(&p, &token, &id).await;
    assert_eq!(status, 201);
    // No worker runs here: both stay queued, so a third is refused.
    let (status, refused) = start(&p, &token, &id).await;
    assert_eq!(status, 429, "{refused}");
    let detail = refused["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("max_active_jobs_per_user") && detail.contains("2 at once"),
        "{refused}"
    );
    // Another user is not held back by this one.
    let theirs = project(&p, &other, fable).await;
    let (status, _) = start(&p, &other, &theirs).await;
    assert_eq!(status, 201);
    // Once one ends, there is room again.
    let (status, _, _) = p
        .call(
            "POST",
            &format!("/v1/jobs/{}/cancel", first["id"].as_str().unwrap()),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let (status, third) = start(&p, &token, &id).await;
    assert_eq!(status, 201, "{third}");
    p.stop().await;
}

#[tokio::test]
async fn a_job_over_the_length_limit_is_refused_before_any_step() {
    let p = Platform::start_with(Options {
        limits: studio_ai_job::limits::Limits {
            max_video_s: 1800.0,
            ..Default::default()
        },
        ..Options::default()
    })
    .await;
    let (token, _, _) = p.register("long@example.com").await;
    // Nearly 1 MB narrated whole: about 20 hours of video.
    let book = "Lion roars. ".repeat(990_000 / 12);
    let whole = project(&p, &token, json!({"title": "Roars", "source_text": book})).await;
    let (status, refused) = start(&p, &token, &whole).await;
    assert_eq!(
        (status, refused["field"].as_str()),
        (409, Some("source_text")),
        "{refused}"
    );
    assert!(
        refused["detail"].as_str().unwrap().contains("max_video_s"),
        "{refused}"
    );
    // Asking for more than the limit names the setting the user chose.
    let long = project(
        &p,
        &token,
        json!({"title": "Long", "source_text": fable(), "settings": {"duration_s": 3600}}),
    )
    .await;
    let (status, refused) = start(&p, &token, &long).await;
    assert_eq!(
        (status, refused["field"].as_str()),
        (409, Some("settings.duration_s")),
        "{refused}"
    );
    // Nothing was started: no job, so no step.
    let (status, _, jobs) = p.call("GET", "/v1/jobs", Some(&token), None).await;
    assert_eq!(status, 200);
    assert_eq!(jobs["items"], json!([]), "{jobs}");
    // Summarised to a minute, the same text is fine.
    let (status, _, _) = p
        .call(
            "PATCH",
            &format!("/v1/projects/{whole}"),
            Some(&token),
            Some(json!({"settings": {"duration_s": 60}})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, job) = start(&p, &token, &whole).await;
    assert_eq!(status, 201, "{job}");
    p.stop().await;
}

/// Guessing one account's password from many addresses, or past the gateway on the user
/// service's own port, meets the same per-account limit (security review M4).
#[tokio::test]
async fn ten_wrong_passwords_for_one_account_get_429_from_any_address() {
    let mut options = Options::default();
    options.rate_limit.client_ip_header = Some("x-forwarded-for".into());
    let p = Platform::start_with(options).await;
    p.register("target@example.com").await;
    let attempt = |i: u32, password: &'static str| {
        let p = &p;
        async move {
            p.http
                .post(p.url("/v1/auth/sign-in"))
                .header("x-forwarded-for", format!("198.51.100.{i}"))
                .json(&json!({"email": "target@example.com", "password": password}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    for i in 1..=10 {
        assert_eq!(attempt(i, "wrong password").await, 401, "attempt {i}");
    }
    assert_eq!(
        attempt(11, "wrong password").await,
        429,
        "from an eleventh address"
    );
    assert_eq!(
        attempt(12, "correct horse battery").await,
        429,
        "even the right one, for now"
    );
    let mut users = studio_proto::user::v1::user_service_client::UserServiceClient::new(
        studio_auth::service::ServiceIdentity::development("gateway")
            .tokens(studio_auth::service::audience::USER)
            .connect(p.user_grpc.clone())
            .await
            .unwrap(),
    );
    let status = users
        .sign_in(studio_proto::user::v1::SignInRequest {
            email: "target@example.com".into(),
            password: "wrong password".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    // Another account is not affected.
    p.register("bystander@example.com").await;
    assert!(p.sign_in("bystander@example.com").await["access_token"].is_string());
    p.stop().await;
}

/// Progress streams per user are capped, and a WebSocket client cannot make the gateway buffer
/// big messages (security review M7).
#[tokio::test]
async fn a_user_gets_at_most_n_event_streams() {
    use futures_util::{SinkExt as _, StreamExt as _};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
    use tokio_tungstenite::tungstenite::Message;

    let mut options = Options::default();
    options.rate_limit.max_streams_per_user = 2;
    let p = Platform::start_with(options).await;
    let (token, _, _) = p.register("watcher@example.com").await;
    let id = project(
        &p,
        &token,
        json!({"title": "Fable", "source_text": fable()}),
    )
    .await;
    let (_, job) = start(&p, &token, &id).await;
    let events = p.url(&format!("/v1/jobs/{}/events", job["id"].as_str().unwrap()));
    let sse = || {
        let (p, token, events) = (&p, &token, &events);
        async move { p.http.get(events).bearer_auth(token).send().await.unwrap() }
    };
    // No worker runs: the job stays queued and its streams stay open.
    let first = sse().await;
    assert_eq!(first.status(), 200);
    let second = sse().await;
    assert_eq!(second.status(), 200);
    let third = sse().await;
    assert_eq!(third.status(), 429);
    drop(first);
    // The gateway notices the closed stream (at the latest at its 15 s keep-alive).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let reopened = loop {
        let r = sse().await;
        if r.status() == 200 || std::time::Instant::now() > deadline {
            break r;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    };
    assert_eq!(reopened.status(), 200, "a closed stream frees its slot");
    drop((second, reopened));

    // A 1 MiB message from a WebSocket client closes the socket (1009). (The slots of the
    // streams just dropped free up as the gateway notices them.)
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut socket = loop {
        let mut request = events
            .replace("http://", "ws://")
            .into_client_request()
            .unwrap();
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        match tokio_tungstenite::connect_async(request).await {
            Ok((socket, _)) => break socket,
            Err(e) if std::time::Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            }
            Err(e) => panic!("no WebSocket: {e}"),
        }
    };
    socket
        .send(Message::Text("x".repeat(1 << 20).into()))
        .await
        .unwrap();
    let closed = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        while let Some(message) = socket.next().await {
            match message {
                Ok(Message::Close(frame)) => return frame.map(|f| u16::from(f.code)),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
        None
    })
    .await
    .expect("the socket was closed");
    if let Some(code) = closed {
        assert_eq!(code, 1009);
    }
    p.stop().await;
}

/// One user owns at most `project.limits` projects, assets and presets: the next create is
/// 409 naming the setting, and deleting one makes room (security review H3).
#[tokio::test]
async fn a_users_projects_assets_and_presets_are_capped() {
    let p = Platform::start_with(Options {
        project_limits: studio_project::settings::Limits {
            max_projects_per_user: 2,
            max_assets_per_user: 1,
            max_presets_per_user: 1,
        },
        ..Options::default()
    })
    .await;
    let (token, _, _) = p.register("hoarder@example.com").await;
    let body = json!({"title": "Owls", "topic": "owls"});
    let first = project(&p, &token, body.clone()).await;
    project(&p, &token, body.clone()).await;
    let (status, _, problem) = p
        .call("POST", "/v1/projects", Some(&token), Some(body.clone()))
        .await;
    assert_eq!(status, 409, "{problem}");
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains("max_projects_per_user"), "{detail}");
    // Another user is not affected.
    let (other, _, _) = p.register("bystander-2@example.com").await;
    project(&p, &other, body.clone()).await;
    let (status, _, _) = p
        .call(
            "DELETE",
            &format!("/v1/projects/{first}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let second = project(&p, &token, body).await;

    let asset = |n: u32| {
        json!({"kind": "image", "storage_key": format!("projects/{second}/assets/{n}.png"),
               "media": {"mime_type": "image/png", "width_px": 64, "height_px": 64}})
    };
    let path = format!("/v1/projects/{second}/assets");
    let (status, _, created) = p.call("POST", &path, Some(&token), Some(asset(1))).await;
    assert_eq!(status, 201, "{created}");
    let (status, _, problem) = p.call("POST", &path, Some(&token), Some(asset(2))).await;
    assert_eq!(status, 409, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("max_assets_per_user"),
        "{problem}"
    );

    let style = studio_style::BUILT_IN[0].1;
    let preset = |name: &str| json!({"name": name, "style_toml": style});
    let (status, _, created) = p
        .call("POST", "/v1/presets", Some(&token), Some(preset("mine-1")))
        .await;
    assert_eq!(status, 201, "{created}");
    let (status, _, problem) = p
        .call("POST", "/v1/presets", Some(&token), Some(preset("mine-2")))
        .await;
    assert_eq!(status, 409, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("max_presets_per_user"),
        "{problem}"
    );
    p.stop().await;
}

/// A browser's WebSocket authenticates with the subprotocol `bearer.<token>` next to
/// `studio.events.v1` (the server selects the latter) and gets the job's progress; a token in
/// the URL is not accepted, so none ends up in proxy logs or browser history (security review
/// L8).
#[tokio::test]
async fn progress_websockets_take_the_token_as_a_subprotocol_not_in_the_url() {
    use futures_util::StreamExt as _;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
    use tokio_tungstenite::tungstenite::Message;

    let p = Platform::start().await;
    let (token, _, _) = p.register("browser@example.com").await;
    let id = project(
        &p,
        &token,
        json!({"title": "Fable", "source_text": fable()}),
    )
    .await;
    let (_, job) = start(&p, &token, &id).await;
    let events = p
        .url(&format!("/v1/jobs/{}/events", job["id"].as_str().unwrap()))
        .replace("http://", "ws://");
    let connect = |url: String, protocols: Option<String>| async move {
        let mut request = url.into_client_request().unwrap();
        if let Some(protocols) = protocols {
            request
                .headers_mut()
                .insert("sec-websocket-protocol", protocols.parse().unwrap());
        }
        tokio_tungstenite::connect_async(request).await
    };

    let (mut socket, response) = connect(
        events.clone(),
        Some(format!("studio.events.v1, bearer.{token}")),
    )
    .await
    .expect("the subprotocol token opens the stream");
    assert_eq!(
        response.headers()["sec-websocket-protocol"],
        "studio.events.v1",
        "the server selects the events protocol, never echoes the token"
    );
    let first = tokio::time::timeout(std::time::Duration::from_secs(10), socket.next())
        .await
        .expect("the current state comes at once")
        .unwrap()
        .unwrap();
    let Message::Text(text) = first else {
        panic!("{first:?}")
    };
    let event: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(event["state"], "queued", "{event}");
    drop(socket);

    for (url, protocols) in [
        (format!("{events}?access_token={token}"), None),
        (
            events.clone(),
            Some("studio.events.v1, bearer.forged".to_owned()),
        ),
        (events.clone(), Some("studio.events.v1".to_owned())),
    ] {
        match connect(url.clone(), protocols.clone()).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 401, "{url} {protocols:?}")
            }
            other => panic!("{url} {protocols:?}: {other:?}"),
        }
    }
    p.stop().await;
}
