//! The only place that builds queue messages and render tasks.
//!
//! Every step is announced as a `StepReady` (job and step ids) on the queue of its kind's
//! runner, with one idempotency key per (step, attempt), so a republished announcement of the
//! same attempt is a duplicate the consumer drops. A media-render worker that receives one
//! claims the render through `RenderLeaseService.ClaimRender`, which answers with the
//! [`render_task`] built from the step's lease: the task exists only with a live lease and its
//! fencing token.

use prost::Message as _;
use studio_core::id::{JobId, StepId};
use studio_proto::queue::v1::envelope::Body;
use studio_proto::queue::v1::StepReady;
use studio_proto::render::v1::RenderTask;

use crate::store::{Lease, RenderInput};

/// The idempotency key of attempt `attempt` of `step`.
pub fn announcement_key(step: StepId, attempt: i32) -> String {
    format!("step:{step}:{attempt}")
}

/// The encoded envelope announcing attempt `attempt` of `step` of `job`, and its idempotency
/// key.
pub fn step_ready(job: JobId, step: StepId, attempt: i32) -> (String, Vec<u8>) {
    let key = announcement_key(step, attempt);
    let body = Body::StepReady(StepReady {
        job_id: job.to_string(),
        step_id: step.to_string(),
    });
    let envelope = studio_queue::envelope(key.clone(), body);
    (key, envelope.encode_to_vec())
}

/// The step a received message announces: a `StepReady`, or a `RenderTask` announced by an
/// earlier version (still in a queue or an outbox during an upgrade). `None` for anything else.
pub fn announced_step(body: Option<&Body>) -> Option<StepId> {
    let id = match body? {
        Body::StepReady(ready) => &ready.step_id,
        Body::RenderTask(task) => &task.step_id,
        _ => return None,
    };
    id.parse().ok().map(StepId)
}

/// The task a media-render worker gets with its claim of a render step.
pub fn render_task(lease: &Lease, input: RenderInput) -> RenderTask {
    RenderTask {
        job_id: lease.job_id.to_string(),
        project_id: lease.project_id.to_string(),
        fencing_token: lease.fencing_token as u64,
        timeline_key: input.timeline_key,
        inputs: input.inputs.into_iter().collect(),
        output_prefix: input.output_prefix,
        step_id: lease.step_id.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_ready_names_its_step_and_attempt() {
        let (job, step) = (JobId::new(), StepId::new());
        let (key, payload) = step_ready(job, step, 2);
        assert_eq!(key, format!("step:{step}:2"));
        let envelope = studio_queue::Envelope::decode(payload.as_slice()).unwrap();
        assert_eq!(envelope.idempotency_key, key);
        assert_eq!(announced_step(envelope.body.as_ref()), Some(step));
        assert_eq!(announced_step(None), None);
    }
}
