"""Webhooks (docs/api.md, "Triggers"; signing in docs/webhooks.md): the management
routes; every auth mode with exact signatures (HMAC-SHA256 over timestamp + "." + the
raw body, computed here); the replay window; rotation and its grace; Idempotency-Key,
also for concurrent repeats; sync and async answers; the input shape; inactive
workflows; and that a failed check starts nothing."""
import concurrent.futures
import hashlib
import hmac
import json
import time

import pytest

from conftest import assert_error, shared_server
from authutil import register
from fakes import (H, UNKNOWN_ID, chain, create_workflow, delay_node, engine_env, get_execution,
                   transform, wait_ended)


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    yield from shared_server(tmp_path_factory, "webhooks",
                             **engine_env(WEBHOOK_SECRET_GRACE_S="2", WAIT_MAX_MS="1000"))


@pytest.fixture(scope="module")
def alice(srv):
    return register(srv, name="Alice")


@pytest.fixture(scope="module")
def bob(srv):
    return register(srv, name="Bob")


@pytest.fixture(scope="module")
def wf(srv, alice):
    return create_workflow(srv, alice, [transform("t", {"got": "{{input.body.v}}"})])


def hook(srv, acct, wid, expect=201, **body):
    r = srv.post("/api/workflows/%s/webhooks" % wid, json=body, headers=H(acct))
    assert r.status_code == expect, r.text
    return r.json()


def sign(secret, ts, body):
    return "sha256=" + hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()


def call(srv, w, body=b'{"v": 1}', headers=None, ts=None, secret=None, params=None):
    h = {"Content-Type": "application/json"}
    if w["auth"] == "hmac" and ts is not False:
        ts = str(int(time.time())) if ts is None else ts
        h["X-AOP-Timestamp"] = ts
        h["X-AOP-Signature"] = sign(secret or w["secret"], ts, body)
    if w["auth"] == "token":
        h["Authorization"] = "Bearer " + (secret or w["secret"])
    h.update(headers or {})
    return srv.post("/hooks/%s" % w["id"], data=body, headers=h, params=params)


def hook_runs(srv, acct, hid):
    r = srv.get("/api/executions", headers=H(acct), params={"trigger": "webhook", "limit": 100})
    assert r.status_code == 200, r.text
    return [e for e in r.json()["data"] if e.get("triggerId") == hid]


def test_create_list_delete(srv, alice, bob, wf):
    w = hook(srv, alice, wf["id"], name="orders")
    assert w["auth"] == "hmac" and w["response"] == "async" and w["url"] == "/hooks/" + w["id"]
    assert len(w["secret"]) == 64 and w["lastCalledAt"] is None and w["createdBy"] == alice["user"]["id"]
    r = srv.get("/api/workflows/%s/webhooks" % wf["id"], headers=H(alice))
    listed = [x for x in r.json()["data"] if x["id"] == w["id"]]
    assert listed and "secret" not in listed[0]
    assert_error(srv.get("/api/workflows/%s/webhooks" % wf["id"], headers=H(bob)), 404, "NOT_FOUND")
    assert_error(srv.request("DELETE", "/api/webhooks/%s" % w["id"], headers=H(bob)), 404, "NOT_FOUND")
    r = srv.post("/api/workflows/%s/webhooks" % wf["id"], json={"auth": "basic"}, headers=H(alice))
    assert_error(r, 400, "VALIDATION_ERROR")
    assert srv.request("DELETE", "/api/webhooks/%s" % w["id"], headers=H(alice)).status_code == 204
    assert_error(call(srv, w), 404, "NOT_FOUND")
    assert_error(srv.post("/hooks/%s" % UNKNOWN_ID, data=b"{}"), 404, "NOT_FOUND")
    assert_error(srv.post("/hooks/not-an-id", data=b"{}"), 404, "NOT_FOUND")


def test_none_auth_and_the_input_shape(srv, alice, wf):
    w = hook(srv, alice, wf["id"], auth="none")
    r = call(srv, w, body=b'{"v": 5}', params=[("a", "1"), ("a", "2"), ("b", "x")],
             headers={"X-Custom": "yes", "Cookie": "c=1", "Authorization": "Bearer nope"})
    assert r.status_code == 202, r.text
    assert set(r.json()) == {"executionId", "status"}
    e = get_execution(srv, alice, r.json()["executionId"])
    assert e["trigger"] == "webhook" and e["triggerId"] == w["id"]
    assert e["triggeredBy"] == alice["user"]["id"]
    inp = e["input"]
    assert set(inp) == {"body", "headers", "query"} and inp["body"] == {"v": 5}
    assert inp["headers"]["x-custom"] == "yes" and inp["headers"]["content-type"] == "application/json"
    assert not {"authorization", "cookie", "x-aop-signature", "x-aop-timestamp"} & set(inp["headers"])
    assert inp["query"] == {"a": "1, 2", "b": "x"}
    r = call(srv, w, body=b"plain words", headers={"Content-Type": "text/plain"})
    assert r.status_code == 202, r.text
    assert get_execution(srv, alice, r.json()["executionId"])["input"]["body"] == "plain words"


def test_token_auth(srv, alice, wf):
    w = hook(srv, alice, wf["id"], auth="token")
    assert call(srv, w).status_code == 202
    assert_error(call(srv, w, secret="0" * 64), 401, "UNAUTHORIZED")
    assert_error(srv.post("/hooks/%s" % w["id"], data=b"{}"), 401, "UNAUTHORIZED")
    assert len(hook_runs(srv, alice, w["id"])) == 1


def test_hmac_exact_signature_and_window(srv, alice, wf):
    w = hook(srv, alice, wf["id"])
    body = b'{"v": "signed"}'
    ts = str(int(time.time()))
    ok = call(srv, w, body=body, ts=ts)
    assert ok.status_code == 202, ok.text
    bad = [
        call(srv, w, body=body, ts=str(int(time.time()) - 301)),       # too old
        call(srv, w, body=body, ts=str(int(time.time()) + 301)),       # too far ahead
        call(srv, w, body=body, ts=False),                             # no headers
        call(srv, w, body=body, secret="f" * 64),                      # another key
        srv.post("/hooks/%s" % w["id"], data=body + b" ",              # body changed
                 headers={"X-AOP-Timestamp": ts, "X-AOP-Signature": sign(w["secret"], ts, body)}),
        srv.post("/hooks/%s" % w["id"], data=body,                     # not sha256=<hex>
                 headers={"X-AOP-Timestamp": ts, "X-AOP-Signature": sign(w["secret"], ts, body)[7:]}),
    ]
    for r in bad:
        assert_error(r, 401, "UNAUTHORIZED")
    # the signature is over timestamp + "." + body, case of the hex aside
    upper = srv.post("/hooks/%s" % w["id"], data=body, headers={
        "X-AOP-Timestamp": ts, "X-AOP-Signature": "sha256=" + sign(w["secret"], ts, body)[7:].upper()})
    assert upper.status_code == 202, upper.text
    assert {e["id"] for e in hook_runs(srv, alice, w["id"])} == {ok.json()["executionId"],
                                                                  upper.json()["executionId"]}
    e = get_execution(srv, alice, ok.json()["executionId"])
    assert e["input"]["body"] == {"v": "signed"}


def test_rotation_keeps_the_old_secret_for_the_grace(srv, alice, wf):
    w = hook(srv, alice, wf["id"])
    old = w["secret"]
    r = srv.post("/api/webhooks/%s/rotate" % w["id"], headers=H(alice))
    assert r.status_code == 200, r.text
    new = r.json()["secret"]
    assert new != old and len(new) == 64
    assert call(srv, w, secret=new).status_code == 202
    assert call(srv, w, secret=old).status_code == 202  # within WEBHOOK_SECRET_GRACE_S=2
    time.sleep(2.2)
    assert_error(call(srv, w, secret=old), 401, "UNAUTHORIZED")
    assert call(srv, w, secret=new).status_code == 202


def test_idempotency_key(srv, alice, wf):
    w = hook(srv, alice, wf["id"], auth="none")
    first = call(srv, w, headers={"Idempotency-Key": "order-1"})
    again = call(srv, w, headers={"Idempotency-Key": "order-1"})
    assert first.status_code == again.status_code == 202
    assert first.json()["executionId"] == again.json()["executionId"]
    other = call(srv, w, headers={"Idempotency-Key": "order-2"})
    assert other.json()["executionId"] != first.json()["executionId"]
    assert_error(call(srv, w, headers={"Idempotency-Key": "k" * 256}), 400, "VALIDATION_ERROR")
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        rs = list(pool.map(lambda _: call(srv, w, headers={"Idempotency-Key": "burst"}), range(8)))
    assert {r.status_code for r in rs} == {202}
    assert len({r.json()["executionId"] for r in rs}) == 1
    assert len(hook_runs(srv, alice, w["id"])) == 3


def test_sync_answers_the_output_or_202_past_wait_max(srv, alice, wf):
    w = hook(srv, alice, wf["id"], auth="none", response="sync")
    r = call(srv, w, body=b'{"v": 9}')
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "succeeded" and r.json()["output"] == {"t": {"got": 9}}
    slow = create_workflow(srv, alice, [transform("a", {}), delay_node("d", 2500)], chain("a", "d"))
    ws = hook(srv, alice, slow["id"], auth="none", response="sync")
    r = call(srv, ws)
    assert r.status_code == 202 and r.json()["status"] in ("queued", "running"), r.text


def test_inactive_workflow_is_409(srv, alice):
    draft = create_workflow(srv, alice, [transform("t", {})], status="draft")
    w = hook(srv, alice, draft["id"], auth="none")
    assert_error(call(srv, w), 409, "WORKFLOW_INACTIVE")
    assert hook_runs(srv, alice, w["id"]) == []


def test_rate_limit_is_per_webhook(aop_server):
    s = aop_server(**engine_env(RATE_LIMIT_MAX="3"))
    alice = register(s, name="Alice")
    w = create_workflow(s, alice, [transform("t", {})])
    a = hook(s, alice, w["id"], auth="none")
    b = hook(s, alice, w["id"], auth="none")
    codes = [call(s, a).status_code for _ in range(4)]
    assert codes == [202, 202, 202, 429], codes
    assert call(s, b).status_code == 202


def test_quota_is_charged_to_the_creator(aop_server):
    s = aop_server(**engine_env(QUOTA_ACTIVE_EXECUTIONS="1"))
    alice = register(s, name="Alice")
    slow = create_workflow(s, alice, [transform("a", {}), delay_node("d", 3000)], chain("a", "d"))
    w = hook(s, alice, slow["id"], auth="none")
    assert call(s, w).status_code == 202
    r = call(s, w, headers={"Idempotency-Key": "q"})
    assert_error(r, 429, "QUOTA_EXCEEDED")
    assert r.headers.get("Retry-After")
    # the refused key was not kept: once there is room it starts
    assert_error(s.post("/api/workflows/%s/execute" % slow["id"], json={}, headers=H(alice)), 429,
                 "QUOTA_EXCEEDED")
    assert len(hook_runs(s, alice, w["id"])) == 1


def test_idempotency_key_at_its_bound(srv, alice, wf):
    w = hook(srv, alice, wf["id"], auth="none")
    key = "k" * 255
    a, b = call(srv, w, headers={"Idempotency-Key": key}), call(srv, w, headers={"Idempotency-Key": key})
    assert a.status_code == b.status_code == 202 and a.json()["executionId"] == b.json()["executionId"]


def test_a_workflow_holds_at_most_100_webhooks(srv, alice):
    w = create_workflow(srv, alice, [transform("t", {})])
    for _ in range(100):
        hook(srv, alice, w["id"], auth="none")
    r = srv.post("/api/workflows/%s/webhooks" % w["id"], json={}, headers=H(alice))
    assert_error(r, 400, "VALIDATION_ERROR")


def test_sync_answers_202_waiting_when_the_run_parks_at_an_approval(aop_server):
    """A sync call is not held for a human decision (WAIT_MAX_MS is its default 60 s here,
    the call's own timeout 10 s): 202 "waiting" once the execution parks, also on a
    repeat of its Idempotency-Key, and the run goes on after the decision."""
    s = aop_server(**engine_env())
    alice = register(s, name="Alice")
    wf = create_workflow(s, alice, [{"id": "a", "type": "approval", "config": {}}])
    w = hook(s, alice, wf["id"], auth="none", response="sync")
    answers = [s.post("/hooks/%s" % w["id"], data=b"{}", timeout=10,
                      headers={"Content-Type": "application/json", "Idempotency-Key": "k"})
               for _ in range(2)]
    assert [r.status_code for r in answers] == [202, 202], [r.text for r in answers]
    assert [r.json()["status"] for r in answers] == ["waiting", "waiting"]
    eid = answers[0].json()["executionId"]
    assert answers[1].json()["executionId"] == eid
    r = s.get("/api/executions", headers=H(alice), params={"trigger": "webhook", "status": "waiting"})
    assert r.status_code == 200 and [e["id"] for e in r.json()["data"]] == [eid], r.text
    r = s.post("/api/executions/%s/approvals/a" % eid, json={"decision": "approve"}, headers=H(alice))
    assert r.status_code == 200, r.text
    e = wait_ended(s, alice, eid)
    assert e["status"] == "succeeded" and e["trigger"] == "webhook" and e["triggerId"] == w["id"], e
