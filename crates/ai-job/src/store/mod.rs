//! Jobs and steps in Postgres, as state machines (`queued → running → succeeded | failed |
//! cancelled`).
//!
//! - [`model`]: the row types;
//! - `jobs`: create (idempotent per owner and key), get, list, cancel, a job's steps;
//! - `steps`: the step lifecycle: claim (lease + fencing token), heartbeat, complete, fail,
//!   and the provider-call ledger;
//! - `outbox`: the announcements written in the same transaction as the state change that
//!   calls for them;
//! - `events`: the progress events and their `NOTIFY`.
//!
//! The store knows step kinds only by their stored names and stages, which the step graph
//! (`studio_pipeline::graph`) gives it; it knows of one kind only that it runs elsewhere, on
//! the render queue ([`Queues::for_kind`]).

mod events;
mod jobs;
pub mod model;
mod outbox;
mod steps;

use sqlx::PgPool;
use studio_core::id::StepId;
use studio_pipeline::graph::{Runner, StepKind};

pub use events::EVENTS_CHANNEL;
pub use model::{
    Job, JobEvent, Lease, NewStep, RenderInput, RenderOutput, RenderedFile, State, Step,
    StepSummary,
};
pub(crate) use outbox::reannounce;
pub use steps::{DeadLetter, Expired};
pub use studio_queue::lease::Failure;

use crate::{RENDER_QUEUE, STEPS_QUEUE};

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The write carried a fencing token older than the step's: another worker holds the step
    /// now. The write was not applied.
    #[error("step {step} is fenced: token {token} is stale")]
    Fenced { step: StepId, token: i64 },
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The job already ended in this state.
    #[error("the job already ended ({})", .0.as_str())]
    AlreadyFinal(State),
    /// The owner already has this many jobs queued or running, the most allowed at once.
    #[error("{0} jobs are already queued or running")]
    TooManyActive(i64),
    /// A row holds a value the schema should not have let in.
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

/// Postgres access for jobs, steps and the outbox.
#[derive(Debug, Clone)]
pub struct JobStore {
    pub pool: PgPool,
    /// Where announcements go.
    pub queues: Queues,
}

/// The queues steps are announced on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queues {
    /// For the steps ai-job's own workers run. Default [`STEPS_QUEUE`].
    pub steps: String,
    /// For media-render workers. Default [`RENDER_QUEUE`].
    pub render: String,
}

impl Default for Queues {
    fn default() -> Self {
        Queues::prefixed("")
    }
}

impl Queues {
    /// The default names behind `prefix` (tests sharing one broker give each run its own).
    pub fn prefixed(prefix: &str) -> Queues {
        Queues {
            steps: format!("{prefix}{STEPS_QUEUE}"),
            render: format!("{prefix}{RENDER_QUEUE}"),
        }
    }

    /// The queue that carries announcements of steps stored as `kind`: the render queue for
    /// kinds that media-render workers run ([`Runner::RenderWorker`]), the steps queue for the
    /// rest.
    pub fn for_kind(&self, kind: &str) -> &str {
        match StepKind::built_in(kind).map(StepKind::runner) {
            Some(Runner::RenderWorker) => &self.render,
            _ => &self.steps,
        }
    }
}

impl JobStore {
    /// A store announcing on the default queues.
    pub fn new(pool: PgPool) -> JobStore {
        JobStore {
            pool,
            queues: Queues::default(),
        }
    }
}

fn fenced(lease: &Lease) -> StoreError {
    fenced_step(lease.step_id, lease.fencing_token)
}

fn fenced_step(step: StepId, token: i64) -> StoreError {
    metrics::counter!("ai_job_fenced_writes_total").increment(1);
    tracing::warn!(step_id = %step, token, "stale fencing token; write rejected");
    StoreError::Fenced { step, token }
}

fn state(value: &str) -> Result<State, StoreError> {
    State::try_from(value)
}
