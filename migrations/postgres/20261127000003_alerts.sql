-- Alert state (every alert not inactive: a restart, or another node taking the evaluator
-- over, neither re-fires nor forgets one) and every transition.
CREATE TABLE alert_state (
    alert_key  TEXT PRIMARY KEY,
    budget     TEXT NOT NULL,
    account    TEXT NOT NULL,
    region     TEXT NOT NULL,
    env        TEXT NOT NULL,
    function   TEXT NOT NULL,
    operation  TEXT NOT NULL,
    quantile   DOUBLE PRECISION NOT NULL,
    phase      TEXT NOT NULL,
    value_s    DOUBLE PRECISION,
    budget_s   DOUBLE PRECISION NOT NULL,
    samples    BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL
);

CREATE TABLE alert_transitions (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    time_ms    BIGINT NOT NULL,
    alert_key  TEXT NOT NULL,
    budget     TEXT NOT NULL,
    account    TEXT NOT NULL,
    region     TEXT NOT NULL,
    env        TEXT NOT NULL,
    function   TEXT NOT NULL,
    operation  TEXT NOT NULL,
    quantile   DOUBLE PRECISION NOT NULL,
    transition TEXT NOT NULL,
    value_s    DOUBLE PRECISION,
    budget_s   DOUBLE PRECISION NOT NULL,
    samples    BIGINT NOT NULL,
    severity   TEXT NOT NULL
);
CREATE INDEX alert_transitions_time ON alert_transitions (time_ms);
