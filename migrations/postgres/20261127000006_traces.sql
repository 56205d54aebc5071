-- X-Ray traces the pollers have seen (pending ones are fetched again), and each complete
-- trace's critical path: its shape once per distinct path (with the account and region the
-- trace came from), per trace only its self times (LEB128 varints of microseconds).
CREATE TABLE xray_traces (
    trace_id      TEXT PRIMARY KEY,
    state         TEXT NOT NULL,
    refetches     BIGINT NOT NULL DEFAULT 0,
    partial       BOOLEAN NOT NULL DEFAULT false,
    first_seen_ms BIGINT NOT NULL,
    updated_ms    BIGINT NOT NULL
);
CREATE INDEX xray_traces_pending ON xray_traces (trace_id) WHERE state = 'pending';
CREATE INDEX xray_traces_updated ON xray_traces (updated_ms);

CREATE TABLE path_shapes (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account   TEXT NOT NULL,
    region    TEXT NOT NULL,
    root_name TEXT NOT NULL,
    shape     TEXT NOT NULL,
    envs      TEXT NOT NULL,
    UNIQUE (root_name, shape, envs, account, region)
);

CREATE TABLE trace_attribution (
    id       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    trace_id TEXT NOT NULL UNIQUE,
    path     BIGINT NOT NULL,
    start_ms BIGINT NOT NULL,
    total_s  DOUBLE PRECISION NOT NULL,
    self_us  BYTEA,
    shares   TEXT
);
CREATE INDEX trace_attribution_path_start ON trace_attribution (path, start_ms);
CREATE INDEX trace_attribution_start ON trace_attribution (start_ms);
