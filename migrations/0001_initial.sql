-- Initial schema: workspaces, the application mirror, package metadata and share links.
-- Portable SQL: the same file runs on SQLite and PostgreSQL. Timestamps are RFC 3339 text,
-- ids are UUID text, documents are JSON text in the seed's camelCase shape.

CREATE TABLE workspaces (
    id TEXT PRIMARY KEY,
    token_sha256 TEXT NOT NULL,
    display_name TEXT NOT NULL DEFAULT 'My workspace',
    webvm_status TEXT,
    settings TEXT,
    schema_version BIGINT NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE applications (
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL,
    status TEXT NOT NULL,
    document TEXT NOT NULL,
    schema_version BIGINT NOT NULL DEFAULT 1,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (workspace_id, id),
    UNIQUE (workspace_id, name_key)
);

CREATE TABLE package_files (
    file_name TEXT PRIMARY KEY,
    package TEXT NOT NULL,
    version TEXT NOT NULL,
    architecture TEXT NOT NULL,
    control TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size_bytes BIGINT NOT NULL,
    installed_size_kib BIGINT NOT NULL,
    indexed_at TEXT NOT NULL
);

CREATE TABLE runtime_packages (
    id TEXT PRIMARY KEY,
    category TEXT NOT NULL,
    document TEXT NOT NULL,
    catalog_error TEXT,
    schema_version BIGINT NOT NULL DEFAULT 1,
    updated_at TEXT NOT NULL
);

CREATE TABLE workspace_packages (
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    package_id TEXT NOT NULL,
    status TEXT NOT NULL,
    document TEXT NOT NULL,
    schema_version BIGINT NOT NULL DEFAULT 1,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (workspace_id, package_id)
);

CREATE TABLE share_links (
    token_sha256 TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    application_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);

CREATE INDEX share_links_by_application ON share_links (workspace_id, application_id);
