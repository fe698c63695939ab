"""Audit trail: one audit_events row (and an audit log line) per security event, with the
request id and client address, never a secret."""
import json
import time
import uuid

import pytest

from conftest import shared_server
from authutil import (ADMIN_EMAIL, ADMIN_PASSWORD, apikey, auth_env, bearer, create_key, db_bytes, db_rows, delete,
                      login, patch, refresh, register, rid, uniq_email)

SECRETS = []          # every password, token and key this module used


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    yield from shared_server(tmp_path_factory, "audit", **auth_env())


def pw():
    p = "Audit-Pw-%s" % uuid.uuid4().hex[:12]
    SECRETS.append(p)
    return p


def keep(*values):
    for v in values:
        SECRETS.append(v)
        if isinstance(v, str) and v.count(".") == 2:
            SECRETS.append(v.rsplit(".", 1)[1])          # a JWT's signature alone
        if isinstance(v, str) and v.startswith("aop_"):
            SECRETS.append(v[12:])                       # a key without its public prefix
    return values[0] if len(values) == 1 else values


def account(srv):
    p = pw()
    body = register(srv, password=p)
    keep(body["accessToken"], body["refreshToken"])
    return body


def events(srv, request_id, timeout=3.0):
    deadline = time.monotonic() + timeout
    while True:
        rows = db_rows(srv, "SELECT * FROM audit_events WHERE request_id = ?", (request_id,))
        if rows or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


def one_event(srv, r, action, request_id):
    assert r.headers.get("X-Request-Id") == request_id
    rows = events(srv, request_id)
    mine = [e for e in rows if e["action"] == action]
    assert len(mine) == 1, "expected one %s event for request %s, got %r" % (action, request_id, rows)
    e = mine[0]
    assert e["ip"] == "127.0.0.1", e
    assert e["id"] and e["created_at"], e
    detail = json.loads(e["detail"]) if e["detail"] else {}
    assert isinstance(detail, dict), e
    e["detail"] = detail
    line = srv.wait_log(lambda l: l.get("requestId") == request_id and action in json.dumps(l))
    assert line is not None, "no audit log line for %s %s" % (action, request_id)
    return e


def test_register(srv):
    h = rid("aud-reg")
    p = pw()
    r = srv.post("/api/auth/register", json={"email": uniq_email(), "password": p, "name": "A"},
                 headers={"X-Request-Id": h})
    assert r.status_code == 201, r.text
    keep(r.json()["accessToken"], r.json()["refreshToken"])
    e = one_event(srv, r, "auth.register", h)
    uid = r.json()["user"]["id"]
    assert uid in (e["actor_id"], e["subject_id"]), e


def test_login(srv):
    a = account(srv)
    h = rid("aud-login")
    r = srv.post("/api/auth/login", json={"email": a["_email"], "password": a["_password"]},
                 headers={"X-Request-Id": h})
    assert r.status_code == 200
    keep(r.json()["accessToken"], r.json()["refreshToken"])
    e = one_event(srv, r, "auth.login", h)
    assert e["actor_id"] == a["user"]["id"], e


def test_login_failed_wrong_password(srv):
    a = account(srv)
    h = rid("aud-fail")
    wrong = pw()
    r = srv.post("/api/auth/login", json={"email": a["_email"].upper(), "password": wrong},
                 headers={"X-Request-Id": h})
    assert r.status_code == 401
    e = one_event(srv, r, "auth.login_failed", h)
    assert e["detail"].get("email", "").lower() == a["_email"], e
    assert isinstance(e["detail"].get("reason"), str) and e["detail"]["reason"], e
    assert wrong not in json.dumps(e)


def test_login_failed_unknown_email(srv):
    h = rid("aud-fail2")
    email = uniq_email("ghost")
    r = srv.post("/api/auth/login", json={"email": email, "password": pw()}, headers={"X-Request-Id": h})
    assert r.status_code == 401
    e = one_event(srv, r, "auth.login_failed", h)
    assert e["detail"].get("email", "").lower() == email, e
    assert e["detail"].get("reason"), e


def test_logout(srv):
    a = account(srv)
    h = rid("aud-logout")
    r = srv.post("/api/auth/logout", json={"refreshToken": a["refreshToken"]},
                 headers={**bearer(a["accessToken"]), "X-Request-Id": h})
    assert r.status_code == 204
    e = one_event(srv, r, "auth.logout", h)
    assert e["actor_id"] == a["user"]["id"], e


def test_refresh_and_reuse(srv):
    a = account(srv)
    h = rid("aud-refresh")
    r = refresh(srv, a["refreshToken"], headers={"X-Request-Id": h})
    assert r.status_code == 200
    keep(r.json()["accessToken"], r.json()["refreshToken"])
    e = one_event(srv, r, "auth.refresh", h)
    assert a["user"]["id"] in (e["actor_id"], e["subject_id"]), e
    h2 = rid("aud-reuse")
    r = refresh(srv, a["refreshToken"], headers={"X-Request-Id": h2})
    assert r.status_code == 401
    e = one_event(srv, r, "auth.refresh_reuse", h2)
    assert a["user"]["id"] in (e["actor_id"], e["subject_id"]), e


def test_password_change(srv):
    a = account(srv)
    h = rid("aud-pw")
    new = pw()
    r = srv.post("/api/auth/me/password", json={"currentPassword": a["_password"], "newPassword": new},
                 headers={**bearer(a["accessToken"]), "X-Request-Id": h})
    assert r.status_code == 204, r.text
    e = one_event(srv, r, "auth.password_change", h)
    assert e["actor_id"] == a["user"]["id"], e


def test_api_key_create_and_revoke(srv):
    a = account(srv)
    h = rid("aud-key")
    r = srv.post("/api/auth/api-keys", json={"name": "audited"}, headers={**bearer(a["accessToken"]), "X-Request-Id": h})
    assert r.status_code == 201, r.text
    k = r.json()
    keep(k["key"])
    e = one_event(srv, r, "apikey.create", h)
    assert e["actor_id"] == a["user"]["id"], e
    assert srv.get("/api/auth/me", headers=apikey(k["key"])).status_code == 200
    h2 = rid("aud-keydel")
    r = delete(srv, "/api/auth/api-keys/%s" % k["id"], headers={**bearer(a["accessToken"]), "X-Request-Id": h2})
    assert r.status_code == 204
    e = one_event(srv, r, "apikey.revoke", h2)
    assert e["actor_id"] == a["user"]["id"], e


def test_role_and_active_change(srv):
    a = account(srv)
    adm = login(srv, ADMIN_EMAIL, ADMIN_PASSWORD)
    keep(adm["accessToken"], adm["refreshToken"], ADMIN_PASSWORD)
    h = rid("aud-role")
    r = patch(srv, "/api/users/%s" % a["user"]["id"], json={"role": "viewer"},
              headers={**bearer(adm["accessToken"]), "X-Request-Id": h})
    assert r.status_code == 200, r.text
    e = one_event(srv, r, "user.role_change", h)
    assert e["actor_id"] == adm["user"]["id"] and e["subject_id"] == a["user"]["id"], e
    assert e["detail"].get("from") == "user" and e["detail"].get("to") == "viewer", e
    h = rid("aud-active")
    r = patch(srv, "/api/users/%s" % a["user"]["id"], json={"isActive": False},
              headers={**bearer(adm["accessToken"]), "X-Request-Id": h})
    assert r.status_code == 200, r.text
    e = one_event(srv, r, "user.active_change", h)
    assert e["actor_id"] == adm["user"]["id"] and e["subject_id"] == a["user"]["id"], e
    assert e["detail"].get("from") is True and e["detail"].get("to") is False, e


def test_generated_request_id_is_recorded_when_the_clients_is_malformed(srv):
    a = account(srv)
    r = srv.post("/api/auth/login", json={"email": a["_email"], "password": a["_password"]},
                 headers={"X-Request-Id": "not a well formed id!"})
    assert r.status_code == 200
    keep(r.json()["accessToken"], r.json()["refreshToken"])
    generated = r.headers["X-Request-Id"]
    assert generated != "not a well formed id!"
    one_event(srv, r, "auth.login", generated)


def test_failed_requests_write_no_success_event(srv):
    a = account(srv)
    h = rid("aud-nochange")
    r = srv.post("/api/auth/me/password", json={"currentPassword": "wrong-password-0", "newPassword": pw()},
                 headers={**bearer(a["accessToken"]), "X-Request-Id": h})
    assert r.status_code == 400
    rows = events(srv, h, timeout=0.5)
    assert not [e for e in rows if e["action"] == "auth.password_change"], rows


def test_forwarded_address_is_recorded_behind_a_trusted_proxy(aop_server):
    s = aop_server(TRUST_PROXY="true", **auth_env())
    h = rid("aud-xff")
    r = s.post("/api/auth/login", json={"email": uniq_email(), "password": "whatever-123"},
               headers={"X-Request-Id": h, "X-Forwarded-For": "6.6.6.6, 203.0.113.77"})
    assert r.status_code == 401
    rows = events(s, h)
    assert [e["ip"] for e in rows if e["action"] == "auth.login_failed"] == ["203.0.113.77"], rows


def exercise(srv):
    """Every audited action once, keeping its secrets (so the checks below stand alone)."""
    a = account(srv)
    b = login(srv, a["_email"], a["_password"])
    keep(b["accessToken"], b["refreshToken"])
    assert srv.post("/api/auth/login", json={"email": a["_email"], "password": pw()}).status_code == 401
    r = refresh(srv, b["refreshToken"])
    keep(r.json()["accessToken"], r.json()["refreshToken"])
    assert refresh(srv, b["refreshToken"]).status_code == 401
    k = create_key(srv, a["accessToken"])
    keep(k["key"])
    assert srv.get("/api/auth/me", headers=apikey(k["key"])).status_code == 200
    assert delete(srv, "/api/auth/api-keys/%s" % k["id"], headers=bearer(a["accessToken"])).status_code == 204
    adm = login(srv, ADMIN_EMAIL, ADMIN_PASSWORD)
    keep(adm["accessToken"], adm["refreshToken"], ADMIN_PASSWORD)
    assert patch(srv, "/api/users/%s" % a["user"]["id"], json={"role": "viewer"},
                 headers=bearer(adm["accessToken"])).status_code == 200
    new = pw()
    assert srv.post("/api/auth/me/password", json={"currentPassword": a["_password"], "newPassword": new},
                    headers=bearer(a["accessToken"])).status_code == 204
    c = login(srv, a["_email"], new)
    keep(c["accessToken"], c["refreshToken"])
    assert srv.post("/api/auth/logout", headers=bearer(c["accessToken"])).status_code == 204
    assert patch(srv, "/api/users/%s" % a["user"]["id"], json={"isActive": False},
                 headers=bearer(adm["accessToken"])).status_code == 200


def test_no_secret_in_audit_events_or_log(srv):
    """Every password, token and key used in this module (and by exercise())."""
    exercise(srv)
    assert len(SECRETS) > 20
    rows = db_rows(srv, "SELECT * FROM audit_events")
    assert len(rows) >= 11, rows
    text = json.dumps(rows)
    log = srv.stderr_text()
    assert log
    for s in SECRETS:
        assert s not in text, "secret %r... found in audit_events" % s[:8]
        assert s not in log, "secret %r... found in the log" % s[:8]


def test_no_secret_in_the_database_files(srv):
    exercise(srv)
    blob = db_bytes(srv)
    for s in SECRETS:
        if s == ADMIN_PASSWORD:
            continue
        assert s.encode() not in blob, "secret %r... found in the database" % s[:8]


def test_debug_log_has_no_secrets(aop_server):
    s = aop_server(LOG_LEVEL="debug", **auth_env())
    secrets = []
    p1, p2 = "Debug-Pw-%s" % uuid.uuid4().hex[:10], "Debug-Pw-%s" % uuid.uuid4().hex[:10]
    secrets += [p1, p2]
    body = register(s, password=p1)
    secrets += [body["accessToken"], body["refreshToken"]]
    r = s.post("/api/auth/login", json={"email": body["_email"], "password": "Debug-Wrong-%s" % p1})
    assert r.status_code == 401
    secrets.append("Debug-Wrong-%s" % p1)
    b2 = login(s, body["_email"], p1)
    secrets += [b2["accessToken"], b2["refreshToken"]]
    r = refresh(s, b2["refreshToken"])
    secrets += [r.json()["accessToken"], r.json()["refreshToken"]]
    k = create_key(s, body["accessToken"])
    secrets += [k["key"], k["key"][12:]]
    assert s.get("/api/auth/me", headers=apikey(k["key"])).status_code == 200
    bad_key = "aop_" + uuid.uuid4().hex + "abcdefghijk"
    bad_tok = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.%s" % uuid.uuid4().hex
    secrets += [bad_key, bad_tok]
    assert s.get("/api/auth/me", headers=apikey(bad_key)).status_code == 401
    assert s.get("/api/auth/me", headers=bearer(bad_tok)).status_code == 401
    r = s.post("/api/auth/me/password", json={"currentPassword": p1, "newPassword": p2},
               headers=bearer(body["accessToken"]))
    assert r.status_code == 204
    assert s.post("/api/auth/logout", headers=bearer(b2["accessToken"])).status_code in (204, 401)
    time.sleep(0.2)
    log = s.stderr_text()
    assert '"level":"debug"' in log.replace(" ", "") or "debug" in log
    for x in secrets:
        assert x not in log, "secret %r... in the debug log" % x[:10]
    for x in secrets:
        if x.count(".") == 2:
            assert x.rsplit(".", 1)[1] not in log, "a token signature is in the debug log"
