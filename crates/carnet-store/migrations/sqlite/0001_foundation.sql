-- Foundation: instance metadata, platform administrators, practices, members and the
-- append-only history of professional-number decisions. Migrations are append-only:
-- never edit this file once released; add a new one.

CREATE TABLE instance_meta (
    key        TEXT PRIMARY KEY NOT NULL,
    value      BLOB NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE platform_admins (
    id         BLOB PRIMARY KEY NOT NULL,
    name       TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE practices (
    id         BLOB PRIMARY KEY NOT NULL,
    name       TEXT NOT NULL,
    address    TEXT NOT NULL,
    profession TEXT NOT NULL
        CHECK (profession IN ('nurse', 'physician', 'dentist', 'physiotherapist', 'midwife')),
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE members (
    id                     BLOB PRIMARY KEY NOT NULL,
    practice_id            BLOB NOT NULL REFERENCES practices (id),
    name                   TEXT NOT NULL,
    role                   TEXT NOT NULL CHECK (role IN ('holder', 'professional', 'staff')),
    phone                  TEXT NOT NULL,
    professional_id_kind   TEXT CHECK (professional_id_kind IN ('rpps', 'adeli')),
    professional_id_number TEXT,
    created_at             INTEGER NOT NULL,
    CHECK ((professional_id_kind IS NULL) = (professional_id_number IS NULL))
) STRICT;

CREATE INDEX members_by_practice ON members (practice_id, created_at);

-- One row per decision; the latest decides. Rows are never updated or deleted.
CREATE TABLE professional_id_decisions (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    practice_id BLOB NOT NULL REFERENCES practices (id),
    member_id   BLOB NOT NULL REFERENCES members (id),
    status      TEXT NOT NULL CHECK (status IN ('validated', 'rejected')),
    decided_by  BLOB NOT NULL REFERENCES platform_admins (id),
    decided_at  INTEGER NOT NULL,
    reason      TEXT NOT NULL
) STRICT;

CREATE INDEX professional_id_decisions_by_member
    ON professional_id_decisions (member_id, seq);

CREATE TRIGGER professional_id_decisions_no_update
BEFORE UPDATE ON professional_id_decisions
BEGIN
    SELECT RAISE(ABORT, 'professional_id_decisions is append-only');
END;

CREATE TRIGGER professional_id_decisions_no_delete
BEFORE DELETE ON professional_id_decisions
BEGIN
    SELECT RAISE(ABORT, 'professional_id_decisions is append-only');
END;
