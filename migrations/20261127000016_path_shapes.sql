-- Critical paths in a sixth of the space. The traces of a workflow mostly take the same
-- path: its shape (root, names, tree, and the trace's events per function and env) is
-- stored once in `path_shapes`; each trace keeps its id (16 bytes in X-Ray's form), start,
-- total and each node's self time (`self_us`, LEB128 varints of microseconds).
-- Paths stored whole before keep their JSON in `shares` with an empty shape, and read as
-- before; retention ends them.
CREATE TABLE path_shapes (
    id        INTEGER PRIMARY KEY,
    root_name TEXT NOT NULL,
    shape     TEXT NOT NULL,
    envs      TEXT NOT NULL,
    UNIQUE (root_name, shape, envs)
);

ALTER TABLE trace_attribution RENAME TO trace_attribution_v1;
DROP INDEX IF EXISTS trace_attribution_root_start;
DROP INDEX IF EXISTS trace_attribution_start;

CREATE TABLE trace_attribution (
    id       INTEGER PRIMARY KEY,
    trace_id NOT NULL UNIQUE,
    path     INTEGER NOT NULL,
    start_ms INTEGER NOT NULL,
    total_s  REAL    NOT NULL,
    self_us  BLOB,
    shares   TEXT
);
CREATE INDEX trace_attribution_path_start ON trace_attribution (path, start_ms);
CREATE INDEX trace_attribution_start ON trace_attribution (start_ms);

INSERT INTO path_shapes (root_name, shape, envs)
SELECT DISTINCT root_name, '', COALESCE(envs, '[]') FROM trace_attribution_v1;

INSERT INTO trace_attribution (trace_id, path, start_ms, total_s, self_us, shares)
SELECT CASE WHEN t.trace_id GLOB '1-[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]-[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]'
            THEN unhex(substr(t.trace_id, 3, 8) || substr(t.trace_id, 12, 24)) ELSE t.trace_id END,
       p.id, t.start_ms, t.total_s, NULL, t.shares
FROM trace_attribution_v1 t
JOIN path_shapes p ON p.root_name = t.root_name AND p.shape = '' AND p.envs = COALESCE(t.envs, '[]');

DROP TABLE trace_attribution_v1;

-- Each trace's path with its names, for people and tools that query the database.
CREATE VIEW critical_paths AS
SELECT CASE WHEN typeof(t.trace_id) = 'blob' THEN '1-' || lower(substr(hex(t.trace_id), 1, 8)) || '-' || lower(substr(hex(t.trace_id), 9, 24))
            ELSE t.trace_id END AS trace_id,
       p.root_name, t.start_ms, t.total_s, p.shape, t.self_us, t.shares, p.envs
FROM trace_attribution t
JOIN path_shapes p ON p.id = t.path;
