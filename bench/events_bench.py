#!/usr/bin/env python3
"""Live execution events under load (bench/run.sh, BENCH_ONLY=events).

  events_bench.py streams BASE_URL TOKEN PID [N] [NODE_MS]
      N (1000) concurrent streams, each following one execution of a 40-node
      flow (a first delay of 1 to 3 s, from the input, so that every stream is
      open before its execution gets going and the executions do not all step
      at the same moments; then 39 delays of NODE_MS, 500 by default: the
      1,000 executions then make about 4,000 events a second; 100 makes about
      16,000). First the same N executions run once without
      streams, so that what they take themselves is in the baseline; then N
      more start and a stream opens on each. Checks that every stream gets
      every event (seq 1..83 without a gap, then the end); measures the time
      from each event's `ts` (stamped by the engine in the transaction that
      writes it, just before the commit, so this is commit-to-client plus
      the rest of that commit) to its arrival, for the events committed once
      the stream was open (the first few of each execution may be committed
      before: those are replayed, and counted apart), and the RSS the server adds
      over the baseline (its VmRSS sampled every 20 ms). The streams are
      read by CLIENTS (2) processes, which note the arrival of each chunk
      before they parse it.

The server runs with SSE_MAX_STREAMS above N, and with enough connections.
"""
import asyncio
import calendar
import json
import multiprocessing
import resource
import sys
import threading
import time
import urllib.request

EVENTS_PER_RUN = 2 + 2 * 40 + 1  # queued, started, node.started/finished each, finished


def call(base, token, method, path, body=None):
    req = urllib.request.Request(base + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Authorization": "Bearer " + token,
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read() or b"null")


def flow(base, token, node_ms):
    nodes = [{"id": "n00", "type": "delay", "config": {"ms": "{{input.wait}}"}}]
    nodes += [{"id": "n%02d" % i, "type": "delay", "config": {"ms": node_ms}} for i in range(1, 40)]
    edges = [{"from": nodes[i]["id"], "to": nodes[i + 1]["id"]} for i in range(39)]
    w = call(base, token, "POST", "/api/workflows",
             {"name": "bench: 40 nodes", "status": "active", "definition": {"nodes": nodes, "edges": edges}})
    return w["id"]


def start_many(base, token, wid, n, threads=16):
    ids = [None] * n

    def work(k):
        for i in range(k, n, threads):
            body = {"input": {"wait": 1000 + (i * 2000) // n}}
            ids[i] = call(base, token, "POST", "/api/workflows/%s/execute" % wid, body)["executionId"]
    ts = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return ids


def wait_ended(base, token, wid, budget=300):
    deadline = time.time() + budget
    while time.time() < deadline:
        q = call(base, token, "GET", "/api/executions?workflowId=%s&status=queued&limit=1" % wid)
        r = call(base, token, "GET", "/api/executions?workflowId=%s&status=running&limit=1" % wid)
        if q["pagination"]["total"] == 0 and r["pagination"]["total"] == 0:
            return True
        time.sleep(0.2)
    return False


def rss_kb(pid):
    with open("/proc/%s/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1])
    return 0


_minutes = {}


def parse_ts(v):
    """b"2026-12-06T09:58:01.204Z" -> epoch seconds (the minute's part cached)."""
    m = _minutes.get(v[:16])
    if m is None:
        m = _minutes[v[:16]] = calendar.timegm(time.strptime(v[:16].decode(), "%Y-%m-%dT%H:%M"))
    return m + int(v[17:19]) + int(v[20:23]) / 1000.0


async def follow(host, port, token, eid, out):
    """One stream: (events in seq order, latencies in ms, clean end)."""
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(("GET /api/executions/%s/events HTTP/1.1\r\nHost: bench\r\n"
                  "Authorization: Bearer %s\r\nAccept: text/event-stream\r\n\r\n" % (eid, token)).encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    opened = time.time()
    if b" 200 " not in head.split(b"\r\n")[0]:
        out[eid] = ([], [], False, head.split(b"\r\n")[0].decode(), 0)
        writer.close()
        return
    seqs, lat, buf, ended, replayed = [], [], b"", False, 0
    while True:
        size_line = await reader.readline()
        size = int(size_line.strip() or b"0", 16)
        if size == 0:
            ended = True
            break
        chunk = await reader.readexactly(size + 2)
        now = time.time()
        buf += chunk[:-2]
        while b"\n\n" in buf:
            block, buf = buf.split(b"\n\n", 1)
            if not block.startswith(b"id: "):
                continue
            seqs.append(int(block[4:block.index(b"\n")]))
            at = block.index(b'"ts":"') + 6
            ts = parse_ts(block[at:at + 24])
            if ts < opened - 0.001:  # ts has whole milliseconds
                replayed += 1
            else:
                lat.append((now - ts) * 1000.0)
    writer.close()
    out[eid] = (seqs, lat, ended, "", replayed)


def read_streams(host, port, token, ids):
    out = {}

    async def all_streams():
        await asyncio.gather(*(follow(host, port, token, eid, out) for eid in ids))
    asyncio.run(all_streams())
    return out


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))] if v else float("nan")


def cmd_streams(base, token, pid, n="1000", node_ms="500"):
    n = int(n)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    host, port = base.split("//")[1].split(":")
    wid = flow(base, token, int(node_ms))
    # the executions alone, once: their memory is in the baseline
    start_many(base, token, wid, n)
    if not wait_ended(base, token, wid):
        print("PROBLEM (events): the run without streams did not end")
        return
    time.sleep(1)
    base_rss = rss_kb(pid)
    peak = [base_rss]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], rss_kb(pid))
            time.sleep(0.02)
    sampler = threading.Thread(target=sample)
    sampler.start()
    t0 = time.time()
    ids = start_many(base, token, wid, n)
    clients = 2
    with multiprocessing.Pool(clients) as pool:
        parts = pool.starmap(read_streams, [(host, int(port), token, ids[k::clients])
                                            for k in range(clients)])
    out = {}
    for p in parts:
        out.update(p)
    took = time.time() - t0
    stop.set()
    sampler.join()
    complete = sum(1 for x in out.values() if x[2] and x[0] == list(range(1, EVENTS_PER_RUN + 1)))
    refused = [x[3] for x in out.values() if x[3]]
    lat = [ms for x in out.values() for ms in x[1]]
    got = sum(len(x[0]) for x in out.values())
    replayed = sum(x[4] for x in out.values())
    print("| measurement (%d streams, one 40-node execution each, nodes of %s ms) | value | target |"
          % (n, node_ms))
    print("|---|---|---|")
    print("| streams that got every event (seq 1..%d, no gap) and then the end | %d of %d | all |"
          % (EVENTS_PER_RUN, complete, n))
    print("| events received | %d of %d | all |" % (got, n * EVENTS_PER_RUN))
    print("| live events (committed after their stream opened): `ts` -> client, p50 / p99 / max "
          "| %.1f / %.1f / %.1f ms (%d events) | p99 < 50 ms |"
          % (pct(lat, 50), pct(lat, 99), max(lat) if lat else float("nan"), len(lat)))
    print("| events committed before their stream opened (replayed) | %d | |" % replayed)
    print("| server RSS added over the same run without streams (peak) | %.1f MiB | < 50 MB |"
          % ((peak[0] - base_rss) / 1024.0))
    print("| wall time: starts, streams, all ended | %.1f s | |" % took)
    if refused:
        print("PROBLEM (events): %d streams refused, e.g. %s" % (len(refused), refused[0]))


def main():
    cmds = {"streams": cmd_streams}
    if len(sys.argv) < 2 or sys.argv[1] not in cmds:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    cmds[sys.argv[1]](*sys.argv[2:])


if __name__ == "__main__":
    main()
