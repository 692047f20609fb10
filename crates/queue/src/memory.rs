//! In-memory queues for the embedded mode and tests: the same delivery semantics as the brokers
//! (attempt counting, redelivery of unsettled messages, dead-lettering after `max_deliveries`).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use crate::{
    dead_letter_name, Consumer, Delivery, Envelope, QueueError, QueueSpec, Settle, WorkQueue,
};

#[derive(Debug, Default)]
struct Queue {
    /// (envelope, deliveries so far)
    ready: VecDeque<(Envelope, u32)>,
    max_deliveries: u32,
    notify: Arc<Notify>,
}

/// Process-local queues.
#[derive(Debug, Clone, Default)]
pub struct MemoryQueue {
    queues: Arc<Mutex<HashMap<String, Queue>>>,
}

impl MemoryQueue {
    pub fn new() -> Self {
        Self::default()
    }

    fn push(&self, queue: &str, envelope: Envelope, deliveries: u32) -> Result<(), QueueError> {
        let mut queues = self.queues.lock().expect("queue lock");
        let q = queues
            .get_mut(queue)
            .ok_or_else(|| QueueError::Unroutable(queue.to_owned()))?;
        q.ready.push_back((envelope, deliveries));
        q.notify.notify_one();
        Ok(())
    }

    /// A failed delivery: back to the queue, or to its dead-letter queue when out of deliveries.
    fn fail(&self, queue: &str, envelope: Envelope, deliveries: u32) -> Result<(), QueueError> {
        let max = self
            .queues
            .lock()
            .expect("queue lock")
            .get(queue)
            .map(|q| q.max_deliveries)
            .unwrap_or(1);
        if deliveries >= max {
            self.push(&dead_letter_name(queue), envelope, 0)
        } else {
            self.push(queue, envelope, deliveries)
        }
    }
}

#[derive(Debug)]
struct MemorySettle {
    queues: MemoryQueue,
    queue: String,
    envelope: Envelope,
    deliveries: u32,
}

#[async_trait::async_trait]
impl Settle for MemorySettle {
    async fn ack(self: Box<Self>) -> Result<(), QueueError> {
        Ok(())
    }

    async fn retry(self: Box<Self>) -> Result<(), QueueError> {
        self.queues
            .fail(&self.queue, self.envelope, self.deliveries)
    }

    async fn reject(self: Box<Self>) -> Result<(), QueueError> {
        self.queues
            .push(&dead_letter_name(&self.queue), self.envelope, 0)
    }

    async fn extend(&self, _by: Duration) -> Result<(), QueueError> {
        Ok(())
    }
}

struct MemoryConsumer {
    queues: MemoryQueue,
    queue: String,
}

#[async_trait::async_trait]
impl Consumer for MemoryConsumer {
    async fn next(&mut self) -> Result<Delivery, QueueError> {
        loop {
            let notify = {
                let mut queues = self.queues.queues.lock().expect("queue lock");
                let q = queues
                    .get_mut(&self.queue)
                    .ok_or_else(|| QueueError::Unroutable(self.queue.clone()))?;
                if let Some((envelope, deliveries)) = q.ready.pop_front() {
                    let deliveries = deliveries + 1;
                    let settle = MemorySettle {
                        queues: self.queues.clone(),
                        queue: self.queue.clone(),
                        envelope: envelope.clone(),
                        deliveries,
                    };
                    return Ok(Delivery::new(envelope, deliveries, Box::new(settle)));
                }
                q.notify.clone()
            };
            notify.notified().await;
        }
    }
}

#[async_trait::async_trait]
impl WorkQueue for MemoryQueue {
    async fn declare(&self, spec: &QueueSpec) -> Result<(), QueueError> {
        spec.check()?;
        let mut queues = self.queues.lock().expect("queue lock");
        for (name, max) in [
            (spec.name.clone(), spec.max_deliveries),
            (spec.dead_letter_name(), u32::MAX),
        ] {
            queues.entry(name).or_insert_with(|| Queue {
                max_deliveries: max,
                ..Default::default()
            });
        }
        Ok(())
    }

    async fn publish(&self, queue: &str, envelope: &Envelope) -> Result<(), QueueError> {
        self.push(queue, envelope.clone(), 0)
    }

    async fn consume(&self, queue: &str, _prefetch: u16) -> Result<Box<dyn Consumer>, QueueError> {
        if !self.queues.lock().expect("queue lock").contains_key(queue) {
            return Err(QueueError::Unroutable(queue.to_owned()));
        }
        Ok(Box::new(MemoryConsumer {
            queues: self.clone(),
            queue: queue.to_owned(),
        }))
    }

    async fn depth(&self, queue: &str) -> Result<u64, QueueError> {
        self.queues
            .lock()
            .expect("queue lock")
            .get(queue)
            .map(|q| q.ready.len() as u64)
            .ok_or_else(|| QueueError::Unroutable(queue.to_owned()))
    }

    async fn delete(&self, queue: &str) -> Result<(), QueueError> {
        let mut queues = self.queues.lock().expect("queue lock");
        queues.remove(queue);
        queues.remove(&dead_letter_name(queue));
        Ok(())
    }
}
