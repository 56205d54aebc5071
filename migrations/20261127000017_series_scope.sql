-- A series belongs to an account and a region: the same function name in two accounts (or
-- regions) is two functions. Series stored before belong to the account "default" and the
-- region "" (a config without [[accounts]] goes on writing those, so its history is one).
DROP VIEW IF EXISTS events;

CREATE TABLE series_scoped (
    id        INTEGER PRIMARY KEY,
    account   TEXT NOT NULL,
    region    TEXT NOT NULL,
    env       TEXT NOT NULL,
    function  TEXT NOT NULL,
    operation TEXT NOT NULL,
    source    TEXT NOT NULL,
    UNIQUE (account, region, env, function, operation, source)
);
INSERT INTO series_scoped (id, account, region, env, function, operation, source)
SELECT id, 'default', '', env, function, operation, source FROM series;
DROP TABLE series;
ALTER TABLE series_scoped RENAME TO series;

CREATE VIEW events AS
SELECT e.id, e.time_ms, s.account, s.region, s.env, s.function, s.operation, s.source,
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
