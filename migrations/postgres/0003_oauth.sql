-- Pending OAuth authorizations, shared by every replica. Single use: completing a flow deletes
-- the row in the same statement that reads it.
CREATE TABLE oauth_states (
    state_hash            TEXT PRIMARY KEY,
    workspace_id          UUID NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    user_id               UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    provider              TEXT NOT NULL,
    pkce_verifier         TEXT,
    return_url            TEXT,
    backfill_days         INTEGER,
    created_at            TIMESTAMPTZ NOT NULL,
    expires_at            TIMESTAMPTZ NOT NULL
);
CREATE INDEX oauth_states_expiry ON oauth_states (expires_at);

-- Jobs name their provider so a job listing needs no join.
ALTER TABLE sync_jobs ADD COLUMN provider TEXT NOT NULL DEFAULT '';
