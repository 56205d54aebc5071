-- Current state of every (budget, env, function, operation) that is not inactive: a restart
-- neither re-fires nor forgets a firing alert.
CREATE TABLE alert_state (
    alert_key  TEXT    PRIMARY KEY,
    budget     TEXT    NOT NULL,
    env        TEXT    NOT NULL,
    function   TEXT    NOT NULL,
    operation  TEXT    NOT NULL,
    quantile   REAL    NOT NULL,
    phase      TEXT    NOT NULL,  -- JSON of evaluate::alert::Phase
    value_s    REAL,
    budget_s   REAL    NOT NULL,
    samples    INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
);

-- Every transition, for /api/v1/alerts?since= and reports.
CREATE TABLE alert_transitions (
    id         INTEGER PRIMARY KEY,
    time_ms    INTEGER NOT NULL,
    alert_key  TEXT    NOT NULL,
    budget     TEXT    NOT NULL,
    env        TEXT    NOT NULL,
    function   TEXT    NOT NULL,
    operation  TEXT    NOT NULL,
    quantile   REAL    NOT NULL,
    transition TEXT    NOT NULL,
    value_s    REAL,
    budget_s   REAL    NOT NULL,
    samples    INTEGER NOT NULL,
    severity   TEXT    NOT NULL
);
CREATE INDEX alert_transitions_time ON alert_transitions (time_ms);
