-- An inverted index of memory words that row-level security lets the planner use.
--
-- Under RLS a user condition can only become an index condition when its operator is LEAKPROOF,
-- and the full-text and array operators (`@@`, `@>`) are not: the GIN index on `search` is never
-- used by tenant queries, so every full-text search scans all of the project's memories (about
-- 100 ms at 100,000 memories). Equality on text and uuid is leakproof, so a table with one row
-- per (memory, lexeme) is searchable through a btree under the same policy. A trigger keeps it
-- in step with `search`: rebuilt when the title or content changes, emptied when a memory is
-- deleted, refilled when it is restored. `weight` is the lexeme's occurrences in the memory,
-- each counted as ts_rank_cd weighs it by default (1.0 in the title, 0.4 in the content).

CREATE TABLE memory_terms (
    memory_id   uuid NOT NULL REFERENCES memories(id) ON DELETE CASCADE,
    term        text NOT NULL,
    project_id  uuid NOT NULL,
    weight      real NOT NULL,
    PRIMARY KEY (memory_id, term)
);
CREATE INDEX memory_terms_lookup ON memory_terms (project_id, term) INCLUDE (memory_id, weight);

-- The lexemes of a memory's search vector, with their weights.
CREATE FUNCTION memory_terms_of(memory uuid, project uuid, search tsvector)
RETURNS TABLE (memory_id uuid, term text, project_id uuid, weight real)
LANGUAGE sql IMMUTABLE AS $$
    SELECT memory, u.lexeme, project,
           (SELECT sum(CASE w WHEN 'A' THEN 1.0 ELSE 0.4 END) FROM unnest(u.weights) w)::real
    FROM unnest(search) u
$$;

-- Filled from the existing memories as the tables' owner: FORCEd RLS would hide every row from
-- it (its policies are for codifier_tenant), so the force is lifted inside this transaction only.
ALTER TABLE memories NO FORCE ROW LEVEL SECURITY;
INSERT INTO memory_terms (memory_id, term, project_id, weight)
SELECT t.* FROM memories m, memory_terms_of(m.id, m.project_id, m.search) t
WHERE m.deleted_at IS NULL;
ALTER TABLE memories FORCE ROW LEVEL SECURITY;

CREATE FUNCTION memory_terms_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF OLD.search IS NOT DISTINCT FROM NEW.search
           AND (OLD.deleted_at IS NULL) = (NEW.deleted_at IS NULL) THEN
            RETURN NULL;
        END IF;
        DELETE FROM memory_terms WHERE memory_id = OLD.id;
    END IF;
    IF NEW.deleted_at IS NULL THEN
        INSERT INTO memory_terms (memory_id, term, project_id, weight)
        SELECT * FROM memory_terms_of(NEW.id, NEW.project_id, NEW.search);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER memory_terms_sync AFTER INSERT OR UPDATE OF title, content, deleted_at ON memories
    FOR EACH ROW EXECUTE FUNCTION memory_terms_sync();

GRANT SELECT, INSERT, DELETE ON memory_terms TO codifier_tenant;
ALTER TABLE memory_terms ENABLE ROW LEVEL SECURITY;
ALTER TABLE memory_terms FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_scope ON memory_terms TO codifier_tenant
    USING (project_id = nullif(current_setting('codifier.project_id', true), '')::uuid)
    WITH CHECK (project_id = nullif(current_setting('codifier.project_id', true), '')::uuid);
