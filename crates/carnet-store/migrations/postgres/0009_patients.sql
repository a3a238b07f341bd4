-- Care records, first part: practice keys, patients and their identity revisions, and
-- the blind indexes that find them (ADR 0009). Nothing here is readable without the
-- instance key: keys are wrapped, identities sealed, indexes are keyed HMACs.

CREATE TABLE practice_keys (
    practice_id UUID NOT NULL REFERENCES practices (id),
    version     BIGINT NOT NULL,
    wrapped_key BYTEA NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (practice_id, version)
);

CREATE TABLE patients (
    id           UUID PRIMARY KEY,
    practice_id  UUID NOT NULL REFERENCES practices (id),
    key_version  BIGINT NOT NULL,
    wrapped_key  BYTEA NOT NULL,
    created_at   BIGINT NOT NULL,
    created_by   UUID NOT NULL,
    last_care_at BIGINT
);

CREATE INDEX patients_by_practice ON patients (practice_id, created_at);

CREATE TABLE patient_revisions (
    id              UUID PRIMARY KEY,
    patient_id      UUID NOT NULL REFERENCES patients (id),
    practice_id     UUID NOT NULL REFERENCES practices (id),
    number          BIGINT NOT NULL,
    sealed_identity BYTEA NOT NULL,
    created_at      BIGINT NOT NULL,
    created_by      UUID NOT NULL,
    UNIQUE (patient_id, number)
);

CREATE TRIGGER patient_revisions_append_only
BEFORE UPDATE OR DELETE ON patient_revisions
FOR EACH ROW EXECUTE FUNCTION carnet_refuse_change();

CREATE TRIGGER patient_revisions_no_truncate
BEFORE TRUNCATE ON patient_revisions
FOR EACH STATEMENT EXECUTE FUNCTION carnet_refuse_change();

CREATE TABLE patient_index (
    practice_id UUID NOT NULL REFERENCES practices (id),
    field       TEXT NOT NULL,
    digest      BYTEA NOT NULL,
    patient_id  UUID NOT NULL REFERENCES patients (id),
    PRIMARY KEY (practice_id, field, digest, patient_id)
);

CREATE INDEX patient_index_by_patient ON patient_index (patient_id);
