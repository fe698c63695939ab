"""The credentials vault: routes, visibility, use by nodes, and secrets that never
come back (docs/api.md, "Credentials").

One server for the module (engine_env, so http nodes may reach the loopback fakes),
against FakeHttp (echoes the headers it receives), FakeLLM (OpenAI-compatible,
checks the bearer key) and FakeAnthropic (the Messages API, checks every field).
"""
import base64
import json
import threading
import uuid

import pytest

from conftest import assert_error, db_dump, db_query, shared_server
from authutil import admin_login, assert_validation, bearer, make_user, register
from fakes import (FakeAnthropic, FakeHttp, FakeLLM, H, UNKNOWN_ID, assert_node_error, create_workflow,
                   engine_env, http_node, llm_node, node_of, run, start, wait_ended, write_pricing)
from sseclient import SSE

CRED_KEYS = {"id", "name", "type", "ownerId", "description", "baseUrl", "allowedHosts", "fields", "hint",
             "createdAt", "updatedAt", "lastUsedAt"}
ANTHROPIC_KEY = "sk-ant-api03-QmVyeVNlY3JldEtleQ-9x8y7z"
OPENAI_KEY = "sk-proj-openaiCompat-5f4e3d2c1b0a"


def secret(tag):
    """A distinctive secret value: long enough to be redacted wherever it occurs."""
    return "%s-%s" % (tag, uuid.uuid4().hex)


@pytest.fixture(scope="module")
def http():
    f = FakeHttp().start()
    yield f
    f.stop()


@pytest.fixture(scope="module")
def llm():
    f = FakeLLM(key=OPENAI_KEY).start()
    yield f
    f.stop()


@pytest.fixture(scope="module")
def anthropic():
    f = FakeAnthropic(key=ANTHROPIC_KEY).start()
    yield f
    f.stop()


@pytest.fixture(scope="module")
def pricing(tmp_path_factory):
    return write_pricing(tmp_path_factory.mktemp("pricing") / "pricing.json")


@pytest.fixture(scope="module")
def srv(tmp_path_factory, pricing):
    # no LLM_* at all: llm nodes reach providers through credentials only
    yield from shared_server(tmp_path_factory, "credentials", **engine_env(None, pricing, LOG_LEVEL="debug"))


@pytest.fixture()
def user(srv):
    return register(srv)


def create(srv, acct, expect=201, **body):
    r = srv.post("/api/credentials", json=body, headers=H(acct))
    assert r.status_code == expect, "create credential: %d %s" % (r.status_code, r.text[:1000])
    return r.json()


def bearer_cred(srv, acct, token, hosts=("127.0.0.1",), **extra):
    return create(srv, acct, name="b-%s" % uuid.uuid4().hex[:8], type="http_bearer", data={"token": token},
                  allowedHosts=list(hosts), **extra)


def get(srv, acct, cid, expect=200):
    r = srv.get("/api/credentials/%s" % cid, headers=H(acct))
    assert r.status_code == expect, r.text
    return r.json()


def patch(srv, acct, cid, expect=200, **body):
    r = srv.request("PATCH", "/api/credentials/%s" % cid, json=body, headers=H(acct))
    assert r.status_code == expect, "patch credential: %d %s" % (r.status_code, r.text[:1000])
    return r.json()


def delete(srv, acct, cid, expect=204):
    r = srv.request("DELETE", "/api/credentials/%s" % cid, headers=H(acct))
    assert r.status_code == expect, r.text
    return r


# ---------------------------------------------------------------- the resource

def test_create_answers_the_credential_without_its_data(srv, user):
    token = secret("tok")
    c = bearer_cred(srv, user, token, description="CI token")
    assert set(c) == CRED_KEYS, c
    assert c["type"] == "http_bearer" and c["ownerId"] == user["user"]["id"]
    assert c["fields"] == ["token"] and c["hint"] == "\u2026" + token[-4:]
    assert c["allowedHosts"] == ["127.0.0.1"] and c["baseUrl"] is None and c["lastUsedAt"] is None
    assert c["description"] == "CI token"
    assert token not in json.dumps(c)
    assert get(srv, user, c["id"]) == c


def test_every_type_holds_its_fields_and_hint(srv, user):
    cases = [
        ("openai", {"apiKey": secret("sk")}, "apiKey", {"baseUrl": "http://127.0.0.1:9/v1"}),
        ("anthropic", {"apiKey": secret("ant")}, "apiKey", {}),
        ("http_bearer", {"token": secret("t")}, "token", {"allowedHosts": ["api.example.com"]}),
        ("http_header", {"name": "X-Api-Key", "value": secret("v")}, "value", {"allowedHosts": ["*.example.com"]}),
        ("http_basic", {"username": "bob", "password": secret("pw")}, "password",
         {"allowedHosts": ["example.com:8443"]}),
    ]
    for type_, data, main, extra in cases:
        c = create(srv, user, name="c-" + type_, type=type_, data=data, **extra)
        assert c["fields"] == sorted(data), c
        assert c["hint"] == "\u2026" + data[main][-4:], c
        if "baseUrl" in extra:
            assert c["baseUrl"] == extra["baseUrl"]


def test_invalid_bodies_name_their_fields(srv, user):
    r = srv.post("/api/credentials", json={"name": "x", "type": "ftp", "data": {}}, headers=H(user))
    assert_validation(r, "type")
    r = srv.post("/api/credentials", json={"name": "x", "type": "http_bearer", "data": {"token": "abc"}},
                 headers=H(user))
    assert_validation(r, "allowedHosts")
    r = srv.post("/api/credentials", json={"name": "x", "type": "http_basic", "allowedHosts": ["a.com"],
                                           "data": {"username": "u"}}, headers=H(user))
    assert_validation(r, "data.password")
    r = srv.post("/api/credentials", json={"name": "x", "type": "openai", "data": {"apiKey": "k", "other": 1}},
                 headers=H(user))
    assert_validation(r, "data.other")
    r = srv.post("/api/credentials", json={"name": "x", "type": "http_header", "allowedHosts": ["a.com"],
                                           "data": {"name": "Bad Name", "value": "v"}}, headers=H(user))
    assert_validation(r, "data.name")
    r = srv.post("/api/credentials", json={"name": "x", "type": "http_bearer", "allowedHosts": ["a b"],
                                           "baseUrl": "http://a.com", "data": {"token": "t"}}, headers=H(user))
    err = assert_validation(r, "allowedHosts[0]")
    assert "baseUrl" in {d["field"] for d in err["details"]}
    r = srv.post("/api/credentials", json={"name": "", "type": "openai", "data": {"apiKey": "a\nb"}},
                 headers=H(user))
    err = assert_validation(r, "name")
    assert "data.apiKey" in {d["field"] for d in err["details"]}
    r = srv.post("/api/credentials", json={"name": "x", "type": "openai", "data": {"apiKey": "k" * 8193}},
                 headers=H(user))
    assert_validation(r, "data.apiKey")
    assert create(srv, user, name="at-bound", type="openai", data={"apiKey": "k" * 8192})["hint"] == "\u2026kkkk"


def test_names_are_unique_per_owner(srv, user):
    create(srv, user, name="same", type="anthropic", data={"apiKey": secret("k")})
    r = srv.post("/api/credentials", json={"name": "same", "type": "anthropic", "data": {"apiKey": "k"}},
                 headers=H(user))
    assert_error(r, 409, "CONFLICT")
    other = register(srv)
    create(srv, other, name="same", type="anthropic", data={"apiKey": secret("k")})


def test_only_the_owner_and_admins_see_a_credential(srv, user):
    c = bearer_cred(srv, user, secret("t"))
    other = register(srv)
    for r in (srv.get("/api/credentials/%s" % c["id"], headers=H(other)),
              srv.request("PATCH", "/api/credentials/%s" % c["id"], json={"name": "z"}, headers=H(other)),
              srv.request("DELETE", "/api/credentials/%s" % c["id"], headers=H(other)),
              srv.get("/api/credentials/not-an-id", headers=H(user))):
        assert_error(r, 404, "NOT_FOUND")
    mine = srv.get("/api/credentials", headers=H(other)).json()
    assert mine["data"] == [] and mine["pagination"]["total"] == 0
    ids = [x["id"] for x in srv.get("/api/credentials?limit=100", headers=H(user)).json()["data"]]
    assert c["id"] in ids
    admin = admin_login(srv)
    assert get(srv, admin, c["id"])["id"] == c["id"]
    listed = srv.get("/api/credentials?ownerId=%s&limit=100" % user["user"]["id"], headers=H(admin)).json()
    assert {x["ownerId"] for x in listed["data"]} == {user["user"]["id"]} and c["id"] in [x["id"] for x in listed["data"]]
    assert_validation(srv.get("/api/credentials?ownerId=nope", headers=H(admin)), "ownerId")
    assert_validation(srv.get("/api/credentials?sort=secret", headers=H(user)), "sort")


def test_a_viewer_creates_none(srv):
    viewer = make_user(srv, role="viewer")
    r = srv.post("/api/credentials", json={"name": "v", "type": "openai", "data": {"apiKey": "k"}},
                 headers=H(viewer))
    assert_error(r, 403, "FORBIDDEN")


def test_patch_merges_data_and_changes_the_hint(srv, user):
    pw1, pw2 = secret("pw1"), secret("pw2")
    c = create(srv, user, name="basic", type="http_basic", data={"username": "alice", "password": pw1},
               allowedHosts=["127.0.0.1"])
    c2 = patch(srv, user, c["id"], data={"password": pw2}, description="rotated", allowedHosts=["localhost"])
    assert c2["hint"] == "\u2026" + pw2[-4:] and c2["fields"] == ["password", "username"]
    assert c2["description"] == "rotated" and c2["allowedHosts"] == ["localhost"]
    assert c2["updatedAt"] >= c["updatedAt"]
    assert_validation(srv.request("PATCH", "/api/credentials/%s" % c["id"], json={"type": "openai"},
                                  headers=H(user)), "type")
    assert_validation(srv.request("PATCH", "/api/credentials/%s" % c["id"], json={"allowedHosts": []},
                                  headers=H(user)), "allowedHosts")
    assert_validation(srv.request("PATCH", "/api/credentials/%s" % c["id"], json={"data": {"token": "x"}},
                                  headers=H(user)), "data.token")


def test_delete(srv, user):
    c = bearer_cred(srv, user, secret("t"))
    delete(srv, user, c["id"])
    get(srv, user, c["id"], expect=404)
    delete(srv, user, c["id"], expect=404)


def test_changes_are_audited(srv, user):
    c = bearer_cred(srv, user, secret("t"))
    patch(srv, user, c["id"], name="renamed")
    delete(srv, user, c["id"])
    rows = db_query(srv, "SELECT action, actor_id, detail FROM audit_events WHERE subject_id = ? ORDER BY id",
                    (c["id"],))
    assert [r["action"] for r in rows] == ["credential.create", "credential.update", "credential.delete"], rows
    assert all(r["actor_id"] == user["user"]["id"] for r in rows)


# ---------------------------------------------------------------- use by nodes

def run_http(srv, acct, url, cred_id, **config):
    wf = create_workflow(srv, acct, [http_node("call", url, credentialId=cred_id, **config)])
    return wf, run(srv, acct, wf["id"])


def test_each_http_type_sends_its_header(srv, user, http):
    token, value, pw = secret("bearer"), secret("hdr"), secret("pw")
    cases = [
        (create(srv, user, name="hb", type="http_bearer", data={"token": token}, allowedHosts=["127.0.0.1"]),
         "authorization", "Bearer " + token),
        (create(srv, user, name="hh", type="http_header", data={"name": "X-Api-Key", "value": value},
                allowedHosts=["127.0.0.1"]), "x-api-key", value),
        (create(srv, user, name="hbasic", type="http_basic", data={"username": "bob", "password": pw},
                allowedHosts=["127.0.0.1"]),
         "authorization", "Basic " + base64.b64encode(("bob:" + pw).encode()).decode()),
    ]
    for cred, header, want in cases:
        http.clear_requests()
        # a header of the same name in the config is replaced by the credential's
        _, e = run_http(srv, user, http.url + "/json", cred["id"], headers={header: "from-config"})
        assert e["status"] == "succeeded", e
        got = http.requests(path="/json")
        assert len(got) == 1 and got[0].headers.get(header) == want, got[0].headers
        # the echo of the header comes back redacted
        echoed = node_of(e, "call")["output"]["body"]["headers"][header]
        assert echoed == "[REDACTED]" or "[REDACTED]" in echoed, echoed


def test_a_host_outside_allowed_hosts_gets_nothing(srv, user, http):
    cred = bearer_cred(srv, user, secret("t"), hosts=["api.example.com", "*.example.org"])
    http.clear_requests()
    _, e = run_http(srv, user, http.url + "/json", cred["id"])
    assert_node_error(e, "call", "CREDENTIAL_HOST_NOT_ALLOWED")
    assert http.requests() == []


def test_allowed_hosts_with_a_port(srv, user, http):
    cred = bearer_cred(srv, user, secret("t"), hosts=["127.0.0.1:%d" % (http.port + 1)])
    http.clear_requests()
    _, e = run_http(srv, user, http.url + "/json", cred["id"])
    assert_node_error(e, "call", "CREDENTIAL_HOST_NOT_ALLOWED")
    assert http.requests() == []
    patch(srv, user, cred["id"], allowedHosts=["LOCALHOST", "127.0.0.1:%d" % http.port])
    _, e = run_http(srv, user, http.url + "/json", cred["id"])
    assert e["status"] == "succeeded", e


def test_anthropic_messages_api(srv, user, anthropic):
    cred = create(srv, user, name="claude", type="anthropic", data={"apiKey": ANTHROPIC_KEY},
                  baseUrl=anthropic.base_url)
    node = llm_node("ask", "claude-3-5-haiku-latest",
                    [{"role": "system", "content": "Be brief."}, {"role": "system", "content": "Be kind."},
                     {"role": "user", "content": "Hi {{input.who}}"}, {"role": "assistant", "content": "Hello"},
                     {"role": "user", "content": "Again"}],
                    credentialId=cred["id"], temperature=0.5)
    wf = create_workflow(srv, user, [node])
    e = run(srv, user, wf["id"], input={"who": "Ada"})
    assert e["status"] == "succeeded", e
    calls = anthropic.calls("claude-3-5-haiku-latest")
    assert len(calls) == 1
    req = calls[0]
    assert req.method == "POST" and req.path == "/v1/messages"
    assert req.headers["x-api-key"] == ANTHROPIC_KEY and req.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in req.headers
    assert req.json == {"model": "claude-3-5-haiku-latest", "max_tokens": 4096, "temperature": 0.5,
                        "system": "Be brief.\n\nBe kind.",
                        "messages": [{"role": "user", "content": "Hi Ada"}, {"role": "assistant", "content": "Hello"},
                                     {"role": "user", "content": "Again"}]}, req.json
    n = node_of(e, "ask")
    assert n["output"] == {"content": "echo: Again", "model": "claude-3-5-haiku-latest", "finishReason": "end_turn",
                           "usage": {"promptTokens": 12, "completionTokens": 7, "totalTokens": 19}}, n["output"]
    assert n["usage"] == {"promptTokens": 12, "completionTokens": 7, "totalTokens": 19}
    assert n["model"] == "claude-3-5-haiku-latest"
    assert get(srv, user, cred["id"])["lastUsedAt"] is not None


def test_anthropic_streams(srv, user, anthropic):
    """stream: true with an anthropic credential: the request asks for the Messages
    API's event stream, its text deltas go out as llm.delta in order, and the stored
    output and usage are those of the same call without streaming."""
    cred = create(srv, user, name="claude-s", type="anthropic", data={"apiKey": ANTHROPIC_KEY},
                  baseUrl=anthropic.base_url)
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "tell me a story"}]
    streamed = create_workflow(srv, user, [llm_node("ask", "claude-stream", msgs, credentialId=cred["id"],
                                                    stream=True)])
    anthropic.stream_gate = threading.Event()
    try:
        eid = start(srv, user, streamed["id"])
        s = SSE(srv, "/api/executions/%s/events" % eid, H(user))
        evs = s.until("node.started", timeout=20)
        anthropic.stream_gate.set()  # deltas are live only: sent once the stream watches
        evs += s.rest(timeout=20)
    finally:
        anthropic.stream_gate = None
    deltas = [e["data"] for e in evs if e["event"] == "llm.delta"]
    assert deltas and "".join(d["text"] for d in deltas) == "echo: tell me a story", deltas
    req = anthropic.calls("claude-stream")[-1]
    assert req.json["stream"] is True and req.json["system"] == "Be brief.", req.json
    e = wait_ended(srv, user, eid)
    plain = create_workflow(srv, user, [llm_node("ask", "claude-stream", msgs, credentialId=cred["id"])])
    p = run(srv, user, plain["id"])
    assert "stream" not in anthropic.calls("claude-stream")[-1].json
    assert e["status"] == p["status"] == "succeeded", (e, p)
    out, pout = node_of(e, "ask"), node_of(p, "ask")
    assert out["output"] == pout["output"] == {
        "content": "echo: tell me a story", "model": "claude-stream", "finishReason": "end_turn",
        "usage": {"promptTokens": 12, "completionTokens": 7, "totalTokens": 19}}, out["output"]
    assert out["usage"] == pout["usage"] and out["costUsd"] == pout["costUsd"]


def test_anthropic_max_tokens_and_retries(srv, user, anthropic):
    cred = create(srv, user, name="claude-r", type="anthropic", data={"apiKey": ANTHROPIC_KEY},
                  baseUrl=anthropic.base_url)
    wf = create_workflow(srv, user, [llm_node("ask", "overloaded-2", [{"role": "user", "content": "x"}],
                                              credentialId=cred["id"], maxTokens=50,
                                              retry={"maxAttempts": 3, "backoffMs": 10})])
    e = run(srv, user, wf["id"])
    assert e["status"] == "succeeded", e
    calls = anthropic.calls("overloaded-2")
    assert len(calls) == 3 and all(c.json["max_tokens"] == 50 for c in calls)
    assert node_of(e, "ask")["attempts"] == 3
    wf = create_workflow(srv, user, [llm_node("ask", "fail-400", [{"role": "user", "content": "x"}],
                                              credentialId=cred["id"], retry={"maxAttempts": 3})])
    e = run(srv, user, wf["id"])
    n = assert_node_error(e, "ask", "LLM_ERROR")
    assert n["attempts"] == 1 and "scripted failure" in n["error"]["message"]


def test_anthropic_key_echoed_back_is_redacted(srv, user, anthropic):
    wrong = secret("sk-ant-wrong")
    cred = create(srv, user, name="claude-w", type="anthropic", data={"apiKey": wrong}, baseUrl=anthropic.base_url)
    wf = create_workflow(srv, user, [llm_node("ask", "echo-key-401", [{"role": "user", "content": "x"}],
                                              credentialId=cred["id"])])
    e = run(srv, user, wf["id"])
    n = assert_node_error(e, "ask", "LLM_ERROR")
    assert "[REDACTED]" in n["error"]["message"] and wrong not in json.dumps(e)


def test_openai_credential_with_a_base_url(srv, user, llm):
    cred = create(srv, user, name="vllm", type="openai", data={"apiKey": OPENAI_KEY}, baseUrl=llm.base_url)
    wf = create_workflow(srv, user, [llm_node("ask", "test-model", [{"role": "user", "content": "hi"}],
                                              credentialId=cred["id"])])
    e = run(srv, user, wf["id"])
    assert e["status"] == "succeeded", e
    call = llm.calls("test-model")[-1]
    assert call.headers["authorization"] == "Bearer " + OPENAI_KEY
    assert "max_tokens" not in call.json  # no maxTokens and no budget
    n = node_of(e, "ask")
    assert n["output"]["content"] == "echo: hi" and n["costUsd"] == 20.0


def test_a_foreign_credential_is_refused_on_save(srv, user):
    other = register(srv)
    theirs = bearer_cred(srv, other, secret("t"))
    body = {"name": "wf", "definition": {"nodes": [
        {"id": "a", "type": "transform", "config": {"output": 1}},
        http_node("call", "http://127.0.0.1/json", credentialId=theirs["id"])], "edges": []}}
    r = srv.post("/api/workflows", json=body, headers=H(user))
    assert_validation(r, "definition.nodes[1].config.credentialId")
    mine = bearer_cred(srv, user, secret("t"))
    llm_cred = create(srv, user, name="o-%s" % uuid.uuid4().hex[:6], type="openai", data={"apiKey": "k" * 10})
    body["definition"]["nodes"][1]["config"]["credentialId"] = llm_cred["id"]
    assert_validation(srv.post("/api/workflows", json=body, headers=H(user)),
                      "definition.nodes[1].config.credentialId")
    body["definition"]["nodes"][1]["config"]["credentialId"] = "nope"
    assert_validation(srv.post("/api/workflows", json=body, headers=H(user)),
                      "definition.nodes[1].config.credentialId")
    body["definition"]["nodes"][1]["config"]["credentialId"] = mine["id"]
    wf = srv.post("/api/workflows", json=body, headers=H(user))
    assert wf.status_code == 201, wf.text
    # an update keeps to the owner's credentials too
    body["definition"]["nodes"][1]["config"]["credentialId"] = theirs["id"]
    r = srv.request("PUT", "/api/workflows/%s" % wf.json()["id"], json={"definition": body["definition"]},
                    headers=H(user))
    assert_validation(r, "definition.nodes[1].config.credentialId")
    # a duplicate by another user may not take the owner's credentials along
    admin = admin_login(srv)
    r = srv.post("/api/workflows/%s/duplicate" % wf.json()["id"], json={}, headers=H(admin))
    assert_validation(r, "definition.nodes[1].config.credentialId")


def test_a_deleted_credential_fails_at_run(srv, user, http):
    cred = bearer_cred(srv, user, secret("t"))
    wf = create_workflow(srv, user, [http_node("call", http.url + "/json", credentialId=cred["id"])])
    delete(srv, user, cred["id"])
    http.clear_requests()
    e = run(srv, user, wf["id"])
    assert_node_error(e, "call", "CREDENTIAL_NOT_FOUND")
    assert http.requests() == []


def test_an_unreadable_credential_fails_and_is_counted(srv, user, http):
    cred = bearer_cred(srv, user, secret("t"))
    wf = create_workflow(srv, user, [http_node("call", http.url + "/json", credentialId=cred["id"])])
    other = bearer_cred(srv, user, secret("t"))
    # another row's sealed value: its id is bound as associated data, so it does not open here
    sealed = db_query(srv, "SELECT secret FROM credentials WHERE id = ?", (other["id"],))[0]["secret"]
    db_query(srv, "UPDATE credentials SET secret = ? WHERE id = ?", (sealed, cred["id"]))

    def failures():
        for line in srv.get("/metrics").text.splitlines():
            if line.startswith("aop_credential_decrypt_failures_total "):
                return int(line.split()[1])
        raise AssertionError("no aop_credential_decrypt_failures_total")
    before = failures()
    e = run(srv, user, wf["id"])
    assert_node_error(e, "call", "CREDENTIAL_UNREADABLE")
    assert failures() == before + 1
    r = srv.request("PATCH", "/api/credentials/%s" % cred["id"], json={"data": {"token": "new-token"}},
                    headers=H(user))
    assert_error(r, 500, "INTERNAL_ERROR")
    assert failures() == before + 2


def test_the_owners_limit(aop_server):
    srv = aop_server(**engine_env(None, None, CREDENTIALS_MAX_PER_USER="2"))
    u = register(srv)
    create(srv, u, name="one", type="openai", data={"apiKey": "k1"})
    create(srv, u, name="two", type="openai", data={"apiKey": "k2"})
    r = srv.post("/api/credentials", json={"name": "three", "type": "openai", "data": {"apiKey": "k3"}},
                 headers=H(u))
    err = assert_error(r, 409, "CONFLICT")
    assert "CREDENTIALS_MAX_PER_USER" in err["message"]
    create(srv, register(srv), name="three", type="openai", data={"apiKey": "k3"})


# ---------------------------------------------------------------- never leaked

def test_secrets_are_never_leaked(srv, user, http, anthropic):
    """Every route's answer and every stored byte checked for every secret sent."""
    token, value, pw, key = secret("tok-leak"), secret("hdr-leak"), secret("pw-leak"), ANTHROPIC_KEY
    creds = [
        create(srv, user, name="l1", type="http_bearer", data={"token": token}, allowedHosts=["127.0.0.1"]),
        create(srv, user, name="l2", type="http_header", data={"name": "X-Key", "value": value},
               allowedHosts=["127.0.0.1"]),
        create(srv, user, name="l3", type="http_basic", data={"username": "u", "password": pw},
               allowedHosts=["127.0.0.1"]),
        create(srv, user, name="l4", type="anthropic", data={"apiKey": key}, baseUrl=anthropic.base_url),
    ]
    nodes = [http_node("h%d" % i, http.url + "/json", credentialId=c["id"], method="POST", body={"x": 1})
             for i, c in enumerate(creds[:3])]
    nodes.append(llm_node("ask", "claude-leak", [{"role": "user", "content": "hi"}], credentialId=creds[3]["id"]))
    wf = create_workflow(srv, user, nodes)
    e = run(srv, user, wf["id"])
    assert e["status"] == "succeeded", e
    patch(srv, user, creds[0]["id"], description="touched")
    basic = base64.b64encode(("u:" + pw).encode()).decode()
    texts = []
    for path in ["/api/credentials?limit=100", "/api/workflows/%s" % wf["id"], "/api/workflows/%s/versions" % wf["id"],
                 "/api/workflows/%s/versions/1" % wf["id"], "/api/executions?limit=100",
                 "/api/executions/%s" % e["id"], "/api/executions/workflow/%s/stats" % wf["id"]]:
        r = srv.get(path, headers=H(user))
        assert r.status_code == 200, (path, r.text)
        texts.append(r.text)
    texts += [srv.get("/api/credentials/%s" % c["id"], headers=H(user)).text for c in creds]
    texts.append(srv.get("/metrics").text)
    dump = db_dump(srv)
    logs = srv.stderr_text()
    for s in (token, value, pw, key, basic):
        for t in texts:
            assert s not in t
        assert s.encode() not in dump, "a secret is stored in the clear"
        assert s not in logs, "a secret is in the log"


def test_allowed_hosts_at_the_bound(srv, user):
    hosts = ["h%d.example.com" % i for i in range(50)]
    assert create(srv, user, name="fifty", type="http_bearer", data={"token": "t" * 10},
                  allowedHosts=hosts)["allowedHosts"] == hosts
    r = srv.post("/api/credentials", json={"name": "fifty-one", "type": "http_bearer", "data": {"token": "t" * 10},
                                           "allowedHosts": hosts + ["one-more.example.com"]}, headers=H(user))
    assert_validation(r, "allowedHosts")


def test_a_base_url_on_a_private_address_is_blocked(aop_server, llm):
    """A credential's baseUrl is the user's choice: without HTTP_NODE_ALLOW_PRIVATE it is
    checked as an http node's URL is, so it cannot reach the server's own network."""
    srv = aop_server(**engine_env(None, None, allow_private=False))
    u = register(srv)
    cred = create(srv, u, name="local", type="openai", data={"apiKey": OPENAI_KEY}, baseUrl=llm.base_url)
    before = len(llm.calls())
    wf = create_workflow(srv, u, [llm_node("ask", "test-model", [{"role": "user", "content": "hi"}],
                                           credentialId=cred["id"])])
    e = run(srv, u, wf["id"])
    assert_node_error(e, "ask", "ADDRESS_BLOCKED")
    assert len(llm.calls()) == before
