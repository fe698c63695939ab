"""GET /openapi.json, and the document against the server's own tables.

Every response of every API test is also checked against the document
(openapi_check.py, installed by conftest.py); the tests here show that the
check can fail, and that the document covers what the server routes."""
import json
import re

import pytest

import openapi_check
from authutil import bearer, register
from conftest import REPO, assert_error, assert_security_headers, shared_server

ROUTES_C = (REPO / "src" / "http" / "routes.c").read_text("utf-8")
ROUTE_ROW = re.compile(r'ROUTE\("([A-Z]+)",\s*"([^"]+)",\s*\w+,\s*(ACCESS_\w+)')
# ":id" is "{id}"; a final "*" (the rest of the path) is the document's "{path}".
ROUTES = [(m, re.sub(r"/\*$", "/{path}", re.sub(r":(\w+)", r"{\1}", p)), access)
          for m, p, access in ROUTE_ROW.findall(ROUTES_C)]
DOC = openapi_check.DOC


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    yield from shared_server(tmp_path_factory, "openapi")


def test_route_table_is_read():
    # the parse below must see the table, or the coverage tests prove nothing
    assert len(ROUTES) == ROUTES_C.count('ROUTE("') and len(ROUTES) > 30, ROUTES
    assert ("GET", "/openapi.json", "ACCESS_PUBLIC") in ROUTES


def test_openapi_json_is_served_without_auth_and_is_the_repository_document(srv):
    r = srv.get("/openapi.json")
    assert r.status_code == 200, r.text[:300]
    assert r.headers["Content-Type"].split(";")[0] == "application/json"
    assert_security_headers(r)
    assert r.json() == DOC
    assert DOC["openapi"].startswith("3.1.")


def test_openapi_json_is_gzipped_for_clients_that_take_it(srv):
    r = srv.get("/openapi.json", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200
    assert r.headers.get("Content-Encoding") == "gzip"
    assert r.json() == DOC


def test_openapi_json_answers_405_to_another_method(srv):
    r = srv.post("/openapi.json", json={})
    assert_error(r, 405, "METHOD_NOT_ALLOWED")


def _shape(path):
    """A path with its parameters unnamed: the table and the document may name them apart."""
    return re.sub(r"\{\w+\}", "{}", path)


DOC_OPS = {(_shape(p), m.upper()): (p, m) for p, item in DOC["paths"].items() for m in item}


def _op(method, path):
    p, m = DOC_OPS[(_shape(path), method)]
    return DOC["paths"][p][m]


def test_every_route_of_the_route_table_is_described():
    missing = [(m, p) for m, p, _ in ROUTES if (_shape(p), m) not in DOC_OPS]
    assert not missing, "routes of src/http/routes.c that docs/openapi.json does not describe: %r" % missing


def test_public_routes_need_nothing_and_bearer_routes_refuse_api_keys():
    for method, path, access in ROUTES:
        op = _op(method, path)
        security = op.get("security", DOC["security"])
        schemes = {name for req in security for name in req}
        if access == "ACCESS_PUBLIC":
            # [] or an optional scheme ([{}, {...}]): callable without credentials
            assert security == [] or {} in security, (method, path, security)
        elif access == "ACCESS_BEARER":
            assert schemes == {"bearerAuth"}, (method, path, security)
        elif access == "ACCESS_HOOK":
            # the webhook's own auth: none, its token or its signature
            assert {} in security and schemes == {"webhookToken", "webhookSignature"}, \
                (method, path, security)
            assert 401 in map(int, op["responses"]), (method, path)
        else:
            assert schemes == {"bearerAuth", "apiKey"}, (method, path, security)
            assert 401 in map(int, op["responses"]), (method, path)


def test_every_error_code_the_server_sends_is_in_the_error_schema():
    err_c = (REPO / "src" / "core" / "err.c").read_text("utf-8")
    codes = set(re.findall(r'"([A-Z][A-Z_]{3,})"', err_c))
    enum = set(DOC["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]["enum"])
    assert codes and codes <= enum, codes - enum


def test_every_operation_has_an_id_summary_and_error_responses():
    ids = []
    for path, item in DOC["paths"].items():
        for method, op in item.items():
            ids.append(op["operationId"])
            assert op.get("summary"), (method, path)
            statuses = [int(s) for s in op["responses"]]
            assert any(200 <= s < 300 for s in statuses), (method, path)
            assert 500 in statuses, (method, path)
    assert len(ids) == len(set(ids))


# -- the check itself can fail ---------------------------------------------------

USER = {"id": "0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b", "email": "a@example.com", "name": "A",
        "role": "user", "preferences": {}, "isActive": True,
        "createdAt": "2026-11-25T16:38:35.123Z", "updatedAt": "2026-11-25T16:38:35.123Z",
        "lastLoginAt": None}


def problems(method, path, status, body, ctype="application/json"):
    raw = json.dumps(body).encode() if body is not None else None
    return openapi_check.problems_of(method, path, status, ctype, raw)


def test_check_passes_a_response_as_described():
    assert problems("GET", "/api/auth/me", 200, USER) == []
    err = {"error": {"code": "NOT_FOUND", "message": "No such workflow", "requestId": "r1"}}
    assert problems("GET", "/api/workflows/0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b", 404, err) == []
    assert problems("GET", "/api/nope", 404, err) == []


@pytest.mark.parametrize("case", [
    ("a field missing", "GET", "/api/auth/me", 200, {k: v for k, v in USER.items() if k != "isActive"}),
    ("a field the document does not name", "GET", "/api/auth/me", 200, dict(USER, passwordHash="$2b$")),
    ("a field of the wrong type", "GET", "/api/auth/me", 200, dict(USER, isActive="yes")),
    ("a role outside the enum", "GET", "/api/auth/me", 200, dict(USER, role="root")),
    ("a timestamp without milliseconds", "GET", "/api/auth/me", 200,
     dict(USER, createdAt="2026-11-25T16:38:35Z")),
    ("a status the operation does not list", "GET", "/api/auth/me", 418, USER),
    ("an error outside the contract's shape", "GET", "/api/auth/me", 401, {"message": "no"}),
    ("an error code outside the contract", "GET", "/api/auth/me", 401,
     {"error": {"code": "NOPE", "message": "x", "requestId": "r"}}),
    ("a success on a path the document does not know", "GET", "/api/nope", 200, {}),
    ("a list without pagination", "GET", "/api/workflows", 200, {"data": []}),
    ("an API key listed with its key", "GET", "/api/auth/api-keys", 200,
     {"data": [{"id": USER["id"], "name": "k", "prefix": "aop_", "scopes": ["read"],
                "createdAt": USER["createdAt"], "expiresAt": None, "lastUsedAt": None,
                "key": "aop_secret"}],
      "pagination": {"page": 1, "limit": 20, "total": 1, "totalPages": 1}}),
], ids=lambda c: c[0])
def test_check_fails_a_response_that_drifts(case):
    _, method, path, status, body = case
    assert problems(method, path, status, body), case[0]


def test_check_fails_a_content_type_the_document_does_not_list():
    assert problems("GET", "/metrics", 200, None, "text/plain") == []
    assert problems("GET", "/metrics", 200, {}, "application/json")


def test_check_picks_the_literal_path_before_a_template():
    assert openapi_check.match_path("/api/workflows/analytics/summary") == "/api/workflows/analytics/summary"
    assert openapi_check.match_path("/api/executions/workflow/x/stats") == \
        "/api/executions/workflow/{workflowId}/stats"
    assert openapi_check.match_path("/api/workflows/x") == "/api/workflows/{id}"
    assert openapi_check.match_path("/") == "/"
    assert openapi_check.match_path("/api/workflows/x/y/z") is None


def test_responses_of_a_real_server_are_checked(srv):
    """The hook sees the harness's responses: a 201 the document describes
    leaves nothing behind, and a drifted one would be collected."""
    assert openapi_check.take_problems() == []
    tok = register(srv)["accessToken"]
    r = srv.get("/api/auth/me", headers=bearer(tok))
    assert r.status_code == 200
    assert openapi_check.take_problems() == []
    openapi_check.check(_FakeResponse(srv.port, r))
    found = openapi_check.take_problems()
    assert found and "isActive" in " ".join(found), found


class _FakeResponse:
    """The response above with its body altered, as a drifting server would send it."""

    def __init__(self, port, real):
        self.request = real.request
        self.status_code = 200
        self.headers = {"Content-Type": "application/json"}
        body = real.json()
        del body["isActive"]
        self.content = json.dumps(body).encode()
