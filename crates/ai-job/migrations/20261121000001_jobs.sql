-- Jobs and their steps as state machines, the transactional outbox, and the provider-call ledger.
--   state: queued -> running -> succeeded | failed | cancelled   (jobs and steps alike)

CREATE TABLE jobs (
    id               uuid PRIMARY KEY,
    owner_id         uuid NOT NULL,
    project_id       uuid NOT NULL,
    -- StartJob is idempotent per owner on this key.
    idempotency_key  text NOT NULL,
    state            text NOT NULL DEFAULT 'queued'
                     CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    stage            text NOT NULL DEFAULT '',
    -- For a failed job: what happened and what to do.
    error            text NOT NULL DEFAULT '',
    cost_micro_usd   bigint NOT NULL DEFAULT 0,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (owner_id, idempotency_key)
);
CREATE INDEX jobs_owner ON jobs (owner_id, id DESC);

CREATE TABLE steps (
    id               uuid PRIMARY KEY,
    job_id           uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    -- "plan", "narration", "picture", "music", "timeline", "render".
    kind             text NOT NULL,
    -- Scene index for per-scene steps.
    scene            integer,
    -- Steps of a lower stage must all succeed before this one is enqueued.
    stage            integer NOT NULL DEFAULT 0,
    state            text NOT NULL DEFAULT 'queued'
                     CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    attempts         integer NOT NULL DEFAULT 0,
    max_attempts     integer NOT NULL DEFAULT 3,
    -- No claim before this time (retry backoff).
    not_before       timestamptz NOT NULL DEFAULT now(),
    lease_owner      text,
    lease_expires_at timestamptz,
    -- Raised by every claim; a write carrying an older token is rejected.
    fencing_token    bigint NOT NULL DEFAULT 0,
    input            jsonb NOT NULL DEFAULT '{}',
    output           jsonb,
    error            text NOT NULL DEFAULT '',
    cost_micro_usd   bigint NOT NULL DEFAULT 0,
    started_at       timestamptz,
    finished_at      timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX steps_job ON steps (job_id, stage);
CREATE INDEX steps_leases ON steps (lease_expires_at) WHERE state = 'running';

-- Messages to publish, written in the same transaction as the state they announce. A relay
-- publishes them (at least once) and marks them published.
CREATE TABLE outbox (
    id               bigserial PRIMARY KEY,
    queue            text NOT NULL,
    idempotency_key  text NOT NULL,
    payload          bytea NOT NULL,
    available_at     timestamptz NOT NULL DEFAULT now(),
    created_at       timestamptz NOT NULL DEFAULT now(),
    published_at     timestamptz
);
CREATE INDEX outbox_pending ON outbox (available_at, id) WHERE published_at IS NULL;

-- Every provider call a step made, once per idempotency key, with its cost.
CREATE TABLE provider_calls (
    idempotency_key  text PRIMARY KEY,
    step_id          uuid NOT NULL REFERENCES steps (id) ON DELETE CASCADE,
    provider         text NOT NULL,
    model            text NOT NULL,
    cost_micro_usd   bigint NOT NULL DEFAULT 0,
    cache_hit        boolean NOT NULL DEFAULT false,
    created_at       timestamptz NOT NULL DEFAULT now()
);
