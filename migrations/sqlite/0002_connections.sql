-- Provider connections, their sync jobs, and the events (workouts, sleep sessions) they bring.

CREATE TABLE connections (
    id                BLOB PRIMARY KEY,
    user_id           BLOB NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    provider          TEXT NOT NULL,
    -- active | error | reauth_required | disconnected
    status            TEXT NOT NULL,
    provider_user_id  TEXT,
    scopes            TEXT NOT NULL DEFAULT '',
    -- The token set, sealed with AES-256-GCM (never stored or returned in clear).
    tokens            TEXT,
    token_expires_at  INTEGER,
    -- Per-data-type sync progress (JSON object of RFC 3339 instants), written in the same
    -- transaction as the batch it covers.
    cursors           TEXT NOT NULL DEFAULT '{}',
    backfill_days     INTEGER NOT NULL,
    last_synced_at    INTEGER,
    last_error        TEXT,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    UNIQUE (user_id, provider)
);
CREATE INDEX connections_status ON connections (status);
CREATE INDEX connections_provider_account ON connections (provider, provider_user_id);

CREATE TABLE sync_jobs (
    id              BLOB PRIMARY KEY,
    connection_id   BLOB NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
    user_id         BLOB NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    -- backfill | schedule | manual | webhook
    trigger         TEXT NOT NULL,
    -- queued | running | succeeded | failed
    status          TEXT NOT NULL,
    range_from      INTEGER,
    range_to        INTEGER,
    inserted        INTEGER NOT NULL DEFAULT 0,
    updated         INTEGER NOT NULL DEFAULT 0,
    unchanged       INTEGER NOT NULL DEFAULT 0,
    events_written  INTEGER NOT NULL DEFAULT 0,
    error           TEXT,
    created_at      INTEGER NOT NULL,
    started_at      INTEGER,
    finished_at     INTEGER
);
CREATE INDEX sync_jobs_user_page ON sync_jobs (user_id, created_at, id);
CREATE INDEX sync_jobs_connection ON sync_jobs (connection_id, created_at);

CREATE TABLE events (
    id                 BLOB PRIMARY KEY,
    user_id            BLOB NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    provider           TEXT NOT NULL,
    provider_event_id  TEXT NOT NULL,
    -- workout | sleep
    type               TEXT NOT NULL,
    activity_type      TEXT,
    started_at         INTEGER NOT NULL,
    ended_at           INTEGER,
    local_date         TEXT NOT NULL,
    duration_s         REAL,
    distance_m         REAL,
    energy_kcal        REAL,
    avg_hr             REAL,
    max_hr             REAL,
    data               TEXT,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    UNIQUE (user_id, provider, provider_event_id)
);
CREATE INDEX events_user_time ON events (user_id, started_at DESC, id DESC);
