-- Rollups: per series (account, region, env, function, operation, source) and period (an
-- hour, or a day merged from its 24 hours) the counts, extremes and a mergeable quantile
-- sketch; which periods are rolled; where the rollup task is.
CREATE TABLE rollups (
    res_s       BIGINT NOT NULL,
    start_ms    BIGINT NOT NULL,
    account     TEXT NOT NULL,
    region      TEXT NOT NULL,
    env         TEXT NOT NULL,
    function    TEXT NOT NULL,
    operation   TEXT NOT NULL,
    source      TEXT NOT NULL,
    count       BIGINT NOT NULL,
    sum         DOUBLE PRECISION NOT NULL,
    min         DOUBLE PRECISION NOT NULL,
    max         DOUBLE PRECISION NOT NULL,
    errors      BIGINT NOT NULL,
    cold_starts BIGINT NOT NULL,
    timeouts    BIGINT NOT NULL,
    sketch      BYTEA NOT NULL,
    PRIMARY KEY (res_s, start_ms, account, region, env, function, operation, source)
);
CREATE INDEX rollups_series ON rollups (operation, function, env, res_s, start_ms);

CREATE TABLE rollup_periods (
    res_s       BIGINT NOT NULL,
    start_ms    BIGINT NOT NULL,
    series      BIGINT NOT NULL,
    computed_ms BIGINT NOT NULL,
    PRIMARY KEY (res_s, start_ms)
);

CREATE TABLE rollup_state (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    closed_until_ms BIGINT NOT NULL,
    watermark_id    BIGINT NOT NULL,
    updated_ms      BIGINT NOT NULL
);
