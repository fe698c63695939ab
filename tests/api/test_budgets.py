"""Budgets (LLM spend): the routes, their errors and who sees what; enforcement before
every LLM call against the fake LLM of fakes.py (which records what reached it): a
refusal sends nothing, a reservation becomes the call's cost, max_tokens is sent when a
budget applies, periods roll over, and what calls in flight hold is released when the
execution ends, is cancelled or is deleted; twenty concurrent executions of parallel llm
nodes never spend past a limit.

Prices (fakes.PRICING): test-model costs 1 USD a prompt token and 2 USD a completion
token, so a call of one short message ("hi": 32 bytes of messages JSON, 8 estimated
prompt tokens) with maxTokens 10 reserves 8 + 20 = 28 USD."""
import datetime
import json
import math
import re
import signal
import time

import pytest

from conftest import assert_error, db_execute, db_query, shared_server
from authutil import admin_login, apikey, create_key, make_user, register
from fakes import (H, UNKNOWN_ID, assert_node_error, check_execution, create_workflow, engine_env,
                   get_execution, llm_node, node_of, retry, run, share, start, transform, wait_ended)
from fakes import fake_llm, pricing_file  # noqa: F401 (fixtures used by name)
from budgetutil import (HI, budget_workflow, check_budget, check_never_past_the_limit, create, get_budget, near,
                        run_concurrently, scope)



@pytest.fixture(scope="module")
def srv(tmp_path_factory, fake_llm, pricing_file):
    yield from shared_server(tmp_path_factory, "budgets", **engine_env(fake_llm, pricing_file))


@pytest.fixture(scope="module")
def adm(srv):
    return admin_login(srv)


@pytest.fixture(scope="module")
def alice(srv):
    return register(srv, name="Alice")


@pytest.fixture(scope="module")
def bob(srv):
    return register(srv, name="Bob")


@pytest.fixture(autouse=True)
def clean(srv, adm, fake_llm):
    """Every test starts without budgets and with a fresh fake."""
    fake_llm.reset()
    yield
    fake_llm.reset()
    r = srv.get("/api/budgets", headers=H(adm), params={"limit": 100})
    for b in r.json()["data"]:
        srv.request("DELETE", "/api/budgets/" + b["id"], headers=H(adm))


# ---------------------------------------------------------------- helpers

def listed(srv, acct, expect=200, **params):
    r = srv.get("/api/budgets", headers=H(acct), params=params)
    assert r.status_code == expect, "list budgets %r: %d %s" % (params, r.status_code, r.text[:800])
    return r.json()


def ids_of(page):
    return {b["id"] for b in page["data"]}


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc)


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (t.microsecond // 1000)


def bounds(period, t):
    """(periodStart, resetsAt) of a day or month budget at t."""
    day = t.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        return iso(day), iso(day + datetime.timedelta(days=1))
    first = day.replace(day=1)
    nxt = (first + datetime.timedelta(days=32)).replace(day=1)
    return iso(first), iso(nxt)


def metric(srv, name):
    m = re.search(r"^%s (\S+)$" % re.escape(name), srv.get("/metrics").text, re.M)
    return float(m.group(1)) if m else None


def msgs_bytes(messages):
    return len(json.dumps(messages, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


def reservation(messages, max_tokens, in_price=1.0, out_price=2.0):
    """The worst case the server reserves for a test-model call."""
    return math.ceil(msgs_bytes(messages) / 4) * in_price + max_tokens * out_price


def wait_calls(llm, model, n=1, timeout=15.0):
    deadline = time.monotonic() + timeout
    while len(llm.calls(model)) < n:
        assert time.monotonic() < deadline, "the fake LLM got %d calls of %s" % (len(llm.calls(model)), model)
        time.sleep(0.02)
    return llm.calls(model)


def wait_aborted(llm, model, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not llm.aborted(model):
        assert time.monotonic() < deadline, "the call of %s was not aborted" % model
        time.sleep(0.05)


# ---------------------------------------------------------------- create and read

def test_create_shapes_and_period_bounds(srv, adm, alice):
    before = utc_now()
    day = check_budget(create(srv, adm, scope("global"), 10.5, "day"))
    month = check_budget(create(srv, adm, scope("user", alice["user"]["id"]), 0.25, "month"))
    total = check_budget(create(srv, adm, scope("global"), 7, "total"))
    after = utc_now()
    assert day["scope"] == {"type": "global", "id": None}
    assert day["limitUsd"] == 10.5 and day["remainingUsd"] == 10.5
    assert day["spentUsd"] == 0 and day["reservedUsd"] == 0
    assert (day["periodStart"], day["resetsAt"]) in (bounds("day", before), bounds("day", after))
    assert (month["periodStart"], month["resetsAt"]) in (bounds("month", before), bounds("month", after))
    assert month["scope"] == {"type": "user", "id": alice["user"]["id"]} and month["limitUsd"] == 0.25
    assert total["resetsAt"] is None and total["periodStart"] == total["createdAt"]
    assert day["createdBy"] == adm["user"]["id"] and day["createdAt"] == day["updatedAt"]
    # the resource reads back as created, and an exact decimal stays exact
    assert get_budget(srv, adm, day["id"]) == day
    tiny = create(srv, adm, scope("user", alice["user"]["id"]), 0.000000001, "day")
    assert tiny["limitUsd"] == 0.000000001


def test_create_refuses_bad_input(srv, adm, alice):
    wf = create_workflow(srv, alice, [transform("t", {})])
    cases = [
        ({}, {"scope", "limitUsd", "period"}),
        ({"scope": "global", "limitUsd": 1, "period": "day"}, {"scope"}),
        ({"scope": {"type": "team"}, "limitUsd": 1, "period": "day"}, {"scope.type"}),
        ({"scope": {"type": "global", "id": alice["user"]["id"]}, "limitUsd": 1, "period": "day"}, {"scope.id"}),
        ({"scope": {"type": "user"}, "limitUsd": 1, "period": "day"}, {"scope.id"}),
        ({"scope": {"type": "user", "id": "me"}, "limitUsd": 1, "period": "day"}, {"scope.id"}),
        ({"scope": {"type": "workflow", "id": 7}, "limitUsd": 1, "period": "day"}, {"scope.id"}),
        ({"scope": scope("global"), "limitUsd": "10", "period": "day"}, {"limitUsd"}),
        ({"scope": scope("global"), "limitUsd": 0, "period": "day"}, {"limitUsd"}),
        ({"scope": scope("global"), "limitUsd": -1, "period": "day"}, {"limitUsd"}),
        ({"scope": scope("global"), "limitUsd": 1e10, "period": "day"}, {"limitUsd"}),
        ({"scope": scope("global"), "limitUsd": 1e-10, "period": "day"}, {"limitUsd"}),
        ({"scope": scope("global"), "limitUsd": True, "period": "day"}, {"limitUsd"}),
        ({"scope": scope("global"), "limitUsd": 1, "period": "week"}, {"period"}),
        ({"scope": scope("global"), "limitUsd": 1, "period": 1}, {"period"}),
        ({"scope": {"type": "workflow", "id": wf["id"]}, "limitUsd": 0, "period": "year"},
         {"limitUsd", "period"}),
    ]
    for body, fields in cases:
        r = srv.post("/api/budgets", json=body, headers=H(adm))
        err = assert_error(r, 400, "VALIDATION_ERROR")
        assert {d["field"] for d in err["details"]} == fields, (body, err)
    # ids of nothing: no such user, no such (or a deleted) workflow
    gone = create_workflow(srv, alice, [transform("t", {})])
    assert srv.request("DELETE", "/api/workflows/" + gone["id"], headers=H(adm)).status_code == 204
    for s in (scope("user", UNKNOWN_ID), scope("workflow", UNKNOWN_ID), scope("workflow", gone["id"]),
              scope("user", wf["id"])):
        r = srv.post("/api/budgets", json={"scope": s, "limitUsd": 1, "period": "day"}, headers=H(adm))
        err = assert_error(r, 400, "VALIDATION_ERROR")
        assert [d["field"] for d in err["details"]] == ["scope.id"], err
    assert_error(srv.post("/api/budgets", data="[1]", headers=dict(H(adm), **{"Content-Type": "application/json"})),
                 400, "VALIDATION_ERROR")
    assert_error(srv.post("/api/budgets", data="{", headers=dict(H(adm), **{"Content-Type": "application/json"})),
                 400, "INVALID_JSON")
    assert_error(srv.post("/api/budgets", data="x", headers=H(adm)), 415, "UNSUPPORTED_MEDIA_TYPE")
    assert listed(srv, adm)["pagination"]["total"] == 0


def test_one_budget_per_scope_and_period(srv, adm, alice, bob):
    create(srv, adm, scope("global"), 1, "day")
    assert_error(srv.post("/api/budgets", json={"scope": scope("global"), "limitUsd": 2, "period": "day"},
                          headers=H(adm)), 409, "CONFLICT")
    create(srv, adm, scope("global"), 1, "month")
    create(srv, adm, scope("user", alice["user"]["id"]), 1, "day")
    assert_error(srv.post("/api/budgets", json={"scope": scope("user", alice["user"]["id"]), "limitUsd": 5,
                                                "period": "day"}, headers=H(adm)), 409, "CONFLICT")
    create(srv, adm, scope("user", bob["user"]["id"]), 1, "day")
    assert listed(srv, adm)["pagination"]["total"] == 4


def test_only_admins_write(srv, adm, alice):
    b = create(srv, adm, scope("global"), 1, "day")
    viewer = make_user(srv, role="viewer")
    for acct in (alice, viewer):
        assert_error(srv.post("/api/budgets", json={"scope": scope("global"), "limitUsd": 1, "period": "month"},
                              headers=H(acct)), 403, "FORBIDDEN")
        assert_error(srv.request("PATCH", "/api/budgets/" + b["id"], json={"limitUsd": 9}, headers=H(acct)),
                     403, "FORBIDDEN")
        assert_error(srv.request("DELETE", "/api/budgets/" + b["id"], headers=H(acct)), 403, "FORBIDDEN")
    assert_error(srv.get("/api/budgets"), 401, "UNAUTHORIZED")
    assert_error(srv.get("/api/budgets/" + b["id"]), 401, "UNAUTHORIZED")
    # an admin's read-only key reads but does not write
    key = create_key(srv, adm["accessToken"], scopes=["read"])["key"]
    assert srv.get("/api/budgets/" + b["id"], headers=apikey(key)).status_code == 200
    assert_error(srv.post("/api/budgets", json={"scope": scope("global"), "limitUsd": 1, "period": "month"},
                          headers=apikey(key)), 403, "FORBIDDEN")
    assert get_budget(srv, adm, b["id"])["limitUsd"] == 1


def test_who_sees_which_budget(srv, adm, alice, bob):
    a_id, b_id = alice["user"]["id"], bob["user"]["id"]
    own = create_workflow(srv, alice, [transform("t", {})])
    shared_wf = create_workflow(srv, bob, [transform("t", {})])
    share(srv, bob, shared_wf["id"], viewers=[a_id])
    private = create_workflow(srv, bob, [transform("t", {})])
    g = create(srv, adm, scope("global"), 1, "day")
    ua = create(srv, adm, scope("user", a_id), 1, "day")
    ub = create(srv, adm, scope("user", b_id), 1, "day")
    wa = create(srv, adm, scope("workflow", own["id"]), 1, "day")
    ws = create(srv, adm, scope("workflow", shared_wf["id"]), 1, "month")
    wp = create(srv, adm, scope("workflow", private["id"]), 1, "total")
    every = {x["id"] for x in (g, ua, ub, wa, ws, wp)}
    assert ids_of(listed(srv, adm)) == every
    page = listed(srv, alice)
    assert ids_of(page) == {g["id"], ua["id"], wa["id"], ws["id"]}
    assert page["pagination"] == {"page": 1, "limit": 20, "total": 4, "totalPages": 1}
    for b in page["data"]:
        check_budget(b)
    assert ids_of(listed(srv, bob)) == {g["id"], ub["id"], ws["id"], wp["id"]}
    for hidden in (ub, wp):
        assert_error(srv.get("/api/budgets/" + hidden["id"], headers=H(alice)), 404, "NOT_FOUND")
    for seen in (g, ua, wa, ws):
        assert get_budget(srv, alice, seen["id"])["id"] == seen["id"]
    assert get_budget(srv, adm, wp["id"])["scope"] == {"type": "workflow", "id": private["id"]}
    # filters, for admins and within what a user sees
    assert ids_of(listed(srv, adm, scopeType="user")) == {ua["id"], ub["id"]}
    assert ids_of(listed(srv, adm, scopeId=b_id)) == {ub["id"]}
    assert ids_of(listed(srv, adm, scopeType="workflow", scopeId=private["id"])) == {wp["id"]}
    assert ids_of(listed(srv, alice, scopeType="workflow")) == {wa["id"], ws["id"]}
    assert ids_of(listed(srv, alice, scopeId=private["id"])) == set()
    # pages, sorts
    p2 = listed(srv, adm, limit=4, page=2)
    assert len(p2["data"]) == 2 and p2["pagination"] == {"page": 2, "limit": 4, "total": 6, "totalPages": 2}
    asc = [b["id"] for b in listed(srv, adm, sort="createdAt")["data"]]
    assert asc == [x["id"] for x in (g, ua, ub, wa, ws, wp)]
    assert [b["id"] for b in listed(srv, adm, sort="-createdAt")["data"]] == asc[::-1]
    assert listed(srv, adm, sort="-updatedAt")["pagination"]["total"] == 6
    assert listed(srv, adm, page=5)["data"] == []
    for bad in ({"sort": "limitUsd"}, {"page": 0}, {"limit": 101}, {"scopeType": "team"},
                {"scopeId": "nobody"}):
        field = next(iter(bad))
        err = assert_error(srv.get("/api/budgets", headers=H(adm), params=bad), 400, "VALIDATION_ERROR")
        assert field in {d["field"] for d in err["details"]}, err
    for bad_id in (UNKNOWN_ID, "not-an-id"):
        assert_error(srv.get("/api/budgets/" + bad_id, headers=H(adm)), 404, "NOT_FOUND")
    # a workflow no longer readable (deleted) takes its budget out of its readers' view
    assert srv.request("DELETE", "/api/workflows/" + shared_wf["id"], headers=H(adm)).status_code == 204
    assert ids_of(listed(srv, alice)) == {g["id"], ua["id"], wa["id"]}
    assert_error(srv.get("/api/budgets/" + ws["id"], headers=H(alice)), 404, "NOT_FOUND")


def test_patch_and_delete(srv, adm):
    b = create(srv, adm, scope("global"), 5, "day")
    create(srv, adm, scope("global"), 5, "month")
    time.sleep(0.005)
    r = srv.request("PATCH", "/api/budgets/" + b["id"], json={"limitUsd": 7.25}, headers=H(adm))
    assert r.status_code == 200, r.text
    p = check_budget(r.json())
    assert p["limitUsd"] == 7.25 and p["remainingUsd"] == 7.25 and p["period"] == "day"
    assert p["updatedAt"] > b["updatedAt"] and p["createdAt"] == b["createdAt"]
    assert p["periodStart"] == b["periodStart"]
    # same period: nothing starts again; another period: its bounds from now
    r = srv.request("PATCH", "/api/budgets/" + b["id"], json={"period": "day"}, headers=H(adm))
    assert r.json()["periodStart"] == b["periodStart"]
    before = utc_now()
    r = srv.request("PATCH", "/api/budgets/" + b["id"], json={"period": "total", "limitUsd": 3}, headers=H(adm))
    t = check_budget(r.json())
    assert t["period"] == "total" and t["resetsAt"] is None and t["limitUsd"] == 3
    assert t["periodStart"] >= iso(before)[:19]
    # the global scope has a month budget already
    assert_error(srv.request("PATCH", "/api/budgets/" + b["id"], json={"period": "month"}, headers=H(adm)),
                 409, "CONFLICT")
    assert srv.request("PATCH", "/api/budgets/" + b["id"], json={}, headers=H(adm)).json()["limitUsd"] == 3
    for body, field in (({"limitUsd": 0}, "limitUsd"), ({"limitUsd": "1"}, "limitUsd"),
                        ({"period": "year"}, "period"), ({"scope": scope("global")}, "scope")):
        err = assert_error(srv.request("PATCH", "/api/budgets/" + b["id"], json=body, headers=H(adm)),
                           400, "VALIDATION_ERROR")
        assert [d["field"] for d in err["details"]] == [field], err
    assert_error(srv.request("PATCH", "/api/budgets/" + UNKNOWN_ID, json={"limitUsd": 1}, headers=H(adm)),
                 404, "NOT_FOUND")
    assert srv.request("DELETE", "/api/budgets/" + b["id"], headers=H(adm)).status_code == 204
    assert_error(srv.get("/api/budgets/" + b["id"], headers=H(adm)), 404, "NOT_FOUND")
    assert_error(srv.request("DELETE", "/api/budgets/" + b["id"], headers=H(adm)), 404, "NOT_FOUND")
    assert_error(srv.request("DELETE", "/api/budgets/nope", headers=H(adm)), 404, "NOT_FOUND")


# ---------------------------------------------------------------- enforcement

def test_refused_before_the_call(srv, adm, alice, fake_llm):
    wf = create_workflow(srv, alice, [llm_node("ask", "test-model", HI, maxTokens=10, retry=retry(3, 10))])
    b = create(srv, adm, scope("user", alice["user"]["id"]), 27.5, "total")  # one call needs 28
    refusals = metric(srv, "aop_budget_refusals_total")
    e = run(srv, alice, wf["id"])
    check_execution(e)
    n = assert_node_error(e, "ask", "BUDGET_EXCEEDED")
    assert n["attempts"] == 1, n  # never retried
    assert n["error"]["details"]["budgetId"] == b["id"], n
    assert near(n["error"]["details"]["requiredUsd"], 28) and near(n["error"]["details"]["remainingUsd"], 27.5), n
    assert b["id"] in n["error"]["message"], n
    assert e["costUsd"] == 0 and n["usage"]["totalTokens"] == 0
    assert fake_llm.calls() == [], "a refused call reached the provider"
    assert metric(srv, "aop_budget_refusals_total") == refusals + 1
    after = get_budget(srv, adm, b["id"])
    assert after["spentUsd"] == 0 and after["reservedUsd"] == 0
    # with room for it the same call goes through
    srv.request("PATCH", "/api/budgets/" + b["id"], json={"limitUsd": 28}, headers=H(adm))
    assert run(srv, alice, wf["id"])["status"] == "succeeded"
    assert len(fake_llm.calls()) == 1


def test_max_tokens_sent_when_a_budget_applies(srv, adm, alice, bob, fake_llm):
    plain = create_workflow(srv, alice, [llm_node("ask", "test-model", HI)])
    capped = create_workflow(srv, alice, [llm_node("ask", "test-model", HI, maxTokens=7)])
    assert run(srv, alice, plain["id"])["status"] == "succeeded"
    assert "max_tokens" not in fake_llm.calls()[-1].json
    assert run(srv, alice, capped["id"])["status"] == "succeeded"
    assert fake_llm.calls()[-1].json["max_tokens"] == 7
    # someone else's budget does not apply
    create(srv, adm, scope("user", bob["user"]["id"]), 1, "day")
    assert run(srv, alice, plain["id"])["status"] == "succeeded"
    assert "max_tokens" not in fake_llm.calls()[-1].json
    # the workflow's does: LLM_DEFAULT_MAX_TOKENS (4096) is reserved and sent
    b = create(srv, adm, scope("workflow", plain["id"]), 100000, "month")
    e = run(srv, alice, plain["id"])
    assert e["status"] == "succeeded", e
    assert fake_llm.calls()[-1].json["max_tokens"] == 4096
    assert near(get_budget(srv, adm, b["id"])["spentUsd"], e["costUsd"])
    assert run(srv, alice, capped["id"])["status"] == "succeeded"
    assert fake_llm.calls()[-1].json["max_tokens"] == 7


def test_default_max_tokens_is_configurable(aop_server, fake_llm, pricing_file):
    s = aop_server(**engine_env(fake_llm, pricing_file, LLM_DEFAULT_MAX_TOKENS="12"))
    adm, user = admin_login(s), register(s)
    wf = create_workflow(s, user, [llm_node("ask", "test-model", HI)])
    b = create(s, adm, scope("global"), 32, "total")  # 8 + 12 * 2
    fake_llm.script("test-model", prompt_tokens=1, completion_tokens=1)
    assert run(s, user, wf["id"])["status"] == "succeeded"
    assert fake_llm.calls()[-1].json["max_tokens"] == 12
    assert near(get_budget(s, adm, b["id"])["spentUsd"], 3)
    e = run(s, user, wf["id"])  # 29 left, 32 needed
    assert_node_error(e, "ask", "BUDGET_EXCEEDED")
    assert len(fake_llm.calls()) == 1


def test_reservation_becomes_the_actual_cost(srv, adm, alice, fake_llm):
    fake_llm.script("test-model", prompt_tokens=3, completion_tokens=4, delay=1.5)  # costs 3 + 8
    wf = create_workflow(srv, alice, [llm_node("ask", "test-model", HI, maxTokens=10)])
    held = reservation(HI, 10)
    assert held == 28
    bs = [create(srv, adm, scope("global"), 100, "day"),
          create(srv, adm, scope("user", alice["user"]["id"]), 50, "month"),
          create(srv, adm, scope("workflow", wf["id"]), 30, "total")]
    summary = srv.get("/api/executions/analytics/summary", headers=H(adm)).json()
    model_cost = sum(m["costUsd"] for m in summary["byModel"] if m["model"] == "test-model")
    eid = start(srv, alice, wf["id"])
    wait_calls(fake_llm, "test-model")
    for b in bs:  # the call is in flight: each budget holds its worst case
        now = get_budget(srv, adm, b["id"])
        assert near(now["reservedUsd"], held) and now["spentUsd"] == 0, now
        assert near(now["remainingUsd"], b["limitUsd"] - held), now
    e = wait_ended(srv, alice, eid)
    assert e["status"] == "succeeded", e
    assert near(e["costUsd"], 11)
    for b in bs:
        now = check_budget(get_budget(srv, adm, b["id"]))
        assert now["reservedUsd"] == 0 and near(now["spentUsd"], 11), now
        assert near(now["remainingUsd"], b["limitUsd"] - 11), now
    summary = srv.get("/api/executions/analytics/summary", headers=H(adm)).json()
    assert near(sum(m["costUsd"] for m in summary["byModel"] if m["model"] == "test-model"), model_cost + 11)
    # 19 left in the workflow's budget: the next call (28) is refused
    e = run(srv, alice, wf["id"])
    n = assert_node_error(e, "ask", "BUDGET_EXCEEDED")
    assert n["error"]["details"]["budgetId"] == bs[2]["id"]
    assert len(fake_llm.calls()) == 1


def test_model_without_a_price_is_never_blocked(srv, adm, alice, fake_llm):
    wf = create_workflow(srv, alice, [llm_node("ask", "unpriced-model", HI)])
    b = create(srv, adm, scope("global"), 0.000001, "day")
    e = run(srv, alice, wf["id"])
    assert e["status"] == "succeeded" and e["costUsd"] == 0, e
    assert fake_llm.calls()[-1].json["max_tokens"] == 4096  # a budget applies all the same
    now = get_budget(srv, adm, b["id"])
    assert now["spentUsd"] == 0 and now["reservedUsd"] == 0


def test_ended_period_rolls_over(srv, adm, alice, fake_llm):
    fake_llm.script("test-model", prompt_tokens=1, completion_tokens=1)  # costs 3
    wf = create_workflow(srv, alice, [llm_node("ask", "test-model", HI, maxTokens=10)])
    day = create(srv, adm, scope("workflow", wf["id"]), 100, "day")
    total = create(srv, adm, scope("user", alice["user"]["id"]), 1000, "total")
    # yesterday's period, spent to the limit
    start_, end_ = bounds("day", utc_now() - datetime.timedelta(days=1))
    db_execute(srv, "UPDATE budgets SET spent_nano = limit_nano, period_start = ?, resets_at = ? WHERE id = ?",
               (start_, end_, day["id"]))
    before = utc_now()
    shown = check_budget(get_budget(srv, adm, day["id"]))  # shown as the day it is now
    assert shown["spentUsd"] == 0 and shown["remainingUsd"] == 100
    assert (shown["periodStart"], shown["resetsAt"]) in (bounds("day", before), bounds("day", utc_now()))
    e = run(srv, alice, wf["id"])
    assert e["status"] == "succeeded", e
    row = db_query(srv, "SELECT spent_nano, reserved_nano, period_start, resets_at FROM budgets WHERE id = ?",
                   (day["id"],))[0]
    assert row["spent_nano"] == 3 * 10**9 and row["reserved_nano"] == 0, row
    assert row["period_start"] > start_ and row["resets_at"] > end_, row
    assert near(get_budget(srv, adm, total["id"])["spentUsd"], 3)
    # a total budget spent to its limit stays so
    db_execute(srv, "UPDATE budgets SET spent_nano = limit_nano WHERE id = ?", (total["id"],))
    e = run(srv, alice, wf["id"])
    assert assert_node_error(e, "ask", "BUDGET_EXCEEDED")["error"]["details"]["budgetId"] == total["id"]


# ---------------------------------------------------------------- release

def test_released_when_the_execution_fails(srv, adm, alice, fake_llm):
    """A sibling fails while a call is in flight: the call is dropped and what it held goes back."""
    fake_llm.script("test-model", delay=3)
    wf = create_workflow(srv, alice, [llm_node("slow", "test-model", HI, maxTokens=10),
                                      llm_node("boom", "fail-400", HI)])
    b = create(srv, adm, scope("global"), 100, "day")
    eid = start(srv, alice, wf["id"])
    wait_calls(fake_llm, "test-model")
    e = wait_ended(srv, alice, eid)
    assert e["status"] == "failed" and e["error"]["nodeId"] == "boom", e
    assert node_of(e, "slow")["status"] == "cancelled"
    now = get_budget(srv, adm, b["id"])
    assert now["reservedUsd"] == 0 and now["spentUsd"] == 0, now
    wait_aborted(fake_llm, "test-model")


@pytest.mark.parametrize("how", ["cancel", "delete"])
def test_released_on_cancel_and_delete(srv, adm, alice, fake_llm, how):
    fake_llm.script("test-model", delay=3)
    wf = create_workflow(srv, alice, [llm_node("ask", "test-model", HI, maxTokens=10)])
    b = create(srv, adm, scope("user", alice["user"]["id"]), 100, "day")
    eid = start(srv, alice, wf["id"])
    wait_calls(fake_llm, "test-model")
    assert near(get_budget(srv, adm, b["id"])["reservedUsd"], 28)
    if how == "cancel":
        r = srv.post("/api/executions/%s/cancel" % eid, headers=H(alice))
        assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text
    else:
        assert srv.request("DELETE", "/api/executions/" + eid, headers=H(adm)).status_code == 204
    now = get_budget(srv, adm, b["id"])
    assert now["reservedUsd"] == 0 and now["spentUsd"] == 0, now
    wait_aborted(fake_llm, "test-model")  # the call in flight was aborted
    time.sleep(0.3)
    now = get_budget(srv, adm, b["id"])
    assert now["reservedUsd"] == 0 and now["spentUsd"] == 0, now
    if how == "cancel":
        e = get_execution(srv, alice, eid)
        assert e["costUsd"] == 0 and node_of(e, "ask")["status"] == "cancelled", e
    rows = db_query(srv, "SELECT COUNT(*) AS n FROM budget_reservations WHERE execution_id = ?", (eid,))
    assert rows[0]["n"] == 0


# ---------------------------------------------------------------- concurrency

def test_twenty_concurrent_executions_never_pass_the_limit(srv, adm, alice, fake_llm):
    fake_llm.script("test-model", prompt_tokens=2, completion_tokens=3, delay=0.3)
    wf = budget_workflow(srv, alice)
    b = create(srv, adm, scope("workflow", wf["id"]), 100, "total")
    executions = run_concurrently([srv], alice, wf["id"], 20)
    for e in executions:
        check_execution(e)
    check_never_past_the_limit(srv, adm, b, executions, fake_llm)


# ---------------------------------------------------------------- crashes and shutdowns

@pytest.mark.parametrize("how", ["kill", "sigterm"])
def test_reservation_of_an_abandoned_call_is_released(aop_server, fake_llm, pricing_file, how):
    """A call in flight when its server dies (SIGKILL) or stops (SIGTERM): the execution
    resumes on the next server, and what the dead call held does not stay reserved."""
    env = engine_env(fake_llm, pricing_file, EXECUTION_LEASE_MS="2000")
    s1 = aop_server(**env)
    adm, user = admin_login(s1), register(s1)
    fake_llm.script("test-model", prompt_tokens=3, completion_tokens=4, delay=2)  # costs 11
    wf = create_workflow(s1, user, [llm_node("ask", "test-model", HI, maxTokens=10)])
    b = create(s1, adm, scope("workflow", wf["id"]), 100, "total")
    eid = start(s1, user, wf["id"])
    wait_calls(fake_llm, "test-model")
    assert near(get_budget(s1, adm, b["id"])["reservedUsd"], 28)
    if how == "kill":
        s1.kill()
    else:
        assert s1.stop(signal.SIGTERM, timeout=15) == 0
        # a shutdown hands back what its calls held along with the execution
        row = db_query(s1, "SELECT reserved_nano FROM budgets WHERE id = ?", (b["id"],))[0]
        assert row["reserved_nano"] == 0, row
    s2 = aop_server(**env)
    adm = admin_login(s2)
    wait_calls(fake_llm, "test-model", 2, timeout=30)
    # the resumed call holds its own worst case, and only that
    assert near(get_budget(s2, adm, b["id"])["reservedUsd"], 28)
    e = wait_ended(s2, adm, eid, timeout=30)
    assert e["status"] == "succeeded", e
    assert len(fake_llm.calls("test-model")) == 2  # the dead call, then the resumed one
    now = get_budget(s2, adm, b["id"])
    assert now["reservedUsd"] == 0 and near(now["spentUsd"], 11), now
    assert near(now["spentUsd"], e["costUsd"])
    assert db_query(s2, "SELECT COUNT(*) AS n FROM budget_reservations")[0]["n"] == 0
