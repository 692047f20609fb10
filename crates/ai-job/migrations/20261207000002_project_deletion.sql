-- Deleting a project (security review L3): its jobs disappear from every read, their text and
-- outputs are scrubbed, and the project's files are purged from object storage. The rows stay,
-- holding what was spent (jobs.cost_micro_usd, provider_calls): a deletion erases content, not
-- the record of money.
ALTER TABLE jobs ADD COLUMN deleted_at timestamptz;

-- Object-storage prefixes to empty, by the purge task of the api role. Each is purged twice:
-- once when asked, and once more `purge_again_after_s` later, for files a render still running
-- at the time wrote afterwards.
CREATE TABLE storage_purges (
    prefix       text PRIMARY KEY,
    requested_at timestamptz NOT NULL DEFAULT now(),
    due_at       timestamptz NOT NULL DEFAULT now(),
    passes       integer NOT NULL DEFAULT 0,
    deleted      bigint NOT NULL DEFAULT 0,
    done_at      timestamptz,
    last_error   text
);
CREATE INDEX storage_purges_due ON storage_purges (due_at) WHERE done_at IS NULL;
