#!/usr/bin/python3
"""tests/apps/sqlwriter.py - one process writing a SQLite database in WAL mode,
for a40-sqlite.sh.

  sqlwriter.py DB STATUS

Inserts row n (id n, v 'row-n') in its own transaction every 10 ms, on one
connection kept open (the -wal and -shm files stay open and mapped). STATUS
(its last line, one appended per update) says `rows=N ok`. SIGUSR1 pauses after the current commit
(`rows=N paused`, rewritten every 100 ms: the files hold still for a copy), SIGUSR2 resumes, SIGTERM
closes the database cleanly (`rows=N done`).
"""
import signal
import sqlite3
import sys
import time

from appstatus import append_line


def main():
    db, status = sys.argv[1], sys.argv[2]
    flags = {"pause": False, "stop": False}
    signal.signal(signal.SIGUSR1, lambda *_: flags.update(pause=True))
    signal.signal(signal.SIGUSR2, lambda *_: flags.update(pause=False))
    signal.signal(signal.SIGTERM, lambda *_: flags.update(stop=True))
    con = sqlite3.connect(db, isolation_level=None)
    if con.execute("PRAGMA journal_mode=WAL").fetchone()[0] != "wal":
        append_line(status, "FAIL no WAL mode")
        sys.exit(1)
    con.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
    n = con.execute("SELECT count(*) FROM t").fetchone()[0]
    last = 0.0
    while not flags["stop"]:
        if flags["pause"]:
            while flags["pause"] and not flags["stop"]:
                append_line(status, "rows=%d paused" % n)
                time.sleep(0.1)
            continue
        con.execute("BEGIN")
        con.execute("INSERT INTO t (id, v) VALUES (?, ?)", (n + 1, "row-%d" % (n + 1)))
        con.execute("COMMIT")
        n += 1
        now = time.monotonic()
        if now - last > 0.1:
            append_line(status, "rows=%d ok" % n)
            last = now
        time.sleep(0.01)
    con.close()
    append_line(status, "rows=%d done" % n)


if __name__ == "__main__":
    main()
