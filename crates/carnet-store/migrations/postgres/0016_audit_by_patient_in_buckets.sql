-- A patient's audit entries are indexed within buckets of 512 sequence numbers
-- (`carnet_store::PATIENT_BUCKET`, ADR 0004 "Reading the trail"). Keyed by the patient
-- first, each entry went in at its patient's place: the up to 51 entries of one search
-- dirtied dozens of index pages that its durable commit wrote and synced. Led by the
-- bucket, the index grows at its end; a patient's history probes each bucket.
DROP INDEX audit_entries_by_patient;
CREATE INDEX audit_entries_by_patient ON audit_entries (chain_id, (seq / 512), target_patient, seq);
