"""Live execution events over Server-Sent Events (docs/api.md, "Live execution
events"): GET /api/executions/:id/events (replay and resume by Last-Event-ID with
no duplicate or gap, live order, node.retrying, cancel, ping, the SSE_MAX_STREAMS
limit, access) and GET /api/events (lifecycle events of readable workflows,
filtered as they are sent). Token streaming (llm.delta) is in
test_events_stream.py; a stream following another instance's execution in
test_cluster.py."""
import time

import pytest

from authutil import admin_login, register
from fakes import (H, cancel, chain, create_workflow, delay_node, engine_env, get_execution, http_node,
                   retry, share, start, transform, wait_ended, wait_node)
from fakes import fake_http, fake_llm, pricing_file  # noqa: F401 (fixtures used by name)
from sseclient import SSE

EV = "/api/executions/%s/events"


@pytest.fixture(scope="module")
def srv(tmp_path_factory, fake_http, fake_llm, pricing_file):
    from conftest import shared_server
    yield from shared_server(tmp_path_factory, "events",
                             **engine_env(fake_llm, pricing_file, SSE_PING_MS="300", SSE_MAX_STREAMS="3"))


@pytest.fixture(scope="module")
def owner(srv):
    return register(srv, name="Owner")


def stream(srv, acct, eid, **kw):
    return SSE(srv, EV % eid, H(acct), **kw)


def check_sequence(evs, eid):
    """Durable events: seq 1, 2, 3… matching id:, each about eid, one line of JSON."""
    seqs = [e["data"]["seq"] for e in evs]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs
    for e in evs:
        assert e["id"] == str(e["data"]["seq"]), e
        assert e["data"]["executionId"] == eid
        assert "ts" in e["data"]


def test_a_run_streams_every_event_in_order_then_ends(srv, owner):
    w = create_workflow(srv, owner, [transform("a", {"x": 1}), delay_node("b", 300), transform("c", "{{nodes.a.output.x}}")],
                        chain("a", "b", "c"))
    eid = start(srv, owner, w["id"])
    s = stream(srv, owner, eid)
    assert s.status == 200 and s.headers["content-type"].startswith("text/event-stream")
    assert s.headers.get("cache-control") == "no-store"
    evs = s.rest()
    assert s.ended
    check_sequence(evs, eid)
    assert evs[0]["data"]["seq"] == 1
    types = [(e["event"], e["data"].get("nodeId")) for e in evs]
    assert types == [("execution.queued", None), ("execution.started", None),
                     ("node.started", "a"), ("node.finished", "a"),
                     ("node.started", "b"), ("node.finished", "b"),
                     ("node.started", "c"), ("node.finished", "c"),
                     ("execution.finished", None)], types
    assert evs[0]["data"]["status"] == "queued" and evs[1]["data"]["status"] == "running"
    assert evs[2]["data"] == dict(evs[2]["data"], type="transform", attempt=1)
    e = get_execution(srv, owner, eid)
    fin = evs[-1]["data"]
    assert fin["status"] == "succeeded" == e["status"]
    assert fin["durationMs"] == e["durationMs"] and fin["usage"] == e["usage"] and fin["error"] is None
    assert fin["workflowId"] == w["id"]
    b = [x["data"] for x in evs if x["event"] == "node.finished" and x["data"]["nodeId"] == "b"][0]
    nb = [n for n in e["nodes"] if n["nodeId"] == "b"][0]
    assert b["status"] == "succeeded" and b["durationMs"] == nb["durationMs"] >= 300
    assert "output" not in b, "event rows never repeat outputs"


def test_replay_and_resume_have_no_duplicates_or_gaps(srv, owner):
    w = create_workflow(srv, owner, [transform("a", 1), delay_node("b", 50), transform("c", 2)], chain("a", "b", "c"))
    eid = start(srv, owner, w["id"])
    wait_ended(srv, owner, eid)
    full = stream(srv, owner, eid).rest()
    check_sequence(full, eid)
    assert full[0]["data"]["seq"] == 1 and full[-1]["event"] == "execution.finished"
    for n in (0, 1, 4, len(full) - 1):
        # the header, as a reconnecting EventSource sends it
        part = SSE(srv, EV % eid, dict(H(owner), **{"Last-Event-ID": str(n)})).rest()
        assert [p["raw"] for p in part] == [f["raw"] for f in full[n:]], n
        # the query form
        part = SSE(srv, EV % eid + "?lastEventId=%d" % n, H(owner)).rest()
        assert [p["raw"] for p in part] == [f["raw"] for f in full[n:]], n
    # past the end of a finished execution: nothing, and the stream closes
    assert SSE(srv, EV % eid, dict(H(owner), **{"Last-Event-ID": str(len(full))})).rest() == []


def test_resume_mid_run_continues_live_without_gaps(srv, owner):
    w = create_workflow(srv, owner, [delay_node("d%d" % i, 150) for i in range(4)],
                        chain("d0", "d1", "d2", "d3"))
    eid = start(srv, owner, w["id"])
    s = stream(srv, owner, eid)
    first = [s.next() for _ in range(4)]
    s.close()
    last = first[-1]["data"]["seq"]
    rest = SSE(srv, EV % eid, dict(H(owner), **{"Last-Event-ID": str(last)})).rest()
    evs = first + rest
    check_sequence(evs, eid)
    assert evs[-1]["event"] == "execution.finished"
    assert sum(e["event"] == "node.finished" for e in evs) == 4


def test_replayed_events_equal_the_live_ones(srv, owner):
    w = create_workflow(srv, owner, [delay_node("a", 100), transform("b", 1)], chain("a", "b"))
    eid = start(srv, owner, w["id"])
    live = stream(srv, owner, eid).rest()
    replay = stream(srv, owner, eid).rest()
    assert [e["raw"] for e in live] == [e["raw"] for e in replay]


def test_node_retrying(srv, owner, fake_http):
    key = "events-flaky-%d" % time.time_ns()
    w = create_workflow(srv, owner, [http_node("h", fake_http.url + "/flaky/%s/2" % key, retry=retry(3, 50))])
    eid = start(srv, owner, w["id"])
    evs = stream(srv, owner, eid).rest()
    check_sequence(evs, eid)
    got = [(e["event"], e["data"].get("attempt")) for e in evs if e["event"].startswith("node.")]
    assert got == [("node.started", 1), ("node.retrying", 1), ("node.started", 2), ("node.retrying", 2),
                   ("node.started", 3), ("node.finished", None)], got
    r1 = [e["data"] for e in evs if e["event"] == "node.retrying"][0]
    assert r1["nodeId"] == "h" and r1["delayMs"] == 50 and r1["error"]["code"] == "HTTP_STATUS"
    r2 = [e["data"] for e in evs if e["event"] == "node.retrying"][1]
    assert r2["delayMs"] == 100
    assert evs[-1]["data"]["status"] == "succeeded"


def test_a_failed_run_skips_the_rest_with_one_finish_per_node(srv, owner, fake_http):
    w = create_workflow(srv, owner, [transform("a", 1), http_node("h", fake_http.url + "/status/400"),
                                     transform("z", 2)], chain("a", "h", "z"))
    eid = start(srv, owner, w["id"])
    evs = stream(srv, owner, eid).rest()
    check_sequence(evs, eid)
    fins = {e["data"]["nodeId"]: e["data"] for e in evs if e["event"] == "node.finished"}
    assert sorted(fins) == ["a", "h", "z"]
    assert sum(e["event"] == "node.finished" for e in evs) == 3
    assert fins["h"]["status"] == "failed" and fins["h"]["error"]["code"] == "HTTP_STATUS"
    assert fins["z"]["status"] == "skipped" and fins["z"]["durationMs"] is None
    assert not [e for e in evs if e["event"] == "node.started" and e["data"]["nodeId"] == "z"]
    assert evs[-1]["data"]["status"] == "failed" and evs[-1]["data"]["error"]["nodeId"] == "h"


def test_cancel_ends_running_and_pending_nodes(srv, owner):
    w = create_workflow(srv, owner, [delay_node("a", 10000), transform("b", 1)], chain("a", "b"))
    eid = start(srv, owner, w["id"])
    s = stream(srv, owner, eid)
    got = s.until("node.started")
    assert got[-1]["data"]["nodeId"] == "a"
    cancel(srv, owner, eid)
    evs = got + s.rest()
    check_sequence(evs, eid)
    fins = {e["data"]["nodeId"]: e["data"]["status"] for e in evs if e["event"] == "node.finished"}
    assert fins == {"a": "cancelled", "b": "skipped"}
    assert evs[-1]["event"] == "execution.finished" and evs[-1]["data"]["status"] == "cancelled"
    assert evs[-1]["data"]["error"]["code"] == "CANCELLED"
    # and the replay is the same
    assert [e["raw"] for e in stream(srv, owner, eid).rest()] == [e["raw"] for e in evs]


def test_cancel_of_a_queued_execution(srv, owner):
    w = create_workflow(srv, owner, [delay_node("a", 3000)], settings={"maxConcurrency": 1})
    first = start(srv, owner, w["id"])
    wait_node(srv, owner, first, "a", "running")
    eid = start(srv, owner, w["id"])  # waits for the first: queued
    cancel(srv, owner, eid)
    evs = stream(srv, owner, eid).rest()
    check_sequence(evs, eid)
    assert [e["event"] for e in evs] == ["execution.queued", "node.finished", "execution.finished"]
    assert evs[1]["data"]["nodeId"] == "a" and evs[1]["data"]["status"] == "skipped"
    assert evs[-1]["data"]["status"] == "cancelled"
    cancel(srv, owner, first)


def test_ping_comments_keep_a_quiet_stream_alive(srv, owner):
    w = create_workflow(srv, owner, [delay_node("a", 1500)])
    eid = start(srv, owner, w["id"])
    s = stream(srv, owner, eid)
    assert s.wait_comment("ping", timeout=3.0), s.comments
    s.close()
    cancel(srv, owner, eid)


def test_deleting_the_execution_ends_its_streams(srv, owner):
    adm = admin_login(srv)
    w = create_workflow(srv, owner, [delay_node("a", 10000)])
    eid = start(srv, owner, w["id"])
    s = stream(srv, owner, eid)
    s.until("node.started")
    r = srv.request("DELETE", "/api/executions/%s" % eid, headers=H(adm))
    assert r.status_code == 204
    assert s.rest(timeout=5) == [] and s.ended
    after = stream(srv, owner, eid)
    assert after.status == 404 and after.json()["error"]["code"] == "NOT_FOUND"


def test_access_rules(srv, owner):
    viewer = register(srv, name="Viewer")
    stranger = register(srv, name="Stranger")
    w = create_workflow(srv, owner, [transform("a", 1)])
    share(srv, owner, w["id"], viewers=[viewer["user"]["id"]])
    eid = start(srv, owner, w["id"])
    wait_ended(srv, owner, eid)
    assert stream(srv, viewer, eid).rest()[-1]["event"] == "execution.finished"
    s = stream(srv, stranger, eid)
    assert s.status == 404 and s.json()["error"]["code"] == "NOT_FOUND"
    # no credentials, and never a token in the URL
    s = SSE(srv, EV % eid, {})
    assert s.status == 401 and s.json()["error"]["code"] == "UNAUTHORIZED"
    for q in ("token", "access_token", "accessToken", "apiKey"):
        s = SSE(srv, EV % eid + "?%s=%s" % (q, owner["accessToken"]), {})
        assert s.status == 401, q
    s = stream(srv, owner, "0190b2a4-0000-7000-8000-000000000000")
    assert s.status == 404
    s = SSE(srv, EV % eid, dict(H(owner), **{"Last-Event-ID": "x"}))
    assert s.status == 400 and s.json()["error"]["code"] == "VALIDATION_ERROR"
    assert s.json()["error"]["details"][0]["field"] == "Last-Event-ID"
    s = SSE(srv, EV % eid + "?lastEventId=-1", H(owner))
    assert s.status == 400 and s.json()["error"]["details"][0]["field"] == "lastEventId"
    # the largest id a JSON number holds exactly, and one past it
    s = SSE(srv, EV % eid + "?lastEventId=9007199254740991", H(owner))
    assert s.status == 200 and s.rest() == []
    s = SSE(srv, EV % eid, dict(H(owner), **{"Last-Event-ID": "9007199254740992"}))
    assert s.status == 400


def test_streams_per_user_are_capped(srv):
    u = register(srv, name="Many")
    w = create_workflow(srv, u, [delay_node("a", 20000)])
    eid = start(srv, u, w["id"])
    open_ = [stream(srv, u, eid) for _ in range(3)]
    assert all(s.status == 200 for s in open_)
    extra = stream(srv, u, eid)
    assert extra.status == 429
    assert extra.json()["error"]["code"] == "RATE_LIMITED" and int(extra.headers["retry-after"]) > 0
    g = SSE(srv, "/api/events", H(u))
    assert g.status == 429, "the global stream counts too"
    # another user is not affected
    other = register(srv, name="Other")
    og = SSE(srv, "/api/events", H(other))
    assert og.status == 200
    og.close()
    # closing one frees its place
    open_[0].close()
    deadline = time.monotonic() + 5
    while True:
        again = stream(srv, u, eid)
        if again.status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert again.status == 200
    again.close()
    for s in open_[1:]:
        s.close()
    cancel(srv, u, eid)


def test_global_stream_sends_lifecycle_of_readable_workflows(srv, owner):
    other = register(srv, name="Other owner")
    watcher = register(srv, name="Watcher")
    mine = create_workflow(srv, owner, [transform("a", 1)])
    share(srv, owner, mine["id"], viewers=[watcher["user"]["id"]])
    theirs = create_workflow(srv, other, [transform("a", 1)])
    g = SSE(srv, "/api/events", H(watcher))
    f = SSE(srv, "/api/events?workflowId=%s" % theirs["id"], H(other))
    assert g.status == 200 and f.status == 200
    e1 = start(srv, owner, mine["id"])
    e2 = start(srv, other, theirs["id"])
    wait_ended(srv, owner, e1)
    wait_ended(srv, other, e2)
    got = g.until("execution.finished")
    assert [e["event"] for e in got] == ["execution.queued", "execution.started", "execution.finished"]
    assert all(e["data"]["executionId"] == e1 and e["data"]["workflowId"] == mine["id"] for e in got)
    assert all("id" not in e for e in got), "no replay ids on the global stream"
    # the other owner's stream, filtered to its workflow, has only e2
    got2 = f.until("execution.finished")
    assert {e["data"]["executionId"] for e in got2} == {e2}
    # a permission taken away applies at once
    share(srv, owner, mine["id"], viewers=[])
    e3 = start(srv, owner, mine["id"])
    wait_ended(srv, owner, e3)
    e4 = start(srv, other, theirs["id"])
    wait_ended(srv, other, e4)
    with pytest.raises(TimeoutError):
        g.next(timeout=1.0)
    bad = SSE(srv, "/api/events?workflowId=nope", H(owner))
    assert bad.status == 400 and bad.json()["error"]["details"][0]["field"] == "workflowId"
    g.close()
    f.close()


def test_a_slow_reader_is_dropped_and_resumes_without_loss(aop_server):
    """SSE_BUFFER_BYTES at its minimum; a client that reads nothing (a tiny receive
    buffer) while a 400-node run writes ~800 events is dropped; reconnecting with
    Last-Event-ID from what it had gets the rest, nothing missing."""
    import socket
    srv = aop_server(**engine_env(SSE_BUFFER_BYTES="4096"))
    u = register(srv, name="Slow")
    n = 400
    ids = ["n%03d" % i for i in range(n)]
    w = create_workflow(srv, u, [delay_node(ids[0], 300)] + [transform(i, 1) for i in ids[1:]], chain(*ids))
    eid = start(srv, u, w["id"])
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    sock.connect(("127.0.0.1", srv.port))
    sock.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n"
                  % (EV % eid, u["accessToken"])).encode())
    wait_ended(srv, u, eid)
    deadline = time.monotonic() + 10
    dropped = 0
    while time.monotonic() < deadline and not dropped:
        m = [l for l in srv.get("/metrics").text.splitlines() if l.startswith("aop_event_streams_dropped_total ")]
        dropped = float(m[0].split()[1]) if m else 0
        time.sleep(0.1)
    assert dropped == 1
    # what it got before the close, then the rest by Last-Event-ID
    sock.settimeout(5)
    got = b""
    while True:
        try:
            part = sock.recv(65536)
        except socket.timeout:
            break
        if not part:
            break
        got += part
    sock.close()
    seen = [int(l[4:]) for l in got.decode(errors="replace").split("\n") if l.startswith("id: ")]
    assert seen and seen == list(range(1, len(seen) + 1))
    assert len(seen) < 2 * n + 3, "it was dropped before the end"
    rest = SSE(srv, EV % eid, dict(H(u), **{"Last-Event-ID": str(seen[-1])})).rest(timeout=30)
    seqs = seen + [e["data"]["seq"] for e in rest]
    assert seqs == list(range(1, 2 * n + 4)), "queued, started, 2 per node, finished"
