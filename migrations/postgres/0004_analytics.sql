-- Materialised analytics: written only by the materializer from the dataflow's output deltas
-- (upserts and deletes), read by the API and the MCP server. Keys are typed for filtering and
-- paging; each row's statistics travel as one JSON body. Anomaly acknowledgement is user state
-- and lives apart, so recomputation never loses it.

CREATE TABLE analytics_baselines (
    user_id      UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    metric       TEXT NOT NULL,
    window_days  INTEGER NOT NULL,
    as_of_date   DATE NOT NULL,
    body         JSONB NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, metric, window_days)
);

CREATE TABLE analytics_anomalies (
    id           UUID PRIMARY KEY,
    user_id      UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    metric       TEXT NOT NULL,
    date         DATE NOT NULL,
    method       TEXT NOT NULL,
    severity     TEXT NOT NULL,
    body         JSONB NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX analytics_anomalies_user_date ON analytics_anomalies (user_id, date, id);

CREATE TABLE anomaly_status (
    anomaly_id   UUID PRIMARY KEY,
    user_id      UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    status       TEXT NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL
);

CREATE TABLE analytics_correlations (
    user_id      UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    metric_a     TEXT NOT NULL,
    metric_b     TEXT NOT NULL,
    lag_days     INTEGER NOT NULL,
    abs_r        DOUBLE PRECISION NOT NULL,
    body         JSONB NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, metric_a, metric_b, lag_days)
);

CREATE TABLE health_scores (
    user_id      UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    date         DATE NOT NULL,
    body         JSONB NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, date)
);

CREATE TABLE personal_records (
    user_id      UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    metric       TEXT NOT NULL,
    kind         TEXT NOT NULL,
    body         JSONB NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, metric, kind)
);
