#!/usr/bin/python3
"""Trigger benchmarks (bench/run.sh, section "triggers").

usage:
  triggers_bench.py hooks     BASE_URL TOKEN WORKFLOW_ID    creates a `none` and an `hmac`
                             webhook on the workflow; prints "<none id> <hmac id> <secret>"
  triggers_bench.py hmac_lua  SECRET OUT_FILE               a wrk script whose every request
                             carries a valid signature of one body (a timestamp of now: valid
                             for 300 s)
  triggers_bench.py schedules BASE_URL TOKEN COUNT CRON [OVERLAP]
                             creates COUNT enabled schedules of CRON, 100 to a workflow (the
                             most one holds) of one transform; prints the workflows' ids
  triggers_bench.py lateness  BASE_URL TOKEN SINCE_EPOCH
                             lateness (createdAt - scheduledFor) of the schedule runs due
                             since SINCE_EPOCH: count, p50, p99, max
Exit status 1 when the API refuses something.
"""
import concurrent.futures
import hashlib
import hmac
import sys
import time

from exec_bench import die, parse_ts, pct, session


def hooks(base, token, wid):
    s = session(token)
    out = []
    for auth in ("none", "hmac"):
        r = s.post(base + "/api/workflows/%s/webhooks" % wid, json={"auth": auth})
        if r.status_code != 201:
            die("create webhook", r)
        out.append(r.json())
    print(out[0]["id"], out[1]["id"], out[1]["secret"])


def hmac_lua(secret, path):
    body = '{"x":1}'
    ts = str(int(time.time()))
    sig = hmac.new(secret.encode(), (ts + "." + body).encode(), hashlib.sha256).hexdigest()
    with open(path, "w") as f:
        f.write('wrk.method = "POST"\nwrk.body = \'%s\'\n'
                'wrk.headers["Content-Type"] = "application/json"\n'
                'wrk.headers["X-AOP-Timestamp"] = "%s"\n'
                'wrk.headers["X-AOP-Signature"] = "sha256=%s"\n' % (body, ts, sig))


def schedules(base, token, count, cron, overlap="allow"):
    s = session(token)
    wids = []
    for i in range((count + 99) // 100):
        r = s.post(base + "/api/workflows", json={
            "name": "sched-%d" % i, "status": "active",
            "definition": {"nodes": [{"id": "t", "type": "transform", "config": {"output": {}}}],
                           "edges": []}})
        if r.status_code != 201:
            die("create workflow", r)
        wids.append(r.json()["id"])

    def one(i):
        r = session(token).post(base + "/api/workflows/%s/schedules" % wids[i // 100],
                                json={"cron": cron, "overlap": overlap})
        if r.status_code != 201:
            die("create schedule", r)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(count)))


def lateness(base, token, since):
    s = session(token)
    late, page = [], 1
    while True:
        r = s.get(base + "/api/executions", params={"trigger": "schedule", "limit": 100,
                                                    "page": page})
        if r.status_code != 200:
            die("list executions", r)
        data = r.json()["data"]
        for e in data:
            c, d = parse_ts(e["createdAt"]), parse_ts(e.get("scheduledFor"))
            if d is not None and d >= since:
                late.append((c - d) * 1000)
        if len(data) < 100:
            break
        page += 1
    late.sort()
    if not late:
        print("no schedule runs")
        return
    print("schedule runs: %d; lateness (createdAt - scheduledFor): p50 %.1f ms, p99 %.1f ms, "
          "max %.1f ms (target p99 < 100 ms)" % (len(late), pct(late, 50), pct(late, 99), late[-1]))


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "hooks":
        hooks(*args)
    elif cmd == "hmac_lua":
        hmac_lua(*args)
    elif cmd == "schedules":
        schedules(args[0], args[1], int(args[2]), *args[3:])
    elif cmd == "lateness":
        lateness(args[0], args[1], float(args[2]))
    else:
        raise SystemExit(__doc__)
