"""The workflow node kind: a child execution (docs/api.md, "More node types").

- output: the node's output is the child's output; the child has trigger "workflow",
  parentExecutionId, rootExecutionId and depth (null, null and 0 at the root).
- WORKFLOW_MAX_DEPTH: self-recursion stops at the bound, the deepest node failing
  DEPTH_EXCEEDED and each parent CHILD_FAILED with its child's error in details.
- a failed child fails the node CHILD_FAILED; cancelling a parent cancels its running child.
- permission: a workflow node naming a workflow its owner may not execute is refused on
  save (400) and, when sharing changed since, at run (FORBIDDEN).
- cost roll-up: a child's LLM usage and cost are its parent node's and execution's, and
  the analytics summary counts each call once.
- WORKERS=1 and WORKER_MAX_EXECUTIONS=1: nesting to WORKFLOW_MAX_DEPTH still finishes (a
  parent waiting for its child holds no place).
- a parent killed (kill -9) while its child runs re-attaches to that child after a
  restart instead of starting another.
"""
import uuid

import pytest

from authutil import admin_login, login, register
from conftest import assert_error, shared_server
from fakes import (H, cancel, chain, check_execution, cost_of, create_workflow, delay_node, engine_env,
                   list_executions, llm_node, node_of, poll, run, share, start, transform, wait_ended)
from fakes import fake_http, fake_llm, pricing_file  # noqa: F401 (fixtures used by name)

MAX_DEPTH = 3


@pytest.fixture(scope="module")
def srv(tmp_path_factory, fake_http, fake_llm, pricing_file):
    yield from shared_server(tmp_path_factory, "engine-workflow",
                             **engine_env(fake_llm, pricing_file, WORKFLOW_MAX_DEPTH=str(MAX_DEPTH),
                                          WORKERS="1"))


@pytest.fixture(scope="module")
def user(srv):
    return register(srv, name="Workflow user")


def wf_node(nid, workflow_id, input=None, **extra):
    conf = {"workflowId": workflow_id}
    if input is not None:
        conf["input"] = input
    return dict({"id": nid, "type": "workflow", "config": conf}, **extra)


def children(srv, acct, child_wid):
    return list_executions(srv, acct, workflowId=child_wid)["data"]


def test_child_output_and_fields(srv, user):
    child = create_workflow(srv, user, [transform("echo", {"got": "{{input.v}}", "tag": "child"})])
    parent = create_workflow(srv, user, [transform("prep", {"v": 41}),
                                         wf_node("sub", child["id"], {"v": "{{nodes.prep.output.v}}"}),
                                         transform("after", {"sub": "{{nodes.sub.output}}"})],
                             chain("prep", "sub", "after"))
    e = check_execution(run(srv, user, parent["id"]))
    assert e["status"] == "succeeded", e
    assert e["parentExecutionId"] is None and e["rootExecutionId"] is None and e["depth"] == 0, e
    n = node_of(e, "sub")
    assert n["type"] == "workflow" and n["status"] == "succeeded" and n["attempts"] == 1, n
    assert n["output"] == {"echo": {"got": 41, "tag": "child"}}, n
    assert e["output"] == {"after": {"sub": {"echo": {"got": 41, "tag": "child"}}}}, e["output"]
    kids = children(srv, user, child["id"])
    assert len(kids) == 1, kids
    for k in kids:
        check_execution(k, listed=True)
    c = check_execution(srv.get("/api/executions/%s" % kids[0]["id"], headers=H(user)).json())
    assert c["trigger"] == "workflow" and c["triggeredBy"] == user["user"]["id"], c
    assert c["parentExecutionId"] == e["id"] and c["rootExecutionId"] == e["id"] and c["depth"] == 1, c
    assert c["input"] == {"v": 41} and c["status"] == "succeeded", c
    assert kids[0]["parentExecutionId"] == e["id"] and kids[0]["depth"] == 1


def test_self_recursion_stops_at_the_depth_bound(srv, user):
    w = create_workflow(srv, user, [transform("t", {"ok": True})])
    body = {"definition": {"nodes": [wf_node("again", w["id"], {"d": "{{input.d}}"})], "edges": []}}
    r = srv.request("PUT", "/api/workflows/%s" % w["id"], headers=H(user), json=body)
    assert r.status_code == 200, r.text
    e = check_execution(run(srv, user, w["id"], timeout=30))
    assert e["status"] == "failed" and e["error"]["code"] == "CHILD_FAILED", e
    runs = [check_execution(x, listed=True) for x in children(srv, user, w["id"])]
    # depths 0..MAX_DEPTH each ran once; none deeper
    assert sorted(x["depth"] for x in runs) == list(range(MAX_DEPTH + 1)), runs
    deepest = [x for x in runs if x["depth"] == MAX_DEPTH][0]
    assert deepest["error"]["code"] == "DEPTH_EXCEEDED" and deepest["error"]["nodeId"] == "again", deepest
    assert all(x["rootExecutionId"] == e["id"] for x in runs if x["depth"] > 0), runs
    n = node_of(e, "again")
    assert n["error"]["code"] == "CHILD_FAILED", n
    d = n["error"]["details"]
    assert d["status"] == "failed" and d["error"]["code"] == "CHILD_FAILED", d
    assert UUID_RE(d["executionId"]), d


def UUID_RE(s):
    try:
        uuid.UUID(s)
        return True
    except ValueError:
        return False


def test_child_failure_fails_the_node(srv, user):
    child = create_workflow(srv, user, [delay_node("d", "{{input.ms}}")])
    parent = create_workflow(srv, user, [wf_node("sub", child["id"], {"ms": "not a number"})])
    e = check_execution(run(srv, user, parent["id"]))
    assert e["status"] == "failed" and e["error"] == {
        "code": "CHILD_FAILED", "message": e["error"]["message"], "nodeId": "sub"}, e
    n = node_of(e, "sub")
    d = n["error"]["details"]
    assert d["status"] == "failed" and d["error"]["code"] == "INVALID_CONFIG" and d["error"]["nodeId"] == "d", d


def test_cancel_propagates_to_the_child(srv, user):
    child = create_workflow(srv, user, [delay_node("wait", 20000)])
    parent = create_workflow(srv, user, [wf_node("sub", child["id"])])
    eid = start(srv, user, parent["id"])
    kid = poll(srv, user, eid, lambda e: (node_of(e, "sub") or {}).get("status") == "running", 10,
               "sub running") and None
    kids = []
    for _ in range(200):
        kids = [k for k in children(srv, user, child["id"]) if k["status"] == "running"]
        if kids:
            break
        import time
        time.sleep(0.03)
    assert kids, "the child never ran"
    kid = kids[0]["id"]
    e = cancel(srv, user, eid)
    assert e["status"] == "cancelled", e
    c = wait_ended(srv, user, kid, timeout=5)
    assert c["status"] == "cancelled", c
    assert c["error"]["code"] == "CANCELLED"


def test_permission_on_save_and_at_run(srv, user):
    other = register(srv, name="Other owner")
    theirs = create_workflow(srv, other, [transform("t", {"x": 1})])
    body = {"name": "wf-%s" % uuid.uuid4().hex[:8], "status": "active",
            "definition": {"nodes": [wf_node("sub", theirs["id"])], "edges": []}}
    r = srv.post("/api/workflows", headers=H(user), json=body)
    assert_error(r, 400, "VALIDATION_ERROR")
    fields = [d["field"] for d in r.json()["error"]["details"]]
    assert "definition.nodes[0].config.workflowId" in fields, r.json()
    # an unknown id is refused the same way
    body["definition"]["nodes"][0]["config"]["workflowId"] = str(uuid.UUID(int=7))
    assert_error(srv.post("/api/workflows", headers=H(user), json=body), 400, "VALIDATION_ERROR")
    # shared as editor: allowed on save and at run; unshared since: FORBIDDEN at run
    share(srv, other, theirs["id"], editors=[user["user"]["id"]])
    parent = create_workflow(srv, user, [wf_node("sub", theirs["id"])])
    e = run(srv, user, parent["id"])
    assert e["status"] == "succeeded" and e["output"] == {"sub": {"t": {"x": 1}}}, e
    share(srv, other, theirs["id"], editors=[])
    e = run(srv, user, parent["id"])
    assert e["status"] == "failed" and e["error"]["code"] == "FORBIDDEN" and e["error"]["nodeId"] == "sub", e


def test_costs_roll_up_and_analytics_count_each_call_once(srv, user, fake_llm):
    fake_llm.reset()
    adm = admin_login(srv)
    before = srv.get("/api/executions/analytics/summary", headers=H(adm)).json()
    child = create_workflow(srv, user, [llm_node("ask", "test-model", "hello {{input.who}}")])
    parent = create_workflow(srv, user, [wf_node("sub", child["id"], {"who": "you"}),
                                         llm_node("own", "test-model", "and me")])
    e = check_execution(run(srv, user, parent["id"]))
    assert e["status"] == "succeeded", e
    one = cost_of("test-model", 10, 5)
    n = node_of(e, "sub")
    assert n["usage"] == {"promptTokens": 10, "completionTokens": 5, "totalTokens": 15}, n
    assert n["costUsd"] == pytest.approx(one), n
    assert e["usage"]["totalTokens"] == 30 and e["costUsd"] == pytest.approx(2 * one), e
    kid = children(srv, user, child["id"])[0]
    assert kid["usage"]["totalTokens"] == 15 and kid["costUsd"] == pytest.approx(one), kid
    after = srv.get("/api/executions/analytics/summary", headers=H(adm)).json()
    assert after["totalExecutions"] - before["totalExecutions"] == 2, (before, after)
    assert after["usage"]["totalTokens"] - before["usage"]["totalTokens"] == 30, (before, after)
    assert after["costUsd"] - before["costUsd"] == pytest.approx(2 * one), (before, after)
    calls = {m["model"]: m["calls"] for m in after["byModel"]}
    was = {m["model"]: m["calls"] for m in before["byModel"]}
    assert calls["test-model"] - was.get("test-model", 0) == 2, (before["byModel"], after["byModel"])


def test_parent_reattaches_to_its_child_after_kill(aop_server, fake_llm, pricing_file):
    env = engine_env(fake_llm, pricing_file, EXECUTION_LEASE_MS="2000")
    s1 = aop_server(**env)
    u = register(s1)
    child = create_workflow(s1, u, [delay_node("wait", 2500), transform("t", {"done": True})],
                            chain("wait", "t"))
    parent = create_workflow(s1, u, [wf_node("sub", child["id"])])
    eid = start(s1, u, parent["id"])
    poll(s1, u, eid, lambda e: (node_of(e, "sub") or {}).get("status") == "running", 10, "sub running")
    poll(s1, u, eid, lambda e: len(children(s1, u, child["id"])) == 1, 10, "the child queued")
    s1.kill()
    s2 = aop_server(**env)
    u = login(s2, u["_email"])
    e = check_execution(wait_ended(s2, u, eid, timeout=30))
    assert e["status"] == "succeeded" and e["output"] == {"sub": {"t": {"done": True}}}, e
    kids = children(s2, u, child["id"])
    assert len(kids) == 1, "a second child started: %r" % kids
    assert kids[0]["status"] == "succeeded" and kids[0]["parentExecutionId"] == eid


def test_nesting_to_the_full_depth_with_one_worker_slot(aop_server, fake_llm, pricing_file):
    s = aop_server(**engine_env(fake_llm, pricing_file, WORKERS="1", WORKER_MAX_EXECUTIONS="1",
                                WORKFLOW_MAX_DEPTH="3"))
    u = register(s)
    w = create_workflow(s, u, [transform("leaf", {"deep": "{{input.n}}"})])
    for n in range(3):  # three parents above the leaf: depths 0..3
        w = create_workflow(s, u, [wf_node("sub", w["id"], {"n": n})])
    e = check_execution(run(s, u, w["id"], timeout=20))
    assert e["status"] == "succeeded", e
    assert e["output"] == {"sub": {"sub": {"sub": {"leaf": {"deep": 0}}}}}, e["output"]


def test_a_child_its_parent_stops_waiting_for_is_cancelled(srv, user):
    """The workflow node times out: its child is cancelled, not left running; a sibling's
    failure ends the parent: the child of a node still waiting is cancelled too."""
    slow = create_workflow(srv, user, [delay_node("wait", 20000)])
    parent = create_workflow(srv, user, [wf_node("sub", slow["id"], timeoutMs=300)])
    e = check_execution(run(srv, user, parent["id"]))
    assert e["status"] == "failed" and e["error"]["code"] == "TIMEOUT" and e["error"]["nodeId"] == "sub", e
    kids = children(srv, user, slow["id"])
    assert len(kids) == 1, kids
    k = wait_ended(srv, user, kids[0]["id"], timeout=5)
    assert k["status"] == "cancelled", k

    other = create_workflow(srv, user, [delay_node("wait", 20000)])
    parent = create_workflow(srv, user, [wf_node("sub", other["id"]), delay_node("pause", 300),
                                         delay_node("boom", "{{input.bad}}")], chain("pause", "boom"))
    e = check_execution(run(srv, user, parent["id"], input={"bad": "x"}))
    assert e["status"] == "failed" and e["error"]["nodeId"] == "boom", e
    assert node_of(e, "sub")["status"] == "cancelled", e
    kids = poll_children(srv, user, other["id"])
    k = wait_ended(srv, user, kids[0]["id"], timeout=5)
    assert k["status"] == "cancelled", k


def poll_children(srv, acct, wid, timeout=5.0):
    import time
    deadline = time.monotonic() + timeout
    while True:
        kids = children(srv, acct, wid)
        if kids or time.monotonic() > deadline:
            assert kids, "no child of workflow %s" % wid
            return kids
        time.sleep(0.03)


def test_children_inherit_the_roots_deadline(srv, user):
    """The child's own settings.timeoutMs (60 s) would let its 3 s delay finish; the
    root's 500 ms deadline ends it first: timed out, as its parent."""
    child = create_workflow(srv, user, [delay_node("wait", 3000)], settings={"timeoutMs": 60000})
    parent = create_workflow(srv, user, [wf_node("sub", child["id"])], settings={"timeoutMs": 500})
    e = check_execution(run(srv, user, parent["id"]))
    assert e["status"] == "timed_out" and e["error"]["code"] == "EXECUTION_TIMEOUT", e
    kid = wait_ended(srv, user, poll_children(srv, user, child["id"])[0]["id"], timeout=5)
    assert kid["status"] == "timed_out" and kid["error"]["code"] == "EXECUTION_TIMEOUT", kid
    assert node_of(kid, "wait")["status"] == "timed_out", kid


def waiting_child(srv, acct, child_wid, parent_id, timeout=10.0):
    """The id of parent_id's child once it waits (at an approval)."""
    kids = []
    e = poll(srv, acct, parent_id, lambda _: kids.extend(
        k for k in children(srv, acct, child_wid) if k["status"] == "waiting"
        and k["parentExecutionId"] == parent_id) or kids, timeout, "the child waiting")
    assert e and kids, "the child never waited"
    return kids[0]["id"]


def test_a_child_waiting_for_an_approval_keeps_its_parent_waiting(srv, user):
    """A child at an approval node is waiting, not ended: its parent waits on (past a few
    of its polls) and ends with the child's output once the child is approved; cancelling
    another parent cancels its waiting child too."""
    import time
    child = create_workflow(srv, user, [{"id": "gate", "type": "approval", "config": {}},
                                        transform("after", {"ok": True})], chain("gate", "after"))
    parent = create_workflow(srv, user, [wf_node("sub", child["id"])])
    eid = start(srv, user, parent["id"])
    kid = waiting_child(srv, user, child["id"], eid)
    time.sleep(2.5)  # more than two of the parent's looks at its child
    e = srv.get("/api/executions/%s" % eid, headers=H(user)).json()
    assert e["status"] == "running" and node_of(e, "sub")["status"] == "running", e
    r = srv.post("/api/executions/%s/approvals/gate" % kid, json={"decision": "approve"}, headers=H(user))
    assert r.status_code == 200, r.text
    e = check_execution(wait_ended(srv, user, eid, timeout=10))
    assert e["status"] == "succeeded" and e["output"] == {"sub": {"after": {"ok": True}}}, e

    eid = start(srv, user, parent["id"])
    kid = waiting_child(srv, user, child["id"], eid)
    assert cancel(srv, user, eid)["status"] == "cancelled"
    c = wait_ended(srv, user, kid, timeout=5)
    assert c["status"] == "cancelled", c
