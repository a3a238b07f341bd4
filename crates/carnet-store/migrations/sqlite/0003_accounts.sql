-- Accounts of practice members, their activation codes, second factors, sessions and
-- authentication failures. Secrets are stored hashed (tokens, codes, passwords) or
-- sealed (TOTP secrets); none is stored in clear.

-- An account belongs to a member of a practice or to a platform administrator.
CREATE TABLE accounts (
    id                  BLOB PRIMARY KEY NOT NULL,
    member_id           BLOB UNIQUE REFERENCES members (id),
    practice_id         BLOB REFERENCES practices (id),
    admin_id            BLOB UNIQUE REFERENCES platform_admins (id),
    login               TEXT NOT NULL UNIQUE,
    password_hash       TEXT NOT NULL,
    password_changed_at INTEGER NOT NULL,
    created_at          INTEGER NOT NULL,
    CHECK ((member_id IS NULL) <> (admin_id IS NULL)),
    CHECK ((member_id IS NULL) = (practice_id IS NULL))
) STRICT;

-- One current activation code per member; issuing a new one replaces it.
CREATE TABLE activation_codes (
    member_id   BLOB PRIMARY KEY NOT NULL REFERENCES members (id),
    practice_id BLOB NOT NULL REFERENCES practices (id),
    code_prefix TEXT NOT NULL,
    code_hash   BLOB NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER,
    failures    INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE INDEX activation_codes_by_prefix ON activation_codes (code_prefix);

CREATE TABLE totp_credentials (
    account_id     BLOB PRIMARY KEY NOT NULL REFERENCES accounts (id),
    sealed_secret  BLOB NOT NULL,
    created_at     INTEGER NOT NULL,
    confirmed_at   INTEGER,
    last_used_step INTEGER
) STRICT;

CREATE TABLE recovery_codes (
    account_id BLOB NOT NULL REFERENCES accounts (id),
    code_hash  BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    used_at    INTEGER,
    PRIMARY KEY (account_id, code_hash)
) STRICT;

CREATE TABLE sessions (
    id                 BLOB PRIMARY KEY NOT NULL,
    token_hash         BLOB NOT NULL UNIQUE,
    account_id         BLOB NOT NULL REFERENCES accounts (id),
    created_at         INTEGER NOT NULL,
    last_seen_at       INTEGER NOT NULL,
    expires_at         INTEGER NOT NULL,
    second_factor_at   INTEGER,
    authenticated_at   INTEGER NOT NULL,
    revoked_at         INTEGER,
    totp_step          INTEGER,
    totp_tries         INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE INDEX sessions_by_account ON sessions (account_id, created_at);

CREATE TABLE auth_failures (
    account_id BLOB NOT NULL REFERENCES accounts (id),
    at         INTEGER NOT NULL,
    kind       TEXT NOT NULL
) STRICT;

CREATE INDEX auth_failures_by_account ON auth_failures (account_id, at);

CREATE TABLE account_unlocks (
    account_id BLOB NOT NULL REFERENCES accounts (id),
    at         INTEGER NOT NULL,
    by_member  BLOB
) STRICT;
