"""Who may do what with a workflow: the role x route x permission matrix, 404 before 403,
who changes permissions and how they are validated, permission and role changes taking
effect on the very next request, and the audit rows of permission changes and deletes."""
import json
import time

import pytest
import requests

from conftest import assert_error, shared_server
from authutil import (admin_login, apikey, auth_env, bearer, create_key, db_rows, delete, detail_fields,
                      make_user, register, rid, set_user)

UNKNOWN_ID = "0190b2a4-0000-7000-8000-000000000000"
CODES = {400: "VALIDATION_ERROR", 401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND"}


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    yield from shared_server(tmp_path_factory, "wf-access", **auth_env())


@pytest.fixture(scope="module")
def adm(srv):
    return admin_login(srv)


def H(acct):
    return bearer(acct["accessToken"])


def put(srv, wid, body, headers):
    return srv.request("PUT", "/api/workflows/%s" % wid, json=body, headers=headers)


def create(srv, headers, **fields):
    r = srv.post("/api/workflows", json=fields, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


def set_perms(srv, headers, wid, expect=200, **perms):
    r = put(srv, wid, {"permissions": perms}, headers)
    assert r.status_code == expect, "permissions %r: %d %s" % (perms, r.status_code, r.text[:500])
    return r.json()


def read(srv, headers, wid):
    r = srv.get("/api/workflows/%s" % wid, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def list_ids(srv, headers, **params):
    params.setdefault("limit", 100)
    r = srv.get("/api/workflows", headers=headers, params=params)
    assert r.status_code == 200, r.text
    return [w["id"] for w in r.json()["data"]]


def audit(srv, action, subject, timeout=3.0):
    deadline = time.monotonic() + timeout
    while True:
        rows = db_rows(srv, "SELECT * FROM audit_events WHERE action = ? AND subject_id = ? ORDER BY created_at, id",
                       (action, subject))
        if rows or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


# ---------------------------------------------------------------- the cast

PRINCIPALS = ["admin", "owner", "editor", "viewer", "stranger", "viewer_role_editor", "key_read", "key_write", "none"]


@pytest.fixture(scope="module")
def cast(srv, adm):
    owner = register(srv, name="Owner")
    editor = register(srv, name="Editor")
    viewer = register(srv, name="Viewer")
    stranger = register(srv, name="Stranger")
    vrole = make_user(srv, role="viewer", admin_tok=adm["accessToken"], name="Viewer Role")
    key_read = create_key(srv, editor["accessToken"], name="editor read", scopes=["read"])
    key_write = create_key(srv, editor["accessToken"], name="editor write", scopes=["write"])
    people = {"admin": adm, "owner": owner, "editor": editor, "viewer": viewer, "stranger": stranger,
              "viewer_role_editor": vrole}
    headers = {k: H(v) for k, v in people.items()}
    headers["key_read"] = apikey(key_read["key"])
    headers["key_write"] = apikey(key_write["key"])
    headers["none"] = {}
    return people, headers


def shared_workflow(srv, cast, **fields):
    """A workflow of the owner with editors [editor, viewer_role_editor] and viewers [viewer]."""
    people, headers = cast
    fields.setdefault("name", "Shared %s" % rid("wf"))
    w = create(srv, headers["owner"], **fields)
    return set_perms(srv, headers["owner"], w["id"],
                     editors=[people["editor"]["user"]["id"], people["viewer_role_editor"]["user"]["id"]],
                     viewers=[people["viewer"]["user"]["id"]])


@pytest.fixture(scope="module")
def wf(srv, cast):
    return shared_workflow(srv, cast, description="matrix")


def row(admin, owner, editor, viewer, stranger, viewer_role_editor, key_read, key_write, none=401):
    return dict(admin=admin, owner=owner, editor=editor, viewer=viewer, stranger=stranger,
                viewer_role_editor=viewer_role_editor, key_read=key_read, key_write=key_write, none=none)


# (method, path template, body, expected per principal); {id} is the shared workflow
MATRIX = [
    ("GET", "/api/workflows/{id}", None, row(200, 200, 200, 200, 404, 200, 200, 200)),
    ("PUT", "/api/workflows/{id}", {"description": "edited"}, row(200, 200, 200, 403, 404, 403, 403, 200)),
    ("POST", "/api/workflows/{id}/duplicate", None, row(201, 201, 201, 201, 404, 403, 403, 201)),
    ("GET", "/api/workflows/{id}/versions", None, row(200, 200, 200, 200, 404, 200, 200, 200)),
    ("GET", "/api/workflows/{id}/versions/1", None, row(200, 200, 200, 200, 404, 200, 200, 200)),
    ("GET", "/api/workflows/{id}/versions/999", None, row(404, 404, 404, 404, 404, 404, 404, 404)),
    ("GET", "/api/workflows/analytics/summary", None, row(200, 403, 403, 403, 403, 403, 403, 403)),
    ("POST", "/api/workflows", {"name": "new one"}, row(201, 201, 201, 201, 201, 403, 403, 201)),
    ("GET", "/api/workflows", None, row(200, 200, 200, 200, 200, 200, 200, 200)),
    # the same routes on a workflow that does not exist: the route's role first, then 404
    ("GET", "/api/workflows/" + UNKNOWN_ID, None, row(404, 404, 404, 404, 404, 404, 404, 404)),
    ("PUT", "/api/workflows/" + UNKNOWN_ID, {"description": "x"}, row(404, 404, 404, 404, 404, 404, 403, 404)),
    ("DELETE", "/api/workflows/" + UNKNOWN_ID, None, row(404, 403, 403, 403, 403, 403, 403, 403)),
    ("POST", "/api/workflows/%s/duplicate" % UNKNOWN_ID, None, row(404, 404, 404, 404, 404, 403, 403, 404)),
    ("GET", "/api/workflows/%s/versions" % UNKNOWN_ID, None, row(404, 404, 404, 404, 404, 404, 404, 404)),
    ("GET", "/api/workflows/%s/versions/1" % UNKNOWN_ID, None, row(404, 404, 404, 404, 404, 404, 404, 404)),
]


def check_cell(r, want, who, wrong):
    if r.status_code != want:
        wrong.append("%s: expected %d, got %d %s" % (who, want, r.status_code, r.text[:200]))
        return
    if want in CODES:
        try:
            assert_error(r, want, CODES[want])
        except AssertionError as e:
            wrong.append("%s: %s" % (who, e))


@pytest.mark.parametrize("method,path,body,expected", MATRIX,
                         ids=["%s %s" % (m[0], m[1].replace(UNKNOWN_ID, ":unknown")) for m in MATRIX])
def test_route_matrix(srv, cast, wf, method, path, body, expected):
    people, headers = cast
    wrong = []
    before = read(srv, headers["owner"], wf["id"])
    for who in PRINCIPALS:
        kw = {"headers": headers[who]}
        if body is not None:
            kw["json"] = body
        r = srv.request(method, path.replace("{id}", wf["id"]), **kw)
        check_cell(r, expected[who], who, wrong)
        if r.status_code == 201 and "duplicate" in path:
            c = r.json()
            owner_of = people[who]["user"]["id"] if who in people else people["editor"]["user"]["id"]
            if c["ownerId"] != owner_of:
                wrong.append("%s: the copy should be owned by the caller: %r" % (who, c["ownerId"]))
    assert not wrong, "%s %s:\n  %s" % (method, path, "\n  ".join(wrong))
    after = read(srv, headers["owner"], wf["id"])
    if method == "PUT" and "{id}" in path:
        # one version per successful update, none for refused ones
        n_ok = sum(1 for who in PRINCIPALS if expected[who] == 200)
        assert after["version"] == before["version"] + n_ok
        assert after["permissions"] == before["permissions"]
    else:
        assert after == before


def test_list_visibility(srv, cast, wf):
    people, headers = cast
    sees = {"admin": True, "owner": True, "editor": True, "viewer": True, "stranger": False,
            "viewer_role_editor": True, "key_read": True, "key_write": True}
    for who, visible in sees.items():
        assert (wf["id"] in list_ids(srv, headers[who])) is visible, who
        assert (wf["id"] in list_ids(srv, headers[who], ownerId=people["owner"]["user"]["id"])) is visible, who
    # a filter on a workflow the caller cannot read yields an empty list
    r = srv.get("/api/workflows", headers=headers["stranger"], params={"ownerId": people["owner"]["user"]["id"]})
    assert r.json()["pagination"]["total"] == 0


def test_delete_matrix(srv, cast):
    people, headers = cast
    w = shared_workflow(srv, cast)
    wrong = []
    for who in PRINCIPALS:
        if who == "admin":
            continue
        r = delete(srv, "/api/workflows/%s" % w["id"], headers=headers[who])
        check_cell(r, 401 if who == "none" else 403, who, wrong)
    assert not wrong, "\n  ".join(wrong)
    assert read(srv, headers["owner"], w["id"]) == w
    # an admin API key with read scope may not delete; with the default scopes it may
    akr = create_key(srv, people["admin"]["accessToken"], name="admin read", scopes=["read"])
    assert_error(delete(srv, "/api/workflows/%s" % w["id"], headers=apikey(akr["key"])), 403, "FORBIDDEN")
    r = delete(srv, "/api/workflows/%s" % w["id"], headers=headers["admin"])
    assert r.status_code == 204, r.text
    for who in PRINCIPALS:
        if who == "none":
            continue
        r = srv.get("/api/workflows/%s" % w["id"], headers=headers[who])
        check_cell(r, 404, who, wrong)
        assert w["id"] not in list_ids(srv, headers[who]), who
    assert not wrong, "\n  ".join(wrong)


def test_summary_with_admin_keys(srv, cast):
    people, headers = cast
    akr = create_key(srv, people["admin"]["accessToken"], name="admin r", scopes=["read"])
    r = srv.get("/api/workflows/analytics/summary", headers=apikey(akr["key"]))
    assert r.status_code == 200, r.text
    assert set(r.json()) == {"totalWorkflows", "byStatus", "createdLast7Days", "topByExecutions", "topByCost"}


def test_viewer_role_cannot_create_even_with_a_write_key(srv, cast, adm):
    v = make_user(srv, role="viewer", admin_tok=adm["accessToken"])
    assert_error(srv.post("/api/workflows", json={"name": "x"}, headers=H(v)), 403, "FORBIDDEN")
    # a viewer cannot make keys; a user demoted to viewer keeps its key, but the key gets the viewer's rights
    u = register(srv)
    k = create_key(srv, u["accessToken"], name="rw")
    mine = create(srv, apikey(k["key"]), name="by key")
    assert mine["ownerId"] == u["user"]["id"]
    set_user(srv, adm["accessToken"], u["user"]["id"], role="viewer")
    assert_error(srv.post("/api/workflows", json={"name": "x"}, headers=apikey(k["key"])), 403, "FORBIDDEN")
    assert_error(put(srv, mine["id"], {"name": "y"}, apikey(k["key"])), 403, "FORBIDDEN")
    assert read(srv, apikey(k["key"]), mine["id"])["name"] == "by key"


def test_body_is_checked_after_access(srv, cast, wf):
    """404 (cannot read) and 403 (cannot write) come before 400 (the body)."""
    people, headers = cast
    bad = {"name": "", "status": "nope"}
    assert_error(put(srv, wf["id"], bad, headers["stranger"]), 404, "NOT_FOUND")
    assert_error(put(srv, wf["id"], bad, headers["viewer"]), 403, "FORBIDDEN")
    assert_error(put(srv, wf["id"], bad, headers["viewer_role_editor"]), 403, "FORBIDDEN")
    err = assert_error(put(srv, wf["id"], bad, headers["editor"]), 400, "VALIDATION_ERROR")
    assert {"name", "status"} <= detail_fields(err)
    # a stale version from someone who may not write is still a 403/404, not a 409
    assert_error(put(srv, wf["id"], {"version": 1, "name": "x"}, headers["viewer"]), 403, "FORBIDDEN")
    assert_error(put(srv, wf["id"], {"version": 1, "name": "x"}, headers["stranger"]), 404, "NOT_FOUND")


def test_duplicate_body_is_checked_after_access(srv, cast, wf):
    """docs/api.md, Access: role (403) -> read (404) -> write (403) -> the body (400)."""
    people, headers = cast
    assert_error(srv.post("/api/workflows/%s/duplicate" % wf["id"], json={"name": ""}, headers=headers["stranger"]),
                 404, "NOT_FOUND")
    assert_error(srv.post("/api/workflows/%s/duplicate" % wf["id"], json={"name": ""},
                          headers=headers["viewer_role_editor"]), 403, "FORBIDDEN")
    err = assert_error(srv.post("/api/workflows/%s/duplicate" % wf["id"], json={"name": ""},
                                headers=headers["viewer"]), 400, "VALIDATION_ERROR")
    assert "name" in detail_fields(err)


# ---------------------------------------------------------------- who changes permissions

def test_only_owner_and_admin_change_permissions(srv, cast):
    people, headers = cast
    w = shared_workflow(srv, cast)
    stranger_id = people["stranger"]["user"]["id"]
    same = dict(w["permissions"])
    for who, want in [("editor", 403), ("key_write", 403), ("viewer", 403), ("viewer_role_editor", 403),
                      ("key_read", 403), ("stranger", 404)]:
        for perms in ({"viewers": [stranger_id]}, same, {}):
            r = put(srv, w["id"], {"permissions": perms, "description": "sneaky"}, headers[who])
            assert_error(r, want, CODES[want])
    assert read(srv, headers["owner"], w["id"]) == w
    assert_error(srv.get("/api/workflows/%s" % w["id"], headers=headers["stranger"]), 404, "NOT_FOUND")
    # the owner may
    u = set_perms(srv, headers["owner"], w["id"], viewers=[people["viewer"]["user"]["id"], stranger_id])
    assert u["permissions"]["viewers"] == [people["viewer"]["user"]["id"], stranger_id]
    assert u["permissions"]["editors"] == w["permissions"]["editors"]
    assert u["version"] == w["version"] + 1
    # the admin may
    u = set_perms(srv, headers["admin"], w["id"], editors=[people["editor"]["user"]["id"]])
    assert u["permissions"] == {"editors": [people["editor"]["user"]["id"]],
                                "viewers": [people["viewer"]["user"]["id"], stranger_id]}
    assert u["ownerId"] == people["owner"]["user"]["id"]
    assert read(srv, headers["stranger"], w["id"])["permissions"] == u["permissions"]


def test_each_present_list_replaces_the_held_one(srv, cast):
    people, headers = cast
    o = headers["owner"]
    a, b, c = (people[k]["user"]["id"] for k in ("editor", "viewer", "stranger"))
    w = create(srv, o, name="lists")
    assert set_perms(srv, o, w["id"], editors=[a])["permissions"] == {"editors": [a], "viewers": []}
    assert set_perms(srv, o, w["id"], viewers=[b, c])["permissions"] == {"editors": [a], "viewers": [b, c]}
    assert set_perms(srv, o, w["id"])["permissions"] == {"editors": [a], "viewers": [b, c]}
    assert set_perms(srv, o, w["id"], editors=[c], viewers=[a])["permissions"] == {"editors": [c], "viewers": [a]}
    # moving an id from one list to the other in one request is fine
    assert set_perms(srv, o, w["id"], editors=[a], viewers=[c])["permissions"] == {"editors": [a], "viewers": [c]}
    assert set_perms(srv, o, w["id"], editors=[], viewers=[])["permissions"] == {"editors": [], "viewers": []}
    assert read(srv, o, w["id"])["version"] == 7


def perm_cases():
    # (name, builder(ids) -> permissions, field prefix)
    return [
        ("unknown-editor", lambda p: {"editors": [UNKNOWN_ID]}, "permissions.editors"),
        ("unknown-viewer", lambda p: {"viewers": [p["viewer"], UNKNOWN_ID]}, "permissions.viewers"),
        ("malformed-id", lambda p: {"editors": ["not-a-uuid"]}, "permissions.editors"),
        ("empty-id", lambda p: {"viewers": [""]}, "permissions.viewers"),
        ("number-id", lambda p: {"editors": [5]}, "permissions.editors"),
        ("null-id", lambda p: {"editors": [None]}, "permissions.editors"),
        ("owner-as-editor", lambda p: {"editors": [p["owner"]]}, "permissions.editors"),
        ("owner-as-viewer", lambda p: {"viewers": [p["owner"]]}, "permissions.viewers"),
        ("repeat-editor", lambda p: {"editors": [p["editor"], p["editor"]]}, "permissions.editors"),
        ("repeat-viewer", lambda p: {"viewers": [p["viewer"], p["stranger"], p["viewer"]]}, "permissions.viewers"),
        ("in-both", lambda p: {"editors": [p["editor"]], "viewers": [p["editor"]]}, "permissions"),
        ("editors-string", lambda p: {"editors": p["editor"]}, "permissions.editors"),
        ("viewers-object", lambda p: {"viewers": {"id": p["viewer"]}}, "permissions.viewers"),
        ("permissions-string", lambda p: "everyone", "permissions"),
        ("permissions-array", lambda p: [p["editor"]], "permissions"),
    ]


@pytest.mark.parametrize("case", perm_cases(), ids=[c[0] for c in perm_cases()])
@pytest.mark.parametrize("by", ["owner", "admin"])
def test_permissions_validation(srv, cast, case, by):
    people, headers = cast
    name, build, prefix = case
    p = {k: people[k]["user"]["id"] for k in ("owner", "editor", "viewer", "stranger")}
    w = shared_workflow(srv, cast)
    n_audit = len(audit(srv, "workflow.permissions_change", w["id"], timeout=0))
    r = put(srv, w["id"], {"permissions": build(p), "description": "changed"}, headers[by])
    err = assert_error(r, 400, "VALIDATION_ERROR")
    fields = detail_fields(err)
    assert any(f == prefix or f.startswith(prefix + ".") or f.startswith(prefix + "[") for f in fields if f), \
        (prefix, err)
    assert read(srv, headers["owner"], w["id"]) == w
    time.sleep(0.05)
    assert len(audit(srv, "workflow.permissions_change", w["id"], timeout=0)) == n_audit


def test_permissions_at_most_100_ids(srv, cast):
    people, headers = cast
    others = [register(srv, name="Many %d" % i)["user"]["id"] for i in range(101)]
    w = create(srv, headers["owner"], name="crowded")
    r = put(srv, w["id"], {"permissions": {"editors": others}}, headers["owner"])
    err = assert_error(r, 400, "VALIDATION_ERROR")
    assert any(f and f.startswith("permissions.editors") for f in detail_fields(err)), err
    r = put(srv, w["id"], {"permissions": {"viewers": others}}, headers["owner"])
    err = assert_error(r, 400, "VALIDATION_ERROR")
    assert any(f and f.startswith("permissions.viewers") for f in detail_fields(err)), err
    assert read(srv, headers["owner"], w["id"]) == w
    u = set_perms(srv, headers["owner"], w["id"], editors=others[:50], viewers=others[50:100])
    assert u["permissions"] == {"editors": others[:50], "viewers": others[50:100]}
    u = set_perms(srv, headers["owner"], w["id"], editors=others[:100], viewers=[])
    assert u["permissions"]["editors"] == others[:100]


def test_permission_of_another_owners_id_is_fine(srv, cast, adm):
    """The owner of the workflow may not be named, any other user may (an admin too)."""
    people, headers = cast
    w = create(srv, headers["owner"], name="admin named")
    u = set_perms(srv, headers["owner"], w["id"], viewers=[adm["user"]["id"]])
    assert u["permissions"]["viewers"] == [adm["user"]["id"]]


def test_viewer_role_user_named_editor_stays_read_only(srv, cast):
    people, headers = cast
    w = shared_workflow(srv, cast)
    h = headers["viewer_role_editor"]
    assert read(srv, h, w["id"])["id"] == w["id"]
    assert w["id"] in list_ids(srv, h)
    assert_error(put(srv, w["id"], {"description": "no"}, h), 403, "FORBIDDEN")
    assert_error(srv.post("/api/workflows/%s/duplicate" % w["id"], headers=h), 403, "FORBIDDEN")
    assert srv.get("/api/workflows/%s/versions" % w["id"], headers=h).status_code == 200
    assert read(srv, headers["owner"], w["id"]) == w


# ---------------------------------------------------------------- changes apply on the very next request

def fresh(srv):
    s = requests.Session()
    s.trust_env = False
    return s


def test_permission_changes_apply_at_once(srv, cast):
    people, headers = cast
    o = headers["owner"]
    sid = people["stranger"]["user"]["id"]
    h = headers["stranger"]
    w = create(srv, o, name="coherence %s" % rid())
    wid = w["id"]
    url = srv.url + "/api/workflows/%s" % wid
    sessions = [fresh(srv) for _ in range(3)]
    try:
        for rnd in range(4):
            # warm whatever is cached: the owner's and the stranger's reads, on several connections
            for s in sessions:
                assert s.get(url, headers=o).status_code == 200
                assert s.get(url, headers=h).status_code == 404
                assert wid not in [x["id"] for x in s.get(srv.url + "/api/workflows", headers=h,
                                                          params={"limit": 100}).json()["data"]]
            set_perms(srv, o, wid, viewers=[sid])
            for s in sessions:
                r = s.get(url, headers=h)
                assert r.status_code == 200, (rnd, r.text)
                assert r.json()["permissions"]["viewers"] == [sid]
                assert wid in [x["id"] for x in s.get(srv.url + "/api/workflows", headers=h,
                                                      params={"limit": 100}).json()["data"]]
                assert_error(s.put(url, json={"description": "v"}, headers=h), 403, "FORBIDDEN")
            set_perms(srv, o, wid, viewers=[], editors=[sid])
            for i, s in enumerate(sessions):
                r = s.put(url, json={"description": "by stranger %d.%d" % (rnd, i)}, headers=h)
                assert r.status_code == 200, (rnd, r.text)
                assert s.get(url, headers=o).json()["description"] == "by stranger %d.%d" % (rnd, i)
            set_perms(srv, o, wid, editors=[])
            for s in sessions:
                assert_error(s.get(url, headers=h), 404, "NOT_FOUND")
                assert_error(s.put(url, json={"description": "x"}, headers=h), 404, "NOT_FOUND")
                assert wid not in [x["id"] for x in s.get(srv.url + "/api/workflows", headers=h,
                                                          params={"limit": 100}).json()["data"]]
                assert wid not in [x["id"] for x in s.get(srv.url + "/api/workflows", headers=h, params={
                    "ownerId": people["owner"]["user"]["id"], "limit": 100}).json()["data"]]
    finally:
        for s in sessions:
            s.close()


def test_role_change_applies_at_once(srv, cast, adm):
    people, headers = cast
    at = adm["accessToken"]
    w = shared_workflow(srv, cast)
    wid = w["id"]
    # an editor demoted to viewer stops writing on the next request, and reads on
    ed = register(srv)
    set_perms(srv, headers["owner"], wid, editors=[ed["user"]["id"]])
    k = create_key(srv, ed["accessToken"], name="ed rw")
    for hdr in (H(ed), apikey(k["key"])):
        r = put(srv, wid, {"description": "editor writes"}, hdr)
        assert r.status_code == 200, r.text
    set_user(srv, at, ed["user"]["id"], role="viewer")
    for hdr in (H(ed), apikey(k["key"])):
        assert_error(put(srv, wid, {"description": "no longer"}, hdr), 403, "FORBIDDEN")
        assert_error(srv.post("/api/workflows/%s/duplicate" % wid, headers=hdr), 403, "FORBIDDEN")
        assert read(srv, hdr, wid)["description"] == "editor writes"
    set_user(srv, at, ed["user"]["id"], role="user")
    for hdr in (H(ed), apikey(k["key"])):
        assert put(srv, wid, {"description": "again"}, hdr).status_code == 200
    # an unrelated user promoted to admin reads and writes every workflow at once; demoted, it sees none
    st = register(srv)
    assert_error(srv.get("/api/workflows/%s" % wid, headers=H(st)), 404, "NOT_FOUND")
    for _ in range(3):      # lists read (and cached) before the change
        assert wid not in list_ids(srv, H(st))
        assert wid not in list_ids(srv, H(st), ownerId=people["owner"]["user"]["id"])
    set_user(srv, at, st["user"]["id"], role="admin")
    # no workflow was written in between: the lists must still follow the new role
    for _ in range(3):
        assert wid in list_ids(srv, H(st))
        assert wid in list_ids(srv, H(st), ownerId=people["owner"]["user"]["id"])
    assert read(srv, H(st), wid)["id"] == wid
    assert put(srv, wid, {"description": "admin now"}, H(st)).status_code == 200
    assert srv.get("/api/workflows/analytics/summary", headers=H(st)).status_code == 200
    assert wid in list_ids(srv, H(st), ownerId=people["owner"]["user"]["id"])
    for _ in range(3):
        assert wid in list_ids(srv, H(st))
    set_user(srv, at, st["user"]["id"], role="user")
    for _ in range(3):
        assert wid not in list_ids(srv, H(st))
        assert wid not in list_ids(srv, H(st), ownerId=people["owner"]["user"]["id"])
    assert_error(srv.get("/api/workflows/%s" % wid, headers=H(st)), 404, "NOT_FOUND")
    assert_error(put(srv, wid, {"description": "x"}, H(st)), 404, "NOT_FOUND")
    assert_error(srv.get("/api/workflows/analytics/summary", headers=H(st)), 403, "FORBIDDEN")
    assert wid not in list_ids(srv, H(st))
    # the owner demoted to viewer keeps reading its workflow but no longer writes it
    ow = register(srv)
    mine = create(srv, H(ow), name="owned")
    set_user(srv, at, ow["user"]["id"], role="viewer")
    assert read(srv, H(ow), mine["id"])["ownerId"] == ow["user"]["id"]
    assert mine["id"] in list_ids(srv, H(ow))
    assert_error(put(srv, mine["id"], {"description": "x"}, H(ow)), 403, "FORBIDDEN")
    assert_error(put(srv, mine["id"], {"permissions": {"viewers": []}}, H(ow)), 403, "FORBIDDEN")
    assert_error(srv.post("/api/workflows", json={"name": "x"}, headers=H(ow)), 403, "FORBIDDEN")
    set_user(srv, at, ow["user"]["id"], role="user")
    assert put(srv, mine["id"], {"description": "x"}, H(ow)).status_code == 200


def test_deactivated_named_user_is_refused(srv, cast, adm):
    people, headers = cast
    u = register(srv)
    w = create(srv, headers["owner"], name="deact")
    set_perms(srv, headers["owner"], w["id"], editors=[u["user"]["id"]])
    assert read(srv, H(u), w["id"])["id"] == w["id"]
    set_user(srv, adm["accessToken"], u["user"]["id"], isActive=False)
    assert_error(srv.get("/api/workflows/%s" % w["id"], headers=H(u)), 401, "UNAUTHORIZED")


# ---------------------------------------------------------------- audit

def test_permissions_change_is_audited(srv, cast):
    people, headers = cast
    w = create(srv, headers["owner"], name="audited")
    wid = w["id"]
    assert audit(srv, "workflow.permissions_change", wid, timeout=0.2) == []
    eds = [people["editor"]["user"]["id"]]
    vws = [people["viewer"]["user"]["id"], people["stranger"]["user"]["id"]]
    req_id = rid("perm")
    r = srv.request("PUT", "/api/workflows/%s" % wid, json={"permissions": {"editors": eds, "viewers": vws}},
                    headers=dict(headers["owner"], **{"X-Request-Id": req_id}))
    assert r.status_code == 200, r.text
    rows = audit(srv, "workflow.permissions_change", wid)
    assert len(rows) == 1, rows
    e = rows[0]
    assert e["actor_id"] == people["owner"]["user"]["id"]
    assert e["subject_id"] == wid
    assert e["request_id"] == req_id
    assert e["ip"] == "127.0.0.1"
    detail = json.loads(e["detail"])
    lists = detail.get("permissions", detail)
    assert lists.get("editors") == eds and lists.get("viewers") == vws, detail
    # an update without permissions is not a permissions change
    assert put(srv, wid, {"description": "plain"}, headers["owner"]).status_code == 200
    # the admin's change is recorded with the admin as actor, with only the list sent
    req2 = rid("perm")
    r = srv.request("PUT", "/api/workflows/%s" % wid, json={"permissions": {"viewers": []}},
                    headers=dict(headers["admin"], **{"X-Request-Id": req2}))
    assert r.status_code == 200, r.text
    deadline = time.monotonic() + 3
    while True:
        rows = audit(srv, "workflow.permissions_change", wid)
        if len(rows) >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert len(rows) == 2, rows
    e2 = [x for x in rows if x["request_id"] == req2]
    assert len(e2) == 1, rows
    assert e2[0]["actor_id"] == people["admin"]["user"]["id"]
    d2 = json.loads(e2[0]["detail"])
    d2 = d2.get("permissions", d2)
    assert d2.get("viewers") == [], d2
    # refused attempts are not recorded
    assert_error(put(srv, wid, {"permissions": {"viewers": []}}, headers["editor"]), 403, "FORBIDDEN")
    assert_error(put(srv, wid, {"permissions": {"viewers": [UNKNOWN_ID]}}, headers["owner"]), 400,
                 "VALIDATION_ERROR")
    time.sleep(0.2)
    assert len(audit(srv, "workflow.permissions_change", wid)) == 2


def test_delete_is_audited(srv, cast):
    people, headers = cast
    w = create(srv, headers["owner"], name="to delete")
    wid = w["id"]
    # refused deletes are not recorded
    assert_error(delete(srv, "/api/workflows/%s" % wid, headers=headers["owner"]), 403, "FORBIDDEN")
    req_id = rid("del")
    r = delete(srv, "/api/workflows/%s" % wid, headers=dict(headers["admin"], **{"X-Request-Id": req_id}))
    assert r.status_code == 204, r.text
    rows = audit(srv, "workflow.delete", wid)
    assert len(rows) == 1, rows
    e = rows[0]
    assert e["actor_id"] == people["admin"]["user"]["id"]
    assert e["request_id"] == req_id and e["ip"] == "127.0.0.1"
    # a second delete is a 404 and writes nothing
    assert_error(delete(srv, "/api/workflows/%s" % wid, headers=headers["admin"]), 404, "NOT_FOUND")
    time.sleep(0.2)
    assert len(audit(srv, "workflow.delete", wid)) == 1
