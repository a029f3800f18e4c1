-- Guardrail telemetry: one row per event of a project's working sessions (session_start,
-- guardrail_block, guardrail_override, sharp_edge_surfaced, escape_hatch_trigger, session_end).
-- `subject` is what the event is about (a check id, a pattern, a sharp edge id), the key its
-- counts group by; `key_id` is the API key that called (NULL for the operator or local user).

CREATE TABLE guardrail_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id  TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,
    tool        TEXT NOT NULL,
    key_id      TEXT,
    subject     TEXT NOT NULL DEFAULT '',
    severity    TEXT,
    detail      TEXT NOT NULL DEFAULT '{}',
    at          TEXT NOT NULL
);
CREATE INDEX guardrail_events_by_project ON guardrail_events (project_id, at);
