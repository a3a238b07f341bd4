-- Row-level security on the care records: the second wall of invariant 3 (DESIGN.md,
-- ADR 0013). Every query of the application already filters on the practice carried by
-- its capability; these policies make PostgreSQL itself refuse to show or accept a row
-- of another practice, so a query that forgot its filter still sees one practice only.
--
-- A transaction names the practice it works for with
--   SELECT set_config('carnet.practice', '<uuid>', true)
-- (Tx::scope_rows does it before every care-records statement). Unset, a transaction
-- sees no care-record row at all. Instance-wide maintenance (the re-encryption job's
-- work list, a restore drill's blob list, the backup's pg_dump) says so explicitly with
-- carnet.instance_wide = 'on'.
--
-- FORCE applies the policies to the tables' owner too (Carnet usually connects as the
-- role that ran these migrations). They never apply to a superuser or a role with
-- BYPASSRLS: Carnet warns at start when it connects as one.

CREATE FUNCTION carnet_row_visible(row_practice UUID) RETURNS BOOLEAN
LANGUAGE sql STABLE AS $$
    SELECT current_setting('carnet.instance_wide', true) = 'on'
        OR row_practice = NULLIF(current_setting('carnet.practice', true), '')::uuid
$$;

DO $$
DECLARE
    care_table TEXT;
BEGIN
    FOREACH care_table IN ARRAY ARRAY['patients', 'patient_revisions', 'patient_index',
        'clinical_entries', 'clinical_revisions', 'documents', 'document_versions']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', care_table);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', care_table);
        EXECUTE format(
            'CREATE POLICY practice_scope ON %I USING (carnet_row_visible(practice_id))',
            care_table);
    END LOOP;
END
$$;
