-- The audit trail: hash-chained entries (one chain per practice plus the instance
-- chain), their current heads, and signed checkpoints. Entries and checkpoints are
-- append-only: the database itself refuses UPDATE and DELETE on them.

CREATE TABLE audit_entries (
    chain_id        TEXT NOT NULL,
    seq             INTEGER NOT NULL,
    prev_hash       BLOB NOT NULL,
    hash            BLOB NOT NULL,
    at              INTEGER NOT NULL,
    actor_kind      TEXT NOT NULL,
    actor_account   BLOB,
    actor_role      TEXT,
    actor_device    BLOB,
    actor_session   BLOB,
    action          TEXT NOT NULL,
    target_patient  BLOB,
    target_record   BLOB,
    target_document BLOB,
    target_member   BLOB,
    outcome         TEXT NOT NULL,
    request_id      TEXT,
    client_address  TEXT,
    PRIMARY KEY (chain_id, seq)
) STRICT;

CREATE INDEX audit_entries_by_patient ON audit_entries (chain_id, target_patient, seq);
CREATE INDEX audit_entries_by_actor ON audit_entries (chain_id, actor_account, seq);

-- The head of each chain, updated with every append (in the same transaction). It is a
-- convenience for appending; verification never trusts it.
CREATE TABLE audit_chains (
    chain_id  TEXT PRIMARY KEY NOT NULL,
    head_seq  INTEGER NOT NULL,
    head_hash BLOB NOT NULL
) STRICT;

CREATE TABLE audit_checkpoints (
    chain_id  TEXT NOT NULL,
    seq       INTEGER NOT NULL,
    head_hash BLOB NOT NULL,
    at        INTEGER NOT NULL,
    signature BLOB NOT NULL,
    PRIMARY KEY (chain_id, seq)
) STRICT;

CREATE TRIGGER audit_entries_no_update BEFORE UPDATE ON audit_entries
BEGIN SELECT RAISE(ABORT, 'audit_entries is append-only'); END;
CREATE TRIGGER audit_entries_no_delete BEFORE DELETE ON audit_entries
BEGIN SELECT RAISE(ABORT, 'audit_entries is append-only'); END;
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END;
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END;
