-- Events and webhooks (see the Postgres migration of the same number). `seq` numbers a
-- project's audit entries 1, 2, 3 … from its row in `event_counters`; SQLite has one writer at
-- a time, so numbers commit in order. `webhook_deliveries` is the outbox, written in the
-- event's transaction; `webhook_attempts` logs each attempt.

ALTER TABLE audit_log ADD COLUMN seq INTEGER;
CREATE UNIQUE INDEX audit_log_events ON audit_log (project_id, seq) WHERE seq IS NOT NULL;

CREATE TABLE event_counters (
    project_id  TEXT PRIMARY KEY REFERENCES projects(id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL
);

CREATE TABLE webhooks (
    id               TEXT PRIMARY KEY,
    project_id       TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    url              TEXT NOT NULL,
    event_types      TEXT NOT NULL,
    secret           TEXT NOT NULL,
    status           TEXT NOT NULL DEFAULT 'active',
    disabled_reason  TEXT,
    created_at       TEXT NOT NULL
);
CREATE INDEX webhooks_by_project ON webhooks (project_id) WHERE status = 'active';

CREATE TABLE webhook_deliveries (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id    TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    webhook_id    TEXT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    event_id      INTEGER NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    status        TEXT NOT NULL DEFAULT 'pending',
    due_at        TEXT NOT NULL,
    lease         TEXT,
    leased_until  TEXT,
    created_at    TEXT NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (project_id, due_at) WHERE status = 'pending';

CREATE TABLE webhook_attempts (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id   TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    webhook_id   TEXT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    delivery_id  INTEGER NOT NULL REFERENCES webhook_deliveries(id) ON DELETE CASCADE,
    event_id     INTEGER NOT NULL,
    attempt      INTEGER NOT NULL,
    status_code  INTEGER,
    duration_ms  INTEGER NOT NULL,
    error        TEXT,
    at           TEXT NOT NULL
);
CREATE INDEX webhook_attempts_by_webhook ON webhook_attempts (project_id, webhook_id, id DESC);
