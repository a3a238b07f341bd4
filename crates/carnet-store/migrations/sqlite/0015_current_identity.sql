-- The current identity beside its patient (ADR 0009): a copy of the newest revision's
-- id, number, sealed identity, time and author, written in the same transaction as each
-- revision. A search reads one row per candidate instead of four B-tree lookups (the
-- index, the patient, the highest revision number, the revision). The copy is sealed
-- exactly as its revision (same bytes, opened with the revision's row id), so it reveals
-- nothing more; patient_revisions stays the history and the source of truth.
ALTER TABLE patients ADD COLUMN current_revision_id BLOB;
ALTER TABLE patients ADD COLUMN current_number INTEGER;
ALTER TABLE patients ADD COLUMN current_identity BLOB;
ALTER TABLE patients ADD COLUMN current_created_at INTEGER;
ALTER TABLE patients ADD COLUMN current_created_by BLOB;

UPDATE patients SET (current_revision_id, current_number, current_identity,
                     current_created_at, current_created_by) =
    (SELECT r.id, r.number, r.sealed_identity, r.created_at, r.created_by
     FROM patient_revisions r WHERE r.patient_id = patients.id
     ORDER BY r.number DESC LIMIT 1);
