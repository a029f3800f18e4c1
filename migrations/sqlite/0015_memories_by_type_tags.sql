-- Reads filtered by type and tags check each memory's tags in the index, not in its row.
--
-- A filter on a type and a tag walks memories_by_type newest first and keeps those holding the
-- tag: at 100,000 memories, `rule` + `mobile` walks ~470 memories to keep 21. Each was a seek
-- into `memories`, whose rows (content, search text, a 1.5 KB vector) sit about one to a page,
-- so nearly every one was a page read: two thirds of a filter-only call's SQLite time
-- (`perf record`, README, Benchmark). With `tags` in the index SQLite reads them from the index
-- entry and seeks the row only for the memories it returns. Same order, same rows.
DROP INDEX memories_by_type;
CREATE INDEX memories_by_type ON memories (project_id, memory_type, created_at DESC, id DESC, tags)
    WHERE deleted_at IS NULL;
