-- The browser that started a sign-in keeps a secret (`binding`); only its SHA-256 is stored, and
-- finishing the sign-in needs the secret, so a sign-in started by someone else cannot be
-- finished in your browser (login CSRF).
ALTER TABLE oauth_states ADD COLUMN binding_hash bytea;
