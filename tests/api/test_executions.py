"""Executions through the API: POST /api/workflows/:id/execute (202 queued, wait: true,
validation, who may), the execution resource and its shape, GET/cancel/DELETE
/api/executions/:id with their access rules, the list (filters, dates, sort, paging,
visibility), cancelling running and queued executions, settings.maxConcurrency,
settings.timeoutMs, and executions outliving their deleted workflow.

What the nodes do is in test_engine_nodes.py, restarts and retention in
test_engine_durability.py, stats and summaries in test_exec_analytics.py."""
import datetime
import time

import pytest

from conftest import assert_error, assert_security_headers, shared_server
from authutil import (UUID7, admin_login, apikey, assert_validation, create_key, delete, make_user,
                      parse_ts, register)
from fakes import (ENDED, EXEC_KEYS, UNKNOWN_ID, H, cancel, chain, check_execution, create_workflow,
                   delay_node, engine_env, execute_raw, get_execution, http_node, list_executions, node_ids,
                   node_of, poll, run, share, start, transform, wait_ended, wait_node)
from fakes import fake_http, fake_llm, pricing_file  # noqa: F401 (fixtures used by name)

CODES = {400: "VALIDATION_ERROR", 401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND"}


@pytest.fixture(scope="module")
def srv(tmp_path_factory, fake_http, fake_llm, pricing_file):
    yield from shared_server(tmp_path_factory, "executions", **engine_env(fake_llm, pricing_file))


@pytest.fixture(scope="module")
def adm(srv):
    return admin_login(srv)


@pytest.fixture(scope="module")
def cast(srv, adm):
    """owner; editor and a viewer-role user named as editors; viewer named as viewer;
    a stranger; read- and write-scoped API keys of the editor."""
    owner = register(srv, name="Owner")
    editor = register(srv, name="Editor")
    viewer = register(srv, name="Viewer")
    stranger = register(srv, name="Stranger")
    vrole = make_user(srv, role="viewer", admin_tok=adm["accessToken"], name="Viewer Role")
    key_read = create_key(srv, editor["accessToken"], name="read", scopes=["read"])
    key_write = create_key(srv, editor["accessToken"], name="write", scopes=["read", "write"])
    people = {"admin": adm, "owner": owner, "editor": editor, "viewer": viewer, "stranger": stranger,
              "viewer_role_editor": vrole}
    headers = {k: H(v) for k, v in people.items()}
    headers["key_read"] = apikey(key_read["key"])
    headers["key_write"] = apikey(key_write["key"])
    headers["none"] = {}
    return people, headers


PRINCIPALS = ["admin", "owner", "editor", "viewer", "stranger", "viewer_role_editor", "key_read", "key_write", "none"]


def row(admin, owner, editor, viewer, stranger, viewer_role_editor, key_read, key_write, none=401):
    return dict(admin=admin, owner=owner, editor=editor, viewer=viewer, stranger=stranger,
                viewer_role_editor=viewer_role_editor, key_read=key_read, key_write=key_write, none=none)


def shared_wf(srv, cast, nodes=(), edges=(), settings=None):
    people, _ = cast
    w = create_workflow(srv, people["owner"], nodes, edges, settings=settings)
    return share(srv, people["owner"], w["id"],
                 editors=[people["editor"]["user"]["id"], people["viewer_role_editor"]["user"]["id"]],
                 viewers=[people["viewer"]["user"]["id"]])


def check_cell(r, want, who, wrong):
    if r.status_code != want:
        wrong.append("%s: expected %d, got %d %s" % (who, want, r.status_code, r.text[:300]))
        return
    if want in CODES:
        try:
            assert_error(r, want, CODES[want])
        except AssertionError as e:
            wrong.append("%s: %s" % (who, e))


def count_for(srv, adm, wid):
    return list_executions(srv, adm, workflowId=wid)["pagination"]["total"]


# ---------------------------------------------------------------- execute

def test_execute_answers_202_queued_then_runs(srv, cast, fake_http):
    people, _ = cast
    owner = people["owner"]
    w = create_workflow(srv, owner, [transform("a", {"x": "{{input.x}}", "k": "const"}),
                                     transform("b", {"got": "{{nodes.a.output.x}}"})], chain("a", "b"))
    t0 = time.time()
    r = execute_raw(srv, H(owner), w["id"], {"input": {"x": 42}})
    assert r.status_code == 202, r.text
    assert_security_headers(r)
    assert r.headers.get("Content-Type", "").split(";")[0].strip() == "application/json"
    b = r.json()
    assert set(b) == {"executionId", "status"} and b["status"] == "queued", b
    assert UUID7.match(b["executionId"]), b
    e = check_execution(wait_ended(srv, owner, b["executionId"]))
    assert e["id"] == b["executionId"]
    assert e["status"] == "succeeded", e
    assert e["workflowId"] == w["id"] and e["workflowVersion"] == w["version"]
    assert e["trigger"] == "api" and e["triggeredBy"] == owner["user"]["id"]
    assert e["input"] == {"x": 42}
    assert e["output"] == {"b": {"got": 42}}
    assert e["error"] is None
    assert e["usage"] == {"promptTokens": 0, "completionTokens": 0, "totalTokens": 0} and e["costUsd"] == 0
    assert e["memoryBytes"] > 0
    assert node_ids(e) == ["a", "b"]
    created, started, finished = (parse_ts(e[k]) for k in ("createdAt", "startedAt", "finishedAt"))
    assert abs(created.timestamp() - t0) < 60
    assert created <= started <= finished
    assert abs(e["durationMs"] - (finished - started).total_seconds() * 1000) <= 20, e
    # nodes ran inside the execution's time span
    for n in e["nodes"]:
        assert n["status"] == "succeeded" and n["attempts"] == 1, n
        assert started <= parse_ts(n["startedAt"]) <= parse_ts(n["finishedAt"]) <= finished, (n, e)
    # a second GET gives the same document; the execution is in the list
    assert get_execution(srv, owner, e["id"]) == e
    assert e["id"] in [x["id"] for x in list_executions(srv, owner, workflowId=w["id"])["data"]]


def test_execute_without_a_body_or_input(srv, cast, adm):
    people, _ = cast
    owner = people["owner"]
    w = create_workflow(srv, owner, [transform("t", {"v": "{{input.v}}"})])
    r = srv.post("/api/workflows/%s/execute" % w["id"], headers=H(owner))     # no body at all
    assert r.status_code == 202, r.text
    e1 = wait_ended(srv, owner, r.json()["executionId"])
    r = execute_raw(srv, H(owner), w["id"], {})
    assert r.status_code == 202, r.text
    e2 = wait_ended(srv, owner, r.json()["executionId"])
    for e in (e1, e2):
        check_execution(e)
        assert e["status"] == "succeeded", e
        assert e["input"] in ({}, None), e
        assert e["output"] == {"t": {"v": None}}, e
    assert e1["id"] != e2["id"]
    assert count_for(srv, adm, w["id"]) == 2


def test_empty_workflow_succeeds_with_empty_output(srv, cast):
    people, _ = cast
    w = create_workflow(srv, people["owner"])
    e = check_execution(run(srv, people["owner"], w["id"], input={"a": 1}))
    assert e["status"] == "succeeded" and e["output"] == {} and e["nodes"] == [], e
    assert e["input"] == {"a": 1}


@pytest.mark.parametrize("value", [[1, 2], "text", 5, True], ids=["array", "string", "number", "bool"])
def test_execute_input_must_be_an_object(srv, cast, adm, value):
    people, _ = cast
    w = create_workflow(srv, people["owner"], [transform("t", 1)])
    r = execute_raw(srv, H(people["owner"]), w["id"], {"input": value})
    assert_validation(r, "input")
    assert count_for(srv, adm, w["id"]) == 0


@pytest.mark.parametrize("value", ["true", 1, {"a": 1}, [True]], ids=["string", "number", "object", "array"])
def test_execute_wait_must_be_boolean(srv, cast, adm, value):
    people, _ = cast
    w = create_workflow(srv, people["owner"], [transform("t", 1)])
    r = execute_raw(srv, H(people["owner"]), w["id"], {"input": {}, "wait": value})
    assert_validation(r, "wait")
    assert count_for(srv, adm, w["id"]) == 0


def test_execute_refuses_bad_json_and_other_media_types(srv, cast, adm):
    people, _ = cast
    w = create_workflow(srv, people["owner"], [transform("t", 1)])
    h = dict(H(people["owner"]), **{"Content-Type": "application/json"})
    assert_error(srv.post("/api/workflows/%s/execute" % w["id"], data=b'{"input": {', headers=h),
                 400, "INVALID_JSON")
    h = dict(H(people["owner"]), **{"Content-Type": "text/plain"})
    assert_error(srv.post("/api/workflows/%s/execute" % w["id"], data=b'{"input": {}}', headers=h),
                 415, "UNSUPPORTED_MEDIA_TYPE")
    assert count_for(srv, adm, w["id"]) == 0


def test_execute_access_matrix(srv, cast, adm):
    people, headers = cast
    w = shared_wf(srv, cast)
    expected = row(202, 202, 202, 403, 404, 403, 403, 202)
    wrong = []
    started_by = {}
    for who in PRINCIPALS:
        r = execute_raw(srv, headers[who], w["id"], {"input": {"who": who}})
        check_cell(r, expected[who], who, wrong)
        if r.status_code == 202:
            started_by[r.json()["executionId"]] = who
    assert not wrong, "\n  ".join(wrong)
    assert count_for(srv, adm, w["id"]) == 4
    # each execution records who triggered it (an API key acts as its user)
    for eid, who in started_by.items():
        e = wait_ended(srv, adm, eid)
        user = people["editor"] if who.startswith("key_") else people[who]
        assert e["triggeredBy"] == user["user"]["id"], (who, e["triggeredBy"])
        assert e["input"] == {"who": who}


def test_execute_settles_access_before_the_body(srv, cast):
    """404 for a workflow the caller cannot read and 403 for one it may only read come
    before a 400 about what was sent, as on the workflow routes."""
    people, headers = cast
    w = shared_wf(srv, cast)
    bad = {"input": [1], "wait": "yes"}
    assert_error(execute_raw(srv, headers["stranger"], w["id"], bad), 404, "NOT_FOUND")
    assert_error(execute_raw(srv, headers["viewer"], w["id"], bad), 403, "FORBIDDEN")
    r = execute_raw(srv, headers["owner"], w["id"], bad)
    assert_error(r, 400, "VALIDATION_ERROR")
    assert {d["field"] for d in r.json()["error"]["details"]} == {"input", "wait"}


@pytest.mark.parametrize("wid", [UNKNOWN_ID, "not-a-uuid"])
def test_execute_unknown_workflow_404(srv, cast, adm, wid):
    people, _ = cast
    for acct in (adm, people["owner"]):
        assert_error(execute_raw(srv, H(acct), wid, {}), 404, "NOT_FOUND")


def test_execute_deleted_workflow_404(srv, cast, adm):
    people, _ = cast
    w = create_workflow(srv, people["owner"], [transform("t", 1)])
    assert delete(srv, "/api/workflows/%s" % w["id"], headers=H(adm)).status_code == 204
    for acct in (adm, people["owner"]):
        assert_error(execute_raw(srv, H(acct), w["id"], {}), 404, "NOT_FOUND")


def test_execution_runs_the_version_current_at_execute_time(srv, cast):
    people, _ = cast
    owner = people["owner"]
    w = create_workflow(srv, owner, [transform("t", "first")])
    e1 = run(srv, owner, w["id"])
    r = srv.request("PUT", "/api/workflows/%s" % w["id"], headers=H(owner),
                    json={"definition": {"nodes": [transform("t", "second")], "edges": []}})
    assert r.status_code == 200, r.text
    e2 = run(srv, owner, w["id"])
    assert (e1["workflowVersion"], e1["output"]) == (1, {"t": "first"})
    assert (e2["workflowVersion"], e2["output"]) == (2, {"t": "second"})


# ---------------------------------------------------------------- wait: true

def test_wait_true_answers_200_with_the_finished_execution(srv, cast, fake_http):
    people, _ = cast
    owner = people["owner"]
    w = create_workflow(srv, owner, [delay_node("d", 150), transform("t", {"done": True})], chain("d", "t"))
    t0 = time.monotonic()
    r = execute_raw(srv, H(owner), w["id"], {"input": {"q": 1}, "wait": True})
    elapsed = time.monotonic() - t0
    assert r.status_code == 200, r.text
    assert_security_headers(r)
    e = check_execution(r.json())
    assert e["status"] == "succeeded" and e["output"] == {"t": {"done": True}}, e
    assert elapsed >= 0.14, elapsed
    assert get_execution(srv, owner, e["id"]) == e
    # a failing run is also answered once it has ended
    w2 = create_workflow(srv, owner, [http_node("h", fake_http.url + "/status/500")])
    r = execute_raw(srv, H(owner), w2["id"], {"wait": True})
    assert r.status_code == 200, r.text
    e2 = check_execution(r.json())
    assert e2["status"] == "failed" and e2["error"]["code"] == "HTTP_STATUS" and e2["error"]["nodeId"] == "h", e2
    # wait: false is the default behaviour
    r = execute_raw(srv, H(owner), w["id"], {"wait": False})
    assert r.status_code == 202 and r.json()["status"] == "queued", r.text
    wait_ended(srv, owner, r.json()["executionId"])


def test_wait_true_gives_up_after_the_workflow_timeout(srv, cast):
    """The second execution waits in the queue behind the first (maxConcurrency 1), which
    runs until its own 1500 ms timeout; then the second needs as long again. So it cannot end
    within the 1500 ms the wait allows, however late the wait starts: 202 with its status at
    that moment."""
    people, _ = cast
    owner = people["owner"]
    w = create_workflow(srv, owner, [delay_node("d", 3000)], settings={"maxConcurrency": 1, "timeoutMs": 1500})
    first = start(srv, owner, w["id"])
    poll(srv, owner, first, lambda e: e["status"] == "running", 10, "running")
    t0 = time.monotonic()
    r = execute_raw(srv, H(owner), w["id"], {"wait": True}, timeout=20)
    elapsed = time.monotonic() - t0
    assert r.status_code == 202, r.text
    b = r.json()
    assert set(b) == {"executionId", "status"}, b
    assert b["status"] in ("queued", "running"), b
    assert 1.2 <= elapsed < 5, elapsed
    second = get_execution(srv, owner, b["executionId"])
    assert second["status"] in ("queued", "running"), second
    for eid in (first, b["executionId"]):
        e = wait_ended(srv, owner, eid, timeout=10)
        assert e["status"] in ("succeeded", "timed_out"), e


# ---------------------------------------------------------------- GET /api/executions/:id

def test_get_execution_access_matrix(srv, cast):
    people, headers = cast
    w = shared_wf(srv, cast, [transform("t", "x")])
    e = run(srv, people["owner"], w["id"])
    expected = row(200, 200, 200, 200, 404, 200, 200, 200)
    wrong = []
    for who in PRINCIPALS:
        r = srv.get("/api/executions/%s" % e["id"], headers=headers[who])
        check_cell(r, expected[who], who, wrong)
        if r.status_code == 200 and r.json() != e:
            wrong.append("%s: a different document %r" % (who, r.json()))
    assert not wrong, "\n  ".join(wrong)


@pytest.mark.parametrize("eid", [UNKNOWN_ID, "not-a-uuid", "x" * 64, "1"])
def test_get_unknown_execution_404(srv, adm, eid):
    assert_error(srv.get("/api/executions/%s" % eid, headers=H(adm)), 404, "NOT_FOUND")
    assert_error(srv.post("/api/executions/%s/cancel" % eid, headers=H(adm)), 404, "NOT_FOUND")
    assert_error(delete(srv, "/api/executions/%s" % eid, headers=H(adm)), 404, "NOT_FOUND")


def test_routes_need_authentication(srv, cast):
    people, _ = cast
    w = create_workflow(srv, people["owner"], [transform("t", 1)])
    e = run(srv, people["owner"], w["id"])
    for method, path in [("POST", "/api/workflows/%s/execute" % w["id"]), ("GET", "/api/executions"),
                         ("GET", "/api/executions/%s" % e["id"]), ("POST", "/api/executions/%s/cancel" % e["id"]),
                         ("DELETE", "/api/executions/%s" % e["id"]),
                         ("GET", "/api/executions/workflow/%s/stats" % w["id"]),
                         ("GET", "/api/executions/analytics/summary")]:
        kw = {"json": {}} if method == "POST" else {}
        assert_error(srv.request(method, path, **kw), 401, "UNAUTHORIZED")
        assert_error(srv.request(method, path, headers={"Authorization": "Bearer nope"}, **kw), 401, "UNAUTHORIZED")
    assert get_execution(srv, people["owner"], e["id"]) == e


# ---------------------------------------------------------------- cancel

def test_cancel_running_execution(srv, cast):
    people, _ = cast
    owner, editor = people["owner"], people["editor"]
    w = shared_wf(srv, cast, [transform("a", 1), delay_node("d", 10000), transform("after", 2)],
                  chain("a", "d", "after"))
    eid = start(srv, owner, w["id"])
    running = wait_node(srv, owner, eid, "d", "running")
    # while it runs, every node is listed: the one not reached yet is pending
    assert [(n["nodeId"], n["status"]) for n in running["nodes"]] == \
        [("a", "succeeded"), ("d", "running"), ("after", "pending")], running["nodes"]
    t0 = time.monotonic()
    e = cancel(srv, editor, eid)
    check_execution(e)
    assert time.monotonic() - t0 < 2
    assert e["id"] == eid and e["status"] == "cancelled", e
    assert e["error"]["code"] == "CANCELLED" and e["error"]["nodeId"] is None, e["error"]
    assert e["output"] is None and e["finishedAt"] is not None
    assert node_of(e, "a")["status"] == "succeeded"
    assert node_of(e, "d")["status"] == "cancelled", e["nodes"]
    after = node_of(e, "after")
    assert after["status"] == "skipped" and after["startedAt"] is None and after["finishedAt"] is None, after
    # it stays cancelled; a second cancel changes nothing
    time.sleep(0.5)
    again = get_execution(srv, owner, eid)
    assert again == e
    assert cancel(srv, owner, eid) == e
    assert (parse_ts(e["finishedAt"]) - parse_ts(e["startedAt"])).total_seconds() < 5


def test_cancel_finished_execution_is_unchanged(srv, cast, fake_http):
    people, _ = cast
    owner = people["owner"]
    w = create_workflow(srv, owner, [transform("t", {"v": 1})])
    done = run(srv, owner, w["id"])
    assert done["status"] == "succeeded"
    assert cancel(srv, owner, done["id"]) == done
    assert get_execution(srv, owner, done["id"]) == done
    w2 = create_workflow(srv, owner, [http_node("h", fake_http.url + "/status/502")])
    failed = run(srv, owner, w2["id"])
    assert failed["status"] == "failed"
    assert cancel(srv, owner, failed["id"]) == failed


def test_cancel_queued_execution(srv, cast):
    people, _ = cast
    owner = people["owner"]
    w = create_workflow(srv, owner, [delay_node("d", 10000)], settings={"maxConcurrency": 1})
    first = start(srv, owner, w["id"])
    poll(srv, owner, first, lambda e: e["status"] == "running", 10, "running")
    second = start(srv, owner, w["id"])
    time.sleep(0.2)
    assert get_execution(srv, owner, second)["status"] == "queued"
    c = check_execution(cancel(srv, owner, second))
    assert c["status"] == "cancelled" and c["error"]["code"] == "CANCELLED" and c["error"]["nodeId"] is None, c
    assert c["nodes"] == [] and c["output"] is None, c
    # the slot it would have taken frees up: cancel the first, the second never runs
    c1 = cancel(srv, owner, first)
    assert c1["status"] == "cancelled"
    time.sleep(0.5)
    assert get_execution(srv, owner, second) == c


def test_cancel_access_matrix(srv, cast):
    people, headers = cast
    w = shared_wf(srv, cast, [delay_node("d", 10000)])
    eid = start(srv, people["owner"], w["id"])
    expected = row(200, 200, 200, 403, 404, 403, 403, 200)
    wrong = []
    # refused callers first, while it runs: it must stay running
    order = sorted(PRINCIPALS, key=lambda who: expected[who] == 200)
    for who in order:
        r = srv.post("/api/executions/%s/cancel" % eid, headers=headers[who])
        check_cell(r, expected[who], who, wrong)
        if expected[who] != 200:
            st = get_execution(srv, people["owner"], eid)["status"]
            if st not in ("queued", "running"):
                wrong.append("%s: a refused cancel ended the execution (%s)" % (who, st))
    assert not wrong, "\n  ".join(wrong)
    assert get_execution(srv, people["owner"], eid)["status"] == "cancelled"


# ---------------------------------------------------------------- concurrency and timeouts

def test_max_concurrency_one_runs_one_at_a_time(srv, cast, adm):
    people, _ = cast
    owner = people["owner"]
    w = create_workflow(srv, owner, [delay_node("d", 500)], settings={"maxConcurrency": 1})
    ids = [start(srv, owner, w["id"]) for _ in range(3)]
    deadline = time.monotonic() + 15
    max_running = 0
    while True:
        items = list_executions(srv, owner, workflowId=w["id"], limit=10)["data"]
        running = [x for x in items if x["status"] == "running"]
        max_running = max(max_running, len(running))
        if len(items) == 3 and all(x["status"] in ENDED for x in items):
            break
        assert time.monotonic() < deadline, items
        time.sleep(0.03)
    assert max_running <= 1, "more than one execution running at once"
    runs = sorted((get_execution(srv, owner, i) for i in ids), key=lambda e: e["startedAt"])
    assert [e["status"] for e in runs] == ["succeeded"] * 3, runs
    for prev, nxt in zip(runs, runs[1:]):
        assert parse_ts(nxt["startedAt"]) >= parse_ts(prev["finishedAt"]), (prev, nxt)
    # the first queued is the first to run
    assert runs[0]["id"] == ids[0]


def test_execution_timeout(srv, cast):
    people, _ = cast
    owner = people["owner"]
    w = create_workflow(srv, owner, [transform("a", 1), delay_node("d", 5000), transform("after", 2)],
                        chain("a", "d", "after"), settings={"timeoutMs": 300})
    t0 = time.monotonic()
    eid = start(srv, owner, w["id"])
    e = check_execution(wait_ended(srv, owner, eid, timeout=10))
    elapsed = time.monotonic() - t0
    assert e["status"] == "timed_out", e
    assert e["error"]["code"] == "EXECUTION_TIMEOUT" and e["error"]["nodeId"] is None, e["error"]
    assert e["output"] is None
    assert elapsed < 2.5, elapsed
    assert 250 <= e["durationMs"] < 2000, e["durationMs"]
    assert node_of(e, "a")["status"] == "succeeded"
    assert node_of(e, "d")["status"] == "timed_out", e["nodes"]
    assert node_of(e, "after")["status"] == "skipped", e["nodes"]  # never reached
    time.sleep(0.3)
    assert get_execution(srv, owner, eid) == e


# ---------------------------------------------------------------- list

@pytest.fixture(scope="module")
def history(srv, adm, fake_http):
    """A fresh owner with workflows A (http on /status/{{input.code}}) and B (transform),
    a viewer of A only, and five finished executions made in this order:
    A 200, A 500, B, A 200, B  ->  succeeded, failed, succeeded, succeeded, succeeded."""
    owner = register(srv, name="History owner")
    viewer = register(srv, name="History viewer")
    stranger = register(srv, name="History stranger")
    wa = create_workflow(srv, owner, [http_node("h", fake_http.url + "/status/{{input.code}}")], name="A")
    wb = create_workflow(srv, owner, [delay_node("d", 5), transform("t", {"n": "{{input.n}}"})], chain("d", "t"),
                         name="B")
    share(srv, owner, wa["id"], viewers=[viewer["user"]["id"]])
    plan = [(wa, {"code": 200}), (wa, {"code": 500}), (wb, {"n": 1}), (wa, {"code": 200}), (wb, {"n": 2})]
    ex = []
    for w, inp in plan:
        ex.append(run(srv, owner, w["id"], input=inp))
        time.sleep(0.003)
    assert [e["status"] for e in ex] == ["succeeded", "failed", "succeeded", "succeeded", "succeeded"], ex
    return {"owner": owner, "viewer": viewer, "stranger": stranger, "A": wa, "B": wb, "ex": ex}


def hids(body):
    return [x["id"] for x in body["data"]]


def test_list_shape_and_default_order(srv, history):
    ex = history["ex"]
    r = srv.get("/api/executions", headers=H(history["owner"]))
    assert r.status_code == 200, r.text
    assert_security_headers(r)
    body = r.json()
    assert set(body) == {"data", "pagination"}
    assert body["pagination"] == {"page": 1, "limit": 20, "total": 5, "totalPages": 1}
    assert hids(body) == [e["id"] for e in reversed(ex)]       # newest first
    by_id = {e["id"]: e for e in ex}
    for item in body["data"]:
        check_execution(item, listed=True)
        full = by_id[item["id"]]
        for k in EXEC_KEYS & set(item):
            assert item[k] == full[k], (k, item[k], full[k])


def test_list_filters_by_workflow_and_status(srv, history):
    owner, ex, wa, wb = history["owner"], history["ex"], history["A"], history["B"]
    ids = [e["id"] for e in ex]
    assert hids(list_executions(srv, owner, workflowId=wa["id"])) == [ids[3], ids[1], ids[0]]
    assert hids(list_executions(srv, owner, workflowId=wb["id"])) == [ids[4], ids[2]]
    assert hids(list_executions(srv, owner, status="failed")) == [ids[1]]
    assert hids(list_executions(srv, owner, status="succeeded")) == [ids[4], ids[3], ids[2], ids[0]]
    assert hids(list_executions(srv, owner, status="succeeded", workflowId=wa["id"])) == [ids[3], ids[0]]
    for st in ("queued", "running", "cancelled", "timed_out"):
        b = list_executions(srv, owner, status=st)
        assert b["data"] == [] and b["pagination"]["total"] == 0 and b["pagination"]["totalPages"] == 0, (st, b)
    assert list_executions(srv, owner, workflowId=UNKNOWN_ID)["pagination"]["total"] == 0


@pytest.mark.parametrize("value", ["done", "SUCCEEDED", "pending", "skipped", "succeeded,failed"])
def test_list_unknown_status_400(srv, history, value):
    r = srv.get("/api/executions", headers=H(history["owner"]), params={"status": value})
    assert_error(r, 400, "VALIDATION_ERROR")


def _day_after(date_str, n=1):
    d = datetime.date.fromisoformat(date_str) + datetime.timedelta(days=n)
    return d.isoformat()


def test_list_from_to(srv, history):
    owner, ex = history["owner"], history["ex"]
    ids = [e["id"] for e in ex]
    created = [e["createdAt"] for e in ex]

    def got(**p):
        return set(hids(list_executions(srv, owner, limit=100, **p)))
    # RFC 3339: from is inclusive, to exclusive
    assert got(**{"from": created[2]}) == {i for i, c in zip(ids, created) if c >= created[2]}
    assert got(to=created[2]) == {i for i, c in zip(ids, created) if c < created[2]}
    assert got(**{"from": created[1], "to": created[3]}) == {i for i, c in zip(ids, created)
                                                             if created[1] <= c < created[3]}
    assert ids[1] in got(**{"from": created[1]}) and ids[1] not in got(to=created[1])
    assert got(**{"from": created[4], "to": created[4]}) == set()
    # YYYY-MM-DD: the day's midnight UTC
    first_day, last_day = created[0][:10], created[4][:10]
    assert got(**{"from": first_day}) == set(ids)
    assert got(**{"from": first_day, "to": _day_after(last_day)}) == set(ids)
    assert got(to=first_day) == set()
    assert got(**{"from": _day_after(last_day)}) == set()
    # seconds without fractions
    assert got(**{"from": first_day + "T00:00:00Z"}) == set(ids)
    assert got(to=first_day + "T00:00:00Z") == set()
    b = list_executions(srv, owner, **{"from": _day_after(last_day)})
    assert b["pagination"] == {"page": 1, "limit": 20, "total": 0, "totalPages": 0}


@pytest.mark.parametrize("param", ["from", "to"])
@pytest.mark.parametrize("value", ["yesterday", "2024-13-01", "2024-01-32", "20240101", "2024-01-01T25:00:00Z",
                                   "1700000000"])
def test_list_bad_dates_400(srv, history, param, value):
    r = srv.get("/api/executions", headers=H(history["owner"]), params={param: value})
    assert_error(r, 400, "VALIDATION_ERROR")


@pytest.mark.parametrize("sort", ["createdAt", "-createdAt", "startedAt", "-startedAt", "finishedAt", "-finishedAt",
                                  "durationMs", "-durationMs"])
def test_list_sort(srv, history, sort):
    owner, ex = history["owner"], history["ex"]
    body = list_executions(srv, owner, sort=sort)
    assert sorted(hids(body)) == sorted(e["id"] for e in ex)
    field = sort.lstrip("-")
    by_id = {e["id"]: e for e in ex}
    values = [by_id[i][field] for i in hids(body)]
    want = sorted(values, reverse=sort.startswith("-"))
    assert values == want, (sort, values)
    if field == "createdAt":
        order = [e["id"] for e in ex]
        assert hids(body) == (order[::-1] if sort.startswith("-") else order)


@pytest.mark.parametrize("sort", ["status", "-name", "createdat", "--createdAt", "durationMs,createdAt", "costUsd"])
def test_list_unknown_sort_400(srv, history, sort):
    assert_error(srv.get("/api/executions", headers=H(history["owner"]), params={"sort": sort}),
                 400, "VALIDATION_ERROR")


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 101}, {"limit": "x"}, {"page": 0}, {"page": "two"}])
def test_list_bad_paging_400(srv, history, params):
    assert_error(srv.get("/api/executions", headers=H(history["owner"]), params=params), 400, "VALIDATION_ERROR")


def test_list_pagination(srv, history):
    owner, ex = history["owner"], history["ex"]
    ids = [e["id"] for e in reversed(ex)]
    pages = [list_executions(srv, owner, limit=2, page=p) for p in (1, 2, 3, 4)]
    assert [hids(p) for p in pages] == [ids[0:2], ids[2:4], ids[4:5], []]
    for i, p in enumerate(pages):
        assert p["pagination"] == {"page": i + 1, "limit": 2, "total": 5, "totalPages": 3}


def test_list_visibility(srv, history, adm):
    owner, viewer, stranger, wa, wb = (history[k] for k in ("owner", "viewer", "stranger", "A", "B"))
    ex = history["ex"]
    a_ids = [ex[3]["id"], ex[1]["id"], ex[0]["id"]]
    # a viewer of A sees A's executions only
    assert hids(list_executions(srv, viewer)) == a_ids
    assert hids(list_executions(srv, viewer, workflowId=wa["id"])) == a_ids
    b = list_executions(srv, viewer, workflowId=wb["id"])
    assert b["data"] == [] and b["pagination"]["total"] == 0
    # a stranger sees none, even naming the workflow
    for params in ({}, {"workflowId": wa["id"]}, {"workflowId": wb["id"]}, {"status": "failed"}):
        b = list_executions(srv, stranger, **params)
        assert b["data"] == [] and b["pagination"]["total"] == 0, (params, b)
    for e in ex:
        assert_error(srv.get("/api/executions/%s" % e["id"], headers=H(stranger)), 404, "NOT_FOUND")
    # the admin sees them all
    assert hids(list_executions(srv, adm, workflowId=wa["id"])) == a_ids
    assert list_executions(srv, adm, workflowId=wb["id"])["pagination"]["total"] == 2
    assert list_executions(srv, adm, limit=100)["pagination"]["total"] >= 5


# ---------------------------------------------------------------- delete

def test_delete_execution_admin_only(srv, cast, adm):
    people, headers = cast
    w = shared_wf(srv, cast, [transform("t", 1)])
    e = run(srv, people["owner"], w["id"])
    expected = row(204, 403, 403, 403, 403, 403, 403, 403)
    wrong = []
    for who in [p for p in PRINCIPALS if p != "admin"]:
        check_cell(delete(srv, "/api/executions/%s" % e["id"], headers=headers[who]), expected[who], who, wrong)
        # the role is checked before the lookup
        check_cell(delete(srv, "/api/executions/%s" % UNKNOWN_ID, headers=headers[who]), expected[who], who, wrong)
    assert not wrong, "\n  ".join(wrong)
    assert get_execution(srv, people["owner"], e["id"]) == e
    r = delete(srv, "/api/executions/%s" % e["id"], headers=H(adm))
    assert r.status_code == 204, r.text
    assert r.content == b""
    assert_security_headers(r)
    for acct in (adm, people["owner"]):
        assert_error(srv.get("/api/executions/%s" % e["id"], headers=H(acct)), 404, "NOT_FOUND")
        assert e["id"] not in hids(list_executions(srv, acct, workflowId=w["id"]))
    assert_error(delete(srv, "/api/executions/%s" % e["id"], headers=H(adm)), 404, "NOT_FOUND")
    assert_error(srv.post("/api/executions/%s/cancel" % e["id"], headers=H(adm)), 404, "NOT_FOUND")


def test_deleted_workflow_keeps_its_executions(srv, cast, adm):
    people, _ = cast
    owner = people["owner"]
    w = create_workflow(srv, owner, [transform("t", {"kept": True})])
    e = run(srv, owner, w["id"])
    assert e["status"] == "succeeded"
    assert delete(srv, "/api/workflows/%s" % w["id"], headers=H(adm)).status_code == 204
    assert get_execution(srv, adm, e["id"]) == e
    assert hids(list_executions(srv, adm, workflowId=w["id"])) == [e["id"]]
