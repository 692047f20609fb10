//! One behaviour suite for every backend: the in-memory queue, and RabbitMQ on this machine
//! (`STUDIO_TEST_AMQP`, default `amqp://guest:guest@127.0.0.1:5672/%2f`) with queues of unique
//! names, deleted afterwards.

use std::sync::Arc;
use std::time::Duration;

use studio_proto::queue::v1::envelope::Body;
use studio_proto::queue::v1::StepReady;
use studio_queue::memory::MemoryQueue;
use studio_queue::rabbitmq::RabbitQueue;
use studio_queue::sqs::{SqsQueue, SqsSettings};
use studio_queue::{envelope, Envelope, QueueError, QueueSpec, WorkQueue};

fn amqp_url() -> String {
    std::env::var("STUDIO_TEST_AMQP")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
}

fn step(job: &str, step: &str) -> Envelope {
    let mut e = envelope(
        format!("step:{step}"),
        Body::StepReady(StepReady {
            job_id: job.to_owned(),
            step_id: step.to_owned(),
        }),
    );
    e.trace_context.insert(
        "traceparent".to_owned(),
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned(),
    );
    e
}

fn step_id(e: &Envelope) -> String {
    match &e.body {
        Some(Body::StepReady(s)) => s.step_id.clone(),
        other => panic!("unexpected body {other:?}"),
    }
}

/// How long a test waits for a delivery that must come: a bound on a hang, not a speed check
/// (moto on a loaded two-core machine has taken over 10 s).
const DELIVERY_WITHIN: Duration = Duration::from_secs(30);

async fn next(consumer: &mut Box<dyn studio_queue::Consumer>) -> studio_queue::Delivery {
    tokio::time::timeout(DELIVERY_WITHIN, consumer.next())
        .await
        .expect("a delivery within 30 s")
        .expect("delivery")
}

async fn eventually_depth(q: &dyn WorkQueue, queue: &str, want: u64) {
    for _ in 0..100 {
        if q.depth(queue).await.unwrap() == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "{queue} never reached depth {want} (now {})",
        q.depth(queue).await.unwrap()
    );
}

async fn suite(q: Arc<dyn WorkQueue>, prefix: &str) {
    let name = format!("{prefix}-{}", uuid::Uuid::now_v7().simple());
    let spec = QueueSpec::new(&name).max_deliveries(3);
    q.declare(&spec).await.unwrap();
    q.declare(&spec).await.expect("declaring twice is fine");

    // Publish, consume in order, ack; metadata survives the trip.
    for i in 0..3 {
        q.publish(&name, &step("job-1", &format!("s{i}")))
            .await
            .unwrap();
    }
    eventually_depth(q.as_ref(), &name, 3).await;
    let mut consumer = q.consume(&name, 1).await.unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..3 {
        let d = next(&mut consumer).await;
        let id = step_id(&d.envelope);
        assert_eq!(d.attempt, 1);
        assert_eq!(d.envelope.idempotency_key, format!("step:{id}"));
        seen.insert(id);
        assert_eq!(
            d.envelope.trace_context["traceparent"],
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );
        d.ack().await.unwrap();
    }
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), vec!["s0", "s1", "s2"]);

    // Retry: delivered again with the next attempt number.
    q.publish(&name, &step("job-1", "again")).await.unwrap();
    let d = next(&mut consumer).await;
    let id = d.envelope.message_id.clone();
    d.retry().await.unwrap();
    let d = next(&mut consumer).await;
    assert_eq!(
        (d.envelope.message_id.as_str(), d.attempt),
        (id.as_str(), 2)
    );
    d.ack().await.unwrap();

    // A dropped (unsettled) delivery, as from a crashed worker, comes back.
    q.publish(&name, &step("job-1", "dropped")).await.unwrap();
    let d = next(&mut consumer).await;
    drop(d);
    let d = next(&mut consumer).await;
    assert_eq!((step_id(&d.envelope).as_str(), d.attempt), ("dropped", 2));
    d.ack().await.unwrap();

    // Reject: straight to the dead-letter queue.
    let dlq = spec.dead_letter_name();
    let mut dead = q.consume(&dlq, 1).await.unwrap();
    q.publish(&name, &step("job-4", "hopeless")).await.unwrap();
    let d = next(&mut consumer).await;
    d.reject().await.unwrap();
    let d = next(&mut dead).await;
    assert_eq!((step_id(&d.envelope).as_str(), d.attempt), ("hopeless", 1));
    d.ack().await.unwrap();

    // A poison message is dead-lettered after 3 deliveries and does not block the next one.
    q.publish(&name, &step("job-2", "poison")).await.unwrap();
    q.publish(&name, &step("job-3", "healthy")).await.unwrap();
    let mut poison_attempts = Vec::new();
    let mut healthy = false;
    for _ in 0..4 {
        let d = next(&mut consumer).await;
        if step_id(&d.envelope) == "poison" {
            poison_attempts.push(d.attempt);
            d.retry().await.unwrap();
        } else {
            healthy = true;
            d.ack().await.unwrap();
        }
    }
    assert!(healthy, "the healthy message got through");
    assert_eq!(poison_attempts, vec![1, 2, 3]);
    // Out of deliveries: it is not delivered again and lands in the dead-letter queue. SQS moves
    // it there on a later receive from the main queue (the others on the third failure), so the
    // main consumer keeps receiving while the dead-letter consumer waits; anything it gets fails.
    let d = tokio::time::timeout(DELIVERY_WITHIN, async {
        tokio::select! {
            d = dead.next() => d.expect("dead letter"),
            d = consumer.next() => panic!(
                "{} delivered after its last allowed delivery",
                step_id(&d.expect("delivery").envelope)
            ),
        }
    })
    .await
    .expect("the poison message dead-lettered");
    assert_eq!(step_id(&d.envelope), "poison");
    d.ack().await.unwrap();
    // Nor afterwards. (Last in the suite: an SQS receive abandoned here may still be polling.)
    if let Ok(Ok(d)) = tokio::time::timeout(Duration::from_secs(2), consumer.next()).await {
        panic!(
            "{} delivered after it was dead-lettered",
            step_id(&d.envelope)
        );
    }
    eventually_depth(q.as_ref(), &name, 0).await;

    // Publishing to a queue nobody declared is an error, not a silent drop.
    let missing = format!("{name}-missing");
    match q.publish(&missing, &step("job-5", "lost")).await {
        Err(QueueError::Unroutable(queue)) => assert_eq!(queue, missing),
        other => panic!("expected Unroutable, got {other:?}"),
    }
    assert!(matches!(
        q.declare(&QueueSpec::new("bad name!")).await,
        Err(QueueError::Invalid(_))
    ));
    drop(consumer);
    drop(dead);
    q.delete(&name).await.unwrap();
}

#[tokio::test]
async fn memory_queue_semantics() {
    suite(Arc::new(MemoryQueue::new()), "test-memory").await;
}

#[tokio::test]
async fn rabbitmq_queue_semantics() {
    let q = RabbitQueue::connect(&amqp_url(), "studio-queue-test")
        .await
        .expect("RabbitMQ on 127.0.0.1:5672");
    let q = Arc::new(q);
    suite(q.clone(), "test-rabbit").await;
    q.close().await;
}

#[tokio::test]
async fn rabbitmq_returns_a_dead_consumers_message_to_another() {
    let name = format!("test-crash-{}", uuid::Uuid::now_v7().simple());
    let a = RabbitQueue::connect(&amqp_url(), "studio-queue-test-a")
        .await
        .unwrap();
    let b = RabbitQueue::connect(&amqp_url(), "studio-queue-test-b")
        .await
        .unwrap();
    a.declare(&QueueSpec::new(&name)).await.unwrap();
    a.publish(&name, &step("job", "held")).await.unwrap();
    let mut held = a.consume(&name, 1).await.unwrap();
    let d = next(&mut held).await;
    assert_eq!(d.attempt, 1);
    // The worker's process dies: its connection closes without settling the delivery.
    std::mem::forget(d);
    drop(held);
    a.close().await;
    let mut other = b.consume(&name, 1).await.unwrap();
    let d = next(&mut other).await;
    assert_eq!((step_id(&d.envelope).as_str(), d.attempt), ("held", 2));
    d.ack().await.unwrap();
    drop(other);
    b.delete(&name).await.unwrap();
    b.close().await;
}

#[tokio::test]
async fn sqs_queue_semantics() {
    let moto = studio_testkit::moto::Moto::start().await;
    let q = SqsQueue::new(SqsSettings {
        region: "us-east-1".into(),
        endpoint: Some(moto.endpoint()),
        access_key_id: "testing".into(),
        secret_access_key: "testing".to_owned().into(),
        visibility_timeout_s: 30,
        wait_time_s: 1,
    })
    .unwrap();
    suite(Arc::new(q), "test-sqs").await;
}

#[tokio::test]
async fn sqs_heartbeats_keep_a_long_step_from_a_second_worker() {
    let moto = studio_testkit::moto::Moto::start().await;
    let q = SqsQueue::new(SqsSettings {
        region: "us-east-1".into(),
        endpoint: Some(moto.endpoint()),
        access_key_id: "testing".into(),
        secret_access_key: "testing".to_owned().into(),
        visibility_timeout_s: 2,
        wait_time_s: 1,
    })
    .unwrap();
    let name = format!("test-heartbeat-{}", uuid::Uuid::now_v7().simple());
    q.declare(&QueueSpec::new(&name)).await.unwrap();
    q.publish(&name, &step("job", "long")).await.unwrap();
    let mut first = q.consume(&name, 1).await.unwrap();
    let mut second = q.consume(&name, 1).await.unwrap();
    let held = next(&mut first).await;
    // Three visibility timeouts pass while the step runs; heartbeats keep it hidden.
    let stolen = tokio::time::timeout(Duration::from_secs(6), second.next()).await;
    assert!(
        stolen.is_err(),
        "a second worker received a message still being worked on"
    );
    // The worker dies without settling: the message comes back to the other worker.
    drop(held);
    let d = next(&mut second).await;
    assert_eq!((step_id(&d.envelope).as_str(), d.attempt), ("long", 2));
    d.ack().await.unwrap();
}
