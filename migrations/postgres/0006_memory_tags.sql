-- Tags as rows, for tag filters that row-level security lets the planner serve from an index.
--
-- Like `search @@` (see 0003), `tags @> ARRAY[...]` is not LEAKPROOF, so under RLS the GIN index
-- on `tags` is never used: a filter on a tag few memories carry walks every memory of the
-- project (about 2 s at 100,000 memories on a loaded machine). Equality on text and uuid is
-- leakproof, so one row per (memory, tag) is searchable through a btree under the same policy.
-- A trigger keeps it in step: rebuilt when the tags change, emptied when a memory is deleted,
-- refilled when it is restored.

CREATE TABLE memory_tags (
    memory_id   uuid NOT NULL REFERENCES memories(id) ON DELETE CASCADE,
    project_id  uuid NOT NULL,
    tag         text NOT NULL,
    PRIMARY KEY (memory_id, tag)
);
CREATE INDEX memory_tags_lookup ON memory_tags (project_id, tag, memory_id);

-- Filled from the existing memories as the tables' owner (FORCEd RLS lifted in this
-- transaction only, as in 0003).
ALTER TABLE memories NO FORCE ROW LEVEL SECURITY;
INSERT INTO memory_tags (memory_id, project_id, tag)
SELECT DISTINCT m.id, m.project_id, t.tag
FROM memories m, unnest(m.tags) AS t(tag)
WHERE m.deleted_at IS NULL;
ALTER TABLE memories FORCE ROW LEVEL SECURITY;
-- Statistics now, not at the next autovacuum: without them the planner cannot tell a rare tag
-- from a common one, and the first filtered reads after an upgrade pick slow plans.
ANALYZE memory_tags;

CREATE FUNCTION memory_tags_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF OLD.tags IS NOT DISTINCT FROM NEW.tags
           AND (OLD.deleted_at IS NULL) = (NEW.deleted_at IS NULL) THEN
            RETURN NULL;
        END IF;
        DELETE FROM memory_tags WHERE memory_id = OLD.id;
    END IF;
    IF NEW.deleted_at IS NULL THEN
        INSERT INTO memory_tags (memory_id, project_id, tag)
        SELECT DISTINCT NEW.id, NEW.project_id, t.tag FROM unnest(NEW.tags) AS t(tag);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER memory_tags_sync AFTER INSERT OR UPDATE OF tags, deleted_at ON memories
    FOR EACH ROW EXECUTE FUNCTION memory_tags_sync();

GRANT SELECT, INSERT, DELETE ON memory_tags TO codifier_tenant;
ALTER TABLE memory_tags ENABLE ROW LEVEL SECURITY;
ALTER TABLE memory_tags FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_scope ON memory_tags TO codifier_tenant
    USING (project_id = nullif(current_setting('codifier.project_id', true), '')::uuid)
    WITH CHECK (project_id = nullif(current_setting('codifier.project_id', true), '')::uuid);

-- The GIN indexes on `tags` and `search` served only the operators RLS keeps away from
-- indexes; with memory_tags and memory_terms nothing reads them, and every write paid for them.
DROP INDEX IF EXISTS memories_tags;
DROP INDEX IF EXISTS memories_search;
