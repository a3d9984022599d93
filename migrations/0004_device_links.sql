-- Cross-device access: a one-time link (stored hashed, expiring) opens a workspace in another
-- browser, which is then given a token of its own (stored hashed too). Portable between
-- SQLite and PostgreSQL.

CREATE TABLE device_links (
    token_sha256 TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    redeemed_at TEXT
);

CREATE TABLE workspace_devices (
    token_sha256 TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL
);
