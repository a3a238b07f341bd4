-- Care records, first part: practice keys, patients and their identity revisions, and
-- the blind indexes that find them (ADR 0009). Nothing here is readable without the
-- instance key: keys are wrapped, identities sealed, indexes are keyed HMACs.

-- One data key per practice and version, wrapped by a key derived from the instance key.
CREATE TABLE practice_keys (
    practice_id BLOB NOT NULL REFERENCES practices (id),
    version     INTEGER NOT NULL,
    wrapped_key BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (practice_id, version)
) STRICT;

-- A patient: its own data key, wrapped by the practice key of `key_version`.
CREATE TABLE patients (
    id           BLOB PRIMARY KEY NOT NULL,
    practice_id  BLOB NOT NULL REFERENCES practices (id),
    key_version  INTEGER NOT NULL,
    wrapped_key  BLOB NOT NULL,
    created_at   INTEGER NOT NULL,
    created_by   BLOB NOT NULL,
    -- The date of the last care act (the 20-year retention rule counts from it).
    last_care_at INTEGER
) STRICT;

CREATE INDEX patients_by_practice ON patients (practice_id, created_at);

-- Every version of a patient's identity, sealed under the patient key; the highest
-- number is the current one. Append-only: an edit adds a revision.
CREATE TABLE patient_revisions (
    id              BLOB PRIMARY KEY NOT NULL,
    patient_id      BLOB NOT NULL REFERENCES patients (id),
    practice_id     BLOB NOT NULL REFERENCES practices (id),
    number          INTEGER NOT NULL,
    sealed_identity BLOB NOT NULL,
    created_at      INTEGER NOT NULL,
    created_by      BLOB NOT NULL,
    UNIQUE (patient_id, number)
) STRICT;

CREATE TRIGGER patient_revisions_no_update BEFORE UPDATE ON patient_revisions
BEGIN SELECT RAISE(ABORT, 'patient_revisions is append-only'); END;
CREATE TRIGGER patient_revisions_no_delete BEFORE DELETE ON patient_revisions
BEGIN SELECT RAISE(ABORT, 'patient_revisions is append-only'); END;

-- Blind indexes of the current identity (derived data, rebuilt on each revision).
CREATE TABLE patient_index (
    practice_id BLOB NOT NULL REFERENCES practices (id),
    field       TEXT NOT NULL,
    digest      BLOB NOT NULL,
    patient_id  BLOB NOT NULL REFERENCES patients (id),
    PRIMARY KEY (practice_id, field, digest, patient_id)
) STRICT;

CREATE INDEX patient_index_by_patient ON patient_index (patient_id);
