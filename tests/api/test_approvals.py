"""The approval node: an execution that reaches one waits (status "waiting", no worker,
no maxConcurrency slot) until a decision, its timeout or a cancel; it survives a restart.
Runs on both backends (scripts/test.sh pg runs it on PostgreSQL + Redis)."""
import json
import time
import uuid

import pytest

from authutil import db_rows, login, register
from conftest import assert_error, free_port, shared_server
from fakes import (H, cancel, create_workflow, edge, engine_env, get_execution, node_of, poll,
                   share, start, transform, wait_ended, check_execution, at_once)
from sseclient import SSE


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    yield from shared_server(tmp_path_factory, "approvals", **engine_env())


def approval(nid="a", **config):
    return {"id": nid, "type": "approval", "config": config}


def branching(srv, acct, settings=None, **config):
    """a: approval -> yes (when true) | no (when false)."""
    nodes = [approval("a", message="Ship {{input.what}}?", **config),
             transform("yes", {"ok": True}), transform("no", {"ok": False})]
    return create_workflow(srv, acct, nodes, [edge("a", "yes", True), edge("a", "no", False)],
                           settings=settings)


def waiting(srv, acct, eid, timeout=10):
    return poll(srv, acct, eid, lambda e: e["status"] == "waiting", timeout, "waiting")


def approvals_of(srv, acct, **params):
    r = srv.get("/api/approvals", headers=H(acct), params=params)
    assert r.status_code == 200, r.text
    return r.json()


def decide(srv, acct, eid, decision, nid="a", comment=None):
    body = {"decision": decision}
    if comment is not None:
        body["comment"] = comment
    return srv.post("/api/executions/%s/approvals/%s" % (eid, nid), json=body, headers=H(acct))


@pytest.mark.parametrize("decision,taken,skipped", [("approve", "yes", "no"), ("reject", "no", "yes")])
def test_decision_takes_its_branch(srv, decision, taken, skipped):
    user = register(srv)
    w = branching(srv, user)
    eid = start(srv, user, w["id"], input={"what": "v2"})
    e = check_execution(waiting(srv, user, eid))
    assert node_of(e, "a")["status"] == "waiting"
    listed = approvals_of(srv, user)
    mine = [x for x in listed["data"] if x["executionId"] == eid]
    assert mine and mine[0]["nodeId"] == "a" and mine[0]["message"] == "Ship v2?", listed
    assert mine[0]["workflowId"] == w["id"] and mine[0]["workflowName"] == w["name"]
    r = decide(srv, user, eid, decision, comment="looks fine")
    assert r.status_code == 200, r.text
    e = check_execution(wait_ended(srv, user, eid))
    assert e["status"] == "succeeded", e
    out = node_of(e, "a")["output"]
    assert out["decision"] == decision and out["comment"] == "looks fine", out
    assert out["decidedBy"] == user["user"]["id"] and out["decidedAt"], out
    assert node_of(e, taken)["status"] == "succeeded"
    assert node_of(e, skipped)["status"] == "skipped"
    assert eid not in [x["executionId"] for x in approvals_of(srv, user)["data"]]
    assert_error(decide(srv, user, eid, "approve"), 409, "CONFLICT")


def test_two_deciders_at_once_one_wins(srv):
    user = register(srv)
    w = branching(srv, user)
    eid = start(srv, user, w["id"], input={"what": "x"})
    waiting(srv, user, eid)
    answers = at_once([srv], 8, lambda s, sv, i: s.post(
        sv.url + "/api/executions/%s/approvals/a" % eid,
        json={"decision": "approve" if i % 2 else "reject"}, headers=H(user)))
    codes = sorted(r.status_code for r in answers)
    assert codes == [200] + [409] * 7, codes
    for r in answers:
        if r.status_code == 409:
            assert r.json()["error"]["code"] == "CONFLICT"
    e = wait_ended(srv, user, eid)
    won = [r for r in answers if r.status_code == 200][0].request.body
    assert node_of(e, "a")["output"]["decision"] in won.decode(), (won, e)


def test_timeout_fails_the_node(srv):
    user = register(srv)
    w = branching(srv, user, timeoutMs=500)
    eid = start(srv, user, w["id"], input={"what": "x"})
    e = check_execution(wait_ended(srv, user, eid, timeout=15))
    assert e["status"] == "failed", e
    assert e["error"]["code"] == "APPROVAL_TIMEOUT" and e["error"]["nodeId"] == "a", e["error"]
    assert node_of(e, "yes")["status"] == "skipped" and node_of(e, "no")["status"] == "skipped"
    assert_error(decide(srv, user, eid, "approve"), 409, "CONFLICT")


def test_timeout_rejects(srv):
    user = register(srv)
    w = branching(srv, user, timeoutMs=500, onTimeout="reject")
    eid = start(srv, user, w["id"], input={"what": "x"})
    e = check_execution(wait_ended(srv, user, eid, timeout=15))
    assert e["status"] == "succeeded", e
    out = node_of(e, "a")["output"]
    assert out["decision"] == "timeout" and out["decidedBy"] is None, out
    assert node_of(e, "no")["status"] == "succeeded" and node_of(e, "yes")["status"] == "skipped"


def test_waiting_holds_no_concurrency_slot(srv):
    user = register(srv)
    w = branching(srv, user, settings={"maxConcurrency": 1})
    first = start(srv, user, w["id"], input={"what": "1"})
    waiting(srv, user, first)
    second = start(srv, user, w["id"], input={"what": "2"})
    waiting(srv, user, second)   # it ran up to its approval while the first waits
    assert get_execution(srv, user, first)["status"] == "waiting"
    assert decide(srv, user, second, "approve").status_code == 200
    assert wait_ended(srv, user, second)["status"] == "succeeded"
    assert decide(srv, user, first, "reject").status_code == 200
    assert wait_ended(srv, user, first)["status"] == "succeeded"


def test_cancel_while_waiting(srv):
    user = register(srv)
    w = branching(srv, user)
    eid = start(srv, user, w["id"], input={"what": "x"})
    waiting(srv, user, eid)
    e = cancel(srv, user, eid)
    assert e["status"] == "cancelled", e
    assert node_of(e, "a")["status"] == "cancelled", e
    assert_error(decide(srv, user, eid, "approve"), 409, "CONFLICT")
    assert get_execution(srv, user, eid)["status"] == "cancelled"


def test_access_and_validation(srv):
    owner, other = register(srv), register(srv)
    w = branching(srv, owner)
    eid = start(srv, owner, w["id"], input={"what": "x"})
    waiting(srv, owner, eid)
    assert_error(decide(srv, other, eid, "approve"), 404, "NOT_FOUND")
    assert eid not in [x["executionId"] for x in approvals_of(srv, other)["data"]]
    share(srv, owner, w["id"], viewers=[other["user"]["id"]])
    assert_error(decide(srv, other, eid, "approve"), 403, "FORBIDDEN")
    r = decide(srv, owner, eid, "maybe")
    assert_error(r, 400, "VALIDATION_ERROR")
    assert r.json()["error"]["details"][0]["field"] == "decision"
    assert_error(decide(srv, owner, eid, "approve", comment="x" * 2001), 400, "VALIDATION_ERROR")
    assert_error(decide(srv, owner, eid, "approve", nid="nope"), 404, "NOT_FOUND")
    share(srv, owner, w["id"], editors=[other["user"]["id"]])
    assert eid in [x["executionId"] for x in approvals_of(srv, other)["data"]]
    assert decide(srv, other, eid, "approve", comment="x" * 2000).status_code == 200
    assert wait_ended(srv, owner, eid)["status"] == "succeeded"


def test_bad_config_is_refused(srv):
    user = register(srv)
    for config in ({"onTimeout": "ignore"}, {"timeoutMs": 0}, {"timeoutMs": 2592000001}):
        r = srv.post("/api/workflows", headers=H(user), json={
            "name": "bad", "definition": {"nodes": [approval("a", **config)], "edges": []}})
        assert_error(r, 400, "VALIDATION_ERROR")


def test_restart_while_waiting(aop_server):
    env = engine_env(EXECUTION_LEASE_MS="2000")
    s1 = aop_server(**env)
    user = register(s1)
    w = branching(s1, user)
    eid = start(s1, user, w["id"], input={"what": "x"})
    waiting(s1, user, eid)
    s1.kill()
    s2 = aop_server(**env)
    user = login(s2, user["_email"])
    time.sleep(3)   # past the lease: a waiting execution is not taken back as lapsed
    e = get_execution(s2, user, eid)
    assert e["status"] == "waiting" and node_of(e, "a")["status"] == "waiting", e
    assert decide(s2, user, eid, "approve").status_code == 200
    e = check_execution(wait_ended(s2, user, eid))
    assert e["status"] == "succeeded" and node_of(e, "yes")["status"] == "succeeded", e
    assert node_of(e, "a")["attempts"] == 1, e


def test_events_and_audit(srv):
    user = register(srv)
    w = branching(srv, user)
    eid = start(srv, user, w["id"], input={"what": "x"})
    waiting(srv, user, eid)
    s = SSE(srv, "/api/executions/%s/events" % eid, H(user))
    seen = [s.next() for _ in range(4)]
    assert [(e["event"], e["data"].get("nodeId")) for e in seen] == [
        ("execution.queued", None), ("execution.started", None), ("node.started", "a"),
        ("node.waiting", "a")], seen
    rid = "approval-%s" % uuid.uuid4().hex[:12]
    r = srv.post("/api/executions/%s/approvals/a" % eid, json={"decision": "reject"},
                 headers=dict(H(user), **{"X-Request-Id": rid}))
    assert r.status_code == 200, r.text
    rest = s.rest()
    kinds = [(e["event"], e["data"].get("nodeId"), e["data"].get("status")) for e in rest]
    assert kinds[0] == ("node.finished", "a", "succeeded"), kinds
    assert ("node.started", "a", None) not in kinds, "the waiting attempt does not start again"
    assert kinds[-1] == ("execution.finished", None, "succeeded"), kinds
    seqs = [e["data"]["seq"] for e in seen + rest]
    assert seqs == list(range(1, len(seqs) + 1)), seqs
    rows = []
    for _ in range(60):
        rows = [x for x in db_rows(srv, "SELECT * FROM audit_events WHERE request_id = ?", (rid,))
                if x["action"] == "approval.decide"]
        if rows:
            break
        time.sleep(0.05)
    assert len(rows) == 1 and rows[0]["actor_id"] == user["user"]["id"], rows
    assert rows[0]["subject_id"] == eid
    assert json.loads(rows[0]["detail"]) == {"nodeId": "a", "decision": "reject"}


def test_execution_timeout_is_paused_while_waiting(srv):
    """settings.timeoutMs 1500: waiting 2.5 s does not time the execution out."""
    user = register(srv)
    w = branching(srv, user, settings={"timeoutMs": 1500})
    eid = start(srv, user, w["id"], input={"what": "x"})
    waiting(srv, user, eid)
    time.sleep(2.5)
    assert get_execution(srv, user, eid)["status"] == "waiting"
    assert decide(srv, user, eid, "approve").status_code == 200
    assert wait_ended(srv, user, eid)["status"] == "succeeded"


def test_list_filter_and_pagination(srv):
    user = register(srv)
    w = branching(srv, user)
    ids = [start(srv, user, w["id"], input={"what": str(i)}) for i in range(3)]
    for eid in ids:
        waiting(srv, user, eid)
    mine = [x for x in approvals_of(srv, user, limit=100)["data"] if x["workflowId"] == w["id"]]
    assert sorted(x["executionId"] for x in mine) == sorted(ids)
    for x in mine:
        assert x["expiresAt"] > x["createdAt"], x
    page = approvals_of(srv, user, limit=1, page=2)
    assert len(page["data"]) == 1 and page["pagination"]["limit"] == 1
    assert_error(srv.get("/api/approvals", headers=H(user), params={"limit": 101}), 400, "VALIDATION_ERROR")
    assert get_execution(srv, user, ids[0])["status"] == "waiting"
    listed = srv.get("/api/executions", headers=H(user), params={"status": "waiting", "workflowId": w["id"]})
    assert listed.status_code == 200 and listed.json()["pagination"]["total"] == 3, listed.text
    for eid in ids:
        cancel(srv, user, eid)


def test_quota_counts_waiting_executions(aop_server):
    srv = aop_server(**engine_env(QUOTA_ACTIVE_EXECUTIONS="2"))
    user = register(srv)
    w = branching(srv, user)
    held = [start(srv, user, w["id"], input={"what": str(i)}) for i in range(2)]
    for eid in held:
        waiting(srv, user, eid)
    r = srv.post("/api/workflows/%s/execute" % w["id"], json={"input": {"what": "3"}}, headers=H(user))
    assert_error(r, 429, "QUOTA_EXCEEDED")
    assert decide(srv, user, held[0], "approve").status_code == 200
    wait_ended(srv, user, held[0])
    r = srv.post("/api/workflows/%s/execute" % w["id"], json={"input": {"what": "4"}}, headers=H(user))
    assert r.status_code == 202, r.text


def test_a_synchronous_execute_answers_when_it_begins_to_wait(srv):
    """wait: true does not hold the connection for a human: 202 "waiting" at once."""
    user = register(srv)
    w = branching(srv, user)
    r = srv.post("/api/workflows/%s/execute" % w["id"], json={"input": {"what": "x"}, "wait": True},
                 headers=H(user), timeout=10)
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["status"] == "waiting", body
    assert decide(srv, user, body["executionId"], "approve").status_code == 200
    assert wait_ended(srv, user, body["executionId"])["status"] == "succeeded"


def test_the_timeout_of_a_cancelled_execution_is_closed_not_run(srv):
    """Cancelled while waiting: its due timeout runs nothing, and its row leaves the due
    index (else every instance would find it due again every 250 ms)."""
    user = register(srv)
    w = branching(srv, user, timeoutMs=400)
    eid = start(srv, user, w["id"], input={"what": "x"})
    waiting(srv, user, eid)
    before = cancel(srv, user, eid)
    rows = []
    for _ in range(100):
        rows = db_rows(srv, "SELECT decision FROM approvals WHERE execution_id = ?", (eid,))
        if rows and rows[0]["decision"]:
            break
        time.sleep(0.05)
    assert rows == [{"decision": "timeout"}], rows
    after = get_execution(srv, user, eid)
    assert after["status"] == "cancelled" and after["finishedAt"] == before["finishedAt"], after
    assert node_of(after, "a")["status"] == "cancelled" and node_of(after, "no")["status"] == "skipped"
    assert_error(decide(srv, user, eid, "reject"), 409, "CONFLICT")


def test_parallel_approvals_and_a_failure_after_one_of_them(srv):
    """a1 and a2 wait side by side; a1 approved, the node after it fails: the execution
    fails and a2, which had begun to wait, ends cancelled (not skipped), with one
    node.started, one node.waiting and one node.finished."""
    user = register(srv)
    nodes = [approval("a1"), approval("a2"),
             {"id": "f", "type": "http", "config": {"url": "http://127.0.0.1:%d/" % free_port()}}]
    w = create_workflow(srv, user, nodes, [edge("a1", "f", True)])
    eid = start(srv, user, w["id"])
    e = waiting(srv, user, eid)
    assert node_of(e, "a1")["status"] == "waiting" and node_of(e, "a2")["status"] == "waiting", e
    assert sorted(x["nodeId"] for x in approvals_of(srv, user)["data"] if x["executionId"] == eid) == ["a1", "a2"]
    assert decide(srv, user, eid, "approve", nid="a1").status_code == 200
    e = check_execution(wait_ended(srv, user, eid))
    assert e["status"] == "failed" and e["error"]["nodeId"] == "f", e
    assert node_of(e, "a2")["status"] == "cancelled", e
    evs = SSE(srv, "/api/executions/%s/events" % eid, H(user)).rest()
    a2 = [x["event"] for x in evs if x["data"].get("nodeId") == "a2"]
    assert a2 == ["node.started", "node.waiting", "node.finished"], a2
    assert_error(decide(srv, user, eid, "approve", nid="a2"), 409, "CONFLICT")


def test_a_timeout_that_fails_the_execution_stops_the_other_waiting_approval(srv):
    """a1 times out (fail) while a2 still waits: when the execution resumes, a1 fails it
    before a2 is looked at again; a2, which had begun to wait, ends cancelled, not
    skipped."""
    user = register(srv)
    w = create_workflow(srv, user, [approval("a2"), approval("a1", timeoutMs=300)], [])
    eid = start(srv, user, w["id"])
    e = check_execution(wait_ended(srv, user, eid))
    assert e["status"] == "failed" and e["error"]["code"] == "APPROVAL_TIMEOUT", e
    assert e["error"]["nodeId"] == "a1", e
    assert node_of(e, "a2")["status"] == "cancelled", e
    evs = SSE(srv, "/api/executions/%s/events" % eid, H(user)).rest()
    a2 = [(x["event"], x["data"].get("status")) for x in evs if x["data"].get("nodeId") == "a2"]
    assert a2 == [("node.started", None), ("node.waiting", None), ("node.finished", "cancelled")], a2
