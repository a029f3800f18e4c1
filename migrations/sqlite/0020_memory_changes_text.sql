-- The change log (0010) also takes a row when a memory's title or text changes: the text half
-- remembers how many memories hold each word until the log moves (src/store/sqlite/word_search.rs),
-- and those are the columns FTS5 indexes. The server's own update sets the type and tags too, so
-- 0010's trigger fired already; this makes the log's promise hold for any update. The vector
-- cache re-reads such a row; nothing it holds changes.

DROP TRIGGER memory_changes_after_update;
CREATE TRIGGER memory_changes_after_update AFTER UPDATE OF project_id, memory_type, tags,
    created_at, deleted_at, embedding, embedding_model, embedding_dim, title, search_text
    ON memories BEGIN
    INSERT INTO memory_changes (memory_rowid) VALUES (new.rowid);
    DELETE FROM memory_changes WHERE seq <= (SELECT MAX(seq) FROM memory_changes) - 65536;
END;
