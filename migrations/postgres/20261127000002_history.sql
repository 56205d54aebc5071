-- The shared history: what the SQLite store keeps, in PostgreSQL's terms. Ids are identity
-- columns, handed out in commit order for events (writers take an advisory lock for the
-- insert: readers follow ids with watermarks), never reused.
CREATE TABLE series (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account   TEXT NOT NULL,
    region    TEXT NOT NULL,
    env       TEXT NOT NULL,
    function  TEXT NOT NULL,
    operation TEXT NOT NULL,
    source    TEXT NOT NULL,
    UNIQUE (account, region, env, function, operation, source)
);

-- One row per timing event: flags 1 error, 2 cold start, 4 timeout; `key` a 47-bit hash of
-- the idempotency key (unique with the time: re-ingestion stores nothing twice).
CREATE TABLE events (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    time_ms    BIGINT NOT NULL,
    series     BIGINT NOT NULL REFERENCES series (id),
    duration_s DOUBLE PRECISION NOT NULL,
    flags      SMALLINT NOT NULL DEFAULT 0,
    key        BIGINT NOT NULL,
    request_id TEXT,
    trace_id   TEXT,
    attributes JSONB,
    UNIQUE (time_ms, key)
);
-- Events arrive roughly in time order: a block range index answers time ranges for a
-- fraction of a B-tree's size.
CREATE INDEX events_time ON events USING brin (time_ms);
CREATE INDEX events_request ON events (request_id, time_ms) WHERE request_id IS NOT NULL;

CREATE TABLE checkpoints (
    source      TEXT   NOT NULL,
    key         TEXT   NOT NULL,
    position_ms BIGINT NOT NULL,
    state       TEXT,
    updated_ms  BIGINT NOT NULL,
    PRIMARY KEY (source, key)
);

CREATE TABLE stream_state (
    log_group  TEXT   NOT NULL,
    stream     TEXT   NOT NULL,
    state      TEXT   NOT NULL,
    updated_ms BIGINT NOT NULL,
    PRIMARY KEY (log_group, stream)
);

CREATE TABLE rejected (
    id      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    seen_ms BIGINT NOT NULL,
    time_ms BIGINT NOT NULL,
    source  TEXT   NOT NULL,
    origin  TEXT   NOT NULL,
    reason  TEXT   NOT NULL,
    detail  TEXT   NOT NULL,
    raw     TEXT   NOT NULL,
    UNIQUE (source, origin, reason)
);
CREATE INDEX rejected_time ON rejected (time_ms);
