"""What each node type does when an execution runs, against the fake upstreams of
fakes.py: templates, transform, condition branching and skips, delay, http (methods,
headers, bodies, statuses, timeouts, size cap, redirects, blocked addresses),
llm (request sent, output, tokens and cost, provider failures), retries with
backoff, parallel branches, what a failure leaves behind, memoryBytes."""
import time
import uuid

import pytest

from conftest import free_port, shared_server
from authutil import admin_login, bearer, register
from fakes import (LLM_KEY, ZERO_USAGE, assert_node_error, chain, check_execution, condition, cost_of,
                   create_workflow, delay_node, edge, engine_env, http_node, llm_node, ms_between, node_ids,
                   node_of, poll, retry, run, run_nodes, start, statuses, transform)
from fakes import fake_http, fake_llm, pricing_file  # noqa: F401 (fixtures used by name)


@pytest.fixture(scope="module")
def srv(tmp_path_factory, fake_http, fake_llm, pricing_file):
    yield from shared_server(tmp_path_factory, "engine-nodes", **engine_env(fake_llm, pricing_file))


@pytest.fixture(scope="module")
def user(srv):
    return register(srv, name="Engine user")


@pytest.fixture
def llm(fake_llm):
    fake_llm.reset()
    yield fake_llm
    fake_llm.reset()


def key():
    return uuid.uuid4().hex[:12]


# ---------------------------------------------------------------- templates and transform

TEMPLATE_INPUT = {"n": 5, "f": 2.5, "s": "str", "flag": True, "nul": None, "obj": {"a": [1, 2], "b": "x"},
                  "items": [{"name": "first"}, {"name": "second"}], "zero": 0, "empty": ""}


def test_transform_templates(srv, user):
    out = {
        "n": "{{input.n}}", "f": "{{input.f}}", "s": "{{input.s}}", "flag": "{{input.flag}}",
        "nul": "{{input.nul}}", "obj": "{{input.obj}}", "items": "{{input.items}}",
        "spaced": "{{ input.s }}", "tabbed": "{{\tinput.n\t}}",
        "idx": "{{input.items.1.name}}", "idx0": "{{input.items.0}}", "idx_past_end": "{{input.items.5.name}}",
        "missing": "{{input.nope}}", "missing_deep": "{{input.nope.deeper.still}}", "below_string": "{{input.s.x}}",
        "text": "n={{input.n}} s={{input.s}} obj={{input.obj}} items={{input.items}} flag={{input.flag}} "
                "nul={{input.nul}} missing={{input.nope}} f={{input.f}}",
        "padded": " {{input.n}}", "two": "{{input.s}}{{input.s}}", "whole_input": "{{input}}",
        "nested": {"deep": ["{{input.obj.b}}", {"k": "{{input.zero}}"}], "lit": [1, True, None, "plain"]},
        "closing only": "a }} b", "empty": "{{input.empty}}",
    }
    w, e = run_nodes(srv, user, [transform("t", out)], input=TEMPLATE_INPUT)
    assert e["status"] == "succeeded", e
    o = e["output"]["t"]
    assert o["n"] == 5 and isinstance(o["n"], int)
    assert o["f"] == 2.5
    assert o["s"] == "str" and o["flag"] is True and o["nul"] is None
    assert o["obj"] == {"a": [1, 2], "b": "x"} and o["items"] == TEMPLATE_INPUT["items"]
    assert o["spaced"] == "str" and o["tabbed"] == 5
    assert o["idx"] == "second" and o["idx0"] == {"name": "first"} and o["idx_past_end"] is None
    assert o["missing"] is None and o["missing_deep"] is None and o["below_string"] is None
    assert o["text"] == ('n=5 s=str obj={"a":[1,2],"b":"x"} items=[{"name":"first"},{"name":"second"}] '
                         'flag=true nul=null missing=null f=2.5')
    assert o["padded"] == " 5" and o["two"] == "strstr"
    assert o["whole_input"] == TEMPLATE_INPUT
    assert o["nested"] == {"deep": ["x", {"k": 0}], "lit": [1, True, None, "plain"]}
    assert o["closing only"] == "a }} b"
    assert o["empty"] == ""
    n = node_of(e, "t")
    assert n["type"] == "transform" and n["status"] == "succeeded" and n["attempts"] == 1
    assert n["output"] == o and n["model"] is None and n["error"] is None
    assert n["usage"] == ZERO_USAGE and n["costUsd"] == 0


def test_transform_non_string_output_and_scalar(srv, user):
    _, e = run_nodes(srv, user, [transform("num", 42), transform("arr", [1, "{{input.s}}"]),
                                 transform("lit", "just text"), transform("nul", None)], input={"s": "v"})
    assert e["output"] == {"num": 42, "arr": [1, "v"], "lit": "just text", "nul": None}, e["output"]


def test_chain_passes_outputs_and_output_holds_only_sinks(srv, user):
    nodes = [transform("a", {"x": "{{input.x}}", "list": [10, 20, 30]}),
             transform("b", {"fromA": "{{nodes.a.output.x}}", "second": "{{nodes.a.output.list.1}}",
                             "all": "{{nodes.a.output}}"}),
             transform("c", "c saw {{nodes.b.output.fromA}} and {{nodes.a.output.list}}"),
             transform("d", {"missing": "{{nodes.a.output.nope}}"})]
    edges = chain("a", "b", "c") + [edge("a", "d")]
    _, e = run_nodes(srv, user, nodes, edges, input={"x": "hello"})
    assert e["status"] == "succeeded", e
    assert e["output"] == {"c": "c saw hello and [10,20,30]", "d": {"missing": None}}, e["output"]
    b = node_of(e, "b")["output"]
    assert b == {"fromA": "hello", "second": 20, "all": {"x": "hello", "list": [10, 20, 30]}}
    ids = node_ids(e)
    assert set(ids) == {"a", "b", "c", "d"}
    # listed in the order they started: a first, c after b
    assert ids[0] == "a" and ids.index("b") < ids.index("c")


# ---------------------------------------------------------------- condition

COND_CASES = [
    # (left, op, right, expected)
    (5, "eq", 5, True), (5, "eq", 6, False), ("{{input.n}}", "eq", 5, True), ("{{input.s}}", "eq", "str", True),
    ("{{input.s}}", "eq", "STR", False), (5, "ne", 6, True), ("{{input.n}}", "ne", 5, False),
    ("{{input.n}}", "gt", 3, True), ("{{input.n}}", "gt", 5, False), (5, "gte", 5, True), (4, "gte", 5, False),
    ("{{input.n}}", "lt", 10, True), (10, "lt", 10, False), (10, "lte", 10, True), (11, "lte", 10, False),
    (2.5, "gt", 2, True), ("{{input.s}}", "contains", "tr", True), ("{{input.s}}", "contains", "xyz", False),
    ("hello world", "contains", "o w", True),
    ("{{input.n}}", "exists", None, True), ("{{input.zero}}", "exists", None, True),
    ("{{input.s}}", "exists", None, True), ("{{input.nope}}", "exists", None, False),
    ("{{input.obj.deep.nope}}", "exists", None, False), (True, "eq", True, True),
    ("{{input.flag}}", "eq", False, True),
]


def test_condition_operators(srv, user):
    nodes = [condition("c%d" % i, left, op, right) for i, (left, op, right, _) in enumerate(COND_CASES)]
    _, e = run_nodes(srv, user, nodes, input={"n": 5, "s": "str", "zero": 0, "flag": False, "obj": {"a": 1}})
    assert e["status"] == "succeeded", e
    wrong = []
    for i, (left, op, right, want) in enumerate(COND_CASES):
        got = e["output"].get("c%d" % i)
        if got != {"result": want}:
            wrong.append("%r %s %r: expected %r, got %r" % (left, op, right, want, got))
    assert not wrong, "\n".join(wrong)
    for n in e["nodes"]:
        assert n["type"] == "condition" and n["status"] == "succeeded" and n["output"] in ({"result": True},
                                                                                           {"result": False})


def branch_def():
    """c checks input.v > 3: true -> t -> join, false -> f -> join, f -> g (only below f)."""
    nodes = [transform("start", {"v": "{{input.v}}"}),
             condition("c", "{{nodes.start.output.v}}", "gt", 3),
             transform("t", {"branch": "true", "v": "{{nodes.start.output.v}}"}),
             transform("f", {"branch": "false"}),
             transform("g", {"fromF": "{{nodes.f.output.branch}}"}),
             transform("join", {"t": "{{nodes.t.output}}", "f": "{{nodes.f.output}}",
                                "text": "t={{nodes.t.output.branch}} f={{nodes.f.output.branch}}"})]
    edges = [edge("start", "c"), edge("c", "t", True), edge("c", "f", False), edge("t", "join"), edge("f", "join"),
             edge("f", "g")]
    return nodes, edges


def test_condition_true_branch(srv, user):
    nodes, edges = branch_def()
    w = create_workflow(srv, user, nodes, edges)
    e = check_execution(run(srv, user, w["id"], input={"v": 5}))
    assert e["status"] == "succeeded", e
    st = statuses(e)
    assert st == {"start": "succeeded", "c": "succeeded", "t": "succeeded", "f": "skipped", "g": "skipped",
                  "join": "succeeded"}, st
    assert node_of(e, "c")["output"] == {"result": True}
    # the join ran; the skipped node's output renders null; a skipped sink maps to null
    assert e["output"] == {"join": {"t": {"branch": "true", "v": 5}, "f": None, "text": "t=true f=null"},
                           "g": None}, e["output"]
    for nid in ("f", "g"):
        n = node_of(e, nid)
        assert n["output"] is None and n["error"] is None and n["attempts"] == 0, n
    ids = node_ids(e)
    assert ids.index("start") < ids.index("c") < ids.index("t") < ids.index("join")
    assert ids.index("c") < ids.index("f")


def test_condition_false_branch(srv, user):
    nodes, edges = branch_def()
    w = create_workflow(srv, user, nodes, edges)
    e = check_execution(run(srv, user, w["id"], input={"v": 1}))
    assert e["status"] == "succeeded", e
    assert statuses(e) == {"start": "succeeded", "c": "succeeded", "t": "skipped", "f": "succeeded",
                           "g": "succeeded", "join": "succeeded"}, statuses(e)
    assert node_of(e, "c")["output"] == {"result": False}
    assert e["output"] == {"join": {"t": None, "f": {"branch": "false"}, "text": "t=null f=false"},
                           "g": {"fromF": "false"}}, e["output"]


def test_skips_propagate_down_a_chain(srv, user):
    nodes = [condition("c", "{{input.go}}", "eq", True), transform("x1", 1), transform("x2", 2),
             delay_node("x3", 10), transform("other", "ran")]
    edges = [edge("c", "x1", True), edge("x1", "x2"), edge("x2", "x3"), edge("c", "other", False)]
    _, e = run_nodes(srv, user, nodes, edges, input={"go": False})
    assert e["status"] == "succeeded", e
    assert statuses(e) == {"c": "succeeded", "x1": "skipped", "x2": "skipped", "x3": "skipped",
                           "other": "succeeded"}, statuses(e)
    assert e["output"] == {"x3": None, "other": "ran"}


# ---------------------------------------------------------------- delay

def test_delay_node(srv, user):
    _, e = run_nodes(srv, user, [delay_node("d", 120), transform("t", "after")], chain("d", "t"))
    assert e["status"] == "succeeded", e
    d = node_of(e, "d")
    assert d["type"] == "delay" and d["output"] == {"delayedMs": 120}
    assert d["durationMs"] >= 110, d
    assert ms_between(d["startedAt"], d["finishedAt"]) >= 110, d
    assert ms_between(d["finishedAt"], node_of(e, "t")["startedAt"]) >= 0
    assert e["durationMs"] >= 110
    _, e0 = run_nodes(srv, user, [delay_node("z", 0)])
    assert e0["output"] == {"z": {"delayedMs": 0}}


def test_delay_ms_from_a_template(srv, user):
    # Templates apply to every string of a config: a delay's ms may come from
    # one placeholder, and what it renders to is checked when the node runs.
    body = {"name": "templated delay", "status": "active",
            "definition": {"nodes": [delay_node("d", "{{input.ms}}")], "edges": []}}
    r = srv.post("/api/workflows", json=body, headers=bearer(user["accessToken"]))
    assert r.status_code == 201, r.text
    wid = r.json()["id"]
    e = check_execution(run(srv, user, wid, input={"ms": 20}))
    assert e["status"] == "succeeded" and e["output"] == {"d": {"delayedMs": 20}}, e
    e = check_execution(run(srv, user, wid, input={"ms": 0}))
    assert e["status"] == "succeeded" and e["output"] == {"d": {"delayedMs": 0}}, e
    for bad, shown in ((-5, "-5"), ("abc", '"abc"'), (1.5, "1.5"), (None, "null"),
                       ("20", '"20"'), (86400001, "86400001"), ({"ms": 1}, '{"ms":1}')):
        e = check_execution(run(srv, user, wid, input={"ms": bad}))
        n = assert_node_error(e, "d", "INVALID_CONFIG")
        msg = n["error"]["message"]
        assert "config.ms" in msg and "0 to 86400000" in msg and msg.endswith("got " + shown), msg
        assert n["output"] is None and n["attempts"] == 1, n
    e = check_execution(run(srv, user, wid, input={}))  # a missing path renders null
    assert_node_error(e, "d", "INVALID_CONFIG")


def test_delay_ms_template_refused_when_not_one_placeholder(srv, user):
    for ms in ("20", "{{input.ms}}0", " {{input.ms}}", "{{input.ms"):
        body = {"name": "templated delay", "definition": {"nodes": [delay_node("d", ms)], "edges": []}}
        r = srv.post("/api/workflows", json=body, headers=bearer(user["accessToken"]))
        assert r.status_code == 400, (ms, r.text)
        err = r.json()["error"]
        assert err["code"] == "VALIDATION_ERROR", err
        assert [d["field"] for d in err["details"]] == ["definition.nodes[0].config.ms"], err


# ---------------------------------------------------------------- http

def test_http_get_json(srv, user, fake_http):
    k = key()
    _, e = run_nodes(srv, user, [http_node("h", fake_http.url + "/json?k=" + k + "&q={{input.q}}")],
                     input={"q": "abc"})
    assert e["status"] == "succeeded", e
    out = e["output"]["h"]
    assert set(out) == {"status", "headers", "body"}, out
    assert out["status"] == 200
    assert isinstance(out["headers"], dict) and all(h == h.lower() for h in out["headers"]), out["headers"]
    assert out["headers"].get("content-type", "").startswith("application/json"), out["headers"]
    assert out["body"]["ok"] is True and out["body"]["method"] == "GET", out["body"]
    assert out["body"]["query"] == {"k": k, "q": "abc"}
    got = [r for r in fake_http.requests(path="/json") if r.query.get("k") == [k]]
    assert len(got) == 1 and got[0].method == "GET" and got[0].body == b"", got
    n = node_of(e, "h")
    assert n["type"] == "http" and n["attempts"] == 1 and n["output"] == out and n["model"] is None


def test_http_post_renders_url_headers_and_json_body(srv, user, fake_http):
    k = key()
    node = http_node("h", fake_http.url + "/json?k=" + k, method="POST",
                     headers={"X-Trace": "trace-{{input.trace}}", "X-Num": "n={{input.n}}"},
                     body={"k": "{{input.k}}", "n": "{{input.n}}", "obj": "{{input.obj}}", "lit": [1, None],
                           "text": "n is {{input.n}}"})
    _, e = run_nodes(srv, user, [transform("a", "x"), node], [edge("a", "h")],
                     input={"trace": "t1", "n": 7, "k": "v", "obj": {"z": 1}})
    assert e["status"] == "succeeded", e
    got = [r for r in fake_http.requests(path="/json") if r.query.get("k") == [k]]
    assert len(got) == 1, got
    r = got[0]
    assert r.method == "POST"
    assert r.headers.get("x-trace") == "trace-t1" and r.headers.get("x-num") == "n=7", r.headers
    assert r.headers.get("content-type", "").split(";")[0].strip() == "application/json", r.headers
    assert r.json == {"k": "v", "n": 7, "obj": {"z": 1}, "lit": [1, None], "text": "n is 7"}, r.body
    assert e["output"]["h"]["body"]["echo"] == r.json


def test_http_string_body_and_own_content_type(srv, user, fake_http):
    k = key()
    nodes = [http_node("raw", fake_http.url + "/json?k=%s&n=raw" % k, method="PUT",
                       headers={"Content-Type": "text/plain"}, body="raw {{input.s}} text"),
             http_node("custom", fake_http.url + "/json?k=%s&n=custom" % k, method="PATCH",
                       headers={"content-type": "application/vnd.test+json"}, body={"a": "{{input.s}}"}),
             http_node("del", fake_http.url + "/json?k=%s&n=del" % k, method="DELETE")]
    _, e = run_nodes(srv, user, nodes, input={"s": "S"})
    assert e["status"] == "succeeded", e
    reqs = {r.query["n"][0]: r for r in fake_http.requests(path="/json") if r.query.get("k") == [k]}
    assert set(reqs) == {"raw", "custom", "del"}, reqs
    assert reqs["raw"].method == "PUT" and reqs["raw"].body == b"raw S text"
    assert reqs["raw"].headers["content-type"] == "text/plain"
    assert reqs["custom"].method == "PATCH" and reqs["custom"].json == {"a": "S"}
    assert reqs["custom"].headers["content-type"] == "application/vnd.test+json", reqs["custom"].headers
    assert reqs["del"].method == "DELETE"
    assert e["output"]["raw"]["body"]["echo"] == "raw S text"


def test_http_text_and_bad_json_bodies_stay_text(srv, user, fake_http):
    _, e = run_nodes(srv, user, [http_node("text", fake_http.url + "/text"),
                                 http_node("bad", fake_http.url + "/badjson")])
    assert e["status"] == "succeeded", e
    assert e["output"]["text"]["status"] == 200 and e["output"]["text"]["body"] == "hello"
    assert e["output"]["text"]["headers"]["content-type"].startswith("text/plain")
    assert e["output"]["bad"]["status"] == 200 and e["output"]["bad"]["body"] == '{"ok": tru'


def test_http_response_headers_that_are_not_utf8(srv, user, fake_http):
    """docs/api.md: bytes of a response header (name or value) that are not UTF-8 become
    U+FFFD, as in a body; the node never succeeds with a null output."""
    _, e = run_nodes(srv, user, [http_node("h", fake_http.url + "/badheaders"),
                                 transform("t", "{{nodes.h.output.headers}}")], chain("h", "t"))
    assert e["status"] == "succeeded", e
    n = node_of(e, "h")
    assert n["status"] == "succeeded" and n["output"] is not None, n
    hdrs = n["output"]["headers"]
    assert hdrs["x-bad"] == "a\ufffdb" and hdrs["x-latin"] == "caf\ufffd", hdrs
    assert hdrs["x-\ufffd"] == "name" and hdrs["x-good"] == "fine", hdrs
    assert n["output"]["body"] == {"ok": True} and n["output"]["status"] == 200, n
    assert e["output"]["t"] == hdrs


def test_http_status_400_fails_with_output_and_no_retry(srv, user, fake_http):
    k = key()
    url = fake_http.url + "/status/404?k=" + k
    _, e = run_nodes(srv, user, [http_node("h", url, retry=retry(3, 10)), transform("after", 1)],
                     chain("h", "after"))
    check_execution(e)
    n = assert_node_error(e, "h", "HTTP_STATUS")
    assert n["output"]["status"] == 404 and n["output"]["body"] == {"status": 404}, n
    assert n["attempts"] == 1, n
    assert len([r for r in fake_http.requests(path="/status/404") if r.query.get("k") == [k]]) == 1
    assert node_of(e, "after")["status"] == "skipped"  # never reached
    assert e["output"] is None


def test_http_redirect_is_not_followed(srv, user, fake_http):
    before = len(fake_http.requests(path="/json"))
    _, e = run_nodes(srv, user, [http_node("h", fake_http.url + "/redirect")])
    assert e["status"] == "succeeded", e
    out = e["output"]["h"]
    assert out["status"] == 302 and out["headers"].get("location") == "/json", out
    time.sleep(0.1)
    assert len(fake_http.requests(path="/json")) == before


def test_http_timeout_from_config_and_from_node(srv, user, fake_http):
    t0 = time.monotonic()
    _, e = run_nodes(srv, user, [http_node("h", fake_http.url + "/delay/3000", timeoutMs=200)])
    n = assert_node_error(e, "h", "TIMEOUT")
    assert n["attempts"] == 1 and n["durationMs"] < 1500, n
    _, e = run_nodes(srv, user, [http_node("h", fake_http.url + "/delay/3000", timeout_ms=200)])
    n = assert_node_error(e, "h", "TIMEOUT")
    assert n["durationMs"] < 1500, n
    assert time.monotonic() - t0 < 5


def test_http_response_too_large(srv, user, fake_http):
    _, e = run_nodes(srv, user, [http_node("h", fake_http.url + "/big/2000000", retry=retry(3, 10))])
    n = assert_node_error(e, "h", "RESPONSE_TOO_LARGE")
    assert n["attempts"] == 1, n
    _, e = run_nodes(srv, user, [http_node("h", fake_http.url + "/big/1048577")])
    assert_node_error(e, "h", "RESPONSE_TOO_LARGE")
    _, e = run_nodes(srv, user, [http_node("h", fake_http.url + "/big/5000")])
    assert e["status"] == "succeeded" and e["output"]["h"]["body"] == "a" * 5000, e["status"]
    _, e = run_nodes(srv, user, [http_node("h", fake_http.url + "/big/600000")])
    assert e["status"] == "succeeded" and e["output"]["h"]["status"] == 200


def test_http_connection_refused_is_retried(srv, user):
    port = free_port()
    _, e = run_nodes(srv, user, [http_node("h", "http://127.0.0.1:%d/x" % port, retry=retry(2, 50))])
    n = assert_node_error(e, "h", "HTTP_ERROR")
    assert n["attempts"] == 2, n
    assert n["output"] is None


def test_http_invalid_config_after_rendering(srv, user, fake_http):
    k = key()
    _, e = run_nodes(srv, user, [http_node("h", "{{input.url}}", retry=retry(3, 10))],
                     input={"url": "ftp://127.0.0.1/x"})
    n = assert_node_error(e, "h", "INVALID_CONFIG")
    assert n["attempts"] == 1, n
    _, e = run_nodes(srv, user, [http_node("h", "{{input.url}}")], input={})
    assert_node_error(e, "h", "INVALID_CONFIG")
    _, e = run_nodes(srv, user, [http_node("h", fake_http.url + "/json?k=" + k, headers={"X-A": "{{input.h}}"})],
                     input={"h": "ok\r\nX-Injected: 1"})
    assert_node_error(e, "h", "INVALID_CONFIG")
    time.sleep(0.1)
    assert [r for r in fake_http.requests(path="/json") if r.query.get("k") == [k]] == []


def test_http_retry_with_backoff_until_success(srv, user, fake_http):
    k = key()
    _, e = run_nodes(srv, user, [http_node("h", fake_http.url + "/flaky/%s/2" % k, retry=retry(3, 100))])
    assert e["status"] == "succeeded", e
    n = node_of(e, "h")
    assert n["attempts"] == 3 and n["output"]["body"] == {"calls": 3}, n
    calls = fake_http.requests(path="/flaky/%s/2" % k)
    assert len(calls) == 3
    # backoffMs * 2^(attempt-1): about 100 ms, then about 200 ms
    assert calls[1].t - calls[0].t >= 0.09, [c.t for c in calls]
    assert calls[2].t - calls[1].t >= 0.19, [c.t for c in calls]
    assert n["durationMs"] >= 290, n


def test_http_retries_exhausted(srv, user, fake_http):
    k = key()
    _, e = run_nodes(srv, user, [http_node("h", fake_http.url + "/flaky/%s/5" % k, retry=retry(2, 10))])
    n = assert_node_error(e, "h", "HTTP_STATUS")
    assert n["attempts"] == 2 and n["output"]["status"] == 503, n
    assert fake_http.flaky_calls(k) == 2


@pytest.mark.parametrize("code,retried", [(429, True), (500, True), (503, True), (400, False), (401, False),
                                          (403, False), (422, False)])
def test_http_which_statuses_are_retried(srv, user, fake_http, code, retried):
    k = key()
    _, e = run_nodes(srv, user, [http_node("h", fake_http.url + "/status/%d?k=%s" % (code, k), retry=retry(2, 10))])
    n = assert_node_error(e, "h", "HTTP_STATUS")
    want = 2 if retried else 1
    assert n["attempts"] == want, n
    assert len([r for r in fake_http.requests(path="/status/%d" % code) if r.query.get("k") == [k]]) == want


def test_http_default_is_one_attempt(srv, user, fake_http):
    k = key()
    _, e = run_nodes(srv, user, [http_node("h", fake_http.url + "/flaky/%s/1" % k)])
    n = assert_node_error(e, "h", "HTTP_STATUS")
    assert n["attempts"] == 1 and fake_http.flaky_calls(k) == 1


def test_http_head_request(srv, user, fake_http):
    k = key()
    _, e = run_nodes(srv, user, [http_node("h", fake_http.url + "/json?k=" + k, method="HEAD")])
    assert e["status"] == "succeeded", e
    assert e["output"]["h"]["status"] == 200
    assert [r.method for r in fake_http.requests(path="/json") if r.query.get("k") == [k]] == ["HEAD"]


# ---------------------------------------------------------------- llm

def test_llm_request_output_tokens_and_cost(srv, user, llm):
    msgs = [{"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Summarize {{input.topic}} in {{input.n}} words: {{nodes.prep.output}}"}]
    nodes = [transform("prep", {"k": "v"}),
             llm_node("ask", "test-model", msgs, temperature=0.2, maxTokens=50)]
    _, e = run_nodes(srv, user, nodes, [edge("prep", "ask")], input={"topic": "cats", "n": 3})
    assert e["status"] == "succeeded", e
    calls = llm.calls()
    assert len(calls) == 1, calls
    c = calls[0]
    assert c.method == "POST" and c.path == "/v1/chat/completions"
    assert c.headers.get("authorization") == "Bearer " + LLM_KEY
    assert c.headers.get("content-type", "").split(";")[0].strip() == "application/json"
    assert c.json["model"] == "test-model"
    assert c.json["messages"] == [{"role": "system", "content": "You are terse."},
                                  {"role": "user", "content": 'Summarize cats in 3 words: {"k":"v"}'}]
    assert c.json["temperature"] == 0.2 and c.json["max_tokens"] == 50
    n = node_of(e, "ask")
    want_out = {"content": 'echo: Summarize cats in 3 words: {"k":"v"}', "model": "test-model",
                "finishReason": "stop", "usage": {"promptTokens": 10, "completionTokens": 5, "totalTokens": 15}}
    assert n["output"] == want_out, n
    assert e["output"] == {"ask": want_out}
    assert n["type"] == "llm" and n["model"] == "test-model" and n["attempts"] == 1
    assert n["usage"] == {"promptTokens": 10, "completionTokens": 5, "totalTokens": 15}
    assert n["costUsd"] == pytest.approx(20.0)
    assert e["usage"] == {"promptTokens": 10, "completionTokens": 5, "totalTokens": 15}
    assert e["costUsd"] == pytest.approx(20.0)


def test_llm_optional_fields_left_out(srv, user, llm):
    _, e = run_nodes(srv, user, [llm_node("ask", "test-model", "hi")])
    assert e["status"] == "succeeded", e
    body = llm.calls()[0].json
    assert "temperature" not in body and "max_tokens" not in body, body
    assert body["messages"] == [{"role": "user", "content": "hi"}]


def test_llm_usage_and_cost_are_summed(srv, user, llm):
    llm.script("test-model", content="A", prompt_tokens=100, completion_tokens=50, finish_reason="length")
    llm.script("cheap-model", content="B", prompt_tokens=10, completion_tokens=4)
    nodes = [llm_node("one", "test-model", "first"), llm_node("two", "{{input.model}}", "second"),
             llm_node("three", "unpriced-model", "third")]
    _, e = run_nodes(srv, user, nodes, input={"model": "cheap-model"})
    assert e["status"] == "succeeded", e
    one, two, three = (node_of(e, x) for x in ("one", "two", "three"))
    assert one["output"] == {"content": "A", "model": "test-model", "finishReason": "length",
                             "usage": {"promptTokens": 100, "completionTokens": 50, "totalTokens": 150}}
    assert one["costUsd"] == pytest.approx(cost_of("test-model", 100, 50)) == pytest.approx(200.0)
    assert two["model"] == "cheap-model" and two["output"]["content"] == "B"
    assert two["costUsd"] == pytest.approx(7.0)
    # a model without a price: tokens recorded, no cost
    assert three["model"] == "unpriced-model"
    assert three["usage"] == {"promptTokens": 10, "completionTokens": 5, "totalTokens": 15}
    assert three["costUsd"] == 0
    assert e["usage"] == {"promptTokens": 120, "completionTokens": 59, "totalTokens": 179}
    assert e["costUsd"] == pytest.approx(207.0)
    assert {c.json["model"] for c in llm.calls()} == {"test-model", "cheap-model", "unpriced-model"}


def test_llm_output_feeds_later_nodes(srv, user, llm):
    llm.script("test-model", content="forty-two")
    nodes = [llm_node("ask", "test-model", "q"),
             transform("t", {"answer": "{{nodes.ask.output.content}}", "tokens": "{{nodes.ask.output.usage.totalTokens}}"})]
    _, e = run_nodes(srv, user, nodes, [edge("ask", "t")])
    assert e["output"] == {"t": {"answer": "forty-two", "tokens": 15}}, e


def test_llm_without_usage(srv, user, llm):
    _, e = run_nodes(srv, user, [llm_node("ask", "no-usage", "x")])
    assert e["status"] == "succeeded", e
    n = node_of(e, "ask")
    assert n["output"]["content"] == "echo: x"
    assert n["usage"] == ZERO_USAGE and n["costUsd"] == 0
    assert e["usage"] == ZERO_USAGE and e["costUsd"] == 0


@pytest.mark.parametrize("model,code,attempts,status_text", [
    ("fail-500", "LLM_ERROR", 2, "500"),
    ("fail-429", "LLM_ERROR", 2, "429"),
    ("fail-400", "LLM_ERROR", 1, "400"),
    ("malformed", "LLM_BAD_RESPONSE", 1, None),
    ("no-choices", "LLM_BAD_RESPONSE", 1, None),
])
def test_llm_provider_failures(srv, user, llm, model, code, attempts, status_text):
    _, e = run_nodes(srv, user, [llm_node("ask", model, "x", retry=retry(2, 10))])
    n = assert_node_error(e, "ask", code)
    assert n["attempts"] == attempts, n
    assert len(llm.calls(model)) == attempts
    if status_text:
        assert status_text in n["error"]["message"], n["error"]
    assert n["usage"] == ZERO_USAGE and n["costUsd"] == 0


def test_llm_flaky_provider_is_retried(srv, user, llm):
    _, e = run_nodes(srv, user, [llm_node("ask", "flaky-2", "x", retry=retry(3, 20))])
    assert e["status"] == "succeeded", e
    n = node_of(e, "ask")
    assert n["attempts"] == 3 and n["output"]["content"] == "echo: x", n
    assert len(llm.calls("flaky-2")) == 3
    assert n["usage"]["totalTokens"] == 15 and n["costUsd"] == 0   # no price for flaky-2


def test_llm_timeout(srv, user, llm):
    t0 = time.monotonic()
    _, e = run_nodes(srv, user, [llm_node("ask", "slow", "x", timeout_ms=300)])
    assert_node_error(e, "ask", "TIMEOUT")
    assert time.monotonic() - t0 < 1.9


def test_llm_wrong_key(srv, user, llm):
    llm.expected_key = "sk-some-other-key"
    _, e = run_nodes(srv, user, [llm_node("ask", "test-model", "x", retry=retry(3, 10))])
    n = assert_node_error(e, "ask", "LLM_ERROR")
    assert "401" in n["error"]["message"], n
    assert n["attempts"] == 1 and len(llm.calls()) == 1
    assert llm.calls()[0].headers["authorization"] == "Bearer " + LLM_KEY


# ---------------------------------------------------------------- parallelism, failures, memory

def test_independent_branches_run_in_parallel(srv, user, fake_http):
    nodes = [transform("start", 1), http_node("h1", fake_http.url + "/delay/1000?b=1"),
             http_node("h2", fake_http.url + "/delay/1000?b=2"),
             transform("join", ["{{nodes.h1.output.status}}", "{{nodes.h2.output.status}}"])]
    edges = [edge("start", "h1"), edge("start", "h2"), edge("h1", "join"), edge("h2", "join")]
    _, e = run_nodes(srv, user, nodes, edges)
    assert e["status"] == "succeeded", e
    assert e["output"] == {"join": [200, 200]}
    assert 1000 <= e["durationMs"] < 1800, e["durationMs"]
    h1, h2 = node_of(e, "h1"), node_of(e, "h2")
    assert abs(ms_between(h1["startedAt"], h2["startedAt"])) < 500, (h1, h2)


def test_failure_ends_the_execution_and_stops_the_rest(srv, user, fake_http):
    nodes = [transform("a", 1), http_node("bad", fake_http.url + "/status/500"), transform("below_bad", 2),
             delay_node("slow", 3000), transform("below_slow", 3)]
    edges = [edge("a", "bad"), edge("bad", "below_bad"), edge("a", "slow"), edge("slow", "below_slow")]
    _, e = run_nodes(srv, user, nodes, edges)
    check_execution(e)
    n = assert_node_error(e, "bad", "HTTP_STATUS")
    assert n["output"]["status"] == 500
    assert e["output"] is None
    assert e["durationMs"] < 2000, "the execution waited for the other branch: %r" % e["durationMs"]
    # the nodes never reached are listed as skipped
    assert node_of(e, "below_bad")["status"] == "skipped", node_ids(e)
    assert node_of(e, "below_slow")["status"] == "skipped", node_ids(e)
    slow = node_of(e, "slow")
    assert slow is not None and slow["status"] not in ("running", "pending", "succeeded"), slow


def test_memory_bytes_reflects_the_data_held(srv, user):
    big = "x" * 200000
    _, small_e = run_nodes(srv, user, [transform("t", {"v": "{{input.v}}"})], input={"v": "tiny"})
    _, big_e = run_nodes(srv, user, [transform("t", {"v": "{{input.v}}"})], input={"v": big})
    assert small_e["memoryBytes"] > 0
    assert big_e["memoryBytes"] >= 200000, big_e["memoryBytes"]
    assert big_e["memoryBytes"] > small_e["memoryBytes"]


# ---------------------------------------------------------------- a server with default settings

@pytest.fixture(scope="module")
def strict_srv(tmp_path_factory):
    """HTTP_NODE_ALLOW_PRIVATE unset (false) and no LLM_* at all."""
    yield from shared_server(tmp_path_factory, "engine-strict", **engine_env(None, None, allow_private=False))


def test_private_addresses_are_blocked(strict_srv, fake_http):
    u = register(strict_srv)
    k = key()
    for url in (fake_http.url + "/json?k=" + k, "http://localhost:%d/json?k=%s" % (fake_http.port, k),
                "http://{{input.host}}:%d/json?k=%s" % (fake_http.port, k)):
        _, e = run_nodes(strict_srv, u, [http_node("h", url, retry=retry(3, 10))], input={"host": "127.0.0.1"})
        n = assert_node_error(e, "h", "ADDRESS_BLOCKED")
        assert n["attempts"] == 1, n
    time.sleep(0.1)
    assert [r for r in fake_http.requests() if r.query.get("k") == [k]] == [], "the fake was called"


def test_llm_not_configured(strict_srv, fake_llm):
    u = register(strict_srv)
    before = len(fake_llm.calls())
    _, e = run_nodes(strict_srv, u, [llm_node("ask", "test-model", "x", retry=retry(3, 10))])
    n = assert_node_error(e, "ask", "LLM_NOT_CONFIGURED")
    assert n["attempts"] == 1, n
    assert len(fake_llm.calls()) == before


def test_strict_server_still_runs_other_nodes(strict_srv):
    adm = admin_login(strict_srv)
    _, e = run_nodes(strict_srv, adm, [transform("a", {"x": "{{input.x}}"}), delay_node("d", 10)], [edge("a", "d")],
                     input={"x": 1})
    assert e["status"] == "succeeded" and e["output"] == {"d": {"delayedMs": 10}}, e


def test_cancel_keeps_what_the_nodes_spent(srv, user, llm):
    """A cancelled execution still reports the tokens and cost of the llm call that
    finished before the cancel, in the execution, the workflow's analytics and the
    cancelled counter of /metrics."""
    def cancelled_count():
        text = srv.get("/metrics").text
        line = [l for l in text.splitlines() if l.startswith('aop_executions_total{event="cancelled"}')]
        return int(line[0].split()[-1])

    before = cancelled_count()
    w = create_workflow(srv, user, [llm_node("ask", "test-model", [{"role": "user", "content": "hi"}]),
                                    delay_node("d", 10000)], [edge("ask", "d")])
    eid = start(srv, user, w["id"])
    poll(srv, user, eid, lambda e: (node_of(e, "d") or {}).get("status") == "running", 10, "d running")
    r = srv.post("/api/executions/%s/cancel" % eid, headers=bearer(user["accessToken"]))
    assert r.status_code == 200, r.text
    e = r.json()
    assert e["status"] == "cancelled"
    assert e["usage"] == {"promptTokens": 10, "completionTokens": 5, "totalTokens": 15}, e["usage"]
    assert e["costUsd"] == pytest.approx(20.0)
    assert e["memoryBytes"] > 0
    assert node_of(e, "d")["status"] == "cancelled"
    assert node_of(e, "ask")["error"] is None
    an = srv.get("/api/workflows/%s" % w["id"], headers=bearer(user["accessToken"])).json()["analytics"]
    assert an["executionCount"] == 1 and an["totalTokens"] == 15, an
    assert an["totalCostUsd"] == pytest.approx(20.0)
    assert cancelled_count() == before + 1

