-- A new TOTP secret waiting for its first code before it replaces the current one.
CREATE TABLE totp_replacements (
    account_id    UUID PRIMARY KEY REFERENCES accounts (id),
    sealed_secret BYTEA NOT NULL,
    created_at    BIGINT NOT NULL
);
