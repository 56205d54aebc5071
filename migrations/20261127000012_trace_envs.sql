-- Each critical path keeps the (function, env, events) of its trace, so the bottleneck
-- report's env filter and env column read them there instead of looking events up by
-- trace id: the index on events.trace_id (about 50 bytes per stored event) goes.
-- Paths stored before are filled from their events, while that index still exists.
ALTER TABLE trace_attribution ADD COLUMN envs TEXT;

UPDATE trace_attribution SET envs = (
    SELECT json_group_array(json_array(function, env, n))
    FROM (SELECT function, env, COUNT(*) AS n FROM events e WHERE e.trace_id = trace_attribution.trace_id GROUP BY function, env)
);

DROP INDEX IF EXISTS events_trace;
