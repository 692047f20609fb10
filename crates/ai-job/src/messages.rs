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

/// The task a media-render worker gets with its claim of a render step: the outputs go under
/// the step's prefix and this attempt (`…/outputs/{attempt}/`), so a worker that lost its lease
/// cannot overwrite a later attempt's files (security review M1); the earlier attempts'
/// prefixes (and the prefix itself, where renders before attempt prefixes uploaded) are named
/// for reuse of a finished upload.
pub fn render_task(lease: &Lease, input: RenderInput) -> RenderTask {
    let base = input.output_prefix;
    let mut earlier: Vec<String> = (1..lease.attempt)
        .rev()
        .map(|attempt| format!("{base}{attempt}/"))
        .collect();
    earlier.push(base.clone());
    RenderTask {
        job_id: lease.job_id.to_string(),
        project_id: lease.project_id.to_string(),
        fencing_token: lease.fencing_token as u64,
        timeline_key: input.timeline_key,
        inputs: input.inputs.into_iter().collect(),
        output_prefix: format!("{base}{}/", lease.attempt),
        step_id: lease.step_id.to_string(),
        earlier_output_prefixes: earlier,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_render_attempt_has_its_own_output_prefix() {
        let lease = Lease {
            step_id: StepId::new(),
            job_id: JobId::new(),
            project_id: studio_core::id::ProjectId::new(),
            kind: "render".to_owned(),
            input: serde_json::Value::Null,
            attempt: 3,
            fencing_token: 7,
        };
        let input = RenderInput {
            timeline_key: "t".to_owned(),
            inputs: Default::default(),
            output_prefix: "projects/p/jobs/j/outputs/".to_owned(),
        };
        let task = render_task(&lease, input);
        assert_eq!(task.output_prefix, "projects/p/jobs/j/outputs/3/");
        assert_eq!(
            task.earlier_output_prefixes,
            [
                "projects/p/jobs/j/outputs/2/",
                "projects/p/jobs/j/outputs/1/",
                "projects/p/jobs/j/outputs/"
            ]
        );
    }

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
