//! Jobs: start one for a project, follow its progress (WebSocket or Server-Sent Events), cancel
//! it, and download its outputs through short-lived presigned URLs. Relayed to the ai-job
//! service with the caller's token; someone else's job answers 404 there.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::StreamExt as _;
use studio_proto::job::v1 as pb;

use crate::dto::*;
use crate::error::{ApiError, ApiResult, Problems};
use crate::extract::{ApiQuery, Authed};
use crate::routes::grpc;
use crate::state::AppState;

/// Starts a job that turns the project into a video. Send an `Idempotency-Key` header to make
/// retries safe: the same key answers the same job (200) instead of starting another (201).
#[utoipa::path(post, path = "/v1/projects/{id}/jobs", tag = "jobs", security(("bearer" = [])),
    params(
        ("id" = uuid::Uuid, Path, description = "Project id"),
        ("Idempotency-Key" = Option<String>, Header, description = "1 to 200 characters; a retry with the same key returns the same job"),
    ),
    responses(
        (status = 201, description = "Started", body = JobDto),
        (status = 200, description = "Started before with this Idempotency-Key", body = JobDto),
        Problems))]
pub async fn start_job(
    State(state): State<AppState>,
    authed: Authed,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<(StatusCode, Json<JobDto>)> {
    let (key, replayable) = match headers.get("idempotency-key") {
        Some(value) => {
            let key = value
                .to_str()
                .ok()
                .map(str::trim)
                .filter(|k| !k.is_empty() && k.len() <= 200)
                .ok_or_else(|| {
                    ApiError::invalid(
                        "Idempotency-Key",
                        "must be 1 to 200 visible ASCII characters",
                    )
                })?;
            (key.to_owned(), true)
        }
        None => (uuid::Uuid::now_v7().to_string(), false),
    };
    let started = chrono::Utc::now().timestamp_millis();
    let job = state
        .jobs
        .clone()
        .start_job(grpc(
            pb::StartJobRequest {
                project_id: id,
                idempotency_key: key,
            },
            Some(&authed.token),
            state.timeout,
        ))
        .await?
        .into_inner();
    // A job created before this request began was a replay of the same key.
    let status = if replayable && job.created_at_ms < started - 1 {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(job.into())))
}

/// Your jobs, newest first.
#[utoipa::path(get, path = "/v1/jobs", tag = "jobs", security(("bearer" = [])),
    params(ListJobsQuery),
    responses((status = 200, description = "A page of jobs", body = Page<JobDto>), Problems))]
pub async fn list_jobs(
    State(state): State<AppState>,
    authed: Authed,
    ApiQuery(query): ApiQuery<ListJobsQuery>,
) -> ApiResult<Json<Page<JobDto>>> {
    let request = pb::ListJobsRequest {
        project_id: query.project_id,
        page: Some(studio_proto::common::v1::PageRequest {
            page_size: query.page_size.unwrap_or(0),
            page_token: query.page_token.unwrap_or_default(),
        }),
    };
    let list = state
        .jobs
        .clone()
        .list_jobs(grpc(request, Some(&authed.token), state.timeout))
        .await?
        .into_inner();
    Ok(Json(Page {
        items: list.jobs.into_iter().map(Into::into).collect(),
        next_page_token: list.next_page_token,
    }))
}

/// One job with its steps and outputs.
#[utoipa::path(get, path = "/v1/jobs/{id}", tag = "jobs", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Job id")),
    responses((status = 200, description = "The job", body = JobDto), Problems))]
pub async fn get_job(
    State(state): State<AppState>,
    authed: Authed,
    Path(id): Path<String>,
) -> ApiResult<Json<JobDto>> {
    let job = state
        .jobs
        .clone()
        .get_job(grpc(
            pb::GetJobRequest { id },
            Some(&authed.token),
            state.timeout,
        ))
        .await?;
    Ok(Json(job.into_inner().into()))
}

/// Cancels a queued or running job; finished steps are kept. 409 when it already ended.
#[utoipa::path(post, path = "/v1/jobs/{id}/cancel", tag = "jobs", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Job id")),
    responses((status = 200, description = "The cancelled job", body = JobDto), Problems))]
pub async fn cancel_job(
    State(state): State<AppState>,
    authed: Authed,
    Path(id): Path<String>,
) -> ApiResult<Json<JobDto>> {
    let job = state
        .jobs
        .clone()
        .cancel_job(grpc(
            pb::CancelJobRequest { id },
            Some(&authed.token),
            state.timeout,
        ))
        .await?;
    Ok(Json(job.into_inner().into()))
}

/// A presigned download URL for one output of a succeeded job (409 before it succeeded).
#[utoipa::path(get, path = "/v1/jobs/{id}/outputs/{kind}", tag = "jobs", security(("bearer" = [])),
    params(
        ("id" = uuid::Uuid, Path, description = "Job id"),
        ("kind" = String, Path, description = "video, captions_srt, captions_vtt or thumbnail"),
    ),
    responses((status = 200, description = "Where to download it", body = OutputUrlDto), Problems))]
pub async fn output_url(
    State(state): State<AppState>,
    authed: Authed,
    Path((id, kind)): Path<(String, String)>,
) -> ApiResult<Json<OutputUrlDto>> {
    let url = state
        .jobs
        .clone()
        .get_output_url(grpc(
            pb::GetOutputUrlRequest { id, kind },
            Some(&authed.token),
            state.timeout,
        ))
        .await?;
    Ok(Json(url.into_inner().into()))
}

/// The WebSocket subprotocol of the progress stream. Browsers cannot send an `Authorization`
/// header on a WebSocket: they offer this protocol together with `bearer.<access token>`
/// (`new WebSocket(url, ["studio.events.v1", "bearer." + token])`), and the server selects this
/// one. The token never goes into the URL, where proxies and browser history would keep it
/// (security review L8).
pub const EVENTS_PROTOCOL: &str = "studio.events.v1";

/// The access token offered as a `bearer.<token>` WebSocket subprotocol.
fn token_from_protocols(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(axum::http::header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|p| p.trim().strip_prefix("bearer."))
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
}

/// Progress of a job: the current state first, then every change until the job ends. Over
/// WebSocket (send `Upgrade: websocket`) each event is one JSON text message and the server
/// closes the socket after the final one; otherwise Server-Sent Events (`event: progress`,
/// `id:` the sequence, `data:` the JSON). The access token comes in the `Authorization` header
/// or, from browsers' WebSockets, as the subprotocol `bearer.<token>` next to
/// [`EVENTS_PROTOCOL`]; never in the URL.
#[utoipa::path(get, path = "/v1/jobs/{id}/events", tag = "jobs", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Job id")),
    responses(
        (status = 200, description = "Server-Sent Events, each `data:` a JobEventDto", content_type = "text/event-stream", body = JobEventDto),
        (status = 101, description = "Switched to WebSocket; each message a JobEventDto"),
        Problems))]
pub async fn job_events(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    let token = Authed::token_from(&headers)
        .or_else(|| token_from_protocols(&headers))
        .ok_or_else(|| ApiError::from(studio_core::Error::from(studio_auth::AuthError::Missing)))?;
    let authed = Authed::verify(&state, token).await?;
    // Held for as long as the stream is open: a user gets a bounded number of them.
    let slot = state
        .limits
        .open_stream(&authed.caller.user_id.to_string())?;
    // No deadline: the stream lasts as long as the job.
    let mut request = grpc(
        pb::WatchJobRequest { id },
        Some(&authed.token),
        state.timeout,
    );
    *request.metadata_mut() = {
        let mut m = std::mem::take(request.metadata_mut());
        m.remove("grpc-timeout");
        m
    };
    let stream = state.jobs.clone().watch_job(request).await?.into_inner();
    let events = stream.map(|r| r.map(JobEventDto::from));
    match ws {
        // Clients only listen: their messages are small or a protocol error (close 1009).
        Ok(upgrade) => Ok(upgrade
            .protocols([EVENTS_PROTOCOL])
            .max_message_size(MAX_CLIENT_MESSAGE)
            .max_frame_size(MAX_CLIENT_MESSAGE)
            .on_upgrade(move |socket| async move {
                pump(socket, events).await;
                drop(slot);
            })
            .into_response()),
        Err(_) => {
            let sse = events.map(move |r| {
                let _slot = &slot;
                Ok::<_, Infallible>(match r {
                    Ok(e) => Event::default()
                        .event("progress")
                        .id(e.sequence.to_string())
                        .json_data(&e)
                        .unwrap_or_default(),
                    Err(status) => Event::default().event("error").data(status.message()),
                })
            });
            Ok(Sse::new(sse)
                .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
                .into_response())
        }
    }
}

/// The largest message a WebSocket client may send, bytes.
const MAX_CLIENT_MESSAGE: usize = 4096;

/// Sends events as JSON text messages, then closes normally (or with 1011 on an upstream error).
async fn pump(
    mut socket: WebSocket,
    mut events: impl futures_util::Stream<Item = Result<JobEventDto, tonic::Status>> + Unpin,
) {
    let mut close = CloseFrame {
        code: axum::extract::ws::close_code::NORMAL,
        reason: "job ended".into(),
    };
    loop {
        tokio::select! {
            next = events.next() => match next {
                Some(Ok(event)) => {
                    let text = serde_json::to_string(&event).unwrap_or_default();
                    if socket.send(Message::Text(text.into())).await.is_err() {
                        return;
                    }
                }
                Some(Err(status)) => {
                    close = CloseFrame {
                        code: axum::extract::ws::close_code::ERROR,
                        reason: status.message().to_owned().into(),
                    };
                    break;
                }
                None => break,
            },
            incoming = socket.recv() => match incoming {
                // The client went away.
                None | Some(Ok(Message::Close(_))) => return,
                // A message over MAX_CLIENT_MESSAGE, or a broken frame.
                Some(Err(_)) => {
                    close = CloseFrame {
                        code: axum::extract::ws::close_code::SIZE,
                        reason: "clients of this socket only listen".into(),
                    };
                    break;
                }
                Some(Ok(_)) => {}
            },
        }
    }
    let _ = socket.send(Message::Close(Some(close))).await;
}
