"""Every response the API tests receive from an AOP server is held to
docs/openapi.json, the document the binary serves at /openapi.json.

conftest.py installs check() as a response hook on every requests session and
registers the ports of the servers it starts; responses from anything else
(the fakes, other services) are not looked at. A response is checked against
the operation whose path template matches its URL (the template with more
literal segments first, as the server's router does) and its method:

- its status must be one the operation lists;
- a JSON body must validate against that status's application/json schema
  (python3-jsonschema, JSON Schema 2020-12 with the document's $refs);
- any other content type must be one the status lists.

A path the document does not list may only answer the errors its info
section promises for any path (400, 404, 405, 413, 414, 415, 431), in
the Error shape.
HEAD and OPTIONS (CORS preflight) answers have no body to check.

Problems are collected, not raised: a raise inside a hook would be swallowed
by a test's own `except requests.RequestException`, or die with a thread.
The autouse fixture in conftest.py fails the test that got them.
"""
import json
import pathlib
import re
import threading
import urllib.parse

import jsonschema

REPO = pathlib.Path(__file__).resolve().parents[2]
DOC_PATH = REPO / "docs" / "openapi.json"
DOC = json.loads(DOC_PATH.read_text("utf-8"))

# Answers any path may give, described once in the document's info section.
ANY_PATH_STATUSES = {400, 404, 405, 413, 414, 415, 431}
METHODS = ("get", "put", "post", "delete", "patch")

_resolver = jsonschema.RefResolver.from_schema(DOC)
_validators = {}
_lock = threading.Lock()
_problems = []
_ports = set()
_checked = [0]


def _template_regex(template):
    """A final {path} spans any number of segments, none too, as the router's
    final "*" does (the console's /console/{path}); other parameters are one
    segment."""
    parts = []
    segs = template.strip("/").split("/")
    for i, seg in enumerate(segs):
        if seg == "{path}" and i == len(segs) - 1:
            parts.append(".*")
        else:
            parts.append("[^/]+" if seg.startswith("{") else re.escape(seg))
    return re.compile("^/" + "/".join(parts) + "$" if parts != [""] else "^/$")


def _literal_count(template):
    return sum(1 for seg in template.split("/") if seg and not seg.startswith("{"))


# (regex, template), the most literal first: /api/workflows/analytics/summary
# before /api/workflows/{id}/versions.
_TEMPLATES = sorted(((_template_regex(t), t) for t in DOC["paths"]),
                    key=lambda rt: -_literal_count(rt[1]))


def match_path(path):
    """The document's path template for a request path, or None."""
    for rx, template in _TEMPLATES:
        if rx.match(path):
            return template
    return None


def _deref(node):
    while isinstance(node, dict) and "$ref" in node:
        node = _resolver.resolve(node["$ref"])[1]
    return node


def _validator(key, schema):
    with _lock:
        v = _validators.get(key)
        if v is None:
            v = jsonschema.Draft202012Validator(schema, resolver=_resolver)
            _validators[key] = v
        return v


def problems_of(method, path, status, content_type, body):
    """What is wrong with a response, as a list of sentences (empty: it
    agrees with the document). body is the raw bytes, or None when unread."""
    method = method.lower()
    ctype = (content_type or "").split(";")[0].strip().lower()
    where = "%s %s -> %d" % (method.upper(), path, status)
    template = match_path(path)
    op = DOC["paths"][template].get(method) if template else None
    if op is None:
        if status not in ANY_PATH_STATUSES:
            return ["%s: %s, and %d is not an answer any path may give"
                    % (where, "no operation for %s %s" % (method.upper(), template)
                       if template else "no path of the document matches", status)]
        spec = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        key = ("*", status)
    else:
        spec = _deref(op["responses"].get(str(status)) or op["responses"].get("default"))
        if spec is None:
            return ["%s: the document lists no %d for %s %s (it lists %s)"
                    % (where, status, method.upper(), template, ", ".join(op["responses"]))]
        key = (template, method, status)
    content = spec.get("content") or {}
    if not ctype:
        if body:
            return ["%s: a body without a Content-Type" % where]
        return []
    if ctype not in content and "*/*" not in content:
        return ["%s: Content-Type %s, the document lists %s" % (where, ctype, sorted(content) or "no body")]
    if ctype != "application/json" or body is None:
        return []
    try:
        value = json.loads(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        return ["%s: the body is not JSON: %s" % (where, e)]
    schema = content[ctype].get("schema")
    if schema is None:
        return []
    errors = sorted(_validator(key, schema).iter_errors(value), key=lambda e: list(e.path))
    return ["%s: at %s: %s" % (where, "/".join(str(p) for p in e.absolute_path) or "(body)",
                               e.message[:300]) for e in errors[:5]]


def register_port(port):
    with _lock:
        _ports.add(int(port))


def unregister_port(port):
    with _lock:
        _ports.discard(int(port))


def check(resp, *args, **kwargs):
    """A requests response hook: checks responses from registered servers."""
    try:
        req = resp.request
        u = urllib.parse.urlsplit(req.url)
        with _lock:
            ours = u.port in _ports and u.hostname in ("127.0.0.1", "localhost")
        if not ours or req.method in ("HEAD", "OPTIONS"):
            return resp
        ctype = resp.headers.get("Content-Type", "")
        body = None
        if ctype.split(";")[0].strip().lower() == "application/json":
            body = resp.content
        found = problems_of(req.method, u.path, resp.status_code, ctype, body)
        with _lock:
            _checked[0] += 1
    except Exception as e:  # a broken hook must show, not hide a response
        found = ["the OpenAPI check itself failed: %r" % e]
    if found:
        with _lock:
            _problems.extend(found)
    return resp


def checked_count():
    """How many responses have been checked so far."""
    with _lock:
        return _checked[0]


def take_problems():
    with _lock:
        out = list(_problems)
        del _problems[:]
        return out
