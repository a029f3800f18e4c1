-- The reserved project that holds the shared skills library (domain::guardrail::LIBRARY_PROJECT).
-- It always exists, so its memories have a project to belong to; every key may read it, nothing
-- writes it over MCP, and it is never listed or switched to (see knowledge::projects).
INSERT INTO projects (id, name, org, metadata, created_at, updated_at)
VALUES ('00000000-0000-4000-8000-6c6962726172', '(skills library)', NULL, '{}', now(), now())
ON CONFLICT (id) DO NOTHING;
