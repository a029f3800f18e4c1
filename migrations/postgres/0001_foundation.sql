-- Foundation schema for Postgres 15+ with pgvector.
--
-- Tenant isolation: the tenant tables (memories, repositories, sessions, audit_log) have row-level
-- security enabled and FORCEd, with policies for the role codifier_tenant keyed on the
-- transaction-local setting codifier.project_id. The server switches to that role (SET LOCAL ROLE)
-- in every tenant transaction, so RLS applies even when DATABASE_URL names a superuser or the
-- tables' owner. Control tables (projects, api_keys, mcp_sessions) are only reached by the
-- connecting role.

CREATE EXTENSION IF NOT EXISTS vector;

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'codifier_tenant') THEN
        BEGIN
            CREATE ROLE codifier_tenant NOLOGIN NOSUPERUSER NOBYPASSRLS;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL; -- another database in this cluster created it at the same moment
        END;
    END IF;
    IF NOT pg_has_role(current_user, 'codifier_tenant', 'MEMBER') THEN
        EXECUTE format('GRANT codifier_tenant TO %I', current_user);
    END IF;
END
$$;

CREATE TABLE projects (
    id          uuid PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    org         text,
    metadata    jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);

CREATE TABLE memories (
    id               uuid PRIMARY KEY,
    project_id       uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    memory_type      text NOT NULL,
    title            text NOT NULL,
    content          jsonb NOT NULL,
    category         text,
    description      text,
    confidence       double precision NOT NULL DEFAULT 1.0,
    tags             text[] NOT NULL DEFAULT '{}',
    source_role      text,
    usage_count      bigint NOT NULL DEFAULT 0,
    content_hash     text NOT NULL,
    embedding        vector,
    embedding_model  text,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    deleted_at       timestamptz
);
CREATE INDEX memories_newest ON memories (project_id, created_at DESC, id DESC);
CREATE INDEX memories_tags ON memories USING gin (tags);
CREATE UNIQUE INDEX memories_same_content ON memories (project_id, content_hash) WHERE deleted_at IS NULL;

CREATE TABLE repositories (
    id             uuid PRIMARY KEY,
    project_id     uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    url            text NOT NULL,
    commit_sha     text,
    branch         text,
    version_label  text,
    version        integer NOT NULL,
    file_count     integer NOT NULL DEFAULT 0,
    token_count    bigint NOT NULL DEFAULT 0,
    file_tree      text,
    snapshot       text,
    created_at     timestamptz NOT NULL,
    UNIQUE (project_id, url, version)
);

CREATE TABLE sessions (
    id                uuid PRIMARY KEY,
    project_id        uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    playbook_id       text NOT NULL,
    playbook_version  text,
    current_step      integer NOT NULL DEFAULT 0,
    collected_data    jsonb NOT NULL DEFAULT '{}',
    status            text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'completed', 'abandoned')),
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL
);

CREATE TABLE api_keys (
    id            uuid PRIMARY KEY,
    project_id    uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    prefix        text NOT NULL UNIQUE,
    key_hash      text NOT NULL,
    role          text NOT NULL CHECK (role IN ('read', 'write', 'admin')),
    label         text,
    created_at    timestamptz NOT NULL,
    last_used_at  timestamptz,
    revoked_at    timestamptz
);

CREATE TABLE audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id  uuid,
    actor       text NOT NULL,
    tool        text,
    action      text NOT NULL,
    target_id   text,
    detail      jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL
);
CREATE INDEX audit_log_by_project ON audit_log (project_id, id DESC);

CREATE TABLE mcp_sessions (
    id                 text PRIMARY KEY,
    owner              text,
    initialize_params  jsonb,
    active_project_id  uuid,
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL
);

GRANT SELECT, INSERT, UPDATE, DELETE ON memories, repositories, sessions, audit_log TO codifier_tenant;
GRANT USAGE ON SEQUENCE audit_log_id_seq TO codifier_tenant;

ALTER TABLE memories ENABLE ROW LEVEL SECURITY;
ALTER TABLE memories FORCE ROW LEVEL SECURITY;
ALTER TABLE repositories ENABLE ROW LEVEL SECURITY;
ALTER TABLE repositories FORCE ROW LEVEL SECURITY;
ALTER TABLE sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE sessions FORCE ROW LEVEL SECURITY;
ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_log FORCE ROW LEVEL SECURITY;

CREATE POLICY tenant_scope ON memories TO codifier_tenant
    USING (project_id = nullif(current_setting('codifier.project_id', true), '')::uuid)
    WITH CHECK (project_id = nullif(current_setting('codifier.project_id', true), '')::uuid);
CREATE POLICY tenant_scope ON repositories TO codifier_tenant
    USING (project_id = nullif(current_setting('codifier.project_id', true), '')::uuid)
    WITH CHECK (project_id = nullif(current_setting('codifier.project_id', true), '')::uuid);
CREATE POLICY tenant_scope ON sessions TO codifier_tenant
    USING (project_id = nullif(current_setting('codifier.project_id', true), '')::uuid)
    WITH CHECK (project_id = nullif(current_setting('codifier.project_id', true), '')::uuid);
CREATE POLICY tenant_scope ON audit_log TO codifier_tenant
    USING (project_id = nullif(current_setting('codifier.project_id', true), '')::uuid)
    WITH CHECK (project_id = nullif(current_setting('codifier.project_id', true), '')::uuid);
