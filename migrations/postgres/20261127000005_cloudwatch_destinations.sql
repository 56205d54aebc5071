-- What the CloudWatch publisher of each destination has sent: every event of that
-- destination with `id <= last_event_id` went out (or was dropped and counted).
CREATE TABLE cloudwatch_destinations (
    destination   TEXT PRIMARY KEY,
    last_event_id BIGINT NOT NULL,
    updated_ms    BIGINT NOT NULL
);
