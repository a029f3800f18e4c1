-- Web console sign-ins: the SHA-256 of each session token (never the token or the key), which
-- key signed in (or the operator token's fingerprint), its role and project as they were then
-- (re-checked against api_keys on every request), the CSRF token and the expiry.
CREATE TABLE console_sessions (
    token_hash            TEXT PRIMARY KEY,
    key_id                TEXT REFERENCES api_keys(id) ON DELETE CASCADE,
    key_prefix            TEXT,
    operator_fingerprint  TEXT,
    role                  TEXT NOT NULL,
    project_id            TEXT,
    csrf_token            TEXT NOT NULL,
    created_at            TEXT NOT NULL,
    expires_at            TEXT NOT NULL,
    CHECK ((key_id IS NULL) <> (operator_fingerprint IS NULL))
);
CREATE INDEX console_sessions_by_expiry ON console_sessions (expires_at);
