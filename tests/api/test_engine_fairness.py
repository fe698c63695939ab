"""Limits, quotas and fairness (API.md): QUOTA_ACTIVE_EXECUTIONS (429 QUOTA_EXCEEDED,
nothing queued, freed as executions end, per user, one over the quota in a group commit
fails alone), round-robin claims across users (a backlog of slow executions of one user
delays another user's next execution by one claim round at most, for a worker's
capacity and for a workflow's maxConcurrency alike) and WAIT_MAX_MS (a synchronous wait
answers 202 past it, so parked waits no longer hold a client's connections).

Order is judged from the executions' own createdAt and startedAt, never from the clock
of the test. The several-instance versions are in test_cluster.py."""
import re
import threading
import time

import requests

from conftest import assert_error
from authutil import register
from fakes import (H, at_once, cancel, chain, create_workflow, delay_node, engine_env, execute_raw,
                   get_execution, list_executions, share, start, transform, wait_ended)

LONG_MS = 600000  # a delay no test waits for: its executions end by a cancel


def slow_workflow(srv, acct, ms, settings=None, name=None):
    return create_workflow(srv, acct, [delay_node("d", ms), transform("t", {"n": "{{input.n}}"})],
                           chain("d", "t"), settings=settings, name=name)


def total(srv, acct, **params):
    return list_executions(srv, acct, **params)["pagination"]["total"]


def active(srv, acct):
    """Queued and running executions the caller sees, read in one request: two reads
    (one per status) would count an execution claimed between them twice."""
    items = list_executions(srv, acct, limit=100)["data"]
    return sum(1 for e in items if e["status"] in ("queued", "running"))


def assert_quota_exceeded(r):
    assert_error(r, 429, "QUOTA_EXCEEDED")
    assert r.headers.get("Retry-After") == "1", dict(r.headers)


def quota_refusals(srv):
    m = re.search(r"^aop_quota_refusals_total (\d+)$", srv.get("/metrics").text, re.M)
    assert m, "aop_quota_refusals_total is missing from /metrics"
    return int(m.group(1))


def starts_between(executions, first, last):
    """The executions that started after `first` and before `last` (timestamps)."""
    return [e for e in executions if e["startedAt"] and first < e["startedAt"] < last]


# ---------------------------------------------------------------- quota

def test_quota_holds_at_the_bound_and_frees_as_executions_end(aop_server):
    srv = aop_server(**engine_env(QUOTA_ACTIVE_EXECUTIONS="3", WORKERS="1"))
    a, b = register(srv), register(srv)
    slow = slow_workflow(srv, a, LONG_MS)
    quick = create_workflow(srv, a, [transform("t", {"ok": True})])
    held = [start(srv, a, slow["id"], input={"n": i}) for i in range(2)]
    last = start(srv, a, quick["id"])
    # three active: the third may already have ended, so wait for that first
    assert wait_ended(srv, a, last)["status"] == "succeeded"
    held.append(start(srv, a, slow["id"], input={"n": 2}))
    assert total(srv, a) == 4  # the ended one is history, not quota
    # N + 1: refused, with or without wait, and nothing is queued; each is counted
    refusals = quota_refusals(srv)
    for body in ({"input": {"n": 3}}, {"input": {"n": 3}, "wait": True}):
        assert_quota_exceeded(execute_raw(srv, H(a), slow["id"], body))
    assert_quota_exceeded(execute_raw(srv, H(a), quick["id"], {}))
    assert quota_refusals(srv) == refusals + 3
    assert total(srv, a) == 4
    assert active(srv, a) == 3
    # another user is not affected, on the same workflow neither
    share(srv, a, slow["id"], editors=[b["user"]["id"]])
    other = start(srv, b, slow["id"], input={"n": 9})
    assert get_execution(srv, b, other)["triggeredBy"] == b["user"]["id"]
    # an end (here a cancel) frees one place, and one only
    cancel(srv, a, held[0])
    again = start(srv, a, slow["id"], input={"n": 4})
    assert_quota_exceeded(execute_raw(srv, H(a), slow["id"], {"input": {"n": 5}}))
    assert active(srv, a) == 4  # b's too
    for eid in held[1:] + [again, other]:
        cancel(srv, a, eid)


def test_quota_under_concurrent_executes_fails_only_the_rows_over_it(aop_server):
    """Executes of two users at once go through the same group commits: the quota
    holds exactly for the user over it, whose refused rows do not fail the batch the
    other user's rows are in."""
    srv = aop_server(**engine_env(QUOTA_ACTIVE_EXECUTIONS="5", HTTP_THREADS="4"))
    a, b = register(srv), register(srv)
    wa, wb = slow_workflow(srv, a, LONG_MS), slow_workflow(srv, b, LONG_MS)

    def execute(s, srv, i):
        acct, wid = (a, wa["id"]) if i < 12 else (b, wb["id"])
        return i, s.post(srv.url + "/api/workflows/%s/execute" % wid, json={"input": {"n": i}},
                         headers=H(acct), timeout=60)

    results = at_once([srv], 16, execute)
    codes_a = sorted(r.status_code for i, r in results if i < 12)
    codes_b = sorted(r.status_code for i, r in results if i >= 12)
    assert codes_a == [202] * 5 + [429] * 7, codes_a
    assert codes_b == [202] * 4, codes_b
    for i, r in results:
        if r.status_code == 429:
            assert_quota_exceeded(r)
    assert total(srv, a) == 5
    assert total(srv, b) == 4
    for acct in (a, b):
        for e in list_executions(srv, acct, limit=100)["data"]:
            cancel(srv, acct, e["id"])


# ---------------------------------------------------------------- fairness

def backlog_then_newcomer(srv, a, b, wid_a, wid_b, n):
    """a queues n executions, then b one; returns (a's executions, b's), ended."""
    ids = [start(srv, a, wid_a, input={"n": i}) for i in range(n)]
    newcomer = start(srv, b, wid_b, input={"n": 99})
    ea = [wait_ended(srv, a, eid, timeout=120) for eid in ids]
    eb = wait_ended(srv, b, newcomer, timeout=120)
    assert [e["status"] for e in ea + [eb]] == ["succeeded"] * (n + 1), [e["status"] for e in ea]
    return ea, eb


def test_a_backlog_of_slow_executions_delays_another_user_by_one_round_at_most(aop_server):
    """One worker running two executions at a time: user a's slow ones fill it and
    queue behind it; user b's execution, queued after all of them, starts at the next
    claim, not after a's backlog (oldest-first claims started it last)."""
    srv = aop_server(**engine_env(WORKERS="1", WORKER_MAX_EXECUTIONS="2"))
    a, b = register(srv), register(srv)
    wa = slow_workflow(srv, a, 2000, name="a's slow")
    wb = create_workflow(srv, b, [transform("t", {"ok": True})], name="b's quick")
    ea, eb = backlog_then_newcomer(srv, a, b, wa["id"], wb["id"], 8)
    # a's executions still queued when b's came: all but the few already started
    waiting = [e for e in ea if e["startedAt"] > eb["createdAt"]]
    assert len(waiting) >= 3, ("a's backlog had run before b queued", [e["startedAt"] for e in ea],
                               eb["createdAt"])
    ahead = starts_between(ea, eb["createdAt"], eb["startedAt"])
    assert len(ahead) <= 1, ("a's executions started while b's waited", eb, ahead)
    # a's own executions still start oldest first
    started = [e["startedAt"] for e in ea]
    assert started == sorted(started), started


def test_a_shared_workflow_limit_goes_round_robin(aop_server):
    """maxConcurrency 1 on a workflow both users run: the place that frees goes to b,
    whose turn it is, before a's older backlog."""
    srv = aop_server(**engine_env(WORKERS="1"))
    a, b = register(srv), register(srv)
    w = slow_workflow(srv, a, 1000, settings={"maxConcurrency": 1})
    share(srv, a, w["id"], editors=[b["user"]["id"]])
    ea, eb = backlog_then_newcomer(srv, a, b, w["id"], w["id"], 6)
    waiting = [e for e in ea if e["startedAt"] > eb["createdAt"]]
    assert len(waiting) >= 3, ([e["startedAt"] for e in ea], eb["createdAt"])
    ahead = starts_between(ea, eb["createdAt"], eb["startedAt"])
    assert len(ahead) <= 1, ("a's executions started while b's waited", eb, ahead)
    # the limit held: no two runs overlap
    runs = sorted((e["startedAt"], e["finishedAt"]) for e in ea + [eb])
    for (s1, f1), (s2, _) in zip(runs, runs[1:]):
        assert f1 <= s2, runs


def test_starts_at_commit_keep_the_worker_bound_and_the_queue_order(aop_server):
    """With nothing queued a new execution is committed already running on a loop that
    has room (operations.md, "Execution engine"); WORKER_MAX_EXECUTIONS still bounds the
    loop: past it, executions queue and start as places free, oldest first, each once,
    and a synchronous one behind them waits its turn and answers with its end."""
    srv = aop_server(**engine_env(WORKERS="1", WORKER_MAX_EXECUTIONS="2"))
    a = register(srv)
    w = slow_workflow(srv, a, 1500)
    ids = [start(srv, a, w["id"], input={"n": i}) for i in range(5)]
    answer = {}
    waiter = threading.Thread(target=lambda: answer.update(r=execute_raw(
        srv, H(a), w["id"], {"input": {"n": 5}, "wait": True}, timeout=60)))
    waiter.start()
    peak, deadline = 0, time.monotonic() + 60
    while time.monotonic() < deadline:
        page = list_executions(srv, a, limit=100)["data"]
        peak = max(peak, sum(1 for e in page if e["status"] == "running"))
        if len(page) == 6 and all(e["status"] == "succeeded" for e in page):
            break
        time.sleep(0.05)
    waiter.join(60)
    assert peak == 2, peak
    r = answer["r"]
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "succeeded" and r.json()["output"] == {"t": {"n": 5}}, r.json()
    ended = [wait_ended(srv, a, eid, timeout=60) for eid in ids] + [r.json()]
    assert [e["output"] for e in ended] == [{"t": {"n": i}} for i in range(6)]
    started = [e["startedAt"] for e in ended]
    assert started == sorted(started), started
    assert all(e["startedAt"] >= e["createdAt"] for e in ended), ended


# ---------------------------------------------------------------- WAIT_MAX_MS

def test_wait_is_capped_by_wait_max_ms_then_the_execution_ends(aop_server):
    srv = aop_server(**engine_env(WAIT_MAX_MS="1000"))
    a = register(srv)
    w = slow_workflow(srv, a, 10000, settings={"timeoutMs": 120000})
    # Without the cap the answer would come when the execution ends (10 s), past
    # the time this client gives it.
    r = execute_raw(srv, H(a), w["id"], {"input": {"n": 1}, "wait": True}, timeout=8)
    assert r.status_code == 202, r.text
    body = r.json()
    assert set(body) == {"executionId", "status"} and body["status"] in ("queued", "running"), body
    # the connection was resumed and serves the next request
    assert srv.get("/health").status_code == 200
    e = wait_ended(srv, a, body["executionId"], timeout=60)
    assert e["status"] == "succeeded", e
    assert e["output"] == {"t": {"n": 1}}, e


def test_parked_waits_do_not_lock_the_client_out(aop_server):
    """Six waits from one address against HTTP_MAX_CONNECTIONS_PER_IP=4: four are
    parked, two are refused at the door and try again. With WAIT_MAX_MS the parked
    ones answer 202 and give their connections back, so every one gets its answer
    well before the executions (or their 120 s timeout) end."""
    srv = aop_server(**engine_env(WAIT_MAX_MS="1500", HTTP_MAX_CONNECTIONS_PER_IP="4"))
    a = register(srv)
    w = slow_workflow(srv, a, 60000, settings={"timeoutMs": 120000})
    srv.session.close()  # the test's own keep-alive connection would take one of the four
    answers = {}

    def wait_call(i):
        tries = 0
        while tries < 200:
            tries += 1
            s = requests.Session()
            s.trust_env = False
            try:
                r = s.post(srv.url + "/api/workflows/%s/execute" % w["id"], headers=H(a),
                           json={"input": {"n": i}, "wait": True}, timeout=30)
                answers[i] = (r.status_code, r.json(), tries)
                return
            except requests.Timeout:
                answers[i] = ("no answer", None, tries)
                return
            except requests.ConnectionError:
                time.sleep(0.2)  # refused at the door: the address is full
            finally:
                s.close()
        answers[i] = ("never served", None, tries)

    threads = [threading.Thread(target=wait_call, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sorted(answers) == list(range(6)), answers
    for i, (status, body, _) in answers.items():
        assert status == 202, (i, status, body)
        assert set(body) == {"executionId", "status"} and body["status"] in ("queued", "running")
    ids = {body["executionId"] for _, body, _ in answers.values()}
    assert len(ids) == 6, answers
    # the address is served again, and nothing was lost or run twice
    assert total(srv, a) == 6
    for eid in ids:
        assert get_execution(srv, a, eid)["status"] == "running"
        cancel(srv, a, eid)
