//! Work queues: "this work is ready" messages between Studio's services.
//!
//! A [`WorkQueue`] publishes [`Envelope`]s (the `studio.queue.v1` contract: message id,
//! idempotency key, W3C trace context, a typed body) and hands them to consumers as
//! [`Delivery`]s that must be settled: [`Delivery::ack`] when done, [`Delivery::retry`] to have
//! it delivered again, [`Delivery::reject`] to dead-letter it now. Delivery is at-least-once: a
//! consumer that dies holding a delivery gets it redelivered, so consumers must be idempotent on
//! the idempotency key. Postgres stays the source of truth; a message only says where to look.
//!
//! Every queue has a dead-letter queue `{name}.dlq`. A message delivered `max_deliveries` times
//! without an ack (a poison message) moves there instead of blocking the queue.
//!
//! Backends, one module each: [`rabbitmq`] (lapin: durable quorum queues, publisher confirms with
//! `mandatory`, manual acks, prefetch, broker-side delivery limit and dead-lettering, automatic
//! reconnection that rebuilds channels and consumers), [`sqs`] (long polling, visibility
//! heartbeats, redrive to a dead-letter queue) and [`memory`] (the embedded mode and tests).
//! [`lease`] holds what lease-holding workers share on top: the heartbeat, how a failed attempt
//! ends, and settling.

pub mod lease;
pub mod memory;
pub mod rabbitmq;
pub mod sqs;

use std::time::Duration;

pub use studio_proto::queue::v1::Envelope;

/// Why a queue operation failed. `Unavailable` is worth retrying; the others are not.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The broker cannot be reached or the connection dropped; retry with backoff.
    #[error("queue broker unavailable: {0}")]
    Unavailable(String),
    /// No queue by this name: publish only to queues declared first.
    #[error("queue {0} does not exist; declare it first")]
    Unroutable(String),
    /// The broker refused to take responsibility for the message (publisher confirm nack).
    #[error("broker refused the message on queue {0}")]
    Refused(String),
    /// A message that is not an `Envelope`.
    #[error("undecodable message: {0}")]
    Decode(String),
    #[error("invalid queue settings: {0}")]
    Invalid(String),
}

/// A queue and its poison-message policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSpec {
    pub name: String,
    /// Deliveries before a message is dead-lettered. Default 5.
    pub max_deliveries: u32,
}

impl QueueSpec {
    pub fn new(name: impl Into<String>) -> Self {
        QueueSpec {
            name: name.into(),
            max_deliveries: 5,
        }
    }

    pub fn max_deliveries(mut self, n: u32) -> Self {
        self.max_deliveries = n;
        self
    }

    /// The name of the queue's dead-letter queue.
    pub fn dead_letter_name(&self) -> String {
        dead_letter_name(&self.name)
    }

    fn check(&self) -> Result<(), QueueError> {
        let ok = !self.name.is_empty()
            && self.name.len() <= 200
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !ok {
            return Err(QueueError::Invalid(format!(
                "queue name {:?}: use 1 to 200 of a-z, 0-9, -, _ and .",
                self.name
            )));
        }
        if self.max_deliveries == 0 {
            return Err(QueueError::Invalid(
                "max_deliveries must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// `{queue}.dlq`.
pub fn dead_letter_name(queue: &str) -> String {
    format!("{queue}.dlq")
}

/// A message handed to a consumer. Dropping it unsettled counts as a failed delivery (as when a
/// worker dies): it is delivered again, or dead-lettered once out of deliveries.
#[derive(Debug)]
pub struct Delivery {
    pub envelope: Envelope,
    /// 1 for the first delivery, 2 for the first redelivery, …
    pub attempt: u32,
    settle: Option<Box<dyn Settle>>,
}

/// How a backend settles one delivery.
#[async_trait::async_trait]
pub trait Settle: Send + Sync + std::fmt::Debug {
    async fn ack(self: Box<Self>) -> Result<(), QueueError>;
    async fn retry(self: Box<Self>) -> Result<(), QueueError>;
    async fn reject(self: Box<Self>) -> Result<(), QueueError>;
    /// Keeps the message from redelivery for `by` more (SQS visibility); a no-op where the
    /// broker never redelivers while the consumer lives (RabbitMQ).
    async fn extend(&self, by: Duration) -> Result<(), QueueError>;
}

impl Delivery {
    pub fn new(envelope: Envelope, attempt: u32, settle: Box<dyn Settle>) -> Self {
        Delivery {
            envelope,
            attempt,
            settle: Some(settle),
        }
    }

    /// Done: the message is removed.
    pub async fn ack(mut self) -> Result<(), QueueError> {
        match self.settle.take() {
            Some(s) => s.ack().await,
            None => Ok(()),
        }
    }

    /// Failed for now: deliver again (counts a delivery; dead-lettered when out of them).
    pub async fn retry(mut self) -> Result<(), QueueError> {
        match self.settle.take() {
            Some(s) => s.retry().await,
            None => Ok(()),
        }
    }

    /// Failed for good: straight to the dead-letter queue.
    pub async fn reject(mut self) -> Result<(), QueueError> {
        match self.settle.take() {
            Some(s) => s.reject().await,
            None => Ok(()),
        }
    }

    /// Asks for `by` more time before the message may be redelivered to someone else.
    pub async fn extend(&self, by: Duration) -> Result<(), QueueError> {
        match &self.settle {
            Some(s) => s.extend(by).await,
            None => Ok(()),
        }
    }
}

impl Drop for Delivery {
    fn drop(&mut self) {
        if let Some(settle) = self.settle.take() {
            // Unsettled: treat as a failed delivery, as a crashed worker would be.
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    if let Err(err) = settle.retry().await {
                        tracing::warn!(error = %err, "returning an unsettled delivery failed");
                    }
                });
            }
        }
    }
}

/// A stream of deliveries from one queue.
#[async_trait::async_trait]
pub trait Consumer: Send {
    /// Waits for the next delivery. When the broker goes away the consumer subscribes again by
    /// itself once it is back; deliveries unsettled at that moment are redelivered.
    async fn next(&mut self) -> Result<Delivery, QueueError>;
}

/// A work-queue backend.
#[async_trait::async_trait]
pub trait WorkQueue: Send + Sync + 'static {
    /// Creates the queue and its dead-letter queue if missing (idempotent).
    async fn declare(&self, spec: &QueueSpec) -> Result<(), QueueError>;

    /// Publishes and returns once the broker has taken responsibility for the message.
    /// `Unroutable` when the queue does not exist.
    async fn publish(&self, queue: &str, envelope: &Envelope) -> Result<(), QueueError>;

    /// Starts consuming; at most `prefetch` deliveries are unsettled at once.
    async fn consume(&self, queue: &str, prefetch: u16) -> Result<Box<dyn Consumer>, QueueError>;

    /// Messages waiting (not delivered) in `queue`, for tests and operators.
    async fn depth(&self, queue: &str) -> Result<u64, QueueError>;

    /// Deletes a queue and its dead-letter queue (tests, teardown).
    async fn delete(&self, queue: &str) -> Result<(), QueueError>;
}

/// A new envelope with a fresh message id and the current time.
pub fn envelope(
    idempotency_key: impl Into<String>,
    body: studio_proto::queue::v1::envelope::Body,
) -> Envelope {
    Envelope {
        message_id: uuid::Uuid::now_v7().to_string(),
        idempotency_key: idempotency_key.into(),
        created_at_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or_default(),
        trace_context: Default::default(),
        body: Some(body),
    }
}

/// Which broker a service uses, as the `queue` table of its settings:
/// `backend = "rabbitmq"` with `url`, `backend = "sqs"` with [`sqs::SqsSettings`]' keys, or
/// `backend = "memory"` (one process only: the embedded mode and tests).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(tag = "backend", rename_all = "lowercase")]
pub enum QueueSettings {
    Rabbitmq {
        /// `amqp://user:password@host:5672/%2f`, or `amqps://…:5671/%2f` for TLS (rustls; the
        /// server's certificate is checked against the public roots, or `tls_ca_file`).
        url: secrecy::SecretString,
        /// PEM file of the CA that signed the broker's certificate, for `amqps://` to a broker
        /// with a private CA. Default none (the public roots).
        #[serde(default)]
        tls_ca_file: Option<std::path::PathBuf>,
    },
    Sqs(sqs::SqsSettings),
    Memory,
}

impl Default for QueueSettings {
    /// RabbitMQ on this machine as a fresh install has it:
    /// `amqp://guest:guest@127.0.0.1:5672/%2f?heartbeat=10` (AMQP heartbeats every 10 s, so the
    /// broker takes a frozen consumer's messages back within seconds).
    fn default() -> Self {
        QueueSettings::Rabbitmq {
            url: "amqp://guest:guest@127.0.0.1:5672/%2f?heartbeat=10"
                .to_owned()
                .into(),
            tls_ca_file: None,
        }
    }
}

impl QueueSettings {
    /// Connects, naming the connection `name` where the broker shows one. `Unavailable` when
    /// the broker cannot be reached; `Invalid` for unusable settings.
    pub async fn connect(&self, name: &str) -> Result<std::sync::Arc<dyn WorkQueue>, QueueError> {
        use secrecy::ExposeSecret as _;
        Ok(match self {
            QueueSettings::Rabbitmq { url, tls_ca_file } => {
                let ca = match tls_ca_file {
                    Some(path) => Some(std::fs::read_to_string(path).map_err(|e| {
                        QueueError::Invalid(format!(
                            "queue.tls_ca_file {}: {e}; name a PEM file of the broker's CA",
                            path.display()
                        ))
                    })?),
                    None => None,
                };
                std::sync::Arc::new(
                    rabbitmq::RabbitQueue::connect_with_ca(url.expose_secret(), name, ca).await?,
                )
            }
            QueueSettings::Sqs(settings) => {
                std::sync::Arc::new(sqs::SqsQueue::new(settings.clone())?)
            }
            QueueSettings::Memory => std::sync::Arc::new(memory::MemoryQueue::new()),
        })
    }
}

/// The queues Studio's services share; a deployment may put a prefix in front of each.
pub mod names {
    /// `StepReady` messages for ai-job's step workers.
    pub const STEPS: &str = "studio.steps";
    /// `StepReady` messages for media-render workers (render steps).
    pub const RENDER: &str = "studio.render";
}
