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
