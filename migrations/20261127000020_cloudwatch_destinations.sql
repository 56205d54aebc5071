-- Where CloudWatch metrics go can be more than one place: with [[accounts]], each account's
-- events are published into that account and region, each destination with its own
-- watermark (every event of that destination with `id <= last_event_id` was sent, dropped or
-- counted). The one watermark kept before is the destination '' (every event, the daemon's
-- own account), so a config without accounts goes on from where it was.
CREATE TABLE cloudwatch_destinations (
    destination   TEXT PRIMARY KEY,
    last_event_id INTEGER NOT NULL,
    updated_ms    INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO cloudwatch_destinations (destination, last_event_id, updated_ms)
SELECT '', last_event_id, updated_ms FROM cloudwatch_published;
DROP TABLE cloudwatch_published;
