#!/usr/bin/env python3
"""Agent nodes under load (bench/run.sh, BENCH_ONLY=agents), against bench/agent_server.py.

  agent_bench.py overhead BASE_URL TOKEN FAKE_URL [RUNS]
      RUNS (30) agents one after the other, each of 10 steps (10 model calls, 9 tool calls
      between them) against fakes that answer at once. The engine's overhead per step is
      what passes between the fake's answer and the engine's next request (reading the
      answer, storing the step, its events, building and sending the next request),
      measured on the fake's clock, summed over a step (a model answer to its tool call,
      the tool's answer to the next model call) and divided by the steps. Reports the
      median and the 95th percentile of that per step over all the runs' steps, next to
      each execution's durationMs divided by its steps.

  agent_bench.py load BASE_URL TOKEN FAKE_URL PID [N]
      N (500) agents at once, each making 3 model calls of 1 s and 2 tool calls of 0.5 s
      (4 s of waiting each). Reports when the last one finished after the last one
      started (target: within 6 s), how many succeeded, and the server's peak RSS
      (VmHWM, target: under 300 MB).
"""
import calendar
import json
import sys
import threading
import time
import urllib.request

from events_bench import call


def agent_workflow(base, token, fake, model, tool_ms, max_steps):
    tool = {"name": "tool", "description": "a tool", "parameters": {"type": "object"},
            "http": {"url": fake + "/tool/{{input.run}}?ms=%d" % tool_ms}}
    node = {"id": "ag", "type": "agent", "config": {
        "model": model, "maxSteps": max_steps, "maxToolCalls": 20,
        "messages": [{"role": "user", "content": "run {{input.run}}"}], "tools": [tool]}}
    w = call(base, token, "POST", "/api/workflows",
             {"name": "bench: agent %s" % model, "status": "active",
              "definition": {"nodes": [node], "edges": []}})
    return w["id"]


def wait_ended(base, token, eid, timeout=300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        e = call(base, token, "GET", "/api/executions/%s" % eid)
        if e["status"] not in ("queued", "running", "waiting"):
            return e
        time.sleep(0.01)
    raise SystemExit("execution %s did not end" % eid)


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, (p * len(xs) + 99) // 100 - 1))]


def overhead(base, token, fake, runs=30):
    wid = agent_workflow(base, token, fake, "bench-10-0", 0, 10)
    urllib.request.urlopen(urllib.request.Request(fake + "/gaps", method="DELETE")).read()
    per_step, by_duration = [], []
    for i in range(runs):
        name = "o%d" % i
        r = call(base, token, "POST", "/api/workflows/%s/execute" % wid, {"input": {"run": name}})
        e = wait_ended(base, token, r["executionId"])
        n = [x for x in e["nodes"] if x["nodeId"] == "ag"][0]
        assert e["status"] == "succeeded" and n["output"]["steps"] == 10, e
        by_duration.append(n["durationMs"] / 10.0)
    gaps = json.loads(urllib.request.urlopen(fake + "/gaps").read())
    for name, g in gaps.items():
        # 18 gaps a run: model -> tool and tool -> model, 9 of each; a step is one of each
        per_step += [g[k] + g[k + 1] for k in range(0, len(g) - 1, 2)]
    print("| agent of 10 steps, fakes answering at once (%d runs, %d steps) | p50 | p95 | max |"
          % (runs, len(per_step)))
    print("|---|---|---|---|")
    print("| engine time per step, on the fake's clock (ms) | %.3f | %.3f | %.3f |"
          % (pct(per_step, 50), pct(per_step, 95), max(per_step)))
    print("| node durationMs / steps (ms) | %.3f | %.3f | %.3f |"
          % (pct(by_duration, 50), pct(by_duration, 95), max(by_duration)))
    ok = pct(per_step, 50) < 1.0
    print()
    print("target: under 1 ms a step (p50): %s" % ("met" if ok else "NOT met"))


def hwm_kb(pid):
    with open("/proc/%s/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM"):
                return int(line.split()[1])
    return 0


def load(base, token, fake, pid, n=500):
    wid = agent_workflow(base, token, fake, "bench-3-1000", 500, 3)
    ids = [None] * n
    threads = 16

    def start(k):
        for i in range(k, n, threads):
            r = call(base, token, "POST", "/api/workflows/%s/execute" % wid, {"input": {"run": "l%d" % i}})
            ids[i] = r["executionId"]

    t0 = time.monotonic()
    ts = [threading.Thread(target=start, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    last_start = time.monotonic()
    last_start_wall = time.time()
    statuses = {}
    while True:
        page = call(base, token, "GET", "/api/executions?workflowId=%s&limit=100&status=running" % wid)
        queued = call(base, token, "GET", "/api/executions?workflowId=%s&limit=1&status=queued" % wid)
        if not page["data"] and not queued["data"]:
            break
        time.sleep(0.05)
    last_end_wall = 0.0
    for eid in ids:
        e = call(base, token, "GET", "/api/executions/%s" % eid)
        statuses[e["status"]] = statuses.get(e["status"], 0) + 1
        if e["finishedAt"]:
            end = calendar.timegm(time.strptime(e["finishedAt"][:19], "%Y-%m-%dT%H:%M:%S"))
            last_end_wall = max(last_end_wall, end + int(e["finishedAt"][20:23]) / 1000.0)
    after = last_end_wall - last_start_wall
    print("| %d agents at once, 3 model calls of 1 s and 2 tool calls of 0.5 s each | value |" % n)
    print("|---|---|")
    print("| starting them all (s) | %.2f |" % (last_start - t0))
    print("| last end (its finishedAt) after the last start (s) | %.2f |" % after)
    print("| statuses | %s |" % ", ".join("%s %d" % kv for kv in sorted(statuses.items())))
    print("| server peak RSS (MB) | %.0f |" % (hwm_kb(pid) / 1024.0))
    print()
    print("targets: all end within 6 s of the last start (%s), RSS under 300 MB (%s)"
          % ("met" if after <= 6 else "NOT met",
             "met" if hwm_kb(pid) < 300 * 1024 else "NOT met"))


if __name__ == "__main__":
    what = sys.argv[1]
    if what == "overhead":
        overhead(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]) if len(sys.argv) > 5 else 30)
    elif what == "load":
        load(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6]) if len(sys.argv) > 6 else 500)
    else:
        raise SystemExit(__doc__)
