"""Workflows: create, read, update, defaults, field and definition validation, lists
(filters, search, sort, pagination), duplicate, soft delete and the analytics summary.

Access rules are in test_workflow_access.py, versions and concurrency in
test_workflow_versions.py."""
import copy
import time
import uuid

import pytest

from conftest import assert_error, assert_security_headers, shared_server
from authutil import (UUID7, admin_login, assert_validation, auth_env, bearer, db_rows, delete, detail_fields,
                      parse_ts, register)

UNKNOWN_ID = "0190b2a4-0000-7000-8000-000000000000"
WF_KEYS = {"id", "name", "description", "tags", "status", "definition", "settings", "version", "ownerId",
           "permissions", "analytics", "createdAt", "updatedAt", "createdBy", "updatedBy"}
ANALYTICS_KEYS = {"executionCount", "successCount", "failureCount", "avgDurationMs", "totalTokens",
                  "totalCostUsd", "lastExecutedAt"}
ZERO_ANALYTICS = {"executionCount": 0, "successCount": 0, "failureCount": 0, "avgDurationMs": 0,
                  "totalTokens": 0, "totalCostUsd": 0, "lastExecutedAt": None}
SUMMARY_KEYS = {"totalWorkflows", "byStatus", "createdLast7Days", "topByExecutions", "topByCost"}
TOP_KEYS = {"workflowId", "name", "executions", "costUsd"}


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    yield from shared_server(tmp_path_factory, "workflows", **auth_env())


@pytest.fixture(scope="module")
def adm(srv):
    return admin_login(srv)


@pytest.fixture(scope="module")
def alice(srv):
    return register(srv, name="Alice Owner")


# ---------------------------------------------------------------- helpers

def H(acct):
    return bearer(acct["accessToken"])


def put(srv, wid, body, headers, **kw):
    return srv.request("PUT", "/api/workflows/%s" % wid, json=body, headers=headers, **kw)


def create(srv, acct, expect=201, **fields):
    r = srv.post("/api/workflows", json=fields, headers=H(acct))
    assert r.status_code == expect, "create %r: %d %s" % (fields, r.status_code, r.text[:800])
    return r.json()


def get(srv, acct, wid, expect=200):
    r = srv.get("/api/workflows/%s" % wid, headers=H(acct))
    assert r.status_code == expect, "GET %s: %d %s" % (wid, r.status_code, r.text[:500])
    return r.json()


def update(srv, acct, wid, expect=200, **fields):
    r = put(srv, wid, fields, H(acct))
    assert r.status_code == expect, "PUT %r: %d %s" % (fields, r.status_code, r.text[:800])
    return r.json()


def listing(srv, acct, expect=200, **params):
    r = srv.get("/api/workflows", headers=H(acct), params=params)
    assert r.status_code == expect, "list %r: %d %s" % (params, r.status_code, r.text[:500])
    return r.json()


def ids(body):
    return [w["id"] for w in body["data"]]


def assert_validation_under(r, prefix):
    """400 VALIDATION_ERROR with a detail whose field is prefix or a path below it."""
    err = assert_error(r, 400, "VALIDATION_ERROR")
    fields = detail_fields(err)
    ok = [f for f in fields if f and (f == prefix or f.startswith(prefix + ".") or f.startswith(prefix + "["))]
    assert ok, "details should name %r (or a path below it): %r" % (prefix, err)
    return err


def detail_for(err, field):
    return [d for d in err.get("details") or [] if d.get("field") == field]


def check_workflow(w, owner_id=None):
    assert isinstance(w, dict) and set(w) == WF_KEYS, "workflow keys: %r" % (sorted(w) if isinstance(w, dict) else w)
    assert UUID7.match(w["id"]), w["id"]
    assert w["status"] in ("draft", "active", "archived")
    assert isinstance(w["version"], int) and w["version"] >= 1
    assert set(w["permissions"]) == {"editors", "viewers"}, w["permissions"]
    assert set(w["analytics"]) == ANALYTICS_KEYS, w["analytics"]
    assert isinstance(w["analytics"]["avgDurationMs"], int), w["analytics"]
    parse_ts(w["createdAt"])
    parse_ts(w["updatedAt"])
    if owner_id:
        assert w["ownerId"] == owner_id
    return w


FULL_DEF = {
    "nodes": [
        {"id": "start", "type": "transform", "name": "Start",
         "config": {"output": {"q": "{{input.query}}", "n": "{{ input.count }}", "lit": [1, True, None]}},
         "position": {"x": 10, "y": 20}},
        {"id": "check", "type": "condition",
         "config": {"left": "{{nodes.start.output.n}}", "op": "gt", "right": 3}},
        {"id": "fetch", "type": "http",
         "config": {"method": "POST", "url": "https://example.com/api?q={{nodes.start.output.q}}",
                    "headers": {"X-Trace": "{{input.trace}}"}, "body": {"k": "{{input.k}}"}, "timeoutMs": 5000},
         "retry": {"maxAttempts": 3, "backoffMs": 250}, "timeoutMs": 10000},
        {"id": "ask", "type": "llm",
         "config": {"model": "gpt-4o-mini",
                    "messages": [{"role": "system", "content": "be brief"},
                                 {"role": "user", "content": "{{nodes.start.output.q}}"}],
                    "temperature": 0.5, "maxTokens": 100}},
        {"id": "wait-1", "type": "delay", "config": {"ms": 10}},
        {"id": "dyn_url", "type": "http", "config": {"url": "{{input.url}}"}},
        {"id": "has", "type": "condition", "config": {"left": "{{input.flag}}", "op": "exists"}},
    ],
    "edges": [
        {"from": "start", "to": "check"},
        {"from": "check", "to": "fetch", "when": True},
        {"from": "check", "to": "ask", "when": False},
        {"from": "fetch", "to": "wait-1"},
        {"from": "start", "to": "dyn_url"},
        {"from": "start", "to": "has", "label": "ui-only"},
    ],
    "layout": {"zoom": 1.5},
}


# ---------------------------------------------------------------- create and read

def test_create_with_defaults(srv, alice):
    r = srv.post("/api/workflows", json={"name": "Minimal"}, headers=H(alice))
    assert r.status_code == 201, r.text
    assert_security_headers(r)
    assert r.headers.get("Content-Type", "").split(";")[0].strip() == "application/json"
    assert r.headers.get("Cache-Control") == "no-store"
    w = check_workflow(r.json(), alice["user"]["id"])
    uid = alice["user"]["id"]
    assert w["name"] == "Minimal"
    assert w["description"] == ""
    assert w["tags"] == []
    assert w["status"] == "draft"
    assert w["definition"] == {"nodes": [], "edges": []}
    assert w["settings"] == {}
    assert w["version"] == 1
    assert w["permissions"] == {"editors": [], "viewers": []}
    assert w["analytics"] == ZERO_ANALYTICS
    assert w["createdAt"] == w["updatedAt"]
    assert w["createdBy"] == uid and w["updatedBy"] == uid
    assert abs(parse_ts(w["createdAt"]).timestamp() - time.time()) < 300
    g = srv.get("/api/workflows/%s" % w["id"], headers=H(alice))
    assert g.status_code == 200, g.text
    assert_security_headers(g)
    assert g.json() == w


def test_create_with_every_field(srv, alice):
    settings = {"timeoutMs": 60000, "maxConcurrency": 4, "retryPolicy": {"mode": "custom"}, "note": "kept"}
    w = create(srv, alice, name="Full", description="All the fields", tags=["etl", "nightly"], status="active",
               definition=FULL_DEF, settings=settings)
    check_workflow(w, alice["user"]["id"])
    assert w["name"] == "Full" and w["description"] == "All the fields"
    assert w["tags"] == ["etl", "nightly"] and w["status"] == "active"
    assert w["settings"] == settings
    # unknown keys of the definition (a UI's layout data) are kept as sent
    assert w["definition"] == FULL_DEF
    assert get(srv, alice, w["id"]) == w


@pytest.mark.parametrize("status", ["draft", "active", "archived"])
def test_create_each_status(srv, alice, status):
    assert create(srv, alice, name="S", status=status)["status"] == status


def test_create_without_edges(srv, alice):
    d = {"nodes": [{"id": "only", "type": "delay", "config": {"ms": 0}}]}
    w = create(srv, alice, name="No edges", definition=d)
    assert w["definition"]["nodes"] == d["nodes"]
    assert w["definition"].get("edges", []) == []


def test_create_ignores_fields_the_caller_may_not_set(srv, alice, adm):
    bob = register(srv)
    sent = {"name": "Sneaky", "id": UNKNOWN_ID, "ownerId": bob["user"]["id"], "version": 42,
            "analytics": {"executionCount": 99, "successCount": 9, "failureCount": 1, "avgDurationMs": 5,
                          "totalTokens": 1000, "totalCostUsd": 12.5, "lastExecutedAt": "2020-01-01T00:00:00.000Z"},
            "createdAt": "2020-01-01T00:00:00.000Z", "updatedAt": "2020-01-01T00:00:00.000Z",
            "createdBy": bob["user"]["id"], "updatedBy": bob["user"]["id"],
            "permissions": {"editors": [bob["user"]["id"]], "viewers": []}, "somethingElse": {"x": 1}}
    w = create(srv, alice, **sent)
    uid = alice["user"]["id"]
    assert w["id"] != UNKNOWN_ID and UUID7.match(w["id"])
    assert w["ownerId"] == uid and w["createdBy"] == uid and w["updatedBy"] == uid
    assert w["version"] == 1
    assert w["analytics"] == ZERO_ANALYTICS
    assert w["createdAt"] != "2020-01-01T00:00:00.000Z"
    # permissions are ignored on create
    assert w["permissions"] == {"editors": [], "viewers": []}
    assert "somethingElse" not in w
    assert_error(srv.get("/api/workflows/%s" % UNKNOWN_ID, headers=H(alice)), 404, "NOT_FOUND")
    # bob was not made an editor
    assert_error(srv.get("/api/workflows/%s" % w["id"], headers=H(bob)), 404, "NOT_FOUND")


def test_create_limits_accepted(srv, alice):
    w = create(srv, alice, name="n" * 200, description="d" * 5000, tags=["t%02d" % i for i in range(20)],
               settings={"timeoutMs": 86400000, "maxConcurrency": 1000})
    assert len(w["name"]) == 200 and len(w["description"]) == 5000 and len(w["tags"]) == 20
    w = create(srv, alice, name="x", tags=["a" * 50], settings={"timeoutMs": 1, "maxConcurrency": 1})
    assert w["tags"] == ["a" * 50]


def test_lengths_count_characters_not_bytes(srv, alice):
    w = create(srv, alice, name="é" * 200, description="😀" * 5000, tags=["ü" * 50])
    assert w["name"] == "é" * 200 and w["description"] == "😀" * 5000 and w["tags"] == ["ü" * 50]
    assert_validation(srv.post("/api/workflows", json={"name": "😀" * 201}, headers=H(alice)), "name")


def test_create_415_without_json_content_type(srv, alice):
    r = srv.post("/api/workflows", data='{"name":"x"}', headers=dict(H(alice), **{"Content-Type": "text/plain"}))
    assert_error(r, 415, "UNSUPPORTED_MEDIA_TYPE")


BAD_FIELDS = [
    ({}, "name"),
    ({"name": ""}, "name"),
    ({"name": None}, "name"),
    ({"name": 5}, "name"),
    ({"name": ["x"]}, "name"),
    ({"name": "x" * 201}, "name"),
    ({"name": "ok", "description": "d" * 5001}, "description"),
    ({"name": "ok", "description": 5}, "description"),
    ({"name": "ok", "status": "deleted"}, "status"),
    ({"name": "ok", "status": "Draft"}, "status"),
    ({"name": "ok", "status": 1}, "status"),
    ({"name": "ok", "status": None}, "status"),
]
BAD_UNDER = [
    ({"name": "ok", "tags": "etl"}, "tags"),
    ({"name": "ok", "tags": {"a": 1}}, "tags"),
    ({"name": "ok", "tags": ["t%d" % i for i in range(21)]}, "tags"),
    ({"name": "ok", "tags": [""]}, "tags"),
    ({"name": "ok", "tags": ["a" * 51]}, "tags"),
    ({"name": "ok", "tags": [1]}, "tags"),
    ({"name": "ok", "tags": [None]}, "tags"),
    ({"name": "ok", "tags": ["dup", "dup"]}, "tags"),
    ({"name": "ok", "settings": "fast"}, "settings"),
    ({"name": "ok", "settings": []}, "settings"),
    ({"name": "ok", "settings": {"timeoutMs": 0}}, "settings"),
    ({"name": "ok", "settings": {"timeoutMs": 86400001}}, "settings"),
    ({"name": "ok", "settings": {"timeoutMs": 1.5}}, "settings"),
    ({"name": "ok", "settings": {"timeoutMs": "1000"}}, "settings"),
    ({"name": "ok", "settings": {"maxConcurrency": 0}}, "settings"),
    ({"name": "ok", "settings": {"maxConcurrency": 1001}}, "settings"),
    ({"name": "ok", "settings": {"maxConcurrency": True}}, "settings"),
    ({"name": "ok", "definition": "nodes"}, "definition"),
    ({"name": "ok", "definition": []}, "definition"),
    ({"name": "ok", "definition": {"nodes": "x"}}, "definition"),
    ({"name": "ok", "definition": {"nodes": [], "edges": {}}}, "definition"),
]


@pytest.mark.parametrize("payload,field", BAD_FIELDS, ids=["%s-%d" % (f, i) for i, (_, f) in enumerate(BAD_FIELDS)])
def test_create_field_validation(srv, alice, payload, field):
    r = srv.post("/api/workflows", json=payload, headers=H(alice))
    assert_validation(r, field)


@pytest.mark.parametrize("payload,field", BAD_UNDER, ids=["%s-%d" % (f, i) for i, (_, f) in enumerate(BAD_UNDER)])
def test_create_structured_field_validation(srv, alice, payload, field):
    r = srv.post("/api/workflows", json=payload, headers=H(alice))
    assert_validation_under(r, field)


def test_settings_timeout_field_path(srv, alice):
    r = srv.post("/api/workflows", json={"name": "ok", "settings": {"timeoutMs": 0, "maxConcurrency": 0}},
                 headers=H(alice))
    err = assert_validation_under(r, "settings")
    assert {"settings.timeoutMs", "settings.maxConcurrency"} <= detail_fields(err), err


def test_every_problem_is_reported_at_once(srv, alice):
    before = listing(srv, alice)["pagination"]["total"]
    payload = {"name": "", "description": 7, "status": "gone", "tags": ["ok", ""],
               "settings": {"timeoutMs": -1},
               "definition": {"nodes": [{"id": "a", "type": "nope", "config": {}}], "edges": []}}
    r = srv.post("/api/workflows", json=payload, headers=H(alice))
    err = assert_error(r, 400, "VALIDATION_ERROR")
    fields = detail_fields(err)
    for want in ("name", "description", "status"):
        assert want in fields, (want, err)
    for prefix in ("tags", "settings", "definition.nodes[0].type"):
        assert any(f == prefix or f.startswith(prefix + ".") or f.startswith(prefix + "[") for f in fields), \
            (prefix, err)
    for d in err["details"]:
        assert isinstance(d.get("message"), str) and d["message"], d
    # nothing was created
    assert listing(srv, alice)["pagination"]["total"] == before


@pytest.mark.parametrize("wid", [UNKNOWN_ID, "not-a-uuid", "x" * 64])
def test_get_unknown_404(srv, alice, wid):
    assert_error(srv.get("/api/workflows/%s" % wid, headers=H(alice)), 404, "NOT_FOUND")


def test_unauthenticated_401(srv, alice):
    w = create(srv, alice, name="private")
    for method, path in [("GET", "/api/workflows"), ("POST", "/api/workflows"),
                         ("GET", "/api/workflows/%s" % w["id"]), ("PUT", "/api/workflows/%s" % w["id"]),
                         ("DELETE", "/api/workflows/%s" % w["id"]),
                         ("POST", "/api/workflows/%s/duplicate" % w["id"]),
                         ("GET", "/api/workflows/%s/versions" % w["id"]),
                         ("GET", "/api/workflows/%s/versions/1" % w["id"]),
                         ("GET", "/api/workflows/analytics/summary")]:
        kw = {"json": {"name": "x"}} if method in ("POST", "PUT") else {}
        r = srv.request(method, path, **kw)
        assert_error(r, 401, "UNAUTHORIZED")
    assert get(srv, alice, w["id"])["version"] == 1


def test_405_on_known_path(srv, alice):
    w = create(srv, alice, name="m")
    r = srv.request("PATCH", "/api/workflows/%s" % w["id"], json={"name": "y"}, headers=H(alice))
    assert_error(r, 405, "METHOD_NOT_ALLOWED")
    allow = {m.strip() for m in r.headers.get("Allow", "").split(",")}
    assert {"GET", "PUT", "DELETE"} <= allow, r.headers.get("Allow")
    assert get(srv, alice, w["id"])["name"] == "m"


# ---------------------------------------------------------------- update

def test_put_changes_only_the_fields_present(srv, alice, adm):
    w = create(srv, alice, name="Orig", description="desc", tags=["a", "b"], status="active",
               definition=FULL_DEF, settings={"timeoutMs": 1000})
    time.sleep(0.005)
    u = update(srv, alice, w["id"], description="new desc")
    check_workflow(u, alice["user"]["id"])
    assert u["description"] == "new desc"
    for k in ("id", "name", "tags", "status", "definition", "settings", "ownerId", "permissions", "analytics",
              "createdAt", "createdBy"):
        assert u[k] == w[k], k
    assert u["version"] == 2
    assert parse_ts(u["updatedAt"]) > parse_ts(w["updatedAt"])
    assert get(srv, alice, w["id"]) == u
    # an admin's update records the admin as updatedBy; the owner stays
    time.sleep(0.005)
    u2 = update(srv, adm, w["id"], name="Renamed", tags=[], status="archived",
                definition={"nodes": [], "edges": []}, settings={})
    assert u2["name"] == "Renamed" and u2["tags"] == [] and u2["status"] == "archived"
    assert u2["definition"] == {"nodes": [], "edges": []} and u2["settings"] == {}
    assert u2["description"] == "new desc"
    assert u2["updatedBy"] == adm["user"]["id"] and u2["ownerId"] == alice["user"]["id"]
    assert u2["createdBy"] == alice["user"]["id"]
    assert u2["version"] == 3
    assert get(srv, alice, w["id"]) == u2


def test_put_empty_body_still_adds_one_to_version(srv, alice):
    w = create(srv, alice, name="Same")
    u = update(srv, alice, w["id"])
    assert u["version"] == 2
    u = update(srv, alice, w["id"], name="Same")
    assert u["version"] == 3 and u["name"] == "Same"
    r = srv.request("PUT", "/api/workflows/%s" % w["id"], headers=H(alice))   # no body at all
    assert r.status_code in (200, 400), r.text
    if r.status_code == 200:
        assert r.json()["version"] == 4


def test_put_ignores_fields_the_caller_may_not_set(srv, alice):
    other = register(srv)
    w = create(srv, alice, name="Keep")
    u = update(srv, alice, w["id"], id=UNKNOWN_ID, ownerId=other["user"]["id"],
               analytics={"executionCount": 5}, createdAt="2020-01-01T00:00:00.000Z",
               updatedAt="2020-01-01T00:00:00.000Z", createdBy=other["user"]["id"],
               updatedBy=other["user"]["id"], unknownField=True, description="changed")
    assert u["id"] == w["id"] and u["ownerId"] == alice["user"]["id"]
    assert u["analytics"] == ZERO_ANALYTICS
    assert u["createdAt"] == w["createdAt"] and u["updatedAt"] != "2020-01-01T00:00:00.000Z"
    assert u["createdBy"] == alice["user"]["id"] and u["updatedBy"] == alice["user"]["id"]
    assert u["description"] == "changed" and u["version"] == 2
    assert "unknownField" not in u
    # sending back what was read is fine
    u2 = update(srv, alice, w["id"], **{k: v for k, v in u.items()})
    assert u2["version"] == 3


@pytest.mark.parametrize("payload,field", BAD_FIELDS[1:] + [({"version": 0}, "version"), ({"version": -1}, "version"),
                                                         ({"version": "1"}, "version"), ({"version": 1.5}, "version"),
                                                         ({"version": True}, "version")],
                         ids=lambda x: str(x)[:40] if not isinstance(x, dict) else None)
def test_put_field_validation_changes_nothing(srv, alice, payload, field):
    w = create(srv, alice, name="Valid", description="kept")
    r = put(srv, w["id"], payload, H(alice))
    assert_validation(r, field)
    assert get(srv, alice, w["id"]) == w


@pytest.mark.parametrize("payload,field", BAD_UNDER)
def test_put_structured_field_validation_changes_nothing(srv, alice, payload, field):
    w = create(srv, alice, name="Valid")
    payload = dict(payload)
    payload.pop("name")
    r = put(srv, w["id"], payload, H(alice))
    assert_validation_under(r, field)
    assert get(srv, alice, w["id"]) == w


def test_put_reports_every_problem_at_once(srv, alice):
    w = create(srv, alice, name="Valid")
    r = put(srv, w["id"], {"name": "x" * 201, "description": None, "status": "nope", "version": 0,
                           "definition": {"nodes": [{"id": "a", "type": "delay", "config": {"ms": -1}}]}}, H(alice))
    err = assert_error(r, 400, "VALIDATION_ERROR")
    fields = detail_fields(err)
    for want in ("name", "status", "version", "definition.nodes[0].config.ms"):
        assert want in fields, (want, err)
    assert get(srv, alice, w["id"]) == w


def test_put_unknown_workflow_404(srv, alice):
    assert_error(put(srv, UNKNOWN_ID, {"name": "x"}, H(alice)), 404, "NOT_FOUND")


# ---------------------------------------------------------------- definition validation

def node(nid, ntype, **extra):
    n = {"id": nid, "type": ntype}
    n.update(extra)
    return n


def T(nid, **extra):
    return node(nid, "transform", config={"output": "x"}, **extra)


BAD_DEFS = [
    # (definition, field, exact?)
    ({"nodes": [T("a"), T("a")]}, "definition.nodes[1].id", True),
    ({"nodes": [node("a", "python", config={})]}, "definition.nodes[0].type", True),
    ({"nodes": [node("a", None, config={})]}, "definition.nodes[0].type", True),
    ({"nodes": [{"type": "transform", "config": {"output": 1}}]}, "definition.nodes[0].id", True),
    ({"nodes": [T("")]}, "definition.nodes[0].id", True),
    ({"nodes": [T("has space")]}, "definition.nodes[0].id", True),
    ({"nodes": [T("dot.ted")]}, "definition.nodes[0].id", True),
    ({"nodes": [T("a" * 65)]}, "definition.nodes[0].id", True),
    ({"nodes": [T(7)]}, "definition.nodes[0].id", True),
    ({"nodes": [T("a", name="n" * 201)]}, "definition.nodes[0].name", True),
    ({"nodes": [node("a", "transform", config=[])]}, "definition.nodes[0].config", True),
    ({"nodes": [node("a", "transform", config="x")]}, "definition.nodes[0].config", True),
    ({"nodes": ["a"]}, "definition.nodes[0]", False),
    ({"nodes": [T("a", retry={"maxAttempts": 0, "backoffMs": 0})]}, "definition.nodes[0].retry.maxAttempts", True),
    ({"nodes": [T("a", retry={"maxAttempts": 11, "backoffMs": 0})]}, "definition.nodes[0].retry.maxAttempts", True),
    ({"nodes": [T("a", retry={"maxAttempts": 2.5, "backoffMs": 0})]}, "definition.nodes[0].retry.maxAttempts", True),
    ({"nodes": [T("a", retry={"maxAttempts": 2, "backoffMs": 600001})]}, "definition.nodes[0].retry.backoffMs", True),
    ({"nodes": [T("a", retry={"maxAttempts": 2, "backoffMs": -1})]}, "definition.nodes[0].retry.backoffMs", True),
    ({"nodes": [T("a", timeoutMs=0)]}, "definition.nodes[0].timeoutMs", True),
    ({"nodes": [T("a", timeoutMs=3600001)]}, "definition.nodes[0].timeoutMs", True),
    ({"nodes": [T("a", timeoutMs=1.5)]}, "definition.nodes[0].timeoutMs", True),
    ({"nodes": [T("a", timeoutMs="100")]}, "definition.nodes[0].timeoutMs", True),
    # transform
    ({"nodes": [node("a", "transform", config={})]}, "definition.nodes[0].config.output", True),
    ({"nodes": [node("a", "transform", config={"output": "{{input.x"})]}, "definition.nodes[0].config.output", False),
    ({"nodes": [node("a", "transform", config={"output": {"deep": ["{{secret.x}}"]}})]},
     "definition.nodes[0].config.output", False),
    # condition
    ({"nodes": [node("a", "condition", config={"left": 1, "op": "like", "right": 2})]},
     "definition.nodes[0].config.op", True),
    ({"nodes": [node("a", "condition", config={"left": 1, "right": 2})]}, "definition.nodes[0].config.op", True),
    ({"nodes": [node("a", "condition", config={"op": "eq", "right": 2})]}, "definition.nodes[0].config.left", True),
    ({"nodes": [node("a", "condition", config={"left": 1, "op": "eq"})]}, "definition.nodes[0].config.right", True),
    ({"nodes": [node("a", "condition", config={"left": "{{input.a", "op": "exists"})]},
     "definition.nodes[0].config.left", False),
    # http
    ({"nodes": [node("a", "http", config={"method": "GET"})]}, "definition.nodes[0].config.url", True),
    ({"nodes": [node("a", "http", config={"url": "ftp://example.com/x"})]}, "definition.nodes[0].config.url", True),
    ({"nodes": [node("a", "http", config={"url": "example.com"})]}, "definition.nodes[0].config.url", True),
    ({"nodes": [node("a", "http", config={"url": "https://e.com/" + "p" * 8192})]},
     "definition.nodes[0].config.url", True),
    ({"nodes": [node("a", "http", config={"url": 5})]}, "definition.nodes[0].config.url", True),
    ({"nodes": [node("a", "http", config={"url": "https://e.com", "method": "FETCH"})]},
     "definition.nodes[0].config.method", True),
    ({"nodes": [node("a", "http", config={"url": "https://e.com", "method": "get"})]},
     "definition.nodes[0].config.method", True),
    ({"nodes": [node("a", "http", config={"url": "https://e.com", "headers": {"X-A": 1}})]},
     "definition.nodes[0].config.headers", False),
    ({"nodes": [node("a", "http", config={"url": "https://e.com", "headers": ["X-A: 1"]})]},
     "definition.nodes[0].config.headers", False),
    ({"nodes": [node("a", "http", config={"url": "https://e.com",
                                          "headers": {"H%d" % i: "v" for i in range(101)}})]},
     "definition.nodes[0].config.headers", False),
    ({"nodes": [node("a", "http", config={"url": "https://e.com", "timeoutMs": 0})]},
     "definition.nodes[0].config.timeoutMs", True),
    ({"nodes": [node("a", "http", config={"url": "https://e.com", "timeoutMs": 300001})]},
     "definition.nodes[0].config.timeoutMs", True),
    # llm
    ({"nodes": [node("a", "llm", config={"messages": [{"role": "user", "content": "hi"}]})]},
     "definition.nodes[0].config.model", True),
    ({"nodes": [node("a", "llm", config={"model": "m", "messages": []})]},
     "definition.nodes[0].config.messages", False),
    ({"nodes": [node("a", "llm", config={"model": "m"})]}, "definition.nodes[0].config.messages", False),
    ({"nodes": [node("a", "llm", config={"model": "m", "messages": [{"role": "robot", "content": "hi"}]})]},
     "definition.nodes[0].config.messages", False),
    ({"nodes": [node("a", "llm", config={"model": "m", "messages": [{"role": "user", "content": 5}]})]},
     "definition.nodes[0].config.messages", False),
    ({"nodes": [node("a", "llm", config={"model": "m",
                                         "messages": [{"role": "user", "content": "x"}] * 101})]},
     "definition.nodes[0].config.messages", False),
    ({"nodes": [node("a", "llm", config={"model": "m", "messages": [{"role": "user", "content": "x"}],
                                         "temperature": 2.5})]}, "definition.nodes[0].config.temperature", True),
    ({"nodes": [node("a", "llm", config={"model": "m", "messages": [{"role": "user", "content": "x"}],
                                         "temperature": -0.1})]}, "definition.nodes[0].config.temperature", True),
    ({"nodes": [node("a", "llm", config={"model": "m", "messages": [{"role": "user", "content": "x"}],
                                         "maxTokens": 0})]}, "definition.nodes[0].config.maxTokens", True),
    ({"nodes": [node("a", "llm", config={"model": "m", "messages": [{"role": "user", "content": "x"}],
                                         "maxTokens": 1000001})]}, "definition.nodes[0].config.maxTokens", True),
    # delay
    ({"nodes": [node("a", "delay", config={"ms": -1})]}, "definition.nodes[0].config.ms", True),
    ({"nodes": [node("a", "delay", config={"ms": 86400001})]}, "definition.nodes[0].config.ms", True),
    ({"nodes": [node("a", "delay", config={"ms": 1.5})]}, "definition.nodes[0].config.ms", True),
    ({"nodes": [node("a", "delay", config={"ms": "10"})]}, "definition.nodes[0].config.ms", True),
    # edges
    ({"nodes": [T("a")], "edges": [{"from": "a", "to": "ghost"}]}, "definition.edges[0].to", True),
    ({"nodes": [T("a")], "edges": [{"from": "ghost", "to": "a"}]}, "definition.edges[0].from", True),
    ({"nodes": [T("a")], "edges": [{"to": "a"}]}, "definition.edges[0].from", True),
    ({"nodes": [T("a")], "edges": [{"from": "a", "to": "a"}]}, "definition.edges[0]", False),
    ({"nodes": [T("a"), T("b")], "edges": [{"from": "a", "to": "b"}, {"from": "a", "to": "b"}]},
     "definition.edges[1]", False),
    ({"nodes": [T("a"), T("b")], "edges": [{"from": "a", "to": "b", "when": True}]}, "definition.edges[0].when", True),
    ({"nodes": [node("c", "condition", config={"left": 1, "op": "eq", "right": 1}), T("b")],
      "edges": [{"from": "c", "to": "b", "when": "yes"}]}, "definition.edges[0].when", True),
    ({"nodes": [T("a")], "edges": "a->b"}, "definition.edges", False),
    ({"nodes": [T("a")], "edges": ["a"]}, "definition.edges[0]", False),
    # templates naming a node that is not an ancestor (its output cannot exist yet)
    ({"nodes": [T("a"), node("b", "transform", config={"output": "{{nodes.c.output.x}}"}), T("c")],
      "edges": [{"from": "a", "to": "b"}, {"from": "a", "to": "c"}]}, "definition.nodes[1].config.output", False),
    ({"nodes": [node("b", "transform", config={"output": "{{nodes.b.output.x}}"})]},
     "definition.nodes[0].config.output", False),
    ({"nodes": [node("b", "transform", config={"output": "{{nodes.nope.output}}"})]},
     "definition.nodes[0].config.output", False),
    ({"nodes": [T("a"), node("b", "http", config={"url": "https://e.com/{{nodes.c.output}}"}), T("c")],
      "edges": [{"from": "a", "to": "b"}, {"from": "b", "to": "c"}]}, "definition.nodes[1].config.url", False),
    # templates in every place that takes them
    ({"nodes": [node("h", "http", config={"url": "https://e.com", "headers": {"X-A": "{{env.SECRET}}"}})]},
     "definition.nodes[0].config.headers", False),
    ({"nodes": [node("h", "http", config={"url": "https://e.com", "body": {"k": ["{{input.x"]}})]},
     "definition.nodes[0].config.body", False),
    ({"nodes": [node("l", "llm", config={"model": "{{input.m", "messages": [{"role": "user", "content": "x"}]})]},
     "definition.nodes[0].config.model", False),
    ({"nodes": [T("a"), node("l", "llm", config={"model": "m", "messages": [
        {"role": "user", "content": "ok {{input.q}}"}, {"role": "user", "content": "{{nodes.z.output}}"}]}), T("z")],
      "edges": [{"from": "a", "to": "l"}, {"from": "l", "to": "z"}]}, "definition.nodes[1].config.messages", False),
    ({"nodes": [node("c", "condition", config={"left": 1, "op": "eq", "right": "{{foo}}"})]},
     "definition.nodes[0].config.right", False),
    # numbers that must be integers must be JSON integers
    ({"nodes": [T("a", retry={"maxAttempts": 2.0, "backoffMs": 0})]}, "definition.nodes[0].retry.maxAttempts", True),
    ({"nodes": [node("a", "delay", config={"ms": 10.0})]}, "definition.nodes[0].config.ms", True),
    ({"nodes": [node("a", "http", config={"url": "https://e.com", "timeoutMs": 100.0})]},
     "definition.nodes[0].config.timeoutMs", True),
    ({"nodes": [node("a", "llm", config={"model": "m", "messages": [{"role": "user", "content": "x"}],
                                         "maxTokens": 10.0})]}, "definition.nodes[0].config.maxTokens", True),
]


def _def_id(case):
    d, field, _ = case
    return field.replace("definition.", "")


@pytest.mark.parametrize("definition,field,exact", BAD_DEFS, ids=[_def_id(c) for c in BAD_DEFS])
def test_definition_validation(srv, alice, definition, field, exact):
    r = srv.post("/api/workflows", json={"name": "bad def", "definition": definition}, headers=H(alice))
    if exact:
        err = assert_validation(r, field)
    else:
        err = assert_validation_under(r, field)
    for d in err["details"]:
        assert d["field"].startswith("definition"), err
        assert isinstance(d.get("message"), str) and d["message"], err


def test_definition_problem_messages_name_the_node_or_edge(srv, alice):
    d = {"nodes": [T("first"), T("second"), T("third"), node("fourth_node", "delay", config={"ms": -5})],
         "edges": [{"from": "first", "to": "second"}, {"from": "second", "to": "missing_node"}]}
    r = srv.post("/api/workflows", json={"name": "x", "definition": d}, headers=H(alice))
    err = assert_error(r, 400, "VALIDATION_ERROR")
    ms = detail_for(err, "definition.nodes[3].config.ms")
    assert ms and "fourth_node" in ms[0]["message"], err
    to = detail_for(err, "definition.edges[1].to")
    assert to and "missing_node" in to[0]["message"], err
    # only the real problems are reported (the valid nodes are not named)
    assert not any(f.startswith("definition.nodes[0]") or f.startswith("definition.nodes[1]")
                   or f.startswith("definition.nodes[2]") for f in detail_fields(err)), err


def test_definition_every_problem_at_once(srv, alice):
    d = {"nodes": [node("a", "python", config={}),
                   node("b", "http", config={"url": "ftp://x"}),
                   T("b"),
                   node("d", "delay", config={"ms": -1})],
         "edges": [{"from": "a", "to": "zz"}, {"from": "d", "to": "b", "when": False}]}
    r = srv.post("/api/workflows", json={"name": "x", "definition": d}, headers=H(alice))
    err = assert_error(r, 400, "VALIDATION_ERROR")
    fields = detail_fields(err)
    for want in ("definition.nodes[0].type", "definition.nodes[1].config.url", "definition.nodes[2].id",
                 "definition.nodes[3].config.ms", "definition.edges[0].to", "definition.edges[1].when"):
        assert want in fields, (want, sorted(fields))


def test_definition_cycle_is_named(srv, alice):
    d = {"nodes": [T("a"), T("b"), T("c")],
         "edges": [{"from": "a", "to": "b"}, {"from": "b", "to": "c"}, {"from": "c", "to": "a"}]}
    r = srv.post("/api/workflows", json={"name": "cyclic", "definition": d}, headers=H(alice))
    err = assert_validation_under(r, "definition")
    msgs = [x["message"] for x in err["details"]]
    cyc = [m for m in msgs if "cycle" in m]
    assert cyc, err
    # the named cycle goes through the three nodes and comes back to where it started
    m = cyc[0]
    path = [p.strip().strip('"') for p in m.split("cycle", 1)[1].lstrip(": ").split("->")]
    assert len(path) == 4 and path[0] == path[-1] and set(path) == {"a", "b", "c"}, m


def test_definition_two_node_cycle(srv, alice):
    d = {"nodes": [T("start"), T("x"), T("y")],
         "edges": [{"from": "start", "to": "x"}, {"from": "x", "to": "y"}, {"from": "y", "to": "x"}]}
    r = srv.post("/api/workflows", json={"name": "cyclic", "definition": d}, headers=H(alice))
    err = assert_validation_under(r, "definition")
    assert any("cycle" in x["message"] for x in err["details"]), err


def test_definition_node_limit(srv, alice):
    nodes = [node("n%d" % i, "delay", config={"ms": 0}) for i in range(500)]
    w = create(srv, alice, name="500 nodes", definition={"nodes": nodes, "edges": []})
    assert len(w["definition"]["nodes"]) == 500
    nodes.append(node("n500", "delay", config={"ms": 0}))
    r = srv.post("/api/workflows", json={"name": "501 nodes", "definition": {"nodes": nodes, "edges": []}},
                 headers=H(alice))
    assert_validation_under(r, "definition.nodes")


def test_definition_edge_limit(srv, alice):
    nodes = [node("n%d" % i, "delay", config={"ms": 0}) for i in range(101)]
    pairs = [(i, j) for i in range(101) for j in range(i + 1, 101)]
    edges = [{"from": "n%d" % i, "to": "n%d" % j} for i, j in pairs[:5000]]
    w = create(srv, alice, name="5000 edges", definition={"nodes": nodes, "edges": edges})
    assert len(w["definition"]["edges"]) == 5000
    edges.append({"from": "n%d" % pairs[5000][0], "to": "n%d" % pairs[5000][1]})
    r = srv.post("/api/workflows", json={"name": "5001 edges", "definition": {"nodes": nodes, "edges": edges}},
                 headers=H(alice))
    assert_validation_under(r, "definition.edges")


def test_definition_problems_are_capped_at_100(srv, alice):
    nodes = [node("n%d" % i, "delay", config={"ms": -1}) for i in range(150)]
    r = srv.post("/api/workflows", json={"name": "many", "definition": {"nodes": nodes}}, headers=H(alice))
    err = assert_error(r, 400, "VALIDATION_ERROR")
    assert 1 <= len(err["details"]) <= 100, len(err["details"])
    assert "definition.nodes[0].config.ms" in detail_fields(err)


@pytest.mark.parametrize("definition", [
    {"nodes": [node("c", "condition", config={"left": "{{input.v}}", "op": op, "right": 1}), T("t"), T("f")],
     "edges": [{"from": "c", "to": "t", "when": True}, {"from": "c", "to": "f", "when": False}]}
    for op in ("eq", "ne", "gt", "gte", "lt", "lte", "contains", "exists")
] + [
    {"nodes": [node("h", "http", config={"url": "http://example.com", "method": m})]}
    for m in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
] + [
    {"nodes": [T("A-Z_a-z0-9" + "x" * 54)]},
    {"nodes": [node("d", "delay", config={"ms": 86400000}, retry={"maxAttempts": 10, "backoffMs": 600000},
                    timeoutMs=3600000)]},
    {"nodes": [node("d", "delay", config={"ms": 0}, retry={"maxAttempts": 1, "backoffMs": 0}, timeoutMs=1)]},
    {"nodes": [node("l", "llm", config={"model": "{{input.model}}", "messages": [{"role": "assistant", "content": ""}],
                                        "temperature": 0, "maxTokens": 1000000})]},
    {"nodes": [node("l", "llm", config={"model": "m", "messages": [{"role": "user", "content": "x"}] * 100,
                                        "temperature": 2, "maxTokens": 1})]},
    {"nodes": [node("h", "http", config={"url": "https://e.com", "headers": {"H%d" % i: "v" for i in range(100)},
                                         "timeoutMs": 300000, "body": [1, {"a": "{{input.b}}"}]})]},
    {"nodes": [T("a"), T("b"), node("c", "transform", config={"output": "{{nodes.a.output}}-{{ nodes.b.output.x }}"})],
     "edges": [{"from": "a", "to": "b"}, {"from": "b", "to": "c"}]},
], ids=lambda d: "-".join(n["type"] + ":" + n["id"][:10] for n in d["nodes"])[:60])
def test_valid_definitions_accepted(srv, alice, definition):
    w = create(srv, alice, name="valid", definition=definition)
    assert w["definition"]["nodes"] == definition["nodes"]


def test_definition_validated_on_update(srv, alice):
    w = create(srv, alice, name="Update def", definition=FULL_DEF)
    bad = copy.deepcopy(FULL_DEF)
    bad["edges"].append({"from": "wait-1", "to": "start"})    # closes a cycle
    bad["nodes"][2]["config"]["url"] = "gopher://old"
    r = put(srv, w["id"], {"definition": bad}, H(alice))
    err = assert_error(r, 400, "VALIDATION_ERROR")
    assert "definition.nodes[2].config.url" in detail_fields(err), err
    assert any("cycle" in d["message"] for d in err["details"]), err
    assert get(srv, alice, w["id"]) == w
    good = copy.deepcopy(FULL_DEF)
    good["nodes"].append(node("late", "delay", config={"ms": 5}))
    good["edges"].append({"from": "wait-1", "to": "late"})
    u = update(srv, alice, w["id"], definition=good)
    assert u["definition"] == good and u["version"] == 2


# ---------------------------------------------------------------- lists

@pytest.fixture(scope="module")
def catalog(srv):
    """A user with five workflows. Created in the order bravo, delta, alpha, echo, charlie;
    alpha and then bravo updated afterwards."""
    owner = register(srv, name="Lister")
    specs = [
        ("bravo", dict(name="Bravo pipeline", status="draft", tags=["etl", "nightly"],
                       description="Moves rows every night")),
        ("delta", dict(name="Delta", status="active", tags=["nightly", "report"], description="holds the NEEDLE")),
        ("alpha", dict(name="Alpha report", status="active", tags=["report"], description="Weekly summary")),
        ("echo", dict(name="Echo", status="draft", tags=[], description="Straße und Übungen")),
        ("charlie", dict(name="Charlie Ünïcode flow", status="archived", tags=["etl"], description="")),
    ]
    made = {}
    for key, spec in specs:
        made[key] = create(srv, owner, **spec)
        time.sleep(0.004)
    for key in ("alpha", "bravo"):
        made[key] = update(srv, owner, made[key]["id"], description=made[key]["description"] + ".")
        time.sleep(0.004)
    by_id = {w["id"]: k for k, w in made.items()}
    return owner, made, by_id


def keys(body, by_id):
    return [by_id.get(w["id"], "?") for w in body["data"]]


def test_list_shape_and_items_omit_definition(srv, catalog):
    owner, made, by_id = catalog
    r = srv.get("/api/workflows", headers=H(owner))
    assert r.status_code == 200, r.text
    assert_security_headers(r)
    body = r.json()
    assert set(body) == {"data", "pagination"}
    assert body["pagination"] == {"page": 1, "limit": 20, "total": 5, "totalPages": 1}
    assert len(r.content) > 1024 and r.headers.get("Content-Encoding") == "gzip", r.headers
    assert len(body["data"]) == 5
    for item in body["data"]:
        assert "definition" not in item, item
        assert set(item) == WF_KEYS - {"definition"}, sorted(item)
        full = dict(made[by_id[item["id"]]])
        full.pop("definition")
        assert item == full


def test_list_default_order_is_newest_first(srv, catalog):
    owner, made, by_id = catalog
    assert keys(listing(srv, owner), by_id) == ["charlie", "echo", "alpha", "delta", "bravo"]


@pytest.mark.parametrize("sort,order", [
    ("createdAt", ["bravo", "delta", "alpha", "echo", "charlie"]),
    ("-createdAt", ["charlie", "echo", "alpha", "delta", "bravo"]),
    ("updatedAt", ["delta", "echo", "charlie", "alpha", "bravo"]),
    ("-updatedAt", ["bravo", "alpha", "charlie", "echo", "delta"]),
    ("name", ["alpha", "bravo", "charlie", "delta", "echo"]),
    ("-name", ["echo", "delta", "charlie", "bravo", "alpha"]),
])
def test_list_sort(srv, catalog, sort, order):
    owner, made, by_id = catalog
    assert keys(listing(srv, owner, sort=sort), by_id) == order


@pytest.mark.parametrize("params,expected", [
    ({"status": "active"}, {"delta", "alpha"}),
    ({"status": "draft"}, {"bravo", "echo"}),
    ({"status": "archived"}, {"charlie"}),
    ({"tag": "etl"}, {"bravo", "charlie"}),
    ({"tag": "nightly"}, {"bravo", "delta"}),
    ({"tag": "report"}, {"delta", "alpha"}),
    ({"tag": "et"}, set()),
    ({"tag": "etl,nightly"}, set()),
    ({"tag": "ETL"}, set()),
    ({"status": "draft", "tag": "nightly"}, {"bravo"}),
    ({"status": "active", "tag": "etl"}, set()),
    ({"search": "needle"}, {"delta"}),
    ({"search": "PIPELINE"}, {"bravo"}),
    ({"search": "report"}, {"alpha"}),
    ({"search": "weekly SUMMARY"}, {"alpha"}),
    ({"search": "night"}, {"bravo"}),
    ({"search": "e"}, {"bravo", "delta", "alpha", "echo", "charlie"}),
    ({"search": "e", "status": "archived"}, {"charlie"}),
    ({"search": "a", "tag": "report", "status": "active"}, {"delta", "alpha"}),
    ({"search": "%"}, set()),
    ({"search": "_"}, set()),
    ({"search": "'"}, set()),
    ({"search": "nothing-like-this"}, set()),
    # a substring of the name or of the description, not of the two run together
    ({"search": "delta\nholds"}, set()),
    ({"search": "delta holds"}, set()),
    ({"search": "\n"}, set()),
], ids=lambda v: ("&".join("%s=%s" % kv for kv in v.items()).replace("\n", "NL") if isinstance(v, dict)
                 else "n%d" % len(v)))
def test_list_filters(srv, catalog, params, expected):
    owner, made, by_id = catalog
    body = listing(srv, owner, **params)
    assert set(keys(body, by_id)) == expected, body
    assert body["pagination"]["total"] == len(expected)


@pytest.mark.parametrize("q", ["Ünïcode", "ünïcode", "ÜNÏCODE", "üNïCoDe flow"])
def test_list_search_non_ascii_case_insensitive_in_name(srv, catalog, q):
    owner, made, by_id = catalog
    assert keys(listing(srv, owner, search=q), by_id) == ["charlie"]


@pytest.mark.parametrize("q", ["Übungen", "übungen", "ÜBUNGEN", "straße", "STRAßE"])
def test_list_search_non_ascii_case_insensitive_in_description(srv, catalog, q):
    owner, made, by_id = catalog
    assert keys(listing(srv, owner, search=q), by_id) == ["echo"]


def test_list_owner_filter(srv, catalog, adm):
    owner, made, by_id = catalog
    assert set(keys(listing(srv, owner, ownerId=owner["user"]["id"]), by_id)) == set(made)
    # the admin sees every workflow; ownerId narrows it to the owner's
    b = listing(srv, adm, ownerId=owner["user"]["id"])
    assert set(keys(b, by_id)) == set(made) and b["pagination"]["total"] == 5
    b = listing(srv, adm, ownerId=owner["user"]["id"], status="archived")
    assert keys(b, by_id) == ["charlie"]
    # another owner's id, or an unknown one, yields nothing for this user
    other = register(srv)
    create(srv, other, name="not listers")
    assert listing(srv, owner, ownerId=other["user"]["id"])["pagination"]["total"] == 0
    assert listing(srv, other, ownerId=owner["user"]["id"])["pagination"]["total"] == 0
    assert listing(srv, adm, ownerId=UNKNOWN_ID)["pagination"]["total"] == 0
    assert listing(srv, adm, ownerId=other["user"]["id"])["pagination"]["total"] == 1


def test_non_admin_sees_only_own_or_named(srv, catalog, adm):
    owner, made, by_id = catalog
    other = register(srv)
    assert listing(srv, other)["pagination"]["total"] == 0
    mine = create(srv, other, name="mine")
    b = listing(srv, other)
    assert ids(b) == [mine["id"]]
    # the admin's list holds both users' workflows
    all_ids = set()
    page = 1
    while True:
        b = listing(srv, adm, limit=100, page=page)
        all_ids |= set(ids(b))
        if page >= b["pagination"]["totalPages"]:
            break
        page += 1
    assert mine["id"] in all_ids and set(w["id"] for w in made.values()) <= all_ids


def test_list_pagination(srv, catalog):
    owner, made, by_id = catalog
    b1 = listing(srv, owner, sort="name", limit=2)
    assert b1["pagination"] == {"page": 1, "limit": 2, "total": 5, "totalPages": 3}
    assert keys(b1, by_id) == ["alpha", "bravo"]
    b2 = listing(srv, owner, sort="name", limit=2, page=2)
    assert keys(b2, by_id) == ["charlie", "delta"]
    assert b2["pagination"] == {"page": 2, "limit": 2, "total": 5, "totalPages": 3}
    b3 = listing(srv, owner, sort="name", limit=2, page=3)
    assert keys(b3, by_id) == ["echo"]
    b4 = listing(srv, owner, sort="name", limit=2, page=4)
    assert b4 == {"data": [], "pagination": {"page": 4, "limit": 2, "total": 5, "totalPages": 3}}
    b = listing(srv, owner, page=999999)
    assert b == {"data": [], "pagination": {"page": 999999, "limit": 20, "total": 5, "totalPages": 1}}
    b = listing(srv, owner, limit=1, page=5, sort="-createdAt")
    assert keys(b, by_id) == ["bravo"] and b["pagination"]["totalPages"] == 5
    b = listing(srv, owner, limit=100)
    assert b["pagination"] == {"page": 1, "limit": 100, "total": 5, "totalPages": 1}


def test_default_limit_is_20(srv):
    owner = register(srv)
    made = [create(srv, owner, name="many %02d" % i)["id"] for i in range(23)]
    b = listing(srv, owner)
    assert b["pagination"] == {"page": 1, "limit": 20, "total": 23, "totalPages": 2}
    assert len(b["data"]) == 20
    b2 = listing(srv, owner, page=2)
    assert b2["pagination"] == {"page": 2, "limit": 20, "total": 23, "totalPages": 2}
    assert len(b2["data"]) == 3
    assert set(ids(b) + ids(b2)) == set(made)


def test_pages_do_not_overlap_when_sort_values_tie(srv):
    owner = register(srv)
    made = {create(srv, owner, name="Same name")["id"] for _ in range(7)}
    for sort in ("name", "-name", "createdAt", "-createdAt", "updatedAt", "-updatedAt"):
        seen = []
        for page in (1, 2, 3, 4):
            seen += ids(listing(srv, owner, limit=2, page=page, sort=sort))
        assert len(seen) == 7 and set(seen) == made, (sort, seen)


def test_empty_list_has_zero_total_pages(srv, catalog):
    owner, made, by_id = catalog
    fresh = register(srv)
    assert listing(srv, fresh) == {"data": [], "pagination": {"page": 1, "limit": 20, "total": 0, "totalPages": 0}}
    b = listing(srv, owner, search="no-such-workflow-anywhere", page=3, limit=5)
    assert b == {"data": [], "pagination": {"page": 3, "limit": 5, "total": 0, "totalPages": 0}}


@pytest.mark.parametrize("params", [
    {"limit": 0}, {"limit": 101}, {"limit": -1}, {"limit": "ten"}, {"limit": "1.5"},
    {"page": 0}, {"page": -1}, {"page": "two"}, {"page": "1.0"},
])
def test_list_paging_bounds_400(srv, catalog, params):
    owner, _, _ = catalog
    r = srv.get("/api/workflows", headers=H(owner), params=params)
    assert_error(r, 400, "VALIDATION_ERROR")


@pytest.mark.parametrize("sort", ["version", "-status", "description", "ownerId", "--name", "Name",
                                  "name,createdAt"])
def test_list_unknown_sort_400(srv, catalog, sort):
    owner, _, _ = catalog
    r = srv.get("/api/workflows", headers=H(owner), params={"sort": sort})
    assert_error(r, 400, "VALIDATION_ERROR")


@pytest.mark.parametrize("params", [{"status": "deleted"}, {"status": "Active"}, {"search": "s" * 201}])
def test_list_bad_filter_400(srv, catalog, params):
    owner, _, _ = catalog
    r = srv.get("/api/workflows", headers=H(owner), params=params)
    assert_error(r, 400, "VALIDATION_ERROR")


@pytest.mark.parametrize("query", ["search=%00x", "search=e%00", "tag=etl%00x", "status=draft%00x", "sort=name%00x",
                                   "limit=5%00x"])
def test_list_query_with_nul_400(srv, catalog, query):
    owner, _, _ = catalog
    assert_error(srv.get("/api/workflows?" + query, headers=H(owner)), 400, "VALIDATION_ERROR")


def test_list_limit_1_and_100_and_search_200(srv, catalog):
    owner, _, by_id = catalog
    assert listing(srv, owner, limit=1)["pagination"] == {"page": 1, "limit": 1, "total": 5, "totalPages": 5}
    assert listing(srv, owner, search="s" * 200)["pagination"]["total"] == 0


def test_list_reflects_updates_at_once(srv):
    owner = register(srv)
    w = create(srv, owner, name="Before", status="draft", tags=["x"])
    assert ids(listing(srv, owner, status="draft")) == [w["id"]]
    assert listing(srv, owner, tag="y")["pagination"]["total"] == 0
    update(srv, owner, w["id"], name="After", status="active", tags=["y"])
    assert listing(srv, owner, status="draft")["pagination"]["total"] == 0
    assert ids(listing(srv, owner, status="active")) == [w["id"]]
    assert ids(listing(srv, owner, tag="y")) == [w["id"]]
    assert listing(srv, owner, tag="x")["pagination"]["total"] == 0
    assert ids(listing(srv, owner, search="after")) == [w["id"]]
    assert listing(srv, owner, search="before")["pagination"]["total"] == 0
    item = listing(srv, owner)["data"][0]
    assert item["name"] == "After" and item["version"] == 2
    update(srv, owner, w["id"], description="Zebra stripes")
    assert ids(listing(srv, owner, search="ZEBRA")) == [w["id"]]
    update(srv, owner, w["id"], description="plain")
    assert listing(srv, owner, search="zebra")["pagination"]["total"] == 0


# ---------------------------------------------------------------- duplicate

def dup(srv, acct, wid, body=None, expect=201):
    kw = {"headers": H(acct)}
    if body is not None:
        kw["json"] = body
    r = srv.post("/api/workflows/%s/duplicate" % wid, **kw)
    assert r.status_code == expect, "duplicate: %d %s" % (r.status_code, r.text[:500])
    return r.json()


def test_duplicate_defaults(srv, alice, adm):
    editor = register(srv)
    viewer = register(srv)
    src = create(srv, alice, name="Source", description="the description", tags=["a", "b"], status="active",
                 definition=FULL_DEF, settings={"timeoutMs": 5000, "extra": [1, 2]})
    src = update(srv, alice, src["id"], permissions={"editors": [editor["user"]["id"]],
                                                     "viewers": [viewer["user"]["id"]]})
    assert src["version"] == 2
    r = srv.post("/api/workflows/%s/duplicate" % src["id"], headers=H(alice))   # no body at all
    assert r.status_code == 201, r.text
    assert_security_headers(r)
    c = check_workflow(r.json(), alice["user"]["id"])
    assert c["id"] != src["id"]
    assert c["name"] == "Source (copy)"
    for k in ("description", "tags", "status", "definition", "settings"):
        assert c[k] == src[k], k
    assert c["version"] == 1
    assert c["permissions"] == {"editors": [], "viewers": []}
    assert c["analytics"] == ZERO_ANALYTICS
    assert c["createdBy"] == alice["user"]["id"] and c["updatedBy"] == alice["user"]["id"]
    assert parse_ts(c["createdAt"]) >= parse_ts(src["updatedAt"])
    assert get(srv, alice, c["id"]) == c
    # the copy is found by its tags, status and name like any workflow
    for params in ({"tag": "a"}, {"tag": "b"}, {"status": "active"}, {"search": "source (COPY)"},
                   {"search": "THE DESCRIPTION"}):
        assert c["id"] in ids(listing(srv, alice, limit=100, **params)), params
    assert ids(listing(srv, alice, search="source (copy)")) == [c["id"]]
    # the source is unchanged; the copy has a history of its own
    assert get(srv, alice, src["id"]) == src
    v = srv.get("/api/workflows/%s/versions" % c["id"], headers=H(alice)).json()
    assert [x["version"] for x in v["data"]] == [1]
    # the source's editors and viewers do not see the copy
    assert_error(srv.get("/api/workflows/%s" % c["id"], headers=H(editor)), 404, "NOT_FOUND")
    assert_error(srv.get("/api/workflows/%s" % c["id"], headers=H(viewer)), 404, "NOT_FOUND")


def test_duplicate_by_another_reader_is_owned_by_the_caller(srv, alice, adm):
    viewer = register(srv)
    src = create(srv, alice, name="Shared")
    update(srv, alice, src["id"], permissions={"viewers": [viewer["user"]["id"]]})
    c = dup(srv, viewer, src["id"], {})
    assert c["ownerId"] == viewer["user"]["id"] and c["createdBy"] == viewer["user"]["id"]
    assert c["name"] == "Shared (copy)"
    assert ids(listing(srv, viewer, ownerId=viewer["user"]["id"])) == [c["id"]]
    c2 = dup(srv, adm, src["id"], {"name": "Admin's copy"})
    assert c2["ownerId"] == adm["user"]["id"] and c2["name"] == "Admin's copy"
    # a copy of a copy
    c3 = dup(srv, viewer, c["id"])
    assert c3["name"] == "Shared (copy) (copy)"


def test_duplicate_with_name(srv, alice):
    src = create(srv, alice, name="Named source")
    c = dup(srv, alice, src["id"], {"name": "Brand new"})
    assert c["name"] == "Brand new"
    c = dup(srv, alice, src["id"], {"name": "x" * 200})
    assert c["name"] == "x" * 200


@pytest.mark.parametrize("n", [193, 194, 199, 200])
def test_duplicate_shortens_long_names(srv, alice, n):
    name = "".join("abcdefghij"[i % 10] for i in range(n))
    src = create(srv, alice, name=name)
    c = dup(srv, alice, src["id"])
    assert c["name"] == name[:193] + " (copy)"
    assert len(c["name"]) == 200


def test_duplicate_default_name_short_enough_is_not_cut(srv, alice):
    src = create(srv, alice, name="n" * 192)
    assert dup(srv, alice, src["id"])["name"] == "n" * 192 + " (copy)"


@pytest.mark.parametrize("ch", ["é", "😀", "中"])
def test_duplicate_shortens_by_characters(srv, alice, ch):
    src = create(srv, alice, name=ch * 200)
    c = dup(srv, alice, src["id"])
    assert c["name"] == ch * 193 + " (copy)", c["name"]


@pytest.mark.parametrize("body,field", [({"name": ""}, "name"), ({"name": "x" * 201}, "name"), ({"name": 5}, "name"),
                                        ({"name": None}, "name")])
def test_duplicate_name_validation(srv, alice, body, field):
    src = create(srv, alice, name="dup validation")
    before = listing(srv, alice)["pagination"]["total"]
    r = srv.post("/api/workflows/%s/duplicate" % src["id"], json=body, headers=H(alice))
    assert_validation(r, field)
    assert listing(srv, alice)["pagination"]["total"] == before


def test_duplicate_unknown_404(srv, alice):
    assert_error(srv.post("/api/workflows/%s/duplicate" % UNKNOWN_ID, headers=H(alice)), 404, "NOT_FOUND")


# ---------------------------------------------------------------- soft delete

def test_delete_is_soft_and_404_everywhere(srv, alice, adm):
    editor = register(srv)
    w = create(srv, alice, name="Doomed unique-%s" % uuid.uuid4().hex[:8], tags=["doomed"])
    update(srv, alice, w["id"], permissions={"editors": [editor["user"]["id"]]})
    assert w["id"] in ids(listing(srv, alice, limit=100))
    before_admin = listing(srv, adm, ownerId=alice["user"]["id"], limit=100)
    assert w["id"] in ids(before_admin)
    r = delete(srv, "/api/workflows/%s" % w["id"], headers=H(adm))
    assert r.status_code == 204, r.text
    assert r.content == b""
    assert_security_headers(r)
    wid = w["id"]
    for acct in (alice, adm, editor):
        h = H(acct)
        assert_error(srv.get("/api/workflows/%s" % wid, headers=h), 404, "NOT_FOUND")
        assert_error(put(srv, wid, {"name": "zombie"}, h), 404, "NOT_FOUND")
        assert_error(srv.post("/api/workflows/%s/duplicate" % wid, headers=h), 404, "NOT_FOUND")
        assert_error(srv.get("/api/workflows/%s/versions" % wid, headers=h), 404, "NOT_FOUND")
        assert_error(srv.get("/api/workflows/%s/versions/1" % wid, headers=h), 404, "NOT_FOUND")
        assert_error(srv.get("/api/workflows/%s/versions/2" % wid, headers=h), 404, "NOT_FOUND")
        assert wid not in ids(listing(srv, acct, limit=100))
        assert listing(srv, acct, tag="doomed")["pagination"]["total"] == 0
        assert listing(srv, acct, search=w["name"])["pagination"]["total"] == 0
    assert_error(delete(srv, "/api/workflows/%s" % wid, headers=H(adm)), 404, "NOT_FOUND")
    after_admin = listing(srv, adm, ownerId=alice["user"]["id"], limit=100)
    assert after_admin["pagination"]["total"] == before_admin["pagination"]["total"] - 1


def test_delete_unknown_404(srv, adm):
    assert_error(delete(srv, "/api/workflows/%s" % UNKNOWN_ID, headers=H(adm)), 404, "NOT_FOUND")


# ---------------------------------------------------------------- analytics summary

def summary(srv, acct):
    r = srv.get("/api/workflows/analytics/summary", headers=H(acct))
    assert r.status_code == 200, r.text
    return r.json()


def check_summary(s):
    assert set(s) == SUMMARY_KEYS, sorted(s)
    assert set(s["byStatus"]) == {"draft", "active", "archived"}, s["byStatus"]
    assert sum(s["byStatus"].values()) == s["totalWorkflows"], s
    for lst in (s["topByExecutions"], s["topByCost"]):
        assert isinstance(lst, list) and len(lst) <= 10
        for item in lst:
            assert set(item) == TOP_KEYS, item
    return s


def test_summary_counts(aop_server):
    srv = aop_server(**auth_env())
    adm = admin_login(srv)
    user = register(srv)
    s = check_summary(summary(srv, adm))
    assert s == {"totalWorkflows": 0, "byStatus": {"draft": 0, "active": 0, "archived": 0}, "createdLast7Days": 0,
                 "topByExecutions": [], "topByCost": []}
    made = []
    for i, st in enumerate(["draft"] * 6 + ["active"] * 4 + ["archived"] * 2):
        made.append(create(srv, user if i % 2 else adm, name="wf-%02d" % i, status=st))
    s = check_summary(summary(srv, adm))
    assert s["totalWorkflows"] == 12
    assert s["byStatus"] == {"draft": 6, "active": 4, "archived": 2}
    assert s["createdLast7Days"] == 12
    names = {w["id"]: w["name"] for w in made}
    for lst in (s["topByExecutions"], s["topByCost"]):
        assert len(lst) == 10, lst     # zeros included, at most 10
        assert len({i["workflowId"] for i in lst}) == 10
        for item in lst:
            assert item["workflowId"] in names and item["name"] == names[item["workflowId"]], item
            assert item["executions"] == 0 and item["costUsd"] == 0, item
    # a status change moves a count at once
    update(srv, user, made[1]["id"], status="archived")
    s = check_summary(summary(srv, adm))
    assert s["byStatus"] == {"draft": 5, "active": 4, "archived": 3}
    assert s["totalWorkflows"] == 12
    # a deleted workflow no longer counts
    r = delete(srv, "/api/workflows/%s" % made[7]["id"], headers=H(adm))
    assert r.status_code == 204, r.text
    s = check_summary(summary(srv, adm))
    assert s["totalWorkflows"] == 11 and s["createdLast7Days"] == 11
    assert s["byStatus"] == {"draft": 5, "active": 3, "archived": 3}
    for lst in (s["topByExecutions"], s["topByCost"]):
        assert made[7]["id"] not in {i["workflowId"] for i in lst}
    # a duplicate counts
    dup(srv, user, made[3]["id"])
    s = check_summary(summary(srv, adm))
    assert s["totalWorkflows"] == 12 and s["createdLast7Days"] == 12
    assert s["byStatus"] == {"draft": 6, "active": 3, "archived": 3}


def test_summary_created_last_7_days_window(aop_server):
    """Back-dates creation times in the database (the API cannot), then makes a write so
    that no cached summary can stand in for the new one."""
    import datetime
    from conftest import db_execute
    srv = aop_server(**auth_env())
    adm = admin_login(srv)
    made = [create(srv, adm, name="age %d" % i) for i in range(4)]
    rows = db_rows(srv, "SELECT id, created_at FROM workflows WHERE id = ?", (made[0]["id"],))
    assert rows and rows[0]["created_at"] == made[0]["createdAt"], rows

    def ago(days):
        t = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=days)
        return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (t.microsecond // 1000)
    for i, days in ((0, 8), (1, 30), (2, 6)):
        db_execute(srv, "UPDATE workflows SET created_at = ? WHERE id = ?", (ago(days), made[i]["id"]))
    create(srv, adm, name="the write after")
    s = check_summary(summary(srv, adm))
    assert s["totalWorkflows"] == 5
    assert s["createdLast7Days"] == 3, s


def test_summary_shape_on_shared_server(srv, adm, alice):
    s = check_summary(summary(srv, adm))
    assert s["totalWorkflows"] >= 1
    create(srv, alice, name="one more", status="archived")
    s2 = check_summary(summary(srv, adm))
    assert s2["totalWorkflows"] == s["totalWorkflows"] + 1
    assert s2["byStatus"]["archived"] == s["byStatus"]["archived"] + 1
    assert s2["createdLast7Days"] == s["createdLast7Days"] + 1
