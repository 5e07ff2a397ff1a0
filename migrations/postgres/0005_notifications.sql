-- Per-user notification channels and rules, the log of every delivery attempt, and the
-- workspace's outbound webhooks with their durable delivery queue.

-- A channel's whole config is sealed with the key ring; `config_public` is its masked form,
-- the only one the API ever returns.
CREATE TABLE notification_channels (
    id             UUID PRIMARY KEY,
    workspace_id   UUID NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    user_id        UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind           TEXT NOT NULL,
    name           TEXT NOT NULL,
    config_sealed  TEXT NOT NULL,
    config_public  TEXT NOT NULL,
    enabled        BOOLEAN NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL
);
CREATE INDEX notification_channels_user ON notification_channels (user_id, created_at, id);

CREATE TABLE notification_rules (
    id             UUID PRIMARY KEY,
    workspace_id   UUID NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    user_id        UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    channel_ids    TEXT NOT NULL,
    categories     TEXT NOT NULL,
    min_severity   TEXT NOT NULL,
    enabled        BOOLEAN NOT NULL,
    quiet_start    TEXT,
    quiet_end      TEXT,
    hourly_cap     INTEGER,
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL
);
CREATE INDEX notification_rules_user ON notification_rules (user_id, created_at, id);

-- One row per (rule, channel, event) ever dispatched: inserting it is the claim that makes a
-- notification at-most-once, and the rows of the last hour count against a rule's cap.
CREATE TABLE notification_dispatches (
    rule_id        UUID NOT NULL REFERENCES notification_rules(id) ON DELETE CASCADE,
    channel_id     UUID NOT NULL REFERENCES notification_channels(id) ON DELETE CASCADE,
    event_id       UUID NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (rule_id, channel_id, event_id)
);
CREATE INDEX notification_dispatches_rule_time ON notification_dispatches (rule_id, created_at);

-- Every attempt, successful or not (rule_id is null for a channel's test message).
CREATE TABLE notification_logs (
    id             UUID PRIMARY KEY,
    workspace_id   UUID NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    user_id        UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    channel_id     UUID NOT NULL REFERENCES notification_channels(id) ON DELETE CASCADE,
    rule_id        UUID,
    event_id       UUID NOT NULL,
    event_type     TEXT NOT NULL,
    status         TEXT NOT NULL,
    response_code  INTEGER,
    error          TEXT,
    latency_ms     BIGINT NOT NULL,
    attempt        INTEGER NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL
);
CREATE INDEX notification_logs_user ON notification_logs (user_id, created_at, id);

CREATE TABLE webhooks (
    id             UUID PRIMARY KEY,
    workspace_id   UUID NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    url            TEXT NOT NULL,
    events         TEXT NOT NULL,
    description    TEXT,
    secret_sealed  TEXT NOT NULL,
    enabled        BOOLEAN NOT NULL,
    failing_since  TIMESTAMPTZ,
    disabled_reason TEXT,
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL
);
CREATE INDEX webhooks_workspace ON webhooks (workspace_id, created_at, id);

-- The durable queue: a delivery is stored before its first attempt, so a restart resumes it.
-- (webhook, event) is unique, which makes enqueueing an event twice harmless.
CREATE TABLE webhook_deliveries (
    id              UUID PRIMARY KEY,
    webhook_id      UUID NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    workspace_id    UUID NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    event_id        UUID NOT NULL,
    event_type      TEXT NOT NULL,
    payload         TEXT NOT NULL,
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL,
    next_attempt_at TIMESTAMPTZ,
    response_code   INTEGER,
    error           TEXT,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    delivered_at    TIMESTAMPTZ,
    UNIQUE (webhook_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (webhook_id, created_at, id);
