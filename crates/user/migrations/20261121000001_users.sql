-- Accounts, credentials, refresh-token families, OAuth links and signing keys.

CREATE TABLE users (
    id               uuid PRIMARY KEY,
    email            text NOT NULL,
    -- Lowercased, trimmed: the key sign-in looks up.
    email_normalized text NOT NULL UNIQUE,
    display_name     text NOT NULL DEFAULT '',
    role             text NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
    -- PHC string (argon2id); NULL for accounts that only sign in with Google.
    password_hash    text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

-- A sign-in with an external identity provider ("google") and its subject id.
CREATE TABLE oauth_links (
    provider   text NOT NULL,
    subject    text NOT NULL,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email      text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, subject)
);
CREATE INDEX oauth_links_user ON oauth_links (user_id);

-- Every refresh token descends from one sign-in; reuse of a spent token revokes the family.
CREATE TABLE refresh_families (
    id             uuid PRIMARY KEY,
    user_id        uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at     timestamptz NOT NULL DEFAULT now(),
    revoked_at     timestamptz,
    revoked_reason text
);
CREATE INDEX refresh_families_user ON refresh_families (user_id);

CREATE TABLE refresh_tokens (
    -- SHA-256 of the opaque token; the token itself is never stored.
    token_hash bytea PRIMARY KEY,
    family_id  uuid NOT NULL REFERENCES refresh_families (id) ON DELETE CASCADE,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    issued_at  timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    -- Set once, when the token is exchanged for a new pair.
    used_at    timestamptz
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

-- Ed25519 signing keys. The private key is sealed (ChaCha20-Poly1305) with the key-encryption key
-- from settings; the newest unretired key signs, every key younger than the token lifetime verifies.
CREATE TABLE signing_keys (
    kid            text PRIMARY KEY,
    sealed_private bytea NOT NULL,
    public_key     bytea NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    retired_at     timestamptz
);

-- Pending authorization-code + PKCE sign-ins, consumed once.
CREATE TABLE oauth_states (
    state         text PRIMARY KEY,
    provider      text NOT NULL,
    pkce_verifier text NOT NULL,
    redirect_uri  text NOT NULL,
    expires_at    timestamptz NOT NULL
);
