"""CLI: help, version, unknown command, migrate, user create, ADMIN_EMAIL bootstrap."""
import json
import re
import warnings

import pytest

from conftest import BACKEND, db_query

UUID7 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
USER_KEYS = {"id", "email", "name", "role", "preferences", "isActive", "createdAt", "updatedAt", "lastLoginAt"}

try:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import crypt as _crypt
except ImportError:  # pragma: no cover
    _crypt = None


def users_rows(manager):
    return db_query(manager, "SELECT * FROM users ORDER BY created_at")


def check_hash(password, h):
    if _crypt is None:
        return
    assert _crypt.crypt(password, h) == h, "stored hash does not verify the password given on stdin"


def create_user(run_cli, email="alice@example.com", name="Alice", role="user", password="correct-horse-1",
                stdin=None):
    args = ["user", "create"]
    if email is not None:
        args += ["--email", email]
    if name is not None:
        args += ["--name", name]
    if role is not None:
        args += ["--role", role]
    if stdin is None:
        stdin = password.encode("utf-8") + b"\n" if isinstance(password, str) else password + b"\n"
    return run_cli(args, stdin=stdin)


# ---------------------------------------------------------------- help/version

@pytest.mark.parametrize("args", [["--help"], ["help"]])
def test_help_prints_usage_and_exits_0(run_cli, args):
    r = run_cli(args)
    assert r.returncode == 0, r
    for word in ("serve", "migrate", "version", "user create"):
        assert word in r.out, "usage on stdout should name %r: %r" % (word, r)


def test_man_page_has_every_command_and_variable_of_help(run_cli):
    """aop.1 comes from the same tables as --help: nothing one lists is
    missing from the other, and the roff is escaped."""
    help_text = run_cli(["--help"]).out
    man = run_cli(["help", "--man"])
    assert man.returncode == 0, man
    assert man.out.startswith(".TH AOP 1 "), man.out[:200]
    for section in ("NAME", "SYNOPSIS", "COMMANDS", "ENVIRONMENT", "EXIT STATUS"):
        assert ".SH %s\n" % section in man.out, section
    env = help_text.split("configuration (environment):", 1)[1]
    names = [line.split()[0] for line in env.splitlines() if line.strip()]
    assert len(names) > 30 and "DATABASE_URL" in names, names
    for name in names:
        assert ".B %s\n" % name.replace("-", "\\-") in man.out, name
    for command in ("serve", "migrate", "version",
                    "user create \\-\\-email E \\-\\-name N \\-\\-role admin|user|viewer"):
        assert ".B %s\n" % command in man.out, command
    # a default with a dot or a backslash must not become a roff request
    assert "\n." not in man.out.replace("\n.TP", "").replace("\n.B ", "").replace(
        "\n.SH ", "").replace("\n.TH", "").replace("\n.I ", "").replace("\n.BR ", "")


def test_version(run_cli):
    r = run_cli(["version"])
    assert r.returncode == 0, r
    assert r.out.splitlines()[0].startswith("aop 0.1.0"), r


def test_unknown_command_exit_2_usage_on_stderr(run_cli):
    r = run_cli(["frobnicate"])
    assert r.returncode == 2, r
    for word in ("serve", "migrate", "user create"):
        assert word in r.err, "usage on stderr should name %r: %r" % (word, r)
    assert "user create" not in r.out, "usage belongs on stderr, not stdout: %r" % r


# ---------------------------------------------------------------- migrate

def _migrations_applied(res):
    return [l for l in res.logs() if l.get("msg") == "migrations applied"]


def test_migrate_twice(run_cli, manager):
    r1 = run_cli(["migrate"])
    assert r1.returncode == 0, r1
    if BACKEND == "pg":
        tables = {r["tablename"] for r in db_query(manager, "SELECT tablename FROM pg_tables "
                                                             "WHERE schemaname = 'public'")}

        def columns(t):
            return {r["column_name"] for r in db_query(
                manager, "SELECT column_name FROM information_schema.columns WHERE table_name = ?", (t,))}
    else:
        tables = {r["name"] for r in db_query(manager, "SELECT name FROM sqlite_master WHERE type='table'")}

        def columns(t):
            return {r["name"] for r in db_query(manager, "PRAGMA table_info(%s)" % t)}
    assert {"users", "schema_migrations"} <= tables, tables
    cols = columns("schema_migrations")
    assert {"version", "name", "applied_at"} <= cols, cols
    ucols = columns("users")
    assert {"id", "email", "name", "password_hash", "role", "preferences", "is_active",
            "created_at", "updated_at", "last_login_at"} <= ucols, ucols
    n1 = db_query(manager, "SELECT count(*) AS n FROM schema_migrations")[0]["n"]
    assert n1 >= 1
    first = _migrations_applied(r1)
    assert first, "no 'migrations applied' log line on first migrate: %r" % r1
    assert first[-1].get("applied") == n1, first

    r2 = run_cli(["migrate"])
    assert r2.returncode == 0, r2
    second = _migrations_applied(r2)
    assert second, "no 'migrations applied' log line on second migrate: %r" % r2
    assert second[-1].get("applied") == 0, second
    assert db_query(manager, "SELECT count(*) AS n FROM schema_migrations")[0]["n"] == n1


# ---------------------------------------------------------------- user create

def test_user_create_prints_user_and_stores_hash(run_cli, manager):
    r = create_user(run_cli, email="Foo@Example.COM", name="Foo Bar", role="viewer",
                    stdin=b"pass word 12\nsecond line ignored\n")
    assert r.returncode == 0, r
    user = json.loads(r.out)
    assert isinstance(user, dict)
    assert set(user) == USER_KEYS, "user keys: %r" % sorted(user)
    for k in user:
        assert "password" not in k.lower() and "hash" not in k.lower()
    assert "$2b$" not in r.out
    assert UUID7.match(user["id"]), user["id"]
    assert user["email"] == "foo@example.com"
    assert user["name"] == "Foo Bar"
    assert user["role"] == "viewer"
    assert isinstance(user["preferences"], dict)
    assert user["isActive"] is True
    assert TS.match(user["createdAt"]), user["createdAt"]
    assert TS.match(user["updatedAt"]), user["updatedAt"]
    assert user["lastLoginAt"] is None

    rows = users_rows(manager)
    assert len(rows) == 1
    row = rows[0]
    assert row["id"] == user["id"]
    assert row["email"] == "foo@example.com"
    assert row["role"] == "viewer"
    assert row["password_hash"].startswith("$2b$"), row["password_hash"]
    assert row["password_hash"].startswith("$2b$04$"), "BCRYPT_COST=4 not applied: %r" % row["password_hash"]
    check_hash("pass word 12", row["password_hash"])


def test_user_create_password_length_bounds_in_bytes(run_cli, manager):
    assert create_user(run_cli, email="a8@example.com", password="x" * 8).returncode == 0
    assert create_user(run_cli, email="a72@example.com", password="y" * 72).returncode == 0
    # 36 two-byte characters = 72 bytes: fine; 37 = 74 bytes: too long
    ok = create_user(run_cli, email="u72@example.com", password="\u00e9" * 36)
    assert ok.returncode == 0, ok
    rows = {r["email"]: r for r in users_rows(manager)}
    check_hash("y" * 72, rows["a72@example.com"]["password_hash"])
    check_hash("\u00e9" * 36, rows["u72@example.com"]["password_hash"])
    bad = create_user(run_cli, email="u74@example.com", password="\u00e9" * 37)
    assert bad.returncode == 2, bad
    assert bad.err.strip(), bad
    assert "u74@example.com" not in rows


def test_user_create_duplicate_email_any_case(run_cli, manager):
    r1 = create_user(run_cli, email="dup@example.com")
    assert r1.returncode == 0, r1
    r2 = create_user(run_cli, email="DUP@Example.com", name="Other")
    assert r2.returncode == 1, r2
    assert "already exists" in r2.err, r2
    assert r2.out.strip() == "" or "dup@example.com" not in r2.out
    assert len(users_rows(manager)) == 1


@pytest.mark.parametrize("case", [
    dict(password="short7!"),
    dict(password="z" * 73),
    dict(role="superuser"),
    dict(role="Admin "),
    dict(email=None),
    dict(name=None),
    dict(role=None),
    dict(email="not-an-email"),
    dict(email="@example.com"),
], ids=["pw7", "pw73", "role-superuser", "role-garbage", "no-email", "no-name", "no-role",
        "email-no-at", "email-no-local"])
def test_user_create_invalid_input_exit_2(run_cli, manager, case):
    kw = dict(email="bob@example.com", name="Bob", role="user", password="good-password")
    kw.update(case)
    r = create_user(run_cli, **kw)
    assert r.returncode == 2, r
    assert r.err.strip(), "expected a message on stderr: %r" % r
    try:
        assert users_rows(manager) == []
    except Exception as e:  # no table yet: nothing was created either
        assert "users" in str(e), e


@pytest.mark.parametrize("role", ["admin", "user", "viewer"])
def test_user_create_each_role(run_cli, manager, role):
    r = create_user(run_cli, email="%s@example.com" % role, role=role)
    assert r.returncode == 0, r
    assert json.loads(r.out)["role"] == role
    assert users_rows(manager)[0]["role"] == role


# ---------------------------------------------------------------- admin bootstrap

def test_admin_bootstrap_on_serve_is_idempotent(aop_server, run_cli, manager):
    env = dict(ADMIN_EMAIL="root@example.com", ADMIN_PASSWORD="admin-password-1")
    s1 = aop_server(**env)
    rows = users_rows(manager)
    assert len(rows) == 1, rows
    assert rows[0]["email"] == "root@example.com"
    assert rows[0]["role"] == "admin"
    assert rows[0]["password_hash"].startswith("$2b$")
    check_hash("admin-password-1", rows[0]["password_hash"])
    assert s1.stop() == 0

    s2 = aop_server(**env)
    assert s2.get("/health").status_code == 200
    rows2 = users_rows(manager)
    assert len(rows2) == 1, rows2
    assert rows2[0]["id"] == rows[0]["id"]
    assert s2.stop() == 0

    # the admin really exists for the CLI too
    r = create_user(run_cli, email="ROOT@example.com")
    assert r.returncode == 1 and "already exists" in r.err, r


def test_user_create_on_a_terminal_prompts_without_echo(manager):
    """Typed at a terminal, the password is asked for and never shown."""
    import os
    import pty
    import select
    import subprocess
    import time

    from conftest import AOP_BIN
    master, slave = pty.openpty()
    env = manager.env(LOG_LEVEL="error")
    p = subprocess.Popen([AOP_BIN, "user", "create", "--email", "tty@example.com", "--name", "Tty",
                          "--role", "viewer"], env=env, cwd=str(manager.tmp),
                         stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    seen = b""

    def read_until(pred, timeout=15):
        nonlocal seen
        deadline = time.monotonic() + timeout
        while not pred(seen) and time.monotonic() < deadline:
            r, _, _ = select.select([master], [], [], 0.1)
            if r:
                try:
                    chunk = os.read(master, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                seen += chunk

    try:
        read_until(lambda s: b"Password:" in s)
        assert b"Password:" in seen, seen
        os.write(master, b"typed-secret-9\n")
        read_until(lambda s: b"tty@example.com" in s)
        rc = p.wait(timeout=15)
        read_until(lambda s: False, timeout=0.3)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        os.close(master)
    assert rc == 0, seen
    assert b"typed-secret-9" not in seen, seen
    assert json.loads(seen[seen.index(b"{"):seen.rindex(b"}") + 1])["role"] == "viewer"
    row = [u for u in users_rows(manager) if u["email"] == "tty@example.com"][0]
    check_hash("typed-secret-9", row["password_hash"])
