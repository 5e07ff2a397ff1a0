-- A workspace's order of providers for choosing the source of a day's value when several
-- report the same metric (a JSON array of provider ids; empty = the default order).
ALTER TABLE workspaces ADD COLUMN provider_priority TEXT NOT NULL DEFAULT '[]';
