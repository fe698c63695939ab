"""JWTs: claims, signatures, algorithms, types, expiry, revocation, rotation and reuse,
password change, deactivation, restart."""
import time

import jwt
import pytest

from conftest import assert_error, shared_server
from authutil import (ACCESS_SECRET, REFRESH_SECRET, DEFAULT_PASSWORD, access_claims, admin_token,
                      alg_none, apikey, assert_unauthorized, auth_env, bearer, create_key, decode, forge,
                      header, login, me, refresh, refresh_claims, register, set_user)

ACCESS_TTL = 1234
REFRESH_TTL = 5678


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    yield from shared_server(tmp_path_factory, "tokens", ACCESS_TOKEN_TTL=ACCESS_TTL,
                             REFRESH_TOKEN_TTL=REFRESH_TTL, **auth_env())


@pytest.fixture
def acct(srv):
    return register(srv)


def warm(srv, headers, n=4):
    """Uses credentials a few times (on every serving thread, likely) so that whatever the
    server remembers about them is in place before the change under test."""
    for _ in range(n):
        r = me(srv, headers)
        assert r.status_code == 200, r.text


def claims_of(acct, **over):
    """Access claims for acct's user in the family of its login (a family the server
    issued), so that only the change under test can make the server refuse them."""
    return access_claims(acct["user"]["id"], fam=decode(acct["accessToken"])["fam"], **over)


# ---------------------------------------------------------------- claims

def test_access_token_claims(srv, acct):
    tok = acct["accessToken"]
    assert header(tok)["alg"] == "HS256"
    c = decode(tok)
    assert c["sub"] == acct["user"]["id"]
    assert c["role"] == "user"
    assert c["type"] == "access"
    assert c["iss"] == "aop"
    assert isinstance(c["jti"], str) and c["jti"]
    assert isinstance(c["fam"], str) and c["fam"]
    assert isinstance(c["iat"], int) and isinstance(c["exp"], int)
    assert c["exp"] - c["iat"] == ACCESS_TTL
    assert abs(c["iat"] - time.time()) < 30
    assert acct["expiresIn"] == ACCESS_TTL
    # signed with JWT_ACCESS_SECRET
    jwt.decode(tok, ACCESS_SECRET, algorithms=["HS256"], issuer="aop")
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(tok, REFRESH_SECRET, algorithms=["HS256"])


def test_refresh_token_claims(srv, acct):
    tok = acct["refreshToken"]
    assert header(tok)["alg"] == "HS256"
    c = decode(tok)
    assert {"sub", "iss", "type", "jti", "fam", "iat", "exp"} <= set(c), c
    assert c["sub"] == acct["user"]["id"]
    assert c["type"] == "refresh"
    assert c["iss"] == "aop"
    assert c["exp"] - c["iat"] == REFRESH_TTL
    a = decode(acct["accessToken"])
    assert c["fam"] == a["fam"]
    assert c["jti"] != a["jti"]
    jwt.decode(tok, REFRESH_SECRET, algorithms=["HS256"], issuer="aop")
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(tok, ACCESS_SECRET, algorithms=["HS256"])


def test_admin_role_claim(srv):
    body = login(srv, "admin@example.com", "admin-password-1")
    assert decode(body["accessToken"])["role"] == "admin"


def test_each_login_is_a_new_family_and_refresh_keeps_it(srv, acct):
    second = login(srv, acct["_email"])
    f1 = decode(acct["accessToken"])["fam"]
    f2 = decode(second["accessToken"])["fam"]
    assert f1 != f2
    r = refresh(srv, acct["refreshToken"])
    assert r.status_code == 200, r.text
    new = r.json()
    assert r.json()["expiresIn"] == ACCESS_TTL
    na, nr = decode(new["accessToken"]), decode(new["refreshToken"])
    assert na["fam"] == f1 and nr["fam"] == f1
    jtis = {decode(acct["accessToken"])["jti"], decode(acct["refreshToken"])["jti"], na["jti"], nr["jti"]}
    assert len(jtis) == 4
    assert nr["exp"] - nr["iat"] == REFRESH_TTL
    assert na["exp"] - na["iat"] == ACCESS_TTL


# ---------------------------------------------------------------- forged / wrong tokens

def test_forged_token_with_the_right_secret_is_accepted(srv, acct):
    """Control for the negative cases below: the forging itself is sound."""
    tok = forge(claims_of(acct, ttl=600))
    r = me(srv, bearer(tok))
    assert r.status_code == 200, r.text
    assert r.json()["id"] == acct["user"]["id"]


def test_tampered_payload_401(srv, acct):
    tok = acct["accessToken"]
    h, p, s = tok.split(".")
    claims = decode(tok)
    claims["role"] = "admin"
    import base64
    import json
    p2 = base64.urlsafe_b64encode(json.dumps(claims, separators=(",", ":")).encode()).rstrip(b"=").decode()
    assert_unauthorized(me(srv, bearer("%s.%s.%s" % (h, p2, s))))
    # a flipped signature character
    s2 = ("A" if s[0] != "A" else "B") + s[1:]
    assert_unauthorized(me(srv, bearer("%s.%s.%s" % (h, p, s2))))
    # the genuine token still works
    assert me(srv, bearer(tok)).status_code == 200


def test_alg_none_401(srv, acct):
    claims = claims_of(acct)
    assert_unauthorized(me(srv, bearer(alg_none(claims))))
    # with a trailing fake signature too
    assert_unauthorized(me(srv, bearer(alg_none(claims) + "c2ln")))


@pytest.mark.parametrize("alg", ["HS512", "HS384"])
def test_other_hmac_algorithm_with_the_right_secret_401(srv, acct, alg):
    tok = forge(claims_of(acct), secret=ACCESS_SECRET, alg=alg)
    assert_unauthorized(me(srv, bearer(tok)))


def test_wrong_secret_401(srv, acct):
    tok = forge(claims_of(acct), secret="x" * 40)
    assert_unauthorized(me(srv, bearer(tok)))
    tok = forge(claims_of(acct), secret=REFRESH_SECRET)
    assert_unauthorized(me(srv, bearer(tok)))


@pytest.mark.parametrize("change", [
    {"type": None}, {"type": "refresh"}, {"type": "id"}, {"iss": None}, {"iss": "someone-else"},
    {"sub": None}, {"jti": None}, {"exp": None}, {"sub": "0190b2a4-0000-7000-8000-000000000000"},
    {"sub": 12345},
])
def test_missing_or_wrong_claims_401(srv, acct, change):
    claims = claims_of(acct)
    for k, v in change.items():
        if v is None:
            claims.pop(k, None)
        else:
            claims[k] = v
    assert_unauthorized(me(srv, bearer(forge(claims))))


def test_oversized_token_401(srv, acct):
    claims = claims_of(acct, pad="x" * 5000)
    tok = forge(claims)
    assert len(tok) > 4096
    assert_unauthorized(me(srv, bearer(tok)))


def test_refresh_token_used_as_access_token_401(srv, acct):
    assert_unauthorized(me(srv, bearer(acct["refreshToken"])))


def test_access_token_used_as_refresh_token_401(srv, acct):
    assert_unauthorized(refresh(srv, acct["accessToken"]))
    # nor an access-typed token signed with the refresh secret
    c = refresh_claims(acct["user"]["id"], fam=decode(acct["refreshToken"])["fam"], type="access")
    assert_unauthorized(refresh(srv, forge(c, secret=REFRESH_SECRET)))
    # nor a refresh-typed token signed with the access secret
    assert_unauthorized(refresh(srv, forge(refresh_claims(acct["user"]["id"], fam=decode(acct["refreshToken"])["fam"]), secret=ACCESS_SECRET)))


def test_role_claim_is_informational(srv, acct):
    tok = forge(claims_of(acct, role="admin"))
    assert me(srv, bearer(tok)).status_code == 200
    assert_error(srv.get("/api/users", headers=bearer(tok)), 403, "FORBIDDEN")


def test_expired_access_token_is_token_expired(srv, acct):
    now = int(time.time())
    claims = claims_of(acct, iat=now - 2000, exp=now - 60)
    assert_unauthorized(me(srv, bearer(forge(claims))), code="TOKEN_EXPIRED")


def test_expired_token_with_bad_signature_is_unauthorized(srv, acct):
    now = int(time.time())
    claims = claims_of(acct, iat=now - 2000, exp=now - 60)
    assert_unauthorized(me(srv, bearer(forge(claims, secret="z" * 40))), code="UNAUTHORIZED")


def test_expired_refresh_token_is_unauthorized(srv, acct):
    now = int(time.time())
    claims = refresh_claims(acct["user"]["id"], fam=decode(acct["refreshToken"])["fam"], iat=now - 7000, exp=now - 60)
    assert_unauthorized(refresh(srv, forge(claims, secret=REFRESH_SECRET)), code="UNAUTHORIZED")


def test_access_token_expires_by_ttl(aop_server):
    s = aop_server(ACCESS_TOKEN_TTL=1, **auth_env())
    body = register(s)
    assert body["expiresIn"] == 1
    # exp is a whole second, so the token may have only a moment left: it works until
    # then, and a refusal before exp is the failure this test looks for.
    exp = jwt.decode(body["accessToken"], options={"verify_signature": False})["exp"]
    for _ in range(4):
        r = me(s, bearer(body["accessToken"]))
        if r.status_code != 200:
            assert time.time() >= exp, r.text
            break
    time.sleep(max(0.0, exp - time.time()) + 1.2)
    assert_unauthorized(me(s, bearer(body["accessToken"])), code="TOKEN_EXPIRED")
    # the refresh token still gives a fresh pair. Its access token lives until the
    # second its exp names: with a 1 s TTL that second may begin a moment after the
    # refresh, so a 401 is right only once exp has passed.
    r = refresh(s, body["refreshToken"])
    assert r.status_code == 200, r.text
    fresh = r.json()["accessToken"]
    answer = me(s, bearer(fresh))
    if answer.status_code != 200:
        exp = jwt.decode(fresh, options={"verify_signature": False})["exp"]
        assert time.time() >= exp, answer.text
        assert_unauthorized(answer, code="TOKEN_EXPIRED")


def test_refresh_token_expires_by_ttl(aop_server):
    s = aop_server(REFRESH_TOKEN_TTL=1, **auth_env())
    body = register(s)
    time.sleep(2.2)
    assert_unauthorized(refresh(s, body["refreshToken"]), code="UNAUTHORIZED")
    # the access token (900 s) is unaffected
    assert me(s, bearer(body["accessToken"])).status_code == 200


# ---------------------------------------------------------------- revocation

def test_logout_revokes_the_token_by_jti(srv, acct):
    tok = acct["accessToken"]
    warm(srv, bearer(tok))
    assert srv.post("/api/auth/logout", headers=bearer(tok)).status_code == 204
    assert_unauthorized(me(srv, bearer(tok)))
    # a forged token of the same family (valid signature) is refused as well
    c = decode(tok)
    assert_unauthorized(me(srv, bearer(forge(access_claims(c["sub"], fam=c["fam"])))))


def test_rotation_spends_the_refresh_token(srv, acct):
    r1 = refresh(srv, acct["refreshToken"])
    assert r1.status_code == 200, r1.text
    # the new pair works
    assert me(srv, bearer(r1.json()["accessToken"])).status_code == 200
    r2 = refresh(srv, r1.json()["refreshToken"])
    assert r2.status_code == 200, r2.text


def test_reuse_of_a_spent_refresh_token_revokes_the_family(srv, acct):
    other = login(srv, acct["_email"])           # another family of the same user
    r1 = refresh(srv, acct["refreshToken"])
    assert r1.status_code == 200, r1.text
    r2 = refresh(srv, r1.json()["refreshToken"])
    assert r2.status_code == 200, r2.text
    newest = r2.json()
    warm(srv, bearer(newest["accessToken"]))
    warm(srv, bearer(acct["accessToken"]))
    # reuse of the first (spent) token
    assert_unauthorized(refresh(srv, acct["refreshToken"]))
    # the whole family is gone: the newest refresh token and every access token of it
    assert_unauthorized(refresh(srv, newest["refreshToken"]))
    assert_unauthorized(me(srv, bearer(newest["accessToken"])))
    assert_unauthorized(me(srv, bearer(r1.json()["accessToken"])))
    assert_unauthorized(me(srv, bearer(acct["accessToken"])))
    # the other family is untouched
    assert me(srv, bearer(other["accessToken"])).status_code == 200
    assert refresh(srv, other["refreshToken"]).status_code == 200


def test_reuse_right_after_rotation(srv, acct):
    r1 = refresh(srv, acct["refreshToken"])
    assert r1.status_code == 200
    assert_unauthorized(refresh(srv, acct["refreshToken"]))
    assert_unauthorized(refresh(srv, r1.json()["refreshToken"]))
    assert_unauthorized(me(srv, bearer(r1.json()["accessToken"])))


def test_concurrent_refresh_one_wins(srv, acct):
    import concurrent.futures
    import requests

    def go(_):
        s = requests.Session()
        s.trust_env = False
        try:
            return s.post(srv.url + "/api/auth/refresh", json={"refreshToken": acct["refreshToken"]}, timeout=15)
        finally:
            s.close()
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        rs = list(ex.map(go, range(4)))
    codes = sorted(r.status_code for r in rs)
    assert codes.count(200) == 1, codes
    assert set(codes) <= {200, 401}, codes
    for r in rs:
        if r.status_code == 200:
            # the winner's pair belongs to a family that the reuse revoked
            assert_unauthorized(refresh(srv, r.json()["refreshToken"]))


def test_password_change_revokes_other_sessions(srv, acct):
    b = login(srv, acct["_email"])
    warm(srv, bearer(b["accessToken"]))
    r = srv.post("/api/auth/me/password", json={"currentPassword": DEFAULT_PASSWORD,
                                                "newPassword": "another-pass-77"},
                 headers=bearer(acct["accessToken"]))
    assert r.status_code == 204, r.text
    assert_unauthorized(me(srv, bearer(b["accessToken"])))
    assert_unauthorized(refresh(srv, b["refreshToken"]))
    # a fresh login works with the new password
    c = login(srv, acct["_email"], "another-pass-77")
    assert me(srv, bearer(c["accessToken"])).status_code == 200


def test_new_tokens_carry_the_current_role(srv, acct):
    set_user(srv, admin_token(srv), acct["user"]["id"], role="viewer")
    r = refresh(srv, acct["refreshToken"])
    assert r.status_code == 200, r.text
    assert decode(r.json()["accessToken"])["role"] == "viewer"
    assert decode(login(srv, acct["_email"])["accessToken"])["role"] == "viewer"


def test_expired_token_on_logout_is_token_expired(srv, acct):
    now = int(time.time())
    tok = forge(claims_of(acct, iat=now - 2000, exp=now - 1))
    assert_unauthorized(srv.post("/api/auth/logout", headers=bearer(tok)), code="TOKEN_EXPIRED")


def test_deactivation_stops_tokens_and_keys_at_once(srv, acct):
    adm = admin_token(srv)
    key = create_key(srv, acct["accessToken"])
    warm(srv, apikey(key["key"]))
    warm(srv, bearer(acct["accessToken"]))
    set_user(srv, adm, acct["user"]["id"], isActive=False)
    assert_unauthorized(me(srv, bearer(acct["accessToken"])))
    assert_unauthorized(me(srv, apikey(key["key"])))
    assert_unauthorized(refresh(srv, acct["refreshToken"]))
    assert_error(srv.post("/api/auth/login", json={"email": acct["_email"], "password": DEFAULT_PASSWORD}),
                 403, "FORBIDDEN")
    # reactivation does not bring the old sessions back
    set_user(srv, adm, acct["user"]["id"], isActive=True)
    assert_unauthorized(refresh(srv, acct["refreshToken"]))
    assert_unauthorized(me(srv, bearer(acct["accessToken"])))
    body = login(srv, acct["_email"])
    assert me(srv, bearer(body["accessToken"])).status_code == 200


def test_role_change_applies_at_once_to_existing_tokens_and_keys(srv, acct):
    adm = admin_token(srv)
    key = create_key(srv, acct["accessToken"])
    h = bearer(acct["accessToken"])
    warm(srv, h)
    warm(srv, apikey(key["key"]))
    assert_error(srv.get("/api/users", headers=h), 403, "FORBIDDEN")
    set_user(srv, adm, acct["user"]["id"], role="admin")
    assert srv.get("/api/users", headers=h).status_code == 200
    assert srv.get("/api/users", headers=apikey(key["key"])).status_code == 200
    set_user(srv, adm, acct["user"]["id"], role="viewer")
    assert_error(srv.get("/api/users", headers=h), 403, "FORBIDDEN")
    r = srv.post("/api/auth/api-keys", json={"name": "v"}, headers=h)
    assert_error(r, 403, "FORBIDDEN")


def test_restart_keeps_revocations(aop_server):
    env = auth_env(ACCESS_TOKEN_TTL=ACCESS_TTL, REFRESH_TOKEN_TTL=REFRESH_TTL)
    s1 = aop_server(**env)
    a = register(s1)
    # family 1: logged out
    assert s1.post("/api/auth/logout", headers=bearer(a["accessToken"])).status_code == 204
    # family 2: refresh token reused -> revoked
    b = login(s1, a["_email"])
    rb = refresh(s1, b["refreshToken"])
    assert rb.status_code == 200
    assert_unauthorized(refresh(s1, b["refreshToken"]))
    # family 3: rotated once, the spent token not reused
    c = login(s1, a["_email"])
    rc = refresh(s1, c["refreshToken"])
    assert rc.status_code == 200
    # family 4: untouched
    d = login(s1, a["_email"])
    assert s1.stop() == 0
    s2 = aop_server(**env)
    assert s2.tmp == s1.tmp
    assert_unauthorized(me(s2, bearer(a["accessToken"])))
    assert_unauthorized(refresh(s2, a["refreshToken"]))
    assert_unauthorized(me(s2, bearer(rb.json()["accessToken"])))
    assert_unauthorized(refresh(s2, rb.json()["refreshToken"]))
    # the live tokens survive the restart
    assert me(s2, bearer(d["accessToken"])).status_code == 200
    assert me(s2, bearer(rc.json()["accessToken"])).status_code == 200
    # the spent token of family 3 is still spent: presenting it is reuse
    assert_unauthorized(refresh(s2, c["refreshToken"]))
    assert_unauthorized(refresh(s2, rc.json()["refreshToken"]))
    assert refresh(s2, d["refreshToken"]).status_code == 200


@pytest.mark.sqlite_only
def test_second_server_on_the_same_sqlite_file_is_refused(aop_server, run_cli):
    """Caches, limits and revocation mirrors live in the process, so a second serving
    process on the same SQLite file would believe stale state (a token logged out through
    one instance kept working on the other): the project refuses that configuration."""
    from conftest import free_port
    s = aop_server(**auth_env())
    u = register(s)
    r = run_cli(["serve"], env=auth_env(PORT=str(free_port())), timeout=15)
    # docs/operations.md: "A second aop serve on the same file exits 1 naming the first one's pid"
    assert r.returncode == 1, r
    assert str(s.pid) in r.err, r
    # the first server is unaffected
    assert me(s, bearer(u["accessToken"])).status_code == 200


def test_restart_after_a_crash_is_not_refused(aop_server):
    env = auth_env()
    s1 = aop_server(**env)
    u = register(s1)
    assert s1.post("/api/auth/logout", headers=bearer(login(s1, u["_email"])["accessToken"])).status_code == 204
    s1.kill()
    s2 = aop_server(**env)
    assert s2.tmp == s1.tmp
    assert me(s2, bearer(u["accessToken"])).status_code == 200
    assert refresh(s2, u["refreshToken"]).status_code == 200


def test_revoked_family_outlives_its_refresh_tokens_across_restart(aop_server):
    """Access tokens may outlive the refresh tokens of their family: pruning expired rows
    (at start, hourly) must not forget a revocation while an access token of it is valid."""
    env = auth_env(ACCESS_TOKEN_TTL=3600, REFRESH_TOKEN_TTL=2)
    s1 = aop_server(**env)
    u = register(s1)
    r = refresh(s1, u["refreshToken"])
    assert r.status_code == 200
    a2 = r.json()["accessToken"]
    warm(s1, bearer(a2))
    assert_unauthorized(refresh(s1, u["refreshToken"]))          # reuse: the family is revoked
    assert_unauthorized(me(s1, bearer(a2)))
    # a second family, revoked by a password change
    other = login(s1, u["_email"])
    r = s1.post("/api/auth/me/password", json={"currentPassword": DEFAULT_PASSWORD, "newPassword": "after-change-1"},
                headers=bearer(login(s1, u["_email"])["accessToken"]))
    assert r.status_code == 204
    assert_unauthorized(me(s1, bearer(other["accessToken"])))
    time.sleep(2.5)                                              # every refresh token has expired now
    assert s1.stop() == 0
    s2 = aop_server(**env)
    assert_unauthorized(me(s2, bearer(a2)))
    assert_unauthorized(me(s2, bearer(u["accessToken"])))
    assert_unauthorized(me(s2, bearer(other["accessToken"])))
    # a token of a live family still works
    fresh = login(s2, u["_email"], "after-change-1")
    assert me(s2, bearer(fresh["accessToken"])).status_code == 200
