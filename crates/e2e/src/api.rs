//! The platform's REST API as the end-to-end tests drive it: register, create projects, start
//! and follow jobs, download outputs.

use std::path::Path;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::Message;

use crate::Platform;

/// The fable most tests narrate (Aesop, `examples/texts`).
pub const FABLE: &str = "The Lion And The Mouse";

pub struct Api {
    /// The gateway's base URL.
    pub base: String,
    pub http: reqwest::Client,
}

impl Api {
    pub fn new(platform: &Platform) -> Api {
        Api {
            base: platform.gateway.clone(),
            http: reqwest::Client::new(),
        }
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn register(&self, email: &str) -> String {
        let (status, body) = self
            .call(
                "POST",
                "/v1/auth/register",
                None,
                Some(json!({"email": email, "password": "correct horse battery"})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["access_token"].as_str().unwrap().to_owned()
    }

    pub async fn fable_project(&self, token: &str, aspect: &str) -> String {
        let (status, body) = self
            .call(
                "POST",
                "/v1/projects",
                Some(token),
                Some(json!({
                    "title": FABLE,
                    "source_text": studio_testkit::texts::aesop(),
                    "aspect": aspect,
                    "settings": {"section": FABLE, "music": true},
                })),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }

    pub async fn start(&self, token: &str, project: &str, key: &str) -> (u16, Value) {
        let resp = self
            .http
            .post(format!("{}/v1/projects/{project}/jobs", self.base))
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap())
    }

    /// Polls until the job ends; returns it.
    pub async fn wait(&self, token: &str, job: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let (status, body) = self
                .call("GET", &format!("/v1/jobs/{job}"), Some(token), None)
                .await;
            assert_eq!(status, 200, "{body}");
            if ["succeeded", "failed", "cancelled"].contains(&body["state"].as_str().unwrap()) {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "job {job} did not end in {timeout:?}: {body}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Every event over WebSocket until the server closes the socket.
    pub async fn events_ws(&self, token: &str, job: &str) -> Vec<Value> {
        let url = format!(
            "{}/v1/jobs/{job}/events",
            self.base.replace("http://", "ws://")
        );
        let mut request = url.into_client_request().unwrap();
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        let mut events = Vec::new();
        let read = async {
            while let Some(message) = socket.next().await {
                match message.unwrap() {
                    Message::Text(text) => events.push(serde_json::from_str(&text).unwrap()),
                    Message::Close(frame) => {
                        let frame = frame.expect("close frame");
                        assert_eq!(u16::from(frame.code), 1000, "{frame:?}");
                        break;
                    }
                    _ => {}
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(600), read)
            .await
            .expect("events ended");
        events
    }

    /// Downloads an output through its presigned URL into `dir`.
    pub async fn download(
        &self,
        token: &str,
        job: &str,
        kind: &str,
        dir: &Path,
        name: &str,
    ) -> std::path::PathBuf {
        let (status, body) = self
            .call(
                "GET",
                &format!("/v1/jobs/{job}/outputs/{kind}"),
                Some(token),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let url = body["url"].as_str().unwrap();
        assert!(url.contains("X-Amz-Signature"), "presigned: {url}");
        let bytes = reqwest::get(url).await.unwrap();
        assert_eq!(bytes.status(), 200);
        let bytes = bytes.bytes().await.unwrap();
        assert_eq!(bytes.len() as u64, body["size_bytes"].as_u64().unwrap());
        let path = dir.join(name);
        std::fs::write(&path, &bytes).unwrap();
        path
    }
}
