-- Timing events: one row per AWS observation; idem_key makes re-ingestion a no-op.
CREATE TABLE events (
    id               INTEGER PRIMARY KEY,
    time_ms          INTEGER NOT NULL,
    env              TEXT    NOT NULL,
    function         TEXT    NOT NULL,
    operation        TEXT    NOT NULL,
    source           TEXT    NOT NULL,
    duration_s       REAL    NOT NULL,
    request_id       TEXT,
    trace_id         TEXT,
    function_version TEXT,
    cold_start       INTEGER NOT NULL DEFAULT 0,
    error            INTEGER NOT NULL DEFAULT 0,
    attributes       TEXT,
    idem_key         TEXT    NOT NULL UNIQUE,
    ingested_ms      INTEGER NOT NULL
);
CREATE INDEX events_time ON events (time_ms);
CREATE INDEX events_series_time ON events (operation, function, env, time_ms);
CREATE INDEX events_request ON events (request_id) WHERE request_id IS NOT NULL;
CREATE INDEX events_trace ON events (trace_id) WHERE trace_id IS NOT NULL;

-- One row per source position; written in the same transaction as the events it covers.
CREATE TABLE checkpoints (
    source      TEXT    NOT NULL,
    key         TEXT    NOT NULL,
    position_ms INTEGER NOT NULL,
    state       TEXT,
    updated_ms  INTEGER NOT NULL,
    PRIMARY KEY (source, key)
);

-- Open invocation per log stream (seed lines carry no request id: START gives it).
CREATE TABLE stream_state (
    log_group  TEXT    NOT NULL,
    stream     TEXT    NOT NULL,
    state      TEXT    NOT NULL,
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (log_group, stream)
);

-- Inputs that could not be parsed, capped, kept for inspection, expired with retention.
CREATE TABLE rejected (
    id      INTEGER PRIMARY KEY,
    seen_ms INTEGER NOT NULL,
    time_ms INTEGER NOT NULL,
    source  TEXT    NOT NULL,
    origin  TEXT    NOT NULL,
    reason  TEXT    NOT NULL,
    detail  TEXT    NOT NULL,
    raw     TEXT    NOT NULL,
    UNIQUE (source, origin, reason)
);
CREATE INDEX rejected_time ON rejected (time_ms);
