-- The fleet: every daemon sharing this database renews its row; a node whose row expired
-- is gone (its leases too). Times are the database's clock, never a node's.
CREATE TABLE cluster_nodes (
    node_id    TEXT PRIMARY KEY,
    started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    renewed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL
);

-- One row per unit of work (a log group of an account and region, an X-Ray poller, the
-- evaluator, ...). Held by at most one live node; `epoch` grows at every change of hands and
-- fences a node that lost the lease: its writes check the epoch they were given.
CREATE TABLE leases (
    unit        TEXT PRIMARY KEY,
    holder      TEXT,
    epoch       BIGINT NOT NULL DEFAULT 0,
    expires_at  TIMESTAMPTZ,
    acquired_at TIMESTAMPTZ,
    -- Last time a node listed the unit as work that exists (a deleted log group stops being
    -- listed and its row goes after a while).
    seen_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX leases_holder ON leases (holder);
