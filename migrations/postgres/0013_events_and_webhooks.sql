-- Events and webhooks. Every audit entry of a project is an event: `seq` numbers a project's
-- entries 1, 2, 3 … in commit order, from the project's row in `event_counters`, which the
-- writing transaction updates (and so holds locked) until it commits: a later number can never
-- commit before an earlier one, so a reader that has seen N has seen everything up to N.
-- Entries with no project (key management outside one) keep a NULL `seq` and are not events.
--
-- `webhooks` are a project's subscriptions (the signing secret is readable only inside the
-- project's transactions, never returned after creation). `webhook_deliveries` is the outbox:
-- one row per event and matching subscription, written in the event's transaction; the
-- deliverer leases due rows (FOR UPDATE SKIP LOCKED) so two servers never send the same
-- attempt. `webhook_attempts` logs each attempt. All four are tenant tables under RLS.

ALTER TABLE audit_log ADD COLUMN seq bigint;
CREATE UNIQUE INDEX audit_log_events ON audit_log (project_id, seq) WHERE seq IS NOT NULL;

CREATE TABLE event_counters (
    project_id  uuid PRIMARY KEY REFERENCES projects(id) ON DELETE CASCADE,
    seq         bigint NOT NULL
);

CREATE TABLE webhooks (
    id               uuid PRIMARY KEY,
    project_id       uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    url              text NOT NULL,
    event_types      text NOT NULL,
    secret           text NOT NULL,
    status           text NOT NULL DEFAULT 'active',
    disabled_reason  text,
    created_at       timestamptz NOT NULL
);
CREATE INDEX webhooks_by_project ON webhooks (project_id) WHERE status = 'active';

CREATE TABLE webhook_deliveries (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id    uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    webhook_id    uuid NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    event_id      bigint NOT NULL,
    attempts      integer NOT NULL DEFAULT 0,
    status        text NOT NULL DEFAULT 'pending',
    due_at        timestamptz NOT NULL,
    lease         uuid,
    leased_until  timestamptz,
    created_at    timestamptz NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (project_id, due_at) WHERE status = 'pending';

CREATE TABLE webhook_attempts (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id   uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    webhook_id   uuid NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    delivery_id  bigint NOT NULL REFERENCES webhook_deliveries(id) ON DELETE CASCADE,
    event_id     bigint NOT NULL,
    attempt      integer NOT NULL,
    status_code  integer,
    duration_ms  bigint NOT NULL,
    error        text,
    at           timestamptz NOT NULL
);
CREATE INDEX webhook_attempts_by_webhook ON webhook_attempts (project_id, webhook_id, id DESC);

GRANT SELECT, INSERT, UPDATE, DELETE ON event_counters, webhooks, webhook_deliveries, webhook_attempts TO codifier_tenant;
GRANT USAGE ON SEQUENCE webhook_deliveries_id_seq, webhook_attempts_id_seq TO codifier_tenant;

ALTER TABLE event_counters ENABLE ROW LEVEL SECURITY;
ALTER TABLE event_counters FORCE ROW LEVEL SECURITY;
ALTER TABLE webhooks ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhooks FORCE ROW LEVEL SECURITY;
ALTER TABLE webhook_deliveries ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_deliveries FORCE ROW LEVEL SECURITY;
ALTER TABLE webhook_attempts ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_attempts FORCE ROW LEVEL SECURITY;

CREATE POLICY tenant_scope ON event_counters TO codifier_tenant
    USING (project_id = nullif(current_setting('codifier.project_id', true), '')::uuid)
    WITH CHECK (project_id = nullif(current_setting('codifier.project_id', true), '')::uuid);
CREATE POLICY tenant_scope ON webhooks TO codifier_tenant
    USING (project_id = nullif(current_setting('codifier.project_id', true), '')::uuid)
    WITH CHECK (project_id = nullif(current_setting('codifier.project_id', true), '')::uuid);
CREATE POLICY tenant_scope ON webhook_deliveries TO codifier_tenant
    USING (project_id = nullif(current_setting('codifier.project_id', true), '')::uuid)
    WITH CHECK (project_id = nullif(current_setting('codifier.project_id', true), '')::uuid);
CREATE POLICY tenant_scope ON webhook_attempts TO codifier_tenant
    USING (project_id = nullif(current_setting('codifier.project_id', true), '')::uuid)
    WITH CHECK (project_id = nullif(current_setting('codifier.project_id', true), '')::uuid);
