-- The OAuth authorization server (issue 20): registered clients, authorizations (one per
-- authorization code, the family its tokens belong to) and tokens. Control tables like
-- api_keys and console_sessions: a bearer token is looked up before any project is known, so
-- they are reached by the connecting role and not by codifier_tenant, and need no row-level
-- security. They hold no tenant data: client names and redirect URIs, which key (or the operator
-- token's fingerprint) granted what role in which project, and only the SHA-256 of each code and
-- token (never a code, token or key).
CREATE TABLE oauth_clients (
    client_id      text PRIMARY KEY,
    client_name    text NOT NULL,
    client_uri     text,
    redirect_uris  jsonb NOT NULL,
    created_at     timestamptz NOT NULL
);

CREATE TABLE oauth_grants (
    id                    uuid PRIMARY KEY,
    client_id             text NOT NULL,
    key_id                uuid REFERENCES api_keys(id) ON DELETE CASCADE,
    key_prefix            text,
    operator_fingerprint  text,
    role                  text NOT NULL,
    project_id            uuid,
    resource              text NOT NULL,
    redirect_uri          text NOT NULL,
    code_hash             text NOT NULL UNIQUE,
    code_challenge        text NOT NULL,
    code_expires_at       timestamptz NOT NULL,
    code_used_at          timestamptz,
    revoked_at            timestamptz,
    created_at            timestamptz NOT NULL,
    CHECK ((key_id IS NULL) <> (operator_fingerprint IS NULL))
);
CREATE INDEX oauth_grants_by_key ON oauth_grants (key_id);

CREATE TABLE oauth_tokens (
    token_hash  text PRIMARY KEY,
    grant_id    uuid NOT NULL REFERENCES oauth_grants(id) ON DELETE CASCADE,
    kind        text NOT NULL CHECK (kind IN ('access', 'refresh')),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    created_at  timestamptz NOT NULL
);
CREATE INDEX oauth_tokens_by_grant ON oauth_tokens (grant_id);
CREATE INDEX oauth_tokens_by_expiry ON oauth_tokens (expires_at);
