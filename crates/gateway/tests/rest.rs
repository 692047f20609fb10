//! The platform through the gateway's REST API, with the user and project services running on
//! real sockets against real Postgres: the main flow, the authorization matrix, bad input, mass
//! assignment, rate limits, the OpenAPI document and metrics.

mod support;

use std::collections::BTreeSet;

use serde_json::{json, Value};
use support::{fable, Options, Platform};

#[tokio::test]
async fn register_sign_in_and_keep_projects() {
    let p = Platform::start().await;
    let (_, _, user_id) = p.register("ada@example.com").await;
    let signed_in = p.sign_in("ADA@example.com ").await;
    let token = signed_in["access_token"].as_str().unwrap();
    assert_eq!(signed_in["token_type"], "Bearer");
    assert_eq!(signed_in["user"]["id"], user_id.as_str());

    let (status, _, me) = p.call("GET", "/v1/me", Some(token), None).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["email"], "ada@example.com");
    assert_eq!(me["role"], "user");
    assert_eq!(me["sign_in_methods"], json!(["password"]));

    let text = fable();
    let (status, _, created) = p
        .call(
            "POST",
            "/v1/projects",
            Some(token),
            Some(json!({
                "title": "The Lion And The Mouse",
                "source_text": text,
                "aspect": "9:16",
                "settings": {"duration_s": 60, "voice": "en-gb"}
            })),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["aspect"], "9:16");
    assert_eq!(created["style"], "storybook");
    assert_eq!(created["settings"]["voice"], "en-gb");
    assert_eq!(created["settings"]["rate_wpm"], 165);
    assert_eq!(created["source_text"], text.as_str());

    // A second project, then pages of one: newest first, and the token walks to the end.
    let (status, _, second) = p
        .call(
            "POST",
            "/v1/projects",
            Some(token),
            Some(json!({"title": "Foxes", "topic": "How foxes raise their cubs"})),
        )
        .await;
    assert_eq!(status, 201, "{second}");
    let (status, _, page1) = p
        .call("GET", "/v1/projects?page_size=1", Some(token), None)
        .await;
    assert_eq!(status, 200, "{page1}");
    assert_eq!(page1["items"][0]["id"], second["id"]);
    let next = page1["next_page_token"].as_str().unwrap();
    assert!(!next.is_empty());
    let (_, _, page2) = p
        .call(
            "GET",
            &format!("/v1/projects?page_size=1&page_token={next}"),
            Some(token),
            None,
        )
        .await;
    assert_eq!(page2["items"][0]["id"], id.as_str());
    assert_eq!(page2["next_page_token"], "");

    let (status, _, updated) = p
        .call(
            "PATCH",
            &format!("/v1/projects/{id}"),
            Some(token),
            Some(json!({"title": "The Lion and the Mouse", "aspect": "1:1"})),
        )
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["title"], "The Lion and the Mouse");
    assert_eq!(updated["aspect"], "1:1");
    assert_eq!(
        updated["source_text"],
        text.as_str(),
        "untouched fields stay"
    );

    let (status, _, got) = p
        .call("GET", &format!("/v1/projects/{id}"), Some(token), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(got["title"], "The Lion and the Mouse");

    // Scenes and assets hang off the project.
    let (status, _, scene) = p
        .call(
            "POST",
            &format!("/v1/projects/{id}/scenes"),
            Some(token),
            Some(json!({"heading": "lion · mouse", "narration": "A LION was awakened.", "search_terms": ["lion"]})),
        )
        .await;
    assert_eq!(status, 201, "{scene}");
    let (status, _, first) = p
        .call(
            "POST",
            &format!("/v1/projects/{id}/scenes"),
            Some(token),
            Some(json!({"position": 0, "narration": "Once."})),
        )
        .await;
    assert_eq!(status, 201, "{first}");
    let (_, _, scenes) = p
        .call(
            "GET",
            &format!("/v1/projects/{id}/scenes"),
            Some(token),
            None,
        )
        .await;
    let order: Vec<&str> = scenes["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["narration"].as_str().unwrap())
        .collect();
    assert_eq!(order, vec!["Once.", "A LION was awakened."]);
    let (status, _, asset) = p
        .call(
            "POST",
            &format!("/v1/projects/{id}/assets"),
            Some(token),
            Some(json!({
                "kind": "image", "scene_id": scene["id"],
                "storage_key": format!("projects/{id}/assets/lion.png"),
                "media": {"mime_type": "image/png", "width_px": 1080, "height_px": 1920}
            })),
        )
        .await;
    assert_eq!(status, 201, "{asset}");
    assert_eq!(asset["scene_id"], scene["id"]);

    let (status, _, _) = p
        .call("DELETE", &format!("/v1/projects/{id}"), Some(token), None)
        .await;
    assert_eq!(status, 204);
    for path in [
        format!("/v1/projects/{id}"),
        format!("/v1/scenes/{}", scene["id"].as_str().unwrap()),
        format!("/v1/assets/{}", asset["id"].as_str().unwrap()),
    ] {
        let (status, headers, problem) = p.call("GET", &path, Some(token), None).await;
        assert_eq!(status, 404, "{path} after delete: {problem}");
        assert_eq!(headers["content-type"], "application/problem+json");
    }

    // Metrics count requests by route template, not by raw path.
    let metrics = p
        .http
        .get(p.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"route="/v1/projects/{id}""#),
        "metrics lack the route label"
    );
    assert!(metrics.contains("http_server_request_duration_seconds_bucket"));
    p.stop().await;
}

/// How to exercise one REST route as user B against user A's objects.
fn matrix_call(method: &str, path: &str, ids: &Value) -> Option<(String, Option<Value>)> {
    let project = ids["project"].as_str().unwrap();
    let scene = ids["scene"].as_str().unwrap();
    let asset = ids["asset"].as_str().unwrap();
    let preset = ids["preset"].as_str().unwrap();
    let job = ids["job"].as_str().unwrap();
    let call = match (method, path) {
        ("get", "/v1/projects/{id}") => (format!("/v1/projects/{project}"), None),
        ("patch", "/v1/projects/{id}") => (
            format!("/v1/projects/{project}"),
            Some(json!({"title": "mine now"})),
        ),
        ("delete", "/v1/projects/{id}") => (format!("/v1/projects/{project}"), None),
        ("get", "/v1/projects/{id}/scenes") => (format!("/v1/projects/{project}/scenes"), None),
        ("post", "/v1/projects/{id}/scenes") => (
            format!("/v1/projects/{project}/scenes"),
            Some(json!({"narration": "planted"})),
        ),
        ("get", "/v1/projects/{id}/assets") => (format!("/v1/projects/{project}/assets"), None),
        ("post", "/v1/projects/{id}/assets") => (
            format!("/v1/projects/{project}/assets"),
            Some(json!({"kind": "image", "storage_key": format!("projects/{project}/x.png")})),
        ),
        ("get", "/v1/scenes/{id}") => (format!("/v1/scenes/{scene}"), None),
        ("patch", "/v1/scenes/{id}") => (
            format!("/v1/scenes/{scene}"),
            Some(json!({"narration": "changed"})),
        ),
        ("delete", "/v1/scenes/{id}") => (format!("/v1/scenes/{scene}"), None),
        ("get", "/v1/assets/{id}") => (format!("/v1/assets/{asset}"), None),
        ("delete", "/v1/assets/{id}") => (format!("/v1/assets/{asset}"), None),
        ("delete", "/v1/presets/{name}") => (format!("/v1/presets/{preset}"), None),
        ("post", "/v1/projects/{id}/jobs") => (format!("/v1/projects/{project}/jobs"), None),
        ("get", "/v1/jobs/{id}") => (format!("/v1/jobs/{job}"), None),
        ("post", "/v1/jobs/{id}/cancel") => (format!("/v1/jobs/{job}/cancel"), None),
        ("get", "/v1/jobs/{id}/events") => (format!("/v1/jobs/{job}/events"), None),
        ("get", "/v1/jobs/{id}/outputs/{kind}") => (format!("/v1/jobs/{job}/outputs/video"), None),
        _ => return None,
    };
    Some(call)
}

#[tokio::test]
async fn another_users_objects_answer_not_found_on_every_route_with_an_id() {
    let p = Platform::start().await;
    let (a, _, _) = p.register("a@example.com").await;
    let (b, _, _) = p.register("b@example.com").await;
    let (_, _, project) = p
        .call(
            "POST",
            "/v1/projects",
            Some(&a),
            Some(json!({"title": "A's", "source_text": fable()})),
        )
        .await;
    let project_id = project["id"].as_str().unwrap();
    let (_, _, scene) = p
        .call(
            "POST",
            &format!("/v1/projects/{project_id}/scenes"),
            Some(&a),
            Some(json!({"narration": "A's scene"})),
        )
        .await;
    let (_, _, asset) = p
        .call(
            "POST",
            &format!("/v1/projects/{project_id}/assets"),
            Some(&a),
            Some(json!({"kind": "image", "storage_key": format!("projects/{project_id}/a.png")})),
        )
        .await;
    let style = studio_pipeline::style::BUILT_IN[0].1;
    let (status, _, preset) = p
        .call(
            "POST",
            "/v1/presets",
            Some(&a),
            Some(json!({"name": "a-style", "style_toml": style})),
        )
        .await;
    assert_eq!(status, 201, "{preset}");
    let (status, _, job) = p
        .call(
            "POST",
            &format!("/v1/projects/{project_id}/jobs"),
            Some(&a),
            None,
        )
        .await;
    assert_eq!(status, 201, "{job}");
    let ids = json!({"project": project_id, "scene": scene["id"], "asset": asset["id"], "preset": "a-style", "job": job["id"]});

    // The route table is the OpenAPI document, generated from the router's own handler list.
    let (_, _, doc) = p.call("GET", "/openapi.json", None, None).await;
    let mut checked = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        if !path.contains('{') {
            continue;
        }
        for method in item.as_object().unwrap().keys() {
            let Some((url, body)) = matrix_call(method, path, &ids) else {
                panic!("{method} {path} takes an id but is not in the authorization matrix");
            };
            let (status, _, problem) = p.call(method, &url, Some(&b), body).await;
            assert_eq!(status, 404, "user B on {method} {path}: {problem}");
            assert_eq!(problem["status"], 404);
            checked.insert(format!("{method} {path}"));
        }
    }
    assert_eq!(checked.len(), 18, "{checked:?}");

    // Nothing of A's changed.
    let (status, _, still) = p
        .call("GET", &format!("/v1/projects/{project_id}"), Some(&a), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(still["title"], "A's");
    let (_, _, scenes) = p
        .call(
            "GET",
            &format!("/v1/projects/{project_id}/scenes"),
            Some(&a),
            None,
        )
        .await;
    assert_eq!(scenes["items"].as_array().unwrap().len(), 1);
    assert_eq!(scenes["items"][0]["narration"], "A's scene");
    let (status, _, _) = p
        .call(
            "GET",
            &format!("/v1/assets/{}", asset["id"].as_str().unwrap()),
            Some(&a),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let (_, _, presets) = p.call("GET", "/v1/presets", Some(&a), None).await;
    assert!(presets
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["name"] == "a-style"));
    // B's list is empty, and B's presets are only the built-in ones.
    let (_, _, list) = p.call("GET", "/v1/projects", Some(&b), None).await;
    assert_eq!(list["items"], json!([]));
    let (_, _, presets) = p.call("GET", "/v1/presets", Some(&b), None).await;
    assert!(presets
        .as_array()
        .unwrap()
        .iter()
        .all(|x| x["built_in"] == true));
    p.stop().await;
}

#[tokio::test]
async fn a_patch_cannot_set_owner_or_role() {
    let p = Platform::start().await;
    let (a, _, a_id) = p.register("owner@example.com").await;
    let (b, _, b_id) = p.register("thief@example.com").await;
    let (_, _, project) = p
        .call(
            "POST",
            "/v1/projects",
            Some(&a),
            Some(json!({"title": "Mine", "topic": "cats"})),
        )
        .await;
    let id = project["id"].as_str().unwrap();
    for body in [
        json!({"title": "Renamed", "owner_id": b_id}),
        json!({"title": "Renamed", "role": "admin"}),
        json!({"settings": {"music": false, "owner_id": b_id}}),
    ] {
        let (status, _, problem) = p
            .call(
                "PATCH",
                &format!("/v1/projects/{id}"),
                Some(&a),
                Some(body.clone()),
            )
            .await;
        assert_eq!(status, 400, "{body}: {problem}");
        let field = problem["field"].as_str().unwrap();
        assert!(
            field.ends_with("owner_id") || field == "role",
            "{body} → {problem}"
        );
    }
    let (status, _, still) = p
        .call("GET", &format!("/v1/projects/{id}"), Some(&a), None)
        .await;
    assert_eq!(status, 200, "A still owns it");
    assert_eq!(still["title"], "Mine");
    assert_eq!(still["settings"]["music"], true);
    let (status, _, _) = p
        .call("GET", &format!("/v1/projects/{id}"), Some(&b), None)
        .await;
    assert_eq!(status, 404, "B does not");
    let (_, _, me) = p.call("GET", "/v1/me", Some(&a), None).await;
    assert_eq!(me["role"], "user");
    assert_eq!(me["id"], a_id.as_str());
    // Registration does not take a role either.
    let (status, _, problem) = p
        .call(
            "POST",
            "/v1/auth/register",
            None,
            Some(json!({"email": "x@example.com", "password": "correct horse battery", "role": "admin"})),
        )
        .await;
    assert_eq!((status, problem["field"].as_str()), (400, Some("role")));
    p.stop().await;
}

#[tokio::test]
async fn bad_input_gets_problem_details_naming_the_field_and_writes_nothing() {
    let p = Platform::start().await;
    let (token, _, _) = p.register("careful@example.com").await;
    let raw = |body: &'static str, content_type: &'static str| {
        p.http
            .post(p.url("/v1/projects"))
            .bearer_auth(&token)
            .header("content-type", content_type)
            .body(body)
    };
    let cases: Vec<(reqwest::RequestBuilder, u16, &str)> = vec![
        (
            raw(r#"{"title": "x", "topic": "#, "application/json"),
            400,
            "body",
        ),
        (
            raw(r#"{"title": 5, "topic": "t"}"#, "application/json"),
            400,
            "title",
        ),
        (
            raw(
                r#"{"title": "x", "topic": "t", "aspect": "21:9"}"#,
                "application/json",
            ),
            400,
            "aspect",
        ),
        (
            raw(
                r#"{"title": "x", "topic": "t", "settings": {"rate_wpm": "fast"}}"#,
                "application/json",
            ),
            400,
            "settings.rate_wpm",
        ),
        (
            raw(
                r#"{"title": "x", "topic": "t", "colour": "red"}"#,
                "application/json",
            ),
            400,
            "colour",
        ),
        (
            raw(r#"{"title": "x", "topic": "t"}"#, "text/plain"),
            400,
            "content-type",
        ),
        (
            raw(r#"{"title": "", "topic": "t"}"#, "application/json"),
            400,
            "title",
        ),
        (
            raw(r#"{"title": "x"}"#, "application/json"),
            400,
            "source_text",
        ),
        (
            raw(
                r#"{"title": "x", "topic": "t", "source_text": "s"}"#,
                "application/json",
            ),
            400,
            "source_text",
        ),
        (
            raw(
                r#"{"title": "x", "topic": "t", "style": "neon"}"#,
                "application/json",
            ),
            400,
            "style",
        ),
        (
            raw(
                r#"{"title": "x", "topic": "t", "settings": {"duration_s": 3}}"#,
                "application/json",
            ),
            400,
            "settings.duration_s",
        ),
    ];
    for (request, status, field) in cases {
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), status, "field {field}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["field"], field, "{problem}");
        assert!(problem["detail"].as_str().unwrap().len() > 5);
    }
    // 3 MB of text: over the 2 MiB limit.
    let big = json!({"title": "big", "source_text": "a".repeat(3 * 1024 * 1024)});
    let (status, headers, problem) = p
        .call("POST", "/v1/projects", Some(&token), Some(big))
        .await;
    assert_eq!(status, 413, "{problem}");
    assert_eq!(headers["content-type"], "application/problem+json");
    // Malformed ids and page sizes.
    let (status, _, problem) = p.call("GET", "/v1/projects/42", Some(&token), None).await;
    assert_eq!((status, problem["field"].as_str()), (400, Some("id")));
    let (status, _, problem) = p
        .call("GET", "/v1/projects?page_size=1000", Some(&token), None)
        .await;
    assert_eq!(
        (status, problem["field"].as_str()),
        (400, Some("page_size"))
    );
    let (status, _, problem) = p
        .call("GET", "/v1/projects?page_size=ten", Some(&token), None)
        .await;
    assert_eq!(
        (status, problem["field"].as_str()),
        (400, Some("page_size"))
    );
    // Unknown routes and methods are problems too.
    let (status, _, problem) = p.call("GET", "/v1/nothing", Some(&token), None).await;
    assert_eq!((status, problem["status"].as_u64()), (404, Some(404)));
    let (status, _, _) = p.call("PUT", "/v1/projects", Some(&token), None).await;
    assert_eq!(status, 405);
    // Registration input.
    let (status, _, problem) = p
        .call(
            "POST",
            "/v1/auth/register",
            None,
            Some(json!({"email": "nope", "password": "correct horse"})),
        )
        .await;
    assert_eq!((status, problem["field"].as_str()), (400, Some("email")));
    let (status, _, problem) = p
        .call(
            "POST",
            "/v1/auth/register",
            None,
            Some(json!({"email": "short@example.com", "password": "short"})),
        )
        .await;
    assert_eq!((status, problem["field"].as_str()), (400, Some("password")));
    let (status, _, problem) = p
        .call(
            "POST",
            "/v1/auth/register",
            None,
            Some(json!({"email": "careful@example.com", "password": "correct horse battery"})),
        )
        .await;
    assert_eq!((status, problem["field"].as_str()), (409, Some("email")));

    // Nothing was half-written.
    let (_, _, list) = p.call("GET", "/v1/projects", Some(&token), None).await;
    assert_eq!(
        list["items"],
        json!([]),
        "no project was created by bad input"
    );
    p.stop().await;
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after() {
    let mut options = Options::default();
    options.rate_limit.auth_per_ip_per_minute = 3;
    options.rate_limit.auth_per_ip_burst = 3;
    options.rate_limit.per_user_per_minute = 5;
    options.rate_limit.per_user_burst = 5;
    let p = Platform::start_with(options).await;
    let (token, _, _) = p.register("busy@example.com").await;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let (status, headers, _) = p
            .call(
                "POST",
                "/v1/auth/sign-in",
                None,
                Some(json!({"email": "busy@example.com", "password": "wrong password"})),
            )
            .await;
        statuses.push(status);
        if status == 429 {
            let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
            assert!((1..=60).contains(&retry), "Retry-After {retry}");
        }
    }
    assert_eq!(
        statuses,
        vec![401, 401, 429],
        "register used the first of 3"
    );
    let mut user_statuses = Vec::new();
    for _ in 0..6 {
        let (status, headers, _) = p.call("GET", "/v1/me", Some(&token), None).await;
        if status == 429 {
            assert!(headers.contains_key("retry-after"));
        }
        user_statuses.push(status);
    }
    assert_eq!(user_statuses, vec![200, 200, 200, 200, 200, 429]);
    p.stop().await;
}

#[tokio::test]
async fn the_openapi_document_is_3_1_and_covers_the_api() {
    let p = Platform::start().await;
    let (status, _, doc) = p.call("GET", "/openapi.json", None, None).await;
    assert_eq!(status, 200);
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let paths: BTreeSet<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    for path in [
        "/v1/auth/register",
        "/v1/auth/sign-in",
        "/v1/auth/refresh",
        "/v1/me",
        "/v1/projects",
        "/v1/projects/{id}",
        "/v1/presets",
    ] {
        assert!(paths.contains(path), "{path} missing from {paths:?}");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let (status, _, _) = p.call("GET", "/readyz", None, None).await;
    assert_eq!(status, 200);
    p.stop().await;
}

#[tokio::test]
async fn cors_answers_configured_origins_only() {
    let p = Platform::start_with(Options {
        cors: studio_gateway::settings::CorsSettings {
            allowed_origins: vec!["https://app.studio.example".into()],
            max_age_s: 600,
        },
        ..Options::default()
    })
    .await;
    let preflight = |origin: &'static str| {
        p.http
            .request(reqwest::Method::OPTIONS, p.url("/v1/projects"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type, idempotency-key",
            )
            .send()
    };
    let allowed = preflight("https://app.studio.example").await.unwrap();
    assert!(allowed.status().is_success(), "{}", allowed.status());
    let headers = allowed.headers();
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://app.studio.example"
    );
    assert!(headers["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .contains("POST"));
    assert_eq!(headers["access-control-max-age"], "600");
    // A browser may send Idempotency-Key, so a retried job start is safe (security review L4).
    assert!(headers["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .contains("idempotency-key"));
    let other = preflight("https://evil.example").await.unwrap();
    assert!(!other.headers().contains_key("access-control-allow-origin"));
    // A real request from the allowed origin carries the header too.
    let response = p
        .http
        .get(p.url("/v1/me"))
        .header("origin", "https://app.studio.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "https://app.studio.example"
    );
    p.stop().await;
}

/// A style preset names installed fonts only: a path (which would let a user probe the render
/// workers' file system through render errors) is refused naming the key (security review L2).
#[tokio::test]
async fn a_preset_naming_a_font_path_is_refused() {
    let p = Platform::start().await;
    let (token, _, _) = p.register("font-path@example.com").await;
    let style = studio_style::BUILT_IN[0].1;
    let mut value: toml::Value = toml::from_str(style).unwrap();
    value["fonts"]["title"] = toml::Value::String("/etc/hostname".into());
    let probing = toml::to_string(&value).unwrap();
    let (status, _, problem) = p
        .call(
            "POST",
            "/v1/presets",
            Some(&token),
            Some(json!({"name": "probe", "style_toml": probing})),
        )
        .await;
    assert_eq!(status, 400, "{problem}");
    assert_eq!(problem["field"], "style_toml", "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("fonts.title"),
        "{problem}"
    );
    p.stop().await;
}

/// Deleting a project deletes its jobs (gone from every read, the running ones cancelled) and,
/// after the purge pass, every file under its storage prefix; another project's files stay, and
/// someone else's delete changes nothing (security review L3).
#[tokio::test]
async fn deleting_a_project_deletes_its_jobs_and_its_files() {
    use studio_storage::{ObjectKey, StorageSettings};
    let p = Platform::start().await;
    let (a, _, _) = p.register("owner@example.com").await;
    let (b, _, _) = p.register("other@example.com").await;
    let mut projects = Vec::new();
    for title in ["doomed", "kept"] {
        let (status, _, project) = p
            .call(
                "POST",
                "/v1/projects",
                Some(&a),
                Some(json!({"title": title, "source_text": fable()})),
            )
            .await;
        assert_eq!(status, 201, "{project}");
        projects.push(project["id"].as_str().unwrap().to_owned());
    }
    let (doomed, kept) = (&projects[0], &projects[1]);
    let (status, _, job) = p
        .call(
            "POST",
            &format!("/v1/projects/{doomed}/jobs"),
            Some(&a),
            None,
        )
        .await;
    assert_eq!(status, 201, "{job}");
    let job_id = job["id"].as_str().unwrap();
    let storage = StorageSettings::Local {
        root: p.objects.path().to_path_buf(),
    }
    .open()
    .unwrap();
    for key in [
        format!("projects/{doomed}/assets/photo.png"),
        format!("projects/{doomed}/jobs/{job_id}/outputs/video.mp4"),
        format!("projects/{kept}/assets/photo.png"),
    ] {
        let key = ObjectKey::parse(key).unwrap();
        storage
            .put(&key, "bytes".into(), "image/png")
            .await
            .unwrap();
    }

    // Someone else's delete: 404, and nothing of A's is touched.
    let (status, _, _) = p
        .call("DELETE", &format!("/v1/projects/{doomed}"), Some(&b), None)
        .await;
    assert_eq!(status, 404);
    let (status, _, _) = p
        .call("GET", &format!("/v1/jobs/{job_id}"), Some(&a), None)
        .await;
    assert_eq!(status, 200);

    let (status, _, problem) = p
        .call("DELETE", &format!("/v1/projects/{doomed}"), Some(&a), None)
        .await;
    assert_eq!(status, 204, "{problem}");
    let (_, _, list) = p
        .call(
            "GET",
            &format!("/v1/jobs?project_id={doomed}"),
            Some(&a),
            None,
        )
        .await;
    assert_eq!(list["items"], json!([]), "{list}");
    for path in [
        format!("/v1/jobs/{job_id}"),
        format!("/v1/jobs/{job_id}/outputs/video"),
    ] {
        let (status, _, _) = p.call("GET", &path, Some(&a), None).await;
        assert_eq!(status, 404, "{path}");
    }
    let (status, _, _) = p
        .call("POST", &format!("/v1/jobs/{job_id}/cancel"), Some(&a), None)
        .await;
    assert_eq!(status, 404, "a deleted job cannot be cancelled either");

    // The purge pass (the api role runs it every 30 s) empties the prefix, and only it.
    let pool = sqlx::PgPool::connect(&p.job_db).await.unwrap();
    let store = studio_ai_job::store::JobStore::new(pool.clone());
    let purged =
        studio_ai_job::deletion::purge_due(&store, &storage, std::time::Duration::from_secs(3600))
            .await
            .unwrap();
    assert_eq!(purged.objects, 2, "{purged:?}");
    assert!(storage
        .list(&format!("projects/{doomed}/"))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        storage
            .list(&format!("projects/{kept}/"))
            .await
            .unwrap()
            .len(),
        1
    );
    // The job's row keeps what was spent, not what was said.
    let (state, request, input): (String, Option<Value>, Value) = sqlx::query_as(
        "SELECT j.state, j.request, s.input FROM jobs j JOIN steps s ON s.job_id = j.id WHERE j.id = $1::uuid LIMIT 1",
    )
    .bind(job_id)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(state, "cancelled");
    assert_eq!(request, None);
    assert_eq!(input, json!({}));
    // Deleting again: the project is gone.
    let (status, _, _) = p
        .call("DELETE", &format!("/v1/projects/{doomed}"), Some(&a), None)
        .await;
    assert_eq!(status, 404);
    pool.close().await;
    p.stop().await;
}
