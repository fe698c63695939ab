"""Workflow versions: the history, snapshots, optimistic concurrency (`version` in PUT),
concurrent writers taking turns through the lock (none lost), read-after-write coherence
of the cached reads, and the cache and lock metrics."""
import re
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from conftest import assert_error, assert_security_headers, shared_server
from authutil import admin_login, assert_validation, auth_env, bearer, parse_ts, register

UNKNOWN_ID = "0190b2a4-0000-7000-8000-000000000000"
VERSION_ITEM_KEYS = {"version", "name", "updatedBy", "createdAt"}
N_WRITERS = 30


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    yield from shared_server(tmp_path_factory, "wf-versions", **auth_env())


@pytest.fixture(scope="module")
def adm(srv):
    return admin_login(srv)


@pytest.fixture(scope="module")
def owner(srv):
    return register(srv, name="Version Owner")


@pytest.fixture(scope="module")
def patient(tmp_path_factory):
    """A server whose writers wait up to 10 s for the lock."""
    yield from shared_server(tmp_path_factory, "wf-patient", LOCK_WAIT_MS=10000, HTTP_THREADS=4, **auth_env())


def H(acct):
    return bearer(acct["accessToken"])


def put(srv, wid, body, headers):
    return srv.request("PUT", "/api/workflows/%s" % wid, json=body, headers=headers)


def create(srv, acct, **fields):
    r = srv.post("/api/workflows", json=fields, headers=H(acct))
    assert r.status_code == 201, r.text
    return r.json()


def update(srv, acct, wid, **fields):
    r = put(srv, wid, fields, H(acct))
    assert r.status_code == 200, "PUT %r: %d %s" % (fields, r.status_code, r.text[:500])
    return r.json()


def get(srv, acct, wid):
    r = srv.get("/api/workflows/%s" % wid, headers=H(acct))
    assert r.status_code == 200, r.text
    return r.json()


def versions(srv, acct, wid, **params):
    params.setdefault("limit", 100)
    r = srv.get("/api/workflows/%s/versions" % wid, headers=H(acct), params=params)
    assert r.status_code == 200, r.text
    return r.json()


def version(srv, acct, wid, n):
    r = srv.get("/api/workflows/%s/versions/%s" % (wid, n), headers=H(acct))
    assert r.status_code == 200, "version %s: %d %s" % (n, r.status_code, r.text[:300])
    return r.json()


# ---------------------------------------------------------------- history

def test_new_workflow_has_version_1_in_history(srv, owner):
    w = create(srv, owner, name="Fresh")
    r = srv.get("/api/workflows/%s/versions" % w["id"], headers=H(owner))
    assert r.status_code == 200, r.text
    assert_security_headers(r)
    body = r.json()
    assert set(body) == {"data", "pagination"}
    assert body["pagination"] == {"page": 1, "limit": 20, "total": 1, "totalPages": 1}
    assert body["data"] == [{"version": 1, "name": "Fresh", "updatedBy": owner["user"]["id"],
                             "createdAt": w["createdAt"]}]
    assert version(srv, owner, w["id"], 1) == w


def test_history_newest_first_with_who_and_when(srv, owner, adm):
    editor = register(srv)
    w = create(srv, owner, name="v1 name", description="one", definition={"nodes": [], "edges": []})
    states = {1: w}
    states[2] = update(srv, owner, w["id"], permissions={"editors": [editor["user"]["id"]]})
    states[3] = update(srv, editor, w["id"], name="v3 name", description="three")
    states[4] = update(srv, adm, w["id"], status="active", tags=["t"],
                       definition={"nodes": [{"id": "d", "type": "delay", "config": {"ms": 1}}], "edges": []})
    states[5] = update(srv, owner, w["id"], name="v5 name", version=4)
    who = {1: owner, 2: owner, 3: editor, 4: adm, 5: owner}
    body = versions(srv, owner, w["id"])
    assert body["pagination"]["total"] == 5
    assert [v["version"] for v in body["data"]] == [5, 4, 3, 2, 1]
    for item in body["data"]:
        assert set(item) == VERSION_ITEM_KEYS, item
        n = item["version"]
        assert item["name"] == states[n]["name"], item
        assert item["updatedBy"] == who[n]["user"]["id"], item
        assert item["createdAt"] == states[n]["updatedAt"], (item, states[n]["updatedAt"])
    stamps = [parse_ts(v["createdAt"]) for v in body["data"]]
    assert stamps == sorted(stamps, reverse=True)
    # each version's snapshot is the workflow as that update answered it
    for n, st in states.items():
        assert version(srv, owner, w["id"], n) == st, n
    # the current version is the workflow itself
    assert version(srv, owner, w["id"], 5) == get(srv, owner, w["id"])
    # every reader may read the history
    assert versions(srv, editor, w["id"]) == body


def test_old_version_returns_the_old_state(srv, owner):
    w = create(srv, owner, name="Old", description="before", tags=["a"], status="draft",
               settings={"timeoutMs": 1000})
    update(srv, owner, w["id"], name="New", description="after", tags=["b", "c"], status="archived",
           settings={"timeoutMs": 2000})
    v1 = version(srv, owner, w["id"], 1)
    assert v1["name"] == "Old" and v1["description"] == "before" and v1["tags"] == ["a"]
    assert v1["status"] == "draft" and v1["settings"] == {"timeoutMs": 1000} and v1["version"] == 1
    assert v1["updatedAt"] == w["updatedAt"]
    v2 = version(srv, owner, w["id"], 2)
    assert v2 == get(srv, owner, w["id"])
    assert v2["name"] == "New" and v2["version"] == 2


def test_versions_pagination(srv, owner):
    w = create(srv, owner, name="paged")
    for i in range(4):
        update(srv, owner, w["id"], description=str(i))
    b = versions(srv, owner, w["id"], limit=2)
    assert b["pagination"] == {"page": 1, "limit": 2, "total": 5, "totalPages": 3}
    assert [v["version"] for v in b["data"]] == [5, 4]
    b = versions(srv, owner, w["id"], limit=2, page=3)
    assert [v["version"] for v in b["data"]] == [1]
    b = versions(srv, owner, w["id"], limit=2, page=4)
    assert b == {"data": [], "pagination": {"page": 4, "limit": 2, "total": 5, "totalPages": 3}}
    for params in ({"limit": 0}, {"limit": 101}, {"page": 0}, {"page": "x"}):
        r = srv.get("/api/workflows/%s/versions" % w["id"], headers=H(owner), params=params)
        assert_error(r, 400, "VALIDATION_ERROR")


def test_missing_version_404(srv, owner):
    w = create(srv, owner, name="two versions")
    update(srv, owner, w["id"], description="v2")
    for n in (3, 4, 999):
        r = srv.get("/api/workflows/%s/versions/%d" % (w["id"], n), headers=H(owner))
        assert_error(r, 404, "NOT_FOUND")
    # beyond any integer the server keeps: either answer is fair, never a 200 or a 500
    r = srv.get("/api/workflows/%s/versions/%s" % (w["id"], "9" * 30), headers=H(owner))
    assert r.status_code in (400, 404), r.text
    assert_error(r, r.status_code, {400: "VALIDATION_ERROR", 404: "NOT_FOUND"}[r.status_code])


@pytest.mark.parametrize("n", ["0", "-1", "abc", "1.5", "1e2", "0x1", "%20"])
def test_non_integer_version_400(srv, owner, n):
    w = create(srv, owner, name="bad version")
    r = srv.get("/api/workflows/%s/versions/%s" % (w["id"], n), headers=H(owner))
    assert_error(r, 400, "VALIDATION_ERROR")


def test_versions_of_unknown_workflow_404(srv, owner):
    assert_error(srv.get("/api/workflows/%s/versions" % UNKNOWN_ID, headers=H(owner)), 404, "NOT_FOUND")
    assert_error(srv.get("/api/workflows/%s/versions/1" % UNKNOWN_ID, headers=H(owner)), 404, "NOT_FOUND")


# ---------------------------------------------------------------- optimistic concurrency

def test_stale_version_409_changes_nothing(srv, owner):
    w = create(srv, owner, name="Stale")
    cur = update(srv, owner, w["id"], description="second", version=1)
    assert cur["version"] == 2
    for stale in (1, 3, 100):
        r = put(srv, w["id"], {"name": "lost update", "description": "x", "version": stale}, H(owner))
        assert_error(r, 409, "VERSION_CONFLICT")
    assert get(srv, owner, w["id"]) == cur
    assert versions(srv, owner, w["id"])["pagination"]["total"] == 2
    # the current version works
    nxt = update(srv, owner, w["id"], name="applied", version=2)
    assert nxt["version"] == 3 and nxt["name"] == "applied"


def test_put_without_version_always_succeeds(srv, owner, adm):
    w = create(srv, owner, name="No version")
    for i in range(5):
        who = owner if i % 2 == 0 else adm
        u = update(srv, who, w["id"], description="d%d" % i)
        assert u["version"] == i + 2
    assert [v["version"] for v in versions(srv, owner, w["id"])["data"]] == [6, 5, 4, 3, 2, 1]


@pytest.mark.parametrize("bad", [0, -1, "2", 1.5, True, [1]])
def test_version_must_be_a_positive_integer(srv, owner, bad):
    w = create(srv, owner, name="Bad version")
    r = put(srv, w["id"], {"description": "x", "version": bad}, H(owner))
    assert_validation(r, "version")
    assert get(srv, owner, w["id"]) == w


def test_body_problems_come_before_version_conflict(srv, owner):
    w = create(srv, owner, name="Order")
    update(srv, owner, w["id"], description="v2")
    r = put(srv, w["id"], {"name": "", "version": 1}, H(owner))
    assert_validation(r, "name")
    r = put(srv, w["id"], {"definition": {"nodes": [{"id": "x", "type": "nope", "config": {}}]}, "version": 1},
            H(owner))
    assert_validation(r, "definition.nodes[0].type")
    assert get(srv, owner, w["id"])["version"] == 2


# ---------------------------------------------------------------- concurrent writers

def session():
    s = requests.Session()
    s.trust_env = False
    return s


def concurrent_puts(server, wid, headers, bodies):
    """Sends every body as a PUT at once, each from its own thread and connection.
    -> list of (status, headers, json body or None) in the order of bodies."""
    barrier = threading.Barrier(len(bodies))
    url = server.url + "/api/workflows/%s" % wid

    def one(body):
        s = session()
        try:
            s.get(server.url + "/health", timeout=30)      # open the connection before the start
            barrier.wait(timeout=60)
            r = s.put(url, json=body, headers=headers, timeout=90)
            try:
                js = r.json()
            except ValueError:
                js = None
            return r.status_code, dict(r.headers), js
        finally:
            s.close()

    with ThreadPoolExecutor(max_workers=len(bodies)) as ex:
        return list(ex.map(one, bodies))


def check_outcomes(server, acct, wid, start_version, bodies, results):
    """Invariants that hold whatever the lock did: every answer is 200 or 409 with
    RESOURCE_LOCKED / VERSION_CONFLICT; N successes raise version by N and add N
    history entries, each success got a version of its own, and the last one is what
    is stored. Returns the number of successes."""
    ok = []
    wrong = []
    for body, (status, hdrs, js) in zip(bodies, results):
        if status == 200:
            ok.append((body, js))
        elif status == 409 and js and js.get("error", {}).get("code") in ("RESOURCE_LOCKED", "VERSION_CONFLICT"):
            if js["error"]["code"] == "RESOURCE_LOCKED" and hdrs.get("Retry-After") != "1":
                wrong.append("RESOURCE_LOCKED without Retry-After: 1: %r" % hdrs)
            if js["error"].get("requestId") != hdrs.get("X-Request-Id"):
                wrong.append("409 requestId mismatch: %r" % js)
        else:
            wrong.append("unexpected answer %d %r" % (status, js))
    assert not wrong, "\n".join(wrong)
    n = len(ok)
    got_versions = sorted(js["version"] for _, js in ok)
    assert got_versions == list(range(start_version + 1, start_version + n + 1)), got_versions
    for body, js in ok:
        assert js["description"] == body["description"], (body, js["description"])
    cur = get(server, acct, wid)
    assert cur["version"] == start_version + n, (cur["version"], start_version, n)
    if n:
        last = max(ok, key=lambda x: x[1]["version"])
        assert cur["description"] == last[0]["description"]
        assert cur == last[1]
    hist = versions(server, acct, wid)
    assert hist["pagination"]["total"] == start_version + n
    assert [v["version"] for v in hist["data"]] == list(range(start_version + n, 0, -1))
    # each success is in the history as it was answered
    for _, js in ok:
        assert version(server, acct, wid, js["version"])["description"] == js["description"]
    return n


def test_concurrent_puts_lose_nothing(srv, owner):
    w = create(srv, owner, name="Contended")
    bodies = [{"description": "writer %02d" % i} for i in range(N_WRITERS)]
    results = concurrent_puts(srv, w["id"], H(owner), bodies)
    n = check_outcomes(srv, owner, w["id"], 1, bodies, results)
    assert n >= 1
    assert len(versions(srv, owner, w["id"])["data"]) == n + 1


def test_concurrent_puts_with_a_patient_lock_all_succeed(patient):
    acct = register(patient)
    w = create(patient, acct, name="Patient")
    bodies = [{"description": "writer %02d" % i} for i in range(N_WRITERS)]
    results = concurrent_puts(patient, w["id"], H(acct), bodies)
    statuses = [s for s, _, _ in results]
    assert statuses == [200] * N_WRITERS, [(s, js) for s, _, js in results if s != 200][:5]
    assert check_outcomes(patient, acct, w["id"], 1, bodies, results) == N_WRITERS
    assert get(patient, acct, w["id"])["version"] == N_WRITERS + 1
    assert versions(patient, acct, w["id"])["pagination"]["total"] == N_WRITERS + 1


def test_concurrent_puts_of_the_same_version_one_wins(patient):
    acct = register(patient)
    w = create(patient, acct, name="Race")
    bodies = [{"description": "racer %02d" % i, "version": 1} for i in range(N_WRITERS)]
    results = concurrent_puts(patient, w["id"], H(acct), bodies)
    winners = [(b, js) for b, (s, _, js) in zip(bodies, results) if s == 200]
    losers = [(s, js) for s, _, js in results if s != 200]
    assert len(winners) == 1, [s for s, _, _ in results]
    for s, js in losers:
        assert s == 409 and js["error"]["code"] == "VERSION_CONFLICT", (s, js)
    body, won = winners[0]
    assert won["version"] == 2
    cur = get(patient, acct, w["id"])
    assert cur == won and cur["description"] == body["description"]
    assert [v["version"] for v in versions(patient, acct, w["id"])["data"]] == [2, 1]


def test_no_lock_wait_some_writers_may_be_refused(aop_server):
    srv0 = aop_server(LOCK_WAIT_MS=0, HTTP_THREADS=8, **auth_env())
    acct = register(srv0)
    w = create(srv0, acct, name="Impatient")
    start = 1
    total_ok = 0
    for rnd in range(3):
        bodies = [{"description": "round %d writer %02d" % (rnd, i)} for i in range(N_WRITERS)]
        results = concurrent_puts(srv0, w["id"], H(acct), bodies)
        n = check_outcomes(srv0, acct, w["id"], start, bodies, results)
        start += n
        total_ok += n
    assert total_ok >= 1
    assert get(srv0, acct, w["id"])["version"] == 1 + total_ok
    # the workflow is not left locked: a lone writer gets through at once
    assert update(srv0, acct, w["id"], description="alone")["version"] == 2 + total_ok


def test_concurrent_writers_of_different_workflows_do_not_interfere(patient):
    acct = register(patient)
    ws = [create(patient, acct, name="parallel %d" % i) for i in range(3)]
    barrier = threading.Barrier(3)

    def run(w):
        barrier.wait(timeout=30)
        bodies = [{"description": "d%d" % i} for i in range(8)]
        return concurrent_puts(patient, w["id"], H(acct), bodies)

    with ThreadPoolExecutor(3) as ex:
        all_results = list(ex.map(run, ws))
    for w, results in zip(ws, all_results):
        assert [s for s, _, _ in results] == [200] * 8
        assert get(patient, acct, w["id"])["version"] == 9


# ---------------------------------------------------------------- reads after writes

def test_read_after_write_is_never_stale(srv, owner, adm):
    editor = register(srv)
    w = create(srv, owner, name="Coherent %s" % owner["user"]["id"][-6:])
    update(srv, owner, w["id"], permissions={"editors": [editor["user"]["id"]]})
    s_owner, s_editor, s_admin = session(), session(), session()
    url = srv.url + "/api/workflows/%s" % w["id"]
    try:
        for i in range(20):
            writer, s_w = [(owner, s_owner), (editor, s_editor)][i % 2]
            # reads right before the write fill whatever cache there is
            for acct, s in ((owner, s_owner), (editor, s_editor), (adm, s_admin)):
                assert s.get(url, headers=H(acct)).status_code == 200
                s.get(srv.url + "/api/workflows", headers=H(acct), params={"search": w["name"]})
            r = s_w.put(url, json={"description": "step %d" % i, "tags": ["t%d" % i]}, headers=H(writer))
            assert r.status_code == 200, r.text
            want = r.json()
            assert want["version"] == i + 3
            for acct, s in ((owner, s_owner), (editor, s_editor), (adm, s_admin)):
                g = s.get(url, headers=H(acct))
                assert g.status_code == 200 and g.json() == want, (i, g.text[:300])
                lst = s.get(srv.url + "/api/workflows", headers=H(acct), params={"search": w["name"]}).json()
                items = [x for x in lst["data"] if x["id"] == w["id"]]
                assert len(items) == 1, (i, lst)
                assert items[0]["version"] == want["version"] and items[0]["description"] == "step %d" % i, (i, items)
                assert items[0]["tags"] == ["t%d" % i]
                by_tag = s.get(srv.url + "/api/workflows", headers=H(acct), params={"tag": "t%d" % i}).json()
                assert w["id"] in [x["id"] for x in by_tag["data"]], (i, by_tag)
                if i:
                    old = s.get(srv.url + "/api/workflows", headers=H(acct), params={"tag": "t%d" % (i - 1)}).json()
                    assert w["id"] not in [x["id"] for x in old["data"]], (i, old)
            h = s_owner.get(url + "/versions", headers=H(owner), params={"limit": 1}).json()
            assert h["pagination"]["total"] == want["version"] and h["data"][0]["version"] == want["version"]
            assert s_owner.get(url + "/versions/%d" % want["version"], headers=H(owner)).json() == want
    finally:
        for s in (s_owner, s_editor, s_admin):
            s.close()


def test_reads_racing_writes_never_go_back(patient):
    """Writers each PUT and then read; readers read in a loop. A read made after a write
    was answered sees that write or a later one, and no client sees a version go back."""
    acct = register(patient)
    w = create(patient, acct, name="Racing reads %s" % acct["user"]["id"][-8:])
    url = patient.url + "/api/workflows/%s" % w["id"]
    hdr = H(acct)
    n_writers, n_readers = 16, 6
    barrier = threading.Barrier(n_writers + n_readers)

    def writer(i):
        s = session()
        try:
            s.get(patient.url + "/health")
            barrier.wait(timeout=60)
            r = s.put(url, json={"description": "w%02d" % i}, headers=hdr, timeout=60)
            assert r.status_code == 200, r.text
            v = r.json()["version"]
            g = s.get(url, headers=hdr, timeout=60).json()
            assert g["version"] >= v, ("GET after own write", v, g["version"])
            lst = s.get(patient.url + "/api/workflows", headers=hdr, params={"search": w["name"]}, timeout=60).json()
            assert lst["data"] and lst["data"][0]["version"] >= v, ("list after own write", v, lst)
            h = s.get(url + "/versions", headers=hdr, params={"limit": 1}, timeout=60).json()
            assert h["pagination"]["total"] >= v and h["data"][0]["version"] >= v, ("versions after own write", v, h)
            return v
        finally:
            s.close()

    def reader(i):
        s = session()
        seen = []
        try:
            s.get(patient.url + "/health")
            barrier.wait(timeout=60)
            for k in range(15):
                if k % 2:
                    lst = s.get(patient.url + "/api/workflows", headers=hdr, params={"search": w["name"]},
                                timeout=60).json()
                    seen.append(lst["data"][0]["version"])
                else:
                    seen.append(s.get(url, headers=hdr, timeout=60).json()["version"])
            return seen
        finally:
            s.close()

    with ThreadPoolExecutor(n_writers + n_readers) as ex:
        wf = [ex.submit(writer, i) for i in range(n_writers)]
        rf = [ex.submit(reader, i) for i in range(n_readers)]
        got = sorted(f.result() for f in wf)
        seen = [f.result() for f in rf]
    assert got == list(range(2, n_writers + 2))
    for sq in seen:
        assert sq == sorted(sq), ("a reader saw the version go back", sq)
    assert get(patient, acct, w["id"])["version"] == n_writers + 1


def test_summary_after_write_is_not_stale(srv, adm, owner):
    def summary():
        r = srv.get("/api/workflows/analytics/summary", headers=H(adm))
        assert r.status_code == 200, r.text
        return r.json()
    for i in range(5):
        before = summary()
        summary()                                   # cached now, surely
        w = create(srv, owner, name="summary %d" % i, status="active")
        after = summary()
        assert after["totalWorkflows"] == before["totalWorkflows"] + 1, (before, after)
        assert after["byStatus"]["active"] == before["byStatus"]["active"] + 1
        update(srv, owner, w["id"], status="archived")
        again = summary()
        assert again["byStatus"]["active"] == before["byStatus"]["active"]
        assert again["byStatus"]["archived"] == before["byStatus"]["archived"] + 1


# ---------------------------------------------------------------- metrics

def metric_sum(text, name):
    total = None
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)", line)
        if m and m.group(1) == name:
            total = (total or 0.0) + float(m.group(3))
    return total


def test_metrics_show_cache_and_lock_activity(srv, owner):
    def metrics():
        r = srv.get("/metrics", headers={"Accept-Encoding": "identity"})
        assert r.status_code == 200
        return r.text
    before = metrics()
    w = create(srv, owner, name="metered")
    for i in range(5):
        update(srv, owner, w["id"], description=str(i))
        for _ in range(3):
            get(srv, owner, w["id"])
    after = metrics()
    hits = metric_sum(after, "aop_cache_hits_total")
    acquired = metric_sum(after, "aop_lock_acquired_total")
    assert hits is not None, "aop_cache_hits_total missing"
    assert acquired is not None, "aop_lock_acquired_total missing"
    assert hits - (metric_sum(before, "aop_cache_hits_total") or 0) >= 1
    assert acquired - (metric_sum(before, "aop_lock_acquired_total") or 0) >= 5
