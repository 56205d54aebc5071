-- What each Lambda alias pointed at, and when we saw it: events are attributed to the alias
-- that pointed at their version at the event's time.
CREATE TABLE alias_history (
    function      TEXT    NOT NULL,
    alias         TEXT    NOT NULL,
    version       TEXT    NOT NULL,
    weight        REAL    NOT NULL,
    first_seen_ms INTEGER NOT NULL,
    last_seen_ms  INTEGER NOT NULL,
    PRIMARY KEY (function, alias, version, first_seen_ms)
);
