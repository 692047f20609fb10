-- Progress events per job: a gap-free sequence per job (the current state is the last event),
-- announced to listeners with NOTIFY studio_job_events '<job id>'.

ALTER TABLE jobs ADD COLUMN event_seq bigint NOT NULL DEFAULT 0;

CREATE TABLE job_events (
    job_id         uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    sequence       bigint NOT NULL,
    state          text NOT NULL,
    stage          text NOT NULL,
    -- Finished steps over all steps, 0..=100.
    percent        double precision NOT NULL,
    message        text NOT NULL,
    cost_micro_usd bigint NOT NULL,
    at             timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, sequence)
);
