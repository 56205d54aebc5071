-- Every table has a bound (README, "State stays bounded"); these indexes let retention find
-- what falls outside it without scanning: stream states idle for longer than any re-read
-- reaches, and rejected inputs by arrival time (their own time can be anything).
CREATE INDEX stream_state_updated ON stream_state (updated_ms);
CREATE INDEX rejected_seen ON rejected (seen_ms);
CREATE INDEX alias_history_last_seen ON alias_history (last_seen_ms);
CREATE INDEX checkpoints_updated ON checkpoints (updated_ms);
