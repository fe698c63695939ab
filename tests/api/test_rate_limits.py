"""Rate limits: headers, 429, the auth bucket, keys of the general bucket, proxies."""
import time

import pytest

from conftest import assert_error
from authutil import (admin_token, apikey, auth_env, bearer, create_key, login, me, refresh, register,
                      set_user, uniq_email)

RL_HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")


def rl(r):
    for h in RL_HEADERS:
        assert h in r.headers, "%s missing on %d %s: %r" % (h, r.status_code, r.request.path_url, dict(r.headers))
    vals = []
    for h in RL_HEADERS:
        v = r.headers[h]
        assert v.isdigit(), "%s: %r" % (h, v)
        vals.append(int(v))
    return tuple(vals)


def assert_429(r, limit, window_s):
    assert_error(r, 429, "RATE_LIMITED")
    ra = r.headers.get("Retry-After")
    assert ra is not None and ra.isdigit(), "Retry-After: %r" % ra
    assert 1 <= int(ra) <= window_s, ra
    lim, rem, reset = rl(r)
    assert lim == limit and rem == 0, (lim, rem)
    assert 0 <= reset <= window_s


def server(aop_server, general=100, auth=100, general_ms=60000, auth_ms=900000, **env):
    return aop_server(RATE_LIMIT_MAX=general, AUTH_RATE_LIMIT_MAX=auth, RATE_LIMIT_WINDOW_MS=general_ms,
                      AUTH_RATE_LIMIT_WINDOW_MS=auth_ms, **auth_env(**env))


def test_headers_describe_the_bucket_that_applied(aop_server):
    s = server(aop_server, general=50, auth=20)
    r = s.post("/api/auth/register", json={"email": uniq_email(), "password": "correct-horse-1", "name": "R"})
    assert r.status_code == 201, r.text
    assert rl(r)[:2] == (20, 19)
    assert 0 <= rl(r)[2] <= 900
    tok = r.json()["accessToken"]
    r = me(s, bearer(tok))
    assert r.status_code == 200
    lim, rem, reset = rl(r)
    assert (lim, rem) == (50, 49) and 0 <= reset <= 60
    r = me(s, bearer(tok))
    assert rl(r)[:2] == (50, 48)
    # unauthenticated requests have their own (per-IP) bucket, and errors carry the headers too
    r = me(s, {})
    assert r.status_code == 401
    assert rl(r)[:2] == (50, 49)
    r = s.get("/api/users", headers=bearer(tok))
    assert r.status_code == 403
    assert rl(r)[:2] == (50, 47)
    r = s.post("/api/auth/login", json={})
    assert r.status_code == 400
    assert rl(r)[:2] == (20, 18)


def test_ops_routes_are_not_limited(aop_server):
    s = server(aop_server, general=3, auth=3)
    for _ in range(5):
        for path in ("/health", "/ready", "/metrics"):
            r = s.get(path)
            assert r.status_code == 200, (path, r.text)
            for h in RL_HEADERS + ("Retry-After",):
                assert h not in r.headers, (path, h)
    r = me(s, {})
    assert r.status_code == 401
    assert rl(r)[:2] == (3, 2)


def test_429_after_the_maximum(aop_server):
    s = server(aop_server, general=3)
    rems = []
    for _ in range(3):
        r = me(s, {})
        assert r.status_code == 401, r.text
        rems.append(rl(r)[1])
    assert rems == [2, 1, 0]
    r = me(s, {})
    assert_429(r, 3, 60)
    # still refused, whatever the route
    assert_429(s.get("/api/users"), 3, 60)


def test_window_ends(aop_server):
    s = server(aop_server, general=1, general_ms=2000)
    assert me(s, {}).status_code == 401
    r = me(s, {})
    assert_429(r, 1, 2)
    time.sleep(2.3)
    r = me(s, {})
    assert r.status_code == 401, r.text
    assert rl(r)[:2] == (1, 0)


def test_auth_bucket_is_shared_by_login_register_refresh(aop_server):
    s = server(aop_server, general=100, auth=3)
    body = register(s)                                   # 1
    r = s.post("/api/auth/login", json={"email": body["_email"], "password": body["_password"]})   # 2
    assert r.status_code == 200 and rl(r)[:2] == (3, 1), (r.status_code, dict(r.headers))
    r = refresh(s, body["refreshToken"])                 # 3
    assert r.status_code == 200 and rl(r)[:2] == (3, 0)
    new_refresh = r.json()["refreshToken"]
    assert_429(s.post("/api/auth/login", json={"email": body["_email"], "password": body["_password"]}), 3, 900)
    assert_429(s.post("/api/auth/register", json={"email": uniq_email(), "password": "correct-horse-1",
                                                  "name": "N"}), 3, 900)
    assert_429(refresh(s, new_refresh), 3, 900)
    # the general budget was not touched by any of that, neither the user's nor the IP's
    r = me(s, bearer(body["accessToken"]))
    assert r.status_code == 200
    assert rl(r)[:2] == (100, 99)
    r = me(s, {})
    assert rl(r)[:2] == (100, 99)


def test_general_requests_do_not_consume_the_auth_bucket(aop_server):
    s = server(aop_server, general=100, auth=2)
    body = register(s)
    for _ in range(5):
        assert me(s, {}).status_code == 401
        assert me(s, bearer(body["accessToken"])).status_code == 200
    r = s.post("/api/auth/login", json={"email": body["_email"], "password": body["_password"]})
    assert r.status_code == 200, r.text
    assert rl(r)[:2] == (2, 0)


def test_general_bucket_is_per_user(aop_server):
    s = server(aop_server, general=3)
    a = register(s)
    b = register(s)
    for i in range(3):
        assert me(s, bearer(a["accessToken"])).status_code == 200
    assert_429(me(s, bearer(a["accessToken"])), 3, 60)
    # another user from the same IP has their own budget
    r = me(s, bearer(b["accessToken"]))
    assert r.status_code == 200
    assert rl(r)[:2] == (3, 2)
    # so do unauthenticated requests from that IP
    r = me(s, {})
    assert r.status_code == 401
    assert rl(r)[:2] == (3, 2)
    # a new token of the same user shares the user's budget
    c = login(s, a["_email"])
    assert_429(me(s, bearer(c["accessToken"])), 3, 60)


def test_api_keys_share_their_owners_bucket(aop_server):
    """API.md: an API key's requests count against its owner's bucket (one budget
    per user), so a user with many keys gets no more than one budget."""
    s = server(aop_server, general=4)
    a = register(s)
    keys = [create_key(s, a["accessToken"]) for _ in range(2)]   # 2 of the user's budget
    r = me(s, apikey(keys[0]["key"]))
    assert r.status_code == 200, r.text
    assert rl(r)[:2] == (4, 1)
    r = me(s, apikey(keys[1]["key"]))
    assert r.status_code == 200, r.text
    assert rl(r)[:2] == (4, 0)
    for k in keys:
        assert_429(me(s, apikey(k["key"])), 4, 60)
    assert_429(me(s, bearer(a["accessToken"])), 4, 60)
    # another user's key still has its own budget
    b = register(s)
    kb = create_key(s, b["accessToken"])
    r = me(s, apikey(kb["key"]))
    assert r.status_code == 200, r.text
    assert rl(r)[:2] == (4, 2)

def test_unauthenticated_bucket_is_per_ip_and_bad_credentials_count(aop_server):
    s = server(aop_server, general=3)
    a = register(s)
    assert me(s, bearer("not.a.token")).status_code == 401
    assert me(s, apikey("aop_" + "Z" * 43)).status_code == 401
    assert me(s, {}).status_code == 401
    assert_429(me(s, {}), 3, 60)
    assert_429(me(s, bearer("not.a.token")), 3, 60)
    # an authenticated user from the same IP is not affected
    r = me(s, bearer(a["accessToken"]))
    assert r.status_code == 200
    assert rl(r)[:2] == (3, 2)


def test_refused_tokens_count_against_the_ip_and_limited_users_stay_revoked(aop_server):
    """A token verified but then refused (revoked, or its user disabled) is an
    unauthenticated request: it counts against the client's IP, never its user's
    budget; and once a user is limited, their revoked token is still refused. On
    PostgreSQL + Redis the user's hit is counted with the token's reads, so this
    checks that it is taken back."""
    s = server(aop_server, general=3, TRUST_PROXY="true")
    x1 = {"X-Forwarded-For": "203.0.113.11"}
    x2 = {"X-Forwarded-For": "203.0.113.12"}
    a = register(s)
    old = login(s, a["_email"])
    assert s.post("/api/auth/logout", headers=dict(bearer(old["accessToken"]), **x1)).status_code == 204
    r = me(s, dict(bearer(old["accessToken"]), **x1))    # revoked: the IP's first hit
    assert_error(r, 401, "UNAUTHORIZED")
    assert rl(r)[:2] == (3, 2)
    r = me(s, dict(bearer(a["accessToken"]), **x1))      # the user's second (logout was the first)
    assert r.status_code == 200, r.text
    assert rl(r)[:2] == (3, 1)
    r = me(s, dict(bearer(a["accessToken"]), **x1))
    assert r.status_code == 200
    assert rl(r)[:2] == (3, 0)
    assert_429(me(s, dict(bearer(a["accessToken"]), **x1)), 3, 60)
    # the user is limited; their revoked token from another IP is refused, not
    # limited by the user's budget, and costs that IP one hit
    r = me(s, dict(bearer(old["accessToken"]), **x2))
    assert_error(r, 401, "UNAUTHORIZED")
    assert rl(r)[:2] == (3, 2)
    assert me(s, dict(bearer(old["accessToken"]), **x2)).status_code == 401
    assert me(s, dict(bearer(old["accessToken"]), **x2)).status_code == 401
    assert_429(me(s, dict(bearer(old["accessToken"]), **x2)), 3, 60)
    # a disabled user's token: refused, and counted against the IP as well
    b = register(s)
    set_user(s, admin_token(s), b["user"]["id"], isActive=False)
    x3 = {"X-Forwarded-For": "203.0.113.13"}
    r = me(s, dict(bearer(b["accessToken"]), **x3))
    assert_error(r, 401, "UNAUTHORIZED")
    assert rl(r)[:2] == (3, 2)
    r = me(s, dict(bearer(b["accessToken"]), **x3))
    assert rl(r)[:2] == (3, 1)


def test_trusted_proxy_keys_by_forwarded_for(aop_server):
    s = server(aop_server, general=2, auth=1, TRUST_PROXY="true")
    x1 = {"X-Forwarded-For": "203.0.113.1"}
    x2 = {"X-Forwarded-For": "6.6.6.6, 203.0.113.2"}     # the proxy appended the right one
    assert me(s, x1).status_code == 401
    assert me(s, x1).status_code == 401
    assert_429(me(s, x1), 2, 60)
    r = me(s, x2)
    assert r.status_code == 401, r.text
    assert rl(r)[:2] == (2, 1)
    # the auth bucket too
    bad = {"email": uniq_email(), "password": "wrong-password-1"}
    assert_error(s.post("/api/auth/login", json=bad, headers=x1), 401, "INVALID_CREDENTIALS")
    assert_429(s.post("/api/auth/login", json=bad, headers=x1), 1, 900)
    assert_error(s.post("/api/auth/login", json=bad, headers=x2), 401, "INVALID_CREDENTIALS")
    # the proxy itself (no header) is yet another client
    assert me(s, {}).status_code == 401


def test_untrusted_forwarded_for_is_ignored(aop_server):
    s = server(aop_server, general=2, auth=1)
    assert me(s, {"X-Forwarded-For": "203.0.113.1"}).status_code == 401
    assert me(s, {"X-Forwarded-For": "203.0.113.2"}).status_code == 401
    assert_429(me(s, {"X-Forwarded-For": "203.0.113.3"}), 2, 60)
    assert_429(me(s, {}), 2, 60)
    bad = {"email": uniq_email(), "password": "wrong-password-1"}
    assert_error(s.post("/api/auth/login", json=bad, headers={"X-Forwarded-For": "198.51.100.1"}),
                 401, "INVALID_CREDENTIALS")
    assert_429(s.post("/api/auth/login", json=bad, headers={"X-Forwarded-For": "198.51.100.2"}), 1, 900)


@pytest.mark.parametrize("kind", ["415", "invalid-json", "405"])
def test_every_api_response_carries_the_headers(aop_server, kind):
    """API.md: rate limits on every /api route, responses carry RateLimit-*;
    docs/api.md: "Every /api response carries RateLimit-Limit, -Remaining and -Reset"."""
    s = server(aop_server, general=50, auth=20)
    if kind == "415":
        r = s.post("/api/auth/login", data="{}", headers={"Content-Type": "text/plain"})
        assert r.status_code == 415
    elif kind == "invalid-json":
        r = s.post("/api/auth/login", data="{", headers={"Content-Type": "application/json"})
        assert r.status_code == 400
    else:
        r = s.get("/api/auth/login")
        assert r.status_code == 405
    rl(r)
