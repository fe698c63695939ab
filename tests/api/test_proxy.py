"""TRUST_PROXY: the client address behind trusted proxies.

API.md: TRUST_PROXY is a number of trusted proxy hops (0 = off; `true` means 1); the
client IP is the address that many entries from the right of X-Forwarded-For, so a
client cannot choose its own rate-limit bucket or audit IP by sending the header
itself. docs/api.md ("Client address") says what happens with fewer entries than
hops, malformed entries and several X-Forwarded-For headers.

In these tests the test process is the proxy: the entries it puts on the right of
the header are the ones "the proxy appended"; the ones on the left stand for what a
client sent.
"""
import http.client
import time

import pytest

from conftest import assert_error
from authutil import auth_env, db_rows, rid, uniq_email


def seen_ip(s, headers):
    """The client address the server recorded for one GET /health (its access log line)."""
    h = rid("xff")
    status, body = raw_get(s, "/health", [("X-Request-Id", h)] + list(headers.items()))
    assert status == 200, body
    return access_ip(s, h)


def access_ip(s, request_id):
    line = s.wait_log(lambda l: l.get("msg") == "request" and l.get("requestId") == request_id)
    assert line, s.stderr_text()[-2000:]
    return line["ip"]


def raw_get(s, path, headers):
    """GET with headers as a list of (name, value): repeated names stay separate lines."""
    c = http.client.HTTPConnection(s.host, s.port, timeout=15)
    try:
        c.putrequest("GET", path, skip_accept_encoding=True)
        for k, v in headers:
            c.putheader(k, v)
        c.endheaders()
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def bad_login(s, xff, request_id=None):
    headers = {"X-Forwarded-For": xff}
    if request_id:
        headers["X-Request-Id"] = request_id
    return s.post("/api/auth/login", json={"email": uniq_email(), "password": "wrong-password-1"},
                  headers=headers)


def audit_ips(s, request_id, timeout=3.0):
    deadline = time.monotonic() + timeout
    while True:
        rows = db_rows(s, "SELECT ip FROM audit_events WHERE request_id = ?", (request_id,))
        if rows or time.monotonic() > deadline:
            return [r["ip"] for r in rows]
        time.sleep(0.05)


def test_one_hop_takes_the_entry_the_proxy_appended(aop_server):
    s = aop_server(TRUST_PROXY="true")
    assert seen_ip(s, {"X-Forwarded-For": "203.0.113.9"}) == "203.0.113.9"
    # what the client wrote on the left is not taken
    assert seen_ip(s, {"X-Forwarded-For": "198.51.100.66, 203.0.113.9"}) == "203.0.113.9"
    assert seen_ip(s, {"X-Forwarded-For": "1.1.1.1,2.2.2.2 ,\t203.0.113.10"}) == "203.0.113.10"


def test_rotating_the_left_of_the_header_does_not_escape_the_login_limit(aop_server):
    s = aop_server(TRUST_PROXY="1", AUTH_RATE_LIMIT_MAX="2", **auth_env())
    for n in range(2):
        assert_error(bad_login(s, "198.51.100.%d, 203.0.113.5" % n), 401, "INVALID_CREDENTIALS")
    for n in range(2, 5):
        assert_error(bad_login(s, "198.51.100.%d, 203.0.113.5" % n), 429, "RATE_LIMITED")
    # another client behind the same proxy has its own budget
    assert_error(bad_login(s, "198.51.100.1, 203.0.113.6"), 401, "INVALID_CREDENTIALS")


def test_the_audit_ip_is_the_one_the_proxy_appended(aop_server):
    s = aop_server(TRUST_PROXY="true", **auth_env())
    h = rid("aud-xff")
    assert bad_login(s, "6.6.6.6, 203.0.113.77", h).status_code == 401
    assert audit_ips(s, h) == ["203.0.113.77"]


def test_several_headers_are_one_list_in_order(aop_server):
    """A proxy may add its own X-Forwarded-For line after the client's (HAProxy does):
    the lines together are the list, so the last line's last entry is the rightmost."""
    s = aop_server(TRUST_PROXY="1")
    h = rid("xff-two")
    status, _ = raw_get(s, "/health", [("X-Request-Id", h), ("X-Forwarded-For", "198.51.100.7"),
                                       ("Host", "x"), ("x-forwarded-for", "203.0.113.21")])
    assert status == 200
    assert access_ip(s, h) == "203.0.113.21"
    assert s.stop() == 0
    s2 = aop_server(TRUST_PROXY="2")
    h = rid("xff-two-hops")
    status, _ = raw_get(s2, "/health", [("X-Request-Id", h), ("X-Forwarded-For", "6.6.6.6, 203.0.113.22"),
                                        ("X-Forwarded-For", "10.0.0.1")])
    assert status == 200
    assert access_ip(s2, h) == "203.0.113.22"


def test_more_hops_count_further_from_the_right(aop_server):
    s = aop_server(TRUST_PROXY="2")
    assert seen_ip(s, {"X-Forwarded-For": "6.6.6.6, 203.0.113.8, 10.0.0.1"}) == "203.0.113.8"
    assert seen_ip(s, {"X-Forwarded-For": "203.0.113.8, 10.0.0.1"}) == "203.0.113.8"
    # fewer entries than hops: the request did not come through every proxy; the
    # socket's address is the only one nobody upstream chose
    assert seen_ip(s, {"X-Forwarded-For": "203.0.113.8"}) == "127.0.0.1"
    assert seen_ip(s, {}) == "127.0.0.1"


@pytest.mark.parametrize("xff,ip", [
    ("not-an-ip", "127.0.0.1"),
    ("203.0.113.9, not-an-ip", "127.0.0.1"),          # the entry at the hop decides; no searching left
    ("203.0.113.9:8080", "127.0.0.1"),                # ports are not part of an entry
    ("[2001:db8::1]", "127.0.0.1"),
    ("203.0.113.300", "127.0.0.1"),
    ("2001:db8::7", "2001:db8::7"),
    ("2001:DB8:0:0:0:0:0:7", "2001:db8::7"),          # written the one canonical way
    ("  203.0.113.9  ", "203.0.113.9"),
    ("203.0.113.9,,", "203.0.113.9"),                 # empty list elements do not count
    ("", "127.0.0.1"),
    (" , ", "127.0.0.1"),
])
def test_entry_forms(aop_server, xff, ip):
    s = aop_server(TRUST_PROXY="true")
    assert seen_ip(s, {"X-Forwarded-For": xff}) == ip


def test_off_by_default_and_with_zero(aop_server):
    for env in ({}, {"TRUST_PROXY": "0"}, {"TRUST_PROXY": "false"}):
        s = aop_server(**env)
        assert seen_ip(s, {"X-Forwarded-For": "203.0.113.9"}) == "127.0.0.1"
        s.stop()


@pytest.mark.parametrize("value", ["maybe", "17", "-1", "1.5", "one", " 1"])
def test_bad_values_are_refused(run_cli, value):
    r = run_cli(["serve"], env=dict(TRUST_PROXY=value), timeout=10)
    assert r.returncode == 2, r
    assert "TRUST_PROXY" in r.err and "0 to 16" in r.err, r
