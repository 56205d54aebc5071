#!/usr/bin/env python3
"""The `ingest` bench's naive baseline: what a user would write in twenty lines to load an
`aws logs filter-log-events` export into SQLite. json.load of the whole document, one row per
timing (seed TIMING lines, END total_function_duration, REPORT Duration and Init Duration),
sqlite3 executemany in one transaction, WAL. No correlation with invocations, no
environments, no trace ids: a floor, not a competitor.

    python3 naive_ingest.py export.json naive.db   # prints: rows=<stored>
"""
import json
import re
import sqlite3
import sys

REPORT = re.compile(r"Duration: ([0-9.]+) ms")
INIT = re.compile(r"Init Duration: ([0-9.]+) ms")


def rows(events):
    for e in events:
        m = e["message"]
        key = e["eventId"]
        if m.startswith("REPORT RequestId: "):
            rid = m[18:].split(None, 1)[0]
            d = REPORT.search(m)
            if d:
                yield (e["timestamp"], e["logStreamName"], "Lambda.Duration", float(d.group(1)) / 1000, rid, key)
            i = INIT.search(m)
            if i:
                yield (e["timestamp"], e["logStreamName"], "Lambda.InitDuration", float(i.group(1)) / 1000, rid, key + "#init")
            continue
        at = m.find("{")
        if at < 0:
            continue
        try:
            j = json.loads(m[at:])
        except ValueError:
            continue
        if not isinstance(j, dict):
            continue
        if j.get("event_type") == "TIMING" and "value_sec" in j:
            yield (e["timestamp"], e["logStreamName"], j.get("metric"), float(j["value_sec"]), None, key)
        elif "total_function_duration" in j:
            yield (e["timestamp"], e["logStreamName"], "total_function_duration", float(j["total_function_duration"]), None, key)


def main(path, db):
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    con = sqlite3.connect(db)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute(
        "CREATE TABLE IF NOT EXISTS events (time_ms INTEGER, stream TEXT, operation TEXT, "
        "duration_s REAL, request_id TEXT, event_key TEXT UNIQUE)"
    )
    with con:
        con.executemany("INSERT OR IGNORE INTO events VALUES (?, ?, ?, ?, ?, ?)", rows(doc["events"]))
    print("rows=%d" % con.execute("SELECT count(*) FROM events").fetchone()[0])


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
