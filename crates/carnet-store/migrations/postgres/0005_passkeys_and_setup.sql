-- Passkeys (WebAuthn credentials), the ceremonies in progress, and the one-time links
-- that create the first platform administrator.

-- A passkey of an account. `credential` is webauthn-rs's `Passkey` as JSON: the public
-- key, its algorithm and signature counter (nothing secret). A removed passkey is kept,
-- marked, so the audit trail can still name it and it can never be registered again.
CREATE TABLE passkeys (
    id            UUID PRIMARY KEY,
    account_id    UUID NOT NULL REFERENCES accounts (id),
    credential_id BYTEA NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    credential    TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    last_used_at  BIGINT,
    removed_at    BIGINT
);

CREATE INDEX passkeys_by_account ON passkeys (account_id);

-- A WebAuthn ceremony between its start and its end (single use, a few minutes): the
-- challenge and what it is for, stored server-side so any node can finish it.
CREATE TABLE webauthn_ceremonies (
    id_hash    BYTEA PRIMARY KEY,
    kind       TEXT NOT NULL,
    account_id UUID REFERENCES accounts (id),
    session_id UUID REFERENCES sessions (id),
    state      TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- Links that create the first platform administrator: valid one hour, single use,
-- stored as a hash. Issuing a new one retires the unused ones.
CREATE TABLE setup_links (
    token_hash BYTEA PRIMARY KEY,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT,
    retired_at BIGINT
);
