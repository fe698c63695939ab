"""Accounts: register, login, refresh, logout, me (GET/PATCH), password change."""
import json
import uuid

import pytest

from conftest import assert_error, assert_security_headers, shared_server
from authutil import (ADMIN_EMAIL, ADMIN_PASSWORD, AUTH_RESPONSE_KEYS, DEFAULT_PASSWORD, TS, USER_KEYS,
                      UUID7, admin_token, assert_unauthorized, assert_validation, auth_env, bearer,
                      decode, login, me, parse_ts, patch, refresh, register, set_user,
                      uniq_email)


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    yield from shared_server(tmp_path_factory, "auth", **auth_env())


def check_user(u, email=None, name=None, role="user"):
    assert isinstance(u, dict), u
    assert set(u) == USER_KEYS, "user keys: %r" % sorted(u)
    assert UUID7.match(u["id"]), u["id"]
    if email is not None:
        assert u["email"] == email.lower()
    if name is not None:
        assert u["name"] == name
    assert u["role"] == role
    assert isinstance(u["preferences"], dict)
    assert u["isActive"] is True
    parse_ts(u["createdAt"])
    parse_ts(u["updatedAt"])
    assert u["lastLoginAt"] is None or TS.match(u["lastLoginAt"])
    text = json.dumps(u)
    assert "$2" not in text and "password" not in text.lower(), u


# ---------------------------------------------------------------- register

def test_register_returns_user_and_tokens(srv):
    email = uniq_email("Reg").replace("reg", "ReG")
    r = srv.post("/api/auth/register", json={"email": email, "password": DEFAULT_PASSWORD, "name": "Reg User"})
    assert r.status_code == 201, r.text
    assert_security_headers(r)
    body = r.json()
    assert set(body) == AUTH_RESPONSE_KEYS, sorted(body)
    check_user(body["user"], email=email, name="Reg User")
    assert body["user"]["email"] == email.lower()
    assert body["user"]["preferences"] == {}
    assert body["expiresIn"] == 900
    for k in ("accessToken", "refreshToken"):
        assert isinstance(body[k], str) and body[k].count(".") == 2, body[k]
    assert body["accessToken"] != body["refreshToken"]
    assert decode(body["accessToken"])["sub"] == body["user"]["id"]
    assert DEFAULT_PASSWORD not in r.text
    # the token works at once
    r2 = me(srv, bearer(body["accessToken"]))
    assert r2.status_code == 200, r2.text
    assert r2.json()["id"] == body["user"]["id"]


def test_register_ignores_role(srv):
    r = srv.post("/api/auth/register", json={"email": uniq_email(), "password": DEFAULT_PASSWORD,
                                             "name": "Sneaky", "role": "admin"})
    assert r.status_code == 201, r.text
    assert r.json()["user"]["role"] == "user"
    r = srv.get("/api/users", headers=bearer(r.json()["accessToken"]))
    assert_error(r, 403, "FORBIDDEN")


def test_register_ignores_unknown_fields(srv):
    r = srv.post("/api/auth/register", json={"email": uniq_email(), "password": DEFAULT_PASSWORD,
                                             "name": "X", "favouriteColour": "green", "isActive": False})
    assert r.status_code == 201, r.text
    assert "favouriteColour" not in r.json()["user"]
    assert r.json()["user"]["isActive"] is True


def test_register_duplicate_email_case_insensitive_409(srv):
    email = uniq_email("dup")
    register(srv, email=email)
    r = srv.post("/api/auth/register", json={"email": email.upper(), "password": DEFAULT_PASSWORD, "name": "Y"})
    assert_error(r, 409, "CONFLICT")
    r = srv.post("/api/auth/register", json={"email": email, "password": "other-password-9", "name": "Y"})
    assert_error(r, 409, "CONFLICT")
    # the first account still logs in with its own password
    login(srv, email)


@pytest.mark.parametrize("payload,field", [
    ({"password": DEFAULT_PASSWORD, "name": "N"}, "email"),
    ({"email": "not-an-email", "password": DEFAULT_PASSWORD, "name": "N"}, "email"),
    ({"email": 42, "password": DEFAULT_PASSWORD, "name": "N"}, "email"),
    ({"email": "@", "password": DEFAULT_PASSWORD, "name": "N"}, "email"),
    ({"email": "EMAIL", "password": DEFAULT_PASSWORD}, "name"),
    ({"email": "EMAIL", "password": DEFAULT_PASSWORD, "name": ""}, "name"),
    ({"email": "EMAIL", "password": DEFAULT_PASSWORD, "name": "n" * 201}, "name"),
    ({"email": "EMAIL", "password": DEFAULT_PASSWORD, "name": ["N"]}, "name"),
    ({"email": "EMAIL", "name": "N"}, "password"),
    ({"email": "EMAIL", "password": "short", "name": "N"}, "password"),
    ({"email": "EMAIL", "password": 12345678, "name": "N"}, "password"),
])
def test_register_validation(srv, payload, field):
    payload = dict(payload)
    email = uniq_email("val")
    if payload.get("email") == "EMAIL":
        payload["email"] = email
    r = srv.post("/api/auth/register", json=payload)
    assert_validation(r, field)
    # nothing was created
    if payload.get("email") == email and field != "password":
        login(srv, email, DEFAULT_PASSWORD, expect=401)


def test_email_case_folding_beyond_ascii(srv):
    """Emails are stored lowercased and unique case-insensitively, also when the
    upper-case letter is not ASCII (a server may instead refuse such emails)."""
    local = "Ülrich-%s" % uuid.uuid4().hex[:8]
    email = local + "@example.com"
    r = srv.post("/api/auth/register", json={"email": email, "password": DEFAULT_PASSWORD, "name": "U"})
    if r.status_code == 400:
        assert_validation(r, "email")
        return
    assert r.status_code == 201, r.text
    assert r.json()["user"]["email"] == email.lower(), r.json()["user"]["email"]
    r2 = srv.post("/api/auth/register", json={"email": email.lower(), "password": DEFAULT_PASSWORD, "name": "U2"})
    assert_error(r2, 409, "CONFLICT")
    assert login(srv, email.lower())["user"]["id"] == r.json()["user"]["id"]


def test_register_name_of_200_chars_ok(srv):
    body = register(srv, name="n" * 200)
    assert body["user"]["name"] == "n" * 200


def test_name_length_counts_characters_not_bytes(srv):
    body = register(srv, name="é" * 200)
    assert body["user"]["name"] == "é" * 200
    r = srv.post("/api/auth/register", json={"email": uniq_email(), "password": DEFAULT_PASSWORD, "name": "é" * 201})
    assert_validation(r, "name")
    r = patch(srv, "/api/auth/me", json={"name": "\U0001F600" * 200}, headers=bearer(body["accessToken"]))
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "\U0001F600" * 200


@pytest.mark.parametrize("method,path,allow", [
    ("GET", "/api/auth/login", "POST"), ("GET", "/api/auth/register", "POST"), ("PUT", "/api/auth/me", None),
    ("DELETE", "/api/auth/logout", "POST"), ("POST", "/api/users", None),
])
def test_wrong_method_405(srv, method, path, allow):
    r = srv.request(method, path)
    assert_error(r, 405, "METHOD_NOT_ALLOWED")
    assert r.headers.get("Allow"), r.headers
    if allow:
        assert [a.strip() for a in r.headers["Allow"].split(",")] == [allow]
    assert method not in [a.strip() for a in r.headers["Allow"].split(",")]


def test_register_rejects_array_body_and_bad_json(srv):
    r = srv.post("/api/auth/register", data=b"{\"email\": ", headers={"Content-Type": "application/json"})
    assert_error(r, 400, "INVALID_JSON")
    r = srv.post("/api/auth/register", json=[1, 2])
    assert_error(r, 400, "VALIDATION_ERROR")
    r = srv.post("/api/auth/register", data=json.dumps({"email": uniq_email(), "password": DEFAULT_PASSWORD,
                                                        "name": "N"}), headers={"Content-Type": "text/plain"})
    assert_error(r, 415, "UNSUPPORTED_MEDIA_TYPE")


# ---------------------------------------------------------------- login

def test_login_returns_user_tokens_and_sets_last_login(srv):
    email = uniq_email("login")
    reg = register(srv, email=email, name="Log In")
    assert reg["user"]["lastLoginAt"] is None or TS.match(reg["user"]["lastLoginAt"])
    for _ in range(4):      # the server may keep the user row at hand; the login must show anyway
        assert me(srv, bearer(reg["accessToken"])).status_code == 200
    r = srv.post("/api/auth/login", json={"email": email, "password": DEFAULT_PASSWORD})
    assert r.status_code == 200, r.text
    assert_security_headers(r)
    body = r.json()
    assert set(body) == AUTH_RESPONSE_KEYS, sorted(body)
    check_user(body["user"], email=email, name="Log In")
    assert body["user"]["id"] == reg["user"]["id"]
    assert body["expiresIn"] == 900
    assert TS.match(body["user"]["lastLoginAt"] or ""), body["user"]
    t_login = parse_ts(body["user"]["lastLoginAt"])
    assert t_login >= parse_ts(reg["user"]["createdAt"])
    assert body["accessToken"] != reg["accessToken"]
    assert body["refreshToken"] != reg["refreshToken"]
    # me reports the same lastLoginAt
    m = me(srv, bearer(body["accessToken"])).json()
    assert m["lastLoginAt"] == body["user"]["lastLoginAt"]
    for _ in range(4):
        assert me(srv, bearer(reg["accessToken"])).json()["lastLoginAt"] == body["user"]["lastLoginAt"]


def test_login_email_is_case_insensitive(srv):
    email = uniq_email("case")
    reg = register(srv, email=email)
    body = login(srv, email.upper())
    assert body["user"]["id"] == reg["user"]["id"]
    assert body["user"]["email"] == email.lower()


def test_login_wrong_password_401(srv):
    email = uniq_email("wrong")
    register(srv, email=email)
    r = srv.post("/api/auth/login", json={"email": email, "password": "not-the-password"})
    assert_error(r, 401, "INVALID_CREDENTIALS")
    assert "accessToken" not in r.text


def test_login_unknown_email_401(srv):
    r = srv.post("/api/auth/login", json={"email": uniq_email("nobody"), "password": DEFAULT_PASSWORD})
    assert_error(r, 401, "INVALID_CREDENTIALS")


@pytest.mark.parametrize("payload,field", [
    ({"password": DEFAULT_PASSWORD}, "email"),
    ({"email": "x@example.com"}, "password"),
    ({"email": 1, "password": DEFAULT_PASSWORD}, "email"),
    ({"email": "x@example.com", "password": None}, "password"),
])
def test_login_validation(srv, payload, field):
    r = srv.post("/api/auth/login", json=payload)
    assert_validation(r, field)


def test_login_deactivated_account(srv):
    email = uniq_email("inactive")
    reg = register(srv, email=email)
    set_user(srv, admin_token(srv), reg["user"]["id"], isActive=False)
    r = srv.post("/api/auth/login", json={"email": email, "password": DEFAULT_PASSWORD})
    assert_error(r, 403, "FORBIDDEN")
    assert "accessToken" not in r.text
    r = srv.post("/api/auth/login", json={"email": email, "password": "wrong-password-x"})
    assert_error(r, 401, "INVALID_CREDENTIALS")


def test_bootstrap_admin_logs_in_as_admin(srv):
    body = login(srv, ADMIN_EMAIL.upper(), ADMIN_PASSWORD)
    assert body["user"]["role"] == "admin"
    assert body["user"]["email"] == ADMIN_EMAIL


# ---------------------------------------------------------------- refresh

def test_refresh_returns_a_new_pair(srv):
    reg = register(srv)
    r = refresh(srv, reg["refreshToken"])
    assert r.status_code == 200, r.text
    assert_security_headers(r)
    body = r.json()
    assert set(body) == {"accessToken", "refreshToken", "expiresIn"}, sorted(body)
    assert body["expiresIn"] == 900
    assert body["accessToken"] != reg["accessToken"]
    assert body["refreshToken"] != reg["refreshToken"]
    m = me(srv, bearer(body["accessToken"]))
    assert m.status_code == 200 and m.json()["id"] == reg["user"]["id"], m.text
    # and the new refresh token works once more
    r2 = refresh(srv, body["refreshToken"])
    assert r2.status_code == 200, r2.text


@pytest.mark.parametrize("token", ["", "garbage", "a.b.c", "x" * 5000], ids=["empty", "garbage", "abc", "5000x"])
def test_refresh_with_bad_token_401(srv, token):
    r = refresh(srv, token)
    assert_unauthorized(r)


def test_refresh_missing_field_is_refused(srv):
    r = srv.post("/api/auth/refresh", json={})
    assert r.status_code in (400, 401), r.text
    assert_error(r, r.status_code, "VALIDATION_ERROR" if r.status_code == 400 else "UNAUTHORIZED")


def test_refresh_with_access_token_401(srv):
    reg = register(srv)
    assert_unauthorized(refresh(srv, reg["accessToken"]))
    # the refresh token was not spent by that attempt
    assert refresh(srv, reg["refreshToken"]).status_code == 200


# ---------------------------------------------------------------- logout

def test_logout_revokes_access_token_and_family(srv):
    reg = register(srv)
    r = srv.post("/api/auth/logout", json={"refreshToken": reg["refreshToken"]}, headers=bearer(reg["accessToken"]))
    assert r.status_code == 204, r.text
    assert r.content == b""
    assert_security_headers(r)
    assert_unauthorized(me(srv, bearer(reg["accessToken"])))
    assert_unauthorized(refresh(srv, reg["refreshToken"]))
    # a new login still works
    body = login(srv, reg["_email"])
    assert me(srv, bearer(body["accessToken"])).status_code == 200


def test_logout_without_body_revokes_family_of_the_access_token(srv):
    reg = register(srv)
    r = srv.post("/api/auth/logout", headers=bearer(reg["accessToken"]))
    assert r.status_code == 204, r.text
    assert_unauthorized(me(srv, bearer(reg["accessToken"])))
    assert_unauthorized(refresh(srv, reg["refreshToken"]))


def test_logout_with_empty_object_body(srv):
    reg = register(srv)
    r = srv.post("/api/auth/logout", json={}, headers=bearer(reg["accessToken"]))
    assert r.status_code == 204, r.text
    assert_unauthorized(refresh(srv, reg["refreshToken"]))


def test_logout_leaves_other_sessions_alone(srv):
    reg = register(srv)
    other = login(srv, reg["_email"])
    r = srv.post("/api/auth/logout", headers=bearer(reg["accessToken"]))
    assert r.status_code == 204
    assert me(srv, bearer(other["accessToken"])).status_code == 200
    assert refresh(srv, other["refreshToken"]).status_code == 200


def test_logout_names_another_family_of_the_same_user(srv):
    reg = register(srv)
    other = login(srv, reg["_email"])
    r = srv.post("/api/auth/logout", json={"refreshToken": other["refreshToken"]},
                 headers=bearer(reg["accessToken"]))
    assert r.status_code == 204, r.text
    assert_unauthorized(refresh(srv, other["refreshToken"]))
    assert_unauthorized(me(srv, bearer(other["accessToken"])))
    assert_unauthorized(refresh(srv, reg["refreshToken"]))


def test_logout_ignores_another_users_refresh_token(srv):
    a = register(srv)
    b = register(srv)
    r = srv.post("/api/auth/logout", json={"refreshToken": b["refreshToken"]}, headers=bearer(a["accessToken"]))
    assert r.status_code == 204, r.text
    assert me(srv, bearer(b["accessToken"])).status_code == 200
    assert refresh(srv, b["refreshToken"]).status_code == 200


def test_logout_ignores_garbage_refresh_token(srv):
    a = register(srv)
    r = srv.post("/api/auth/logout", json={"refreshToken": "nonsense"}, headers=bearer(a["accessToken"]))
    assert r.status_code == 204, r.text
    assert_unauthorized(me(srv, bearer(a["accessToken"])))


@pytest.mark.parametrize("body", [{"refreshToken": 5}, {"refreshToken": None}, {"refreshToken": ""},
                                  {"refreshToken": ["x"]}, {"other": 1}])
def test_logout_ignores_odd_refresh_token_values(srv, body):
    a = register(srv)
    r = srv.post("/api/auth/logout", json=body, headers=bearer(a["accessToken"]))
    assert r.status_code == 204, r.text
    assert_unauthorized(me(srv, bearer(a["accessToken"])))
    assert_unauthorized(refresh(srv, a["refreshToken"]))


def test_logout_needs_credentials(srv):
    assert_unauthorized(srv.post("/api/auth/logout"))
    assert_unauthorized(srv.post("/api/auth/logout", headers=bearer("not.a.token")))


def test_logout_twice_second_is_401(srv):
    reg = register(srv)
    assert srv.post("/api/auth/logout", headers=bearer(reg["accessToken"])).status_code == 204
    assert_unauthorized(srv.post("/api/auth/logout", headers=bearer(reg["accessToken"])))


# ---------------------------------------------------------------- me

def test_me_returns_the_user(srv):
    reg = register(srv, name="Me Myself")
    r = me(srv, bearer(reg["accessToken"]))
    assert r.status_code == 200, r.text
    assert_security_headers(r)
    check_user(r.json(), email=reg["_email"], name="Me Myself")
    assert r.json()["id"] == reg["user"]["id"]
    assert r.json()["createdAt"] == reg["user"]["createdAt"]


@pytest.mark.parametrize("hdr", [
    {}, {"Authorization": "Bearer"}, {"Authorization": "Bearer "}, {"Authorization": "Basic dXNlcjpwYXNz"},
    {"Authorization": "bearer"}, {"Authorization": "Token abc"},
])
def test_me_without_valid_credentials_401(srv, hdr):
    assert_unauthorized(me(srv, hdr))


def test_bearer_scheme_is_case_insensitive(srv):
    reg = register(srv)
    r = me(srv, {"Authorization": "bearer %s" % reg["accessToken"]})
    # RFC 7235: the scheme is case-insensitive
    assert r.status_code == 200, r.text


def test_patch_me_name(srv):
    reg = register(srv, name="Before")
    tok = reg["accessToken"]
    for _ in range(4):
        assert me(srv, bearer(tok)).json()["name"] == "Before"
    r = patch(srv, "/api/auth/me", json={"name": "After"}, headers=bearer(tok))
    assert r.status_code == 200, r.text
    u = r.json()
    check_user(u, email=reg["_email"], name="After")
    assert parse_ts(u["updatedAt"]) >= parse_ts(reg["user"]["updatedAt"])
    assert me(srv, bearer(tok)).json()["name"] == "After"


def test_patch_me_merges_preferences_one_level(srv):
    reg = register(srv)
    h = bearer(reg["accessToken"])
    r = patch(srv, "/api/auth/me", json={"preferences": {"theme": "dark", "ui": {"a": 1, "b": 2}, "lang": "en"}},
              headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["preferences"] == {"theme": "dark", "ui": {"a": 1, "b": 2}, "lang": "en"}
    r = patch(srv, "/api/auth/me", json={"preferences": {"ui": {"c": 3}, "tz": "UTC"}}, headers=h)
    assert r.status_code == 200, r.text
    expect = {"theme": "dark", "ui": {"c": 3}, "lang": "en", "tz": "UTC"}
    assert r.json()["preferences"] == expect
    assert me(srv, h).json()["preferences"] == expect
    # the name was left alone
    assert r.json()["name"] == reg["user"]["name"]


def test_patch_me_ignores_fields_it_does_not_own(srv):
    reg = register(srv)
    h = bearer(reg["accessToken"])
    r = patch(srv, "/api/auth/me", json={"role": "admin", "email": "hijack@example.com", "isActive": False,
                                         "id": "x", "name": "Still Me"}, headers=h)
    assert r.status_code in (200, 400), r.text
    m = me(srv, h)
    assert m.status_code == 200, m.text
    u = m.json()
    assert u["role"] == "user" and u["email"] == reg["_email"] and u["isActive"] is True
    assert u["id"] == reg["user"]["id"]
    assert_error(srv.get("/api/users", headers=h), 403, "FORBIDDEN")


@pytest.mark.parametrize("payload,field", [
    ({"name": ""}, "name"),
    ({"name": "x" * 201}, "name"),
    ({"name": 5}, "name"),
    ({"name": None}, "name"),
    ({"preferences": "dark"}, "preferences"),
    ({"preferences": [1, 2]}, "preferences"),
    ({"preferences": {"big": "x" * (17 * 1024)}}, "preferences"),
])
def test_patch_me_validation(srv, payload, field):
    reg = register(srv, name="Unchanged")
    h = bearer(reg["accessToken"])
    r = patch(srv, "/api/auth/me", json=payload, headers=h)
    assert_validation(r, field)
    u = me(srv, h).json()
    assert u["name"] == "Unchanged" and u["preferences"] == {}


def test_patch_me_preferences_near_the_limit(srv):
    reg = register(srv)
    prefs = {"blob": "x" * (15 * 1024)}
    r = patch(srv, "/api/auth/me", json={"preferences": prefs}, headers=bearer(reg["accessToken"]))
    assert r.status_code == 200, r.text
    assert me(srv, bearer(reg["accessToken"])).json()["preferences"] == prefs


def test_patch_me_preferences_limit_applies_to_the_merged_document(srv):
    reg = register(srv)
    h = bearer(reg["accessToken"])
    r = patch(srv, "/api/auth/me", json={"preferences": {"a": "x" * 10000}}, headers=h)
    assert r.status_code == 200, r.text
    r = patch(srv, "/api/auth/me", json={"preferences": {"b": "y" * 10000}}, headers=h)
    assert_validation(r, "preferences")
    assert me(srv, h).json()["preferences"] == {"a": "x" * 10000}
    # replacing the big key keeps it under the limit
    r = patch(srv, "/api/auth/me", json={"preferences": {"a": "small", "b": "y" * 10000}}, headers=h)
    assert r.status_code == 200, r.text


def test_concurrent_registrations_of_one_email(srv):
    import concurrent.futures
    import requests
    email = uniq_email("race")

    def one(i):
        sess = requests.Session()
        sess.trust_env = False
        try:
            return sess.post(srv.url + "/api/auth/register",
                             json={"email": email if i % 2 else email.upper(), "password": DEFAULT_PASSWORD,
                                   "name": "R%d" % i}, timeout=30)
        finally:
            sess.close()
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        rs = list(ex.map(one, range(8)))
    assert sorted(r.status_code for r in rs) == [201] + [409] * 7, [r.status_code for r in rs]
    for r in rs:
        if r.status_code == 409:
            assert_error(r, 409, "CONFLICT")


def test_patch_me_needs_credentials(srv):
    assert_unauthorized(patch(srv, "/api/auth/me", json={"name": "x"}))


# ---------------------------------------------------------------- password change

def test_password_change(srv):
    reg = register(srv)
    h = bearer(reg["accessToken"])
    for _ in range(4):
        assert me(srv, h).status_code == 200
    r = srv.post("/api/auth/me/password", json={"currentPassword": DEFAULT_PASSWORD,
                                                "newPassword": "brand-new-pass-2"}, headers=h)
    assert r.status_code == 204, r.text
    assert r.content == b""
    assert_error(srv.post("/api/auth/login", json={"email": reg["_email"], "password": DEFAULT_PASSWORD}),
                 401, "INVALID_CREDENTIALS")
    body = login(srv, reg["_email"], "brand-new-pass-2")
    assert body["user"]["id"] == reg["user"]["id"]


def test_password_change_revokes_every_refresh_family(srv):
    reg = register(srv)
    other = login(srv, reg["_email"])
    r = srv.post("/api/auth/me/password", json={"currentPassword": DEFAULT_PASSWORD,
                                                "newPassword": "brand-new-pass-3"},
                 headers=bearer(reg["accessToken"]))
    assert r.status_code == 204, r.text
    assert_unauthorized(refresh(srv, other["refreshToken"]))
    assert_unauthorized(refresh(srv, reg["refreshToken"]))
    assert_unauthorized(me(srv, bearer(other["accessToken"])))


def test_password_change_wrong_current_password(srv):
    reg = register(srv)
    h = bearer(reg["accessToken"])
    r = srv.post("/api/auth/me/password", json={"currentPassword": "not-my-password",
                                                "newPassword": "brand-new-pass-4"}, headers=h)
    assert_validation(r, "currentPassword")
    # nothing changed, no session was revoked
    login(srv, reg["_email"], DEFAULT_PASSWORD)
    assert me(srv, h).status_code == 200
    assert refresh(srv, reg["refreshToken"]).status_code == 200


@pytest.mark.parametrize("payload,field", [
    ({"currentPassword": DEFAULT_PASSWORD, "newPassword": "short"}, "newPassword"),
    ({"currentPassword": DEFAULT_PASSWORD, "newPassword": "x" * 73}, "newPassword"),
    ({"currentPassword": DEFAULT_PASSWORD}, "newPassword"),
    ({"newPassword": "brand-new-pass-5"}, "currentPassword"),
    ({"currentPassword": DEFAULT_PASSWORD, "newPassword": 123456789}, "newPassword"),
])
def test_password_change_validation(srv, payload, field):
    reg = register(srv)
    r = srv.post("/api/auth/me/password", json=payload, headers=bearer(reg["accessToken"]))
    assert_validation(r, field)
    login(srv, reg["_email"], DEFAULT_PASSWORD)


def test_password_change_needs_credentials(srv):
    r = srv.post("/api/auth/me/password", json={"currentPassword": DEFAULT_PASSWORD, "newPassword": "brand-new-6"})
    assert_unauthorized(r)
