"""Harness for the black-box API tests of AOP.

Every server runs the real binary (AOP_BIN, default build/test/aop, built with
ASan+UBSan) in a fresh temporary directory, on a free port, with a minimal
environment. Teardown stops it with SIGTERM and checks the exit code and that
no sanitizer report appeared on stderr.

Fixtures:
  aop_server(**env)  -> Server      function-scoped factory (all servers of one
                                     test share tmp_path, so a restart sees the
                                     same database and DATA_DIR)
  run_cli(args, env=None, stdin=None, timeout=30) -> CompletedProcess (bytes
                                     decoded into .out / .err), same tmp_path
  shared_server(factory, name, **env) one server for a module's read-only checks

Backends: AOP_TEST_BACKEND=sqlite (default) gives each test directory its
own SQLite file. AOP_TEST_BACKEND=pg gives it its own PostgreSQL database
(created on AOP_TEST_PG_URL's server, dropped at teardown) and its own Redis
database number on AOP_TEST_REDIS_URL's server (flushed first): the whole
suite runs unchanged against PostgreSQL + Redis. Tests about the embedded
file itself are marked @pytest.mark.sqlite_only and reported skipped on pg.
On pg the run first checks that both servers answer and stops with a
failure (never a skip) when either does not.

Every response a test gets from a server started here, through any requests
session, is checked against docs/openapi.json (openapi_check.py): a body or
status the document does not describe fails the test that got it.

db_query(server_or_manager, sql, params) / db_execute(...) reach the test's
database on either backend (write `?` placeholders).
"""
import itertools
import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import time

import pytest
import requests

import openapi_check

REPO = pathlib.Path(__file__).resolve().parents[2]
AOP_BIN = os.environ.get("AOP_BIN") or str(REPO / "build" / "test" / "aop")

# ASan, LSan and UBSan in the test build; ThreadSanitizer in the tsan build
# (make tsan), which reports and goes on.
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "WARNING: ThreadSanitizer:")
READY_TIMEOUT = 15.0
STOP_TIMEOUT = 20.0

# requests must never go through a proxy configured in the outer environment.
for _k in list(os.environ):
    if _k.lower() in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        del os.environ[_k]
os.environ["NO_PROXY"] = "*"

# Every requests session, the harness's and the tests' own, checks what the
# servers started here answer against the OpenAPI document.
_session_init = requests.Session.__init__


def _checked_session_init(self, *args, **kwargs):
    _session_init(self, *args, **kwargs)
    self.hooks["response"].append(openapi_check.check)


requests.Session.__init__ = _checked_session_init


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def parse_json_lines(text):
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict):
            out.append(obj)
    return out


def sanitizer_findings(text):
    return [m for m in SANITIZER_MARKERS if m in text]


BACKEND = os.environ.get("AOP_TEST_BACKEND", "sqlite")
if BACKEND not in ("sqlite", "pg"):
    raise RuntimeError("AOP_TEST_BACKEND must be sqlite or pg")
PG_ADMIN_URL = os.environ.get("AOP_TEST_PG_URL")
REDIS_BASE_URL = os.environ.get("AOP_TEST_REDIS_URL")

# base64 of 32 bytes: the key of every test database on PostgreSQL (on SQLite
# the server generates one next to the file, as it does for users).
TEST_CREDENTIALS_KEY = "dGVzdC1jcmVkZW50aWFscy1rZXktMzItYnl0ZXMhISE="

_redis_dbs = itertools.count(1)   # db 0 is left to people looking around by hand (< 10000)
_databases = {}                   # test directory -> (pg database URL, redis URL)


def pg_connect(url):
    import psycopg2
    import psycopg2.extras
    con = psycopg2.connect(url)
    # Documents come back as the text stored, as sqlite3 gives them.
    psycopg2.extras.register_default_json(con, loads=lambda x: x)
    psycopg2.extras.register_default_jsonb(con, loads=lambda x: x)
    return con


def pg_url_with_db(url, name):
    import urllib.parse
    u = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((u.scheme, u.netloc, "/" + name, u.query, u.fragment))


def fresh_backend(pg_admin_url, redis_base_url):
    """An empty PostgreSQL database and a flushed Redis db number on those
    servers: (DATABASE_URL, REDIS_URL, database name)."""
    import redis as redis_mod
    n = next(_redis_dbs)
    name = "aop_t%d_%d" % (os.getpid(), n)
    con = pg_connect(pg_admin_url)
    con.autocommit = True
    try:
        with con.cursor() as cur:
            cur.execute("CREATE DATABASE %s" % name)
    finally:
        con.close()
    r = redis_mod.Redis.from_url("%s/%d" % (redis_base_url, n))
    r.flushdb()
    r.close()
    return pg_url_with_db(pg_admin_url, name), "%s/%d" % (redis_base_url, n), name


def backend_urls(tmpdir):
    """The DATABASE_URL and REDIS_URL of a test directory (pg backend)."""
    key = str(tmpdir)
    if key not in _databases:
        _databases[key] = fresh_backend(PG_ADMIN_URL, REDIS_BASE_URL)
    return _databases[key]


def drop_database(tmpdir):
    entry = _databases.pop(str(tmpdir), None)
    if not entry:
        return
    con = pg_connect(PG_ADMIN_URL)
    con.autocommit = True
    try:
        with con.cursor() as cur:
            cur.execute("DROP DATABASE IF EXISTS %s WITH (FORCE)" % entry[2])
    finally:
        con.close()


def _tmp_of(target):
    return pathlib.Path(getattr(target, "tmp", target))


def db_query(target, sql, params=()):
    """Rows (dicts) of a query on the test's database, either backend."""
    tmp = _tmp_of(target)
    if BACKEND == "pg":
        import psycopg2.extras
        con = pg_connect(backend_urls(tmp)[0])
        try:
            with con.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
                cur.execute(sql.replace("%", "%%").replace("?", "%s"), tuple(params))
                rows = [dict(r) for r in cur.fetchall()] if cur.description else []
            con.commit()
            return rows
        finally:
            con.close()
    import sqlite3
    con = sqlite3.connect(str(tmp / "aop.db"), timeout=10)
    con.row_factory = sqlite3.Row
    try:
        with con:
            return [dict(r) for r in con.execute(sql, params)]
    finally:
        con.close()


def db_execute(target, sql, params=()):
    db_query(target, sql, params)


def db_dump(target):
    """Every byte the database holds, as text or bytes to search in: the
    SQLite files, or every row of every table on PostgreSQL."""
    tmp = _tmp_of(target)
    if BACKEND == "pg":
        con = pg_connect(backend_urls(tmp)[0])
        try:
            with con.cursor() as cur:
                cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
                out = []
                for (t,) in cur.fetchall():
                    cur.execute('SELECT t::text FROM "%s" t' % t)
                    out.extend(r[0] for r in cur.fetchall())
            return "\n".join(out).encode("utf-8")
        finally:
            con.close()
    out = b""
    for suffix in ("", "-wal", "-journal", "-shm"):
        try:
            with open(str(tmp / "aop.db") + suffix, "rb") as f:
                out += f.read()
        except FileNotFoundError:
            pass
    return out


def pytest_configure(config):
    config.addinivalue_line("markers", "sqlite_only: about the embedded SQLite file itself")


def backend_problems():
    """Why the pg backend cannot run here (a list; empty when both servers
    answer). The URLs are left out: they hold the password."""
    if not (PG_ADMIN_URL and REDIS_BASE_URL):
        return ["AOP_TEST_PG_URL and AOP_TEST_REDIS_URL must both be set "
                "(scripts/test.sh pg starts both servers)"]
    problems = []
    try:
        pg_connect(PG_ADMIN_URL).close()
    except Exception as e:  # any reason at all: the run cannot go on
        problems.append("PostgreSQL (AOP_TEST_PG_URL) cannot be reached: %s" % str(e).strip())
    try:
        import redis as redis_mod
        r = redis_mod.Redis.from_url(REDIS_BASE_URL, socket_timeout=5, socket_connect_timeout=5)
        try:
            r.ping()
        finally:
            r.close()
    except Exception as e:
        problems.append("Redis (AOP_TEST_REDIS_URL) cannot be reached: %s" % str(e).strip())
    return problems


def pytest_sessionstart(session):
    if BACKEND != "pg":
        return
    problems = backend_problems()
    if problems:
        pytest.exit("AOP_TEST_BACKEND=pg, but " + "; ".join(problems), returncode=1)


def pytest_terminal_summary(terminalreporter):
    terminalreporter.write_line("openapi: %d responses checked against docs/openapi.json"
                                % openapi_check.checked_count())


def pytest_collection_modifyitems(config, items):
    if BACKEND != "pg":
        return
    skip = pytest.mark.skip(reason="about the embedded SQLite file (AOP_TEST_BACKEND=pg)")
    for item in items:
        if "sqlite_only" in item.keywords:
            item.add_marker(skip)


def base_env(tmpdir, port=None):
    tmpdir = pathlib.Path(tmpdir)
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", str(tmpdir)),
        "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0",
        "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
        "DATABASE_URL": "sqlite://%s" % (tmpdir / "aop.db"),
        "DATA_DIR": str(tmpdir / "var"),
        "APP_ENV": "test",
        "BCRYPT_COST": "4",
        "HOST": "127.0.0.1",
        "PORT": str(port if port is not None else free_port()),
        "HTTP_THREADS": "2",
        # Generous limits so that suites making many accounts are not throttled;
        # the rate-limit tests set their own.
        "RATE_LIMIT_MAX": "1000000",
        "AUTH_RATE_LIMIT_MAX": "1000000",
    }
    if BACKEND == "pg":
        env["DATABASE_URL"], env["REDIS_URL"], _ = backend_urls(tmpdir)
        # PostgreSQL requires a credentials key shared by every instance.
        env["CREDENTIALS_KEY"] = TEST_CREDENTIALS_KEY
    return env


def merge_env(env, overrides):
    env = dict(env)
    for k, v in (overrides or {}).items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = str(v)
    return env


class CliResult:
    def __init__(self, args, returncode, out, err):
        self.args = args
        self.returncode = returncode
        self.stdout_bytes = out
        self.stderr_bytes = err
        self.out = out.decode("utf-8", "replace")
        self.err = err.decode("utf-8", "replace")

    def __repr__(self):
        return "CliResult(args=%r, rc=%r, stdout=%r, stderr=%r)" % (
            self.args, self.returncode, self.out[-2000:], self.err[-4000:])

    def logs(self):
        return parse_json_lines(self.err)


class Server:
    def __init__(self, manager, index, env):
        self.manager = manager
        self.tmp = manager.tmp
        self.env = env
        self.port = int(env["PORT"])
        self.host = "127.0.0.1"
        self.url = "http://127.0.0.1:%d" % self.port
        self.stdout_path = self.tmp / ("server-%d.stdout" % index)
        self.stderr_path = self.tmp / ("server-%d.stderr" % index)
        self.log_path = pathlib.Path(env["LOG_FILE"]) if env.get("LOG_FILE") else self.stderr_path
        self.proc = None
        self.stopped_by_test = False
        self.session = requests.Session()
        self.session.trust_env = False

    # -- process control -------------------------------------------------
    def start(self, wait=True):
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [AOP_BIN, "serve"], cwd=str(self.tmp), env=self.env,
                stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                start_new_session=True)
        openapi_check.register_port(self.port)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=READY_TIMEOUT):
        deadline = time.monotonic() + timeout
        s = requests.Session()
        s.trust_env = False
        last = None
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                pytest.fail("server exited with %r before becoming ready; stderr:\n%s"
                            % (rc, self.stderr_text()[-6000:]))
            try:
                r = s.get(self.url + "/health", timeout=1)
                if r.status_code == 200:
                    s.close()
                    return
                last = "status %d" % r.status_code
            except requests.RequestException as e:
                last = repr(e)
            time.sleep(0.05)
        s.close()
        pytest.fail("server not ready after %.0fs (last: %s); stderr:\n%s"
                    % (timeout, last, self.stderr_text()[-6000:]))

    @property
    def pid(self):
        return self.proc.pid

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def send_signal(self, sig):
        if self.running():
            os.kill(self.proc.pid, sig)

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT):
        """Sends sig and waits; returns the exit code (None if it did not exit)."""
        self.stopped_by_test = True
        if self.running():
            os.kill(self.proc.pid, sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self):
        if self.running():
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    # -- output ------------------------------------------------------------
    def stderr_text(self):
        try:
            return self.stderr_path.read_text("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_text(self, path=None):
        p = pathlib.Path(path) if path else self.log_path
        try:
            return p.read_text("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def logs(self, path=None):
        """JSON-object lines of the log (LOG_FILE if set, else stderr)."""
        return parse_json_lines(self.log_text(path))

    def stderr_logs(self):
        return parse_json_lines(self.stderr_text())

    def wait_log(self, pred, timeout=5.0, path=None):
        deadline = time.monotonic() + timeout
        while True:
            for line in self.logs(path):
                if pred(line):
                    return line
            if time.monotonic() > deadline:
                return None
            time.sleep(0.05)

    # -- HTTP ----------------------------------------------------------------
    def request(self, method, path, **kw):
        kw.setdefault("timeout", 15)
        kw.setdefault("allow_redirects", False)
        return self.session.request(method, self.url + path, **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def head(self, path, **kw):
        return self.request("HEAD", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    def fresh_get(self, path, **kw):
        """GET on a new connection (no keep-alive reuse)."""
        kw.setdefault("timeout", 15)
        s = requests.Session()
        s.trust_env = False
        try:
            return s.get(self.url + path, **kw)
        finally:
            s.close()

    def connect(self, source=None, timeout=10):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(timeout)
        if source:
            s.bind((source, 0))
        s.connect((self.host, self.port))
        return s


class Manager:
    """Owns the servers started in one directory and checks them at teardown."""

    def __init__(self, tmp):
        self.tmp = pathlib.Path(tmp)
        self.servers = []
        self.cli_runs = []

    def env(self, port=None, **overrides):
        return merge_env(base_env(self.tmp, port), overrides)

    def server(self, start=True, **overrides):
        env = self.env(**overrides)
        srv = Server(self, len(self.servers), env)
        self.servers.append(srv)
        if start:
            srv.start()
        return srv

    def run_cli(self, args, env=None, stdin=None, timeout=30):
        full_env = self.env(**(env or {}))
        if isinstance(stdin, str):
            stdin = stdin.encode("utf-8")
        idx = len(self.cli_runs)
        out_p = self.tmp / ("cli-%d.stdout" % idx)
        err_p = self.tmp / ("cli-%d.stderr" % idx)
        with open(out_p, "wb") as out, open(err_p, "wb") as err:
            p = subprocess.Popen([AOP_BIN] + list(args), cwd=str(self.tmp), env=full_env,
                                 stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                                 stdout=out, stderr=err, start_new_session=True)
            timed_out = False
            try:
                if stdin is not None:
                    try:
                        p.stdin.write(stdin)
                    except BrokenPipeError:
                        pass
                    p.stdin.close()
                p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                os.kill(p.pid, signal.SIGKILL)
                p.wait(timeout=10)
        res = CliResult(args, p.returncode, out_p.read_bytes(), err_p.read_bytes())
        self.cli_runs.append(res)
        if timed_out:
            pytest.fail("`aop %s` did not exit within %ss: %r" % (" ".join(args), timeout, res))
        found = sanitizer_findings(res.err)
        assert not found, "sanitizer report from `aop %s`: %s\n%s" % (" ".join(args), found, res.err[-6000:])
        return res

    def finalize(self):
        problems = []
        for srv in self.servers:
            if srv.proc is None:
                continue
            if srv.running():
                srv.proc.send_signal(signal.SIGTERM)
                try:
                    rc = srv.proc.wait(timeout=STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    srv.kill()
                    problems.append("server on port %d did not exit within %.0fs of SIGTERM"
                                    % (srv.port, STOP_TIMEOUT))
                    rc = 0
                if rc != 0:
                    problems.append("server on port %d exited with %r after SIGTERM; stderr tail:\n%s"
                                    % (srv.port, rc, srv.stderr_text()[-4000:]))
            text = srv.stderr_text()
            found = sanitizer_findings(text)
            if found:
                problems.append("sanitizer report %s in stderr of server on port %d:\n%s"
                                % (found, srv.port, text[-8000:]))
            srv.session.close()
            openapi_check.unregister_port(srv.port)
        if BACKEND == "pg":
            drop_database(self.tmp)
        if problems:
            pytest.fail("\n\n".join(problems), pytrace=False)


def make_manager(tmpdir):
    return Manager(tmpdir)


def shared_server(tmp_path_factory, name, **env):
    """One server shared by a module's read-only checks; use with `yield from`
    in a module-scoped fixture. Stopped and checked when the module ends."""
    m = make_manager(tmp_path_factory.mktemp(name))
    yield m.server(**env)
    m.finalize()


@pytest.fixture(autouse=True)
def openapi_conformance():
    """Fails the test when a response it got disagrees with docs/openapi.json."""
    yield
    problems = openapi_check.take_problems()
    if problems:
        pytest.fail("responses that docs/openapi.json does not describe:\n  "
                    + "\n  ".join(problems[:20]), pytrace=False)


@pytest.fixture
def manager(tmp_path):
    m = Manager(tmp_path)
    yield m
    m.finalize()


@pytest.fixture
def aop_server(manager):
    """Factory: aop_server(**env_overrides) -> started Server (start=False to not start)."""
    return manager.server


@pytest.fixture
def run_cli(manager):
    return manager.run_cli


# ---------------------------------------------------------------------------
# shared assertions

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def assert_security_headers(r, production=False):
    for k, v in SECURITY_HEADERS.items():
        assert r.headers.get(k) == v, "%s: expected %r, got %r (status %d %s)" % (
            k, v, r.headers.get(k), r.status_code, r.request.method + " " + r.request.path_url[:80])
    assert "Server" not in r.headers, "unexpected Server header %r" % r.headers.get("Server")
    if production:
        assert r.headers.get("Strict-Transport-Security") == "max-age=31536000; includeSubDomains"
    else:
        assert "Strict-Transport-Security" not in r.headers
    assert r.headers.get("X-Request-Id"), "missing X-Request-Id"


def assert_error(r, status, code):
    assert r.status_code == status, "expected %d %s, got %d: %r" % (status, code, r.status_code, r.text[:500])
    ctype = r.headers.get("Content-Type", "")
    assert ctype.split(";")[0].strip() == "application/json", "Content-Type %r" % ctype
    body = r.json()
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), body
    err = body["error"]
    assert err.get("code") == code, err
    assert isinstance(err.get("message"), str) and err["message"], err
    assert err.get("requestId") == r.headers.get("X-Request-Id"), (err, r.headers.get("X-Request-Id"))
    if "details" in err:
        assert isinstance(err["details"], list), err
    assert_security_headers(r)
    return err
