-- Web console sign-ins. A control table like api_keys and mcp_sessions: it is read before any
-- project is known (the cookie names only a session), so it is reached by the connecting role
-- and not by codifier_tenant, and needs no row-level security. It holds no tenant data: only the
-- SHA-256 of the session token (never the token or the key), which key signed in, its role and
-- project as they were then (re-checked against api_keys on every request), the CSRF token and
-- the expiry.
CREATE TABLE console_sessions (
    token_hash            text PRIMARY KEY,
    key_id                uuid REFERENCES api_keys(id) ON DELETE CASCADE,
    key_prefix            text,
    operator_fingerprint  text,
    role                  text NOT NULL,
    project_id            uuid,
    csrf_token            text NOT NULL,
    created_at            timestamptz NOT NULL,
    expires_at            timestamptz NOT NULL,
    CHECK ((key_id IS NULL) <> (operator_fingerprint IS NULL))
);
CREATE INDEX console_sessions_by_expiry ON console_sessions (expires_at);
