-- Rollups belong to an account and a region, like the series they sum. Rows rolled before
-- belong to the default origin.
CREATE TABLE rollups_scoped (
    res_s       INTEGER NOT NULL,
    start_ms    INTEGER NOT NULL,
    account     TEXT    NOT NULL,
    region      TEXT    NOT NULL,
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
    PRIMARY KEY (res_s, start_ms, account, region, env, function, operation, source)
);
INSERT INTO rollups_scoped
SELECT res_s, start_ms, 'default', '', env, function, operation, source, count, sum, min, max, errors, cold_starts, timeouts, sketch FROM rollups;
DROP TABLE rollups;
ALTER TABLE rollups_scoped RENAME TO rollups;
CREATE INDEX rollups_series ON rollups (operation, function, env, res_s, start_ms);
