-- Public status pages: share links may expire; the VM's tab reports each app's status (the
-- workspace's heartbeat), and a sample is kept when something changed or every 5 minutes,
-- for 30 days (domain::status_page). Portable between SQLite and PostgreSQL.

ALTER TABLE share_links ADD COLUMN expires_at TEXT;

ALTER TABLE workspaces ADD COLUMN last_heartbeat TEXT;

CREATE TABLE app_status_samples (
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    application_id TEXT NOT NULL,
    sampled_at TEXT NOT NULL,
    status TEXT NOT NULL,
    health TEXT NOT NULL,
    response_ms DOUBLE PRECISION NOT NULL,
    request_count BIGINT NOT NULL,
    restart_count BIGINT NOT NULL,
    last_deployed TEXT NOT NULL,
    PRIMARY KEY (workspace_id, application_id, sampled_at)
);
