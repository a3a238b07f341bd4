-- Documents of the care records (ADR 0010): each version encrypted under its own key,
-- wrapped by the patient key; the encrypted bytes live in the blob store under a random
-- name; the name, type and size are sealed here. Append-only.

CREATE TABLE documents (
    id          UUID PRIMARY KEY,
    practice_id UUID NOT NULL REFERENCES practices (id),
    patient_id  UUID NOT NULL REFERENCES patients (id),
    created_at  BIGINT NOT NULL,
    created_by  UUID NOT NULL
);

CREATE INDEX documents_by_patient ON documents (practice_id, patient_id, created_at);

CREATE TABLE document_versions (
    id          UUID PRIMARY KEY,
    document_id UUID NOT NULL REFERENCES documents (id),
    practice_id UUID NOT NULL REFERENCES practices (id),
    number      BIGINT NOT NULL,
    wrapped_key BYTEA NOT NULL,
    sealed_meta BYTEA NOT NULL,
    blob_name   TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    created_by  UUID NOT NULL,
    UNIQUE (document_id, number)
);

CREATE TRIGGER document_versions_append_only
BEFORE UPDATE OR DELETE ON document_versions
FOR EACH ROW EXECUTE FUNCTION carnet_refuse_change();

CREATE TRIGGER document_versions_no_truncate
BEFORE TRUNCATE ON document_versions
FOR EACH STATEMENT EXECUTE FUNCTION carnet_refuse_change();
