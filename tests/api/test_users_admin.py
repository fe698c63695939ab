"""Admin user management (GET /api/users, PATCH /api/users/:id) and the role x route matrix."""
import time
import uuid

import pytest

from conftest import assert_error, assert_security_headers, shared_server
from authutil import (ADMIN_EMAIL, USER_KEYS, admin_login, apikey, assert_unauthorized,
                      assert_validation, auth_env, bearer, create_key, login, make_user, me, parse_ts, patch,
                      register, set_user)

UNKNOWN_ID = "0190b2a4-0000-7000-8000-000000000000"


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    yield from shared_server(tmp_path_factory, "users", **auth_env())


@pytest.fixture(scope="module")
def adm(srv):
    return admin_login(srv)


@pytest.fixture(scope="module")
def people(srv, adm):
    """Five users sharing a tag; three different orders by createdAt, email and name.
    echo is a viewer."""
    tag = uuid.uuid4().hex[:10]
    made = {}
    for idx, nm in zip([5, 4, 3, 2, 1], ["delta", "alpha", "echo", "charlie", "bravo"]):
        body = register(srv, email="u%d-%s@example.com" % (idx, tag), name="%s %s" % (tag, nm.capitalize()))
        made[nm] = body["user"]
        time.sleep(0.003)
    made["echo"] = set_user(srv, adm["accessToken"], made["echo"]["id"], role="viewer")
    return tag, made


def users(srv, tok, expect=200, **params):
    r = srv.get("/api/users", headers=bearer(tok), params=params)
    assert r.status_code == expect, r.text
    return r.json()


def names(body):
    return [u["name"].split(" ", 1)[1].lower() for u in body["data"]]


# ---------------------------------------------------------------- GET /api/users

def test_list_shape(srv, adm, people):
    r = srv.get("/api/users", headers=bearer(adm["accessToken"]))
    assert r.status_code == 200, r.text
    assert_security_headers(r)
    body = r.json()
    assert set(body) == {"data", "pagination"}
    p = body["pagination"]
    assert p["page"] == 1 and p["limit"] == 20
    assert p["total"] >= 6
    assert p["totalPages"] == (p["total"] + 19) // 20
    assert 6 <= len(body["data"]) <= 20
    for u in body["data"]:
        assert set(u) == USER_KEYS, sorted(u)
    assert "$2" not in r.text and "password" not in r.text.lower()
    emails = [u["email"] for u in body["data"]]
    assert ADMIN_EMAIL in emails
    # a list this long is compressed for a client that accepts gzip
    assert len(r.content) > 1024
    assert r.headers.get("Content-Encoding") == "gzip", r.headers


def test_search_matches_email_or_name_case_insensitively(srv, adm, people):
    tag, made = people
    b = users(srv, adm["accessToken"], search=tag)
    assert b["pagination"]["total"] == 5
    assert sorted(names(b)) == ["alpha", "bravo", "charlie", "delta", "echo"]
    assert users(srv, adm["accessToken"], search=tag.upper())["pagination"]["total"] == 5
    # only in an email
    b = users(srv, adm["accessToken"], search="U3-%s" % tag)
    assert names(b) == ["echo"]
    # only in a name
    b = users(srv, adm["accessToken"], search="%s CHARLIE" % tag)
    assert names(b) == ["charlie"]


def test_search_treats_like_wildcards_literally(srv, adm, people):
    tag, _ = people
    assert users(srv, adm["accessToken"], search="%")["pagination"]["total"] == 0
    assert users(srv, adm["accessToken"], search="_" * 3 + tag[3:])["pagination"]["total"] == 0


def test_role_filter(srv, adm, people):
    tag, made = people
    b = users(srv, adm["accessToken"], search=tag, role="viewer")
    assert names(b) == ["echo"]
    assert b["data"][0]["role"] == "viewer"
    b = users(srv, adm["accessToken"], search=tag, role="user")
    assert sorted(names(b)) == ["alpha", "bravo", "charlie", "delta"]
    b = users(srv, adm["accessToken"], role="admin", limit=100)
    assert b["data"] and all(u["role"] == "admin" for u in b["data"])
    assert ADMIN_EMAIL in [u["email"] for u in b["data"]]


def test_default_sort_is_created_at(srv, adm, people):
    tag, _ = people
    assert names(users(srv, adm["accessToken"], search=tag)) == ["delta", "alpha", "echo", "charlie", "bravo"]


@pytest.mark.parametrize("sort,order", [
    ("createdAt", ["delta", "alpha", "echo", "charlie", "bravo"]),
    ("-createdAt", ["bravo", "charlie", "echo", "alpha", "delta"]),
    ("email", ["bravo", "charlie", "echo", "alpha", "delta"]),
    ("-email", ["delta", "alpha", "echo", "charlie", "bravo"]),
    ("name", ["alpha", "bravo", "charlie", "delta", "echo"]),
    ("-name", ["echo", "delta", "charlie", "bravo", "alpha"]),
])
def test_sort(srv, adm, people, sort, order):
    tag, _ = people
    assert names(users(srv, adm["accessToken"], search=tag, sort=sort)) == order


def test_pagination(srv, adm, people):
    tag, _ = people
    tok = adm["accessToken"]
    b1 = users(srv, tok, search=tag, limit=2, sort="name")
    assert b1["pagination"] == {"page": 1, "limit": 2, "total": 5, "totalPages": 3}
    assert names(b1) == ["alpha", "bravo"]
    b2 = users(srv, tok, search=tag, limit=2, page=2, sort="name")
    assert names(b2) == ["charlie", "delta"]
    b3 = users(srv, tok, search=tag, limit=2, page=3, sort="name")
    assert names(b3) == ["echo"]
    assert b3["pagination"] == {"page": 3, "limit": 2, "total": 5, "totalPages": 3}
    b4 = users(srv, tok, search=tag, limit=2, page=4, sort="name")
    assert b4 == {"data": [], "pagination": {"page": 4, "limit": 2, "total": 5, "totalPages": 3}}
    assert len(users(srv, tok, search=tag, limit=100)["data"]) == 5


def test_pages_do_not_overlap_when_sort_values_tie(srv, adm):
    tag = uuid.uuid4().hex[:10]
    made = {register(srv, email="same-%d-%s@example.com" % (i, tag), name="Same %s" % tag)["user"]["id"]
            for i in range(7)}
    for sort in ("name", "-name", "createdAt", "-createdAt"):
        seen = []
        for page in (1, 2, 3, 4):
            seen += [u["id"] for u in users(srv, adm["accessToken"], search=tag, limit=2, page=page, sort=sort)["data"]]
        assert len(seen) == 7 and set(seen) == made, (sort, seen)


@pytest.mark.parametrize("q", ["zq'xw", "\\", "\"; DROP TABLE users; --", "é", "[a-z]*"])
def test_search_with_special_characters(srv, adm, q):
    r = srv.get("/api/users", headers=bearer(adm["accessToken"]), params={"search": q})
    assert r.status_code in (200, 400), r.text
    if r.status_code == 400:
        assert_error(r, 400, "VALIDATION_ERROR")
    else:
        assert r.json()["pagination"]["total"] == 0, r.text


@pytest.mark.parametrize("query", ["limit=5%00x", "page=1%00x", "sort=email%00x", "role=user%00x"])
def test_query_value_with_nul_is_not_cut_short(srv, adm, query):
    """"5\\0x" is no more a number than "5x", nor "email\\0x" a sort field."""
    r = srv.get("/api/users?" + query, headers=bearer(adm["accessToken"]))
    assert_error(r, 400, "VALIDATION_ERROR")


@pytest.mark.parametrize("query", ["search=%00x"])
def test_search_with_nul_does_not_match_everyone(srv, adm, people, query):
    r = srv.get("/api/users?" + query, headers=bearer(adm["accessToken"]))
    if r.status_code == 400:
        assert_error(r, 400, "VALIDATION_ERROR")
    else:
        assert r.status_code == 200, r.text
        assert r.json()["pagination"]["total"] == 0, r.text[:300]


def test_search_finds_quote_in_name(srv, adm):
    body = register(srv, name="Miles O'Brien-%s" % uuid.uuid4().hex[:6])
    suffix = body["user"]["name"].split("-")[-1]
    b = users(srv, adm["accessToken"], search="o'brien-%s" % suffix)
    assert [u["id"] for u in b["data"]] == [body["user"]["id"]]


def test_empty_result(srv, adm):
    b = users(srv, adm["accessToken"], search="nobody-%s" % uuid.uuid4().hex)
    assert b == {"data": [], "pagination": {"page": 1, "limit": 20, "total": 0, "totalPages": 0}}
    b = users(srv, adm["accessToken"], search="nobody-%s" % uuid.uuid4().hex, page=3)
    assert b["data"] == [] and b["pagination"]["totalPages"] == 0


@pytest.mark.parametrize("params", [
    {"limit": 0}, {"limit": 101}, {"limit": -1}, {"limit": "ten"}, {"limit": "1.5"}, {"limit": "0x10"},
    {"limit": "1e1"}, {"limit": " 5"}, {"limit": "5 "}, {"limit": "-0"}, {"limit": "4294967301"},
    {"limit": "1" * 30}, {"page": "4294967297"},
    {"page": 0}, {"page": -2}, {"page": "first"},
    {"sort": "password"}, {"sort": "-passwordHash"}, {"sort": "role"}, {"sort": "--email"},
    {"role": "superuser"},
    {"search": "x" * 201},
])
def test_bad_query_400(srv, adm, params):
    r = srv.get("/api/users", headers=bearer(adm["accessToken"]), params=params)
    assert_error(r, 400, "VALIDATION_ERROR")


def test_limit_100_and_search_200_ok(srv, adm):
    assert users(srv, adm["accessToken"], limit=100)["pagination"]["limit"] == 100
    assert users(srv, adm["accessToken"], search="y" * 200)["pagination"]["total"] == 0


# ---------------------------------------------------------------- PATCH /api/users/:id

def test_patch_role(srv, adm):
    u = register(srv)
    uid = u["user"]["id"]
    r = patch(srv, "/api/users/%s" % uid, json={"role": "viewer"}, headers=bearer(adm["accessToken"]))
    assert r.status_code == 200, r.text
    assert_security_headers(r)
    body = r.json()
    assert set(body) == USER_KEYS
    assert body["id"] == uid and body["role"] == "viewer" and body["isActive"] is True
    assert parse_ts(body["updatedAt"]) >= parse_ts(u["user"]["updatedAt"])
    assert me(srv, bearer(u["accessToken"])).json()["role"] == "viewer"
    body = set_user(srv, adm["accessToken"], uid, role="admin")
    assert body["role"] == "admin"
    assert srv.get("/api/users", headers=bearer(u["accessToken"])).status_code == 200


def test_patch_is_active(srv, adm):
    u = register(srv)
    uid = u["user"]["id"]
    body = set_user(srv, adm["accessToken"], uid, isActive=False)
    assert body["isActive"] is False and body["role"] == "user"
    listed = users(srv, adm["accessToken"], search=u["_email"])["data"]
    assert [x["isActive"] for x in listed] == [False]
    assert_unauthorized(me(srv, bearer(u["accessToken"])))
    body = set_user(srv, adm["accessToken"], uid, isActive=True)
    assert body["isActive"] is True
    login(srv, u["_email"])


def test_patch_both(srv, adm):
    u = register(srv)
    body = set_user(srv, adm["accessToken"], u["user"]["id"], role="viewer", isActive=False)
    assert body["role"] == "viewer" and body["isActive"] is False


def test_patch_ignores_other_fields(srv, adm):
    u = register(srv, name="Keep Name")
    r = patch(srv, "/api/users/%s" % u["user"]["id"], json={"role": "viewer", "email": "changed@example.com",
                                                            "name": "Other", "id": UNKNOWN_ID},
              headers=bearer(adm["accessToken"]))
    assert r.status_code in (200, 400), r.text
    cur = users(srv, adm["accessToken"], search=u["_email"])["data"]
    assert len(cur) == 1 and cur[0]["id"] == u["user"]["id"]
    assert cur[0]["email"] == u["_email"]


@pytest.mark.parametrize("uid", [UNKNOWN_ID, "not-a-uuid", "x" * 64])
def test_patch_unknown_user_404(srv, adm, uid):
    r = patch(srv, "/api/users/%s" % uid, json={"role": "user"}, headers=bearer(adm["accessToken"]))
    assert_error(r, 404, "NOT_FOUND")


@pytest.mark.parametrize("payload,field", [
    ({"role": "root"}, "role"),
    ({"role": "Admin"}, "role"),
    ({"role": 1}, "role"),
    ({"role": None}, "role"),
    ({"isActive": "false"}, "isActive"),
    ({"isActive": 0}, "isActive"),
    ({"isActive": None}, "isActive"),
])
def test_patch_validation(srv, adm, payload, field):
    u = register(srv)
    r = patch(srv, "/api/users/%s" % u["user"]["id"], json=payload, headers=bearer(adm["accessToken"]))
    assert_validation(r, field)
    assert me(srv, bearer(u["accessToken"])).json()["role"] == "user"


def test_admin_cannot_demote_self(srv):
    a = make_user(srv, role="admin")
    uid = a["user"]["id"]
    r = patch(srv, "/api/users/%s" % uid, json={"role": "user"}, headers=bearer(a["accessToken"]))
    assert_validation(r, "role")
    assert srv.get("/api/users", headers=bearer(a["accessToken"])).status_code == 200


def test_admin_cannot_deactivate_self(srv):
    a = make_user(srv, role="admin")
    uid = a["user"]["id"]
    r = patch(srv, "/api/users/%s" % uid, json={"isActive": False}, headers=bearer(a["accessToken"]))
    assert_validation(r, "isActive")
    assert me(srv, bearer(a["accessToken"])).json()["isActive"] is True


def test_admin_may_demote_another_admin(srv, adm):
    a = make_user(srv, role="admin")
    body = set_user(srv, adm["accessToken"], a["user"]["id"], role="user")
    assert body["role"] == "user"
    assert_error(srv.get("/api/users", headers=bearer(a["accessToken"])), 403, "FORBIDDEN")


# ---------------------------------------------------------------- role x route matrix

PRINCIPALS = ["admin", "user", "viewer", "key_rw", "key_read", "admin_key_rw", "admin_key_read",
              "none", "bad_token", "bad_key"]


@pytest.fixture(scope="module")
def principals(srv, adm):
    admin = make_user(srv, role="admin", admin_tok=adm["accessToken"])
    user = make_user(srv, role="user")
    viewer = make_user(srv, role="viewer", admin_tok=adm["accessToken"])
    krw = create_key(srv, user["accessToken"], name="rw")
    kr = create_key(srv, user["accessToken"], name="r", scopes=["read"])
    akrw = create_key(srv, admin["accessToken"], name="arw")
    akr = create_key(srv, admin["accessToken"], name="ar", scopes=["read"])
    return {
        "admin": admin, "user": user, "viewer": viewer,
        "key_rw": krw, "key_read": kr, "admin_key_rw": akrw, "admin_key_read": akr,
    }


def creds(srv, principals, who, fresh=False):
    if who in ("admin", "user", "viewer"):
        acct = principals[who]
        if fresh:
            return bearer(login(srv, acct["_email"])["accessToken"])
        return bearer(acct["accessToken"])
    if who in ("key_rw", "key_read", "admin_key_rw", "admin_key_read"):
        return apikey(principals[who]["key"])
    if who == "bad_token":
        return bearer("eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl")
    if who == "bad_key":
        return apikey("aop_" + "Q" * 43)
    return {}


ANY = {p: None for p in PRINCIPALS}


def row(admin, user, viewer, key_rw, key_read, admin_key_rw, admin_key_read, none, bad_token=None, bad_key=None):
    return {"admin": admin, "user": user, "viewer": viewer, "key_rw": key_rw, "key_read": key_read,
            "admin_key_rw": admin_key_rw, "admin_key_read": admin_key_read, "none": none,
            "bad_token": bad_token if bad_token is not None else none,
            "bad_key": bad_key if bad_key is not None else none}


# method, path, body, expected status per principal
MATRIX = [
    ("POST", "/api/auth/register", {}, row(400, 400, 400, 400, 400, 400, 400, 400)),
    ("POST", "/api/auth/login", {}, row(400, 400, 400, 400, 400, 400, 400, 400)),
    ("POST", "/api/auth/refresh", {"refreshToken": "garbage"}, row(401, 401, 401, 401, 401, 401, 401, 401)),
    ("POST", "/api/auth/logout", {}, row(204, 204, 204, 403, 403, 403, 403, 401)),
    ("GET", "/api/auth/me", None, row(200, 200, 200, 200, 200, 200, 200, 401)),
    ("PATCH", "/api/auth/me", {"preferences": {"matrix": 1}}, row(200, 200, 200, 200, 403, 200, 403, 401)),
    ("POST", "/api/auth/me/password", {"currentPassword": "not-the-password", "newPassword": "new-password-9"},
     row(400, 400, 400, 403, 403, 403, 403, 401)),
    ("POST", "/api/auth/api-keys", {"name": ""}, row(400, 400, 403, 403, 403, 403, 403, 401)),
    ("GET", "/api/auth/api-keys", None, row(200, 200, 200, 403, 403, 403, 403, 401)),
    ("DELETE", "/api/auth/api-keys/" + UNKNOWN_ID, None, row(404, 404, 404, 403, 403, 403, 403, 401)),
    ("GET", "/api/users", None, row(200, 403, 403, 403, 403, 200, 200, 401)),
    ("PATCH", "/api/users/" + UNKNOWN_ID, {"role": "user"}, row(404, 403, 403, 403, 403, 404, 403, 401)),
]

CODES = {400: "VALIDATION_ERROR", 401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND"}


@pytest.mark.parametrize("method,path,body,expected", MATRIX,
                         ids=["%s %s" % (m[0], m[1].replace(UNKNOWN_ID, ":id")) for m in MATRIX])
def test_role_route_matrix(srv, principals, method, path, body, expected):
    got = {}
    wrong = []
    for who in PRINCIPALS:
        h = creds(srv, principals, who, fresh=(path == "/api/auth/logout"))
        kw = {"headers": h}
        if body is not None:
            kw["json"] = body
        r = srv.request(method, path, **kw)
        got[who] = r.status_code
        want = expected[who]
        if r.status_code != want:
            wrong.append("%s: expected %d, got %d %s" % (who, want, r.status_code, r.text[:200]))
            continue
        if want in CODES:
            code = CODES[want]
            if path == "/api/auth/refresh":
                code = "UNAUTHORIZED"
            try:
                err = assert_error(r, want, code)
            except AssertionError as e:
                wrong.append("%s: %s" % (who, e))
                continue
            if want == 400 and path == "/api/auth/me/password":
                if "currentPassword" not in {d.get("field") for d in err.get("details") or []}:
                    wrong.append("%s: 400 should name currentPassword: %r" % (who, err))
    assert not wrong, "%s %s:\n  %s" % (method, path, "\n  ".join(wrong))
    # the principals' credentials are still good (nothing in the matrix revoked them)
    for who in ("admin", "user", "viewer", "key_rw", "key_read"):
        assert me(srv, creds(srv, principals, who)).status_code == 200, who
