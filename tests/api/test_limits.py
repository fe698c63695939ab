"""Connection limits, timeouts, header and URL size limits."""
import socket
import time

import pytest

from conftest import assert_security_headers, shared_server


def read_all(sock, limit=1 << 20):
    """Reads until EOF; returns (data, how) with how in eof/reset/timeout."""
    data = b""
    while len(data) < limit:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data, "reset"
        except socket.timeout:
            return data, "timeout"
        if not chunk:
            return data, "eof"
        data += chunk
    return data, "limit"


def still_open(sock):
    sock.setblocking(False)
    try:
        sock.recv(1, socket.MSG_PEEK)
        return False  # data or EOF on an idle connection: not what we want
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        sock.setblocking(True)
        sock.settimeout(10)


def http_get_raw(srv, path="/health", source=None, timeout=10):
    s = srv.connect(source=source, timeout=timeout)
    try:
        s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path).encode())
        data, _ = read_all(s)
        return data
    finally:
        s.close()


# ---------------------------------------------------------------- timeout

def test_idle_partial_request_is_closed(aop_server):
    s = aop_server(HTTP_TIMEOUT_SECONDS="2")
    sock = s.connect(timeout=12)
    try:
        t0 = time.monotonic()
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        time.sleep(1.0)
        assert s.fresh_get("/health").status_code == 200, "server stuck behind a slow client"
        data, how = read_all(sock)
        elapsed = time.monotonic() - t0
        assert how in ("eof", "reset"), "connection still open after %.1fs (%s)" % (elapsed, how)
        assert elapsed <= 8.0, elapsed
        assert b"200 OK" not in data
    finally:
        sock.close()
    assert s.fresh_get("/health").status_code == 200


# ---------------------------------------------------------------- connection limits

def test_per_ip_connection_limit(aop_server):
    s = aop_server(HTTP_MAX_CONNECTIONS_PER_IP="4", HTTP_MAX_CONNECTIONS="32")
    # let the server reap the readiness probe's connection (it still counts
    # against 127.0.0.1 for a moment after the client has its response)
    time.sleep(0.7)
    idle = []
    try:
        for _ in range(4):
            idle.append(s.connect(timeout=5))
        time.sleep(0.5)
        for i, c in enumerate(idle):
            assert still_open(c), "idle connection %d of 4 (within the limit) was closed by the server" % (i + 1)
        # a 5th connection from the same address gets no HTTP response
        fifth = s.connect(timeout=5)
        try:
            try:
                fifth.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass
            data, how = read_all(fifth)
        finally:
            fifth.close()
        assert not data.startswith(b"HTTP/"), "5th connection from one IP was served: %r" % data[:100]
        assert how in ("eof", "reset"), how
        # another source address is not limited by 127.0.0.1's connections
        data = http_get_raw(s, "/health", source="127.0.0.2")
        assert data.startswith(b"HTTP/1.1 200"), data[:200]
    finally:
        for c in idle:
            c.close()
    # the slots are given back
    deadline = time.monotonic() + 5
    ok = False
    while time.monotonic() < deadline and not ok:
        try:
            ok = http_get_raw(s, "/health", timeout=3).startswith(b"HTTP/1.1 200")
        except OSError:
            pass
        if not ok:
            time.sleep(0.2)
    assert ok, "server did not serve 127.0.0.1 again after its idle connections closed"


# ---------------------------------------------------------------- header and URL sizes

@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    yield from shared_server(tmp_path_factory, "limits")


def test_header_block_over_16k_431(srv):
    r = srv.fresh_get("/health", headers={"X-Big": "a" * 17000})
    assert r.status_code == 431, r.status_code
    assert srv.fresh_get("/health").status_code == 200


def test_many_headers_over_16k_431(srv):
    headers = {"X-H%02d" % i: "b" * 1000 for i in range(18)}
    r = srv.fresh_get("/health", headers=headers)
    assert r.status_code == 431, r.status_code
    assert srv.fresh_get("/health").status_code == 200


def test_headers_under_16k_fine(srv):
    r = srv.fresh_get("/health", headers={"X-Big": "a" * 12000})
    assert r.status_code == 200


def test_url_over_8k_414(srv):
    r = srv.fresh_get("/" + "u" * 9000)
    assert r.status_code == 414, r.status_code
    assert srv.fresh_get("/health").status_code == 200


def test_url_under_8k_routed(srv):
    r = srv.fresh_get("/api/" + "u" * 7000)
    assert r.status_code == 404


def oversized(srv, kind, size):
    """A GET whose header block (kind "header") or URL (kind "url") is about size bytes."""
    if kind == "header":
        return srv.fresh_get("/health", headers={"X-Big": "c" * size})
    return srv.fresh_get("/" + "d" * size)


@pytest.mark.parametrize("kind", ["header", "url"])
def test_20k_header_or_url_is_4xx(srv, kind):
    r = oversized(srv, kind, 20480)
    assert 400 <= r.status_code < 500, r.status_code
    assert srv.fresh_get("/health").status_code == 200


@pytest.mark.parametrize("kind,size,status", [("header", 17000, 431), ("url", 9000, 414)])
def test_limit_responses_carry_standard_headers(srv, kind, size, status):
    r = oversized(srv, kind, size)
    assert r.status_code == status
    assert_security_headers(r)


# ---------------------------------------------------------------- query parameters
# API.md: 414 URI_TOO_LONG for "a URL over 8 KiB (or more query parameters than the
# server takes)"; docs/api.md: at most 64 parameters. libmicrohttpd keeps a record per
# parameter in the connection's fixed memory, and past about 480 it used to drop the
# connection without an answer.

QUERY_PARAMS_MAX = 64


def query(n, style="pairs"):
    if style == "pairs":
        return "&".join("p%d=%d" % (i, i) for i in range(n))
    if style == "bare":
        return "&".join("p" for _ in range(n))
    return "&" * n                                   # n empty parameters


def assert_414_json(r):
    assert r.status_code == 414, (r.status_code, r.text[:300])
    assert r.headers.get("Content-Type", "").startswith("application/json"), r.headers
    err = r.json()["error"]
    assert err["code"] == "URI_TOO_LONG" and err["requestId"] == r.headers["X-Request-Id"], err
    assert "64" in err["message"], err
    assert_security_headers(r)


@pytest.mark.parametrize("style", ["pairs", "bare", "empty"])
def test_query_parameters_at_the_bound_are_taken(srv, style):
    r = srv.fresh_get("/health?" + query(QUERY_PARAMS_MAX, style))
    assert r.status_code == 200, r.text[:300]
    r = srv.fresh_get("/api/workflows?" + query(QUERY_PARAMS_MAX, style))
    assert r.status_code == 401, r.text[:300]


@pytest.mark.parametrize("style", ["pairs", "bare", "empty"])
def test_one_query_parameter_over_the_bound_is_414(srv, style):
    assert_414_json(srv.fresh_get("/health?" + query(QUERY_PARAMS_MAX + 1, style)))
    assert_414_json(srv.fresh_get("/api/workflows?" + query(QUERY_PARAMS_MAX + 1, style)))


@pytest.mark.parametrize("n", [500, 2000, 4000])
def test_far_too_many_query_parameters_still_answer(srv, n):
    """Under 8 KiB of URL, yet far more records than a connection's memory holds."""
    q = query(n, "bare")
    assert len(q) < 8192
    assert_414_json(srv.fresh_get("/health?" + q))
    assert srv.fresh_get("/health").status_code == 200


def test_a_trailing_ampersand_is_no_parameter(srv):
    r = srv.fresh_get("/health?" + query(QUERY_PARAMS_MAX) + "&")
    assert r.status_code == 200, r.text[:300]


def test_too_many_parameters_on_a_kept_alive_connection(srv):
    """The 414 closes nothing it should not: the next request on a new connection works,
    and one before it on the same connection was answered normally."""
    s = srv.connect()
    try:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        first = b""
        while b"\r\n\r\n" not in first or not first.rstrip().endswith(b"}"):
            chunk = s.recv(65536)
            assert chunk, first
            first += chunk
        assert first.startswith(b"HTTP/1.1 200"), first[:200]
        s.sendall(("GET /health?%s HTTP/1.1\r\nHost: x\r\n\r\n" % query(1000, "bare")).encode())
        data, _ = read_all(s)
        assert data.startswith(b"HTTP/1.1 414"), data[:300]
        assert b'"URI_TOO_LONG"' in data, data[-300:]
    finally:
        s.close()
    assert srv.fresh_get("/health").status_code == 200
