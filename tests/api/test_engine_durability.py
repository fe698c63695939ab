"""Executions across server restarts, and history retention.

Each test starts its servers with the `aop_server` factory: every server of one test
shares the test's directory, so a new server opens the same database file. A crash is
a SIGKILL of the one process the test started (Server.kill); a graceful stop is
SIGTERM (Server.stop).

- kill -9 while a delay runs: after a restart the execution resumes and succeeds; the
  http node that had already succeeded is not called again.
- SIGTERM while a delay runs: the server exits 0 and hands the execution back; after a
  restart it completes (it never stays running).
- Finished executions survive a restart unchanged.
- EXECUTION_RETENTION_MAX=5: the history is pruned to the 5 newest in the background.
"""
import signal
import time
import uuid

import pytest

from authutil import admin_login, bearer, login, register
from fakes import (chain, create_workflow, delay_node, engine_env, get_execution, http_node, list_executions,
                   node_of, poll, run, start, transform, wait_ended, check_execution)
from fakes import fake_http, fake_llm, pricing_file  # noqa: F401 (fixtures used by name)

# A short lease, in case the implementation waits for it to lapse before resuming.
LEASE = {"EXECUTION_LEASE_MS": "2000"}


def durable_env(fake_llm, pricing_file, **over):
    return engine_env(fake_llm, pricing_file, **dict(LEASE, **over))


def counting_workflow(srv, acct, fake_http, key, delay_ms):
    """h: GET /count/<key> -> d: delay -> t: transform of h's answer."""
    nodes = [http_node("h", fake_http.url + "/count/" + key),
             delay_node("d", delay_ms),
             transform("t", {"count": "{{nodes.h.output.body.count}}", "key": "{{nodes.h.output.body.key}}",
                             "input": "{{input.tag}}"})]
    return create_workflow(srv, acct, nodes, chain("h", "d", "t"))


def wait_delay_running(srv, acct, eid):
    return poll(srv, acct, eid,
                lambda e: (node_of(e, "h") or {}).get("status") == "succeeded"
                and (node_of(e, "d") or {}).get("status") == "running",
                10, "h succeeded and d running")


def test_resume_after_kill_does_not_repeat_finished_nodes(aop_server, fake_http, fake_llm, pricing_file):
    env = durable_env(fake_llm, pricing_file)
    s1 = aop_server(**env)
    user = register(s1)
    key = uuid.uuid4().hex[:12]
    w = counting_workflow(s1, user, fake_http, key, 3000)
    eid = start(s1, user, w["id"], input={"tag": "crash"})
    before = wait_delay_running(s1, user, eid)
    assert fake_http.hits(key) == 1
    h_before = node_of(before, "h")
    assert before["status"] == "running"

    pid = s1.pid
    s1.kill()                                   # SIGKILL, this process only
    assert not s1.running() and s1.proc.returncode == -signal.SIGKILL, (pid, s1.proc.returncode)

    s2 = aop_server(**env)                      # same directory, same database file
    user = login(s2, user["_email"])
    e = check_execution(wait_ended(s2, user, eid, timeout=20))
    assert e["status"] == "succeeded", e
    assert e["output"] == {"t": {"count": 1, "key": key, "input": "crash"}}, e["output"]
    assert fake_http.hits(key) == 1, "the finished http node ran again"
    h = node_of(e, "h")
    assert h["status"] == "succeeded" and h["attempts"] == 1, h
    assert h["startedAt"] == h_before["startedAt"] and h["output"] == h_before["output"], (h, h_before)
    assert node_of(e, "d")["status"] == "succeeded" and node_of(e, "d")["output"] == {"delayedMs": 3000}
    assert [n["nodeId"] for n in e["nodes"]] == ["h", "d", "t"]
    assert e["id"] == eid and e["input"] == {"tag": "crash"} and e["createdAt"] == before["createdAt"]
    # the resumed run is a normal one: listed, counted, and a new one still works
    assert eid in [x["id"] for x in list_executions(s2, user, workflowId=w["id"])["data"]]
    wf = s2.get("/api/workflows/%s" % w["id"], headers=bearer(user["accessToken"])).json()
    assert wf["analytics"]["executionCount"] == 1 and wf["analytics"]["successCount"] == 1, wf["analytics"]


def test_sigterm_hands_the_execution_back(aop_server, fake_http, fake_llm, pricing_file):
    env = durable_env(fake_llm, pricing_file)
    s1 = aop_server(**env)
    user = register(s1)
    key = uuid.uuid4().hex[:12]
    w = counting_workflow(s1, user, fake_http, key, 1500)
    eid = start(s1, user, w["id"], input={"tag": "term"})
    wait_delay_running(s1, user, eid)
    t0 = time.monotonic()
    rc = s1.stop(signal.SIGTERM, timeout=15)
    assert rc == 0, "exit code %r after SIGTERM; stderr:\n%s" % (rc, s1.stderr_text()[-3000:])
    assert time.monotonic() - t0 < 10

    s2 = aop_server(**env)
    user = login(s2, user["_email"])
    e = wait_ended(s2, user, eid, timeout=20)
    assert e["status"] == "succeeded", e
    assert e["output"] == {"t": {"count": 1, "key": key, "input": "term"}}, e["output"]
    assert fake_http.hits(key) == 1
    assert node_of(e, "h")["attempts"] == 1
    time.sleep(0.3)
    assert get_execution(s2, user, eid) == e


def test_sigterm_answers_a_parked_wait(aop_server, fake_http, fake_llm, pricing_file):
    """A client waiting with wait:true when the server stops gets 202 with the status
    at that moment (back in the queue), and the server still exits 0 promptly."""
    import threading
    env = durable_env(fake_llm, pricing_file)
    s1 = aop_server(**env)
    user = register(s1)
    w = create_workflow(s1, user, [delay_node("d", 5000)])
    answer = {}

    def waiter():
        answer["r"] = s1.post("/api/workflows/%s/execute" % w["id"], json={"wait": True},
                              headers=bearer(user["accessToken"]), timeout=20)

    t = threading.Thread(target=waiter)
    t.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        body = list_executions(s1, user, status="running")
        if body["data"]:
            break
        time.sleep(0.05)
    assert body["data"], "the execution never started"
    t0 = time.monotonic()
    assert s1.stop(signal.SIGTERM, timeout=15) == 0
    assert time.monotonic() - t0 < 5
    t.join(10)
    r = answer["r"]
    assert r.status_code == 202, r.text
    # handed back to the queue before the wait ended
    assert r.json() == {"executionId": body["data"][0]["id"], "status": "queued"}, r.json()


def test_finished_executions_survive_a_restart(aop_server, fake_http, fake_llm, pricing_file):
    env = durable_env(fake_llm, pricing_file)
    s1 = aop_server(**env)
    user = register(s1)
    ok = create_workflow(s1, user, [transform("a", {"v": "{{input.v}}"}), delay_node("d", 5)], chain("a", "d"))
    bad = create_workflow(s1, user, [http_node("h", fake_http.url + "/status/500")])
    done = [run(s1, user, ok["id"], input={"v": 1}), run(s1, user, bad["id"]), run(s1, user, ok["id"], input={"v": 2})]
    assert [e["status"] for e in done] == ["succeeded", "failed", "succeeded"]
    listed = list_executions(s1, user)
    r = s1.get("/api/executions/workflow/%s/stats" % ok["id"], headers=bearer(user["accessToken"]))
    assert r.status_code == 200, r.text
    stats = r.json()
    assert s1.stop() == 0

    s2 = aop_server(**env)
    user = login(s2, user["_email"])
    for e in done:
        assert get_execution(s2, user, e["id"]) == e
    assert list_executions(s2, user) == listed
    r = s2.get("/api/executions/workflow/%s/stats" % ok["id"], headers=bearer(user["accessToken"]))
    assert r.status_code == 200, r.text
    assert r.json() == stats
    # the admin sees them too
    adm = admin_login(s2)
    assert {x["id"] for x in list_executions(s2, adm, limit=100)["data"]} >= {e["id"] for e in done}


def test_retention_keeps_the_newest(aop_server, fake_llm, pricing_file):
    s = aop_server(**engine_env(fake_llm, pricing_file, EXECUTION_RETENTION_MAX="5"))
    adm = admin_login(s)
    w = create_workflow(s, adm, [transform("t", {"i": "{{input.i}}"})])
    ids = []
    for i in range(12):
        e = run(s, adm, w["id"], input={"i": i})
        assert e["status"] == "succeeded", e
        ids.append(e["id"])
    deadline = time.monotonic() + 10
    while True:
        body = list_executions(s, adm, limit=100)
        if body["pagination"]["total"] <= 5:
            break
        if time.monotonic() > deadline:
            pytest.fail("still %d executions 10 s after the 12th ended" % body["pagination"]["total"])
        time.sleep(0.1)
    kept = [x["id"] for x in body["data"]]
    assert kept == ids[::-1][:len(kept)], "the newest are kept"
    # a cap, not a purge: it settles at 5
    time.sleep(1.5)
    body = list_executions(s, adm, limit=100)
    assert [x["id"] for x in body["data"]] == ids[::-1][:5], body["pagination"]
    assert body["pagination"]["total"] == 5
    for eid in ids[:7]:
        assert s.get("/api/executions/%s" % eid, headers=bearer(adm["accessToken"])).status_code == 404
    assert get_execution(s, adm, ids[-1])["output"] == {"t": {"i": 11}}
