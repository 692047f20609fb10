-- Email verification for password accounts, and the outbox that delivers the mail.

-- When the owner of the address proved it (a verification link, or Google's verified email);
-- NULL until then.
ALTER TABLE users ADD COLUMN email_verified_at timestamptz;

-- Accounts Google created, or whose Google link carries the account's own address, are verified
-- by Google.
UPDATE users u SET email_verified_at = u.created_at
WHERE EXISTS (SELECT 1 FROM oauth_links l WHERE l.user_id = u.id AND l.email = u.email_normalized);

-- One row per verification mail. The token itself is never stored, only its SHA-256; it
-- verifies the address it was sent to and nothing else.
CREATE TABLE email_verifications (
    token_hash       bytea PRIMARY KEY,
    user_id          uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email_normalized text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    expires_at       timestamptz NOT NULL,
    used_at          timestamptz
);
CREATE INDEX email_verifications_user ON email_verifications (user_id, created_at DESC);

-- Mail to send, written in the transaction that decides to send it and delivered afterwards by
-- the outbox task, so a mail server outage delays mail and loses none. The body holds a secret
-- link: it is emptied once the mail is sent or given up.
CREATE TABLE mail_outbox (
    id              uuid PRIMARY KEY,
    kind            text NOT NULL,
    recipient       text NOT NULL,
    subject         text NOT NULL,
    body            text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    attempts        integer NOT NULL DEFAULT 0,
    -- Due time; while a delivery is in flight, the end of its lease.
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    failed_at       timestamptz,
    last_error      text
);
CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at)
    WHERE sent_at IS NULL AND failed_at IS NULL;
