-- Playbook sessions: a revision counter (every save names the revision it was based on, so two
-- calls can never both advance a session), the last client input (so a retried call is
-- recognised and changes nothing), and what happened at each step.
-- The sessions table already has ENABLE + FORCE row-level security and the tenant_scope policy.

ALTER TABLE sessions ADD COLUMN revision bigint NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN step_results jsonb NOT NULL DEFAULT '{}';
ALTER TABLE sessions ADD COLUMN last_step_id text;
ALTER TABLE sessions ADD COLUMN last_input_digest text;
CREATE INDEX sessions_by_project ON sessions (project_id, updated_at DESC);
