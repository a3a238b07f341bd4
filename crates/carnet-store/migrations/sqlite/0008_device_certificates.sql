-- The device certificate authority (one per instance): its certificate, and its private
-- key sealed with a key derived from the instance key.
CREATE TABLE device_authority (
    id              INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    certificate_pem TEXT NOT NULL,
    sealed_key      BLOB NOT NULL,
    created_at      INTEGER NOT NULL
) STRICT;

-- A command-line or API client's certificate: requested (with a signing request) by a
-- signed-in account from its device, issued once that device is approved for it,
-- revoked when the device is blocked. The TLS listener finds it by fingerprint.
CREATE TABLE device_certificates (
    device_id       BLOB PRIMARY KEY NOT NULL REFERENCES devices (id),
    account_id      BLOB NOT NULL REFERENCES accounts (id),
    request_pem     TEXT NOT NULL,
    certificate_der BLOB,
    fingerprint     BLOB UNIQUE,
    requested_at    INTEGER NOT NULL,
    issued_at       INTEGER,
    not_after       INTEGER,
    revoked_at      INTEGER
) STRICT;

-- A session opened on a connection that presented a device certificate: it is served
-- only on connections presenting that device's certificate.
ALTER TABLE sessions ADD COLUMN certified_device INTEGER NOT NULL DEFAULT 0;
