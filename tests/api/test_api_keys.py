"""API keys: create, list, delete, scopes, use, validation, storage."""
import base64
import os
import re
import time

import pytest

from conftest import assert_error, assert_security_headers, shared_server
from authutil import (KEY_KEYS, API_KEY_RE, UUID7, apikey, assert_unauthorized, assert_validation, auth_env,
                      bearer, create_key, db_bytes, db_rows, delete, iso_in, make_user, me, parse_ts, patch,
                      register, sha256_hex)


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    yield from shared_server(tmp_path_factory, "apikeys", **auth_env())


@pytest.fixture
def acct(srv):
    return register(srv)


def list_keys(srv, tok, **params):
    r = srv.get("/api/auth/api-keys", headers=bearer(tok), params=params)
    assert r.status_code == 200, r.text
    return r.json()


# ---------------------------------------------------------------- create

def test_create_with_defaults(srv, acct):
    r = srv.post("/api/auth/api-keys", json={"name": "ci"}, headers=bearer(acct["accessToken"]))
    assert r.status_code == 201, r.text
    assert_security_headers(r)
    k = r.json()
    assert set(k) == KEY_KEYS, sorted(k)
    assert UUID7.match(k["id"]), k["id"]
    assert k["name"] == "ci"
    assert API_KEY_RE.match(k["key"]), k["key"]
    # 43 base64url characters are 32 bytes
    assert len(base64.urlsafe_b64decode(k["key"][4:] + "=")) == 32
    assert k["prefix"] == k["key"][:12]
    assert sorted(k["scopes"]) == ["read", "write"]
    assert k["expiresAt"] is None
    assert k["lastUsedAt"] is None
    parse_ts(k["createdAt"])
    # it acts as its user
    m = me(srv, apikey(k["key"]))
    assert m.status_code == 200, m.text
    assert m.json()["id"] == acct["user"]["id"]


def test_keys_are_unique(srv, acct):
    a = create_key(srv, acct["accessToken"])
    b = create_key(srv, acct["accessToken"])
    assert a["key"] != b["key"] and a["id"] != b["id"]


def test_create_with_scopes_and_expiry(srv, acct):
    exp = iso_in(3600)
    k = create_key(srv, acct["accessToken"], name="reader", scopes=["read"], expiresAt=exp)
    assert k["scopes"] == ["read"]
    assert parse_ts(k["expiresAt"]) == parse_ts(exp)
    assert me(srv, apikey(k["key"])).status_code == 200


def test_create_with_null_expiry(srv, acct):
    k = create_key(srv, acct["accessToken"], expiresAt=None)
    assert k["expiresAt"] is None


def test_create_accepts_offset_timestamp(srv, acct):
    k = create_key(srv, acct["accessToken"], expiresAt="2099-01-02T03:04:05+02:00")
    assert k["expiresAt"] == "2099-01-02T01:04:05.000Z"


@pytest.mark.parametrize("payload,field", [
    ({}, "name"),
    ({"name": ""}, "name"),
    ({"name": "x" * 101}, "name"),
    ({"name": 7}, "name"),
    ({"name": "k", "scopes": []}, "scopes"),
    ({"name": "k", "scopes": ["admin"]}, "scopes"),
    ({"name": "k", "scopes": ["read", "delete"]}, "scopes"),
    ({"name": "k", "scopes": "read"}, "scopes"),
    ({"name": "k", "scopes": [1]}, "scopes"),
    ({"name": "k", "expiresAt": "2001-01-01T00:00:00.000Z"}, "expiresAt"),
    ({"name": "k", "expiresAt": "PAST"}, "expiresAt"),
    ({"name": "k", "expiresAt": "tomorrow"}, "expiresAt"),
    ({"name": "k", "expiresAt": 4102444800}, "expiresAt"),
])
def test_create_validation(srv, acct, payload, field):
    payload = dict(payload)
    if payload.get("expiresAt") == "PAST":
        payload["expiresAt"] = iso_in(-5)
    r = srv.post("/api/auth/api-keys", json=payload, headers=bearer(acct["accessToken"]))
    assert_validation(r, field)
    assert list_keys(srv, acct["accessToken"])["data"] == []


def test_name_of_100_chars_ok(srv, acct):
    assert create_key(srv, acct["accessToken"], name="k" * 100)["name"] == "k" * 100


def test_name_length_counts_characters(srv, acct):
    assert create_key(srv, acct["accessToken"], name="é" * 100)["name"] == "é" * 100
    r = srv.post("/api/auth/api-keys", json={"name": "é" * 101}, headers=bearer(acct["accessToken"]))
    assert_validation(r, "name")


def test_viewer_cannot_create(srv):
    v = make_user(srv, role="viewer")
    r = srv.post("/api/auth/api-keys", json={"name": "nope"}, headers=bearer(v["accessToken"]))
    assert_error(r, 403, "FORBIDDEN")
    assert list_keys(srv, v["accessToken"])["data"] == []


def test_admin_can_create_and_key_has_admin_role(srv):
    a = make_user(srv, role="admin")
    k = create_key(srv, a["accessToken"])
    assert srv.get("/api/users", headers=apikey(k["key"])).status_code == 200


def test_at_most_50_keys(srv, acct):
    for i in range(50):
        create_key(srv, acct["accessToken"], name="k%d" % i)
    r = srv.post("/api/auth/api-keys", json={"name": "one too many"}, headers=bearer(acct["accessToken"]))
    assert_error(r, 400, "VALIDATION_ERROR")
    assert list_keys(srv, acct["accessToken"], limit=100)["pagination"]["total"] == 50


def test_at_most_50_keys_under_concurrency(srv, acct):
    import concurrent.futures
    import requests
    tok = acct["accessToken"]
    for i in range(40):
        create_key(srv, tok, name="pre%d" % i)

    def one(i):
        sess = requests.Session()
        sess.trust_env = False
        try:
            return sess.post(srv.url + "/api/auth/api-keys", json={"name": "race%d" % i}, headers=bearer(tok),
                             timeout=30)
        finally:
            sess.close()
    with concurrent.futures.ThreadPoolExecutor(10) as ex:
        rs = list(ex.map(one, range(20)))
    codes = [r.status_code for r in rs]
    assert codes.count(201) == 10 and codes.count(400) == 10, codes
    assert list_keys(srv, tok, limit=100)["pagination"]["total"] == 50


def test_deleting_a_key_makes_room_again(srv, acct):
    tok = acct["accessToken"]
    keys = [create_key(srv, tok, name="k%d" % i) for i in range(50)]
    assert_error(srv.post("/api/auth/api-keys", json={"name": "x"}, headers=bearer(tok)), 400, "VALIDATION_ERROR")
    assert delete(srv, "/api/auth/api-keys/%s" % keys[0]["id"], headers=bearer(tok)).status_code == 204
    create_key(srv, tok, name="again")


# ---------------------------------------------------------------- list

def test_list_without_key_newest_first(srv, acct):
    tok = acct["accessToken"]
    made = []
    for i in range(3):
        made.append(create_key(srv, tok, name="key-%d" % i))
        time.sleep(0.003)   # distinct createdAt: the order is not left to tie-breaking
    r = srv.get("/api/auth/api-keys", headers=bearer(tok))
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"data", "pagination"}
    assert body["pagination"] == {"page": 1, "limit": 20, "total": 3, "totalPages": 1}
    items = body["data"]
    assert [i["id"] for i in items] == [m["id"] for m in reversed(made)]
    for it, m in zip(items, reversed(made)):
        assert "key" not in it
        assert set(it) == KEY_KEYS - {"key"}, sorted(it)
        assert it["prefix"] == m["prefix"] and it["name"] == m["name"]
        assert it["createdAt"] == m["createdAt"]
    for m in made:
        assert m["key"] not in r.text
        assert m["key"][12:] not in r.text


def test_list_pagination(srv, acct):
    tok = acct["accessToken"]
    for i in range(3):
        create_key(srv, tok, name="p%d" % i)
        time.sleep(0.003)
    b = list_keys(srv, tok, limit=2, page=2)
    assert b["pagination"] == {"page": 2, "limit": 2, "total": 3, "totalPages": 2}
    assert [k["name"] for k in b["data"]] == ["p0"]
    assert list_keys(srv, tok, limit=2, page=3)["data"] == []


def test_list_empty(srv, acct):
    b = list_keys(srv, acct["accessToken"])
    assert b == {"data": [], "pagination": {"page": 1, "limit": 20, "total": 0, "totalPages": 0}}


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 101}, {"page": 0}, {"limit": "x"}])
def test_list_bad_paging_400(srv, acct, params):
    r = srv.get("/api/auth/api-keys", headers=bearer(acct["accessToken"]), params=params)
    assert_error(r, 400, "VALIDATION_ERROR")


def test_list_shows_only_own_keys(srv, acct):
    other = register(srv)
    create_key(srv, other["accessToken"], name="theirs")
    create_key(srv, acct["accessToken"], name="mine")
    assert [k["name"] for k in list_keys(srv, acct["accessToken"])["data"]] == ["mine"]


def test_pages_do_not_overlap_when_keys_share_a_timestamp(srv, acct):
    tok = acct["accessToken"]
    made = {create_key(srv, tok, name="burst%d" % i)["id"] for i in range(7)}
    seen = []
    for page in (1, 2, 3, 4):
        seen += [k["id"] for k in list_keys(srv, tok, limit=2, page=page)["data"]]
    assert len(seen) == 7 and set(seen) == made, seen


# ---------------------------------------------------------------- delete

def test_delete(srv, acct):
    tok = acct["accessToken"]
    k = create_key(srv, tok)
    keep = create_key(srv, tok)
    for _ in range(4):
        assert me(srv, apikey(k["key"])).status_code == 200
    r = delete(srv, "/api/auth/api-keys/%s" % k["id"], headers=bearer(tok))
    assert r.status_code == 204, r.text
    assert r.content == b""
    assert_unauthorized(me(srv, apikey(k["key"])))
    assert [x["id"] for x in list_keys(srv, tok)["data"]] == [keep["id"]]
    assert me(srv, apikey(keep["key"])).status_code == 200
    assert_error(delete(srv, "/api/auth/api-keys/%s" % k["id"], headers=bearer(tok)), 404, "NOT_FOUND")


def test_delete_another_users_key_404(srv, acct):
    other = register(srv)
    k = create_key(srv, other["accessToken"])
    r = delete(srv, "/api/auth/api-keys/%s" % k["id"], headers=bearer(acct["accessToken"]))
    assert_error(r, 404, "NOT_FOUND")
    assert me(srv, apikey(k["key"])).status_code == 200
    # not even an admin deletes another user's key through this route
    adm = make_user(srv, role="admin")
    assert_error(delete(srv, "/api/auth/api-keys/%s" % k["id"], headers=bearer(adm["accessToken"])),
                 404, "NOT_FOUND")
    assert me(srv, apikey(k["key"])).status_code == 200


@pytest.mark.parametrize("kid", ["0190b2a4-0000-7000-8000-000000000000", "not-a-uuid", "1"])
def test_delete_unknown_404(srv, acct, kid):
    assert_error(delete(srv, "/api/auth/api-keys/%s" % kid, headers=bearer(acct["accessToken"])),
                 404, "NOT_FOUND")


def test_delete_with_an_api_key_403(srv, acct):
    k = create_key(srv, acct["accessToken"])
    r = delete(srv, "/api/auth/api-keys/%s" % k["id"], headers=apikey(k["key"]))
    assert_error(r, 403, "FORBIDDEN")
    assert me(srv, apikey(k["key"])).status_code == 200


# ---------------------------------------------------------------- scopes and routes

def test_read_scope_get_only(srv, acct):
    k = create_key(srv, acct["accessToken"], scopes=["read"])
    h = apikey(k["key"])
    assert me(srv, h).status_code == 200
    assert srv.head("/api/auth/me", headers=h).status_code == 200
    assert_error(patch(srv, "/api/auth/me", json={"name": "changed"}, headers=h), 403, "FORBIDDEN")
    assert me(srv, h).json()["name"] == acct["user"]["name"]
    assert_error(srv.post("/api/auth/api-keys", json={"name": "x"}, headers=h), 403, "FORBIDDEN")


def test_write_scope_may_patch_me(srv, acct):
    k = create_key(srv, acct["accessToken"], scopes=["write"])
    r = patch(srv, "/api/auth/me", json={"name": "By Key"}, headers=apikey(k["key"]))
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "By Key"


def test_rw_scope_may_patch_me(srv, acct):
    k = create_key(srv, acct["accessToken"])
    r = patch(srv, "/api/auth/me", json={"preferences": {"k": 1}}, headers=apikey(k["key"]))
    assert r.status_code == 200, r.text
    assert r.json()["preferences"] == {"k": 1}


@pytest.mark.parametrize("method,path,body", [
    ("GET", "/api/auth/api-keys", None),
    ("POST", "/api/auth/api-keys", {"name": "x"}),
    ("POST", "/api/auth/logout", {}),
    ("POST", "/api/auth/me/password", {"currentPassword": "correct-horse-1", "newPassword": "new-password-1"}),
])
def test_api_key_on_bearer_route_403(srv, acct, method, path, body):
    k = create_key(srv, acct["accessToken"])
    kw = {"headers": apikey(k["key"])}
    if body is not None:
        kw["json"] = body
    assert_error(srv.request(method, path, **kw), 403, "FORBIDDEN")
    # nothing happened: the password and the sessions are as they were
    assert me(srv, bearer(acct["accessToken"])).status_code == 200
    assert srv.post("/api/auth/login", json={"email": acct["_email"], "password": "correct-horse-1"}).status_code == 200


def test_bearer_wins_over_api_key(srv, acct):
    other = register(srv)
    k = create_key(srv, other["accessToken"])
    r = srv.get("/api/auth/me", headers={**bearer(acct["accessToken"]), **apikey(k["key"])})
    assert r.status_code == 200, r.text
    assert r.json()["id"] == acct["user"]["id"]
    # and on a bearer-only route the pair is a bearer request
    r = srv.get("/api/auth/api-keys", headers={**bearer(acct["accessToken"]), **apikey(k["key"])})
    assert r.status_code == 200, r.text


def test_bad_bearer_is_not_rescued_by_a_good_key(srv, acct):
    k = create_key(srv, acct["accessToken"])
    assert_unauthorized(srv.get("/api/auth/me", headers={**bearer("not.a.token"), **apikey(k["key"])}))


# ---------------------------------------------------------------- refused keys

def test_expired_key_401(srv, acct):
    k = create_key(srv, acct["accessToken"], expiresAt=iso_in(1.5))
    for _ in range(4):
        assert me(srv, apikey(k["key"])).status_code == 200
    time.sleep(2.0)
    assert_unauthorized(me(srv, apikey(k["key"])))


def _random_key():
    return "aop_" + base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()


@pytest.mark.parametrize("key", [
    "UNKNOWN", "", "aop_", "aop_short", "xyz_" + "A" * 43, "aop_" + "A" * 42 + "!", "aop_" + "A" * 44,
    "AOP_" + "A" * 43, "aop_" + "A" * 43 + " extra",
])
def test_unknown_or_malformed_key_401(srv, key):
    if key == "UNKNOWN":
        key = _random_key()
    assert_unauthorized(me(srv, apikey(key)))


def test_key_differing_in_one_char_401(srv, acct):
    k = create_key(srv, acct["accessToken"])["key"]
    last = "A" if k[-1] != "A" else "B"
    assert_unauthorized(me(srv, apikey(k[:-1] + last)))


def test_last_used_at_is_set_after_use(srv, acct):
    k = create_key(srv, acct["accessToken"])
    before = time.time()
    assert me(srv, apikey(k["key"])).status_code == 200
    deadline = time.monotonic() + 3
    while True:
        item = [x for x in list_keys(srv, acct["accessToken"])["data"] if x["id"] == k["id"]][0]
        if item["lastUsedAt"] is not None or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert item["lastUsedAt"] is not None, item
    t = parse_ts(item["lastUsedAt"]).timestamp()
    assert before - 2 <= t <= time.time() + 2


# ---------------------------------------------------------------- storage

def test_only_the_sha256_of_the_key_is_stored(srv, acct):
    k = create_key(srv, acct["accessToken"], name="stored")
    assert me(srv, apikey(k["key"])).status_code == 200
    rows = db_rows(srv, "SELECT * FROM api_keys WHERE id = ?", (k["id"],))
    assert len(rows) == 1, rows
    row = rows[0]
    hexes = [v for v in row.values() if isinstance(v, str) and re.fullmatch(r"[0-9a-fA-F]{64}", v)]
    assert hexes, "no column holds a 64-hex value: %r" % row
    assert sha256_hex(k["key"]) in [h.lower() for h in hexes], row
    for col, v in row.items():
        if isinstance(v, str):
            assert k["key"] not in v, col
            assert k["key"][12:] not in v, col
    blob = db_bytes(srv)
    assert k["key"].encode() not in blob
    assert k["key"][12:].encode() not in blob
    assert k["key"][-20:].encode() not in blob
    log = srv.stderr_text()
    assert k["key"] not in log
    assert k["key"][12:] not in log
