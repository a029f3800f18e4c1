-- Secrets every server on this database shares, created by the first server that needs one
-- (e.g. the key that authenticates the `requestState` of MCP input-required results, so a
-- retry may reach any server). A control table like api_keys: no project owns a row, so it is
-- reached by the connecting role and not by codifier_tenant, and needs no row-level security.
CREATE TABLE server_secrets (
    name        text PRIMARY KEY,
    value       text NOT NULL,
    created_at  timestamptz NOT NULL
);
