-- Foundation: instance metadata, platform administrators, practices, members and the
-- append-only history of professional-number decisions. Migrations are append-only:
-- never edit this file once released; add a new one.

CREATE TABLE instance_meta (
    key        TEXT PRIMARY KEY,
    value      BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE platform_admins (
    id         UUID PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE practices (
    id         UUID PRIMARY KEY,
    name       TEXT NOT NULL,
    address    TEXT NOT NULL,
    profession TEXT NOT NULL
        CHECK (profession IN ('nurse', 'physician', 'dentist', 'physiotherapist', 'midwife')),
    created_at BIGINT NOT NULL
);

CREATE TABLE members (
    id                     UUID PRIMARY KEY,
    practice_id            UUID NOT NULL REFERENCES practices (id),
    name                   TEXT NOT NULL,
    role                   TEXT NOT NULL CHECK (role IN ('holder', 'professional', 'staff')),
    phone                  TEXT NOT NULL,
    professional_id_kind   TEXT CHECK (professional_id_kind IN ('rpps', 'adeli')),
    professional_id_number TEXT,
    created_at             BIGINT NOT NULL,
    CHECK ((professional_id_kind IS NULL) = (professional_id_number IS NULL))
);

CREATE INDEX members_by_practice ON members (practice_id, created_at);

-- One row per decision; the latest decides. Rows are never updated or deleted.
CREATE TABLE professional_id_decisions (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    practice_id UUID NOT NULL REFERENCES practices (id),
    member_id   UUID NOT NULL REFERENCES members (id),
    status      TEXT NOT NULL CHECK (status IN ('validated', 'rejected')),
    decided_by  UUID NOT NULL REFERENCES platform_admins (id),
    decided_at  BIGINT NOT NULL,
    reason      TEXT NOT NULL
);

CREATE INDEX professional_id_decisions_by_member
    ON professional_id_decisions (member_id, seq);

CREATE FUNCTION carnet_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END;
$$;

CREATE TRIGGER professional_id_decisions_append_only
BEFORE UPDATE OR DELETE ON professional_id_decisions
FOR EACH ROW EXECUTE FUNCTION carnet_refuse_change();
