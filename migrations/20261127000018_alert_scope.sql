-- Alerts belong to an account and a region too (the series they judge do). Alerts stored
-- before belong to the default origin, whose alert keys did not change.
ALTER TABLE alert_state ADD COLUMN account TEXT NOT NULL DEFAULT 'default';
ALTER TABLE alert_state ADD COLUMN region TEXT NOT NULL DEFAULT '';
ALTER TABLE alert_transitions ADD COLUMN account TEXT NOT NULL DEFAULT 'default';
ALTER TABLE alert_transitions ADD COLUMN region TEXT NOT NULL DEFAULT '';
