-- Documents of the care records (ADR 0010): each version encrypted under its own key,
-- wrapped by the patient key; the encrypted bytes live in the blob store under a random
-- name; the name, type and size are sealed here. Append-only.

CREATE TABLE documents (
    id          BLOB PRIMARY KEY NOT NULL,
    practice_id BLOB NOT NULL REFERENCES practices (id),
    patient_id  BLOB NOT NULL REFERENCES patients (id),
    created_at  INTEGER NOT NULL,
    created_by  BLOB NOT NULL
) STRICT;

CREATE INDEX documents_by_patient ON documents (practice_id, patient_id, created_at);

CREATE TABLE document_versions (
    id          BLOB PRIMARY KEY NOT NULL,
    document_id BLOB NOT NULL REFERENCES documents (id),
    practice_id BLOB NOT NULL REFERENCES practices (id),
    number      INTEGER NOT NULL,
    wrapped_key BLOB NOT NULL,
    sealed_meta BLOB NOT NULL,
    blob_name   TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    created_by  BLOB NOT NULL,
    UNIQUE (document_id, number)
) STRICT;

CREATE TRIGGER document_versions_no_update BEFORE UPDATE ON document_versions
BEGIN SELECT RAISE(ABORT, 'document_versions is append-only'); END;
CREATE TRIGGER document_versions_no_delete BEFORE DELETE ON document_versions
BEGIN SELECT RAISE(ABORT, 'document_versions is append-only'); END;
