-- Hybrid search and additive writes.
--
-- Full text: an FTS5 index (porter stemming) over the title and `search_text`, the strings of the
-- content joined (computed by the server on every write), kept in step by triggers.
-- Vectors: little-endian f32 BLOBs with the model name and dimension that produced them.
-- Revisions: every update keeps the previous version of the memory.

ALTER TABLE memories ADD COLUMN search_text TEXT NOT NULL DEFAULT '';
ALTER TABLE memories ADD COLUMN embedding BLOB;
ALTER TABLE memories ADD COLUMN embedding_model TEXT;
ALTER TABLE memories ADD COLUMN embedding_dim INTEGER;

UPDATE memories SET search_text = COALESCE(
    (SELECT group_concat(value, char(10)) FROM json_tree(memories.content) WHERE type = 'text'), '');

CREATE VIRTUAL TABLE memories_fts USING fts5(
    title, search_text, content = 'memories', content_rowid = 'rowid', tokenize = 'porter unicode61'
);
INSERT INTO memories_fts (memories_fts) VALUES ('rebuild');

CREATE TRIGGER memories_fts_after_insert AFTER INSERT ON memories BEGIN
    INSERT INTO memories_fts (rowid, title, search_text) VALUES (new.rowid, new.title, new.search_text);
END;
CREATE TRIGGER memories_fts_after_delete AFTER DELETE ON memories BEGIN
    INSERT INTO memories_fts (memories_fts, rowid, title, search_text)
    VALUES ('delete', old.rowid, old.title, old.search_text);
END;
CREATE TRIGGER memories_fts_after_update AFTER UPDATE OF title, search_text ON memories BEGIN
    INSERT INTO memories_fts (memories_fts, rowid, title, search_text)
    VALUES ('delete', old.rowid, old.title, old.search_text);
    INSERT INTO memories_fts (rowid, title, search_text) VALUES (new.rowid, new.title, new.search_text);
END;

CREATE TABLE memory_revisions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    memory_id   TEXT NOT NULL REFERENCES memories(id) ON DELETE CASCADE,
    project_id  TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    revision    INTEGER NOT NULL,
    snapshot    TEXT NOT NULL,
    actor       TEXT NOT NULL,
    tool        TEXT,
    created_at  TEXT NOT NULL,
    UNIQUE (memory_id, revision)
);
