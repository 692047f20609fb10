-- The lease sweeper looks announcements up by idempotency key.
CREATE INDEX outbox_key ON outbox (idempotency_key);
