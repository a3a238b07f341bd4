-- The audit trail: hash-chained entries (one chain per practice plus the instance
-- chain), their current heads, and signed checkpoints. Entries and checkpoints are
-- append-only: triggers refuse UPDATE, DELETE and TRUNCATE. For defence in depth, run
-- Carnet as a role without UPDATE/DELETE/TRUNCATE on these tables (docs/audit.md).

CREATE TABLE audit_entries (
    chain_id        TEXT NOT NULL,
    seq             BIGINT NOT NULL,
    prev_hash       BYTEA NOT NULL,
    hash            BYTEA NOT NULL,
    at              BIGINT NOT NULL,
    actor_kind      TEXT NOT NULL,
    actor_account   UUID,
    actor_role      TEXT,
    actor_device    UUID,
    actor_session   UUID,
    action          TEXT NOT NULL,
    target_patient  UUID,
    target_record   UUID,
    target_document UUID,
    target_member   UUID,
    outcome         TEXT NOT NULL,
    request_id      TEXT,
    client_address  TEXT,
    PRIMARY KEY (chain_id, seq)
);

CREATE INDEX audit_entries_by_patient ON audit_entries (chain_id, target_patient, seq);
CREATE INDEX audit_entries_by_actor ON audit_entries (chain_id, actor_account, seq);

CREATE TABLE audit_chains (
    chain_id  TEXT PRIMARY KEY,
    head_seq  BIGINT NOT NULL,
    head_hash BYTEA NOT NULL
);

CREATE TABLE audit_checkpoints (
    chain_id  TEXT NOT NULL,
    seq       BIGINT NOT NULL,
    head_hash BYTEA NOT NULL,
    at        BIGINT NOT NULL,
    signature BYTEA NOT NULL,
    PRIMARY KEY (chain_id, seq)
);

CREATE TRIGGER audit_entries_append_only
BEFORE UPDATE OR DELETE ON audit_entries
FOR EACH ROW EXECUTE FUNCTION carnet_refuse_change();

CREATE TRIGGER audit_entries_no_truncate
BEFORE TRUNCATE ON audit_entries
FOR EACH STATEMENT EXECUTE FUNCTION carnet_refuse_change();

CREATE TRIGGER audit_checkpoints_append_only
BEFORE UPDATE OR DELETE ON audit_checkpoints
FOR EACH ROW EXECUTE FUNCTION carnet_refuse_change();

CREATE TRIGGER audit_checkpoints_no_truncate
BEFORE TRUNCATE ON audit_checkpoints
FOR EACH STATEMENT EXECUTE FUNCTION carnet_refuse_change();
