-- Plans and tasks (a dependency graph per plan; a task's status, attempts and outputs), the
-- stored answers of `update_task` calls made with an idempotency key, and each project's state
-- (phase, checkpoint, confidence, assumptions, MCPs) with every revision kept.

CREATE TABLE plans (
    id               TEXT PRIMARY KEY,
    project_id       TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    title            TEXT NOT NULL,
    idempotency_key  TEXT,
    request_digest   TEXT NOT NULL,
    created_by       TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    UNIQUE (project_id, idempotency_key)
);
CREATE INDEX plans_by_project ON plans (project_id, created_at);

CREATE TABLE plan_tasks (
    id               TEXT PRIMARY KEY,
    project_id       TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    plan_id          TEXT NOT NULL REFERENCES plans(id) ON DELETE CASCADE,
    local_id         TEXT NOT NULL,
    position         INTEGER NOT NULL,
    spec             TEXT NOT NULL,
    status           TEXT NOT NULL,
    attempt          INTEGER NOT NULL DEFAULT 0,
    attempts         TEXT NOT NULL DEFAULT '[]',
    outputs          TEXT NOT NULL DEFAULT '[]',
    blockers         TEXT NOT NULL DEFAULT '[]',
    note             TEXT,
    deadline_at      TEXT,
    updated_at       TEXT NOT NULL,
    UNIQUE (plan_id, local_id)
);
CREATE INDEX plan_tasks_by_plan ON plan_tasks (project_id, plan_id, position);
CREATE INDEX plan_tasks_due ON plan_tasks (project_id, deadline_at) WHERE status = 'in-progress';

CREATE TABLE task_replies (
    project_id       TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    idempotency_key  TEXT NOT NULL,
    request_digest   TEXT NOT NULL,
    reply            TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    PRIMARY KEY (project_id, idempotency_key)
);

CREATE TABLE project_state (
    project_id       TEXT PRIMARY KEY REFERENCES projects(id) ON DELETE CASCADE,
    revision         INTEGER NOT NULL,
    state            TEXT NOT NULL,
    updated_by       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);

CREATE TABLE project_state_revisions (
    project_id       TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    revision         INTEGER NOT NULL,
    state            TEXT NOT NULL,
    updated_by       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    PRIMARY KEY (project_id, revision)
);
