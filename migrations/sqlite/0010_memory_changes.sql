-- A log of the memory changes the in-process vector cache must see (src/store/sqlite/vectors.rs):
-- every insert and delete, and every update of what a vector search reads or filters on. Each
-- server process reads the log's last sequence number before a vector search and re-reads only
-- the rows changed since, so writes by another process on the same file are seen at once.
-- The triggers keep the last 65,536 changes; a cache further behind reloads.

CREATE TABLE memory_changes (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    memory_rowid  INTEGER NOT NULL
);

CREATE TRIGGER memory_changes_after_insert AFTER INSERT ON memories BEGIN
    INSERT INTO memory_changes (memory_rowid) VALUES (new.rowid);
    DELETE FROM memory_changes WHERE seq <= (SELECT MAX(seq) FROM memory_changes) - 65536;
END;
CREATE TRIGGER memory_changes_after_update AFTER UPDATE OF project_id, memory_type, tags,
    created_at, deleted_at, embedding, embedding_model, embedding_dim ON memories BEGIN
    INSERT INTO memory_changes (memory_rowid) VALUES (new.rowid);
    DELETE FROM memory_changes WHERE seq <= (SELECT MAX(seq) FROM memory_changes) - 65536;
END;
CREATE TRIGGER memory_changes_after_delete AFTER DELETE ON memories BEGIN
    INSERT INTO memory_changes (memory_rowid) VALUES (old.rowid);
    DELETE FROM memory_changes WHERE seq <= (SELECT MAX(seq) FROM memory_changes) - 65536;
END;
