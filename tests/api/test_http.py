"""HTTP basics on one shared server: request ids, security headers, errors, routes,
body checks, health/ready, CORS, gzip."""
import gzip
import json
import re

import pytest

from conftest import BACKEND, assert_error, assert_security_headers, shared_server

UUID7 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
ALLOWED = "http://other.example"
FRONTEND = "http://app.example,http://other.example"


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    yield from shared_server(tmp_path_factory, "http", BODY_LIMIT_BYTES=1024, FRONTEND_URL=FRONTEND)


def nested(depth):
    return "[" * depth + "]" * depth


# ---------------------------------------------------------------- request id

@pytest.mark.parametrize("rid", ["abc-123", "A.b_c:d-9", "x" * 128, "7"])
@pytest.mark.parametrize("path", ["/health", "/api/nope"])
def test_request_id_echoed(srv, rid, path):
    r = srv.get(path, headers={"X-Request-Id": rid})
    assert r.headers.get("X-Request-Id") == rid
    if r.status_code >= 400:
        assert r.json()["error"]["requestId"] == rid


@pytest.mark.parametrize("rid", [None, "has space", "x" * 129, "y" * 200, "bad/slash", "semi;colon", "\u00e9t\u00e9"],
                         ids=["absent", "space", "129", "200", "slash", "semicolon", "non-ascii"])
def test_request_id_generated_when_absent_or_malformed(srv, rid):
    headers = {}
    if rid is not None:
        headers["X-Request-Id"] = rid.encode("utf-8") if not rid.isascii() else rid
    r = srv.get("/api/nope", headers=headers)
    got = r.headers.get("X-Request-Id")
    assert got and UUID7.match(got), "expected a generated UUIDv7, got %r" % got
    assert r.json()["error"]["requestId"] == got


def test_generated_request_ids_are_unique(srv):
    ids = {srv.get("/health").headers["X-Request-Id"] for _ in range(20)}
    assert len(ids) == 20
    for i in ids:
        assert UUID7.match(i), i


# ---------------------------------------------------------------- headers, routes

@pytest.mark.parametrize("method,path", [
    ("GET", "/health"), ("GET", "/ready"), ("GET", "/metrics"), ("HEAD", "/health"),
    ("GET", "/api/nope"), ("GET", "/favicon.ico"), ("DELETE", "/metrics"), ("OPTIONS", "/api/workflows"),
])
def test_security_headers_on_every_response(srv, method, path):
    r = srv.request(method, path)
    assert_security_headers(r)


def test_health(srv):
    r = srv.get("/health")
    assert r.status_code == 200
    assert r.headers.get("Content-Type", "").split(";")[0] == "application/json"
    body = r.json()
    assert set(body) == {"status", "version", "uptimeSeconds"}, body
    assert body["status"] == "ok"
    assert body["version"] == "0.1.0"
    up = body["uptimeSeconds"]
    assert isinstance(up, (int, float)) and not isinstance(up, bool) and up >= 0, up
    assert "Content-Encoding" not in r.headers


def test_ready(srv):
    r = srv.get("/ready")
    assert r.status_code == 200
    checks = {"database": "ok", "redis": "ok"} if BACKEND == "pg" else {"database": "ok"}
    assert r.json() == {"status": "ok", "checks": checks}


@pytest.mark.parametrize("path", ["/health", "/ready", "/metrics"])
def test_head_allowed_without_body(srv, path):
    r = srv.head(path)
    assert r.status_code == 200
    assert r.content == b""
    assert_security_headers(r)


@pytest.mark.parametrize("method,path", [
    ("GET", "/api/nope"), ("GET", "/favicon.ico"), ("GET", "/healthz"), ("GET", "/health/x"),
    ("POST", "/api/nope"), ("DELETE", "/api/nope/123"), ("GET", "/api"), ("GET", "/consoles"),
])
def test_unknown_route_404(srv, method, path):
    r = srv.request(method, path)
    assert_error(r, 404, "NOT_FOUND")


@pytest.mark.parametrize("method,path", [
    ("POST", "/health"), ("DELETE", "/metrics"), ("PUT", "/ready"), ("DELETE", "/health"), ("PATCH", "/metrics"),
])
def test_wrong_method_405(srv, method, path):
    r = srv.request(method, path)
    assert_error(r, 405, "METHOD_NOT_ALLOWED")
    assert r.headers.get("Allow") == "GET, HEAD"


# ---------------------------------------------------------------- body checks

JSON_CT = {"Content-Type": "application/json"}


def test_body_too_large_content_length(srv):
    body = json.dumps({"a": "x" * 1990}).encode()
    assert len(body) > 1024
    r = srv.post("/api/nope", data=body, headers=JSON_CT)
    assert_error(r, 413, "PAYLOAD_TOO_LARGE")
    assert srv.fresh_get("/health").status_code == 200


def test_body_too_large_exactly_2000_bytes(srv):
    r = srv.post("/api/workflows", data=b" " * 1998 + b"{}", headers=JSON_CT)
    assert_error(r, 413, "PAYLOAD_TOO_LARGE")
    assert srv.fresh_get("/health").status_code == 200


def test_body_too_large_chunked(srv):
    def gen():
        for _ in range(6):
            yield b" " * 500
        yield b"{}"
    r = srv.post("/api/nope", data=gen(), headers=JSON_CT)
    assert r.request.headers.get("Transfer-Encoding") == "chunked"
    assert_error(r, 413, "PAYLOAD_TOO_LARGE")
    assert srv.fresh_get("/health").status_code == 200


def test_chunked_body_under_limit_is_parsed(srv):
    def gen():
        yield b'{"a":'
        yield b' [1, 2, 3]}'
    r = srv.post("/api/nope", data=gen(), headers=JSON_CT)
    assert_error(r, 404, "NOT_FOUND")


def test_body_at_limit_accepted(srv):
    body = b'{"a":"' + b"x" * (1024 - 8) + b'"}'
    assert len(body) == 1024
    r = srv.post("/api/nope", data=body, headers=JSON_CT)
    assert_error(r, 404, "NOT_FOUND")


def test_size_checked_before_content_type(srv):
    r = srv.post("/api/nope", data=b"x" * 2000, headers={"Content-Type": "text/plain"})
    assert_error(r, 413, "PAYLOAD_TOO_LARGE")


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
@pytest.mark.parametrize("ctype", ["text/plain", None, "application/x-www-form-urlencoded", "application/jsonx"])
def test_non_json_content_type_415(srv, method, ctype):
    headers = {"Content-Type": ctype} if ctype else {}
    r = srv.request(method, "/api/nope", data=b'{"a":1}', headers=headers)
    if ctype is None:
        assert "Content-Type" not in r.request.headers
    assert_error(r, 415, "UNSUPPORTED_MEDIA_TYPE")


def test_content_type_checked_before_json(srv):
    r = srv.post("/api/nope", data=b'{"a":', headers={"Content-Type": "text/plain"})
    assert_error(r, 415, "UNSUPPORTED_MEDIA_TYPE")


@pytest.mark.parametrize("ctype", ["application/json", "application/json; charset=utf-8", "Application/JSON"])
def test_json_content_type_accepted(srv, ctype):
    r = srv.post("/api/nope", data=b'{"a":1}', headers={"Content-Type": ctype})
    assert_error(r, 404, "NOT_FOUND")


@pytest.mark.parametrize("body", [
    b'{"a":',
    b'{"a":"\xff"}',
    b'{"a":1,"a":2}',
    nested(65).encode(),
    b"{'a': 1}",
    b'{"a":1} trailing',
], ids=["truncated", "bad-utf8", "duplicate-keys", "depth-65", "single-quotes", "trailing"])
def test_invalid_json_400(srv, body):
    r = srv.post("/api/nope", data=body, headers=JSON_CT)
    assert_error(r, 400, "INVALID_JSON")


def test_nested_objects_65_deep_rejected(srv):
    body = '{"a":' * 65 + "1" + "}" * 65
    r = srv.post("/api/nope", data=body.encode(), headers=JSON_CT)
    assert_error(r, 400, "INVALID_JSON")


def test_nested_64_deep_accepted(srv):
    r = srv.post("/api/nope", data=nested(64).encode(), headers=JSON_CT)
    assert_error(r, 404, "NOT_FOUND")
    body = '{"a":' * 64 + "1" + "}" * 64
    r = srv.post("/api/nope", data=body.encode(), headers=JSON_CT)
    assert_error(r, 404, "NOT_FOUND")


def test_body_checked_before_routing(srv):
    # a known path with a wrong method: body checks still come first
    r = srv.post("/health", data=b'{"a":', headers=JSON_CT)
    assert_error(r, 400, "INVALID_JSON")
    r = srv.post("/health", data=b'{"a":1}', headers={"Content-Type": "text/plain"})
    assert_error(r, 415, "UNSUPPORTED_MEDIA_TYPE")
    r = srv.post("/health", data=b'{"a":1}', headers=JSON_CT)
    assert_error(r, 405, "METHOD_NOT_ALLOWED")


def test_valid_json_unknown_route_404(srv):
    r = srv.post("/api/nope", json={"hello": "world", "n": [1, 2, {"x": None}]})
    assert_error(r, 404, "NOT_FOUND")


# ---------------------------------------------------------------- CORS

def cors_headers(r):
    return {k: v for k, v in r.headers.items() if k.lower().startswith("access-control-")}


def vary_tokens(r):
    return {t.strip().lower() for t in r.headers.get("Vary", "").split(",") if t.strip()}


@pytest.mark.parametrize("origin", ["http://other.example", "http://app.example"])
@pytest.mark.parametrize("path", ["/health", "/api/nope"])
def test_cors_allowed_origin(srv, origin, path):
    r = srv.get(path, headers={"Origin": origin})
    assert r.headers.get("Access-Control-Allow-Origin") == origin
    assert r.headers.get("Access-Control-Allow-Credentials") == "true"
    assert "origin" in vary_tokens(r), r.headers.get("Vary")


@pytest.mark.parametrize("origin", ["http://evil.example", "http://other.example.evil.com", "http://app.exampl",
                                    "null"])
def test_cors_disallowed_origin_gets_nothing(srv, origin):
    r = srv.get("/health", headers={"Origin": origin})
    assert r.status_code == 200
    assert cors_headers(r) == {}, cors_headers(r)


def test_no_origin_no_cors_headers(srv):
    r = srv.get("/health")
    assert "Access-Control-Allow-Origin" not in r.headers


def test_preflight_allowed(srv):
    r = srv.request("OPTIONS", "/api/workflows", headers={
        "Origin": ALLOWED, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})
    assert r.status_code == 204, r.text
    assert r.content == b""
    assert r.headers.get("Access-Control-Allow-Origin") == ALLOWED
    methods = {m.strip().upper() for m in r.headers.get("Access-Control-Allow-Methods", "").split(",")}
    assert "POST" in methods, r.headers.get("Access-Control-Allow-Methods")
    allow_headers = {h.strip().lower() for h in r.headers.get("Access-Control-Allow-Headers", "").split(",")}
    assert {"authorization", "content-type"} <= allow_headers, r.headers.get("Access-Control-Allow-Headers")
    assert r.headers.get("X-Request-Id")
    assert_security_headers(r)


@pytest.mark.parametrize("path", ["/health", "/api/anything/else", "/"])
def test_preflight_any_path(srv, path):
    r = srv.request("OPTIONS", path, headers={"Origin": "http://app.example",
                                               "Access-Control-Request-Method": "POST"})
    assert r.status_code == 204
    assert r.headers.get("Access-Control-Allow-Origin") == "http://app.example"


def test_preflight_disallowed_origin(srv):
    r = srv.request("OPTIONS", "/api/workflows", headers={
        "Origin": "http://evil.example", "Access-Control-Request-Method": "POST"})
    assert r.status_code == 204
    assert "Access-Control-Allow-Origin" not in r.headers
    assert cors_headers(r) == {}, cors_headers(r)


# ---------------------------------------------------------------- gzip

def test_gzip_large_response(srv):
    r = srv.get("/metrics", headers={"Accept-Encoding": "gzip"}, stream=True)
    assert r.status_code == 200
    assert r.headers.get("Content-Encoding") == "gzip"
    assert "accept-encoding" in vary_tokens(r), r.headers.get("Vary")
    raw = r.raw.read(decode_content=False)
    assert raw[:2] == b"\x1f\x8b", "body is not gzip: %r" % raw[:20]
    text = gzip.decompress(raw).decode()
    assert len(text) > 1024
    assert "aop_build_info" in text


def test_gzip_transparent_for_requests(srv):
    r = srv.get("/metrics", headers={"Accept-Encoding": "gzip, deflate"})
    assert r.headers.get("Content-Encoding") == "gzip"
    assert "process_open_fds" in r.text


def test_identity_not_compressed(srv):
    r = srv.get("/metrics", headers={"Accept-Encoding": "identity"})
    assert r.status_code == 200
    assert "Content-Encoding" not in r.headers
    assert "aop_build_info" in r.text
    assert len(r.content) > 1024


def test_no_accept_encoding_not_compressed(srv):
    r = srv.get("/metrics", headers={"Accept-Encoding": None})
    assert "Accept-Encoding" not in r.request.headers
    assert "Content-Encoding" not in r.headers


@pytest.mark.parametrize("path", ["/health", "/api/nope"])
def test_small_response_not_compressed(srv, path):
    r = srv.get(path, headers={"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in r.headers
    json.loads(r.content)
