-- The credits ledger: double-entry and append-only. Every change of a balance is a transaction
-- whose entries sum to zero (checked when the database transaction commits); entries and
-- transactions are never updated or deleted. Balances are kept on the account rows in the same
-- database transaction as the entries, under the account's row lock.

CREATE TABLE accounts (
    id uuid PRIMARY KEY,
    -- A user's account, or a system account (purchases, grants, spend, refunds) by name.
    user_id uuid UNIQUE,
    system_name text UNIQUE,
    -- Sum of the account's entries, credits.
    posted bigint NOT NULL DEFAULT 0,
    -- Sum of its open holds, credits.
    held bigint NOT NULL DEFAULT 0 CHECK (held >= 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((user_id IS NULL) <> (system_name IS NULL))
);

CREATE TABLE transactions (
    id uuid PRIMARY KEY,
    kind text NOT NULL CHECK (kind IN ('purchase', 'grant', 'capture', 'refund', 'adjustment', 'reversal')),
    -- The caller's key: the same key posts once, whatever happens around it.
    idempotency_key text NOT NULL UNIQUE,
    reference text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE entries (
    id bigserial PRIMARY KEY,
    transaction_id uuid NOT NULL REFERENCES transactions (id),
    account_id uuid NOT NULL REFERENCES accounts (id),
    amount bigint NOT NULL CHECK (amount <> 0),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX entries_by_account ON entries (account_id, id DESC);
CREATE INDEX entries_by_transaction ON entries (transaction_id);

-- Each transaction's entries sum to zero, checked at commit.
CREATE FUNCTION ledger_transaction_balances() RETURNS trigger AS $$
DECLARE
    total bigint;
BEGIN
    SELECT coalesce(sum(amount), 0) INTO total FROM entries WHERE transaction_id = NEW.transaction_id;
    IF total <> 0 THEN
        RAISE EXCEPTION 'ledger transaction % does not balance: its entries sum to %', NEW.transaction_id, total;
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE CONSTRAINT TRIGGER entries_balance
    AFTER INSERT ON entries
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ledger_transaction_balances();

-- Append-only.
CREATE FUNCTION ledger_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the ledger is append-only: % on % is refused', TG_OP, TG_TABLE_NAME;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER entries_append_only BEFORE UPDATE OR DELETE ON entries
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER transactions_append_only BEFORE UPDATE OR DELETE ON transactions
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();

CREATE TABLE holds (
    id uuid PRIMARY KEY,
    account_id uuid NOT NULL REFERENCES accounts (id),
    amount bigint NOT NULL CHECK (amount > 0),
    captured bigint NOT NULL DEFAULT 0 CHECK (captured >= 0),
    state text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'captured', 'voided', 'expired')),
    -- What it is for ("job:{id}").
    reference text NOT NULL,
    idempotency_key text NOT NULL UNIQUE,
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    settled_at timestamptz
);
CREATE INDEX holds_open_by_expiry ON holds (expires_at) WHERE state = 'open';
