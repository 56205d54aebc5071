-- What each Lambda alias pointed at, and when it was seen so (function names carry their
-- account and region when the config names accounts).
CREATE TABLE alias_history (
    function      TEXT NOT NULL,
    alias         TEXT NOT NULL,
    version       TEXT NOT NULL,
    weight        DOUBLE PRECISION NOT NULL,
    first_seen_ms BIGINT NOT NULL,
    last_seen_ms  BIGINT NOT NULL,
    PRIMARY KEY (function, alias, version, first_seen_ms)
);
