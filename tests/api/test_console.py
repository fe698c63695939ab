"""The console's routes over HTTP: GET / and GET /console/... answer its page
at any address, its files under /console/assets/<version>/ and nothing else;
the console's own CSP and cache headers; the API's headers untouched; the
size budget of the whole console (docs/console.md)."""
import gzip
import pathlib
import re
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import REPO, assert_error, assert_security_headers, shared_server

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; "
       "form-action 'self'; frame-ancestors 'none'")
# The files the Makefile builds in (CONSOLE_FILES), as the server names them.
CONSOLE = REPO / "console"
FILES = sorted(str(p.relative_to(CONSOLE)) for p in CONSOLE.rglob("*")
               if p.is_file() and p.suffix in (".html", ".js", ".mjs", ".css", ".svg")
               and p.parent in (CONSOLE, CONSOLE / "vendor"))
BUDGET_GZIP = 400 * 1024


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    yield from shared_server(tmp_path_factory, "console")


def version_of(srv):
    m = re.search(r'src="/console/assets/([0-9a-f]{16})/app\.js"', srv.get("/").text)
    assert m, "index.html names no versioned app.js"
    return m.group(1)


@pytest.mark.parametrize("path", ["/", "/console", "/console/", "/console/workflows",
                                  "/console/executions/01a24b57-8508-7291-aa38-be52641ad181",
                                  "/console/a/b/c?x=1"])
def test_every_console_address_answers_the_page(srv, path):
    r = srv.get(path)
    assert r.status_code == 200, r.text[:300]
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert r.headers["Content-Security-Policy"] == CSP
    assert r.headers["Cache-Control"] == "no-cache"
    assert r.headers["X-Frame-Options"] == "DENY" and r.headers["X-Content-Type-Options"] == "nosniff"
    assert '<div id="app">' in r.text
    # no inline code: every script and style is a file of the server's
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", r.text), r.text
    assert "<style" not in r.text and " style=" not in r.text
    for url in re.findall(r'(?:src|href)="([^"]+)"', r.text):
        assert url.startswith("/console/assets/"), url


def test_the_api_keeps_its_own_headers(srv):
    for path in ("/health", "/api/workflows", "/favicon.ico"):
        r = srv.get(path)
        assert_security_headers(r)
        assert r.headers["Cache-Control"] == "no-store"


# index.html is the page, served at the console's addresses, not as a file.
@pytest.mark.parametrize("name", [f for f in FILES if f != "index.html"])
def test_each_file_is_served_with_its_type_and_cached_under_its_version(srv, name):
    v = version_of(srv)
    r = srv.get("/console/assets/%s/%s" % (v, name))
    assert r.status_code == 200
    assert r.content == (CONSOLE / name).read_bytes()
    types = {".js": "text/javascript; charset=utf-8", ".mjs": "text/javascript; charset=utf-8",
             ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
    assert r.headers["Content-Type"] == types[pathlib.Path(name).suffix]
    assert r.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert r.headers["Content-Security-Policy"] == CSP
    etag = r.headers["ETag"]
    again = srv.get("/console/assets/%s/%s" % (v, name), headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["ETag"] == etag


def test_a_file_under_another_version_is_revalidated_not_kept(srv):
    r = srv.get("/console/assets/0000000000000000/app.js")
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-cache"


def test_the_page_revalidates_with_its_etag(srv):
    etag = srv.get("/console/workflows").headers["ETag"]
    r = srv.get("/console/executions", headers={"If-None-Match": etag})
    assert r.status_code == 304 and r.content == b""
    assert srv.get("/", headers={"If-None-Match": '"other"'}).status_code == 200


@pytest.mark.parametrize("path", [
    "/console/assets/", "/console/assets/x", "/console/assets/x/nope.js",
    "/console/assets/x/index.html", "/console/assets/x/vendor/MANIFEST",
    "/console/assets/x/vendor/licenses/preact.txt", "/console/assets/x/../app.js",
    "/console/assets/x/%2e%2e/%2e%2e/Makefile", "/console/assets/x//etc/passwd",
    "/console/" + "a" * 600,
])
def test_only_built_in_files_are_served(srv, path):
    r = srv.get(path)
    assert_error(r, 404, "NOT_FOUND")


def test_a_console_address_at_the_bound_loads_and_past_it_does_not(srv):
    at = "/console/" + "a" * (512 - len("/console/"))
    assert srv.get(at).status_code == 200
    assert_error(srv.get(at + "a"), 404, "NOT_FOUND")


def test_other_methods_answer_405(srv):
    r = srv.request("POST", "/console/workflows")
    assert_error(r, 405, "METHOD_NOT_ALLOWED")
    assert r.headers["Allow"] == "GET, HEAD"


def test_the_whole_console_fits_its_gzip_budget(srv):
    """Every file the console can load, as the server sends it gzipped."""
    v = version_of(srv)
    total = 0
    for name in FILES:
        path = "/" if name == "index.html" else "/console/assets/%s/%s" % (v, name)
        r = srv.get(path, headers={"Accept-Encoding": "gzip"}, stream=True)
        raw = r.raw.read(decode_content=False)
        if len(raw) > 1024:
            assert r.headers.get("Content-Encoding") == "gzip", name
            assert gzip.decompress(raw) == (CONSOLE / name).read_bytes()
        total += len(raw)
    print("console: %d files, %d bytes gzipped" % (len(FILES), total))
    assert total < BUDGET_GZIP, total


def test_first_requests_at_once_all_get_the_same_page(aop_server):
    """The page is made once, on first use, whatever number of threads ask
    for it together (HTTP_THREADS=4)."""
    srv = aop_server(HTTP_THREADS="4")
    with ThreadPoolExecutor(8) as pool:
        pages = list(pool.map(lambda i: srv.get("/console/p%d" % i), range(8)))
    assert {p.status_code for p in pages} == {200}
    assert len({p.text for p in pages}) == 1 and len({p.headers["ETag"] for p in pages}) == 1
    assert srv.get(re.search(r'src="([^"]+app\.js)"', pages[0].text).group(1)).status_code == 200
