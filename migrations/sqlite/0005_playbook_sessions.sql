-- Playbook sessions: a revision counter (every save names the revision it was based on, so two
-- calls can never both advance a session), the last client input (so a retried call is
-- recognised and changes nothing), and what happened at each step.

ALTER TABLE sessions ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN step_results TEXT NOT NULL DEFAULT '{}';
ALTER TABLE sessions ADD COLUMN last_step_id TEXT;
ALTER TABLE sessions ADD COLUMN last_input_digest TEXT;
CREATE INDEX sessions_by_project ON sessions (project_id, updated_at DESC);
