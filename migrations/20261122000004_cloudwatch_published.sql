-- What the CloudWatch publisher has sent: every event with `id <= last_event_id` went out in
-- a PutMetricData that CloudWatch accepted (or was dropped and counted). One row; moved
-- forward after each accepted request, compare-and-set against the value the publisher
-- started from.
CREATE TABLE cloudwatch_published (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    last_event_id INTEGER NOT NULL,
    updated_ms    INTEGER NOT NULL
);
INSERT INTO cloudwatch_published (id, last_event_id, updated_ms) VALUES (1, 0, 0);

-- `events.id` is a plain rowid: once retention deletes the rows with the highest ids (late
-- events with old times), SQLite hands those ids out again, and a new event could get an id
-- at or below the watermark and never be published. Every row above `NEW.id - 1` is gone at
-- that moment (a reused id is max(id) + 1), so lowering the watermark there re-sends
-- nothing and skips nothing. The publisher's compare-and-set then fails, and it re-reads.
CREATE TRIGGER cloudwatch_published_rowid_reuse AFTER INSERT ON events
WHEN NEW.id <= (SELECT last_event_id FROM cloudwatch_published WHERE id = 1)
BEGIN
    UPDATE cloudwatch_published SET last_event_id = NEW.id - 1 WHERE id = 1;
END;
