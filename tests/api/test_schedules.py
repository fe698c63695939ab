"""Cron schedules (docs/api.md, "Triggers"; docs/schedules.md): the routes and their
errors, cron semantics seen through `upcoming` (names, steps, macros, 6 fields, and the
DST changes of 2027 in Europe/Berlin and America/New_York), `.../trigger`, a schedule
that really fires every 2 seconds, each overlap policy (a run waiting for an approval
counts as active), and a restart that runs no due time twice."""
import calendar
import time

import pytest

from conftest import assert_error, shared_server
from authutil import login, register
from fakes import (H, UNKNOWN_ID, chain, create_workflow, delay_node, engine_env, get_execution,
                   poll, transform, wait_ended)


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    yield from shared_server(tmp_path_factory, "schedules", **engine_env())


@pytest.fixture(scope="module")
def alice(srv):
    return register(srv, name="Alice")


@pytest.fixture(scope="module")
def bob(srv):
    return register(srv, name="Bob")


@pytest.fixture(scope="module")
def wf(srv, alice):
    return create_workflow(srv, alice, [transform("t", {"v": "{{input.v}}"})])


def create(srv, acct, wid, expect=201, **body):
    r = srv.post("/api/workflows/%s/schedules" % wid, json=body, headers=H(acct))
    assert r.status_code == expect, r.text
    return r.json()


def upcoming(srv, acct, sid):
    r = srv.get("/api/schedules/%s" % sid, headers=H(acct))
    assert r.status_code == 200, r.text
    return r.json()["upcoming"]


def schedule_runs(srv, acct, sid):
    r = srv.get("/api/executions", headers=H(acct), params={"trigger": "schedule", "limit": 100})
    assert r.status_code == 200, r.text
    return [e for e in r.json()["data"] if e.get("triggerId") == sid]


def test_create_defaults_and_read_back(srv, alice, wf):
    s = create(srv, alice, wf["id"], cron="0 * * * *", enabled=False)
    assert s["timezone"] == "UTC" and s["overlap"] == "skip" and s["input"] == {}
    assert s["enabled"] is False and s["nextRunAt"] is None and s["lastRunAt"] is None
    assert s["createdBy"] == alice["user"]["id"] and s["workflowId"] == wf["id"]
    r = srv.get("/api/workflows/%s/schedules" % wf["id"], headers=H(alice))
    assert r.status_code == 200 and s["id"] in [x["id"] for x in r.json()["data"]]
    r = srv.request("PATCH", "/api/schedules/%s" % s["id"], headers=H(alice),
                    json={"cron": "@daily", "timezone": "Europe/Berlin", "input": {"v": 1}})
    assert r.status_code == 200, r.text
    assert r.json()["cron"] == "@daily" and r.json()["timezone"] == "Europe/Berlin"
    assert r.json()["input"] == {"v": 1} and r.json()["enabled"] is False
    r = srv.request("DELETE", "/api/schedules/%s" % s["id"], headers=H(alice))
    assert r.status_code == 204
    assert_error(srv.get("/api/schedules/%s" % s["id"], headers=H(alice)), 404, "NOT_FOUND")


def test_bad_fields_name_the_field(srv, alice, wf):
    for body, field in [({"cron": "61 * * * *"}, "cron"), ({}, "cron"),
                        ({"cron": "* * * *"}, "cron"),
                        ({"cron": "@hourly", "timezone": "Mars/Olympus"}, "timezone"),
                        ({"cron": "@hourly", "overlap": "queue"}, "overlap"),
                        ({"cron": "@hourly", "input": [1]}, "input"),
                        ({"cron": "@hourly", "enabled": "yes"}, "enabled"),
                        ({"cron": "*" * 300}, "cron")]:
        r = srv.post("/api/workflows/%s/schedules" % wf["id"], json=body, headers=H(alice))
        assert_error(r, 400, "VALIDATION_ERROR")
        assert field in [d["field"] for d in r.json()["error"]["details"]], (body, r.text)


def test_access_follows_the_workflow(srv, alice, bob, wf):
    s = create(srv, alice, wf["id"], cron="@hourly", enabled=False)
    assert_error(srv.get("/api/schedules/%s" % s["id"], headers=H(bob)), 404, "NOT_FOUND")
    assert_error(srv.post("/api/workflows/%s/schedules" % wf["id"], json={"cron": "@hourly"},
                          headers=H(bob)), 404, "NOT_FOUND")
    assert_error(srv.post("/api/schedules/%s/trigger" % s["id"], headers=H(bob)), 404, "NOT_FOUND")
    assert_error(srv.get("/api/schedules/%s" % UNKNOWN_ID, headers=H(alice)), 404, "NOT_FOUND")
    assert_error(srv.get("/api/workflows/%s/schedules" % UNKNOWN_ID, headers=H(alice)), 404, "NOT_FOUND")


@pytest.mark.parametrize("cron,zone,expect", [
    # Berlin 2027: 28 March jumps 02:00 -> 03:00 CEST; 02:30 runs at the jump (01:00Z)
    ("30 2 28 3 *", "Europe/Berlin", ["2027-03-28T01:00:00.000Z", "2028-03-28T00:30:00.000Z"]),
    # 31 October repeats 02:00-03:00; 02:30 runs once, at its first (CEST) occurrence
    ("30 2 31 10 *", "Europe/Berlin", ["2027-10-31T00:30:00.000Z", "2028-10-31T01:30:00.000Z"]),
    # New York 2027: 14 March 02:30 is skipped (runs at 03:00 EDT), 7 November 01:30 repeats
    ("30 2 14 MAR *", "America/New_York", ["2027-03-14T07:00:00.000Z", "2028-03-14T06:30:00.000Z"]),
    ("30 1 7 NOV *", "America/New_York", ["2027-11-07T05:30:00.000Z", "2028-11-07T06:30:00.000Z"]),
])
def test_upcoming_across_dst_2027(srv, alice, wf, cron, zone, expect):
    s = create(srv, alice, wf["id"], cron=cron, timezone=zone, enabled=False)
    assert upcoming(srv, alice, s["id"])[:2] == expect


def test_upcoming_names_steps_macros_and_seconds(srv, alice, wf):
    s = create(srv, alice, wf["id"], cron="0 9 * JAN MON-FRI", enabled=False)
    up = upcoming(srv, alice, s["id"])
    assert len(up) == 5 and up[0].startswith("2027-01-01T09:00") and up[1].startswith("2027-01-04T09:00")
    s = create(srv, alice, wf["id"], cron="*/15 * * * * *", enabled=False)
    secs = [int(t[17:19]) for t in upcoming(srv, alice, s["id"])]
    assert len(secs) == 5 and all(x % 15 == 0 for x in secs)
    s = create(srv, alice, wf["id"], cron="@weekly", enabled=False)
    assert upcoming(srv, alice, s["id"])[:2] == ["2026-12-13T00:00:00.000Z", "2026-12-20T00:00:00.000Z"]
    s = create(srv, alice, wf["id"], cron="0 0 30 2 *", enabled=False)
    assert upcoming(srv, alice, s["id"]) == []


def test_trigger_runs_now_with_trigger_fields(srv, alice, wf):
    s = create(srv, alice, wf["id"], cron="0 0 1 1 *", input={"v": 7})
    r = srv.post("/api/schedules/%s/trigger" % s["id"], headers=H(alice))
    assert r.status_code == 202, r.text
    eid = r.json()["executionId"]
    e = get_execution(srv, alice, eid)
    assert e["trigger"] == "schedule" and e["triggerId"] == s["id"] and e["input"] == {"v": 7}
    assert e["triggeredBy"] == alice["user"]["id"] and e["scheduledFor"]
    r = srv.get("/api/schedules/%s" % s["id"], headers=H(alice))
    assert r.json()["lastRunAt"] == e["scheduledFor"]
    r = srv.get("/api/executions", headers=H(alice), params={"trigger": "schedule"})
    assert eid in [x["id"] for x in r.json()["data"]]
    r = srv.get("/api/executions", headers=H(alice), params={"trigger": "api"})
    assert eid not in [x["id"] for x in r.json()["data"]]
    assert_error(srv.get("/api/executions", headers=H(alice), params={"trigger": "cron"}), 400,
                 "VALIDATION_ERROR")


def test_a_two_second_schedule_fires(srv, alice, wf):
    s = create(srv, alice, wf["id"], cron="*/2 * * * * *", input={"v": 2})
    time.sleep(5.2)
    srv.request("PATCH", "/api/schedules/%s" % s["id"], headers=H(alice), json={"enabled": False})
    runs = schedule_runs(srv, alice, s["id"])
    due = [e["scheduledFor"] for e in runs]
    assert 2 <= len(due) <= 3, due
    assert len(set(due)) == len(due) and all(int(t[17:19]) % 2 == 0 and t.endswith(".000Z") for t in due)
    assert all(e["triggeredBy"] == alice["user"]["id"] for e in runs)


@pytest.mark.parametrize("overlap,low,high", [("skip", 1, 2), ("buffer_one", 2, 3), ("allow", 4, 6)])
def test_overlap(srv, alice, overlap, low, high):
    w = create_workflow(srv, alice, [transform("a", {}), delay_node("d", 2500)], chain("a", "d"))
    s = create(srv, alice, w["id"], cron="* * * * * *", overlap=overlap)
    time.sleep(4.6)
    srv.request("PATCH", "/api/schedules/%s" % s["id"], headers=H(alice), json={"enabled": False})
    runs = schedule_runs(srv, alice, s["id"])
    assert low <= len(runs) <= high, (overlap, [(e["scheduledFor"], e["status"]) for e in runs])
    if overlap != "allow":  # never two at once
        spans = sorted((e["createdAt"], e["finishedAt"] or "9999") for e in runs)
        assert all(b[0] >= a[1] for a, b in zip(spans, spans[1:])) or overlap == "buffer_one", spans


def poll_runs(srv, acct, sid, pred, what, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        runs = schedule_runs(srv, acct, sid)
        if pred(runs):
            return runs
        assert time.monotonic() < deadline, "%s not reached: %r" % (what, runs)
        time.sleep(0.05)


@pytest.mark.parametrize("overlap", ["skip", "buffer_one"])
def test_a_run_waiting_for_an_approval_is_active(srv, alice, overlap):
    """Every second, but the first run waits for a decision: no second run starts while
    it waits; after the decision skip starts at a later due time, while buffer_one starts
    the one due time it held back meanwhile."""
    w = create_workflow(srv, alice, [{"id": "a", "type": "approval", "config": {}}])
    s = create(srv, alice, w["id"], cron="* * * * * *", overlap=overlap)
    first = poll_runs(srv, alice, s["id"], lambda rs: rs, "a first run")[0]
    poll(srv, alice, first["id"], lambda e: e["status"] == "waiting", what="waiting")
    time.sleep(2.5)  # due times pass while it waits
    runs = schedule_runs(srv, alice, s["id"])
    assert [e["id"] for e in runs] == [first["id"]], runs
    r = srv.get("/api/executions", headers=H(alice),
                params={"trigger": "schedule", "status": "waiting", "workflowId": w["id"]})
    assert r.status_code == 200 and [e["id"] for e in r.json()["data"]] == [first["id"]], r.text
    decided = time.time()
    r = srv.post("/api/executions/%s/approvals/a" % first["id"], json={"decision": "approve"},
                 headers=H(alice))
    assert r.status_code == 200, r.text
    assert wait_ended(srv, alice, first["id"])["status"] == "succeeded"
    runs = poll_runs(srv, alice, s["id"], lambda rs: len(rs) >= 2, "a second run")
    srv.request("PATCH", "/api/schedules/%s" % s["id"], headers=H(alice), json={"enabled": False})
    second = sorted(runs, key=lambda e: e["scheduledFor"])[1]
    at = calendar.timegm(time.strptime(second["scheduledFor"][:19], "%Y-%m-%dT%H:%M:%S"))
    if overlap == "skip":  # a due time after the run ended
        assert at > decided - 1, (second["scheduledFor"], decided)
    else:  # the due time held while it waited
        assert at < decided - 1, (second["scheduledFor"], decided)


def test_restart_runs_no_due_time_twice(aop_server):
    s1 = aop_server(**engine_env())
    alice = register(s1, name="Alice")
    w = create_workflow(s1, alice, [transform("t", {})])
    s = create(s1, alice, w["id"], cron="* * * * * *", overlap="allow")
    time.sleep(2.5)
    assert s1.stop() == 0
    s2 = aop_server(**dict(s1.env))
    alice = login(s2, alice["_email"])
    time.sleep(2.5)
    due = [e["scheduledFor"] for e in schedule_runs(s2, alice, s["id"])]
    assert len(due) >= 3 and len(set(due)) == len(due), due


def test_a_workflow_holds_at_most_100_schedules(srv, alice):
    w = create_workflow(srv, alice, [transform("t", {})])
    for _ in range(100):
        create(srv, alice, w["id"], cron="@hourly", enabled=False)
    r = srv.post("/api/workflows/%s/schedules" % w["id"], json={"cron": "@hourly"}, headers=H(alice))
    assert_error(r, 400, "VALIDATION_ERROR")
    r = srv.get("/api/workflows/%s/schedules" % w["id"], headers=H(alice), params={"limit": 100})
    assert r.json()["pagination"]["total"] == 100
