"""GET /metrics: format, counters, histograms, process metrics, METRICS_TOKEN."""
import re
import time

import pytest

from conftest import assert_error, shared_server

CT = "text/plain; version=0.0.4; charset=utf-8"
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+-?\d+)?$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse(text):
    """-> list of (name, labels dict, float value); asserts each line is valid exposition text."""
    samples = []
    for line in text.splitlines():
        if not line.strip():
            continue
        if line.startswith("#"):
            if line.startswith("# HELP") or line.startswith("# TYPE"):
                assert re.match(r"^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* ", line), "bad comment line %r" % line
            continue
        m = SAMPLE.match(line)
        assert m, "not a Prometheus sample line: %r" % line
        labels = {}
        if m.group(3):
            consumed = LABEL.sub("", m.group(3)).replace(",", "").strip()
            assert consumed == "", "bad labels in %r" % line
            labels = dict(LABEL.findall(m.group(3)))
        v = m.group(4)
        value = {"+Inf": float("inf"), "-Inf": float("-inf"), "NaN": float("nan")}.get(v)
        if value is None:
            value = float(v)
        samples.append((m.group(1), labels, value))
    return samples


def value(samples, name, **labels):
    for n, l, v in samples:
        if n == name and all(l.get(k) == val for k, val in labels.items()):
            return v
    return None


def health_count_from_text(text):
    m = re.search(r'^aop_http_requests_total\{method="GET",route="/health",status="200"\} (\S+)$', text, re.M)
    return float(m.group(1)) if m else 0.0


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    for s in shared_server(tmp_path_factory, "metrics"):
        s.t_started = time.time()
        yield s


def metrics(srv, **kw):
    r = srv.get("/metrics", headers={"Accept-Encoding": "identity"}, **kw)
    assert r.status_code == 200, r.text[:300]
    return r


def test_content_type_and_format(srv):
    r = metrics(srv)
    assert r.headers.get("Content-Type") == CT
    samples = parse(r.text)
    assert len(samples) > 10


def test_health_counter_grows_exactly(srv):
    before = health_count_from_text(metrics(srv).text)
    for _ in range(7):
        assert srv.get("/health").status_code == 200
    srv.head("/health")  # a HEAD is not a GET
    after_text = metrics(srv).text
    after = health_count_from_text(after_text)
    assert re.search(r'^aop_http_requests_total\{method="GET",route="/health",status="200"\} \d+$',
                     after_text, re.M), "counter line with exact labels missing"
    assert after - before == 7, (before, after)


def test_unmatched_route_label(srv):
    for p in ("/api/nope", "/x/y/z", "/api/nope?q=1"):
        assert srv.get(p).status_code == 404
    text = metrics(srv).text
    samples = parse(text)
    n = value(samples, "aop_http_requests_total", method="GET", route="unmatched", status="404")
    assert n is not None and n >= 3, n
    routes = {l.get("route") for name, l, _ in samples if name == "aop_http_requests_total"}
    # raw paths never become label values
    assert "/api/nope" not in routes and "/x/y/z" not in routes, routes


def test_wrong_method_and_preflight_count_under_the_path_pattern(srv):
    def n(method, route, status):
        return value(parse(metrics(srv).text), "aop_http_requests_total",
                     method=method, route=route, status=status) or 0
    b405, b204, bunm = n("DELETE", "/metrics", "405"), n("OPTIONS", "/health", "204"), \
        n("OPTIONS", "unmatched", "204")
    assert srv.request("DELETE", "/metrics").status_code == 405
    assert srv.request("OPTIONS", "/health").status_code == 204
    assert srv.request("OPTIONS", "/api/nope").status_code == 204
    assert n("DELETE", "/metrics", "405") == b405 + 1
    assert n("OPTIONS", "/health", "204") == b204 + 1
    assert n("OPTIONS", "unmatched", "204") == bunm + 1


def test_duration_histogram(srv):
    srv.get("/health")
    samples = parse(metrics(srv).text)
    buckets = [(l["le"], v) for n, l, v in samples
               if n == "aop_http_request_duration_seconds_bucket" and l.get("route") == "/health"]
    assert buckets, "no duration buckets for /health"
    les = [float("inf") if le == "+Inf" else float(le) for le, _ in buckets]
    assert les == sorted(les), les
    counts = [v for _, v in buckets]
    assert counts == sorted(counts), "buckets must be cumulative: %r" % buckets
    inf = value(samples, "aop_http_request_duration_seconds_bucket", route="/health", le="+Inf")
    cnt = value(samples, "aop_http_request_duration_seconds_count", route="/health")
    assert inf is not None and cnt is not None
    assert inf == cnt and cnt >= 1
    s = value(samples, "aop_http_request_duration_seconds_sum", route="/health")
    assert s is None or s >= 0


def test_db_ping_metric_after_ready(srv):
    before = value(parse(metrics(srv).text), "aop_db_operation_duration_seconds_count", op="ping") or 0
    assert srv.get("/ready").status_code == 200
    after = value(parse(metrics(srv).text), "aop_db_operation_duration_seconds_count", op="ping")
    assert after is not None and after >= before + 1, (before, after)


def test_process_metrics(srv):
    samples = parse(metrics(srv).text)
    rss = value(samples, "process_resident_memory_bytes")
    cpu = value(samples, "process_cpu_seconds_total")
    fds = value(samples, "process_open_fds")
    start = value(samples, "process_start_time_seconds")
    assert rss is not None and rss > 1e6, rss
    assert cpu is not None and cpu >= 0, cpu
    assert fds is not None and fds >= 3, fds
    assert start is not None and srv.t_started - 120 <= start <= time.time() + 1, (start, srv.t_started)


def test_build_info(srv):
    text = metrics(srv).text
    assert re.search(r'^aop_build_info\{version="0\.1\.0",commit="[^"]+"\} 1$', text, re.M), \
        [l for l in text.splitlines() if "build_info" in l]


def test_metrics_open_without_token(srv):
    r = srv.get("/metrics", headers={"Authorization": "Bearer whatever"})
    assert r.status_code == 200


# ---------------------------------------------------------------- METRICS_TOKEN

@pytest.fixture(scope="module")
def tok_srv(tmp_path_factory):
    yield from shared_server(tmp_path_factory, "metrics-token", METRICS_TOKEN="s3cret-token")


@pytest.mark.parametrize("auth", [None, "Bearer wrong", "Bearer s3cret-token-x", "Bearer s3cret-toke",
                                  "Basic czNjcmV0LXRva2Vu", "s3cret-token", "Bearer "],
                         ids=["none", "wrong", "longer", "prefix", "basic", "no-scheme", "empty"])
def test_metrics_token_refused(tok_srv, auth):
    headers = {"Authorization": auth} if auth else {}
    r = tok_srv.get("/metrics", headers=headers)
    assert_error(r, 401, "UNAUTHORIZED")
    assert "aop_build_info" not in r.text


def test_metrics_token_accepted(tok_srv):
    r = tok_srv.get("/metrics", headers={"Authorization": "Bearer s3cret-token"})
    assert r.status_code == 200
    assert r.headers.get("Content-Type") == CT
    assert "aop_build_info" in r.text


@pytest.mark.parametrize("path", ["/health", "/ready"])
def test_health_ready_never_need_token(tok_srv, path):
    assert tok_srv.get(path).status_code == 200
