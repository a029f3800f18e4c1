-- Foundation schema for the embedded SQLite store.
-- Ids are UUID text; timestamps are UTC text with six fractional digits, so text order is time order.

CREATE TABLE projects (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    org         TEXT,
    metadata    TEXT NOT NULL DEFAULT '{}',
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

CREATE TABLE memories (
    id            TEXT PRIMARY KEY,
    project_id    TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    memory_type   TEXT NOT NULL,
    title         TEXT NOT NULL,
    content       TEXT NOT NULL,
    category      TEXT,
    description   TEXT,
    confidence    REAL NOT NULL DEFAULT 1.0,
    tags          TEXT NOT NULL DEFAULT '[]',
    source_role   TEXT,
    usage_count   INTEGER NOT NULL DEFAULT 0,
    content_hash  TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    deleted_at    TEXT
);
CREATE INDEX memories_newest ON memories (project_id, created_at DESC, id DESC);
CREATE UNIQUE INDEX memories_same_content ON memories (project_id, content_hash) WHERE deleted_at IS NULL;

CREATE TABLE repositories (
    id             TEXT PRIMARY KEY,
    project_id     TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    url            TEXT NOT NULL,
    commit_sha     TEXT,
    branch         TEXT,
    version_label  TEXT,
    version        INTEGER NOT NULL,
    file_count     INTEGER NOT NULL DEFAULT 0,
    token_count    INTEGER NOT NULL DEFAULT 0,
    file_tree      TEXT,
    snapshot       TEXT,
    created_at     TEXT NOT NULL,
    UNIQUE (project_id, url, version)
);

CREATE TABLE sessions (
    id              TEXT PRIMARY KEY,
    project_id      TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    playbook_id     TEXT NOT NULL,
    playbook_version TEXT,
    current_step    INTEGER NOT NULL DEFAULT 0,
    collected_data  TEXT NOT NULL DEFAULT '{}',
    status          TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'completed', 'abandoned')),
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);

CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    project_id    TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    prefix        TEXT NOT NULL UNIQUE,
    key_hash      TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('read', 'write', 'admin')),
    label         TEXT,
    created_at    TEXT NOT NULL,
    last_used_at  TEXT,
    revoked_at    TEXT
);

CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id  TEXT,
    actor       TEXT NOT NULL,
    tool        TEXT,
    action      TEXT NOT NULL,
    target_id   TEXT,
    detail      TEXT NOT NULL DEFAULT '{}',
    created_at  TEXT NOT NULL
);
CREATE INDEX audit_log_by_project ON audit_log (project_id, id DESC);

CREATE TABLE mcp_sessions (
    id                 TEXT PRIMARY KEY,
    owner              TEXT,
    initialize_params  TEXT,
    active_project_id  TEXT,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL
);
