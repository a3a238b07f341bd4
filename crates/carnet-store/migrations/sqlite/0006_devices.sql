-- Registered devices: a browser (or client) identified by a random secret in its own
-- long-lived cookie, stored as a hash; per account, a device is pending, approved or
-- blocked. Sessions remember the device they were opened on.

CREATE TABLE devices (
    id           BLOB PRIMARY KEY NOT NULL,
    secret_hash  BLOB NOT NULL UNIQUE,
    browser      TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL
) STRICT;

-- What a device is for one account. Transitions: pending → approved | blocked,
-- approved → blocked. A blocked device is never approved again; deleting it only hides it.
CREATE TABLE device_grants (
    device_id   BLOB NOT NULL REFERENCES devices (id),
    account_id  BLOB NOT NULL REFERENCES accounts (id),
    practice_id BLOB REFERENCES practices (id),
    name        TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'blocked')),
    created_at  INTEGER NOT NULL,
    decided_at  INTEGER,
    decided_by  BLOB,
    deleted_at  INTEGER,
    PRIMARY KEY (device_id, account_id)
) STRICT;

CREATE INDEX device_grants_by_practice ON device_grants (practice_id, created_at);
CREATE INDEX device_grants_by_account ON device_grants (account_id, created_at);

ALTER TABLE sessions ADD COLUMN device_id BLOB REFERENCES devices (id);
-- How the second factor was verified: totp, passkey, recovery (self-approval of a
-- holder's own device needs a passkey or a recovery code).
ALTER TABLE sessions ADD COLUMN second_factor_kind TEXT;

-- Messages shown in the application (a device blocked, approved…).
CREATE TABLE notices (
    id         BLOB PRIMARY KEY NOT NULL,
    account_id BLOB NOT NULL REFERENCES accounts (id),
    created_at INTEGER NOT NULL,
    message    TEXT NOT NULL,
    read_at    INTEGER
) STRICT;

CREATE INDEX notices_by_account ON notices (account_id, created_at);
