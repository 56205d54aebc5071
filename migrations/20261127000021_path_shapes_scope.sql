-- A critical path belongs to the account and region its trace came from, so the bottleneck
-- report takes --account/--region like the others. Stored on the shape (one row per
-- distinct path, not per trace); paths stored before belong to "default" and "" (as series
-- do, so a config without [[accounts]] keeps one history). Ids are kept: traces point at them.
DROP VIEW IF EXISTS critical_paths;

CREATE TABLE path_shapes_scoped (
    id        INTEGER PRIMARY KEY,
    account   TEXT NOT NULL DEFAULT 'default',
    region    TEXT NOT NULL DEFAULT '',
    root_name TEXT NOT NULL,
    shape     TEXT NOT NULL,
    envs      TEXT NOT NULL,
    UNIQUE (root_name, shape, envs, account, region)
);
INSERT INTO path_shapes_scoped (id, account, region, root_name, shape, envs)
SELECT id, 'default', '', root_name, shape, envs FROM path_shapes;
DROP TABLE path_shapes;
ALTER TABLE path_shapes_scoped RENAME TO path_shapes;

CREATE VIEW critical_paths AS
SELECT CASE WHEN typeof(t.trace_id) = 'blob' THEN '1-' || lower(substr(hex(t.trace_id), 1, 8)) || '-' || lower(substr(hex(t.trace_id), 9, 24))
            ELSE t.trace_id END AS trace_id,
       p.root_name, t.start_ms, t.total_s, p.shape, t.self_us, t.shares, p.envs, p.account, p.region
FROM trace_attribution t
JOIN path_shapes p ON p.id = t.path;
