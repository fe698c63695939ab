"""The credentials key: a wrong key is refused at start, an old key still opens what
it sealed, and `aop credentials rotate` moves everything to the current key
(docs/operations.md, "Rotating the credentials key")."""
import base64
import os
import stat

import pytest

from conftest import BACKEND, db_query
from authutil import register
from fakes import FakeHttp, H, create_workflow, engine_env, http_node, node_of, run

KEY_A = base64.b64encode(b"A" * 32).decode()
KEY_B = base64.b64encode(b"B" * 32).decode()
KEY_C = base64.b64encode(b"C" * 32).decode()
TOKEN = "tok-rotation-0f1e2d3c4b5a69788796a5b4"


@pytest.fixture(scope="module")
def http():
    f = FakeHttp().start()
    yield f
    f.stop()


def setup_credential(srv, http):
    """A user, an http_bearer credential and a workflow that sends it."""
    u = register(srv)
    r = srv.post("/api/credentials", json={"name": "t", "type": "http_bearer", "data": {"token": TOKEN},
                                           "allowedHosts": ["127.0.0.1"]}, headers=H(u))
    assert r.status_code == 201, r.text
    wf = create_workflow(srv, u, [http_node("call", http.url + "/json", credentialId=r.json()["id"])])
    return u, r.json(), wf


def sends_token(srv, http, u, wf):
    http.clear_requests()
    e = run(srv, u, wf["id"])
    assert e["status"] == "succeeded", node_of(e, "call")
    got = http.requests(path="/json")
    return len(got) == 1 and got[0].headers.get("authorization") == "Bearer " + TOKEN


def key_ids(srv):
    return {r["key_id"] for r in db_query(srv, "SELECT key_id FROM credentials")}


def test_wrong_key_refused_old_key_accepted_rotate_then_new_key_only(aop_server, run_cli, http):
    srv = aop_server(**engine_env(CREDENTIALS_KEY=KEY_A))
    u, cred, wf = setup_credential(srv, http)
    assert sends_token(srv, http, u, wf)
    srv.stop()

    refused = run_cli(["serve"], env=engine_env(CREDENTIALS_KEY=KEY_B), timeout=20)
    assert refused.returncode == 2, refused
    assert "CREDENTIALS_KEY" in refused.err and KEY_B not in refused.err

    srv = aop_server(**engine_env(CREDENTIALS_KEY=KEY_B, CREDENTIALS_OLD_KEYS=KEY_C + "," + KEY_A))
    assert sends_token(srv, http, u, wf)
    before = key_ids(srv)
    assert len(before) == 1
    # a change of data seals under the new key at once
    r = srv.request("PATCH", "/api/credentials/%s" % cred["id"], json={"data": {"token": TOKEN}}, headers=H(u))
    assert r.status_code == 200, r.text
    after = key_ids(srv)
    assert len(after) == 1 and after != before
    db_query(srv, "UPDATE credentials SET key_id = ? WHERE id = ?", ("stale", cred["id"]))  # as if not yet rotated
    srv.stop()

    rot = run_cli(["credentials", "rotate"], env=engine_env(CREDENTIALS_KEY=KEY_B, CREDENTIALS_OLD_KEYS=KEY_A))
    assert rot.returncode == 0, rot
    assert '"rotated":1' in rot.out and '"failed":0' in rot.out
    again = run_cli(["credentials", "rotate"], env=engine_env(CREDENTIALS_KEY=KEY_B))
    assert again.returncode == 0 and '"rotated":0' in again.out, again
    actions = [r["action"] for r in db_query(srv, "SELECT action FROM audit_events WHERE action = ?",
                                                ("credentials.rotate",))]
    assert len(actions) == 2

    srv = aop_server(**engine_env(CREDENTIALS_KEY=KEY_B))
    assert sends_token(srv, http, u, wf)
    srv.stop()
    refused = run_cli(["serve"], env=engine_env(CREDENTIALS_KEY=KEY_A), timeout=20)
    assert refused.returncode == 2 and "CREDENTIALS_KEY" in refused.err, refused


def test_rotate_resumes_in_batches(aop_server, run_cli, http):
    """More rows than one batch, under the old key: one run moves them all; a second
    finds nothing left."""
    srv = aop_server(**engine_env(CREDENTIALS_KEY=KEY_A))
    u = register(srv)
    for i in range(205):
        r = srv.post("/api/credentials", json={"name": "c%03d" % i, "type": "openai", "data": {"apiKey": "k%d" % i}},
                     headers=H(u))
        assert r.status_code == 201, r.text
    srv.stop()
    rot = run_cli(["credentials", "rotate"], env=engine_env(CREDENTIALS_KEY=KEY_B, CREDENTIALS_OLD_KEYS=KEY_A))
    assert rot.returncode == 0 and '"rotated":205' in rot.out, rot
    assert len(key_ids(srv)) == 1
    srv = aop_server(**engine_env(CREDENTIALS_KEY=KEY_B))
    srv.stop()


def test_rotate_reports_what_no_key_opens(aop_server, run_cli, http):
    srv = aop_server(**engine_env(CREDENTIALS_KEY=KEY_A))
    u = register(srv)
    r = srv.post("/api/credentials", json={"name": "x", "type": "openai", "data": {"apiKey": "kkkk"}}, headers=H(u))
    assert r.status_code == 201
    srv.stop()
    db_query(srv, "UPDATE credentials SET secret = 'v1.0000000000000000.AAAA' WHERE id = ?", (r.json()["id"],))
    rot = run_cli(["credentials", "rotate"], env=engine_env(CREDENTIALS_KEY=KEY_B, CREDENTIALS_OLD_KEYS=KEY_A))
    assert rot.returncode == 1 and '"failed":1' in rot.out, rot
    # the canary stays under the old key: a start with the new key alone is still refused
    refused = run_cli(["serve"], env=engine_env(CREDENTIALS_KEY=KEY_B), timeout=20)
    assert refused.returncode == 2, refused


@pytest.mark.sqlite_only
def test_key_generated_next_to_the_database(aop_server, manager, http):
    srv = aop_server(**engine_env(CREDENTIALS_KEY=None))
    path = manager.tmp / "aop.db.credentials-key"
    assert path.exists()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert len(base64.b64decode(path.read_text())) == 32
    u, _, wf = setup_credential(srv, http)
    srv.stop()
    srv = aop_server(**engine_env(CREDENTIALS_KEY=None))
    assert sends_token(srv, http, u, wf)


def test_a_key_is_required_where_it_cannot_be_generated(run_cli):
    """PostgreSQL (every instance must share the key) and production."""
    env = engine_env(CREDENTIALS_KEY=None)
    if BACKEND != "pg":
        env.update(APP_ENV="production", JWT_ACCESS_SECRET="a" * 40, JWT_REFRESH_SECRET="b" * 40,
                   BCRYPT_COST="10")
    r = run_cli(["serve"], env=env, timeout=20)
    assert r.returncode == 2 and "CREDENTIALS_KEY" in r.err, r


def test_rotate_reseals_webhook_secrets(aop_server, run_cli):
    """Webhook secrets are sealed by the same key: rotate moves them too, the one in its
    rotation grace included, and the webhook still verifies under the new key alone."""
    import hashlib
    import hmac
    import time
    srv = aop_server(**engine_env(CREDENTIALS_KEY=KEY_A))
    u = register(srv)
    wf = create_workflow(srv, u, [])
    r = srv.post("/api/workflows/%s/webhooks" % wf["id"], json={"auth": "hmac"}, headers=H(u))
    hook = r.json()
    old = hook["secret"]
    new = srv.post("/api/webhooks/%s/rotate" % hook["id"], headers=H(u)).json()["secret"]
    srv.stop()
    rot = run_cli(["credentials", "rotate"], env=engine_env(CREDENTIALS_KEY=KEY_B, CREDENTIALS_OLD_KEYS=KEY_A))
    assert rot.returncode == 0 and '"failed":0' in rot.out, rot
    assert '"rotated":1' in rot.out, rot.out
    srv = aop_server(**engine_env(CREDENTIALS_KEY=KEY_B))

    def call(secret):
        ts, body = str(int(time.time())), b'{"a":1}'
        sig = hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
        return srv.post("/hooks/" + hook["id"], data=body,
                        headers={"X-AOP-Timestamp": ts, "X-AOP-Signature": "sha256=" + sig}).status_code
    assert call(new) == 202 and call(old) == 202  # the old one is still in its grace
    assert call("0" * 64) == 401
