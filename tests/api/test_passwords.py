"""Password storage (bcrypt, compatible with other bcrypt implementations), length
limits in bytes, and login answers that do not tell accounts apart."""
import os
import time

import bcrypt
import pytest

from conftest import assert_error, db_execute, shared_server
from authutil import (DEFAULT_PASSWORD, assert_validation, auth_env, bearer, db_rows, login, me,
                      register, uniq_email, uuid7)


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    yield from shared_server(tmp_path_factory, "passwords", **auth_env())


def stored_hash(server, user_id):
    rows = db_rows(server, "SELECT password_hash FROM users WHERE id = ?", (user_id,))
    assert len(rows) == 1, rows
    return rows[0]["password_hash"]


def test_stored_hash_is_bcrypt_2b(srv):
    pw = "Stored-Pass-1"
    body = register(srv, password=pw)
    h = stored_hash(srv, body["user"]["id"])
    assert h.startswith("$2b$"), h
    assert bcrypt.checkpw(pw.encode(), h.encode())
    assert not bcrypt.checkpw(b"Stored-Pass-2", h.encode())


def test_bcrypt_cost_follows_config(aop_server):
    s = aop_server(BCRYPT_COST="5", **auth_env())
    body = register(s)
    h = stored_hash(s, body["user"]["id"])
    assert h.startswith("$2b$05$"), h


def test_password_change_stores_a_new_bcrypt_hash(srv):
    body = register(srv)
    old = stored_hash(srv, body["user"]["id"])
    r = srv.post("/api/auth/me/password", json={"currentPassword": DEFAULT_PASSWORD, "newPassword": "Changed-Pass-9"},
                 headers=bearer(body["accessToken"]))
    assert r.status_code == 204, r.text
    h = stored_hash(srv, body["user"]["id"])
    assert h != old and h.startswith("$2b$")
    assert bcrypt.checkpw(b"Changed-Pass-9", h.encode())


@pytest.mark.parametrize("prefix", [b"2b", b"2a", b"2y"])
def test_hash_made_elsewhere_lets_the_user_log_in(aop_server, prefix):
    env = auth_env()
    s1 = aop_server(**env)
    seed = register(s1)
    assert s1.stop() == 0
    pw = "Imported-Pass-%s" % prefix.decode()
    if prefix == b"2y":     # PHP's name for the same algorithm as $2b$
        h = "$2y$" + bcrypt.hashpw(pw.encode(), bcrypt.gensalt(4, prefix=b"2b")).decode()[4:]
    else:
        h = bcrypt.hashpw(pw.encode(), bcrypt.gensalt(4, prefix=prefix)).decode()
    assert h.startswith("$%s$" % prefix.decode())
    email = uniq_email("imported")
    new_id = uuid7()
    row = db_rows(s1, "SELECT * FROM users WHERE id = ?", (seed["user"]["id"],))[0]
    row.update({"id": new_id, "email": email, "name": "Imported", "password_hash": h})
    cols = list(row)
    db_execute(s1, "INSERT INTO users (%s) VALUES (%s)" % (", ".join(cols), ", ".join("?" * len(cols))),
               [row[c] for c in cols])
    s2 = aop_server(**env)
    body = login(s2, email, pw)
    assert body["user"]["id"] == new_id
    assert me(s2, bearer(body["accessToken"])).json()["email"] == email
    assert_error(s2.post("/api/auth/login", json={"email": email, "password": pw + "x"}), 401, "INVALID_CREDENTIALS")


@pytest.mark.parametrize("pw", ["x" * 7, "x" * 73, "é" * 36 + "x", "\u20ac" * 25, "é" * 3 + "x"])
def test_password_length_limits_in_bytes_400(srv, pw):
    email = uniq_email("len")
    r = srv.post("/api/auth/register", json={"email": email, "password": pw, "name": "Len"})
    assert_validation(r, "password")
    assert_error(srv.post("/api/auth/login", json={"email": email, "password": pw}), 401, "INVALID_CREDENTIALS")


@pytest.mark.parametrize("pw", ["x" * 8, "x" * 72, "é" * 36, "\u20ac" * 24, "\U0001F511" * 18, "é" * 4])
def test_password_at_the_limits_works(srv, pw):
    assert 8 <= len(pw.encode()) <= 72
    body = register(srv, password=pw)
    h = stored_hash(srv, body["user"]["id"])
    assert bcrypt.checkpw(pw.encode(), h.encode())
    login(srv, body["_email"], pw)


def test_72_byte_password_is_not_truncated(srv):
    pw = "é" * 36
    body = register(srv, password=pw)
    # one different byte at the end is another password
    other = "é" * 35 + "è"      # differs in the last byte only
    assert len(other.encode()) == 72
    assert_error(srv.post("/api/auth/login", json={"email": body["_email"], "password": other}),
                 401, "INVALID_CREDENTIALS")


def test_password_with_nul_or_control_chars_is_handled(srv):
    r = srv.post("/api/auth/register", json={"email": uniq_email(), "password": "abc\u0000defgh", "name": "N"})
    # a NUL would silently cut the password short in C: either refuse it or hash all of it
    if r.status_code == 201:
        body = r.json()
        assert_error(srv.post("/api/auth/login", json={"email": body["user"]["email"], "password": "abc"}),
                     401, "INVALID_CREDENTIALS")
        assert_error(srv.post("/api/auth/login", json={"email": body["user"]["email"], "password": "abc\u0000zzzzz"}),
                     401, "INVALID_CREDENTIALS")
    else:
        assert r.status_code == 400, r.text
        err = assert_error(r, 400, r.json()["error"]["code"])
        assert err["code"] in ("VALIDATION_ERROR", "INVALID_JSON"), err


def test_new_password_length_limits(srv):
    body = register(srv)
    h = bearer(body["accessToken"])
    for bad in ("x" * 7, "x" * 73, "é" * 36 + "x"):
        r = srv.post("/api/auth/me/password", json={"currentPassword": DEFAULT_PASSWORD, "newPassword": bad}, headers=h)
        assert_validation(r, "newPassword")
    r = srv.post("/api/auth/me/password", json={"currentPassword": DEFAULT_PASSWORD, "newPassword": "é" * 36}, headers=h)
    assert r.status_code == 204, r.text
    login(srv, body["_email"], "é" * 36)


def test_unknown_email_and_wrong_password_answer_alike(srv):
    body = register(srv)
    r1 = srv.post("/api/auth/login", json={"email": body["_email"], "password": "wrong-password-1"})
    r2 = srv.post("/api/auth/login", json={"email": uniq_email("ghost"), "password": "wrong-password-1"})
    e1 = assert_error(r1, 401, "INVALID_CREDENTIALS")
    e2 = assert_error(r2, 401, "INVALID_CREDENTIALS")
    assert r1.status_code == r2.status_code
    e1 = dict(e1)
    e2 = dict(e2)
    assert e1.pop("requestId") != e2.pop("requestId")
    assert e1 == e2
    b1, b2 = r1.json(), r2.json()
    b1["error"].pop("requestId")
    b2["error"].pop("requestId")
    assert b1 == b2
    skip = {"x-request-id", "date", "ratelimit-remaining", "ratelimit-reset", "content-length"}
    h1 = {k.lower(): v for k, v in r1.headers.items() if k.lower() not in skip}
    h2 = {k.lower(): v for k, v in r2.headers.items() if k.lower() not in skip}
    assert h1 == h2


def test_unknown_email_costs_the_same_bcrypt_work(aop_server):
    """An unknown email must not answer measurably faster than a wrong password
    (that would tell which emails have accounts)."""
    import statistics
    s = aop_server(BCRYPT_COST="10", **auth_env())
    body = register(s)
    wrong, unknown = [], []
    for _ in range(5):
        for email, bucket in ((body["_email"], wrong), (uniq_email("ghost"), unknown)):
            t = time.monotonic()
            r = s.post("/api/auth/login", json={"email": email, "password": "wrong-password-1"})
            bucket.append(time.monotonic() - t)
            assert r.status_code == 401
    mw, mu = statistics.median(wrong), statistics.median(unknown)
    assert mw > 0.01, "a cost-10 bcrypt should take more than 10 ms: %r" % wrong
    assert mu >= 0.5 * mw, "unknown email %.1f ms vs wrong password %.1f ms" % (mu * 1000, mw * 1000)


def test_concurrent_registrations_and_logins_get_their_own_answers(srv):
    import concurrent.futures
    import requests

    def one(i):
        sess = requests.Session()
        sess.trust_env = False
        try:
            email = uniq_email("par%d" % i)
            p = "Parallel-Pass-%d" % i
            r = sess.post(srv.url + "/api/auth/register", json={"email": email, "password": p, "name": "P%d" % i},
                          timeout=30)
            assert r.status_code == 201, r.text
            uid = r.json()["user"]["id"]
            r = sess.post(srv.url + "/api/auth/login", json={"email": email, "password": p}, timeout=30)
            assert r.status_code == 200, r.text
            assert r.json()["user"]["id"] == uid and r.json()["user"]["email"] == email
            r = sess.get(srv.url + "/api/auth/me", headers=bearer(r.json()["accessToken"]), timeout=30)
            assert r.json()["id"] == uid
            return uid
        finally:
            sess.close()
    with concurrent.futures.ThreadPoolExecutor(16) as ex:
        ids = list(ex.map(one, range(32)))
    assert len(set(ids)) == 32


def test_client_gone_while_hashing(aop_server):
    """Connections that close while their bcrypt work is queued must not upset the server."""
    import socket
    s = aop_server(BCRYPT_COST="10", **auth_env())
    body = register(s)
    payload = ('{"email": "%s", "password": "wrong-password-1"}' % body["_email"]).encode()
    req = (b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           b"Content-Length: %d\r\n\r\n" % len(payload)) + payload
    socks = []
    for _ in range(12):
        c = socket.create_connection((s.host, s.port))
        c.sendall(req)
        socks.append(c)
    time.sleep(0.05)
    for c in socks:
        c.close()
    time.sleep(1.0)
    login(s, body["_email"], body["_password"])
    assert s.get("/health").status_code == 200


def test_hashing_queue_full_answers_503_and_other_requests_flow(aop_server):
    import concurrent.futures
    import requests
    cores = os.cpu_count() or 1
    n = 32 * max(1, cores // 2) + 48
    if n > 300:
        pytest.skip("too many cores to fill the hashing queue cheaply")
    s = aop_server(BCRYPT_COST="11", HTTP_MAX_CONNECTIONS_PER_IP="1000", **auth_env())
    body = register(s)

    def one(_):
        sess = requests.Session()
        sess.trust_env = False
        try:
            return sess.post(s.url + "/api/auth/login", json={"email": body["_email"], "password": "wrong-password-1"},
                             timeout=60)
        finally:
            sess.close()
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(n) as ex:
        futs = [ex.submit(one, i) for i in range(n)]
        time.sleep(0.3)
        t = time.monotonic()
        r = me(s, bearer(body["accessToken"]))
        me_latency = time.monotonic() - t
        rs = [f.result() for f in futs]
    burst = time.monotonic() - t0
    assert r.status_code == 200, r.text
    codes = sorted(x.status_code for x in rs)
    assert set(codes) <= {401, 503}, codes
    over = [x for x in rs if x.status_code == 503]
    assert over, "no 503 with %d bcrypt requests in flight: %r" % (n, codes)
    for x in over:
        assert_error(x, 503, "SERVICE_UNAVAILABLE")
        assert x.headers.get("Retry-After") == "1"
    for x in rs:
        if x.status_code == 401:
            assert_error(x, 401, "INVALID_CREDENTIALS")
    assert me_latency < max(0.5, burst / 3), "a request needing no bcrypt waited %.2fs (burst %.2fs)" % (
        me_latency, burst)
    login(s, body["_email"], body["_password"])


def test_user_created_by_the_cli_while_serving_can_log_in(aop_server, run_cli):
    s = aop_server(**auth_env())
    email = uniq_email("cli")
    r = run_cli(["user", "create", "--email", email, "--name", "From CLI", "--role", "viewer"],
                stdin="Cli-Password-1\n")
    assert r.returncode == 0, r
    body = login(s, email, "Cli-Password-1")
    assert body["user"]["role"] == "viewer" and body["user"]["name"] == "From CLI"
    assert_error(s.post("/api/auth/api-keys", json={"name": "k"}, headers=bearer(body["accessToken"])),
                 403, "FORBIDDEN")
