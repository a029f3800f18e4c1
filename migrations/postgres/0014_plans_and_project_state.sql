-- Plans and tasks (a dependency graph per plan; a task's status, attempts and outputs), the
-- stored answers of `update_task` calls made with an idempotency key, and each project's state
-- (phase, checkpoint, confidence, assumptions, MCPs) with every revision kept.
-- Tenant tables: row-level security confines each project's transactions to its own rows.

CREATE TABLE plans (
    id               uuid PRIMARY KEY,
    project_id       uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    title            text NOT NULL,
    idempotency_key  text,
    request_digest   text NOT NULL,
    created_by       text NOT NULL,
    created_at       timestamptz NOT NULL,
    UNIQUE (project_id, idempotency_key)
);
CREATE INDEX plans_by_project ON plans (project_id, created_at);

CREATE TABLE plan_tasks (
    id               uuid PRIMARY KEY,
    project_id       uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    plan_id          uuid NOT NULL REFERENCES plans(id) ON DELETE CASCADE,
    local_id         text NOT NULL,
    position         integer NOT NULL,
    spec             jsonb NOT NULL,
    status           text NOT NULL,
    attempt          integer NOT NULL DEFAULT 0,
    attempts         jsonb NOT NULL DEFAULT '[]',
    outputs          jsonb NOT NULL DEFAULT '[]',
    blockers         jsonb NOT NULL DEFAULT '[]',
    note             text,
    deadline_at      timestamptz,
    updated_at       timestamptz NOT NULL,
    UNIQUE (plan_id, local_id)
);
CREATE INDEX plan_tasks_by_plan ON plan_tasks (project_id, plan_id, position);
CREATE INDEX plan_tasks_due ON plan_tasks (project_id, deadline_at) WHERE status = 'in-progress';

CREATE TABLE task_replies (
    project_id       uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    idempotency_key  text NOT NULL,
    request_digest   text NOT NULL,
    reply            jsonb NOT NULL,
    created_at       timestamptz NOT NULL,
    PRIMARY KEY (project_id, idempotency_key)
);

CREATE TABLE project_state (
    project_id       uuid PRIMARY KEY REFERENCES projects(id) ON DELETE CASCADE,
    revision         integer NOT NULL,
    state            jsonb NOT NULL,
    updated_by       text NOT NULL,
    updated_at       timestamptz NOT NULL
);

CREATE TABLE project_state_revisions (
    project_id       uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    revision         integer NOT NULL,
    state            jsonb NOT NULL,
    updated_by       text NOT NULL,
    updated_at       timestamptz NOT NULL,
    PRIMARY KEY (project_id, revision)
);

GRANT SELECT, INSERT ON plans TO codifier_tenant;
GRANT SELECT, INSERT, UPDATE ON plan_tasks TO codifier_tenant;
GRANT SELECT, INSERT ON task_replies TO codifier_tenant;
GRANT SELECT, INSERT, UPDATE ON project_state TO codifier_tenant;
GRANT SELECT, INSERT ON project_state_revisions TO codifier_tenant;

ALTER TABLE plans ENABLE ROW LEVEL SECURITY;
ALTER TABLE plans FORCE ROW LEVEL SECURITY;
ALTER TABLE plan_tasks ENABLE ROW LEVEL SECURITY;
ALTER TABLE plan_tasks FORCE ROW LEVEL SECURITY;
ALTER TABLE task_replies ENABLE ROW LEVEL SECURITY;
ALTER TABLE task_replies FORCE ROW LEVEL SECURITY;
ALTER TABLE project_state ENABLE ROW LEVEL SECURITY;
ALTER TABLE project_state FORCE ROW LEVEL SECURITY;
ALTER TABLE project_state_revisions ENABLE ROW LEVEL SECURITY;
ALTER TABLE project_state_revisions FORCE ROW LEVEL SECURITY;

CREATE POLICY tenant_scope ON plans TO codifier_tenant
    USING (project_id = nullif(current_setting('codifier.project_id', true), '')::uuid)
    WITH CHECK (project_id = nullif(current_setting('codifier.project_id', true), '')::uuid);
CREATE POLICY tenant_scope ON plan_tasks TO codifier_tenant
    USING (project_id = nullif(current_setting('codifier.project_id', true), '')::uuid)
    WITH CHECK (project_id = nullif(current_setting('codifier.project_id', true), '')::uuid);
CREATE POLICY tenant_scope ON task_replies TO codifier_tenant
    USING (project_id = nullif(current_setting('codifier.project_id', true), '')::uuid)
    WITH CHECK (project_id = nullif(current_setting('codifier.project_id', true), '')::uuid);
CREATE POLICY tenant_scope ON project_state TO codifier_tenant
    USING (project_id = nullif(current_setting('codifier.project_id', true), '')::uuid)
    WITH CHECK (project_id = nullif(current_setting('codifier.project_id', true), '')::uuid);
CREATE POLICY tenant_scope ON project_state_revisions TO codifier_tenant
    USING (project_id = nullif(current_setting('codifier.project_id', true), '')::uuid)
    WITH CHECK (project_id = nullif(current_setting('codifier.project_id', true), '')::uuid);
