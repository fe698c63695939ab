"""Secrets the server sends upstream never come back into what it stores or logs.

API.md: "A provider's error text never contains a secret the server sent it: every
API key and credential value is replaced by [REDACTED] in stored errors, outputs and
logs." docs/api.md ("Secrets in answers") says how: raw and JSON-escaped spellings,
short secrets only where they stand alone.

The fake LLM echoes the Authorization header it receives (echo-* models, fakes.py):
in an error message, in a message cut at 300 bytes, in the answer's content as JSON
text and in the answer's model name.
"""
import json

import pytest

from conftest import db_dump, shared_server
from authutil import bearer, register
from fakes import FakeLLM, engine_env, llm_node, node_of, run_nodes, write_pricing

MARK = "[REDACTED]"
KEY = "sk-live-7Rq2mZ9xW4vB8nK1pL6t"
# A key with characters JSON encoders escape: quote, backslash, slash, < > &.
ODD_KEY = 'sk-"odd\\key/<&>-0123456789'


def spellings(secret):
    """The secret as it can appear in stored text: raw, and JSON-escaped as the
    database and the API write it (with and without ensure_ascii)."""
    out = {secret, json.dumps(secret)[1:-1], json.dumps(secret).replace("/", "\\/")[1:-1]}
    out.add(json.dumps(secret)[1:-1].replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))
    return out


def strings_in(v):
    if isinstance(v, str):
        yield v
    elif isinstance(v, dict):
        for k, x in v.items():
            yield k
            yield from strings_in(x)
    elif isinstance(v, list):
        for x in v:
            yield from strings_in(x)


def assert_nowhere(srv, secret, execution, response_text):
    """Not in the execution (every string, every key), not in the API's bytes, not in
    the database, not in the log."""
    for s in strings_in(execution):
        for form in spellings(secret):
            assert form not in s, "secret in the execution: %r" % s
    dump = db_dump(srv)
    logs = srv.stderr_text()
    for form in spellings(secret):
        assert form not in response_text, "secret in the API answer"
        assert form.encode("utf-8") not in dump, "secret in the database"
        assert form not in logs, "secret in the log"


def get_execution(srv, acct, eid):
    r = srv.get("/api/executions/%s" % eid, headers=bearer(acct["accessToken"]))
    assert r.status_code == 200, r.text
    return r.json(), r.text


@pytest.fixture(scope="module")
def pricing(tmp_path_factory):
    return write_pricing(tmp_path_factory.mktemp("pricing") / "pricing.json")


@pytest.fixture(scope="module")
def llm():
    f = FakeLLM(key=KEY).start()
    yield f
    f.stop()


@pytest.fixture(scope="module")
def srv(tmp_path_factory, llm, pricing):
    yield from shared_server(tmp_path_factory, "redaction", **engine_env(llm, pricing, LOG_LEVEL="debug"))


@pytest.fixture(scope="module")
def user(srv):
    return register(srv, name="Redaction user")


def test_provider_error_echoing_the_key(srv, user, llm):
    _, e = run_nodes(srv, user, [llm_node("ask", "echo-auth-401", "hi")])
    n = node_of(e, "ask")
    assert n["status"] == "failed" and n["error"]["code"] == "LLM_ERROR", n
    assert n["error"]["message"] == "the LLM provider answered 401: Incorrect API key provided: Bearer " + MARK, n
    assert e["error"]["message"] == n["error"]["message"], e["error"]
    assert len(llm.calls("echo-auth-401")) == 1
    assert llm.calls("echo-auth-401")[0].headers["authorization"] == "Bearer " + KEY   # it was sent
    full, text = get_execution(srv, user, e["id"])
    assert_nowhere(srv, KEY, full, text)
    # the log line about the failed call says what failed, without the key
    line = srv.wait_log(lambda l: l.get("msg") == "node call failed" and l.get("executionId") == e["id"])
    assert line and line["nodeId"] == "ask" and line["code"] == "LLM_ERROR", line
    assert line["error"] == n["error"]["message"], line


def test_a_cut_message_keeps_no_part_of_the_key(srv, user, llm):
    """The provider's message is cut at 300 bytes; the cut must not leave the key's
    first bytes behind."""
    _, e = run_nodes(srv, user, [llm_node("ask", "echo-auth-long", "hi")])
    n = node_of(e, "ask")
    assert n["error"]["code"] == "LLM_ERROR", n
    msg = n["error"]["message"]
    assert "Bearer " + MARK[:3] in msg, msg
    assert KEY[:6] not in msg, msg
    full, text = get_execution(srv, user, e["id"])
    assert_nowhere(srv, KEY, full, text)


def test_answer_echoing_the_request_headers(srv, user, llm):
    _, e = run_nodes(srv, user, [llm_node("ask", "echo-headers", "hi")])
    assert e["status"] == "succeeded", e
    n = node_of(e, "ask")
    echoed = json.loads(n["output"]["content"])
    assert echoed["authorization"] == "Bearer " + MARK, echoed
    assert echoed["content-type"].startswith("application/json"), echoed   # the rest is kept
    assert n["model"] == "m-Bearer " + MARK and n["output"]["model"] == n["model"], n
    full, text = get_execution(srv, user, e["id"])
    assert_nowhere(srv, KEY, full, text)
    # list items and stats carry the model too
    r = srv.get("/api/executions/workflow/%s/stats" % e["workflowId"], headers=bearer(user["accessToken"]))
    assert r.status_code == 200 and KEY not in r.text, r.text


def test_a_later_node_cannot_copy_the_key_out(srv, user, llm):
    """Redaction happens before any other node can read the output."""
    nodes = [llm_node("ask", "echo-headers", "hi"),
             {"id": "copy", "type": "transform", "config": {"output": "{{nodes.ask.output.content}}"}}]
    _, e = run_nodes(srv, user, nodes, [{"from": "ask", "to": "copy"}])
    assert e["status"] == "succeeded", e
    assert MARK in e["output"]["copy"] and KEY not in e["output"]["copy"], e["output"]
    full, text = get_execution(srv, user, e["id"])
    assert_nowhere(srv, KEY, full, text)


def test_keys_with_characters_json_escapes(aop_server, pricing):
    """A key with a quote, a backslash, a slash and < > &: the echo in the answer's
    content is JSON text, where the key stands escaped."""
    with FakeLLM(key=ODD_KEY) as odd:
        s = aop_server(**engine_env(odd, pricing, LOG_LEVEL="debug"))
        acct = register(s, name="Odd key user")
        _, ok = run_nodes(s, acct, [llm_node("ask", "echo-headers", "hi")])
        assert ok["status"] == "succeeded", ok
        echoed = json.loads(node_of(ok, "ask")["output"]["content"])
        assert echoed["authorization"] == "Bearer " + MARK, echoed
        _, bad = run_nodes(s, acct, [llm_node("ask", "echo-auth-401", "hi")])
        assert node_of(bad, "ask")["error"]["message"].endswith("Bearer " + MARK), bad
        for e in (ok, bad):
            full, text = get_execution(s, acct, e["id"])
            assert_nowhere(s, ODD_KEY, full, text)
