-- The practice PIN: 4 characters drawn by the server, sealed with a key derived from the
-- instance key (never stored in clear), one current version per practice. Sessions
-- remember which version unlocked them and how many wrong PINs they typed.

CREATE TABLE practice_pins (
    practice_id UUID PRIMARY KEY REFERENCES practices (id),
    version     BIGINT NOT NULL,
    sealed_pin  BYTEA NOT NULL,
    created_at  BIGINT NOT NULL,
    created_by  UUID
);

ALTER TABLE sessions ADD COLUMN pin_version BIGINT;
ALTER TABLE sessions ADD COLUMN pin_failures BIGINT NOT NULL DEFAULT 0;
