//! AMQP over TLS (security review M10): a private RabbitMQ node listening for AMQPS with a
//! certificate signed by a CA made for the test. With `tls_ca_file` naming that CA, a message
//! goes through `amqps://`; without it (the public roots only) the connection is refused, so
//! the broker's certificate is really checked.

use std::time::Duration;

use studio_proto::queue::v1::envelope::Body;
use studio_proto::queue::v1::StepReady;
use studio_queue::{envelope, QueueError, QueueSettings, QueueSpec};

#[tokio::test]
async fn amqps_connects_and_checks_the_brokers_certificate() {
    let node = studio_testkit::rabbit::RabbitNode::with_tls();
    node.start().await;
    let (tls_port, ca) = node.tls.clone().unwrap();
    let url = format!("amqps://guest:guest@localhost:{tls_port}/%2f");
    let settings = QueueSettings::Rabbitmq {
        url: url.clone().into(),
        tls_ca_file: Some(ca),
    };
    let queue = settings.connect("amqps-test").await.unwrap();
    queue.declare(&QueueSpec::new("amqps-test")).await.unwrap();
    let message = envelope(
        "step:tls".to_owned(),
        Body::StepReady(StepReady {
            job_id: "job".into(),
            step_id: "tls".into(),
        }),
    );
    queue.publish("amqps-test", &message).await.unwrap();
    let mut consumer = queue.consume("amqps-test", 1).await.unwrap();
    let delivery = tokio::time::timeout(Duration::from_secs(30), consumer.next())
        .await
        .expect("the message arrives")
        .unwrap();
    assert_eq!(delivery.envelope.idempotency_key, "step:tls");
    delivery.ack().await.unwrap();

    let untrusted = QueueSettings::Rabbitmq {
        url: url.into(),
        tls_ca_file: None,
    };
    match untrusted.connect("amqps-untrusted").await {
        Err(QueueError::Unavailable(reason)) => {
            assert!(reason.to_lowercase().contains("certificate"), "{reason}")
        }
        Err(other) => panic!("expected a refused certificate, got {other}"),
        Ok(_) => panic!("a broker certificate from an unknown CA was accepted"),
    }
}
