-- Passkeys (WebAuthn credentials), the ceremonies in progress, and the one-time links
-- that create the first platform administrator.

-- A passkey of an account. `credential` is webauthn-rs's `Passkey` as JSON: the public
-- key, its algorithm and signature counter (nothing secret). A removed passkey is kept,
-- marked, so the audit trail can still name it and it can never be registered again.
CREATE TABLE passkeys (
    id            BLOB PRIMARY KEY NOT NULL,
    account_id    BLOB NOT NULL REFERENCES accounts (id),
    credential_id BLOB NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    credential    TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER,
    removed_at    INTEGER
) STRICT;

CREATE INDEX passkeys_by_account ON passkeys (account_id);

-- A WebAuthn ceremony between its start and its end (single use, a few minutes): the
-- challenge and what it is for, stored server-side so any node can finish it.
CREATE TABLE webauthn_ceremonies (
    id_hash    BLOB PRIMARY KEY NOT NULL,
    kind       TEXT NOT NULL,
    account_id BLOB REFERENCES accounts (id),
    session_id BLOB REFERENCES sessions (id),
    state      TEXT NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;

-- Links that create the first platform administrator: valid one hour, single use,
-- stored as a hash. Issuing a new one retires the unused ones.
CREATE TABLE setup_links (
    token_hash BLOB PRIMARY KEY NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER,
    retired_at INTEGER
) STRICT;
