-- An event's idempotency key is stored as 16 bytes: its time (big-endian) and a 64-bit hash
-- of the text key (log group, stream, event id, ...), instead of that text (about 150 bytes,
-- kept twice: in the row and in the unique index). Keys still sort by time, so inserts land
-- next to each other as events arrive. SQL cannot compute the hash: rows stored before this
-- migration are converted by the store when it next opens the database for writing
-- (store/event_keys.rs), from the highest id down; `text_event_keys_up_to` is how far down
-- rows still hold text keys (0: none).
CREATE TABLE store_meta (
    name  TEXT    PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO store_meta (name, value) SELECT 'text_event_keys_up_to', COALESCE(MAX(id), 0) FROM events;
