-- Provider connections, their sync jobs, and the events (workouts, sleep sessions) they bring.

CREATE TABLE connections (
    id                UUID PRIMARY KEY,
    user_id           UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    provider          TEXT NOT NULL,
    status            TEXT NOT NULL CHECK (status IN ('active', 'error', 'reauth_required', 'disconnected')),
    provider_user_id  TEXT,
    scopes            TEXT NOT NULL DEFAULT '',
    tokens            TEXT,
    token_expires_at  TIMESTAMPTZ,
    cursors           JSONB NOT NULL DEFAULT '{}'::jsonb,
    backfill_days     INTEGER NOT NULL,
    last_synced_at    TIMESTAMPTZ,
    last_error        TEXT,
    created_at        TIMESTAMPTZ NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL,
    UNIQUE (user_id, provider)
);
CREATE INDEX connections_status ON connections (status);
CREATE INDEX connections_provider_account ON connections (provider, provider_user_id);

CREATE TABLE sync_jobs (
    id              UUID PRIMARY KEY,
    connection_id   UUID NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
    user_id         UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    trigger         TEXT NOT NULL CHECK (trigger IN ('backfill', 'schedule', 'manual', 'webhook')),
    status          TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
    range_from      TIMESTAMPTZ,
    range_to        TIMESTAMPTZ,
    inserted        BIGINT NOT NULL DEFAULT 0,
    updated         BIGINT NOT NULL DEFAULT 0,
    unchanged       BIGINT NOT NULL DEFAULT 0,
    events_written  BIGINT NOT NULL DEFAULT 0,
    error           TEXT,
    created_at      TIMESTAMPTZ NOT NULL,
    started_at      TIMESTAMPTZ,
    finished_at     TIMESTAMPTZ
);
CREATE INDEX sync_jobs_user_page ON sync_jobs (user_id, created_at, id);
CREATE INDEX sync_jobs_connection ON sync_jobs (connection_id, created_at);

CREATE TABLE events (
    id                 UUID PRIMARY KEY,
    user_id            UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    provider           TEXT NOT NULL,
    provider_event_id  TEXT NOT NULL,
    type               TEXT NOT NULL CHECK (type IN ('workout', 'sleep')),
    activity_type      TEXT,
    started_at         TIMESTAMPTZ NOT NULL,
    ended_at           TIMESTAMPTZ,
    local_date         DATE NOT NULL,
    duration_s         DOUBLE PRECISION,
    distance_m         DOUBLE PRECISION,
    energy_kcal        DOUBLE PRECISION,
    avg_hr             DOUBLE PRECISION,
    max_hr             DOUBLE PRECISION,
    data               JSONB,
    created_at         TIMESTAMPTZ NOT NULL,
    updated_at         TIMESTAMPTZ NOT NULL,
    UNIQUE (user_id, provider, provider_event_id)
);
CREATE INDEX events_user_time ON events (user_id, started_at DESC, id DESC);
