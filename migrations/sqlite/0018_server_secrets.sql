-- Secrets every server on this database shares, created by the first server that needs one
-- (e.g. the key that authenticates the `requestState` of MCP input-required results, so a
-- retry may reach any server). A control table: no project owns a row.
CREATE TABLE server_secrets (
    name        TEXT PRIMARY KEY,
    value       TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
