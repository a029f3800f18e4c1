-- Hybrid search and additive writes.
--
-- Full text: a generated tsvector over the title (weight A) and every string in the content (B).
-- Vectors: `embedding` (untyped `vector`) with the model name and dimension that produced it;
-- the server creates one partial HNSW index per configured model at start
-- (`memories_hnsw_<dims>_<hash>`), since HNSW needs a fixed dimension.
-- Revisions: every update keeps the previous version of the memory.

ALTER TABLE memories ADD COLUMN search tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('english', title), 'A')
    || setweight(jsonb_to_tsvector('english', content, '["string"]'), 'B')
) STORED;
CREATE INDEX memories_search ON memories USING gin (search);
ALTER TABLE memories ADD COLUMN embedding_dim integer;
CREATE INDEX memories_missing_embedding ON memories (project_id) WHERE deleted_at IS NULL;

CREATE TABLE memory_revisions (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    memory_id   uuid NOT NULL REFERENCES memories(id) ON DELETE CASCADE,
    project_id  uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    revision    integer NOT NULL,
    snapshot    jsonb NOT NULL,
    actor       text NOT NULL,
    tool        text,
    created_at  timestamptz NOT NULL,
    UNIQUE (memory_id, revision)
);

GRANT SELECT, INSERT, UPDATE, DELETE ON memory_revisions TO codifier_tenant;
GRANT USAGE ON SEQUENCE memory_revisions_id_seq TO codifier_tenant;
ALTER TABLE memory_revisions ENABLE ROW LEVEL SECURITY;
ALTER TABLE memory_revisions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_scope ON memory_revisions TO codifier_tenant
    USING (project_id = nullif(current_setting('codifier.project_id', true), '')::uuid)
    WITH CHECK (project_id = nullif(current_setting('codifier.project_id', true), '')::uuid);
