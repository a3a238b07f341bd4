-- Accounts of practice members, their activation codes, second factors, sessions and
-- authentication failures. Secrets are stored hashed (tokens, codes, passwords) or
-- sealed (TOTP secrets); none is stored in clear.

-- An account belongs to a member of a practice or to a platform administrator.
CREATE TABLE accounts (
    id                  UUID PRIMARY KEY,
    member_id           UUID UNIQUE REFERENCES members (id),
    practice_id         UUID REFERENCES practices (id),
    admin_id            UUID UNIQUE REFERENCES platform_admins (id),
    login               TEXT NOT NULL UNIQUE,
    password_hash       TEXT NOT NULL,
    password_changed_at BIGINT NOT NULL,
    created_at          BIGINT NOT NULL,
    CHECK ((member_id IS NULL) <> (admin_id IS NULL)),
    CHECK ((member_id IS NULL) = (practice_id IS NULL))
);

-- One current activation code per member; issuing a new one replaces it.
CREATE TABLE activation_codes (
    member_id   UUID PRIMARY KEY REFERENCES members (id),
    practice_id UUID NOT NULL REFERENCES practices (id),
    code_prefix TEXT NOT NULL,
    code_hash   BYTEA NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT,
    failures    BIGINT NOT NULL DEFAULT 0
);

CREATE INDEX activation_codes_by_prefix ON activation_codes (code_prefix);

CREATE TABLE totp_credentials (
    account_id     UUID PRIMARY KEY REFERENCES accounts (id),
    sealed_secret  BYTEA NOT NULL,
    created_at     BIGINT NOT NULL,
    confirmed_at   BIGINT,
    last_used_step BIGINT
);

CREATE TABLE recovery_codes (
    account_id UUID NOT NULL REFERENCES accounts (id),
    code_hash  BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    used_at    BIGINT,
    PRIMARY KEY (account_id, code_hash)
);

CREATE TABLE sessions (
    id                 UUID PRIMARY KEY,
    token_hash         BYTEA NOT NULL UNIQUE,
    account_id         UUID NOT NULL REFERENCES accounts (id),
    created_at         BIGINT NOT NULL,
    last_seen_at       BIGINT NOT NULL,
    expires_at         BIGINT NOT NULL,
    second_factor_at   BIGINT,
    authenticated_at   BIGINT NOT NULL,
    revoked_at         BIGINT,
    totp_step          BIGINT,
    totp_tries         BIGINT NOT NULL DEFAULT 0
);

CREATE INDEX sessions_by_account ON sessions (account_id, created_at);

CREATE TABLE auth_failures (
    account_id UUID NOT NULL REFERENCES accounts (id),
    at         BIGINT NOT NULL,
    kind       TEXT NOT NULL
);

CREATE INDEX auth_failures_by_account ON auth_failures (account_id, at);

CREATE TABLE account_unlocks (
    account_id UUID NOT NULL REFERENCES accounts (id),
    at         BIGINT NOT NULL,
    by_member  UUID
);
