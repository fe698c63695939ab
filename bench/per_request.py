#!/usr/bin/env python3
"""What one request costs, counted rather than timed (BENCH_ONLY=per-request).

  bench/per_request.py instructions BINARY...
      each binary under valgrind --tool=callgrind (one HTTP thread, SQLite, a
      warm server: counters zeroed after 200 requests), then 1,000 requests of
      each kind: the instructions the server spent per request. Deterministic
      to within a few hundred instructions, so two builds compare on a busy
      machine where wall-clock rates move by a third.
  bench/per_request.py trips PG_URL REDIS_URL REDIS_PIDFILE BINARY...
      each binary on PostgreSQL + Redis: Redis round trips per request (the
      read events Redis processed, INFO stats total_reads_processed: commands
      pipelined in one write are one), commands sent (a script is one) and
      commands run per request, from MONITOR, each over 100 requests; then
      over 1,000 more the median latency on one connection and the CPU time
      aop and redis-server spent per request.

Kinds: GET /health, GET /api/auth/me (bearer), GET /api/workflows/:id (cached);
for instructions also POST /api/workflows/:id/execute with {"wait": true} of three
transforms, one at a time (each its own commit: the cost without load to share it).
"""
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

KINDS = [("GET /health", "health"), ("GET /api/auth/me, bearer", "me"),
         ("GET /api/workflows/:id, cached", "wf")]
EXEC_KIND = ("POST /api/workflows/:id/execute `{\"wait\": true}`, 3 transforms", "exec")
THREE = {"nodes": [
    {"id": "a", "type": "transform", "config": {"output": {"x": "{{input.x}}", "step": 1}}},
    {"id": "b", "type": "transform", "config": {"output": {"x": "{{nodes.a.output.x}}", "step": 2}}},
    {"id": "c", "type": "transform", "config": {"output": {"x": "{{nodes.b.output.x}}", "step": 3}}}],
    "edges": [{"from": "a", "to": "b"}, {"from": "b", "to": "c"}]}
WARM, COUNT = 200, 1000


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Client:
    def __init__(self, port):
        self.port = port
        self.c = None
        for _ in range(600):
            try:
                self.c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                self.c.request("GET", "/health")
                self.c.getresponse().read()
                return
            except OSError:
                time.sleep(0.1)
        raise SystemExit("the server did not start")

    def req(self, method, path, body=None, token=None):
        h = {"Content-Type": "application/json"}
        if token:
            h["Authorization"] = "Bearer " + token
        self.c.request(method, path, json.dumps(body) if body is not None else None, h)
        r = self.c.getresponse()
        return r.status, r.read()

    def setup(self):
        """A user and a workflow: the paths of the three kinds, and the token."""
        email = "bench-%d@example.com" % time.time_ns()
        st, b = self.req("POST", "/api/auth/register",
                         {"email": email, "password": "correct-horse-1", "name": "Bench"})
        assert st == 201, (st, b)
        token = json.loads(b)["accessToken"]
        st, b = self.req("POST", "/api/workflows", {"name": "w", "definition": {
            "nodes": [{"id": "t", "type": "transform", "config": {"output": {"a": 1}}}],
            "edges": []}}, token)
        assert st == 201, (st, b)
        paths = {"health": "/health", "me": "/api/auth/me",
                 "wf": "/api/workflows/" + json.loads(b)["id"]}
        st, b = self.req("POST", "/api/workflows", {"name": "three", "definition": THREE}, token)
        assert st == 201, (st, b)
        paths["exec"] = "/api/workflows/%s/execute" % json.loads(b)["id"]
        return paths, token

    def run(self, path, token, n):
        execute = path.endswith("/execute")
        for _ in range(n):
            if execute:
                st, b = self.req("POST", path, {"input": {"x": 1}, "wait": True}, token)
                assert st == 200 and json.loads(b)["status"] == "succeeded", (path, st, b[:200])
            else:
                st, b = self.req("GET", path, None, token)
                assert st == 200, (path, st, b[:200])


def server_env(d, port, **extra):
    env = dict(os.environ, PORT=str(port), DATA_DIR=d, HTTP_THREADS="1", WORKERS="1",
               BCRYPT_COST="4", RATE_LIMIT_MAX="100000000", AUTH_RATE_LIMIT_MAX="1000",
               LOG_LEVEL="warn", DATABASE_URL="sqlite://%s/aop.db" % d)
    env.update(extra)
    return env


def instructions(binaries):
    kinds = KINDS + [EXEC_KIND]
    rows = {k: [] for _, k in kinds}
    for binary in binaries:
        for _, kind in kinds:
            d = tempfile.mkdtemp(prefix="aop-cg-")
            port = free_port()
            out = os.path.join(d, "cg.out")
            p = subprocess.Popen(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out,
                                  binary, "serve"], env=server_env(d, port),
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                c = Client(port)
                paths, token = c.setup()
                c.run(paths[kind], token, WARM)
                subprocess.run(["callgrind_control", "-z", str(p.pid)], check=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                c.run(paths[kind], token, COUNT)
                subprocess.run(["callgrind_control", "-d", str(p.pid)], check=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            finally:
                p.terminate()
                p.wait()
            total = subprocess.run(["callgrind_annotate", out + ".1"], capture_output=True,
                                   text=True).stdout
            m = re.search(r"^([\d,]+) .*PROGRAM TOTALS", total, re.M)
            rows[kind].append(int(m.group(1).replace(",", "")) // COUNT)
            subprocess.run(["rm", "-rf", d])
    print("| request | " + " | ".join(os.path.relpath(b) for b in binaries) + " |")
    print("|---|" + "---|" * len(binaries))
    for label, kind in kinds:
        print("| %s | %s |" % (label, " | ".join("{:,}".format(v) for v in rows[kind])))


def cpu_seconds(pid):
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


WATCHED = 100


def watched(rport, send):
    """Commands Redis received while send() ran, from MONITOR: (sent by a
    client, each a round trip; run by a script, inside its round trip)."""
    mon = subprocess.Popen(["redis-cli", "-p", rport, "MONITOR"], stdout=subprocess.PIPE,
                           text=True)
    assert mon.stdout.readline().strip() == "OK"
    send()
    subprocess.run(["redis-cli", "-p", rport, "ECHO", "bench-end"], stdout=subprocess.DEVNULL)
    sent = run = 0
    for line in mon.stdout:
        if '"ECHO" "bench-end"' in line:
            break
        if " lua]" in line:
            run += 1
        else:
            sent += 1
    mon.terminate()
    mon.wait()
    return sent, run


def trips(pg, redis_url, pidfile, binaries):
    rport = redis_url.rsplit(":", 1)[1]
    rpid = int(open(pidfile).read())

    def rcli(*a):
        return subprocess.run(["redis-cli", "-p", rport] + list(a), capture_output=True,
                              text=True).stdout

    def reads():
        return int(re.search(r"^total_reads_processed:(\d+)", rcli("INFO", "stats"), re.M).group(1))

    def read_events(send):
        """Read events Redis processed while send() ran, less those of the INFO
        calls themselves (measured with nothing between two of them)."""
        a = reads()
        own = reads() - a
        b = reads()
        send()
        return reads() - b - own

    print("| request | build | Redis round trips | commands sent | commands run | p50 | CPU aop "
          "| CPU redis |")
    print("|---|---|---|---|---|---|---|---|")
    for binary in binaries:
        d = tempfile.mkdtemp(prefix="aop-trips-")
        port = free_port()
        rcli("FLUSHALL")
        env = server_env(d, port, DATABASE_URL=pg, REDIS_URL=redis_url, HTTP_THREADS="2",
                         JWT_ACCESS_SECRET="a" * 40, JWT_REFRESH_SECRET="b" * 40,
                         CREDENTIALS_KEY="A" * 43 + "=")
        p = subprocess.Popen([binary, "serve"], env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        try:
            c = Client(port)
            paths, token = c.setup()
            for label, kind in KINDS[1:]:
                c.run(paths[kind], token, WARM)
                c0 = (cpu_seconds(p.pid), cpu_seconds(rpid))
                lat = []
                for _ in range(COUNT):
                    t = time.monotonic()
                    c.run(paths[kind], token, 1)
                    lat.append(time.monotonic() - t)
                c1 = (cpu_seconds(p.pid), cpu_seconds(rpid))
                lat.sort()
                rt = read_events(lambda: c.run(paths[kind], token, WATCHED))
                sent, run = watched(rport, lambda: c.run(paths[kind], token, WATCHED))
                print("| %s | %s | %.1f | %.1f | %.1f | %.0f µs | %.0f µs | %.0f µs |" % (
                    label, os.path.relpath(binary), rt / WATCHED, sent / WATCHED,
                    (sent + run) / WATCHED,
                    lat[COUNT // 2] * 1e6, (c1[0] - c0[0]) / COUNT * 1e6,
                    (c1[1] - c0[1]) / COUNT * 1e6))
        finally:
            p.terminate()
            p.wait()
            subprocess.run(["rm", "-rf", d])


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "instructions":
        instructions(sys.argv[2:])
    elif len(sys.argv) >= 6 and sys.argv[1] == "trips":
        trips(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:])
    else:
        raise SystemExit(__doc__)
