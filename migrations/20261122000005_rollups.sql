-- Rollups: per (env, function, operation, source) and period (an hour, or a day merged
-- from its 24 hours), the count, sum, extremes, error/cold-start/timeout counts and a
-- mergeable quantile sketch (`crate::sketch::Sketch::encode`). Kept for
-- `storage.rollup_retention`; long-range reports read them instead of raw events.
CREATE TABLE rollups (
    res_s       INTEGER NOT NULL,
    start_ms    INTEGER NOT NULL,
    env         TEXT    NOT NULL,
    function    TEXT    NOT NULL,
    operation   TEXT    NOT NULL,
    source      TEXT    NOT NULL,
    count       INTEGER NOT NULL,
    sum         REAL    NOT NULL,
    min         REAL    NOT NULL,
    max         REAL    NOT NULL,
    errors      INTEGER NOT NULL,
    cold_starts INTEGER NOT NULL,
    timeouts    INTEGER NOT NULL,
    sketch      BLOB    NOT NULL,
    PRIMARY KEY (res_s, start_ms, env, function, operation, source)
);
CREATE INDEX rollups_series ON rollups (operation, function, env, res_s, start_ms);

-- Which periods have been rolled (an empty hour too), so a report knows what rollups cover.
CREATE TABLE rollup_periods (
    res_s       INTEGER NOT NULL,
    start_ms    INTEGER NOT NULL,
    series      INTEGER NOT NULL,
    computed_ms INTEGER NOT NULL,
    PRIMARY KEY (res_s, start_ms)
);

-- Where the rollup task is: hours before `closed_until_ms` are rolled; events ingested
-- since `watermark_ms` may belong to an hour that must be rolled again.
CREATE TABLE rollup_state (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    closed_until_ms INTEGER NOT NULL,
    watermark_ms    INTEGER NOT NULL,
    updated_ms      INTEGER NOT NULL
);

-- Finds the hours late events landed in without scanning the table.
CREATE INDEX events_ingested ON events (ingested_ms);

-- Reports read a time range's events from this index alone (no lookup into the table per
-- event: a report over an hour of a million events reads one stretch of index pages).
-- It starts with time_ms, so it serves every query events_time served, which goes.
CREATE INDEX events_report ON events (time_ms, env, function, operation, source, duration_s, error, cold_start);
DROP INDEX events_time;
