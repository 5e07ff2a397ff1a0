-- Foundation schema for PostgreSQL.

CREATE TABLE workspaces (
    id          UUID PRIMARY KEY,
    slug        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE api_keys (
    id            UUID PRIMARY KEY,
    workspace_id  UUID NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    prefix        TEXT NOT NULL,
    key_hash      TEXT NOT NULL UNIQUE,
    scopes        TEXT NOT NULL,
    expires_at    TIMESTAMPTZ,
    revoked_at    TIMESTAMPTZ,
    last_used_at  TIMESTAMPTZ,
    created_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX api_keys_workspace_page ON api_keys (workspace_id, created_at, id);

CREATE TABLE users (
    id            UUID PRIMARY KEY,
    workspace_id  UUID NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    external_id   TEXT NOT NULL,
    email         TEXT,
    display_name  TEXT,
    timezone      TEXT,
    metadata      JSONB NOT NULL DEFAULT '{}'::jsonb,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    UNIQUE (workspace_id, external_id)
);
CREATE INDEX users_workspace_page ON users (workspace_id, created_at, id);

CREATE TABLE samples (
    id                  UUID PRIMARY KEY,
    user_id             UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    provider            TEXT NOT NULL,
    metric              TEXT NOT NULL,
    value               DOUBLE PRECISION NOT NULL,
    unit                TEXT NOT NULL,
    recorded_at         TIMESTAMPTZ NOT NULL,
    local_date          DATE NOT NULL,
    utc_offset_minutes  INTEGER NOT NULL,
    source              TEXT,
    data                JSONB,
    created_at          TIMESTAMPTZ NOT NULL,
    updated_at          TIMESTAMPTZ NOT NULL,
    UNIQUE (user_id, provider, metric, recorded_at)
);
CREATE INDEX samples_user_time ON samples (user_id, recorded_at DESC, id DESC);
CREATE INDEX samples_user_metric_time ON samples (user_id, metric, recorded_at DESC, id DESC);
CREATE INDEX samples_user_metric_date ON samples (user_id, metric, local_date, provider);
