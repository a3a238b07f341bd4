-- A new TOTP secret waiting for its first code before it replaces the current one.
CREATE TABLE totp_replacements (
    account_id    BLOB PRIMARY KEY NOT NULL REFERENCES accounts (id),
    sealed_secret BLOB NOT NULL,
    created_at    INTEGER NOT NULL
) STRICT;
