"""Helpers of the budget suites (test_budgets.py, test_cluster.py): budgets through the
API, the shape check of a budget, and the concurrency check that no limit is passed."""
import threading

from authutil import TS, UUID7
from fakes import H, create_workflow, llm_node, start, wait_ended

BUDGET_KEYS = {"id", "scope", "limitUsd", "period", "spentUsd", "reservedUsd", "remainingUsd",
               "periodStart", "resetsAt", "createdAt", "updatedAt", "createdBy"}
NANO = 1e-9
HI = [{"role": "user", "content": "hi"}]


def near(a, b):
    return abs(a - b) < 1e-6


def scope(type_, id_=None):
    return {"type": type_, "id": id_}


def create(srv, acct, scope_, limit, period="total", expect=201):
    r = srv.post("/api/budgets", json={"scope": scope_, "limitUsd": limit, "period": period},
                 headers=H(acct))
    assert r.status_code == expect, "create budget: %d %s" % (r.status_code, r.text[:800])
    return r.json()


def get_budget(srv, acct, bid, expect=200):
    r = srv.get("/api/budgets/" + bid, headers=H(acct))
    assert r.status_code == expect, "GET budget: %d %s" % (r.status_code, r.text[:800])
    return r.json()


def check_budget(b):
    assert isinstance(b, dict) and set(b) == BUDGET_KEYS, sorted(b)
    assert UUID7.match(b["id"]) and UUID7.match(b["createdBy"]), b
    assert b["scope"]["type"] in ("global", "user", "workflow"), b
    assert (b["scope"]["id"] is None) == (b["scope"]["type"] == "global"), b
    assert b["period"] in ("day", "month", "total"), b
    for k in ("limitUsd", "spentUsd", "reservedUsd", "remainingUsd"):
        assert isinstance(b[k], (int, float)) and not isinstance(b[k], bool) and b[k] >= 0, b
    assert near(b["remainingUsd"], max(0.0, b["limitUsd"] - b["spentUsd"] - b["reservedUsd"])), b
    for k in ("periodStart", "createdAt", "updatedAt"):
        assert TS.match(b[k]), b
    assert (b["resetsAt"] is None) == (b["period"] == "total"), b
    if b["resetsAt"]:
        assert TS.match(b["resetsAt"]) and b["periodStart"] < b["resetsAt"], b
    return b


def run_concurrently(servers, acct, wf_id, n):
    """Starts n executions at once (spread over servers) and waits for their ends."""
    ids, errors = [None] * n, []
    barrier = threading.Barrier(n)

    def go(i):
        try:
            barrier.wait(timeout=60)
            ids[i] = start(servers[i % len(servers)], acct, wf_id)
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    return [wait_ended(servers[0], acct, eid, timeout=120) for eid in ids]


def check_never_past_the_limit(srv, adm, b, executions, llm):
    """Concurrent calls never spent past the limit, every reservation went, and the
    budget's spend is what the executions cost."""
    now = check_budget(get_budget(srv, adm, b["id"]))
    cost = sum(e["costUsd"] for e in executions)
    assert now["spentUsd"] <= b["limitUsd"] + NANO, now
    assert now["reservedUsd"] == 0, now
    assert near(now["spentUsd"], cost), (now, cost)
    codes = {(n["error"] or {}).get("code") for e in executions for n in e["nodes"]}
    assert "BUDGET_EXCEEDED" in codes, codes
    answered = [n for e in executions for n in e["nodes"] if n["status"] == "succeeded"]
    assert answered and near(cost, 8 * len(answered)), (cost, len(answered))
    assert len(llm.calls()) >= len(answered)


def budget_workflow(srv, acct):
    """Three llm nodes side by side, each reserving 18 (8 + 5 * 2) and costing 8."""
    return create_workflow(srv, acct, [llm_node("n%d" % k, "test-model", HI, maxTokens=5) for k in range(3)])
