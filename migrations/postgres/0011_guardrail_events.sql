-- Guardrail telemetry: one row per event of a project's working sessions (session_start,
-- guardrail_block, guardrail_override, sharp_edge_surfaced, escape_hatch_trigger, session_end).
-- `subject` is what the event is about (a check id, a pattern, a sharp edge id), the key its
-- counts group by; `key_id` is the API key that called (NULL for the operator or local user).
-- A tenant table: row-level security confines each project's transactions to its own events.

CREATE TABLE guardrail_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id  uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    kind        text NOT NULL,
    tool        text NOT NULL,
    key_id      uuid,
    subject     text NOT NULL DEFAULT '',
    severity    text,
    detail      jsonb NOT NULL DEFAULT '{}',
    at          timestamptz NOT NULL
);
CREATE INDEX guardrail_events_by_project ON guardrail_events (project_id, at);

GRANT SELECT, INSERT ON guardrail_events TO codifier_tenant;
GRANT USAGE ON SEQUENCE guardrail_events_id_seq TO codifier_tenant;

ALTER TABLE guardrail_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE guardrail_events FORCE ROW LEVEL SECURITY;

CREATE POLICY tenant_scope ON guardrail_events TO codifier_tenant
    USING (project_id = nullif(current_setting('codifier.project_id', true), '')::uuid)
    WITH CHECK (project_id = nullif(current_setting('codifier.project_id', true), '')::uuid);
