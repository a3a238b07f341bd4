-- Background jobs (backups first) run on exactly one node: a node takes the job's lease
-- for a while by a conditional write, and renews it while it works.
CREATE TABLE job_leases (
    name        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    expires_at  BIGINT NOT NULL
);

-- The outcome of every backup, check and restore drill, per target: the monitoring page
-- and the alerts read it. No patient data: sizes, times, snapshot ids, French messages.
CREATE TABLE backup_runs (
    seq           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    target        TEXT NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('backup', 'check', 'data_check', 'drill')),
    started_at    BIGINT NOT NULL,
    finished_at   BIGINT NOT NULL,
    ok            BOOLEAN NOT NULL,
    snapshot      TEXT,
    bytes_added   BIGINT,
    message       TEXT NOT NULL
);
CREATE INDEX backup_runs_by_target ON backup_runs (target, kind, seq);
