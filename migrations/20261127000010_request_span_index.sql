-- Annotations (a REPORT's trace id, a later timeout) reach an invocation's events by request
-- id within the invocation's span. With the index on request_id alone, an id shared by many
-- rows (async retries, ids that are not unique) made every annotation read all of them; with
-- the time in the key an annotation reads only its invocation's rows.
DROP INDEX IF EXISTS events_request;
CREATE INDEX events_request ON events (request_id, time_ms) WHERE request_id IS NOT NULL;
