-- Repository snapshots made by the native packer (pack_repo).
-- `repositories` keeps one row per pack; its files are rows of `repository_files` (read in pages
-- with a file filter). `token_counts` caches exact token counts by git blob id, so a re-pack of
-- a mostly unchanged repository tokenizes only what changed; it holds no text.

ALTER TABLE repositories ADD COLUMN encoding TEXT;
ALTER TABLE repositories ADD COLUMN style TEXT;
ALTER TABLE repositories ADD COLUMN total_bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE repositories ADD COLUMN report TEXT NOT NULL DEFAULT '{}';
CREATE INDEX repositories_newest ON repositories (project_id, created_at DESC);

CREATE TABLE repository_files (
    snapshot_id  TEXT NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    project_id   TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    ordinal      INTEGER NOT NULL,
    path         TEXT NOT NULL,
    blob_id      TEXT NOT NULL,
    tokens       INTEGER NOT NULL,
    bytes        INTEGER NOT NULL,
    content      TEXT NOT NULL,
    PRIMARY KEY (snapshot_id, ordinal)
);

CREATE TABLE token_counts (
    blob_id   TEXT NOT NULL,
    encoding  TEXT NOT NULL,
    tokens    INTEGER NOT NULL,
    PRIMARY KEY (blob_id, encoding)
) WITHOUT ROWID;
