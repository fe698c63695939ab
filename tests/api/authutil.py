"""Helpers for the authentication tests: accounts, tokens, API keys, the database.

Servers of the auth suites run with known JWT secrets (AUTH_ENV) so that tests can
check signatures and forge tokens, and with a bootstrap admin (ADMIN_EMAIL /
ADMIN_PASSWORD).
"""
import datetime
import hashlib
import os
import re
import time
import uuid

import jwt

from conftest import assert_error, db_dump, db_query

ACCESS_SECRET = "access-secret-0123456789abcdefghijklmnop"    # 40 chars
REFRESH_SECRET = "refresh-secret-0123456789abcdefghijklmno"   # 40 chars
assert len(ACCESS_SECRET) == 40 and len(REFRESH_SECRET) == 40

ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "admin-password-1"
DEFAULT_PASSWORD = "correct-horse-1"

AUTH_ENV = {
    "JWT_ACCESS_SECRET": ACCESS_SECRET,
    "JWT_REFRESH_SECRET": REFRESH_SECRET,
    "ADMIN_EMAIL": ADMIN_EMAIL,
    "ADMIN_PASSWORD": ADMIN_PASSWORD,
}

UUID7 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
USER_KEYS = {"id", "email", "name", "role", "preferences", "isActive", "createdAt", "updatedAt",
             "lastLoginAt"}
KEY_KEYS = {"id", "name", "key", "prefix", "scopes", "createdAt", "expiresAt", "lastUsedAt"}
API_KEY_RE = re.compile(r"^aop_[A-Za-z0-9_-]{43}$")
AUTH_RESPONSE_KEYS = {"user", "accessToken", "refreshToken", "expiresIn"}


def auth_env(**overrides):
    env = dict(AUTH_ENV)
    env.update(overrides)
    return env


def uniq_email(tag="u"):
    return "%s-%s@example.com" % (tag, uuid.uuid4().hex[:12])


def uuid7():
    """A fresh UUIDv7 string (lowercase, hyphenated)."""
    ms = int(time.time() * 1000)
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= ((rand >> 62) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    return str(uuid.UUID(int=value))


def bearer(token):
    return {"Authorization": "Bearer %s" % token}


def apikey(key):
    return {"X-API-Key": key}


def rid(tag="t"):
    return "%s-%s" % (tag, uuid.uuid4().hex[:16])


def parse_ts(s):
    assert isinstance(s, str) and TS.match(s), "not an RFC 3339 UTC millisecond timestamp: %r" % (s,)
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)


def iso_in(seconds):
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=seconds)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (t.microsecond // 1000)


# ---------------------------------------------------------------- HTTP helpers

def patch(server, path, **kw):
    return server.request("PATCH", path, **kw)


def delete(server, path, **kw):
    return server.request("DELETE", path, **kw)


def register(server, email=None, password=DEFAULT_PASSWORD, name="Test User", expect=201, **kw):
    """POST /api/auth/register; asserts the status and returns the JSON body.
    The body gets "_password" and "_email" for the tests' convenience."""
    email = email or uniq_email()
    r = server.post("/api/auth/register", json={"email": email, "password": password, "name": name}, **kw)
    assert r.status_code == expect, "register %s: %d %s" % (email, r.status_code, r.text[:500])
    body = r.json()
    if expect == 201:
        body["_email"] = email
        body["_password"] = password
    return body


def login(server, email, password=DEFAULT_PASSWORD, expect=200, **kw):
    r = server.post("/api/auth/login", json={"email": email, "password": password}, **kw)
    assert r.status_code == expect, "login %s: %d %s" % (email, r.status_code, r.text[:500])
    return r.json()


def refresh(server, token, **kw):
    return server.post("/api/auth/refresh", json={"refreshToken": token}, **kw)


def me(server, headers):
    return server.get("/api/auth/me", headers=headers)


def admin_token(server):
    return login(server, ADMIN_EMAIL, ADMIN_PASSWORD)["accessToken"]


def admin_login(server):
    return login(server, ADMIN_EMAIL, ADMIN_PASSWORD)


def set_user(server, admin_tok, user_id, expect=200, **fields):
    r = patch(server, "/api/users/%s" % user_id, json=fields, headers=bearer(admin_tok))
    assert r.status_code == expect, "PATCH /api/users/%s %r: %d %s" % (user_id, fields, r.status_code, r.text[:500])
    return r.json()


def make_user(server, role="user", admin_tok=None, email=None, password=DEFAULT_PASSWORD, name="Test User"):
    """Registers a user and, for another role, has the admin set it. Returns the
    register body (user, accessToken, refreshToken, expiresIn, _email, _password)."""
    body = register(server, email=email, password=password, name=name)
    if role != "user":
        admin_tok = admin_tok or admin_token(server)
        body["user"] = set_user(server, admin_tok, body["user"]["id"], role=role)
    return body


def create_key(server, token, name="test key", expect=201, **fields):
    payload = {"name": name}
    payload.update(fields)
    r = server.post("/api/auth/api-keys", json=payload, headers=bearer(token))
    assert r.status_code == expect, "create key: %d %s" % (r.status_code, r.text[:500])
    return r.json()


def assert_unauthorized(r, code="UNAUTHORIZED"):
    return assert_error(r, 401, code)


def detail_fields(err):
    return {d.get("field") for d in err.get("details") or []}


def assert_validation(r, field):
    """400 VALIDATION_ERROR whose details name field."""
    err = assert_error(r, 400, "VALIDATION_ERROR")
    assert field in detail_fields(err), "details should name %r: %r" % (field, err)
    return err


# ---------------------------------------------------------------- tokens

def decode(tok):
    return jwt.decode(tok, options={"verify_signature": False})


def header(tok):
    return jwt.get_unverified_header(tok)


def forge(claims, secret=ACCESS_SECRET, alg="HS256", headers=None):
    return jwt.encode(claims, secret, algorithm=alg, headers=headers)


def access_claims(user_id, role="user", ttl=900, fam=None, **over):
    now = int(time.time())
    c = {"sub": user_id, "role": role, "type": "access", "jti": str(uuid.uuid4()),
         "fam": fam or str(uuid.uuid4()), "iat": now, "exp": now + ttl, "iss": "aop"}
    c.update(over)
    return {k: v for k, v in c.items() if v is not None}


def refresh_claims(user_id, ttl=3600, fam=None, **over):
    now = int(time.time())
    c = {"sub": user_id, "type": "refresh", "jti": str(uuid.uuid4()),
         "fam": fam or str(uuid.uuid4()), "iat": now, "exp": now + ttl, "iss": "aop"}
    c.update(over)
    return {k: v for k, v in c.items() if v is not None}


def alg_none(claims):
    import base64
    import json

    def b64(d):
        return base64.urlsafe_b64encode(json.dumps(d, separators=(",", ":")).encode()).rstrip(b"=").decode()
    return "%s.%s." % (b64({"alg": "none", "typ": "JWT"}), b64(claims))


# ---------------------------------------------------------------- database

def db_rows(server, sql, params=()):
    return db_query(server, sql, params)


def db_bytes(server):
    """Everything the database holds (files on SQLite, rows on PostgreSQL)."""
    return db_dump(server)


def sha256_hex(s):
    return hashlib.sha256(s.encode("utf-8")).hexdigest()
