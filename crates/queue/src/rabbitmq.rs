//! RabbitMQ through lapin.
//!
//! - Queues are durable **quorum** queues (replicated, and the broker counts deliveries): a
//!   message returned `max_deliveries` times is dead-lettered by the broker through the default
//!   exchange to `{name}.dlq` (`x-delivery-limit`, `x-dead-letter-routing-key`; RabbitMQ docs,
//!   "Quorum Queues — Poison Message Handling").
//! - Publishing waits for the publisher confirm and sets `mandatory`, so a message to a missing
//!   queue is an error, not a silent drop.
//! - Consumers use manual acks and a prefetch limit; the attempt number comes from the broker's
//!   `x-delivery-count` header.
//! - When the broker goes away, the next call reconnects (a new connection and confirm-mode
//!   channel); calls made while it is down answer `Unavailable` so callers retry with backoff, and
//!   consumers subscribe again by themselves with exponential backoff.
//! - Trace context and the idempotency key travel as message headers.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    BasicRejectOptions, ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::Confirmation;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use prost::Message as _;
use tokio::sync::Mutex;

use crate::{
    dead_letter_name, Consumer, Delivery, Envelope, QueueError, QueueSpec, Settle, WorkQueue,
};

/// Header carrying the envelope's idempotency key (for brokers' tooling; the body has it too).
pub const IDEMPOTENCY_HEADER: &str = "studio-idempotency-key";

fn unavailable(err: lapin::Error) -> QueueError {
    QueueError::Unavailable(err.to_string())
}

/// The live connection and its confirm-mode publishing channel.
struct Link {
    connection: Arc<Connection>,
    publisher: Channel,
}

struct Inner {
    url: String,
    name: String,
    /// The broker's CA (PEM), for `amqps://` to a private CA.
    ca: Option<String>,
    link: Mutex<Option<Link>>,
}

impl Inner {
    /// The live link, reconnecting first when there is none or it broke.
    async fn link(&self) -> Result<tokio::sync::MappedMutexGuard<'_, Link>, QueueError> {
        let mut guard = self.link.lock().await;
        let alive = guard
            .as_ref()
            .is_some_and(|l| l.connection.status().connected() && l.publisher.status().connected());
        if !alive {
            if let Some(old) = guard.take() {
                let _ = old.connection.close(200, "reconnecting".into()).await;
            }
            let properties =
                ConnectionProperties::default().with_connection_name(self.name.clone().into());
            let connection = lapin::ConnectionBuilder::new()
                .map_err(unavailable)?
                .with_uri_str(self.url.clone())
                .with_properties(properties)
                .with_tls_config(lapin::tcp::OwnedTLSConfig {
                    identity: None,
                    cert_chain: self.ca.clone(),
                })
                .connect()
                .await
                .map_err(unavailable)?;
            let publisher = connection.create_channel().await.map_err(unavailable)?;
            publisher
                .confirm_select(ConfirmSelectOptions::default())
                .await
                .map_err(unavailable)?;
            tracing::info!(name = %self.name, "connected to rabbitmq");
            *guard = Some(Link {
                connection: Arc::new(connection),
                publisher,
            });
        }
        Ok(tokio::sync::MutexGuard::map(guard, |l| {
            l.as_mut().expect("link was just set")
        }))
    }

    async fn connection(&self) -> Result<Arc<Connection>, QueueError> {
        Ok(self.link().await?.connection.clone())
    }
}

/// A RabbitMQ client: one connection (re-established on demand) with a confirm-mode channel for
/// publishing and one channel per consumer.
pub struct RabbitQueue {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RabbitQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RabbitQueue")
            .field("name", &self.inner.name)
            .finish_non_exhaustive()
    }
}

impl RabbitQueue {
    /// Connects to `url` (`amqp://user:password@host:5672/%2f`), naming the connection `name` in
    /// the broker's tools. `Unavailable` when the broker cannot be reached.
    pub async fn connect(url: &str, name: &str) -> Result<RabbitQueue, QueueError> {
        Self::connect_with_ca(url, name, None).await
    }

    /// As [`connect`](Self::connect); an `amqps://` URL's broker certificate is checked against
    /// `ca` (PEM) when given, the public roots otherwise.
    pub async fn connect_with_ca(
        url: &str,
        name: &str,
        ca: Option<String>,
    ) -> Result<RabbitQueue, QueueError> {
        // rustls is linked with both ring and aws-lc-rs in Studio's services, so it picks no
        // provider by itself; ring is the one lapin is built with (once per process).
        static PROVIDER: std::sync::Once = std::sync::Once::new();
        PROVIDER.call_once(|| {
            let _ = rustls::crypto::ring::default_provider().install_default();
        });
        let inner = Arc::new(Inner {
            url: url.to_owned(),
            name: name.to_owned(),
            ca,
            link: Mutex::new(None),
        });
        drop(inner.link().await?);
        Ok(RabbitQueue { inner })
    }

    /// Closes the connection (consumers stop; unsettled deliveries return to their queues).
    pub async fn close(&self) {
        if let Some(link) = self.inner.link.lock().await.take() {
            let _ = link.connection.close(200, "bye".into()).await;
        }
    }
}

fn properties(envelope: &Envelope) -> BasicProperties {
    let mut headers = FieldTable::default();
    for (key, value) in &envelope.trace_context {
        headers.insert(
            key.clone().into(),
            AMQPValue::LongString(value.clone().into()),
        );
    }
    headers.insert(
        IDEMPOTENCY_HEADER.into(),
        AMQPValue::LongString(envelope.idempotency_key.clone().into()),
    );
    BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type("application/x-protobuf".into())
        .with_message_id(envelope.message_id.clone().into())
        .with_headers(headers)
}

fn int(value: &AMQPValue) -> Option<i64> {
    match value {
        AMQPValue::ShortShortInt(n) => Some(i64::from(*n)),
        AMQPValue::ShortShortUInt(n) => Some(i64::from(*n)),
        AMQPValue::ShortInt(n) => Some(i64::from(*n)),
        AMQPValue::ShortUInt(n) => Some(i64::from(*n)),
        AMQPValue::LongInt(n) => Some(i64::from(*n)),
        AMQPValue::LongUInt(n) => Some(i64::from(*n)),
        AMQPValue::LongLongInt(n) => Some(*n),
        _ => None,
    }
}

#[derive(Debug)]
struct RabbitSettle {
    acker: lapin::Acker,
}

#[async_trait::async_trait]
impl Settle for RabbitSettle {
    async fn ack(self: Box<Self>) -> Result<(), QueueError> {
        self.acker
            .ack(BasicAckOptions::default())
            .await
            .map(drop)
            .map_err(unavailable)
    }

    async fn retry(self: Box<Self>) -> Result<(), QueueError> {
        self.acker
            .nack(BasicNackOptions {
                multiple: false,
                requeue: true,
            })
            .await
            .map(drop)
            .map_err(unavailable)
    }

    async fn reject(self: Box<Self>) -> Result<(), QueueError> {
        self.acker
            .reject(BasicRejectOptions { requeue: false })
            .await
            .map(drop)
            .map_err(unavailable)
    }

    async fn extend(&self, _by: Duration) -> Result<(), QueueError> {
        // RabbitMQ never hands an unacked message to another consumer while its channel lives.
        Ok(())
    }
}

struct RabbitConsumer {
    inner: Arc<Inner>,
    queue: String,
    prefetch: u16,
    // Kept alive: dropping the channel cancels the consumer.
    channel: Channel,
    consumer: lapin::Consumer,
}

/// Opens a channel with `prefetch` and subscribes to `queue`.
async fn subscribe(
    connection: &Connection,
    queue: &str,
    prefetch: u16,
) -> Result<(Channel, lapin::Consumer), QueueError> {
    let channel = connection.create_channel().await.map_err(unavailable)?;
    channel
        .basic_qos(prefetch.max(1), BasicQosOptions::default())
        .await
        .map_err(unavailable)?;
    let tag = format!("{queue}-{}", uuid::Uuid::now_v7().simple());
    let consumer = channel
        .basic_consume(
            queue.to_owned().into(),
            tag.into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(|e| match e.to_string() {
            s if s.contains("NOT_FOUND") => QueueError::Unroutable(queue.to_owned()),
            s => QueueError::Unavailable(s),
        })?;
    Ok((channel, consumer))
}

impl RabbitConsumer {
    /// Subscribes again after the broker went away, with exponential backoff (0.2 s doubling to
    /// 5 s), until it works.
    async fn resubscribe(&mut self, reason: &str) {
        let mut backoff = Duration::from_millis(200);
        loop {
            tracing::warn!(queue = %self.queue, reason, "consumer lost; subscribing again");
            tokio::time::sleep(backoff).await;
            let subscribed = match self.inner.connection().await {
                Ok(connection) => subscribe(&connection, &self.queue, self.prefetch).await,
                Err(err) => Err(err),
            };
            match subscribed {
                Ok((channel, consumer)) => {
                    self.channel = channel;
                    self.consumer = consumer;
                    tracing::info!(queue = %self.queue, "consumer resubscribed");
                    return;
                }
                Err(err) => {
                    tracing::debug!(queue = %self.queue, error = %err, "resubscribe failed");
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
}

#[async_trait::async_trait]
impl Consumer for RabbitConsumer {
    async fn next(&mut self) -> Result<Delivery, QueueError> {
        loop {
            let delivery = match self.consumer.next().await {
                Some(Ok(delivery)) => delivery,
                Some(Err(err)) => {
                    self.resubscribe(&err.to_string()).await;
                    continue;
                }
                None => {
                    self.resubscribe("consumer cancelled").await;
                    continue;
                }
            };
            let headers = delivery.properties.headers().clone().unwrap_or_default();
            let previous = headers
                .inner()
                .get("x-delivery-count")
                .and_then(int)
                .unwrap_or(0);
            let mut envelope = match Envelope::decode(delivery.data.as_slice()) {
                Ok(envelope) => envelope,
                Err(err) => {
                    tracing::error!(queue = %self.queue, error = %err, "undecodable message dead-lettered");
                    let _ = delivery
                        .acker
                        .reject(BasicRejectOptions { requeue: false })
                        .await;
                    continue;
                }
            };
            for key in ["traceparent", "tracestate"] {
                if let Some(AMQPValue::LongString(value)) = headers.inner().get(key) {
                    envelope.trace_context.insert(
                        key.to_owned(),
                        String::from_utf8_lossy(value.as_bytes()).into_owned(),
                    );
                }
            }
            let attempt = u32::try_from(previous + 1).unwrap_or(u32::MAX);
            return Ok(Delivery::new(
                envelope,
                attempt,
                Box::new(RabbitSettle {
                    acker: delivery.acker,
                }),
            ));
        }
    }
}

#[async_trait::async_trait]
impl WorkQueue for RabbitQueue {
    async fn declare(&self, spec: &QueueSpec) -> Result<(), QueueError> {
        spec.check()?;
        // A fresh channel: a declaration that conflicts with an existing queue closes it.
        let channel = self
            .inner
            .connection()
            .await?
            .create_channel()
            .await
            .map_err(unavailable)?;
        let mut dlq_args = FieldTable::default();
        dlq_args.insert(
            "x-queue-type".into(),
            AMQPValue::LongString("quorum".into()),
        );
        channel
            .queue_declare(
                spec.dead_letter_name().into(),
                QueueDeclareOptions::durable(),
                dlq_args,
            )
            .await
            .map_err(|e| {
                QueueError::Invalid(format!("declaring {}: {e}", spec.dead_letter_name()))
            })?;
        let mut args = FieldTable::default();
        args.insert(
            "x-queue-type".into(),
            AMQPValue::LongString("quorum".into()),
        );
        // The broker dead-letters a message returned more than this many times.
        args.insert(
            "x-delivery-limit".into(),
            AMQPValue::LongLongInt(i64::from(spec.max_deliveries) - 1),
        );
        args.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString("".into()),
        );
        args.insert(
            "x-dead-letter-routing-key".into(),
            AMQPValue::LongString(spec.dead_letter_name().into()),
        );
        channel
            .queue_declare(
                spec.name.clone().into(),
                QueueDeclareOptions::durable(),
                args,
            )
            .await
            .map_err(|e| QueueError::Invalid(format!("declaring {}: {e}", spec.name)))?;
        let _ = channel.close(200, "declared".into()).await;
        Ok(())
    }

    async fn publish(&self, queue: &str, envelope: &Envelope) -> Result<(), QueueError> {
        let body = envelope.encode_to_vec();
        let confirm = {
            let link = self.inner.link().await?;
            link.publisher
                .basic_publish(
                    "".into(),
                    queue.to_owned().into(),
                    BasicPublishOptions {
                        mandatory: true,
                        immediate: false,
                    },
                    &body,
                    properties(envelope),
                )
                .await
                .map_err(unavailable)?
        };
        match confirm.await.map_err(unavailable)? {
            Confirmation::Ack(None) => Ok(()),
            Confirmation::Ack(Some(_)) => Err(QueueError::Unroutable(queue.to_owned())),
            Confirmation::Nack(_) => Err(QueueError::Refused(queue.to_owned())),
            Confirmation::NotRequested => Err(QueueError::Unavailable(
                "publisher confirms are off on the publishing channel".into(),
            )),
        }
    }

    async fn consume(&self, queue: &str, prefetch: u16) -> Result<Box<dyn Consumer>, QueueError> {
        let connection = self.inner.connection().await?;
        let (channel, consumer) = subscribe(&connection, queue, prefetch).await?;
        Ok(Box::new(RabbitConsumer {
            inner: self.inner.clone(),
            queue: queue.to_owned(),
            prefetch,
            channel,
            consumer,
        }))
    }

    async fn depth(&self, queue: &str) -> Result<u64, QueueError> {
        let channel = self
            .inner
            .connection()
            .await?
            .create_channel()
            .await
            .map_err(unavailable)?;
        let declared = channel
            .queue_declare(
                queue.to_owned().into(),
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .map_err(|_| QueueError::Unroutable(queue.to_owned()))?;
        let _ = channel.close(200, "depth".into()).await;
        Ok(u64::from(declared.message_count()))
    }

    async fn delete(&self, queue: &str) -> Result<(), QueueError> {
        let channel = self
            .inner
            .connection()
            .await?
            .create_channel()
            .await
            .map_err(unavailable)?;
        for name in [queue.to_owned(), dead_letter_name(queue)] {
            channel
                .queue_delete(name.into(), QueueDeleteOptions::default())
                .await
                .map_err(unavailable)?;
        }
        let _ = channel.close(200, "deleted".into()).await;
        Ok(())
    }
}
