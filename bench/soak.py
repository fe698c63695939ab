#!/usr/bin/python3
"""Soak: mixed traffic on many keep-alive connections for a long time, watching
the server's memory and file descriptors (bench/run.sh, section "soak").

usage: soak.py BASE_URL TOKEN EMAIL PASSWORD SERVER_PID HTTP_URL SECONDS CONNECTIONS MARK_SECONDS

The traffic, drawn at random by weight on every connection:
  get_workflow     GET  /api/workflows/:id           (one of 200)
  list_workflows   GET  /api/workflows?limit=20
  list_executions  GET  /api/executions?limit=20
  get_execution    GET  /api/executions/:id          (one this run started)
  me               GET  /api/auth/me
  put_workflow     PUT  /api/workflows/:id           (one of the 200)
  execute_http     POST /api/workflows/:id/execute   transform -> http (HTTP_URL) -> transform
  execute_llm      POST /api/workflows/:id/execute   transform -> llm (LLM_BASE_URL) -> transform
  login            POST /api/auth/login              (bcrypt; the auth rate limit answers 429)
A 429 on login is intended (the auth bucket is meant to be hit); any other
status outside a kind's expected ones, a refused or broken connection and a
request without an answer within 60 s are errors.

The server's RSS and open file descriptors (/proc/SERVER_PID; sockets told
apart by /proc/net/tcp: clients, the nodes' connections to the fakes, other)
are read before the load, at MARK_SECONDS, when the load stops, and once every
execution has ended. The targets: no errors but the intended 429s, RSS at the
end of the load within 10 % of RSS at the mark, no more fds at the end than at
the mark, every execution succeeded (each is counted by status at the end).
Prints a report; exit status 0 even when a target is missed (the report says
so), 1 when the set-up fails.
"""
import asyncio
import collections
import json
import os
import random
import sys
import time

import requests

from seed_workflows import definition

KINDS = (  # name, weight, expected statuses
    ("get_workflow", 20, (200,)),
    ("list_workflows", 8, (200,)),
    ("list_executions", 8, (200,)),
    ("get_execution", 10, (200,)),
    ("me", 20, (200,)),
    ("put_workflow", 8, (200,)),
    ("execute_http", 10, (202,)),
    ("execute_llm", 10, (202,)),
    ("login", 2, (200,)),
)
INTENDED = {("login", 429)}
TIMEOUT = 60.0
ENDED = ("succeeded", "failed", "cancelled", "timed_out")
STATUSES = ("queued", "running") + ENDED


def die(what, r):
    raise SystemExit("soak: %s: %d %s" % (what, r.status_code, r.text[:300]))


# ---- set-up (blocking, requests) ----

def create(s, base, body):
    r = s.post(base + "/api/workflows", json=body)
    if r.status_code != 201:
        die("create workflow", r)
    return r.json()["id"]


def pipeline(kind, http_url):
    """transform -> kind -> transform; the middle node calls a local fake."""
    middle = {
        "http": {"id": "call", "type": "http",
                 "config": {"method": "POST", "url": http_url, "body": {"q": "{{input.q}}"},
                            "timeoutMs": 30000}},
        "llm": {"id": "call", "type": "llm",
                "config": {"model": "soak-model",
                           "messages": [{"role": "user", "content": "{{nodes.start.output.q}}"}]},
                "timeoutMs": 30000},
    }[kind]
    return {"nodes": [{"id": "start", "type": "transform", "config": {"output": {"q": "{{input.q}}"}}},
                      middle,
                      {"id": "done", "type": "transform",
                       "config": {"output": {"answer": "{{nodes.call.output}}"}}}],
            "edges": [{"from": "start", "to": "call"}, {"from": "call", "to": "done"}]}


def setup(base, token, http_url):
    s = requests.Session()
    s.headers.update({"Authorization": "Bearer " + token})
    defn = definition()
    ids = [create(s, base, {"name": "Soak %03d" % i, "status": "active", "tags": ["soak"],
                            "definition": defn}) for i in range(200)]
    flows = {k: create(s, base, {"name": "Soak %s" % k, "status": "active",
                                 "definition": pipeline(k, http_url)}) for k in ("http", "llm")}
    return s, ids, flows


# ---- the server's resources ----

def tcp_ports():
    """socket inode -> (local port, remote port), for every TCP socket here."""
    out = {}
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                next(f)
                for line in f:
                    col = line.split()
                    out[col[9]] = (int(col[1].rsplit(":", 1)[1], 16),
                                   int(col[2].rsplit(":", 1)[1], 16))
        except OSError:
            pass
    return out


def resources(pid, port):
    """(RSS in KiB, open fds, {kind: fds}) of the server pid, which listens on
    port. Its TCP connections to other ports are the nodes' calls to the
    fakes (kept alive by libcurl's connection cache)."""
    rss = 0
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    ports = tcp_ports()
    kinds = collections.Counter()
    fds = os.listdir("/proc/%d/fd" % pid)
    for fd in fds:
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if target.startswith("socket:["):
            local, remote = ports.get(target[8:-1], (None, None))
            if local is None or not remote:
                kinds["other sockets"] += 1
            elif local == port:
                kinds["clients"] += 1
            else:
                kinds["to the fakes"] += 1
        elif target.startswith("/"):
            kinds["files"] += 1
        else:
            kinds["other"] += 1
    return rss, len(fds), kinds


# ---- a small HTTP/1.1 client on asyncio streams ----

class Conn:
    def __init__(self, host, port):
        self.host, self.port = host, port
        self.reader = self.writer = None

    async def close(self):
        if self.writer:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except (ConnectionError, OSError):
                pass
        self.reader = self.writer = None

    async def request(self, method, path, headers, body=b""):
        if not self.writer:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        head = ["%s %s HTTP/1.1" % (method, path), "Host: %s:%d" % (self.host, self.port)]
        head += ["%s: %s" % kv for kv in headers.items()]
        if body or method in ("POST", "PUT"):
            head.append("Content-Type: application/json")
            head.append("Content-Length: %d" % len(body))
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        await self.writer.drain()
        status_line = await self.reader.readuntil(b"\r\n")
        status = int(status_line.split()[1])
        length, chunked, close = 0, False, False
        while True:
            line = await self.reader.readuntil(b"\r\n")
            if line == b"\r\n":
                break
            name, _, value = line.decode("latin-1").partition(":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding":
                chunked = "chunked" in value
            elif name == "connection":
                close = value == "close"
        if chunked:
            data = b""
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                data += await self.reader.readexactly(size + 2)
                if size == 0:
                    break
        else:
            data = await self.reader.readexactly(length) if length else b""
        if close:
            await self.close()
        return status, data


# ---- the load ----

class Load:
    def __init__(self, base, token, email, password, ids, flows):
        hostport = base.split("//", 1)[1]
        self.host, port = hostport.rsplit(":", 1)
        self.port = int(port)
        self.auth = {"Authorization": "Bearer " + token}
        self.login_body = json.dumps({"email": email, "password": password}).encode()
        self.ids, self.flows = ids, flows
        self.executions = collections.deque(maxlen=2000)   # ids this run started, latest
        self.started = []                                  # every id this run started
        self.count = collections.Counter()                 # (kind, status) -> n
        self.errors = collections.Counter()                # (kind, what) -> n
        self.examples = {}
        self.stop = False

    def pick(self, rng):
        return rng.choices([k[0] for k in KINDS], weights=[k[1] for k in KINDS])[0]

    def target(self, kind, rng):
        if kind == "get_workflow":
            return "GET", "/api/workflows/" + rng.choice(self.ids), b""
        if kind == "list_workflows":
            return "GET", "/api/workflows?limit=20", b""
        if kind == "list_executions":
            return "GET", "/api/executions?limit=20", b""
        if kind == "get_execution":
            if self.executions:
                return "GET", "/api/executions/" + rng.choice(self.executions), b""
            return "GET", "/api/auth/me", b""
        if kind == "me":
            return "GET", "/api/auth/me", b""
        if kind == "put_workflow":
            body = {"description": "soak edit %d" % rng.randrange(1 << 30)}
            return "PUT", "/api/workflows/" + rng.choice(self.ids), json.dumps(body).encode()
        if kind in ("execute_http", "execute_llm"):
            wid = self.flows[kind[len("execute_"):]]
            body = {"input": {"q": "question %d" % rng.randrange(1 << 30)}}
            return "POST", "/api/workflows/%s/execute" % wid, json.dumps(body).encode()
        return "POST", "/api/auth/login", self.login_body

    async def worker(self, n):
        rng = random.Random(n)
        conn = Conn(self.host, self.port)
        expected = {k[0]: k[2] for k in KINDS}
        while not self.stop:
            kind = self.pick(rng)
            method, path, body = self.target(kind, rng)
            headers = {} if kind == "login" else self.auth
            try:
                status, data = await asyncio.wait_for(conn.request(method, path, headers, body),
                                                      TIMEOUT)
            except asyncio.TimeoutError:
                self.errors[(kind, "no answer within %d s" % TIMEOUT)] += 1
                await conn.close()
                continue
            except (ConnectionError, OSError, asyncio.IncompleteReadError, ValueError) as e:
                self.errors[(kind, type(e).__name__)] += 1
                await conn.close()
                await asyncio.sleep(0.1)
                continue
            self.count[(kind, status)] += 1
            if status in expected[kind] or (kind, status) in INTENDED:
                if kind.startswith("execute_"):
                    eid = json.loads(data)["executionId"]
                    self.executions.append(eid)
                    self.started.append(eid)
            else:
                self.errors[(kind, "status %d" % status)] += 1
                self.examples.setdefault((kind, status), data[:300].decode("utf-8", "replace"))
        await conn.close()


def mib(kb):
    return "%.1f MiB" % (kb / 1024.0)


async def run(load, pid, port, seconds, conns, mark):
    samples = {"before the load": resources(pid, port)}
    workers = [asyncio.create_task(load.worker(i)) for i in range(conns)]
    t0 = time.monotonic()
    next_report = 30
    while True:
        await asyncio.sleep(1)
        t = time.monotonic() - t0
        if "mark" not in samples and t >= mark:
            samples["mark"] = resources(pid, port)
        if t >= next_report or t >= seconds:
            rss, fds, _ = resources(pid, port)
            print("  %4d s: %d requests (%.0f/s), %d errors, RSS %s, %d fds" % (
                t, sum(load.count.values()), sum(load.count.values()) / t,
                sum(load.errors.values()), mib(rss), fds), flush=True)
            next_report += 30
        if t >= seconds:
            break
    samples["end of the load"] = resources(pid, port)
    elapsed = time.monotonic() - t0
    load.stop = True
    await asyncio.gather(*workers)
    return samples, elapsed


def drain(s, base, flows, limit_s=300):
    """Waits until no execution of the soak's workflows is queued or running."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        left = 0
        for wid in flows.values():
            for st in ("queued", "running"):
                r = s.get(base + "/api/executions", params={"workflowId": wid, "status": st,
                                                            "limit": 1})
                if r.status_code != 200:
                    die("list executions", r)
                left += r.json()["pagination"]["total"]
        if left == 0:
            return True
        time.sleep(1)
    return False


def by_status(s, base, wid):
    out = {}
    for st in STATUSES:
        r = s.get(base + "/api/executions", params={"workflowId": wid, "status": st, "limit": 1})
        if r.status_code != 200:
            die("list executions", r)
        out[st] = r.json()["pagination"]["total"]
    return out


def report(load, samples, elapsed, mark, s, base, flows, drained):
    print()
    print("| request | requests/s | answers | errors |")
    print("|---|---|---|---|")
    for kind, _, _ in KINDS:
        statuses = {st: n for (k, st), n in load.count.items() if k == kind}
        total = sum(statuses.values())
        errs = sum(n for (k, _), n in load.errors.items() if k == kind)
        shown = ", ".join("%d× %d" % (n, st) for st, n in sorted(statuses.items()))
        print("| %s | %.1f | %s | %d |" % (kind, total / elapsed, shown or "none", errs))
    total = sum(load.count.values())
    errors = sum(load.errors.values())
    intended = sum(n for key, n in load.count.items() if key in INTENDED)
    print("| all | %.1f | %d | %d |" % (total / elapsed, total, errors))
    print()
    print("duration %.0f s; %d answers, of which %d intended 429s on login" % (
        elapsed, total, intended))
    if load.errors:
        print("errors (target: none):")
        for (kind, what), n in sorted(load.errors.items()):
            print("  %s: %d× %s" % (kind, n, what))
        for (kind, st), text in sorted(load.examples.items()):
            print("  e.g. %s %d: %s" % (kind, st, text))
    else:
        print("errors: none (target: none)")

    print()
    print("| server | RSS | open fds | of which: clients, to the fakes, other sockets, files, other |")
    print("|---|---|---|---|")
    names = {"mark": "at %d s" % mark}
    parts = ("clients", "to the fakes", "other sockets", "files", "other")
    for name, (rss, fds, kinds) in samples.items():
        print("| %s | %s | %d | %s |" % (names.get(name, name), mib(rss), fds,
                                        ", ".join(str(kinds[p]) for p in parts)))
    print()
    if "mark" in samples:
        m_rss, m_fds, _ = samples["mark"]
        e_rss, e_fds, _ = samples["end of the load"]
        growth = 100.0 * (e_rss - m_rss) / m_rss
        print("RSS at the end of the load vs at %d s: %+.1f %% (target: within 10 %%): %s" % (
            mark, growth, "met" if abs(growth) <= 10 else "MISSED"))
        print("open fds at %d s -> end of the load: %d -> %d (target: no growth): %s" % (
            mark, m_fds, e_fds, "met" if e_fds <= m_fds else "MISSED"))
    # Idle, before and after: for comparison only. The connections to the
    # fakes left after the load are libcurl's cache of idle connections,
    # closed after two minutes unused.
    b_fds, b_kinds = samples["before the load"][1:]
    a_fds, a_kinds = samples["after every execution ended"][1:]
    print("open fds idle, before the load -> after it: %d -> %d, of which %d cached "
          "connections to the fakes" % (b_fds, a_fds, a_kinds["to the fakes"] - b_kinds["to the fakes"]))

    print()
    if not drained:
        print("executions: some were still queued or running after 300 s")
    failed = 0
    for kind, wid in flows.items():
        st = by_status(s, base, wid)
        failed += st["failed"] + st["cancelled"] + st["timed_out"]
        print("executions of the %s workflow: %s" % (
            kind, ", ".join("%d %s" % (n, k) for k, n in st.items() if n) or "none"))
    print("executions started by this run: %d; ended otherwise than succeeded: %d "
          "(target: none)" % (len(load.started), failed))


def main():
    if len(sys.argv) != 10:
        raise SystemExit(__doc__)
    base, token, email, password = sys.argv[1:5]
    pid, http_url = int(sys.argv[5]), sys.argv[6]
    seconds, conns, mark = int(sys.argv[7]), int(sys.argv[8]), int(sys.argv[9])
    s, ids, flows = setup(base, token, http_url)
    load = Load(base, token, email, password, ids, flows)
    print("soak: %d s, %d connections, mark at %d s; weights: %s" % (
        seconds, conns, mark, ", ".join("%s %d" % (k, w) for k, w, _ in KINDS)), flush=True)
    samples, elapsed = asyncio.run(run(load, pid, load.port, seconds, conns, mark))
    drained = drain(s, base, flows)
    samples["after every execution ended"] = resources(pid, load.port)
    report(load, samples, elapsed, mark, s, base, flows, drained)


if __name__ == "__main__":
    main()
