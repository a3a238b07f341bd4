-- The practice PIN: 4 characters drawn by the server, sealed with a key derived from the
-- instance key (never stored in clear), one current version per practice. Sessions
-- remember which version unlocked them and how many wrong PINs they typed.

CREATE TABLE practice_pins (
    practice_id BLOB PRIMARY KEY NOT NULL REFERENCES practices (id),
    version     INTEGER NOT NULL,
    sealed_pin  BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    created_by  BLOB
) STRICT;

ALTER TABLE sessions ADD COLUMN pin_version INTEGER;
ALTER TABLE sessions ADD COLUMN pin_failures INTEGER NOT NULL DEFAULT 0;
