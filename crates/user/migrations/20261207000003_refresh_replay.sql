-- A spent refresh token keeps the token it was exchanged for, sealed with the key-encryption key
-- (ChaCha20-Poly1305, the spent token's digest as associated data), for the reuse grace window:
-- a second refresh racing the first gets the same successor instead of a refusal (security
-- review L8). Cleared by the pruning pass once the window is over.
ALTER TABLE refresh_tokens ADD COLUMN successor_sealed bytea;
