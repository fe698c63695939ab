"""Token streaming: `config.stream: true` on llm nodes (docs/api.md, "Live execution
events"). Against the fake provider, which streams chunks and checks that it was
asked to (stream: true with stream_options.include_usage): llm.delta events in
order and coalesced, the stored output and usage equal to a run without streaming,
no deltas on replay, and a failed attempt's text never mixed into the next."""
import threading
import time

import pytest

from authutil import register
from fakes import H, create_workflow, engine_env, get_execution, llm_node, node_of, retry, start, wait_ended
from fakes import fake_http, fake_llm, pricing_file  # noqa: F401 (fixtures used by name)
from conftest import shared_server
from sseclient import SSE

EV = "/api/executions/%s/events"


@pytest.fixture(scope="module")
def srv(tmp_path_factory, fake_http, fake_llm, pricing_file):
    yield from shared_server(tmp_path_factory, "events-stream", **engine_env(fake_llm, pricing_file))


@pytest.fixture(scope="module")
def owner(srv):
    return register(srv, name="Streamer")


def watched(srv, owner, eid, gate):
    """Every event of execution eid: the stream is open and has seen node.started
    before gate lets the provider send its first chunk."""
    s = SSE(srv, EV % eid, H(owner))
    evs = s.until("node.started", timeout=20)
    time.sleep(0.5)  # a stream that replayed node.started from the store turns live right after
    gate.set()
    return evs + s.rest(timeout=20)


def test_deltas_in_order_and_the_same_stored_output(srv, owner, fake_llm):
    pieces = ["Once ", "upon ", "a ", "time, ", "\"quoted\" ", "caf\u00e9 ", "\u2603."]
    gate = threading.Event()
    fake_llm.script("gpt-4o-mini", chunks=pieces, chunk_delay=0.03, prompt_tokens=12,
                    completion_tokens=7, gate=gate)
    streamed = create_workflow(srv, owner, [llm_node("l", "gpt-4o-mini", "tell", stream=True)])
    eid = start(srv, owner, streamed["id"])
    evs = watched(srv, owner, eid, gate)
    deltas = [e for e in evs if e["event"] == "llm.delta"]
    assert deltas, [e["event"] for e in evs]
    text = "".join(d["data"]["text"] for d in deltas)
    assert text == "".join(pieces)
    for d in deltas:
        assert "id" not in d and "seq" not in d["data"], "deltas are live only"
        assert d["data"]["nodeId"] == "l" and d["data"]["attempt"] == 1
        assert d["data"]["executionId"] == eid
    # deltas come between the node's start and its finish
    kinds = [e["event"] for e in evs]
    first, last = kinds.index("llm.delta"), len(kinds) - 1 - kinds[::-1].index("llm.delta")
    assert kinds.index("node.started") < first and last < kinds.index("node.finished")
    # coalesced: no more than one per 50 ms (with a chunk every 30 ms)
    assert len(deltas) < len(pieces), len(deltas)
    # the request asked for a stream
    call = fake_llm.calls("gpt-4o-mini")[-1]
    assert call.json["stream"] is True and call.json["stream_options"] == {"include_usage": True}
    e = get_execution(srv, owner, eid)
    out = node_of(e, "l")
    # the same as without streaming
    fake_llm.script("gpt-4o-mini", content="".join(pieces), prompt_tokens=12, completion_tokens=7)
    plain = create_workflow(srv, owner, [llm_node("l", "gpt-4o-mini", "tell")])
    pid = start(srv, owner, plain["id"])
    pe = wait_ended(srv, owner, pid)
    assert "stream" not in fake_llm.calls("gpt-4o-mini")[-1].json
    pout = node_of(pe, "l")
    assert out["output"] == pout["output"]
    assert out["output"]["content"] == "".join(pieces)
    assert out["usage"] == pout["usage"] == {"promptTokens": 12, "completionTokens": 7, "totalTokens": 19}
    assert out["costUsd"] == pout["costUsd"] and e["usage"] == pe["usage"]
    fin = [x for x in evs if x["event"] == "node.finished"][0]["data"]
    assert fin["usage"] == out["usage"]
    # no deltas on replay
    replay = SSE(srv, EV % eid, H(owner)).rest()
    assert [x["event"] for x in replay if x["event"] == "llm.delta"] == []
    assert [x["raw"] for x in replay] == [x["raw"] for x in evs if x["event"] != "llm.delta"]
    fake_llm.reset()


def test_stream_without_usage_and_a_failed_attempt(srv, owner, fake_llm):
    fake_llm.script("no-usage", chunks=["a", "b"])
    w = create_workflow(srv, owner, [llm_node("l", "no-usage", "hi", stream=True)])
    eid = start(srv, owner, w["id"])
    e = wait_ended(srv, owner, eid)
    assert e["status"] == "succeeded" and node_of(e, "l")["output"]["content"] == "ab"
    assert node_of(e, "l")["usage"]["totalTokens"] == 0
    # an error status is not a stream: the node fails (and retries) as before
    gate = threading.Event()
    fake_llm.script("flaky-1", gate=gate)  # the second attempt streams once the test watches
    w = create_workflow(srv, owner, [llm_node("l", "flaky-1", "hi", stream=True, retry=retry(2))])
    eid = start(srv, owner, w["id"])
    evs = watched(srv, owner, eid, gate)
    assert [x["event"] for x in evs if x["event"].startswith("node.")] == [
        "node.started", "node.retrying", "node.started", "node.finished"]
    deltas = [x["data"] for x in evs if x["event"] == "llm.delta"]
    assert deltas and all(d["attempt"] == 2 for d in deltas)
    assert get_execution(srv, owner, eid)["status"] == "succeeded"
    fake_llm.reset()


def test_stream_must_be_a_boolean(srv, owner):
    r = srv.post("/api/workflows", headers=H(owner), json={
        "name": "bad-stream", "definition": {"nodes": [llm_node("l", "m", "hi", stream="yes")], "edges": []}})
    assert r.status_code == 400 and r.json()["error"]["code"] == "VALIDATION_ERROR"
    assert any("stream" in d["field"] for d in r.json()["error"]["details"]), r.json()


def test_a_streamed_answer_never_carries_the_api_key(srv, owner, fake_llm):
    """A provider that streams the server's LLM_API_KEY back: neither the live
    deltas nor the stored output hold it."""
    key = fake_llm.default_key
    gate = threading.Event()
    fake_llm.script("gpt-4o-mini", chunks=["the key is ", key, " ok"], gate=gate)
    w = create_workflow(srv, owner, [llm_node("l", "gpt-4o-mini", "leak", stream=True)])
    eid = start(srv, owner, w["id"])
    evs = watched(srv, owner, eid, gate)
    text = "".join(e["data"]["text"] for e in evs if e["event"] == "llm.delta")
    assert key not in text and "[REDACTED]" in text, text
    assert all(key not in e["raw"] for e in evs)
    e = get_execution(srv, owner, eid)
    assert node_of(e, "l")["output"]["content"] == "the key is [REDACTED] ok"
    fake_llm.reset()
