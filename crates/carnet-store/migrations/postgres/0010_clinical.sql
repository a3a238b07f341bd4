-- Clinical content of the care records (ADR 0009): entries (kind in clear: structure,
-- not content) and their revisions, sealed under the patient key. Append-only.

CREATE TABLE clinical_entries (
    id          UUID PRIMARY KEY,
    practice_id UUID NOT NULL REFERENCES practices (id),
    patient_id  UUID NOT NULL REFERENCES patients (id),
    kind        TEXT NOT NULL CHECK (kind IN ('episode', 'act', 'note', 'allergy', 'treatment', 'history')),
    created_at  BIGINT NOT NULL,
    created_by  UUID NOT NULL
);

CREATE INDEX clinical_entries_by_patient ON clinical_entries (practice_id, patient_id, created_at);

CREATE TABLE clinical_revisions (
    id             UUID PRIMARY KEY,
    entry_id       UUID NOT NULL REFERENCES clinical_entries (id),
    practice_id    UUID NOT NULL REFERENCES practices (id),
    number         BIGINT NOT NULL,
    sealed_content BYTEA NOT NULL,
    created_at     BIGINT NOT NULL,
    created_by     UUID NOT NULL,
    UNIQUE (entry_id, number)
);

CREATE TRIGGER clinical_revisions_append_only
BEFORE UPDATE OR DELETE ON clinical_revisions
FOR EACH ROW EXECUTE FUNCTION carnet_refuse_change();

CREATE TRIGGER clinical_revisions_no_truncate
BEFORE TRUNCATE ON clinical_revisions
FOR EACH STATEMENT EXECUTE FUNCTION carnet_refuse_change();

CREATE TRIGGER clinical_entries_no_delete
BEFORE DELETE ON clinical_entries
FOR EACH ROW EXECUTE FUNCTION carnet_refuse_change();
