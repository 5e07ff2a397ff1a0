-- Foundation schema for the embedded SQLite store.
-- Ids are 16-byte UUID blobs; instants are INTEGER microseconds since the Unix epoch (UTC),
-- so ordering and cursor comparisons are exact; calendar dates are 'YYYY-MM-DD' text.

CREATE TABLE workspaces (
    id          BLOB PRIMARY KEY,
    slug        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

CREATE TABLE api_keys (
    id            BLOB PRIMARY KEY,
    workspace_id  BLOB NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    prefix        TEXT NOT NULL,
    key_hash      TEXT NOT NULL UNIQUE,
    scopes        TEXT NOT NULL,
    expires_at    INTEGER,
    revoked_at    INTEGER,
    last_used_at  INTEGER,
    created_at    INTEGER NOT NULL
);
CREATE INDEX api_keys_workspace_page ON api_keys (workspace_id, created_at, id);

CREATE TABLE users (
    id            BLOB PRIMARY KEY,
    workspace_id  BLOB NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    external_id   TEXT NOT NULL,
    email         TEXT,
    display_name  TEXT,
    timezone      TEXT,
    metadata      TEXT NOT NULL DEFAULT '{}',
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    UNIQUE (workspace_id, external_id)
);
CREATE INDEX users_workspace_page ON users (workspace_id, created_at, id);

CREATE TABLE samples (
    id                  BLOB PRIMARY KEY,
    user_id             BLOB NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    provider            TEXT NOT NULL,
    metric              TEXT NOT NULL,
    value               REAL NOT NULL,
    unit                TEXT NOT NULL,
    recorded_at         INTEGER NOT NULL,
    local_date          TEXT NOT NULL,
    utc_offset_minutes  INTEGER NOT NULL,
    source              TEXT,
    data                TEXT,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    UNIQUE (user_id, provider, metric, recorded_at)
);
-- Newest-first listing, with and without a metric filter; (time, id) is the cursor order.
CREATE INDEX samples_user_time ON samples (user_id, recorded_at DESC, id DESC);
CREATE INDEX samples_user_metric_time ON samples (user_id, metric, recorded_at DESC, id DESC);
-- Daily aggregates and summaries by calendar date.
CREATE INDEX samples_user_metric_date ON samples (user_id, metric, local_date, provider);
