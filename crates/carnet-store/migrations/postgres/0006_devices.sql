-- Registered devices: a browser (or client) identified by a random secret in its own
-- long-lived cookie, stored as a hash; per account, a device is pending, approved or
-- blocked. Sessions remember the device they were opened on.

CREATE TABLE devices (
    id           UUID PRIMARY KEY,
    secret_hash  BYTEA NOT NULL UNIQUE,
    browser      TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL
);

-- What a device is for one account. Transitions: pending → approved | blocked,
-- approved → blocked. A blocked device is never approved again; deleting it only hides it.
CREATE TABLE device_grants (
    device_id   UUID NOT NULL REFERENCES devices (id),
    account_id  UUID NOT NULL REFERENCES accounts (id),
    practice_id UUID REFERENCES practices (id),
    name        TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'blocked')),
    created_at  BIGINT NOT NULL,
    decided_at  BIGINT,
    decided_by  UUID,
    deleted_at  BIGINT,
    PRIMARY KEY (device_id, account_id)
);

CREATE INDEX device_grants_by_practice ON device_grants (practice_id, created_at);
CREATE INDEX device_grants_by_account ON device_grants (account_id, created_at);

ALTER TABLE sessions ADD COLUMN device_id UUID REFERENCES devices (id);
-- How the second factor was verified: totp, passkey, recovery (self-approval of a
-- holder's own device needs a passkey or a recovery code).
ALTER TABLE sessions ADD COLUMN second_factor_kind TEXT;

-- Messages shown in the application (a device blocked, approved…).
CREATE TABLE notices (
    id         UUID PRIMARY KEY,
    account_id UUID NOT NULL REFERENCES accounts (id),
    created_at BIGINT NOT NULL,
    message    TEXT NOT NULL,
    read_at    BIGINT
);

CREATE INDEX notices_by_account ON notices (account_id, created_at);
