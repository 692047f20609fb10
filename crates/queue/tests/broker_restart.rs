//! RabbitMQ restarting under load. The test starts its own RabbitMQ node (its own name, ports and
//! data folder; never the shared broker on 5672), publishes 200 small messages while a consumer
//! applies them, restarts the node half-way, and checks that every message was applied exactly
//! once (consumers deduplicate on the idempotency key, as Studio's do). The node is stopped and its
//! folder removed at the end, also when the test fails.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use studio_proto::queue::v1::envelope::Body;
use studio_proto::queue::v1::StepReady;
use studio_queue::rabbitmq::RabbitQueue;
use studio_queue::{envelope, QueueSpec, WorkQueue};

#[tokio::test]
async fn a_broker_restart_loses_nothing_and_applies_nothing_twice() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "studio_queue=info".into()),
        )
        .with_test_writer()
        .try_init();
    let node = studio_testkit::rabbit::RabbitNode::new();
    node.start().await;
    let total = 200;
    let queue = "restart-test".to_owned();

    let consumer_side = Arc::new(RabbitQueue::connect(&node.url(), "consumer").await.unwrap());
    let publisher_side = Arc::new(
        RabbitQueue::connect(&node.url(), "publisher")
            .await
            .unwrap(),
    );
    publisher_side
        .declare(&QueueSpec::new(&queue))
        .await
        .unwrap();

    // The consumer applies each message once per idempotency key and counts deliveries.
    let applied: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let consumer = {
        let q = consumer_side.clone();
        let applied = applied.clone();
        let queue = queue.clone();
        tokio::spawn(async move {
            let mut consumer = loop {
                match q.consume(&queue, 10).await {
                    Ok(c) => break c,
                    Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            };
            loop {
                match consumer.next().await {
                    Ok(delivery) => {
                        *applied
                            .lock()
                            .unwrap()
                            .entry(delivery.envelope.idempotency_key.clone())
                            .or_default() += 1;
                        let _ = delivery.ack().await;
                    }
                    Err(err) => panic!("the consumer gave up: {err}"),
                }
            }
        })
    };

    let mut publish_retries = 0;
    for i in 0..total {
        if i == total / 2 {
            node.stop();
            node.start().await;
        }
        let message = envelope(
            format!("step:{i}"),
            Body::StepReady(StepReady {
                job_id: "job".into(),
                step_id: i.to_string(),
            }),
        );
        // A publish that fails is retried with the same idempotency key until confirmed.
        let deadline = Instant::now() + Duration::from_secs(60);
        while let Err(err) = publisher_side.publish(&queue, &message).await {
            assert!(Instant::now() < deadline, "publish {i} kept failing: {err}");
            publish_retries += 1;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let seen = applied.lock().unwrap().len();
        if seen == total {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {seen} of {total} messages arrived"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    consumer.abort();
    let applied = applied.lock().unwrap().clone();
    let redelivered: u32 = applied.values().map(|n| n - 1).sum();
    eprintln!("{total} applied once each; {redelivered} redeliveries deduplicated; {publish_retries} publish retries");
    assert_eq!(applied.len(), total);
    assert!((0..total).all(|i| applied.contains_key(&format!("step:{i}"))));
    consumer_side.close().await;
    publisher_side.close().await;
}
