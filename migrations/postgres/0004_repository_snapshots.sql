-- Repository snapshots made by the native packer (pack_repo).
-- `repositories` keeps one row per pack; its files are rows of `repository_files` (read in pages
-- with a file filter), a tenant table with the same forced row-level security as the others.
-- `token_counts` caches exact token counts by git blob id, so a re-pack of a mostly unchanged
-- repository tokenizes only what changed. It holds no text and no project: a count tells nothing
-- about a blob that its id (a hash of the text) does not, so it is shared and not a tenant table.

ALTER TABLE repositories ADD COLUMN encoding text;
ALTER TABLE repositories ADD COLUMN style text;
ALTER TABLE repositories ADD COLUMN total_bytes bigint NOT NULL DEFAULT 0;
ALTER TABLE repositories ADD COLUMN report jsonb NOT NULL DEFAULT '{}';
CREATE INDEX repositories_newest ON repositories (project_id, created_at DESC);

CREATE TABLE repository_files (
    snapshot_id  uuid NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    project_id   uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    ordinal      integer NOT NULL,
    path         text NOT NULL,
    blob_id      text NOT NULL,
    tokens       bigint NOT NULL,
    bytes        bigint NOT NULL,
    content      text NOT NULL,
    PRIMARY KEY (snapshot_id, ordinal)
);

GRANT SELECT, INSERT, UPDATE, DELETE ON repository_files TO codifier_tenant;
ALTER TABLE repository_files ENABLE ROW LEVEL SECURITY;
ALTER TABLE repository_files FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_scope ON repository_files TO codifier_tenant
    USING (project_id = nullif(current_setting('codifier.project_id', true), '')::uuid)
    WITH CHECK (project_id = nullif(current_setting('codifier.project_id', true), '')::uuid);

CREATE TABLE token_counts (
    blob_id   text NOT NULL,
    encoding  text NOT NULL,
    tokens    bigint NOT NULL,
    PRIMARY KEY (blob_id, encoding)
);
