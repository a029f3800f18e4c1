-- Reads filtered by memory type walk one type, newest first (as on Postgres, migration 0008).
CREATE INDEX memories_by_type ON memories (project_id, memory_type, created_at DESC, id DESC)
    WHERE deleted_at IS NULL;
