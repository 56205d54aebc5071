-- X-Ray traces the poller has seen. `pending` ones (in progress, partial, or not yet
-- processed by X-Ray) are fetched again on later polls, `refetches` counting the tries;
-- the others are done (`complete`, `incomplete` = stored as they were after the last try,
-- `missing` = never returned) and are not fetched again when an overlapping window lists
-- them. Written in the same transaction as the checkpoint, so a restart keeps them.
CREATE TABLE xray_traces (
    trace_id      TEXT    PRIMARY KEY,
    state         TEXT    NOT NULL,
    refetches     INTEGER NOT NULL DEFAULT 0,
    partial       INTEGER NOT NULL DEFAULT 0,
    first_seen_ms INTEGER NOT NULL,
    updated_ms    INTEGER NOT NULL
);
CREATE INDEX xray_traces_pending ON xray_traces (trace_id) WHERE state = 'pending';
CREATE INDEX xray_traces_updated ON xray_traces (updated_ms);

-- Where each complete trace's time went: its critical path, each node's self time by
-- (function, operation), as JSON (`crate::critical_path::PathShare` list).
CREATE TABLE trace_attribution (
    trace_id   TEXT    PRIMARY KEY,
    root_name  TEXT    NOT NULL,
    start_ms   INTEGER NOT NULL,
    total_s    REAL    NOT NULL,
    shares     TEXT    NOT NULL,
    updated_ms INTEGER NOT NULL
);
CREATE INDEX trace_attribution_root_start ON trace_attribution (root_name, start_ms);
CREATE INDEX trace_attribution_start ON trace_attribution (start_ms);
