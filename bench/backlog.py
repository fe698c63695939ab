#!/usr/bin/python3
"""The engine alone, draining a backlog (bench/cluster.sh).

usage:
  backlog.py fill DATABASE_URL WORKFLOW_ID COUNT
      with no instance running: COUNT queued executions of the workflow, copies of its
      newest one (same user, input and settings), as a burst of executes leaves them.
      PostgreSQL's statistics are left as they were, as they are after a burst.
  backlog.py rate DATABASE_URL WORKFLOW_ID COUNT [TIMEOUT]
      once the instance runs: waits until none of the workflow's executions is queued or
      running, then prints the rate from the first start to the last finish of the newest
      COUNT, and how many of them succeeded.

DATABASE_URL is sqlite:///path or postgres://... (psql reads it). Exit status 1 when the
backlog does not drain within TIMEOUT seconds (default 300).
"""
import datetime
import sqlite3
import subprocess
import sys
import time

# Columns a queued copy takes from these values instead of the original's.
FRESH = {
    "status": "'queued'", "started_at": "NULL", "finished_at": "NULL", "duration_ms": "NULL",
    "output": "NULL", "error": "NULL", "lease_owner": "NULL", "lease_until": "NULL",
    "claims": "0", "deadline_ms": "0", "memory_bytes": "0", "prompt_tokens": "0",
    "completion_tokens": "0", "total_tokens": "0", "cost_usd": "0",
}


class Db:
    def __init__(self, url):
        self.pg = url.startswith(("postgres://", "postgresql://"))
        self.url = url
        if not self.pg:
            self.conn = sqlite3.connect(url[len("sqlite://"):], timeout=30, isolation_level=None)

    def rows(self, sql, params=()):
        if not self.pg:
            return [tuple(r) for r in self.conn.execute(sql, params)]
        for p in params:  # the values here are ids and numbers this script made or read
            sql = sql.replace("?", "'%s'" % str(p).replace("'", "''"), 1)
        out = subprocess.run(["psql", "-qAtX", "-F", "\t", "-v", "ON_ERROR_STOP=1", self.url, "-c", sql],
                             check=True, capture_output=True, text=True).stdout
        return [tuple(line.split("\t")) for line in out.splitlines() if line]

    def columns(self):
        if self.pg:
            return [r[0] for r in self.rows("SELECT column_name FROM information_schema.columns WHERE "
                                            "table_name = 'executions' ORDER BY ordinal_position")]
        return [r[1] for r in self.rows("PRAGMA table_info(executions)")]


def fill(db, wf, count):
    cols = db.columns()
    base = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    if db.pg:
        ident = "gen_random_uuid()::text"
        created = ("to_char(TIMESTAMP '%s' + g * INTERVAL '1 microsecond', "
                   "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')" % base.replace("T", " "))
        series = "generate_series(1, %d) AS s(g)" % count
    else:
        ident = ("lower(printf('%s-%s-4%s-8%s-%s', hex(randomblob(4)), hex(randomblob(2)), "
                 "substr(hex(randomblob(2)), 2), substr(hex(randomblob(2)), 2), hex(randomblob(6))))")
        created = "'%s.' || printf('%%06dZ', g)" % base
        series = ("(WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < %d) "
                  "SELECT g FROM s)" % count)
    values = []
    for c in cols:
        if c == "id":
            values.append(ident)
        elif c == "created_at":
            values.append(created)
        elif c in FRESH:
            values.append(FRESH[c])
        else:
            values.append("t." + c)
    newest = ("(SELECT * FROM executions WHERE workflow_id = ? ORDER BY created_at DESC, id DESC "
              "LIMIT 1) t")
    sql = "INSERT INTO executions (%s) SELECT %s FROM %s, %s" % (", ".join(cols), ", ".join(values),
                                                                 newest, series)
    db.rows(sql, (wf,))
    got = db.rows("SELECT COUNT(*) FROM executions WHERE workflow_id = ? AND status = 'queued'", (wf,))
    if int(got[0][0]) < count:
        raise SystemExit("backlog.py: %s queued, %d wanted" % (got[0][0], count))


def stamp(text):
    return datetime.datetime.strptime(text[:23].rstrip("Z"), "%Y-%m-%dT%H:%M:%S.%f").timestamp()


def rate(db, wf, count, timeout):
    limit = time.monotonic() + timeout
    while True:
        left = int(db.rows("SELECT COUNT(*) FROM executions WHERE workflow_id = ? AND "
                           "status IN ('queued', 'running')", (wf,))[0][0])
        if left == 0:
            break
        if time.monotonic() > limit:
            raise SystemExit("backlog.py: %d executions still queued or running after %d s" % (left, timeout))
        time.sleep(0.1)
    rows = db.rows("SELECT started_at, finished_at, status FROM executions WHERE workflow_id = ? "
                   "ORDER BY created_at DESC, id DESC LIMIT %d" % count, (wf,))
    first = min(stamp(r[0]) for r in rows)
    last = max(stamp(r[1]) for r in rows)
    ok = sum(1 for r in rows if r[2] == "succeeded")
    took = max(last - first, 0.001)
    print("%d executions drained in %.2f s: %.0f a second (%d succeeded)" % (len(rows), took,
                                                                            len(rows) / took, ok))


def main(argv):
    if len(argv) < 5 or argv[1] not in ("fill", "rate"):
        raise SystemExit(__doc__)
    db = Db(argv[2])
    if argv[1] == "fill":
        fill(db, argv[3], int(argv[4]))
    else:
        rate(db, argv[3], int(argv[4]), float(argv[5]) if len(argv) > 5 else 300)


if __name__ == "__main__":
    main(sys.argv)
