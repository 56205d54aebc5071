-- Events in about a third of the space (README, "Storage"). Each row keeps only what is its
-- own: time, series number, duration (in microseconds when that is exact), flags (1 error, 2 cold start, 4 timeout), a 47-bit
-- hash of its idempotency key, and the numbers of its invocation and of its attribute set.
-- What an invocation's events share (request id, trace id, as 16 bytes when they have AWS's
-- form) is stored once in `invocations`; attribute sets once in `attribute_sets`.
--
-- Rows are kept in id order (commit order, which the evaluator, the rollup task and the
-- CloudWatch publisher read by); `event_blocks` keeps the time span of every 1024 ids, so a
-- time range reads the blocks that overlap it, one stretch of rows each (PostgreSQL's BRIN
-- index does the same). The unique (time_ms, key) index makes re-ingestion a no-op.
--
-- SQL cannot compute the key hash: rows stored before are moved by the store when it next
-- opens the database (store/convert.rs), a batch per transaction, ids kept, from the table
-- this migration renames to `events_v1`; it is dropped when empty, so an interrupted
-- conversion resumes where it stopped.
ALTER TABLE events RENAME TO events_v1;
DROP TRIGGER IF EXISTS events_series;
DROP INDEX IF EXISTS events_report;
DELETE FROM store_meta WHERE name = 'text_event_keys_up_to';

CREATE TABLE invocations (
    id          INTEGER PRIMARY KEY,
    -- The series of its first event (which names its function).
    series      INTEGER NOT NULL,
    -- 16 bytes for a Lambda request id (a UUID), else the text; NULL for X-Ray's own spans.
    request_id,
    -- 16 bytes for an X-Ray trace id (1-8 hex-24 hex), else the text.
    trace_id,
    first_ms    INTEGER NOT NULL,
    -- Its events' ids lie in [first_event, last_event].
    first_event INTEGER NOT NULL,
    last_event  INTEGER NOT NULL
);
CREATE INDEX invocations_request ON invocations (request_id, first_ms) WHERE request_id IS NOT NULL;
CREATE INDEX invocations_trace ON invocations (trace_id, first_ms) WHERE request_id IS NULL;

CREATE TABLE attribute_sets (
    id         INTEGER PRIMARY KEY,
    json       TEXT    NOT NULL UNIQUE,
    last_event INTEGER NOT NULL
);

CREATE TABLE event_rows (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    time_ms    INTEGER NOT NULL,
    series     INTEGER NOT NULL,
    -- Microseconds (an integer, 3 or 4 bytes) when that is exact, else seconds (a REAL).
    duration   NOT NULL,
    flags      INTEGER NOT NULL,
    key        INTEGER NOT NULL,
    invocation INTEGER,
    attributes INTEGER
);
CREATE UNIQUE INDEX event_rows_key ON event_rows (time_ms, key);

CREATE TABLE event_blocks (
    block  INTEGER PRIMARY KEY,
    min_ms INTEGER NOT NULL,
    max_ms INTEGER NOT NULL
);
CREATE INDEX event_blocks_max ON event_blocks (max_ms);

-- Ids go on from the highest one ever handed out (watermarks stay valid).
INSERT INTO sqlite_sequence (name, seq)
SELECT 'event_rows', COALESCE((SELECT MAX(seq) FROM sqlite_sequence WHERE name IN ('events', 'events_v1')), 0);

-- The events as they read before: names, request and trace ids as text, flags as columns.
-- For people and tools that query the database; the store reads the tables.
CREATE VIEW events AS
SELECT e.id, e.time_ms, s.env, s.function, s.operation, s.source,
       CASE WHEN typeof(e.duration) = 'integer' THEN e.duration / 1000000.0 ELSE e.duration END AS duration_s,
       CASE WHEN typeof(i.request_id) = 'blob' THEN lower(substr(hex(i.request_id), 1, 8) || '-' || substr(hex(i.request_id), 9, 4) || '-' ||
            substr(hex(i.request_id), 13, 4) || '-' || substr(hex(i.request_id), 17, 4) || '-' || substr(hex(i.request_id), 21, 12))
            ELSE i.request_id END AS request_id,
       CASE WHEN typeof(i.trace_id) = 'blob' THEN '1-' || lower(substr(hex(i.trace_id), 1, 8)) || '-' || lower(substr(hex(i.trace_id), 9, 24))
            ELSE i.trace_id END AS trace_id,
       (e.flags >> 1) & 1 AS cold_start, e.flags & 1 AS error, (e.flags >> 2) & 1 AS timeout,
       CASE WHEN e.flags & 4 THEN json_set(COALESCE(a.json, '{}'), '$.status', 'timeout') ELSE a.json END AS attributes,
       e.series
FROM event_rows e
JOIN series s ON s.id = e.series
LEFT JOIN invocations i ON i.id = e.invocation
LEFT JOIN attribute_sets a ON a.id = e.attributes;
