//! AWS SQS through aws-sdk-sqs (or any SQS-compatible endpoint).
//!
//! - Long polling (`WaitTimeSeconds` up to 20 s) fills a local buffer of at most `prefetch`
//!   messages.
//! - While a delivery is being worked on, a heartbeat extends its visibility timeout every half
//!   timeout, so a long step is not handed to a second worker; the heartbeat stops when the
//!   delivery is settled or dropped.
//! - Poison messages move to the dead-letter queue through the queue's redrive policy
//!   (`maxReceiveCount` = `max_deliveries`; AWS "Using dead-letter queues in Amazon SQS").
//! - Bodies are the envelope's protobuf bytes in base64 (SQS bodies are text); trace context and
//!   the idempotency key travel as message attributes.
//! - SQS names allow letters, digits, `-` and `_` only, so a `.` in a Studio queue name (as in
//!   `{name}.dlq`) becomes `-`.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_sqs::types::{MessageAttributeValue, MessageSystemAttributeName, QueueAttributeName};
use aws_sdk_sqs::Client;
use base64::Engine as _;
use prost::Message as _;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::sync::Mutex;

use crate::{
    dead_letter_name, Consumer, Delivery, Envelope, QueueError, QueueSpec, Settle, WorkQueue,
};

/// Message attribute carrying the idempotency key.
pub const IDEMPOTENCY_ATTRIBUTE: &str = "studio-idempotency-key";

/// Where the queues live.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqsSettings {
    /// Default `us-east-1`.
    #[serde(default = "default_region")]
    pub region: String,
    /// An SQS-compatible endpoint, e.g. `http://127.0.0.1:9324`; AWS when unset.
    #[serde(default)]
    pub endpoint: Option<String>,
    pub access_key_id: String,
    pub secret_access_key: SecretString,
    /// Seconds a received message stays hidden from other consumers; heartbeats renew it.
    /// Default 30.
    #[serde(default = "default_visibility")]
    pub visibility_timeout_s: i32,
    /// Long-poll wait in seconds, 0 to 20. Default 20.
    #[serde(default = "default_wait")]
    pub wait_time_s: i32,
}

fn default_region() -> String {
    "us-east-1".to_owned()
}

fn default_visibility() -> i32 {
    30
}

fn default_wait() -> i32 {
    20
}

/// SQS's spelling of a Studio queue name.
pub fn sqs_name(queue: &str) -> String {
    queue.replace('.', "-")
}

fn unavailable<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> QueueError + '_ {
    move |e| QueueError::Unavailable(format!("{what}: {e}"))
}

struct Inner {
    client: Client,
    settings: SqsSettings,
    urls: Mutex<HashMap<String, String>>,
}

impl Inner {
    /// The queue URL of `queue`; `Unroutable` when it does not exist.
    async fn url(&self, queue: &str) -> Result<String, QueueError> {
        if let Some(url) = self.urls.lock().await.get(queue) {
            return Ok(url.clone());
        }
        let found = self
            .client
            .get_queue_url()
            .queue_name(sqs_name(queue))
            .send()
            .await
            .map_err(|e| match e.into_service_error() {
                aws_sdk_sqs::operation::get_queue_url::GetQueueUrlError::QueueDoesNotExist(_) => {
                    QueueError::Unroutable(queue.to_owned())
                }
                other => QueueError::Unavailable(format!("get queue url: {other}")),
            })?;
        let url = found
            .queue_url()
            .ok_or_else(|| QueueError::Unavailable("no queue url".into()))?
            .to_owned();
        self.urls.lock().await.insert(queue.to_owned(), url.clone());
        Ok(url)
    }
}

/// SQS queues.
#[derive(Clone)]
pub struct SqsQueue {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SqsQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqsQueue")
            .field("endpoint", &self.inner.settings.endpoint)
            .finish_non_exhaustive()
    }
}

impl SqsQueue {
    /// Builds the client. `Invalid` for a visibility timeout outside 1 s..12 h or a wait outside
    /// 0..=20 s (SQS limits).
    pub fn new(settings: SqsSettings) -> Result<SqsQueue, QueueError> {
        if !(1..=43_200).contains(&settings.visibility_timeout_s) {
            return Err(QueueError::Invalid(
                "visibility_timeout_s must be 1 to 43200".into(),
            ));
        }
        if !(0..=20).contains(&settings.wait_time_s) {
            return Err(QueueError::Invalid("wait_time_s must be 0 to 20".into()));
        }
        let mut config = aws_sdk_sqs::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(settings.region.clone()))
            .credentials_provider(Credentials::new(
                settings.access_key_id.clone(),
                settings.secret_access_key.expose_secret().to_owned(),
                None,
                None,
                "studio-settings",
            ));
        if let Some(endpoint) = &settings.endpoint {
            config = config.endpoint_url(endpoint);
        }
        Ok(SqsQueue {
            inner: Arc::new(Inner {
                client: Client::from_conf(config.build()),
                settings,
                urls: Mutex::new(HashMap::new()),
            }),
        })
    }
}

fn attribute(value: &str) -> Option<MessageAttributeValue> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .ok()
}

/// Settles one received message and keeps it invisible while it is worked on.
struct SqsSettle {
    inner: Arc<Inner>,
    queue: String,
    url: String,
    receipt: String,
    envelope: Envelope,
    heartbeat: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for SqsSettle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqsSettle")
            .field("queue", &self.queue)
            .finish_non_exhaustive()
    }
}

impl SqsSettle {
    async fn delete(&self) -> Result<(), QueueError> {
        self.heartbeat.abort();
        self.inner
            .client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(&self.receipt)
            .send()
            .await
            .map_err(|e| {
                QueueError::Unavailable(format!("delete message: {}", e.into_service_error()))
            })?;
        Ok(())
    }

    async fn visibility(&self, seconds: i32) -> Result<(), QueueError> {
        self.inner
            .client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(&self.receipt)
            .visibility_timeout(seconds)
            .send()
            .await
            .map_err(|e| {
                QueueError::Unavailable(format!("change visibility: {}", e.into_service_error()))
            })?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl Settle for SqsSettle {
    async fn ack(self: Box<Self>) -> Result<(), QueueError> {
        self.delete().await
    }

    async fn retry(self: Box<Self>) -> Result<(), QueueError> {
        self.heartbeat.abort();
        // Visible again now; the redrive policy dead-letters it once out of receives.
        self.visibility(0).await
    }

    async fn reject(self: Box<Self>) -> Result<(), QueueError> {
        self.heartbeat.abort();
        let queue = SqsQueue {
            inner: self.inner.clone(),
        };
        queue
            .publish(&dead_letter_name(&self.queue), &self.envelope)
            .await?;
        self.delete().await
    }

    async fn extend(&self, by: Duration) -> Result<(), QueueError> {
        self.visibility(by.as_secs().clamp(1, 43_200) as i32).await
    }
}

impl Drop for SqsSettle {
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}

struct SqsConsumer {
    inner: Arc<Inner>,
    queue: String,
    url: String,
    prefetch: i32,
    buffer: VecDeque<aws_sdk_sqs::types::Message>,
}

#[async_trait::async_trait]
impl Consumer for SqsConsumer {
    async fn next(&mut self) -> Result<Delivery, QueueError> {
        let mut backoff = Duration::from_millis(200);
        loop {
            if let Some(message) = self.buffer.pop_front() {
                let receipt = message.receipt_handle().unwrap_or_default().to_owned();
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(message.body().unwrap_or_default())
                    .ok()
                    .and_then(|bytes| Envelope::decode(bytes.as_slice()).ok());
                let Some(mut envelope) = decoded else {
                    tracing::error!(queue = %self.queue, "undecodable message dead-lettered");
                    // Never visible again here; the redrive policy moves it on its next receive.
                    continue;
                };
                if let Some(attributes) = message.message_attributes() {
                    for key in ["traceparent", "tracestate"] {
                        if let Some(value) = attributes.get(key).and_then(|v| v.string_value()) {
                            envelope
                                .trace_context
                                .insert(key.to_owned(), value.to_owned());
                        }
                    }
                }
                let attempt = message
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(1);
                let visibility = self.inner.settings.visibility_timeout_s;
                let heartbeat = {
                    let client = self.inner.client.clone();
                    let url = self.url.clone();
                    let receipt = receipt.clone();
                    tokio::spawn(async move {
                        let every = Duration::from_secs((visibility as u64 / 2).max(1));
                        loop {
                            tokio::time::sleep(every).await;
                            let renewed = client
                                .change_message_visibility()
                                .queue_url(&url)
                                .receipt_handle(&receipt)
                                .visibility_timeout(visibility)
                                .send()
                                .await;
                            if let Err(err) = renewed {
                                tracing::warn!(error = %err.into_service_error(), "visibility heartbeat failed");
                            }
                        }
                    })
                };
                let settle = SqsSettle {
                    inner: self.inner.clone(),
                    queue: self.queue.clone(),
                    url: self.url.clone(),
                    receipt,
                    envelope: envelope.clone(),
                    heartbeat,
                };
                return Ok(Delivery::new(envelope, attempt, Box::new(settle)));
            }
            let received = self
                .inner
                .client
                .receive_message()
                .queue_url(&self.url)
                .max_number_of_messages(self.prefetch)
                .wait_time_seconds(self.inner.settings.wait_time_s)
                .visibility_timeout(self.inner.settings.visibility_timeout_s)
                .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
                .message_attribute_names("All")
                .send()
                .await;
            match received {
                Ok(output) => {
                    backoff = Duration::from_millis(200);
                    self.buffer.extend(output.messages.unwrap_or_default());
                }
                Err(err) => {
                    tracing::warn!(queue = %self.queue, error = %err.into_service_error(), "receive failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
}

#[async_trait::async_trait]
impl WorkQueue for SqsQueue {
    async fn declare(&self, spec: &QueueSpec) -> Result<(), QueueError> {
        spec.check()?;
        let client = &self.inner.client;
        let dlq = client
            .create_queue()
            .queue_name(sqs_name(&spec.dead_letter_name()))
            .send()
            .await
            .map_err(|e| {
                QueueError::Invalid(format!(
                    "create {}: {}",
                    spec.dead_letter_name(),
                    e.into_service_error()
                ))
            })?;
        let dlq_url = dlq.queue_url().unwrap_or_default().to_owned();
        let arn = client
            .get_queue_attributes()
            .queue_url(&dlq_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(unavailable("dead-letter queue arn"))?
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
            .ok_or_else(|| QueueError::Unavailable("no dead-letter queue arn".into()))?;
        let redrive = serde_json::json!({
            "deadLetterTargetArn": arn,
            "maxReceiveCount": spec.max_deliveries.to_string(),
        })
        .to_string();
        let created = client
            .create_queue()
            .queue_name(sqs_name(&spec.name))
            .attributes(QueueAttributeName::RedrivePolicy, redrive)
            .attributes(
                QueueAttributeName::VisibilityTimeout,
                self.inner.settings.visibility_timeout_s.to_string(),
            )
            .send()
            .await
            .map_err(|e| {
                QueueError::Invalid(format!("create {}: {}", spec.name, e.into_service_error()))
            })?;
        let mut urls = self.inner.urls.lock().await;
        urls.insert(
            spec.name.clone(),
            created.queue_url().unwrap_or_default().to_owned(),
        );
        urls.insert(spec.dead_letter_name(), dlq_url);
        Ok(())
    }

    async fn publish(&self, queue: &str, envelope: &Envelope) -> Result<(), QueueError> {
        let url = self.inner.url(queue).await?;
        let body = base64::engine::general_purpose::STANDARD.encode(envelope.encode_to_vec());
        let mut send = self
            .inner
            .client
            .send_message()
            .queue_url(url)
            .message_body(body);
        if let Some(value) = attribute(&envelope.idempotency_key) {
            send = send.message_attributes(IDEMPOTENCY_ATTRIBUTE, value);
        }
        for (key, value) in &envelope.trace_context {
            if let Some(value) = attribute(value) {
                send = send.message_attributes(key.clone(), value);
            }
        }
        send.send().await.map_err(|e| {
            QueueError::Unavailable(format!("send message: {}", e.into_service_error()))
        })?;
        Ok(())
    }

    async fn consume(&self, queue: &str, prefetch: u16) -> Result<Box<dyn Consumer>, QueueError> {
        let url = self.inner.url(queue).await?;
        Ok(Box::new(SqsConsumer {
            inner: self.inner.clone(),
            queue: queue.to_owned(),
            url,
            prefetch: i32::from(prefetch.clamp(1, 10)),
            buffer: VecDeque::new(),
        }))
    }

    async fn depth(&self, queue: &str) -> Result<u64, QueueError> {
        let url = self.inner.url(queue).await?;
        let attributes = self
            .inner
            .client
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .map_err(unavailable("queue attributes"))?;
        Ok(attributes
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::ApproximateNumberOfMessages))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0))
    }

    async fn delete(&self, queue: &str) -> Result<(), QueueError> {
        for name in [queue.to_owned(), dead_letter_name(queue)] {
            if let Ok(url) = self.inner.url(&name).await {
                self.inner
                    .client
                    .delete_queue()
                    .queue_url(url)
                    .send()
                    .await
                    .map_err(unavailable("delete queue"))?;
            }
            self.inner.urls.lock().await.remove(&name);
        }
        Ok(())
    }
}
