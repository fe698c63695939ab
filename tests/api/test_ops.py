"""Readiness when the database goes away; slow database operations are logged."""
import os

import pytest

from conftest import assert_security_headers


@pytest.mark.sqlite_only
def test_ready_reports_database_down_when_file_is_removed(aop_server):
    s = aop_server()
    r = s.get("/ready")
    assert r.status_code == 200, r.text
    db = s.tmp / "aop.db"
    for suffix in ("", "-wal", "-shm"):
        p = str(db) + suffix
        if os.path.exists(p):
            os.unlink(p)
    r = s.get("/ready")
    assert r.status_code == 503, r.text
    assert r.json() == {"status": "unavailable", "checks": {"database": "down"}}
    assert_security_headers(r)
    # liveness is not readiness: the process still serves
    assert s.get("/health").status_code == 200
    line = s.wait_log(lambda l: l.get("msg") == "database file is missing or was replaced")
    assert line is not None, s.stderr_text()[-2000:]
    assert line.get("requestId") == r.headers["X-Request-Id"]


def test_slow_database_operations_are_logged_with_request_id(aop_server):
    s = aop_server(DB_SLOW_MS="0")
    r = s.get("/ready", headers={"X-Request-Id": "slow-op-check-1"})
    assert r.status_code == 200
    line = s.wait_log(lambda l: l.get("msg") == "slow database operation" and l.get("op") == "ping")
    assert line is not None, s.stderr_text()[-2000:]
    assert line["level"] == "warn"
    assert line["requestId"] == "slow-op-check-1"
    assert isinstance(line["durationMs"], (int, float))


def test_fast_database_operations_are_not_logged(aop_server):
    s = aop_server(DB_SLOW_MS="60000")
    assert s.get("/ready").status_code == 200
    assert s.wait_log(lambda l: l.get("msg") == "request" and l.get("path") == "/ready") is not None
    assert not [l for l in s.logs() if l.get("msg") == "slow database operation"]


def test_listening_line_names_the_url(aop_server):
    s = aop_server()
    line = s.wait_log(lambda l: l.get("msg") == "listening")
    assert line["url"] == "http://127.0.0.1:%d" % s.port
    assert line["port"] == s.port


def test_second_server_on_a_taken_port_refuses_to_start(aop_server, run_cli):
    s = aop_server()
    r = run_cli(["serve"], env={"PORT": str(s.port), "DATABASE_URL": "sqlite://%s/other.db" % s.tmp},
                timeout=15)
    assert r.returncode == 1, r
    assert "cannot listen on 127.0.0.1:%d" % s.port in r.err
    assert s.get("/health").status_code == 200


@pytest.mark.sqlite_only
def test_files_aop_creates_are_private(aop_server):
    s = aop_server(LOG_FILE=None)
    assert s.get("/ready").status_code == 200
    for name in ("aop.db", "aop.db-wal"):
        mode = os.stat(s.tmp / name).st_mode & 0o777
        assert mode == 0o600, "%s has mode %o" % (name, mode)
