-- The OAuth authorization server (issue 20): registered clients, authorizations (one per
-- authorization code, the family its tokens belong to) and tokens. Only the SHA-256 of each
-- code and token is kept (never a code, token or key).
CREATE TABLE oauth_clients (
    client_id      TEXT PRIMARY KEY,
    client_name    TEXT NOT NULL,
    client_uri     TEXT,
    redirect_uris  TEXT NOT NULL,
    created_at     TEXT NOT NULL
);

CREATE TABLE oauth_grants (
    id                    TEXT PRIMARY KEY,
    client_id             TEXT NOT NULL,
    key_id                TEXT REFERENCES api_keys(id) ON DELETE CASCADE,
    key_prefix            TEXT,
    operator_fingerprint  TEXT,
    role                  TEXT NOT NULL,
    project_id            TEXT,
    resource              TEXT NOT NULL,
    redirect_uri          TEXT NOT NULL,
    code_hash             TEXT NOT NULL UNIQUE,
    code_challenge        TEXT NOT NULL,
    code_expires_at       TEXT NOT NULL,
    code_used_at          TEXT,
    revoked_at            TEXT,
    created_at            TEXT NOT NULL,
    CHECK ((key_id IS NULL) <> (operator_fingerprint IS NULL))
);
CREATE INDEX oauth_grants_by_key ON oauth_grants (key_id);

CREATE TABLE oauth_tokens (
    token_hash  TEXT PRIMARY KEY,
    grant_id    TEXT NOT NULL REFERENCES oauth_grants(id) ON DELETE CASCADE,
    kind        TEXT NOT NULL CHECK (kind IN ('access', 'refresh')),
    expires_at  TEXT NOT NULL,
    used_at     TEXT,
    created_at  TEXT NOT NULL
);
CREATE INDEX oauth_tokens_by_grant ON oauth_tokens (grant_id);
CREATE INDEX oauth_tokens_by_expiry ON oauth_tokens (expires_at);
