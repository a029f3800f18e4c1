-- The background embedding's claim (src/store/sql/embeddings.rs) picks the oldest live memories
-- with no vector of the configured model. Without an index it walked past every memory embedded
-- before them: 27.5 ms a batch at 14,500 embedded, growing with the project. The first index
-- holds only the memories waiting for any vector (written, or changed since their vector), in
-- the order they are taken; the second finds the rare memories whose vector is of another model
-- (after the model was changed) without reading the others.
CREATE INDEX memories_awaiting_vector ON memories (project_id, created_at)
    WHERE deleted_at IS NULL AND embedding_model IS NULL;
CREATE INDEX memories_by_vector_model ON memories (project_id, embedding_model, embedding_dim)
    WHERE deleted_at IS NULL AND embedding_model IS NOT NULL;
