#!/usr/bin/python3
"""Execution benchmarks (bench/run.sh, section "executions").

usage:
  exec_bench.py seq    BASE_URL TOKEN [RUNS]     40 sequential transforms, run with
                                                 {"wait": true} RUNS times (default 200)
  exec_bench.py wf3    BASE_URL TOKEN            creates the 3-transform workflow, prints its id
  exec_bench.py drain  BASE_URL TOKEN WORKFLOW_ID START_EPOCH [WRK_OUTPUT_FILE [NGINX_RPS]]
                                                 waits until no execution of the workflow is
                                                 queued or running; end-to-end rate from START
  exec_bench.py slow   BASE_URL TOKEN SLOW_URL [COUNT [THREADS]]
                                                 COUNT (1000) executions of one http node
                                                 calling SLOW_URL, started at once
Prints markdown table rows and lines that can go into docs/benchmarks.md.
Exit status 0 even when a target is missed; 1 when the API refuses something.
"""
import calendar
import concurrent.futures
import http.client
import json
import sys
import threading
import time
import urllib.parse

import requests

ENDED = ("succeeded", "failed", "cancelled", "timed_out")
STATUSES = ("queued", "running") + ENDED


def session(token):
    s = requests.Session()
    s.headers.update({"Authorization": "Bearer " + token})
    return s


def die(what, r):
    raise SystemExit("%s: %d %s" % (what, r.status_code, r.text[:300]))


def create(s, base, name, definition):
    r = s.post(base + "/api/workflows", json={
        "name": name, "description": "created by bench/exec_bench.py", "status": "active",
        "tags": ["bench"], "definition": definition})
    if r.status_code != 201:
        die("create workflow", r)
    return r.json()["id"]


def parse_ts(v):
    """RFC 3339 UTC with milliseconds -> epoch seconds (float)."""
    if not v:
        return None
    main, _, frac = v.rstrip("Z").partition(".")
    t = calendar.timegm(time.strptime(main, "%Y-%m-%dT%H:%M:%S"))
    return t + (float("0." + frac) if frac else 0.0)


def pct(values, p):
    """Nearest-rank percentile."""
    v = sorted(values)
    if not v:
        return float("nan")
    k = max(0, min(len(v) - 1, int(-(-p * len(v) // 100)) - 1))
    return v[k]


def fmt_ms(v):
    if float(v).is_integer():        # the server's figures are whole milliseconds
        return "%d ms" % v
    return "%.2f ms" % v if v < 100 else "%.0f ms" % v


def count(s, base, **filters):
    q = dict(filters, limit=1)
    r = s.get(base + "/api/executions", params=q)
    if r.status_code != 200:
        die("list executions", r)
    return r.json()["pagination"]["total"]


def by_status(s, base, wid):
    return {st: count(s, base, workflowId=wid, status=st) for st in STATUSES}


def errors_seen(s, base, wid, limit=3):
    """A few failed executions of the workflow, with their error, for the report."""
    out = []
    for st in ("failed", "timed_out", "cancelled"):
        r = s.get(base + "/api/executions", params={"workflowId": wid, "status": st, "limit": limit})
        if r.status_code != 200:
            continue
        for e in r.json()["data"]:
            ex = s.get(base + "/api/executions/" + e["id"])
            err = ex.json().get("error") if ex.status_code == 200 else e.get("error")
            out.append("%s %s: %s" % (st, e["id"], json.dumps(err)[:300]))
    return out[:limit]


# ---- 1. forty sequential transforms ----

def seq_definition(n=40):
    nodes = [{"id": "t0", "type": "transform",
              "config": {"output": {"n": "{{input.n}}", "step": 0}}}]
    edges = []
    for k in range(1, n):
        nodes.append({"id": "t%d" % k, "type": "transform",
                      "config": {"output": {"n": "{{nodes.t%d.output.n}}" % (k - 1), "step": k}}})
        edges.append({"from": "t%d" % (k - 1), "to": "t%d" % k})
    return {"nodes": nodes, "edges": edges}


def cmd_seq(base, token, runs="200"):
    runs = int(runs)
    s = session(token)
    wid = create(s, base, "bench: 40 sequential transforms", seq_definition(40))
    url = base + "/api/workflows/%s/execute" % wid
    body = {"input": {"n": 7}, "wait": True}

    # Warm-up, and a check of what the engine computed.
    for i in range(10):
        r = s.post(url, json=body)
        if r.status_code != 200:
            die("execute with wait (warm-up %d)" % i, r)
    e = r.json()
    problems = []
    if e.get("status") != "succeeded":
        problems.append("status %s, error %s" % (e.get("status"), json.dumps(e.get("error"))))
    out = (e.get("output") or {}).get("t39")
    if out != {"n": 7, "step": 39}:
        problems.append("output.t39 is %s, expected {\"n\": 7, \"step\": 39}" % json.dumps(out))
    if len(e.get("nodes") or []) != 40:
        problems.append("%d node records, expected 40" % len(e.get("nodes") or []))

    engine, wall, queue, server, statuses = [], [], [], [], {}
    t_all = time.perf_counter()
    for _ in range(runs):
        t0 = time.perf_counter()
        r = s.post(url, json=body)
        t1 = time.perf_counter()
        if r.status_code != 200:
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
            continue
        e = r.json()
        statuses[e.get("status")] = statuses.get(e.get("status"), 0) + 1
        wall.append((t1 - t0) * 1000)
        if isinstance(e.get("durationMs"), (int, float)):
            engine.append(float(e["durationMs"]))
        c, st = parse_ts(e.get("createdAt")), parse_ts(e.get("startedAt"))
        f = parse_ts(e.get("finishedAt"))
        if c is not None and st is not None:
            queue.append(round((st - c) * 1000))
        if c is not None and f is not None:
            server.append(round((f - c) * 1000))
    total = time.perf_counter() - t_all

    print("| measurement (40 sequential transforms, %d runs) | p50 | p95 | max | target |" % runs)
    print("|---|---|---|---|---|")
    if engine:
        print("| engine `durationMs` | %s | %s | %s | < 20 ms |"
              % (fmt_ms(pct(engine, 50)), fmt_ms(pct(engine, 95)), fmt_ms(max(engine))))
    print("| client: POST execute `{\"wait\": true}` -> 200 | %s | %s | %s | < 20 ms |"
          % (fmt_ms(pct(wall, 50)), fmt_ms(pct(wall, 95)), fmt_ms(max(wall))))
    if queue:
        print("| queued (`startedAt` - `createdAt`) | %s | %s | %s | |"
              % (fmt_ms(pct(queue, 50)), fmt_ms(pct(queue, 95)), fmt_ms(max(queue))))
    if server:
        print("| server (`finishedAt` - `createdAt`) | %s | %s | %s | |"
              % (fmt_ms(pct(server, 50)), fmt_ms(pct(server, 95)), fmt_ms(max(server))))
    print()
    print("sequential runs: %d in %.2f s (%.0f a second, one client); results: %s"
          % (runs, total, runs / total, ", ".join("%s %d" % kv for kv in sorted(statuses.items(), key=str))))
    if problems:
        print("PROBLEM (40 transforms): " + "; ".join(problems))


# ---- 2. throughput of a 3-transform workflow ----

def cmd_wf3(base, token):
    s = session(token)
    d = {"nodes": [
        {"id": "a", "type": "transform", "config": {"output": {"x": "{{input.x}}", "step": 1}}},
        {"id": "b", "type": "transform", "config": {"output": {"x": "{{nodes.a.output.x}}", "step": 2}}},
        {"id": "c", "type": "transform", "config": {"output": {"x": "{{nodes.b.output.x}}", "step": 3}}}],
        "edges": [{"from": "a", "to": "b"}, {"from": "b", "to": "c"}]}
    print(create(s, base, "bench: 3 transforms", d))


def wait_drained(s, base, wid, budget_s, interval=0.05):
    """Polls until nothing of the workflow is queued or running; returns the
    epoch time it was first seen so, or None when the budget ran out."""
    deadline = time.time() + budget_s
    while time.time() < deadline:
        if count(s, base, workflowId=wid, status="queued") == 0 and \
                count(s, base, workflowId=wid, status="running") == 0:
            return time.time()
        time.sleep(interval)
    return None


def first_last(s, base, wid):
    """(first createdAt, last finishedAt) of the workflow's executions."""
    def one(sort):
        r = s.get(base + "/api/executions", params={"workflowId": wid, "sort": sort, "limit": 1})
        if r.status_code != 200:
            die("list executions sorted by %s" % sort, r)
        d = r.json()["data"]
        return d[0] if d else {}
    return parse_ts(one("createdAt").get("createdAt")), parse_ts(one("-finishedAt").get("finishedAt"))


def cmd_drain(base, token, wid, start, wrk_out=None, nginx_rps=None, budget="600"):
    start = float(start)
    s = session(token)
    wrk_end = time.time()
    seen = wait_drained(s, base, wid, float(budget))
    st = by_status(s, base, wid)
    created = sum(st.values())
    first_c, last_f = first_last(s, base, wid)
    wrk_requests = None
    if wrk_out:
        for line in open(wrk_out):
            if "requests in" in line:
                wrk_requests = int(line.split()[0])
    if seen is None:
        print("PROBLEM (3 transforms): not drained after %s s: %s" % (budget, json.dumps(st)))
        return
    end = last_f if last_f else seen
    e2e = created / (end - start) if end > start else float("nan")
    print("3-transform executions: %d created (wrk counted %s answers), %d succeeded, %s"
          % (created, wrk_requests if wrk_requests is not None else "?", st["succeeded"],
             ", ".join("%s %d" % (k, v) for k, v in st.items() if v and k != "succeeded") or "none other"))
    print("end to end: %.1f s from the start of wrk to the last finishedAt (%.1f s after wrk ended;"
          " drained as seen by polling %.1f s after the start): %.0f executions completed a second"
          % (end - start, end - wrk_end, seen - start, e2e))
    if st["succeeded"] != created:
        for line in errors_seen(s, base, wid):
            print("PROBLEM (3 transforms): " + line)
    if nginx_rps:
        print("end-to-end rate / nginx reference: %.3f" % (e2e / float(nginx_rps)))


# ---- 3. a thousand executions waiting on a slow HTTP call ----

def cmd_slow(base, token, slow_url, n="1000", threads="32"):
    n, threads = int(n), int(threads)
    s = session(token)
    wid = create(s, base, "bench: one slow http call", {
        "nodes": [{"id": "call", "type": "http",
                   "config": {"method": "GET", "url": slow_url, "timeoutMs": 30000}}],
        "edges": []})
    u = urllib.parse.urlsplit(base)
    path = "/api/workflows/%s/execute" % wid
    body = b'{}'
    headers = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
    local = threading.local()
    answers = {}
    lock = threading.Lock()

    def start(i):
        c = getattr(local, "c", None)
        if c is None:
            c = local.c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        c.request("POST", path, body, headers)
        r = c.getresponse()
        data = r.read()
        with lock:
            answers[r.status] = answers.get(r.status, 0) + 1
            if r.status != 202 and answers[r.status] == 1:
                print("execute answered %d: %s" % (r.status, data[:200]), file=sys.stderr)
        return time.time()

    # Connect the client's sockets first, so that the timed part is the posts.
    with concurrent.futures.ThreadPoolExecutor(threads) as ex:
        barrier = threading.Barrier(threads)

        def warm(_):
            local.c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
            local.c.connect()
            barrier.wait()
        list(ex.map(warm, range(threads)))
        t_first = time.time()
        ends = list(ex.map(start, range(n)))
    t_posted = max(ends)

    seen = wait_drained(s, base, wid, 120, interval=0.02)
    rows = []
    page = 1
    while True:
        r = s.get(base + "/api/executions", params={"workflowId": wid, "limit": 100, "page": page})
        if r.status_code != 200:
            die("list executions", r)
        d = r.json()
        rows += d["data"]
        if page >= d["pagination"]["totalPages"]:
            break
        page += 1
    st = {}
    for e in rows:
        st[e["status"]] = st.get(e["status"], 0) + 1
    fin = [parse_ts(e.get("finishedAt")) for e in rows if e.get("finishedAt")]
    last = max(fin) if fin else None
    durs = sorted(float(e["durationMs"]) for e in rows if isinstance(e.get("durationMs"), (int, float)))

    print("| measurement (%d executions, one http node, a 1 s answer) | value | target |" % n)
    print("|---|---|---|")
    print("| POSTs: first sent -> last answered (%d client threads) | %.2f s | |" % (threads, t_posted - t_first))
    if last:
        print("| first POST -> last `finishedAt` | %.2f s | < 3 s |" % (last - t_first))
    if seen:
        print("| first POST -> all ended, seen by polling | %.2f s | |" % (seen - t_first))
    else:
        print("| first POST -> all ended, seen by polling | not within 120 s | |")
    if durs:
        print("| execution `durationMs` p50 / p95 / max | %.0f / %.0f / %.0f ms | |"
              % (pct(durs, 50), pct(durs, 95), durs[-1]))
    print("| succeeded | %d of %d | all |" % (st.get("succeeded", 0), n))
    print()
    print("execute answers: %s; executions: %s"
          % (", ".join("%d x%d" % kv for kv in sorted(answers.items())),
             ", ".join("%s %d" % kv for kv in sorted(st.items()))))
    if st.get("succeeded", 0) != n:
        for line in errors_seen(s, base, wid):
            print("PROBLEM (slow http): " + line)


def main():
    cmds = {"seq": cmd_seq, "wf3": cmd_wf3, "drain": cmd_drain, "slow": cmd_slow}
    if len(sys.argv) < 4 or sys.argv[1] not in cmds:
        raise SystemExit(__doc__)
    cmds[sys.argv[1]](*sys.argv[2:])


if __name__ == "__main__":
    main()
