"""Several instances as one: three `aop serve` processes sharing PostgreSQL and Redis.

These run in the PostgreSQL + Redis pass (AOP_TEST_BACKEND=pg). The module starts a
PostgreSQL and a Redis of its own (scripts/services.sh, in a temporary directory on
free ports), so that the tests which stop and restart them disturb nothing else; each
test gets a fresh database and Redis database number there.

- one rate-limit budget across instances; hits of refused tokens sent at once over
  instances are taken back from their user's budget exactly;
- read-after-write across instances: workflows, roles, logouts;
- thirty concurrent updates spread over instances lose nothing;
- executions spread over instances; one instance killed mid-run loses none;
- one user's quota of active executions holds across instances; claims stay
  round-robin across users with a claimer on each instance;
- a `wait: true` on one instance for an execution another one runs; cancel across;
- Redis stopped and restarted mid-load; PostgreSQL restarted mid-load;
- one LLM budget across instances: twenty concurrent executions never pass it;
- credentials: one key for all, concurrent changes of a credential's data;
- approvals: three deciders at once on three instances (one wins), continued by any
  instance; an approval timeout fires once across three instances;
- the console: every instance names the same asset version, so a page from one
  loads its files from any other.
"""
import os
import pathlib
import re
import shutil
import subprocess
import tempfile
import threading
import time

import pytest
import requests

from conftest import BACKEND, REPO, assert_error, fresh_backend, pg_connect
from authutil import admin_login, auth_env, bearer, login, me, register
from fakes import (H, at_once, chain, create_workflow, delay_node, get_execution, transform, wait_ended,
                   check_execution)
from fakes import fake_http, fake_llm, pricing_file  # noqa: F401 (fixtures used by name)
from sseclient import SSE
from budgetutil import budget_workflow, check_never_past_the_limit, create, scope, run_concurrently

pytestmark = pytest.mark.skipif(BACKEND != "pg", reason="needs PostgreSQL + Redis (AOP_TEST_BACKEND=pg)")

SERVICES = str(REPO / "scripts" / "services.sh")


class Services:
    """A PostgreSQL and a Redis of this module's own."""

    def __init__(self, path):
        self.dir = path
        self.urls = self.start()

    def start(self, what="all"):
        out = subprocess.run([SERVICES, "start", str(self.dir), what], check=True,
                             capture_output=True, text=True, timeout=120).stdout
        urls = dict(line.split("=", 1) for line in out.split() if "=" in line)
        if what != "all":
            urls = dict(self.urls, **urls)
        return urls

    def stop(self, what="all"):
        subprocess.run([SERVICES, "stop", str(self.dir), what], check=True, capture_output=True,
                       timeout=120)

    def fresh(self):
        """(DATABASE_URL, REDIS_URL) of an empty database and Redis db number."""
        return fresh_backend(self.urls["AOP_PG_URL"], self.urls["AOP_REDIS_URL"])[:2]


@pytest.fixture(scope="module")
def services():
    # Not under pytest's base directory: PostgreSQL runs as the postgres user
    # when the tests run as root, and must reach its data directory.
    path = tempfile.mkdtemp(prefix="aop-cluster-services-")
    try:
        s = Services(pathlib.Path(path))
        yield s
        s.stop()
    finally:
        shutil.rmtree(path, ignore_errors=True)


def cluster(aop_server, services, n=3, **env):
    """n instances on one fresh database: a list of Servers."""
    db, rd = services.fresh()
    env = dict(auth_env(**env), DATABASE_URL=db, REDIS_URL=rd, WORKERS="1",
               HTTP_NODE_ALLOW_PRIVATE="true")
    return [aop_server(**env) for _ in range(n)]


def metric(srv, name, **labels):
    text = srv.get("/metrics").text
    want = ",".join('%s="%s"' % kv for kv in sorted(labels.items()))
    pat = re.compile(r"^%s%s (\S+)$" % (re.escape(name), re.escape("{%s}" % want) if want else ""), re.M)
    m = pat.search(text)
    return float(m.group(1)) if m else None


# ---------------------------------------------------------------- shared state

def test_rate_limit_is_one_budget_across_instances(aop_server, services):
    a, b, c = cluster(aop_server, services, RATE_LIMIT_MAX=9, RATE_LIMIT_WINDOW_MS=60000)
    statuses = []
    for i in range(12):
        r = (a, b, c)[i % 3].get("/api/auth/me")
        statuses.append(r.status_code)
        if r.status_code == 401:
            assert int(r.headers["RateLimit-Remaining"]) == 9 - (i + 1), (i, dict(r.headers))
    assert statuses == [401] * 9 + [429] * 3, statuses
    # the budget holds on every instance, not only the one that counted last
    for s in (a, b, c):
        assert_error(s.get("/api/auth/me"), 429, "RATE_LIMITED")


def test_refused_tokens_at_once_leave_the_users_budget_exact(aop_server, services):
    """A token is counted against its user with its reads, and taken back when it turns
    out revoked: revoked and valid tokens of one user sent together over instances
    leave exactly the valid requests in the user's budget, and the IP's."""
    a, b, c = cluster(aop_server, services, RATE_LIMIT_MAX=40, RATE_LIMIT_WINDOW_MS=60000)
    user = register(a)
    old = login(b, user["_email"])
    assert c.post("/api/auth/logout", headers=bearer(old["accessToken"])).status_code == 204  # 1

    def send(s, srv, i):
        tok = old if i % 2 else user
        return s.get(srv.url + "/api/auth/me", headers=bearer(tok["accessToken"]), timeout=60)

    got = at_once([a, b, c], 24, send)
    assert [r.status_code for r in got[0::2]] == [200] * 12, [r.text for r in got[0::2]]
    assert [r.status_code for r in got[1::2]] == [401] * 12, [r.text for r in got[1::2]]
    r = me(b, bearer(user["accessToken"]))
    assert int(r.headers["RateLimit-Remaining"]) == 40 - 1 - 12 - 1, dict(r.headers)
    r = me(c, {})
    assert int(r.headers["RateLimit-Remaining"]) == 40 - 12 - 1, dict(r.headers)


def test_the_console_loads_its_files_from_any_instance(aop_server, services):
    servers = cluster(aop_server, services, n=2)
    pages = [s.get("/console/workflows") for s in servers]
    assert pages[0].text == pages[1].text and pages[0].headers["ETag"] == pages[1].headers["ETag"]
    files = re.findall(r'(?:src|href)="(/console/assets/[^"]+)"', pages[0].text)
    assert len(files) >= 3, pages[0].text
    for f in files:
        a, b = (s.get(f) for s in servers)
        assert a.status_code == b.status_code == 200, f
        assert a.headers["Cache-Control"] == b.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert a.content == b.content and a.headers["ETag"] == b.headers["ETag"], f


def test_read_after_write_is_coherent_across_instances(aop_server, services):
    a, b, c = cluster(aop_server, services)
    adm = admin_login(a)
    user = register(b)
    w = create_workflow(a, user, [transform("t", {"v": 1})], name="coherent")
    # every instance reads (and caches) the workflow, then one of them changes it
    for s in (a, b, c):
        assert s.get("/api/workflows/" + w["id"], headers=H(user)).json()["name"] == "coherent"
    r = c.request("PUT", "/api/workflows/" + w["id"], json={"name": "changed on c"}, headers=H(user))
    assert r.status_code == 200, r.text
    for s in (a, b, c):
        assert s.get("/api/workflows/" + w["id"], headers=H(user)).json()["name"] == "changed on c"
        names = [x["name"] for x in s.get("/api/workflows", headers=H(user)).json()["data"]]
        assert names == ["changed on c"], names
    # a role change on one instance holds on the others at the next request
    assert me(b, H(user)).json()["role"] == "user"
    r = a.request("PATCH", "/api/users/" + user["user"]["id"], json={"role": "viewer"}, headers=H(adm))
    assert r.status_code == 200, r.text
    for s in (a, b, c):
        assert me(s, H(user)).json()["role"] == "viewer"
    # a logout on one instance is refused by the others at once
    fresh = login(c, user["_email"])
    for s in (a, b, c):
        assert me(s, bearer(fresh["accessToken"])).status_code == 200
    assert b.post("/api/auth/logout", headers=bearer(fresh["accessToken"])).status_code == 204
    for s in (a, b, c):
        assert me(s, bearer(fresh["accessToken"])).status_code == 401


def test_thirty_concurrent_updates_over_instances_lose_nothing(aop_server, services):
    servers = cluster(aop_server, services, LOCK_WAIT_MS="20000", HTTP_THREADS="4")
    user = register(servers[0])
    w = create_workflow(servers[0], user, [transform("t", {"v": 1})], name="contended")

    def put(s, srv, i):
        r = s.request("PUT", srv.url + "/api/workflows/" + w["id"], json={"description": "writer %02d" % i},
                      headers=H(user), timeout=90)
        return r.status_code, r.json()

    results = at_once(servers, 30, put)
    assert [st for st, _ in results] == [200] * 30, [r for r in results if r[0] != 200][:3]
    versions = sorted(js["version"] for _, js in results)
    assert versions == list(range(2, 32)), versions       # each write got a version of its own
    for srv in servers:
        cur = srv.get("/api/workflows/" + w["id"], headers=H(user)).json()
        assert cur["version"] == 31
        last = max(results, key=lambda x: x[1]["version"])[1]
        assert cur["description"] == last["description"]
    hist = servers[1].get("/api/workflows/%s/versions?limit=100" % w["id"], headers=H(user)).json()
    assert hist["pagination"]["total"] == 31
    described = {v["version"]: v for v in hist["data"]}
    assert sorted(described) == list(range(1, 32))


# ---------------------------------------------------------------- executions

def delay_workflow(srv, user, ms, name="delays"):
    return create_workflow(srv, user, [delay_node("d", ms), transform("t", {"done": "{{input.n}}"})],
                           chain("d", "t"), name=name)


def start_many(servers, user, wid, n):
    ids = []
    for i in range(n):
        r = servers[i % len(servers)].post("/api/workflows/%s/execute" % wid, json={"input": {"n": i}},
                                           headers=H(user))
        assert r.status_code == 202, r.text
        ids.append(r.json()["executionId"])
    return ids


def test_executions_are_spread_over_instances(aop_server, services):
    servers = cluster(aop_server, services)
    user = register(servers[0])
    w = delay_workflow(servers[0], user, 300)
    ids = start_many(servers, user, w["id"], 60)
    for i, eid in enumerate(ids):
        e = wait_ended(servers[(i + 1) % 3], user, eid, timeout=30)
        assert e["status"] == "succeeded", e
        assert e["output"] == {"t": {"done": i}} or e["output"], e
    claimed = [metric(s, "aop_executions_total", event="claimed") for s in servers]
    assert sum(claimed) >= 60, claimed
    assert sum(1 for c in claimed if c and c > 0) >= 2, claimed


def test_instance_killed_mid_run_loses_no_execution(aop_server, services):
    servers = cluster(aop_server, services, EXECUTION_LEASE_MS="2000")
    user = register(servers[0])
    w = delay_workflow(servers[0], user, 2500)
    ids = start_many(servers, user, w["id"], 30)
    victim = None
    deadline = time.monotonic() + 10
    while victim is None and time.monotonic() < deadline:
        for s in servers:
            if (metric(s, "aop_executions_running") or 0) > 0:
                victim = s
                break
        time.sleep(0.05)
    assert victim is not None, "no instance took an execution"
    held = metric(victim, "aop_executions_running")
    victim.kill()
    alive = [s for s in servers if s is not victim]
    for eid in ids:
        e = wait_ended(alive[0], user, eid, timeout=40)
        assert e["status"] == "succeeded", e
        check_execution(e)
        assert [n["status"] for n in e["nodes"]] == ["succeeded", "succeeded"], e["nodes"]
    requeued = sum(metric(s, "aop_executions_total", event="requeued") or 0 for s in alive)
    assert requeued >= held >= 1, (requeued, held)


def test_quota_holds_across_instances(aop_server, services):
    """Concurrent executes of one user spread over three instances (three group
    commits at once, each on its own connection): exactly the quota gets in."""
    servers = cluster(aop_server, services, QUOTA_ACTIVE_EXECUTIONS="6", HTTP_THREADS="4")
    user = register(servers[0])
    w = delay_workflow(servers[0], user, 600000)

    def execute(s, srv, i):
        return s.post(srv.url + "/api/workflows/%s/execute" % w["id"], json={"input": {"n": i}},
                      headers=H(user), timeout=60)

    results = at_once(servers, 24, execute)
    codes = sorted(r.status_code for r in results)
    assert codes == [202] * 6 + [429] * 18, codes
    for r in results:
        if r.status_code == 429:
            assert_error(r, 429, "QUOTA_EXCEEDED")
            assert r.headers.get("Retry-After") == "1"
    for srv in servers:
        listed = srv.get("/api/executions?workflowId=%s" % w["id"], headers=H(user)).json()
        assert listed["pagination"]["total"] == 6, listed["pagination"]
    # an end on one instance frees a place for an execute on another
    first = next(r.json()["executionId"] for r in results if r.status_code == 202)
    assert servers[1].post("/api/executions/%s/cancel" % first, headers=H(user)).status_code == 200
    r = servers[2].post("/api/workflows/%s/execute" % w["id"], json={}, headers=H(user))
    assert r.status_code == 202, r.text
    assert_error(servers[0].post("/api/workflows/%s/execute" % w["id"], json={}, headers=H(user)),
                 429, "QUOTA_EXCEEDED")
    for e in servers[0].get("/api/executions?limit=100", headers=H(user)).json()["data"]:
        servers[0].post("/api/executions/%s/cancel" % e["id"], headers=H(user))


def test_fairness_holds_with_several_claimers(aop_server, services):
    """Three instances, each running one execution at a time: user a's slow backlog
    fills them and queues behind them; user b's execution, queued after all of it,
    starts within one round of each claimer, not after a's backlog."""
    servers = cluster(aop_server, services, WORKER_MAX_EXECUTIONS="1")
    a, b = register(servers[0]), register(servers[0])
    wa = delay_workflow(servers[0], a, 2000, name="a's slow")
    wb = create_workflow(servers[0], b, [transform("t", {"ok": True})], name="b's quick")
    ids = start_many(servers, a, wa["id"], 12)
    newcomer = start_many(servers[1:2], b, wb["id"], 1)[0]
    ea = [wait_ended(servers[i % 3], a, eid, timeout=120) for i, eid in enumerate(ids)]
    eb = wait_ended(servers[0], b, newcomer, timeout=120)
    assert [e["status"] for e in ea + [eb]] == ["succeeded"] * 13
    waiting = [e for e in ea if e["startedAt"] > eb["createdAt"]]
    assert len(waiting) >= 6, ([e["startedAt"] for e in ea], eb["createdAt"])
    ahead = [e for e in ea if eb["createdAt"] < e["startedAt"] < eb["startedAt"]]
    assert len(ahead) <= 2, ("a's executions started while b's waited", eb, ahead)


def running_on(servers):
    return [s for s in servers if (metric(s, "aop_executions_running") or 0) > 0]


def runner_and_other(a, b, timeout=10):
    """Waits until a or b runs an execution: (that one, the other)."""
    deadline = time.monotonic() + timeout
    while not running_on((a, b)):
        assert time.monotonic() < deadline, "no instance took the execution"
        time.sleep(0.02)
    runner = running_on((a, b))[0]
    return runner, (b if runner is a else a)


def test_wait_on_one_instance_for_an_execution_another_runs(aop_server, services):
    """A workflow limited to one execution at a time: the first one runs on some
    instance; a `wait: true` sent to the other instance queues the second, which the
    first instance claims when its predecessor ends (its own end wakes it at once,
    the other instance would only look a second later). The wait must end with 200
    as soon as it ends there, told across instances."""
    a, b = cluster(aop_server, services, n=2)
    user = register(a)
    w = create_workflow(a, user, [delay_node("d", 1500), transform("t", {"ok": True})], chain("d", "t"),
                        settings={"maxConcurrency": 1}, name="one at a time")
    for attempt in range(5):
        first = start_many([a], user, w["id"], 1)[0]
        runner, other = runner_and_other(a, b)
        before = metric(runner, "aop_executions_total", event="claimed")
        t0 = time.monotonic()
        r = other.post("/api/workflows/%s/execute" % w["id"], json={"wait": True, "timeoutMs": 20000},
                       headers=H(user), timeout=30)
        took = time.monotonic() - t0
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "succeeded"
        assert wait_ended(a, user, first)["status"] == "succeeded"
        if metric(runner, "aop_executions_total", event="claimed") == before + 1:
            # the runner ran the waited one too: the end was told across instances
            assert took < 3 + 1.5, took
            return
    pytest.fail("the waited execution never ran on the other instance in 5 tries")


def test_cancel_on_one_instance_stops_the_run_on_another(aop_server, services):
    a, b = cluster(aop_server, services, n=2)
    user = register(a)
    slow = delay_workflow(a, user, 60000, name="slow")
    eid = start_many([a], user, slow["id"], 1)[0]
    runner, other = runner_and_other(a, b)
    r = other.post("/api/executions/%s/cancel" % eid, headers=H(user))
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "cancelled"
    deadline = time.monotonic() + 5
    while running_on((runner,)):
        assert time.monotonic() < deadline, "the running instance did not drop the cancelled run"
        time.sleep(0.05)
    e = get_execution(runner, user, eid)
    assert e["status"] == "cancelled"
    assert {n["status"] for n in e["nodes"]} <= {"cancelled", "skipped"}, e["nodes"]


# ---------------------------------------------------------------- outages

class Load:
    """Keeps requests going on every instance from a few threads; records the
    outcome of each as (status or exception name, seconds it took)."""

    def __init__(self, servers, headers, paths):
        self.servers, self.headers, self.paths = servers, headers, paths
        self.stop = threading.Event()
        self.results = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True) for i in range(3)]

    def run(self, i):
        s = requests.Session()
        s.trust_env = False
        k = i
        while not self.stop.is_set():
            srv = self.servers[k % len(self.servers)]
            path = self.paths[k % len(self.paths)]
            k += 1
            t0 = time.monotonic()
            try:
                st = s.get(srv.url + path, headers=self.headers, timeout=15).status_code
            except requests.RequestException as e:
                st = type(e).__name__
            with self.lock:
                self.results.append((st, time.monotonic() - t0))
            time.sleep(0.01)
        s.close()

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(30)

    def take(self):
        with self.lock:
            out, self.results = self.results, []
        return out


def wait_ready(servers, timeout=30):
    deadline = time.monotonic() + timeout
    for s in servers:
        while s.get("/ready").status_code != 200:
            assert time.monotonic() < deadline, s.get("/ready").text
            time.sleep(0.1)


def test_redis_stopped_and_restarted_mid_load(aop_server, services):
    servers = cluster(aop_server, services, RATE_LIMIT_MAX=100000)
    a, b, c = servers
    user = register(a)
    w = create_workflow(a, user, [transform("t", {"v": 1})], name="before the outage")
    with Load(servers, H(user), ["/api/workflows/" + w["id"], "/api/auth/me", "/api/workflows"]) as load:
        time.sleep(0.5)
        services.stop("redis")
        time.sleep(0.5)
        for s in servers:
            r = s.get("/ready")
            assert r.status_code == 503, r.text
            assert r.json()["checks"] == {"database": "ok", "redis": "down"}
        # writes and reads go on from the database while Redis is away
        r = b.request("PUT", "/api/workflows/" + w["id"], json={"name": "during the outage"}, headers=H(user))
        assert r.status_code == 200, r.text
        for s in servers:
            assert s.get("/api/workflows/" + w["id"], headers=H(user)).json()["name"] == "during the outage"
        fresh = login(c, user["_email"])
        assert a.post("/api/auth/logout", headers=bearer(fresh["accessToken"])).status_code == 204
        time.sleep(0.5)
        during = load.take()
        services.urls = services.start("redis")
        wait_ready(servers)
        during += load.take()  # answers while it came back: 200 as well
        time.sleep(1.0)
        after = load.take()
    assert during and after
    assert all(st == 200 for st, _ in during), sorted({st for st, _ in during}, key=str)
    assert all(st == 200 for st, _ in after), sorted({st for st, _ in after}, key=str)
    assert max(t for _, t in during) < 5, max(t for _, t in during)
    # nothing stale or revoked comes back once Redis is back
    for s in servers:
        assert s.get("/api/workflows/" + w["id"], headers=H(user)).json()["name"] == "during the outage"
        assert me(s, bearer(fresh["accessToken"])).status_code == 401
    r = c.request("PUT", "/api/workflows/" + w["id"], json={"name": "after the outage"}, headers=H(user))
    assert r.status_code == 200
    for s in servers:
        assert s.get("/api/workflows/" + w["id"], headers=H(user)).json()["name"] == "after the outage"


def test_postgres_restarted_mid_load(aop_server, services):
    servers = cluster(aop_server, services, EXECUTION_LEASE_MS="3000")
    a, b, c = servers
    user = register(a)
    w = delay_workflow(a, user, 1500)
    ids = start_many(servers, user, w["id"], 15)
    with Load(servers, H(user), ["/api/workflows/" + w["id"], "/api/executions?limit=5"]) as load:
        time.sleep(0.5)
        services.stop("pg")
        time.sleep(1.5)
        for s in servers:
            r = s.get("/ready")
            assert r.status_code == 503, r.text
            assert r.json()["checks"]["database"] == "down"
        during = load.take()
        services.urls = services.start("pg")
        wait_ready(servers)
        load.take()            # answers while it came back
        time.sleep(1.0)
        after = load.take()
    # in the gap: answers, not hangs — 503 from what needed the database
    assert during, "no request was answered during the outage"
    assert max(t for _, t in during) < 5, max(t for _, t in during)
    assert {st for st, _ in during} <= {200, 503}, sorted({st for st, _ in during}, key=str)
    assert after and all(st == 200 for st, _ in after), sorted({st for st, _ in after}, key=str)
    # every execution queued before the restart still ends, on some instance
    for eid in ids:
        e = wait_ended(b, user, eid, timeout=60)
        assert e["status"] == "succeeded", e
    r = c.post("/api/workflows/%s/execute" % w["id"], json={"wait": True, "input": {"n": 99}},
               headers=H(user), timeout=30)
    assert r.status_code == 200 and r.json()["status"] == "succeeded", r.text


# ---------------------------------------------------------------- budgets

def test_budget_holds_across_instances(aop_server, services, fake_llm, pricing_file):
    """Twenty executions of three parallel llm nodes each, started at once over three
    instances, reserve against one budget: together they never spend past it."""
    servers = cluster(aop_server, services, LLM_BASE_URL=fake_llm.base_url,
                      LLM_API_KEY=fake_llm.default_key, LLM_PRICING_FILE=str(pricing_file))
    fake_llm.reset()
    fake_llm.script("test-model", prompt_tokens=2, completion_tokens=3, delay=0.3)
    adm = admin_login(servers[0])
    user = register(servers[1])
    wf = budget_workflow(servers[0], user)
    b = create(servers[2], adm, scope("workflow", wf["id"]), 100, "total")
    executions = run_concurrently(servers, user, wf["id"], 20)
    for e in executions:
        check_execution(e)
    check_never_past_the_limit(servers[1], adm, b, executions, fake_llm)


# ---------------------------------------------------------------- credentials

def test_credentials_across_instances(aop_server, services, run_cli, fake_http):
    """Instances share one key: a credential made on one is used by another; twelve
    concurrent changes of its data over three instances each either apply (200) or
    are refused (409 VERSION_CONFLICT), and what is sent at the end is one of those
    answered 200; an instance with another key is refused at start."""
    import base64
    a, b, c = cluster(aop_server, services)
    user = register(a)
    r = a.post("/api/credentials", headers=H(user), json={
        "name": "basic", "type": "http_basic", "allowedHosts": ["127.0.0.1"],
        "data": {"username": "u", "password": "pw-start-0000"}})
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    assert b.get("/api/credentials/%s" % cid, headers=H(user)).json()["hint"] == "\u20260000"
    passwords = ["pw-concurrent-%04d" % (1000 + i) for i in range(12)]
    answers = at_once([a, b, c], 12, lambda s, srv, i: s.patch(
        srv.url + "/api/credentials/%s" % cid, json={"data": {"password": passwords[i]}},
        headers=H(user), timeout=30))
    codes = [x.status_code for x in answers]
    assert set(codes) <= {200, 409} and 200 in codes, codes
    for x in answers:
        if x.status_code == 409:
            assert x.json()["error"]["code"] == "VERSION_CONFLICT"
    applied = {passwords[i] for i, x in enumerate(answers) if x.status_code == 200}
    hint = c.get("/api/credentials/%s" % cid, headers=H(user)).json()["hint"]
    assert hint[1:] in {p[-4:] for p in applied}, (hint, applied)
    wf = create_workflow(c, user, [{"id": "call", "type": "http",
                                    "config": {"url": fake_http.url + "/json", "credentialId": cid}}])
    fake_http.clear_requests()
    r = b.post("/api/workflows/%s/execute" % wf["id"], json={"wait": True}, headers=H(user), timeout=30)
    assert r.status_code == 200 and r.json()["status"] == "succeeded", r.text
    sent = fake_http.requests(path="/json")[-1].headers["authorization"]
    sent_pw = base64.b64decode(sent.split(" ", 1)[1]).decode().split(":", 1)[1]
    assert sent_pw in applied and sent_pw.endswith(hint[1:])
    other_key = base64.b64encode(b"o" * 32).decode()
    refused = run_cli(["serve"], env=dict(a.env, CREDENTIALS_KEY=other_key, PORT="0"), timeout=30)
    assert refused.returncode == 2 and "CREDENTIALS_KEY" in refused.err, refused


# ---------------------------------------------------------------- live events

def test_a_stream_follows_an_execution_another_instance_runs(aop_server, services):
    """The stream is opened on the instance that does not run the execution: every
    event reaches it (over NOTIFY, read from the store), in order with no gap, and
    the stream ends after execution.finished; the global stream there sees the
    lifecycle too."""
    from sseclient import SSE
    a, b = cluster(aop_server, services, n=2)
    user = register(a)
    w = create_workflow(a, user, [delay_node("d%d" % i, 300) for i in range(4)], chain("d0", "d1", "d2", "d3"))
    eid = start_many([a], user, w["id"], 1)[0]
    runner, other = runner_and_other(a, b)
    g = SSE(other, "/api/events?workflowId=%s" % w["id"], H(user))
    s = SSE(other, "/api/executions/%s/events" % eid, H(user))
    assert s.status == 200 and g.status == 200
    evs = s.rest(timeout=20)
    seqs = [e["data"]["seq"] for e in evs]
    assert seqs == list(range(1, len(seqs) + 1)), seqs
    assert [e["event"] for e in evs].count("node.finished") == 4
    assert evs[-1]["event"] == "execution.finished" and evs[-1]["data"]["status"] == "succeeded"
    assert s.ended
    fin = g.until("execution.finished", timeout=10)
    assert fin and fin[-1]["data"]["executionId"] == eid and fin[-1]["event"] == "execution.finished"
    g.close()
    # a second run started on the other instance reaches a global stream on the runner
    g2 = SSE(runner, "/api/events", H(user))
    e2 = start_many([other], user, w["id"], 1)[0]
    got = g2.until("execution.queued", timeout=10)
    assert got and got[-1]["data"]["executionId"] == e2
    g2.close()
    wait_ended(a, user, e2, timeout=20)


def test_cancel_and_delete_on_one_instance_end_streams_on_another(aop_server, services):
    from sseclient import SSE
    a, b = cluster(aop_server, services, n=2)
    user = register(a)
    adm = admin_login(a)
    slow = delay_workflow(a, user, 60000, name="slow")
    eid = start_many([a], user, slow["id"], 1)[0]
    s = SSE(b, "/api/executions/%s/events" % eid, H(user))
    s.until("node.started", timeout=10)
    r = a.post("/api/executions/%s/cancel" % eid, headers=H(user))
    assert r.status_code == 200
    rest = s.rest(timeout=10)
    assert rest and rest[-1]["event"] == "execution.finished" and rest[-1]["data"]["status"] == "cancelled"
    eid2 = start_many([a], user, slow["id"], 1)[0]
    s2 = SSE(b, "/api/executions/%s/events" % eid2, H(user))
    s2.until("node.started", timeout=10)
    assert a.request("DELETE", "/api/executions/%s" % eid2, headers=H(adm)).status_code == 204
    s2.rest(timeout=10)
    assert s2.ended


# ---------------------------------------------------------------- triggers

def test_each_due_time_runs_once_across_three_instances(aop_server, services):
    """One every-second schedule for 20 s on three instances: each due time exactly once."""
    a, b, c = cluster(aop_server, services)
    user = register(a)
    w = create_workflow(a, user, [transform("t", {})])
    r = b.post("/api/workflows/%s/schedules" % w["id"], headers=H(user),
               json={"cron": "* * * * * *", "overlap": "allow"})
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    t0 = time.time()
    time.sleep(20)
    r = c.request("PATCH", "/api/schedules/" + sid, headers=H(user), json={"enabled": False})
    assert r.status_code == 200, r.text
    t1 = time.time()
    time.sleep(1.5)  # a due time being started as it was disabled commits meanwhile
    runs, page = [], 1
    while True:
        r = a.get("/api/executions", headers=H(user),
                  params={"trigger": "schedule", "limit": 100, "page": page})
        data = r.json()["data"]
        runs += [e for e in data if e.get("triggerId") == sid]
        if len(data) < 100:
            break
        page += 1
    due = sorted(e["scheduledFor"] for e in runs)
    assert len(due) == len(set(due)), "a due time ran twice: %r" % due
    # every second between the first and the disabling ran (allowing the edges)
    assert len(due) >= int(t1 - t0) - 2, (len(due), due)
    secs = [int(time.mktime(time.strptime(d[:19], "%Y-%m-%dT%H:%M:%S"))) for d in due]
    assert secs == list(range(secs[0], secs[0] + len(secs))), "gaps: %r" % due


def test_a_schedule_change_applies_on_every_instance(aop_server, services):
    a, b, c = cluster(aop_server, services)
    user = register(a)
    w = create_workflow(a, user, [transform("t", {})])
    r = a.post("/api/workflows/%s/schedules" % w["id"], headers=H(user),
               json={"cron": "0 0 1 1 *", "overlap": "allow"})
    sid = r.json()["id"]
    # changed on b to every second; every instance must know it within a second or so
    r = b.request("PATCH", "/api/schedules/" + sid, headers=H(user), json={"cron": "* * * * * *"})
    assert r.status_code == 200, r.text
    time.sleep(3.5)
    r = c.request("DELETE", "/api/schedules/" + sid, headers=H(user))
    assert r.status_code == 204
    time.sleep(1.5)
    runs = [e for e in a.get("/api/executions", headers=H(user),
                             params={"trigger": "schedule", "limit": 100}).json()["data"]]
    n = len(runs)
    assert 2 <= n <= 5, n
    time.sleep(2)
    assert len(a.get("/api/executions", headers=H(user),
                     params={"trigger": "schedule", "limit": 100}).json()["data"]) == n


def test_idempotency_key_holds_across_instances(aop_server, services):
    a, b, c = cluster(aop_server, services)
    user = register(a)
    w = create_workflow(a, user, [transform("t", {})])
    r = a.post("/api/workflows/%s/webhooks" % w["id"], headers=H(user), json={"auth": "none"})
    hid = r.json()["id"]
    rs = at_once([a, b, c], 9, lambda sess, srv, i: sess.post(
        srv.url + "/hooks/" + hid, data=b"{}", headers={"Idempotency-Key": "k1"}, timeout=30))
    assert {r.status_code for r in rs} == {202}, [r.text for r in rs]
    assert len({r.json()["executionId"] for r in rs}) == 1
# ---------------------------------------------------------------- child executions

def test_children_run_on_any_instance_and_wake_their_parents(aop_server, services):
    """Parents and their children (workflow nodes) spread over instances: every parent
    ends with its own child's output, one child each; a cancel sent to any instance
    cancels a parent and the child another instance may be running."""
    servers = cluster(aop_server, services)
    user = register(servers[0])
    child = delay_workflow(servers[0], user, 200, name="child")
    parent = create_workflow(servers[1], user, [{"id": "sub", "type": "workflow",
                                                 "config": {"workflowId": child["id"],
                                                            "input": {"n": "{{input.n}}"}}}],
                             name="parent")
    ids = start_many(servers, user, parent["id"], 30)
    for i, eid in enumerate(ids):
        e = wait_ended(servers[(i + 2) % 3], user, eid, timeout=30)
        assert e["status"] == "succeeded", e
        assert e["output"] == {"sub": {"t": {"done": i}}}, e["output"]
    kids = servers[0].get("/api/executions", headers=H(user),
                          params={"workflowId": child["id"], "limit": 100}).json()["data"]
    assert sorted(k["parentExecutionId"] for k in kids) == sorted(ids), kids
    claimed = [metric(s, "aop_executions_total", event="claimed") or 0 for s in servers]
    assert sum(1 for c in claimed if c > 0) >= 2, claimed

    slow = delay_workflow(servers[0], user, 20000, name="slow child")
    waiting = create_workflow(servers[0], user, [{"id": "sub", "type": "workflow",
                                                  "config": {"workflowId": slow["id"]}}])
    eid = start_many(servers, user, waiting["id"], 1)[0]
    deadline = time.monotonic() + 10
    kid = []
    while not kid:
        assert time.monotonic() < deadline, "the child never ran"
        kid = [k for k in servers[1].get("/api/executions", headers=H(user),
                                         params={"workflowId": slow["id"]}).json()["data"]
               if k["status"] == "running"]
        time.sleep(0.05)
    r = servers[2].post("/api/executions/%s/cancel" % eid, headers=H(user))
    assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text
    k = wait_ended(servers[0], user, kid[0]["id"], timeout=5)
    assert k["status"] == "cancelled", k
    deadline = time.monotonic() + 5
    while running_on(servers):
        assert time.monotonic() < deadline, "a cancelled child still runs somewhere"
        time.sleep(0.05)


# ---------------------------------------------------------------- approvals

def approval_workflow(srv, user, **config):
    """a: approval -> yes (when true) | no (when false)."""
    nodes = [{"id": "a", "type": "approval", "config": config},
             transform("yes", {"ok": True}), transform("no", {"ok": False})]
    edges = [{"from": "a", "to": "yes", "when": True}, {"from": "a", "to": "no", "when": False}]
    return create_workflow(srv, user, nodes, edges)


def claims_of(srv, ids):
    con = pg_connect(srv.env["DATABASE_URL"])
    try:
        with con.cursor() as cur:
            cur.execute("SELECT id, claims FROM executions WHERE id = ANY(%s)", (list(ids),))
            return dict(cur.fetchall())
    finally:
        con.close()


def test_approvals_decided_on_one_instance_continue_on_any(aop_server, services):
    """Three deciders at once, one per instance, on each of nine waiting executions:
    exactly one wins each time, and every execution goes on to its branch."""
    servers = cluster(aop_server, services)
    user = register(servers[0])
    w = approval_workflow(servers[0], user)
    ids = start_many(servers, user, w["id"], 9)
    for i, eid in enumerate(ids):
        poll_status(servers[(i + 1) % 3], user, eid, "waiting")
    for i, eid in enumerate(ids):
        answers = at_once(servers, 3, lambda s, srv, k: s.post(
            srv.url + "/api/executions/%s/approvals/a" % eid,
            json={"decision": "approve" if i % 2 else "reject"}, headers=H(user), timeout=30))
        codes = sorted(r.status_code for r in answers)
        assert codes == [200, 409, 409], (eid, codes, [r.text for r in answers])
    for i, eid in enumerate(ids):
        e = check_execution(wait_ended(servers[(i + 2) % 3], user, eid, timeout=30))
        assert e["status"] == "succeeded", e
        taken = "yes" if i % 2 else "no"
        assert sorted(n["nodeId"] for n in e["nodes"] if n["status"] == "succeeded") == sorted(["a", taken]), e
    assert set(claims_of(servers[0], ids).values()) == {2}, "each ran once before and once after its decision"


def test_an_approval_timeout_fires_once_across_instances(aop_server, services):
    servers = cluster(aop_server, services)
    user = register(servers[0])
    w = approval_workflow(servers[0], user, timeoutMs=800, onTimeout="reject")
    ids = start_many(servers, user, w["id"], 12)
    for i, eid in enumerate(ids):
        e = check_execution(wait_ended(servers[i % 3], user, eid, timeout=30))
        assert e["status"] == "succeeded", e
        a = [n for n in e["nodes"] if n["nodeId"] == "a"][0]
        assert a["output"]["decision"] == "timeout" and a["attempts"] == 1, a
        assert [n["status"] for n in e["nodes"] if n["nodeId"] == "no"] == ["succeeded"], e
        evs = SSE(servers[(i + 1) % 3], "/api/executions/%s/events" % eid, H(user)).rest()
        finished = [x["data"]["nodeId"] for x in evs if x["event"] == "node.finished"]
        assert sorted(finished) == ["a", "no", "yes"], evs
    assert set(claims_of(servers[0], ids).values()) == {2}, "each timeout queued its execution once"


def poll_status(srv, user, eid, status, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        e = get_execution(srv, user, eid)
        if e["status"] == status:
            return e
        time.sleep(0.05)
    raise AssertionError("%s never %s: %r" % (eid, status, e))


# ---------------------------------------------------------------- agents

def test_agents_on_any_instance_run_each_tool_call_once(aop_server, services, fake_http):
    """Agents spread over three instances (one of them stopped with kill -9 while its
    agents wait for their tools, so others take them over after its lease): each ends
    with its answer, each of its tool calls reached the tool once, and its steps are
    stored once each."""
    from fakes import FakeAgentLLM
    with FakeAgentLLM() as llm:
        servers = cluster(aop_server, services, LLM_BASE_URL=llm.base_url, LLM_API_KEY=llm.default_key,
                          EXECUTION_LEASE_MS="2000")
        user = register(servers[0])
        llm.script("cl-agent", [{"tools": [("count", {"q": "a"}), ("slow", {"q": "b"})]}, {"content": "ok"}])
        tools = [{"name": "count", "description": "counts", "parameters": {"type": "object"},
                  "http": {"url": fake_http.url + "/count/cl-agent-{{input.n}}"}},
                 {"name": "slow", "description": "waits", "parameters": {"type": "object"},
                  "http": {"url": fake_http.url + "/delay/1500"}}]
        w = create_workflow(servers[0], user, [{"id": "ag", "type": "agent", "config": {
            "model": "cl-agent", "messages": [{"role": "user", "content": "go {{input.n}}"}], "tools": tools}}])
        ids = start_many(servers, user, w["id"], 12)
        time.sleep(0.8)  # every agent is waiting for its slow tool
        servers[2].kill()
        for i, eid in enumerate(ids):
            e = wait_ended(servers[i % 2], user, eid, timeout=40)
            assert e["status"] == "succeeded", e
            out = [n for n in e["nodes"] if n["nodeId"] == "ag"][0]["output"]
            assert out["content"] == "ok" and out["steps"] == 2 and out["toolCalls"] == 2, out
            assert fake_http.hits("cl-agent-%d" % i) == 1, "tool call of %s ran %d times" % (
                eid, fake_http.hits("cl-agent-%d" % i))
        con = pg_connect(servers[0].env["DATABASE_URL"])
        try:
            with con.cursor() as cur:
                cur.execute("SELECT execution_id, COUNT(*), COUNT(DISTINCT seq) FROM agent_steps "
                            "WHERE execution_id = ANY(%s) GROUP BY execution_id", (list(ids),))
                rows = cur.fetchall()
        finally:
            con.close()
        assert len(rows) == 12 and all(r[1] == 4 and r[2] == 4 for r in rows), rows
