-- The device certificate authority (one per instance): its certificate, and its private
-- key sealed with a key derived from the instance key.
CREATE TABLE device_authority (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    certificate_pem TEXT NOT NULL,
    sealed_key      BYTEA NOT NULL,
    created_at      BIGINT NOT NULL
);

-- A command-line or API client's certificate: requested (with a signing request) by a
-- signed-in account from its device, issued once that device is approved for it,
-- revoked when the device is blocked. The TLS listener finds it by fingerprint.
CREATE TABLE device_certificates (
    device_id       UUID PRIMARY KEY REFERENCES devices (id),
    account_id      UUID NOT NULL REFERENCES accounts (id),
    request_pem     TEXT NOT NULL,
    certificate_der BYTEA,
    fingerprint     BYTEA UNIQUE,
    requested_at    BIGINT NOT NULL,
    issued_at       BIGINT,
    not_after       BIGINT,
    revoked_at      BIGINT
);

-- A session opened on a connection that presented a device certificate: it is served
-- only on connections presenting that device's certificate.
ALTER TABLE sessions ADD COLUMN certified_device BOOLEAN NOT NULL DEFAULT FALSE;
