-- Event ids never go back. `events.id` was a plain rowid: SQLite hands out max(id) + 1, so
-- once retention emptied the table (a quiet Dev account longer than storage.retention) new
-- events got ids at or below the watermarks of the evaluator, the rollup task and the
-- CloudWatch publisher, and were skipped until their ids passed the old maximum: budgets
-- stopped firing. With AUTOINCREMENT an id is never handed out twice (sqlite_sequence keeps
-- the highest one ever used), so `id > watermark` finds every event stored later.
--
-- SQLite cannot add AUTOINCREMENT to a table: it is rebuilt, rows and ids kept.
CREATE TABLE events_monotonic (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
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
INSERT INTO events_monotonic (id, time_ms, env, function, operation, source, duration_s, request_id, trace_id,
                              function_version, cold_start, error, attributes, idem_key, ingested_ms)
SELECT id, time_ms, env, function, operation, source, duration_s, request_id, trace_id,
       function_version, cold_start, error, attributes, idem_key, ingested_ms
FROM events;
-- Takes its indexes and the rowid-reuse trigger of 20261122000004 with it (not needed any more).
DROP TABLE events;
ALTER TABLE events_monotonic RENAME TO events;
CREATE INDEX events_request ON events (request_id) WHERE request_id IS NOT NULL;
CREATE INDEX events_trace ON events (trace_id) WHERE trace_id IS NOT NULL;
CREATE INDEX events_report ON events (time_ms, env, function, operation, source, duration_s, error, cold_start);

-- Start the sequence above every id a watermark may already have passed (an emptied table
-- may have handed out low ids again before this migration).
INSERT INTO sqlite_sequence (name, seq)
SELECT 'events', 0 WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'events');
UPDATE sqlite_sequence
SET seq = MAX(seq,
              COALESCE((SELECT MAX(last_event_id) FROM cloudwatch_published), 0),
              COALESCE((SELECT MAX(watermark_id) FROM rollup_state), 0))
WHERE name = 'events';
