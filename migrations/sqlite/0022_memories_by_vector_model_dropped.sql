-- The background embedding's claim (src/store/sql/embeddings.rs) now reads only the memories
-- waiting for a vector, through memories_awaiting_vector (0021): when the configured model
-- changes, prepare_vectors clears the vectors of any other model, so those memories wait like
-- new ones. The second index of 0021 found them for the claim; nothing reads it now, and every
-- stored or cleared vector wrote to it.
DROP INDEX IF EXISTS memories_by_vector_model;
