"""What executions add up to: GET /api/executions/workflow/:id/stats, the admin's
GET /api/executions/analytics/summary (with from/to), and the analytics block of
GET /api/workflows/:id and the workflow summary's top lists, all updated as soon
as executions end.

Token counts and costs come from the fake LLM (10 prompt + 5 completion tokens per
call by default) priced by fakes.PRICING: test-model 20 USD a call, cheap-model 7.5."""
import datetime
import math

import pytest

from conftest import assert_error, shared_server
from authutil import admin_login, make_user, parse_ts, register
from fakes import (ENDED, H, UNKNOWN_ID, cancel, condition, create_workflow, delay_node, edge, engine_env,
                   get_execution, http_node, llm_node, poll, run, share, start, transform, wait_ended)
from fakes import fake_http, fake_llm, pricing_file  # noqa: F401 (fixtures used by name)

STATUSES = ("queued", "running", "succeeded", "failed", "cancelled", "timed_out", "waiting")
STATS_KEYS = {"workflowId", "totalExecutions", "byStatus", "successRate", "durationMs", "usage", "costUsd",
              "lastExecutedAt", "nodes"}
NODE_STAT_KEYS = {"nodeId", "executions", "failures", "avgDurationMs", "totalTokens", "costUsd"}
SUMMARY_KEYS = {"totalExecutions", "byStatus", "successRate", "durationMs", "usage", "costUsd", "byModel", "byDay",
                "topWorkflows"}


@pytest.fixture(scope="module")
def srv(tmp_path_factory, fake_http, fake_llm, pricing_file):
    yield from shared_server(tmp_path_factory, "exec-analytics", **engine_env(fake_llm, pricing_file))


@pytest.fixture(scope="module")
def adm(srv):
    return admin_login(srv)


@pytest.fixture(autouse=True)
def _llm_defaults(fake_llm):
    fake_llm.reset()


def nearest_rank(values, p):
    v = sorted(values)
    return v[max(1, math.ceil(p / 100.0 * len(v))) - 1]


def stats(srv, acct, wid, expect=200):
    r = srv.get("/api/executions/workflow/%s/stats" % wid, headers=H(acct))
    assert r.status_code == expect, "stats %s: %d %s" % (wid, r.status_code, r.text[:800])
    return r.json()


def summary(srv, acct, expect=200, **params):
    r = srv.get("/api/executions/analytics/summary", headers=H(acct), params=params)
    assert r.status_code == expect, "summary %r: %d %s" % (params, r.status_code, r.text[:800])
    return r.json()


def workflow(srv, acct, wid):
    r = srv.get("/api/workflows/%s" % wid, headers=H(acct))
    assert r.status_code == 200, r.text
    return r.json()


def check_durations(d, runs):
    """durationMs {avg, p50, p95, max} against the finished executions."""
    assert set(d) == {"avg", "p50", "p95", "max"}, d
    vals = [e["durationMs"] for e in runs if e["status"] in ENDED and e["durationMs"] is not None]
    if not vals:
        assert d == {"avg": 0, "p50": 0, "p95": 0, "max": 0}, d
        return
    assert d["max"] == max(vals), (d, vals)
    assert d["avg"] == pytest.approx(sum(vals) / len(vals), abs=1), (d, vals)
    assert d["p50"] == nearest_rank(vals, 50), (d, vals)
    assert d["p95"] == nearest_rank(vals, 95), (d, vals)
    assert min(vals) <= d["p50"] <= d["p95"] <= d["max"]


def check_stats_shape(s, wid):
    assert set(s) == STATS_KEYS, sorted(s)
    assert s["workflowId"] == wid
    assert set(s["byStatus"]) == set(STATUSES), s["byStatus"]
    assert sum(s["byStatus"].values()) == s["totalExecutions"], s
    assert 0 <= s["successRate"] <= 1
    assert set(s["usage"]) == {"promptTokens", "completionTokens", "totalTokens"}, s["usage"]
    for n in s["nodes"]:
        assert set(n) == NODE_STAT_KEYS, n
    return s


# ---------------------------------------------------------------- workflow stats

@pytest.fixture(scope="module")
def llm_flow(srv, fake_http):
    """A workflow l (llm test-model) -> h (http /status/{{input.code}}) run 3 times with
    code 200 and once with 500: 3 succeeded, 1 failed, 4 llm calls (60 tokens, 80 USD)."""
    owner = register(srv, name="Stats owner")
    viewer = register(srv, name="Stats viewer")
    stranger = register(srv, name="Stats stranger")
    w = create_workflow(srv, owner, [llm_node("l", "test-model", "q {{input.code}}"),
                                     http_node("h", fake_http.url + "/status/{{input.code}}")], [edge("l", "h")])
    share(srv, owner, w["id"], viewers=[viewer["user"]["id"]])
    before = workflow(srv, owner, w["id"])          # a read before the runs (a cache, if any, is warm)
    runs = [run(srv, owner, w["id"], input={"code": c}) for c in (200, 200, 500, 200)]
    assert [e["status"] for e in runs] == ["succeeded", "succeeded", "failed", "succeeded"], runs
    return {"owner": owner, "viewer": viewer, "stranger": stranger, "wf": w, "before": before, "runs": runs}


def test_workflow_stats(srv, llm_flow):
    owner, w, runs = llm_flow["owner"], llm_flow["wf"], llm_flow["runs"]
    s = check_stats_shape(stats(srv, owner, w["id"]), w["id"])
    assert s["totalExecutions"] == 4
    assert s["byStatus"] == {"queued": 0, "running": 0, "succeeded": 3, "failed": 1, "cancelled": 0,
                             "timed_out": 0, "waiting": 0}
    assert s["successRate"] == pytest.approx(0.75)
    assert s["usage"] == {"promptTokens": 40, "completionTokens": 20, "totalTokens": 60}
    assert s["costUsd"] == pytest.approx(80.0)
    check_durations(s["durationMs"], runs)
    last = parse_ts(s["lastExecutedAt"])
    assert last >= max(parse_ts(e["createdAt"]) for e in runs)
    assert last <= datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=5)
    nodes = {n["nodeId"]: n for n in s["nodes"]}
    assert set(nodes) == {"l", "h"}, s["nodes"]
    assert (nodes["l"]["executions"], nodes["l"]["failures"]) == (4, 0)
    assert nodes["l"]["totalTokens"] == 60 and nodes["l"]["costUsd"] == pytest.approx(80.0)
    assert (nodes["h"]["executions"], nodes["h"]["failures"]) == (4, 1)
    assert nodes["h"]["totalTokens"] == 0 and nodes["h"]["costUsd"] == 0
    for nid in ("l", "h"):
        durs = [n["durationMs"] for e in runs for n in e["nodes"] if n["nodeId"] == nid]
        assert nodes[nid]["avgDurationMs"] == pytest.approx(sum(durs) / len(durs), abs=1), (nid, nodes[nid], durs)


def test_workflow_stats_access(srv, llm_flow, adm):
    w = llm_flow["wf"]
    s = stats(srv, llm_flow["owner"], w["id"])
    assert stats(srv, llm_flow["viewer"], w["id"]) == s
    assert stats(srv, adm, w["id"]) == s
    assert_error(srv.get("/api/executions/workflow/%s/stats" % w["id"], headers=H(llm_flow["stranger"])),
                 404, "NOT_FOUND")
    for wid in (UNKNOWN_ID, "not-a-uuid"):
        assert_error(srv.get("/api/executions/workflow/%s/stats" % wid, headers=H(adm)), 404, "NOT_FOUND")


def test_workflow_analytics_block(srv, llm_flow):
    owner, w, runs, before = llm_flow["owner"], llm_flow["wf"], llm_flow["runs"], llm_flow["before"]
    assert before["analytics"]["executionCount"] == 0
    a = workflow(srv, owner, w["id"])["analytics"]
    assert a["executionCount"] == 4 and a["successCount"] == 3 and a["failureCount"] == 1, a
    assert a["totalTokens"] == 60 and a["totalCostUsd"] == pytest.approx(80.0), a
    durs = [e["durationMs"] for e in runs]
    assert isinstance(a["avgDurationMs"], int)
    assert abs(a["avgDurationMs"] - sum(durs) / len(durs)) <= 1, (a, durs)
    assert parse_ts(a["lastExecutedAt"]) >= max(parse_ts(e["createdAt"]) for e in runs)


def test_workflow_analytics_update_at_once(srv, fake_http):
    owner = register(srv)
    w = create_workflow(srv, owner, [transform("t", 1)])
    assert workflow(srv, owner, w["id"])["analytics"]["executionCount"] == 0
    assert workflow(srv, owner, w["id"])["analytics"]["lastExecutedAt"] is None
    for i in range(1, 4):
        e = run(srv, owner, w["id"])
        a = workflow(srv, owner, w["id"])["analytics"]
        assert a["executionCount"] == i and a["successCount"] == i and a["failureCount"] == 0, (i, a)
        assert a["lastExecutedAt"] is not None and parse_ts(a["lastExecutedAt"]) >= parse_ts(e["createdAt"])
        # the list of workflows agrees
        r = srv.get("/api/workflows", headers=H(owner))
        item = [x for x in r.json()["data"] if x["id"] == w["id"]][0]
        assert item["analytics"] == a
        assert stats(srv, owner, w["id"])["totalExecutions"] == i


def test_stats_count_cancelled_and_timed_out(srv):
    """input.slow picks a 5 s delay (settings.timeoutMs 1000), else a transform."""
    owner = register(srv)
    nodes = [condition("c", "{{input.slow}}", "eq", True), delay_node("wait", 5000), transform("quick", "ok")]
    w = create_workflow(srv, owner, nodes, [edge("c", "wait", True), edge("c", "quick", False)],
                        settings={"timeoutMs": 1000})
    ok = run(srv, owner, w["id"], input={"slow": False})
    assert ok["status"] == "succeeded", ok
    slow = start(srv, owner, w["id"], input={"slow": True})
    doomed = start(srv, owner, w["id"], input={"slow": True})
    poll(srv, owner, doomed, lambda e: e["status"] == "running", 10, "running")
    cancel(srv, owner, doomed)
    # while one still runs: counted in the total and as running, not in the success rate
    s = check_stats_shape(stats(srv, owner, w["id"]), w["id"])
    if get_execution(srv, owner, slow)["status"] == "running":
        assert s["byStatus"]["running"] == 1 and s["totalExecutions"] == 3, s
        assert s["successRate"] == pytest.approx(0.5), s      # 1 of 2 ended (succeeded, cancelled)
    timed = wait_ended(srv, owner, slow, timeout=10)
    assert timed["status"] == "timed_out", timed
    s = check_stats_shape(stats(srv, owner, w["id"]), w["id"])
    assert s["totalExecutions"] == 3
    assert s["byStatus"] == {"queued": 0, "running": 0, "succeeded": 1, "failed": 0, "cancelled": 1,
                             "timed_out": 1, "waiting": 0}
    assert s["successRate"] == pytest.approx(1 / 3)
    nodes = {n["nodeId"]: n for n in s["nodes"]}
    assert nodes["wait"]["failures"] >= 1, nodes     # the timed-out delay counts as a failure
    a = workflow(srv, owner, w["id"])["analytics"]
    assert a["successCount"] == 1 and a["failureCount"] == 1, a    # failureCount: failed + timed_out
    assert a["executionCount"] >= 2, a


def test_stats_of_a_workflow_never_run(srv):
    owner = register(srv)
    w = create_workflow(srv, owner, [transform("t", 1)])
    s = check_stats_shape(stats(srv, owner, w["id"]), w["id"])
    assert s == {"workflowId": w["id"], "totalExecutions": 0, "byStatus": {k: 0 for k in STATUSES},
                 "successRate": 0, "durationMs": {"avg": 0, "p50": 0, "p95": 0, "max": 0},
                 "usage": {"promptTokens": 0, "completionTokens": 0, "totalTokens": 0}, "costUsd": 0,
                 "lastExecutedAt": None, "nodes": []}


# ---------------------------------------------------------------- the admin summary

def test_summary_admin_only(srv, adm):
    user = register(srv)
    viewer = make_user(srv, role="viewer", admin_tok=adm["accessToken"])
    for acct in (user, viewer):
        assert_error(srv.get("/api/executions/analytics/summary", headers=H(acct)), 403, "FORBIDDEN")
        # the role is refused before the parameters are looked at
        assert_error(srv.get("/api/executions/analytics/summary", headers=H(acct), params={"from": "bad"}),
                     403, "FORBIDDEN")
    s = summary(srv, adm)
    assert set(s) == SUMMARY_KEYS, sorted(s)


@pytest.mark.parametrize("param", ["from", "to"])
@pytest.mark.parametrize("value", ["garbage", "2024-13-01", "2024-02-30x", "2024-01-01T25:00:00Z", "01/02/2024"])
def test_summary_bad_dates_400(srv, adm, param, value):
    assert_error(srv.get("/api/executions/analytics/summary", headers=H(adm), params={param: value}),
                 400, "VALIDATION_ERROR")


def test_summary_totals(aop_server, fake_llm, pricing_file, fake_http):
    """A server of its own, so that the totals are exact."""
    s = aop_server(**engine_env(fake_llm, pricing_file))
    adm = admin_login(s)
    empty = summary(s, adm)
    assert empty == {"totalExecutions": 0, "byStatus": {k: 0 for k in STATUSES}, "successRate": 0,
                     "durationMs": {"avg": 0, "p50": 0, "p95": 0, "max": 0},
                     "usage": {"promptTokens": 0, "completionTokens": 0, "totalTokens": 0}, "costUsd": 0,
                     "byModel": [], "byDay": [], "topWorkflows": []}, empty
    user = register(s)
    wa = create_workflow(s, user, [llm_node("l", "test-model", "a")], name="Alpha")
    wb = create_workflow(s, user, [llm_node("l", "cheap-model", "b"),
                                   http_node("h", fake_http.url + "/status/{{input.code}}")], [edge("l", "h")],
                         name="Bravo")
    wc = create_workflow(s, adm, [transform("t", 1)], name="Charlie")
    runs = [run(s, user, wa["id"]), run(s, user, wb["id"], input={"code": 200}),
            run(s, user, wb["id"], input={"code": 500}), run(s, user, wa["id"]), run(s, adm, wc["id"])]
    assert [e["status"] for e in runs] == ["succeeded", "succeeded", "failed", "succeeded", "succeeded"], runs

    t = summary(s, adm)
    assert set(t) == SUMMARY_KEYS
    assert t["totalExecutions"] == 5
    assert t["byStatus"] == {"queued": 0, "running": 0, "succeeded": 4, "failed": 1, "cancelled": 0,
                             "timed_out": 0, "waiting": 0}
    assert t["successRate"] == pytest.approx(0.8)
    assert t["usage"] == {"promptTokens": 40, "completionTokens": 20, "totalTokens": 60}
    assert t["costUsd"] == pytest.approx(55.0)            # 2 x 20 + 2 x 7.5
    check_durations(t["durationMs"], runs)
    models = {m["model"]: m for m in t["byModel"]}
    assert set(models) == {"test-model", "cheap-model"}, t["byModel"]
    for m in t["byModel"]:
        assert set(m) == {"model", "calls", "totalTokens", "costUsd"}, m
    assert (models["test-model"]["calls"], models["test-model"]["totalTokens"]) == (2, 30)
    assert models["test-model"]["costUsd"] == pytest.approx(40.0)
    assert (models["cheap-model"]["calls"], models["cheap-model"]["totalTokens"]) == (2, 30)
    assert models["cheap-model"]["costUsd"] == pytest.approx(15.0)
    # byDay: per UTC day of createdAt, oldest first
    days = {}
    for e in runs:
        d = days.setdefault(e["createdAt"][:10], {"executions": 0, "failures": 0, "costUsd": 0.0})
        d["executions"] += 1
        d["failures"] += e["status"] in ("failed", "timed_out")
        d["costUsd"] += e["costUsd"]
    assert [d["date"] for d in t["byDay"]] == sorted(days), t["byDay"]
    for d in t["byDay"]:
        assert set(d) == {"date", "executions", "failures", "costUsd"}, d
        want = days[d["date"]]
        assert (d["executions"], d["failures"]) == (want["executions"], want["failures"]), (d, want)
        assert d["costUsd"] == pytest.approx(want["costUsd"])
    # topWorkflows: by executions
    top = t["topWorkflows"]
    for item in top:
        assert set(item) == {"workflowId", "name", "executions", "costUsd"}, item
    got = {i["workflowId"]: (i["name"], i["executions"], pytest.approx(i["costUsd"])) for i in top}
    assert got == {wa["id"]: ("Alpha", 2, 40.0), wb["id"]: ("Bravo", 2, 15.0), wc["id"]: ("Charlie", 1, 0)}, top
    assert [i["executions"] for i in top] == sorted((i["executions"] for i in top), reverse=True)

    # the workflow summary's top lists count the executions too
    r = s.get("/api/workflows/analytics/summary", headers=H(adm))
    assert r.status_code == 200, r.text
    by_exec = {i["workflowId"]: i for i in r.json()["topByExecutions"]}
    assert by_exec[wa["id"]]["executions"] == 2 and by_exec[wa["id"]]["costUsd"] == pytest.approx(40.0)
    assert r.json()["topByCost"][0]["workflowId"] == wa["id"]

    # from / to on createdAt: RFC 3339 (from inclusive, to exclusive) and YYYY-MM-DD
    cut = runs[2]["createdAt"]
    after = summary(s, adm, **{"from": cut})
    before = summary(s, adm, to=cut)
    assert after["totalExecutions"] == sum(1 for e in runs if e["createdAt"] >= cut)
    assert before["totalExecutions"] == sum(1 for e in runs if e["createdAt"] < cut)
    assert after["totalExecutions"] + before["totalExecutions"] == 5
    assert after["byStatus"]["failed"] == 1 and before["byStatus"]["failed"] == 0
    assert after["costUsd"] + before["costUsd"] == pytest.approx(55.0)
    first_day = runs[0]["createdAt"][:10]
    next_day = (datetime.date.fromisoformat(runs[-1]["createdAt"][:10]) + datetime.timedelta(days=1)).isoformat()
    assert summary(s, adm, **{"from": first_day, "to": next_day})["totalExecutions"] == 5
    none = summary(s, adm, **{"from": next_day})
    assert none["totalExecutions"] == 0 and none["byModel"] == [] and none["byDay"] == [] and none["topWorkflows"] == []
    assert none["successRate"] == 0 and none["costUsd"] == 0
    assert summary(s, adm, to=first_day)["totalExecutions"] == 0

    # a deleted workflow's executions still count
    assert s.request("DELETE", "/api/workflows/%s" % wc["id"], headers=H(adm)).status_code == 204
    assert summary(s, adm)["totalExecutions"] == 5
