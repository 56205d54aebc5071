-- Learned baselines start after a reset (see the SQLite migration of the same name).
CREATE TABLE baseline_resets (
    function  TEXT NOT NULL,
    operation TEXT NOT NULL,
    reset_ms  BIGINT NOT NULL,
    PRIMARY KEY (function, operation)
);
