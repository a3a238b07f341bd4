-- Clinical content of the care records (ADR 0009): entries (kind in clear: structure,
-- not content) and their revisions, sealed under the patient key. Append-only.

CREATE TABLE clinical_entries (
    id          BLOB PRIMARY KEY NOT NULL,
    practice_id BLOB NOT NULL REFERENCES practices (id),
    patient_id  BLOB NOT NULL REFERENCES patients (id),
    kind        TEXT NOT NULL CHECK (kind IN ('episode', 'act', 'note', 'allergy', 'treatment', 'history')),
    created_at  INTEGER NOT NULL,
    created_by  BLOB NOT NULL
) STRICT;

CREATE INDEX clinical_entries_by_patient ON clinical_entries (practice_id, patient_id, created_at);

CREATE TABLE clinical_revisions (
    id             BLOB PRIMARY KEY NOT NULL,
    entry_id       BLOB NOT NULL REFERENCES clinical_entries (id),
    practice_id    BLOB NOT NULL REFERENCES practices (id),
    number         INTEGER NOT NULL,
    sealed_content BLOB NOT NULL,
    created_at     INTEGER NOT NULL,
    created_by     BLOB NOT NULL,
    UNIQUE (entry_id, number)
) STRICT;

CREATE TRIGGER clinical_revisions_no_update BEFORE UPDATE ON clinical_revisions
BEGIN SELECT RAISE(ABORT, 'clinical_revisions is append-only'); END;
CREATE TRIGGER clinical_revisions_no_delete BEFORE DELETE ON clinical_revisions
BEGIN SELECT RAISE(ABORT, 'clinical_revisions is append-only'); END;
CREATE TRIGGER clinical_entries_no_delete BEFORE DELETE ON clinical_entries
BEGIN SELECT RAISE(ABORT, 'clinical_entries is append-only'); END;
