-- Learned baselines start after a reset: `latency-sentinel baseline reset` acknowledges a
-- change that is for good (a deploy that made an operation slower on purpose), so the
-- operation is judged only against what came after it.
CREATE TABLE baseline_resets (
    function  TEXT NOT NULL,
    operation TEXT NOT NULL,
    reset_ms  INTEGER NOT NULL,
    PRIMARY KEY (function, operation)
) WITHOUT ROWID;
