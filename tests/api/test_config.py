"""Configuration refusal, production mode, development secrets file."""
import os
import stat

import pytest

from conftest import assert_security_headers

S40A = "A" * 20 + "0123456789abcdefghij"
S40B = "B" * 20 + "klmnopqrstuvwxyz0123"
assert len(S40A) == 40 and len(S40B) == 40 and S40A != S40B

KEY32 = "cHJvZHVjdGlvbi1jcmVkZW50aWFscy1rZXktMzJieXQ="  # base64 of 32 bytes
PROD = dict(APP_ENV="production", JWT_ACCESS_SECRET=S40A, JWT_REFRESH_SECRET=S40B, BCRYPT_COST="10",
            CREDENTIALS_KEY=KEY32)

REFUSALS = [
    ("port-abc", dict(PORT="abc"), "PORT"),
    ("port-70000", dict(PORT="70000"), "PORT"),
    ("log-level", dict(LOG_LEVEL="verbose"), "LOG_LEVEL"),
    ("app-env", dict(APP_ENV="staging"), "APP_ENV"),
    ("body-limit-0", dict(BODY_LIMIT_BYTES="0"), "BODY_LIMIT_BYTES"),
    ("trust-proxy", dict(TRUST_PROXY="maybe"), "TRUST_PROXY"),
    ("frontend-url", dict(FRONTEND_URL="notaurl"), "FRONTEND_URL"),
    ("database-url", dict(DATABASE_URL="mysql://x"), "DATABASE_URL"),
    ("redis-url", dict(REDIS_URL="http://x"), "REDIS_URL"),
    ("bad-admin-email", dict(ADMIN_EMAIL="nope", ADMIN_PASSWORD="password1"), "ADMIN_EMAIL"),
    ("short-admin-password", dict(ADMIN_EMAIL="root@example.com", ADMIN_PASSWORD="short"), "ADMIN_PASSWORD"),
    ("http-threads-0", dict(HTTP_THREADS="0"), "HTTP_THREADS"),
    ("log-max-files-0", dict(LOG_MAX_FILES="0"), "LOG_MAX_FILES"),
    ("log-file-unopenable", dict(LOG_FILE="/proc/aop-none/aop.log"), "LOG_FILE"),
    ("prod-no-secrets", dict(PROD, JWT_ACCESS_SECRET=None, JWT_REFRESH_SECRET=None), "JWT_ACCESS_SECRET"),
    ("prod-short-access", dict(PROD, JWT_ACCESS_SECRET="0123456789"), "JWT_ACCESS_SECRET"),
    ("prod-short-refresh", dict(PROD, JWT_REFRESH_SECRET="0123456789"), "JWT_REFRESH_SECRET"),
    ("prod-same-secrets", dict(PROD, JWT_REFRESH_SECRET=S40A), "JWT_REFRESH_SECRET"),
    ("prod-bcrypt-8", dict(PROD, BCRYPT_COST="8"), "BCRYPT_COST"),
    ("admin-no-password", dict(ADMIN_EMAIL="root@example.com"), "ADMIN_PASSWORD"),
    ("prod-no-credentials-key", dict(PROD, CREDENTIALS_KEY=None), "CREDENTIALS_KEY"),
    ("credentials-key-short", dict(CREDENTIALS_KEY="c2hvcnQ="), "CREDENTIALS_KEY"),
    ("credentials-key-not-base64", dict(CREDENTIALS_KEY="!" * 44), "CREDENTIALS_KEY"),
    ("credentials-old-keys-bad", dict(CREDENTIALS_KEY=KEY32, CREDENTIALS_OLD_KEYS=KEY32 + ",nope"),
     "CREDENTIALS_OLD_KEYS"),
]


@pytest.mark.parametrize("env,var", [(e, v) for _, e, v in REFUSALS], ids=[i for i, _, _ in REFUSALS])
def test_bad_config_refused(run_cli, env, var):
    r = run_cli(["serve"], env=env, timeout=10)
    assert r.returncode == 2, r
    assert var in r.err, "stderr should name %s: %r" % (var, r)


@pytest.mark.parametrize("content", [None, "{not json", '{"models": {"m": {"inputPerMillion": -1, "outputPerMillion": 1}}}'])
def test_bad_pricing_file_refused(run_cli, manager, content):
    path = manager.tmp / "prices.json"
    if content is not None:
        path.write_text(content)
    r = run_cli(["serve"], env=dict(LLM_PRICING_FILE=str(path)), timeout=10)
    assert r.returncode == 2, r
    assert "LLM_PRICING_FILE" in r.err, r


@pytest.mark.sqlite_only
def test_unopenable_database_fails_start_naming_it(run_cli):
    r = run_cli(["serve"], env=dict(DATABASE_URL="sqlite:///proc/aop/x.db"), timeout=10)
    assert r.returncode == 1, r
    assert "DATABASE_URL" in r.err and "/proc/aop" in r.err, r


def test_production_starts_with_good_secrets_and_sends_hsts(aop_server):
    s = aop_server(**PROD)
    r = s.get("/health")
    assert r.status_code == 200
    assert_security_headers(r, production=True)
    r404 = s.get("/api/nope")
    assert r404.status_code == 404
    assert_security_headers(r404, production=True)
    assert s.stop() == 0


def test_no_hsts_outside_production(aop_server):
    s = aop_server(APP_ENV="development")
    for path in ("/health", "/api/nope"):
        r = s.get(path)
        assert "Strict-Transport-Security" not in r.headers


def test_development_secrets_file(aop_server, manager):
    s1 = aop_server(APP_ENV="development")
    path = manager.tmp / "var" / "jwt-secrets"
    assert path.is_file(), "expected %s to be created" % path
    mode = stat.S_IMODE(os.stat(path).st_mode)
    assert mode == 0o600, oct(mode)
    content = path.read_bytes()
    assert len(content.strip()) >= 32, "secrets file looks empty: %r" % len(content)
    assert s1.stop() == 0

    s2 = aop_server(APP_ENV="development")
    assert s2.get("/health").status_code == 200
    assert path.read_bytes() == content, "restart changed the secrets file"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600



def test_unreachable_postgres_fails_start_without_showing_the_password(run_cli):
    from conftest import free_port
    url = "postgres://aop:Sekrit-Pg-Word-42@127.0.0.1:%d/aop" % free_port()
    r = run_cli(["serve"], env=dict(DATABASE_URL=url), timeout=20)
    assert r.returncode == 1, r
    assert "Sekrit-Pg-Word-42" not in r.err + r.out, r
    assert "127.0.0.1" in r.err, r


def test_redis_down_at_start_serves_and_ready_names_it(aop_server):
    """Redis is a cache and a shared counter, never the truth: a server whose Redis does
    not answer serves from the database, and /ready says what is down."""
    from conftest import free_port
    s = aop_server(REDIS_URL="redis://:Sekrit-Redis-9@127.0.0.1:%d" % free_port())
    r = s.get("/ready")
    assert r.status_code == 503, r.text
    assert r.json() == {"status": "unavailable", "checks": {"database": "ok", "redis": "down"}}
    assert s.get("/health").status_code == 200
    r = s.post("/api/auth/register", json={"email": "down@example.com", "password": "password-123",
                                           "name": "Down"})
    assert r.status_code == 201, r.text
    assert "Sekrit-Redis-9" not in s.stderr_text()
