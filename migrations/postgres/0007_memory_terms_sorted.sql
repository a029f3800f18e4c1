-- memory_terms' lookup index gains memory_id as a key column: each word's postings then come
-- out of the index in memory order, so intersecting several words is a merge or a probe of
-- sorted lists instead of hashing every posting (3× cheaper for three common words at 100,000
-- memories). It replaces memory_terms_lookup, which it covers.
CREATE INDEX memory_terms_sorted ON memory_terms (project_id, term, memory_id) INCLUDE (weight);
DROP INDEX memory_terms_lookup;
ANALYZE memory_terms;
