"""Fake upstream servers for the engine suites, and the helpers those suites share.

Real HTTP servers on 127.0.0.1 (free ports), each on its own thread
(ThreadingHTTPServer, daemon handler threads). Every request they receive is
recorded (method, path, query, lowercased headers, body, arrival time) under a
lock, so a test can assert on what the AOP server actually sent.

  FakeHttp      /json /text /status/<code> /delay/<ms> /big/<bytes> /flaky/<key>/<n>
                /count/<key> /badjson /redirect
  FakeLLM       an OpenAI-compatible POST /v1/chat/completions with failure modes
                chosen by model name (fail-500, fail-429, fail-400, malformed,
                no-choices, no-usage, slow, flaky-<k>)
  FakeAgentLLM  OpenAI-compatible tool calling (POST /v1/chat/completions), scripted turn
                by turn for agent nodes
  FakeAnthropic the Anthropic Messages API (POST /v1/messages), checking every field
  write_pricing a pricing file where test-model costs 1 USD per prompt token and
                2 USD per completion token (cheap-model 0.5 and 0.5)

Fixtures (module scope; import them into a test module to use them):
  fake_http, fake_llm, pricing_file

engine_env(...) builds the server environment of the engine suites:
HTTP_NODE_ALLOW_PRIVATE=true (the fakes are on loopback), LLM_BASE_URL,
LLM_API_KEY, LLM_PRICING_FILE, plus the auth suites' JWT secrets and admin.

The second half of the file holds the helpers of the execution suites: node
builders, create / execute / wait, and the shape check of an execution.
"""
import json
import pathlib
import select
import socket
import threading
import time
import urllib.parse
import uuid
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from authutil import UUID7, auth_env, bearer, parse_ts

LLM_KEY = "sk-test-0123456789abcdef"

PRICING = {"models": {
    "test-model": {"inputPerMillion": 1000000, "outputPerMillion": 2000000},
    "cheap-model": {"inputPerMillion": 500000, "outputPerMillion": 500000},
}}


def cost_of(model, prompt_tokens, completion_tokens):
    """The cost the server should compute from PRICING (0 for a model without a price)."""
    p = PRICING["models"].get(model)
    if not p:
        return 0.0
    return prompt_tokens * p["inputPerMillion"] / 1e6 + completion_tokens * p["outputPerMillion"] / 1e6


# ============================================================== recording servers

class Recorded:
    """One request a fake received."""

    def __init__(self, method, target, headers, body):
        parts = urllib.parse.urlsplit(target)
        self.method = method
        self.target = target
        self.path = parts.path
        self.query = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
        self.raw_query = parts.query
        self.headers = {}
        for k, v in headers.items():
            k = k.lower()
            self.headers[k] = v if k not in self.headers else self.headers[k] + ", " + v
        self.body = body
        self.t = time.monotonic()
        try:
            self.json = json.loads(body.decode("utf-8")) if body else None
        except ValueError:
            self.json = None

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def __repr__(self):
        return "Recorded(%s %s, %d bytes)" % (self.method, self.target, len(self.body))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake = None  # set on the subclass made for each fake

    def log_message(self, fmt, *args):  # quiet
        pass

    def _read_body(self):
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            out = b""
            while True:
                line = self.rfile.readline()
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    # trailers up to the empty line
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def _handle(self):
        try:
            body = self._read_body()
        except (OSError, ValueError):
            self.close_connection = True
            return
        req = Recorded(self.command, self.path, self.headers, body)
        self.fake._record(req)
        try:
            self.fake._respond(self, req)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _handle

    def send(self, status, body=b"", ctype="application/json", headers=None):
        if isinstance(body, str):
            body = body.encode("utf-8")
        elif not isinstance(body, (bytes, bytearray)):
            body = json.dumps(body).encode("utf-8")
        self.send_response(status)
        if ctype:
            self.send_header("Content-Type", ctype)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()


class _FakeServer:
    name = "fake"

    def __init__(self):
        self._lock = threading.Lock()
        self._requests = []
        self.httpd = None
        self.thread = None
        self.port = None

    def start(self):
        handler = type("%sHandler" % type(self).__name__, (_Handler,), {"fake": self})
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler, bind_and_activate=False)
        httpd.daemon_threads = True
        httpd.block_on_close = False
        httpd.request_queue_size = 128
        httpd.allow_reuse_address = True
        httpd.server_bind()
        httpd.server_activate()
        self.httpd = httpd
        self.port = httpd.server_address[1]
        self.thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       name="%s-%d" % (self.name, self.port), daemon=True)
        self.thread.start()
        return self

    def stop(self):
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.thread.join(timeout=5)
            self.httpd = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def _record(self, req):
        with self._lock:
            self._requests.append(req)

    def requests(self, path=None, prefix=None, method=None):
        """A copy of the requests received, optionally those with this exact path or path prefix."""
        with self._lock:
            out = list(self._requests)
        if path is not None:
            out = [r for r in out if r.path == path]
        if prefix is not None:
            out = [r for r in out if r.path.startswith(prefix)]
        if method is not None:
            out = [r for r in out if r.method == method]
        return out

    def clear_requests(self):
        with self._lock:
            self._requests.clear()

    def _respond(self, h, req):
        raise NotImplementedError


# ============================================================== FakeHttp

class FakeHttp(_FakeServer):
    """A small upstream API. Routes (any method unless said otherwise):

    /json              200 {"ok": true, "echo": <request body parsed as JSON, else its text, null
                           when empty>, "method", "path", "query": {name: value}, "headers":
                           {lowercased request headers}}
    /text              200 text/plain "hello"
    /status/<code>     that status, JSON {"status": code}
    /delay/<ms>        sleeps ms, then 200 JSON {"delayedMs": ms}
    /big/<bytes>       200 text/plain, that many bytes of "a"
    /flaky/<key>/<n>   the first n calls for key answer 503 {"calls": k}, then 200 {"calls": k}
    /count/<key>       200 {"key": key, "count": k} (k: hits so far, this one included); hits(key)
    /gate/<key>/<n>    holds each call until n calls for key have arrived, then 200 {"arrived": n};
                       a call still alone after GATE_WAIT seconds answers 504 {"arrived": k}
    /badjson           200 application/json with a body that is not JSON
    /redirect          302 to /json
    /badheaders        200 {"ok": true} with header bytes that are not UTF-8: x-bad "a\\xffb",
                       x-latin "caf\\xe9" (Latin-1), a name "x-\\xfe", and x-good "fine"
    anything else      404 JSON
    """
    name = "fake-http"
    GATE_WAIT = 10

    def __init__(self):
        super().__init__()
        self._counts = {}
        self._flaky = {}
        self._gates = {}
        self._gate_cv = threading.Condition(self._lock)

    def hits(self, key):
        with self._lock:
            return self._counts.get(key, 0)

    def flaky_calls(self, key):
        with self._lock:
            return self._flaky.get(key, 0)

    def _bump(self, table, key):
        with self._lock:
            table[key] = table.get(key, 0) + 1
            return table[key]

    def _respond(self, h, req):
        parts = [p for p in req.path.split("/") if p]
        head = parts[0] if parts else ""
        if req.path == "/json":
            if req.body:
                echo = req.json if req.json is not None or req.text.strip() == "null" else req.text
            else:
                echo = None
            q = {k: (v[0] if len(v) == 1 else v) for k, v in req.query.items()}
            return h.send(200, {"ok": True, "echo": echo, "method": req.method, "path": req.path,
                                "query": q, "headers": dict(req.headers)})
        if req.path == "/text":
            return h.send(200, "hello", "text/plain; charset=utf-8")
        if head == "status" and len(parts) == 2 and parts[1].isdigit():
            code = int(parts[1])
            return h.send(code, {"status": code})
        if head == "delay" and len(parts) == 2 and parts[1].isdigit():
            ms = int(parts[1])
            time.sleep(ms / 1000.0)
            return h.send(200, {"delayedMs": ms})
        if head == "big" and len(parts) == 2 and parts[1].isdigit():
            n = int(parts[1])
            h.send_response(200)
            h.send_header("Content-Type", "text/plain")
            h.send_header("Content-Length", str(n))
            h.end_headers()
            if h.command != "HEAD":
                chunk = b"a" * 65536
                left = n
                while left > 0:
                    piece = chunk[:min(left, len(chunk))]
                    h.wfile.write(piece)
                    left -= len(piece)
            h.wfile.flush()
            return None
        if head == "flaky" and len(parts) == 3 and parts[2].isdigit():
            k = self._bump(self._flaky, parts[1])
            if k <= int(parts[2]):
                return h.send(503, {"calls": k})
            return h.send(200, {"calls": k})
        if head == "gate" and len(parts) == 3 and parts[2].isdigit():
            need = int(parts[2])
            with self._gate_cv:
                self._gates[parts[1]] = self._gates.get(parts[1], 0) + 1
                self._gate_cv.notify_all()
                met = self._gate_cv.wait_for(lambda: self._gates[parts[1]] >= need, self.GATE_WAIT)
                k = self._gates[parts[1]]
            return h.send(200 if met else 504, {"arrived": k})
        if head == "count" and len(parts) == 2:
            k = self._bump(self._counts, parts[1])
            return h.send(200, {"key": parts[1], "count": k})
        if req.path == "/badjson":
            return h.send(200, b'{"ok": tru', "application/json")
        if req.path == "/redirect":
            return h.send(302, {"redirect": "/json"}, headers={"Location": "/json"})
        if req.path == "/badheaders":
            # send_header writes Latin-1: each of these characters is that one byte
            return h.send(200, {"ok": True}, headers={"X-Bad": "a\xffb", "X-Latin": "caf\xe9",
                                                      "X-\xfe": "name", "X-Good": "fine"})
        return h.send(404, {"error": "no such route", "path": req.path})


# ============================================================== FakeLLM

class FakeLLM(_FakeServer):
    """An OpenAI-compatible chat completions endpoint at POST /v1/chat/completions.

    Checks: Authorization "Bearer <expected_key>" (else 401 JSON error),
    a JSON Content-Type and a body with a string `model` and a non-empty list
    `messages` of {role, content} strings (else 400).

    Answers {"id", "object": "chat.completion", "created", "model": <request model>,
    "choices": [{"index": 0, "message": {"role": "assistant", "content": C},
    "finish_reason": F}], "usage": {prompt_tokens, completion_tokens, total_tokens}}
    where C is the scripted content or "echo: " + the last user message, F "stop",
    and the token counts are scripted (default 10 and 5).

    Failure modes by model name: fail-500, fail-429, fail-400 (that status with a
    JSON error), malformed (200 with a body that is not JSON), no-choices (200 JSON
    without choices), no-usage (200 without usage), slow (sleeps slow_seconds, then
    answers), flaky-<k> (the first k calls answer 503, then normally). A script's
    delay (seconds) makes any model as slow; a call whose client hung up while it
    slept is not answered and is listed by aborted().

    Streaming: a request with "stream": true must carry "stream_options":
    {"include_usage": true} (else 400); it is answered as an event stream
    (chunked): a role chunk, the content in the script's chunks (default: pieces of
    3 characters) chunk_delay seconds apart, a finish chunk, a usage chunk (not for
    no-usage), then "data: [DONE]". The joined chunks are the content.

    Providers that echo what they were sent (the request headers hold the API key):
    echo-auth-401 (401, error.message "Incorrect API key provided: <Authorization>"),
    echo-auth-long (the same after 280 bytes of text, so a 300-byte cut of the message
    falls inside the key), echo-headers (200; content is the request headers as JSON
    text, model "m-<Authorization>").
    """
    name = "fake-llm"
    PATH = "/v1/chat/completions"

    def __init__(self, key=LLM_KEY):
        super().__init__()
        self.default_key = key
        self.reset()

    def reset(self):
        """Back to the defaults: scripts, counters and recorded requests cleared."""
        with self._lock:
            self.expected_key = self.default_key
            self.scripts = {}
            self.prompt_tokens = 10
            self.completion_tokens = 5
            self.slow_seconds = 2.0
            self._calls = {}
            self._aborted = []
            self._requests.clear()

    @property
    def base_url(self):
        return self.url + "/v1"

    def script(self, model, content=None, prompt_tokens=None, completion_tokens=None, finish_reason=None,
               delay=None, chunks=None, chunk_delay=None, gate=None):
        """What answers to model look like (unset parts keep the defaults); delay: seconds
        to wait before answering; chunks, chunk_delay: how a streamed answer comes; gate:
        a threading.Event a streamed answer waits for (30 s at most) before its first
        chunk, so that a test can watch the stream before any delta is sent (deltas are
        live only)."""
        with self._lock:
            self.scripts[model] = {"content": content, "prompt_tokens": prompt_tokens,
                                   "completion_tokens": completion_tokens, "finish_reason": finish_reason,
                                   "delay": delay, "chunks": chunks, "chunk_delay": chunk_delay,
                                   "gate": gate}

    def aborted(self, model=None):
        """The requests (optionally for one model) whose client closed the connection
        while the fake waited to answer."""
        with self._lock:
            out = list(self._aborted)
        return [r for r in out if model is None or (isinstance(r.json, dict) and r.json.get("model") == model)]

    @staticmethod
    def _client_gone(h):
        try:
            ready, _, _ = select.select([h.connection], [], [], 0)
            return bool(ready) and h.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def calls(self, model=None):
        """The chat completion requests received (optionally for one model), in order."""
        out = self.requests(path=self.PATH)
        if model is not None:
            out = [r for r in out if isinstance(r.json, dict) and r.json.get("model") == model]
        return out

    @staticmethod
    def _error(h, status, message, etype="invalid_request_error"):
        return h.send(status, {"error": {"message": message, "type": etype, "code": None}})

    def _stream(self, h, model, script, content, pt, ct):
        chunks = script.get("chunks")
        if chunks is None:
            chunks = [content[i:i + 3] for i in range(0, len(content), 3)]
        cid = "chatcmpl-%s" % uuid.uuid4().hex[:24]

        def event(obj):
            data = b"data: " + (obj if isinstance(obj, bytes) else json.dumps(obj).encode()) + b"\n\n"
            h.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            h.wfile.flush()

        def chunk(delta, finish=None):
            return {"id": cid, "object": "chat.completion.chunk", "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream")
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        if script.get("gate"):
            script["gate"].wait(30)
        event(chunk({"role": "assistant"}))
        for piece in chunks:
            if script.get("chunk_delay"):
                time.sleep(script["chunk_delay"])
            event(chunk({"content": piece}))
        event(chunk({}, script.get("finish_reason") or "stop"))
        if model != "no-usage":
            event({"id": cid, "object": "chat.completion.chunk", "model": model, "choices": [],
                   "usage": {"prompt_tokens": pt, "completion_tokens": ct, "total_tokens": pt + ct}})
        event(b"[DONE]")
        h.wfile.write(b"0\r\n\r\n")
        h.wfile.flush()

    def _respond(self, h, req):
        if req.path != self.PATH or req.method != "POST":
            return h.send(404, {"error": {"message": "not found", "type": "invalid_request_error"}})
        with self._lock:
            key = self.expected_key
        if req.headers.get("authorization") != "Bearer %s" % key:
            return self._error(h, 401, "Incorrect API key provided", "authentication_error")
        ctype = req.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/json":
            return self._error(h, 400, "Content-Type must be application/json")
        body = req.json
        if not isinstance(body, dict):
            return self._error(h, 400, "body must be a JSON object")
        model = body.get("model")
        msgs = body.get("messages")
        if not isinstance(model, str) or not model:
            return self._error(h, 400, "model must be a non-empty string")
        if not isinstance(msgs, list) or not msgs:
            return self._error(h, 400, "messages must be a non-empty list")
        for m in msgs:
            if (not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant")
                    or not isinstance(m.get("content"), str)):
                return self._error(h, 400, "each message needs a role and a string content")
        if "temperature" in body and (not isinstance(body["temperature"], (int, float))
                                      or isinstance(body["temperature"], bool)):
            return self._error(h, 400, "temperature must be a number")
        if "max_tokens" in body and (not isinstance(body["max_tokens"], int) or isinstance(body["max_tokens"], bool)
                                     or body["max_tokens"] < 1):
            return self._error(h, 400, "max_tokens must be a positive integer")

        with self._lock:
            self._calls[model] = self._calls.get(model, 0) + 1
            ncall = self._calls[model]
            script = dict(self.scripts.get(model) or {})
            pt = script.get("prompt_tokens")
            ct = script.get("completion_tokens")
            pt = self.prompt_tokens if pt is None else pt
            ct = self.completion_tokens if ct is None else ct
            slow = self.slow_seconds

        if model.startswith("fail-") and model[5:].isdigit():
            return self._error(h, int(model[5:]), "scripted failure %s" % model[5:], "server_error")
        if model.startswith("flaky-") and model[6:].isdigit() and ncall <= int(model[6:]):
            return self._error(h, 503, "scripted overload, call %d" % ncall, "server_error")
        auth = req.headers.get("authorization", "")
        if model == "echo-auth-401":
            return self._error(h, 401, "Incorrect API key provided: %s" % auth, "authentication_error")
        if model == "echo-auth-long":
            return self._error(h, 401, "x" * 280 + " " + auth, "authentication_error")
        if model == "echo-headers":
            return h.send(200, {"id": "chatcmpl-echo", "object": "chat.completion", "model": "m-" + auth,
                                "choices": [{"index": 0, "finish_reason": "stop",
                                             "message": {"role": "assistant", "content": json.dumps(req.headers)}}],
                                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})
        if model == "malformed":
            return h.send(200, b"this is not json {", "application/json")
        if model == "no-choices":
            return h.send(200, {"id": "chatcmpl-x", "object": "chat.completion", "model": model})
        if model == "slow":
            time.sleep(slow)
        if script.get("delay"):
            time.sleep(script["delay"])
            if self._client_gone(h):
                with self._lock:
                    self._aborted.append(req)
                h.close_connection = True
                return None

        content = script.get("content")
        if content is None:
            users = [m["content"] for m in msgs if m.get("role") == "user"]
            content = "echo: " + (users[-1] if users else msgs[-1]["content"])
        if body.get("stream") is True:
            if body.get("stream_options") != {"include_usage": True}:
                return self._error(h, 400, "stream_options.include_usage must be true")
            return self._stream(h, model, script, content, pt, ct)
        resp = {
            "id": "chatcmpl-%s" % uuid.uuid4().hex[:24],
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                         "finish_reason": script.get("finish_reason") or "stop"}],
        }
        if model != "no-usage":
            resp["usage"] = {"prompt_tokens": pt, "completion_tokens": ct, "total_tokens": pt + ct}
        return h.send(200, resp)


# ============================================================== FakeAgentLLM

class FakeAgentLLM(_FakeServer):
    """OpenAI-compatible chat completions with tool calling at POST /v1/chat/completions,
    for agent nodes. A model's script is a list of turns; a request is answered by the turn
    whose index is the number of assistant messages it carries (so each conversation
    follows its own script, however many run at once, and a repeated request gets the same
    turn). A turn past the script answers "done".

    Turns: {"content": text} (an answer, finish_reason "stop"); {"tools": [(name,
    arguments)], "content"?: text} (tool calls with ids "call_<turn>_<k>", finish_reason
    "tool_calls"; arguments a dict sent as its JSON text, or a str sent as it is);
    "fail": status and "times": n (the first n requests at this turn answer that status,
    then the turn goes on as written); "delay": seconds before answering. Usage: the
    script's prompt_tokens and completion_tokens per answer (default 10 and 5). A request
    with "stream": true (and stream_options.include_usage) is answered as chunks: the
    content in pieces of 3 characters, each tool call's id and name, then its arguments in
    two fragments, the finish reason, the usage, "[DONE]".

    Checks (else 400): a bearer key, model, messages of roles system, user, assistant and
    tool; an assistant's tool_calls of type function with string arguments, each answered
    by a tool message (tool_call_id, string content) right after it, in any order; tools of
    type function with a name, a description and object parameters.
    """
    name = "fake-agent-llm"
    PATH = "/v1/chat/completions"

    def __init__(self, key=LLM_KEY):
        super().__init__()
        self.default_key = key
        self.reset()

    def reset(self):
        with self._lock:
            self.scripts = {}
            self._failed = {}
            self._requests.clear()

    @property
    def base_url(self):
        return self.url + "/v1"

    def script(self, model, turns, prompt_tokens=10, completion_tokens=5):
        with self._lock:
            self.scripts[model] = {"turns": list(turns), "pt": prompt_tokens, "ct": completion_tokens}

    def calls(self, model=None):
        out = self.requests(path=self.PATH)
        return [r for r in out if model is None or (isinstance(r.json, dict) and r.json.get("model") == model)]

    @staticmethod
    def _error(h, status, message):
        return h.send(status, {"error": {"message": message, "type": "invalid_request_error"}})

    @staticmethod
    def _problem(body):
        msgs = body.get("messages")
        if not isinstance(body.get("model"), str) or not isinstance(msgs, list) or not msgs:
            return "model and messages are required"
        open_ids = None
        for m in msgs:
            role = m.get("role") if isinstance(m, dict) else None
            if role not in ("system", "user", "assistant", "tool"):
                return "bad role %r" % (role,)
            if role == "tool":
                if open_ids is None or m.get("tool_call_id") not in open_ids:
                    return "a tool message answers no open tool call: %r" % (m,)
                if not isinstance(m.get("content"), str):
                    return "a tool message needs a string content"
                open_ids.discard(m["tool_call_id"])
                continue
            if open_ids:
                return "tool calls %r were not answered" % (sorted(open_ids),)
            open_ids = None
            if role == "assistant" and m.get("tool_calls"):
                if not (m.get("content") is None or isinstance(m.get("content"), str)):
                    return "an assistant's content must be a string or null"
                open_ids = set()
                for tc in m["tool_calls"]:
                    fn = tc.get("function") or {}
                    if tc.get("type") != "function" or not isinstance(fn.get("arguments"), str) \
                            or not isinstance(fn.get("name"), str) or not isinstance(tc.get("id"), str):
                        return "bad tool call %r" % (tc,)
                    open_ids.add(tc["id"])
            elif not isinstance(m.get("content"), str):
                return "a %s message needs a string content" % role
        if open_ids:
            return "the last tool calls were not answered"
        for t in body.get("tools") or []:
            fn = t.get("function") or {}
            if t.get("type") != "function" or not isinstance(fn.get("name"), str) \
                    or not isinstance(fn.get("description"), str) or (fn.get("parameters") or {}).get("type") != "object":
                return "bad tool %r" % (t,)
        return None

    @staticmethod
    def _stream(h, model, msg, finish, pt, ct):
        def event(obj):
            data = b"data: " + (obj if isinstance(obj, bytes) else json.dumps(obj).encode()) + b"\n\n"
            h.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            h.wfile.flush()

        def chunk(delta, fin=None, usage=None):
            c = {"id": "chatcmpl-s", "object": "chat.completion.chunk", "model": model,
                 "choices": [{"index": 0, "delta": delta, "finish_reason": fin}] if usage is None else []}
            if usage:
                c["usage"] = usage
            return c

        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream")
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        event(chunk({"role": "assistant"}))
        text = msg.get("content") or ""
        for i in range(0, len(text), 3):
            event(chunk({"content": text[i:i + 3]}))
        for k, tc in enumerate(msg.get("tool_calls") or []):
            args = tc["function"]["arguments"]
            event(chunk({"tool_calls": [{"index": k, "id": tc["id"], "type": "function",
                                         "function": {"name": tc["function"]["name"], "arguments": ""}}]}))
            half = len(args) // 2
            for part in (args[:half], args[half:]):
                event(chunk({"tool_calls": [{"index": k, "function": {"arguments": part}}]}))
        event(chunk({}, finish))
        event(chunk(None, usage={"prompt_tokens": pt, "completion_tokens": ct, "total_tokens": pt + ct}))
        event(b"[DONE]")
        h.wfile.write(b"0\r\n\r\n")
        h.wfile.flush()

    def _respond(self, h, req):
        if req.path != self.PATH or req.method != "POST":
            return self._error(h, 404, "not found")
        if req.headers.get("authorization") != "Bearer %s" % self.default_key:
            return self._error(h, 401, "Incorrect API key provided")
        body = req.json
        problem = self._problem(body) if isinstance(body, dict) else "body must be a JSON object"
        if problem:
            return self._error(h, 400, problem)
        model = body["model"]
        turn_no = sum(1 for m in body["messages"] if m.get("role") == "assistant")
        with self._lock:
            script = self.scripts.get(model) or {"turns": [], "pt": 10, "ct": 5}
            turns = script["turns"]
            turn = dict(turns[turn_no]) if turn_no < len(turns) else {"content": "done"}
            if turn.get("fail"):
                key = (model, turn_no)
                self._failed[key] = self._failed.get(key, 0) + 1
                failing = self._failed[key] <= turn.get("times", 1 << 30)
            else:
                failing = False
        if turn.get("delay"):
            time.sleep(turn["delay"])
        if failing:
            return h.send(turn["fail"], {"error": {"message": "scripted failure", "type": "server_error"}})
        msg = {"role": "assistant", "content": turn.get("content")}
        finish = "stop"
        if turn.get("tools"):
            msg["tool_calls"] = [{"id": "call_%d_%d" % (turn_no, k), "type": "function",
                                  "function": {"name": name,
                                               "arguments": args if isinstance(args, str) else json.dumps(args)}}
                                 for k, (name, args) in enumerate(turn["tools"])]
            finish = "tool_calls"
        elif msg["content"] is None:
            msg["content"] = "done"
        pt, ct = script["pt"], script["ct"]
        if body.get("stream") is True:
            if body.get("stream_options") != {"include_usage": True}:
                return self._error(h, 400, "stream_options.include_usage must be true")
            return self._stream(h, model, msg, finish, pt, ct)
        return h.send(200, {"id": "chatcmpl-%s" % uuid.uuid4().hex[:24], "object": "chat.completion",
                            "created": int(time.time()), "model": model,
                            "choices": [{"index": 0, "message": msg, "finish_reason": finish}],
                            "usage": {"prompt_tokens": pt, "completion_tokens": ct, "total_tokens": pt + ct}})


# ============================================================== FakeAnthropic

class FakeAnthropic(_FakeServer):
    """The Anthropic Messages API at POST /v1/messages.

    Checks what the Messages API requires (else 400 or 401 with its error shape
    {"type": "error", "error": {"type", "message"}}): x-api-key equal to the
    expected key, anthropic-version "2023-06-01", a JSON Content-Type, a body with
    a string model, an integer max_tokens >= 1, messages a non-empty list of
    {role: user | assistant, content: string} (no system role there), system
    absent or a string, temperature absent or a number, and nothing else.

    Answers {"id", "type": "message", "role": "assistant", "model": <request model>,
    "content": [{"type": "text", "text": C}], "stop_reason": "end_turn",
    "stop_sequence": null, "usage": {"input_tokens": 12, "output_tokens": 7}}
    where C is "echo: " + the last user message. With "stream": true (a boolean)
    the same answer comes as the Messages API's event stream: message_start (usage
    input_tokens 12, output_tokens 1), content_block_start, a ping, C in
    content_block_delta text deltas of 3 characters, content_block_stop,
    message_delta (stop_reason end_turn, output_tokens 7), message_stop; it waits for
    stream_gate (a threading.Event, when set to one) before its first delta. Models:
    fail-<n> answers that status; overloaded-<k> answers 529 to its first k calls;
    echo-key-401 answers 401 with the x-api-key it received in the message.

    Tool use (agents): tools [{name, description, input_schema (type object)}]; an
    assistant's content may be blocks (text, tool_use {id, name, input object}), and the
    user turn after it must then be tool_result blocks {tool_use_id, content string}
    answering every one of them. A model given turns by script_tools(model, turns) answers
    as FakeAgentLLM does (turn: the number of assistant messages; {"tools": [(name,
    input)]} answers tool_use blocks with ids "toolu_<turn>_<k>", stop_reason
    "tool_use"; {"content": text} an end_turn answer); usage 12 and 7.
    """
    name = "fake-anthropic"
    PATH = "/v1/messages"
    ALLOWED = {"model", "max_tokens", "messages", "system", "temperature", "stream", "tools"}

    def __init__(self, key):
        super().__init__()
        self.key = key
        self._calls = {}
        self.stream_gate = None
        self.tool_scripts = {}

    def script_tools(self, model, turns):
        with self._lock:
            self.tool_scripts[model] = list(turns)

    @property
    def base_url(self):
        return self.url + "/v1"

    def calls(self, model=None):
        out = self.requests(path=self.PATH)
        return [r for r in out if model is None or (isinstance(r.json, dict) and r.json.get("model") == model)]

    @staticmethod
    def _error(h, status, etype, message):
        return h.send(status, {"type": "error", "error": {"type": etype, "message": message}})

    def _check(self, req):
        """What is wrong with the request, or None."""
        if req.headers.get("anthropic-version") != "2023-06-01":
            return "anthropic-version must be 2023-06-01"
        if req.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
            return "Content-Type must be application/json"
        b = req.json
        if not isinstance(b, dict) or set(b) - self.ALLOWED:
            return "unexpected fields: %r" % (sorted(set(b) - self.ALLOWED) if isinstance(b, dict) else b)
        if not isinstance(b.get("model"), str) or not b["model"]:
            return "model: required"
        mt = b.get("max_tokens")
        if not isinstance(mt, int) or isinstance(mt, bool) or mt < 1:
            return "max_tokens: required, an integer >= 1"
        msgs = b.get("messages")
        if not isinstance(msgs, list) or not msgs:
            return "messages: a non-empty list"
        open_ids = set()
        for m in msgs:
            if (not isinstance(m, dict) or set(m) != {"role", "content"} or m["role"] not in ("user", "assistant")
                    or not isinstance(m["content"], (str, list))):
                return "messages: each {role: user|assistant, content: string or blocks}"
            blocks = m["content"] if isinstance(m["content"], list) else []
            if open_ids:
                answered = {blk.get("tool_use_id") for blk in blocks if blk.get("type") == "tool_result"}
                if m["role"] != "user" or answered != open_ids or any(
                        not isinstance(blk.get("content"), str) for blk in blocks):
                    return "messages: the tool_use blocks %r need their tool_result blocks next" % sorted(open_ids)
            open_ids = set()
            for blk in blocks:
                if blk.get("type") == "tool_use":
                    if m["role"] != "assistant" or not isinstance(blk.get("input"), dict) \
                            or not isinstance(blk.get("id"), str) or not isinstance(blk.get("name"), str):
                        return "messages: a bad tool_use block %r" % (blk,)
                    open_ids.add(blk["id"])
                elif blk.get("type") not in ("text", "tool_result"):
                    return "messages: an unknown block %r" % (blk,)
        for t in req.json.get("tools") or []:
            if set(t) != {"name", "description", "input_schema"} or t["input_schema"].get("type") != "object":
                return "tools: each {name, description, input_schema}"
        if "system" in b and not isinstance(b["system"], str):
            return "system: a string"
        t = b.get("temperature")
        if "temperature" in b and (not isinstance(t, (int, float)) or isinstance(t, bool)):
            return "temperature: a number"
        if "stream" in b and not isinstance(b["stream"], bool):
            return "stream: a boolean"
        return None

    def _stream(self, h, model, text):
        def event(etype, obj):
            data = b"event: %s\ndata: %s\n\n" % (etype.encode(), json.dumps(dict(obj, type=etype)).encode())
            h.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            h.wfile.flush()

        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream")
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        event("message_start", {"message": {
            "id": "msg_%s" % uuid.uuid4().hex[:20], "type": "message", "role": "assistant", "model": model,
            "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": 12, "output_tokens": 1}}})
        event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}})
        event("ping", {})
        if self.stream_gate is not None:
            self.stream_gate.wait(30)
        for i in range(0, len(text), 3):
            event("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": text[i:i + 3]}})
        event("content_block_stop", {"index": 0})
        event("message_delta", {"delta": {"stop_reason": "end_turn", "stop_sequence": None},
                                "usage": {"output_tokens": 7}})
        event("message_stop", {})
        h.wfile.write(b"0\r\n\r\n")
        h.wfile.flush()

    def _respond(self, h, req):
        if req.path != self.PATH or req.method != "POST":
            return self._error(h, 404, "not_found_error", "not found")
        if req.headers.get("x-api-key") != self.key:
            model = req.json.get("model") if isinstance(req.json, dict) else None
            if model == "echo-key-401":
                return self._error(h, 401, "authentication_error", "invalid x-api-key: %s" % req.headers.get("x-api-key"))
            return self._error(h, 401, "authentication_error", "invalid x-api-key")
        problem = self._check(req)
        if problem:
            return self._error(h, 400, "invalid_request_error", problem)
        model = req.json["model"]
        with self._lock:
            self._calls[model] = self._calls.get(model, 0) + 1
            n = self._calls[model]
        if model.startswith("fail-") and model[5:].isdigit():
            return self._error(h, int(model[5:]), "api_error", "scripted failure")
        if model.startswith("overloaded-") and model[11:].isdigit() and n <= int(model[11:]):
            return self._error(h, 529, "overloaded_error", "Overloaded")
        with self._lock:
            turns = self.tool_scripts.get(model)
        if turns is not None:
            k = sum(1 for m in req.json["messages"] if m["role"] == "assistant")
            turn = turns[k] if k < len(turns) else {"content": "done"}
            content = [{"type": "text", "text": turn["content"]}] if turn.get("content") else []
            content += [{"type": "tool_use", "id": "toolu_%d_%d" % (k, j), "name": name, "input": args}
                        for j, (name, args) in enumerate(turn.get("tools") or [])]
            return h.send(200, {"id": "msg_%s" % uuid.uuid4().hex[:20], "type": "message", "role": "assistant",
                                "model": model, "content": content,
                                "stop_reason": "tool_use" if turn.get("tools") else "end_turn",
                                "stop_sequence": None, "usage": {"input_tokens": 12, "output_tokens": 7}})
        users = [m["content"] for m in req.json["messages"] if m["role"] == "user"]
        if req.json.get("stream"):
            return self._stream(h, model, "echo: " + (users[-1] if users else ""))
        return h.send(200, {"id": "msg_%s" % uuid.uuid4().hex[:20], "type": "message", "role": "assistant",
                            "model": model, "content": [{"type": "text", "text": "echo: " + (users[-1] if users else "")}],
                            "stop_reason": "end_turn", "stop_sequence": None,
                            "usage": {"input_tokens": 12, "output_tokens": 7}})


# ============================================================== pricing, fixtures, env

def write_pricing(path):
    path = pathlib.Path(path)
    path.write_text(json.dumps(PRICING), "utf-8")
    return path


@pytest.fixture(scope="module")
def fake_http():
    f = FakeHttp().start()
    yield f
    f.stop()


@pytest.fixture(scope="module")
def fake_llm():
    f = FakeLLM().start()
    yield f
    f.stop()


@pytest.fixture(scope="module")
def pricing_file(tmp_path_factory):
    return write_pricing(tmp_path_factory.mktemp("pricing") / "pricing.json")


def engine_env(llm=None, pricing=None, allow_private=True, **overrides):
    """Server env of the engine suites (auth_env included). allow_private=False leaves
    HTTP_NODE_ALLOW_PRIVATE unset (its default, false); llm=None leaves LLM_* unset."""
    env = auth_env()
    env["HTTP_NODE_ALLOW_PRIVATE"] = "true" if allow_private else None
    env["WORKERS"] = "2"
    if llm is not None:
        env["LLM_BASE_URL"] = llm.base_url
        env["LLM_API_KEY"] = llm.default_key
    if pricing is not None:
        env["LLM_PRICING_FILE"] = str(pricing)
    env.update(overrides)
    return env


# ============================================================== execution helpers

ENDED = ("succeeded", "failed", "cancelled", "timed_out")
EXEC_STATUSES = ("queued", "running", "waiting") + ENDED
NODE_STATUSES = EXEC_STATUSES + ("pending", "skipped")
EXEC_KEYS = {"id", "workflowId", "workflowVersion", "status", "trigger", "triggeredBy", "input", "output",
             "error", "startedAt", "finishedAt", "durationMs", "memoryBytes", "usage", "costUsd", "nodes",
             "createdAt", "parentExecutionId", "rootExecutionId", "depth"}
NODE_KEYS = {"nodeId", "type", "status", "attempts", "startedAt", "finishedAt", "durationMs", "usage", "costUsd",
             "model", "error", "output"}
USAGE_KEYS = {"promptTokens", "completionTokens", "totalTokens"}
ZERO_USAGE = {"promptTokens": 0, "completionTokens": 0, "totalTokens": 0}
UNKNOWN_ID = "0190b2a4-0000-7000-8000-000000000000"


def H(acct):
    return bearer(acct["accessToken"])


# ---- node builders

def transform(nid, output, **extra):
    return dict({"id": nid, "type": "transform", "config": {"output": output}}, **extra)


def condition(nid, left, op, right=None, **extra):
    cfg = {"left": left, "op": op}
    if op != "exists" or right is not None:
        cfg["right"] = right
    return dict({"id": nid, "type": "condition", "config": cfg}, **extra)


def http_node(nid, url, retry=None, timeout_ms=None, **config):
    n = {"id": nid, "type": "http", "config": dict({"url": url}, **config)}
    if retry is not None:
        n["retry"] = retry
    if timeout_ms is not None:
        n["timeoutMs"] = timeout_ms
    return n


def llm_node(nid, model, messages, retry=None, timeout_ms=None, **config):
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    n = {"id": nid, "type": "llm", "config": dict({"model": model, "messages": messages}, **config)}
    if retry is not None:
        n["retry"] = retry
    if timeout_ms is not None:
        n["timeoutMs"] = timeout_ms
    return n


def delay_node(nid, ms, **extra):
    return dict({"id": nid, "type": "delay", "config": {"ms": ms}}, **extra)


def edge(a, b, when=None):
    e = {"from": a, "to": b}
    if when is not None:
        e["when"] = when
    return e


def chain(*ids):
    return [edge(a, b) for a, b in zip(ids, ids[1:])]


def retry(max_attempts, backoff_ms=0):
    return {"maxAttempts": max_attempts, "backoffMs": backoff_ms}


# ---- routes

def create_workflow(srv, acct, nodes=(), edges=(), settings=None, name=None, **fields):
    body = {"name": name or "wf-%s" % uuid.uuid4().hex[:10], "status": "active",
            "definition": {"nodes": list(nodes), "edges": list(edges)}}
    if settings is not None:
        body["settings"] = settings
    body.update(fields)
    r = srv.post("/api/workflows", json=body, headers=H(acct))
    assert r.status_code == 201, "create workflow: %d %s" % (r.status_code, r.text[:1500])
    return r.json()


def share(srv, owner, wid, editors=(), viewers=()):
    r = srv.request("PUT", "/api/workflows/%s" % wid, headers=H(owner),
                    json={"permissions": {"editors": list(editors), "viewers": list(viewers)}})
    assert r.status_code == 200, "permissions: %d %s" % (r.status_code, r.text[:500])
    return r.json()


_NO_BODY = object()


def execute_raw(srv, headers, wid, body=_NO_BODY, **kw):
    if body is not _NO_BODY:
        kw["json"] = body
    return srv.post("/api/workflows/%s/execute" % wid, headers=headers, **kw)


def execute(srv, acct, wid, input=None, wait=None, expect=202):
    """POST .../execute; asserts the status and returns the JSON body."""
    body = {}
    if input is not None:
        body["input"] = input
    if wait is not None:
        body["wait"] = wait
    r = execute_raw(srv, H(acct), wid, body)
    assert r.status_code == expect, "execute %s: %d %s" % (wid, r.status_code, r.text[:1500])
    return r.json()


def start(srv, acct, wid, input=None):
    """Queues an execution and returns its id."""
    b = execute(srv, acct, wid, input=input)
    assert set(b) == {"executionId", "status"} and b["status"] == "queued", b
    return b["executionId"]


def get_execution(srv, acct, eid, expect=200):
    r = srv.get("/api/executions/%s" % eid, headers=H(acct))
    assert r.status_code == expect, "GET execution %s: %d %s" % (eid, r.status_code, r.text[:1500])
    return r.json()


def poll(srv, acct, eid, pred, timeout=15.0, what="condition", interval=0.03):
    """GETs the execution until pred(execution) holds; returns it (fails at the deadline)."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = get_execution(srv, acct, eid)
        if pred(last):
            return last
        if time.monotonic() > deadline:
            pytest.fail("execution %s: %s not reached within %.1fs; last state:\n%s"
                        % (eid, what, timeout, json.dumps(last, indent=1)[:4000]))
        time.sleep(interval)


def wait_ended(srv, acct, eid, timeout=15.0):
    return poll(srv, acct, eid, lambda e: e["status"] in ENDED, timeout, "an end")


def wait_node(srv, acct, eid, nid, status, timeout=10.0):
    """Waits until node nid of the execution has status."""
    return poll(srv, acct, eid, lambda e: (node_of(e, nid) or {}).get("status") == status, timeout,
                "node %s %s" % (nid, status))


def run(srv, acct, wid, input=None, timeout=15.0):
    """Executes with wait: true and returns the finished execution (polls if the
    server answered 202)."""
    body = {"wait": True}
    if input is not None:
        body["input"] = input
    r = execute_raw(srv, H(acct), wid, body, timeout=timeout + 5)
    assert r.status_code in (200, 202), "execute %s: %d %s" % (wid, r.status_code, r.text[:1500])
    b = r.json()
    if r.status_code == 200:
        assert b["status"] in ENDED, b
        return b
    return wait_ended(srv, acct, b["executionId"], timeout)


def run_nodes(srv, acct, nodes, edges=(), input=None, settings=None, timeout=15.0):
    """Creates a workflow and runs it once; returns (workflow, execution)."""
    w = create_workflow(srv, acct, nodes, edges, settings=settings)
    e = run(srv, acct, w["id"], input=input, timeout=timeout)
    check_execution(e)
    return w, e


def list_executions(srv, acct, expect=200, **params):
    r = srv.get("/api/executions", headers=H(acct), params=params)
    assert r.status_code == expect, "list executions %r: %d %s" % (params, r.status_code, r.text[:800])
    return r.json()


def cancel(srv, acct, eid, expect=200):
    r = srv.post("/api/executions/%s/cancel" % eid, headers=H(acct))
    assert r.status_code == expect, "cancel %s: %d %s" % (eid, r.status_code, r.text[:800])
    return r.json()


def at_once(servers, n, send):
    """n requests released together, each on a connection of its own, request i to
    servers[i % len(servers)]: the list of send(session, server, i) in order of i."""
    barrier = threading.Barrier(n)

    def go(i):
        srv = servers[i % len(servers)]
        s = requests.Session()
        s.trust_env = False
        try:
            s.get(srv.url + "/health", timeout=30)
            barrier.wait(timeout=60)
            return send(s, srv, i)
        finally:
            s.close()

    with ThreadPoolExecutor(n) as ex:
        return list(ex.map(go, range(n)))


# ---- reading executions

def node_of(e, nid):
    for n in e.get("nodes") or []:
        if n["nodeId"] == nid:
            return n
    return None


def node_ids(e):
    return [n["nodeId"] for n in e.get("nodes") or []]


def statuses(e):
    return {n["nodeId"]: n["status"] for n in e.get("nodes") or []}


def ms_between(a, b):
    return (parse_ts(b) - parse_ts(a)).total_seconds() * 1000.0


def _check_usage(u, where):
    assert isinstance(u, dict) and set(u) == USAGE_KEYS, "%s usage: %r" % (where, u)
    for k in USAGE_KEYS:
        assert isinstance(u[k], int) and not isinstance(u[k], bool) and u[k] >= 0, "%s usage: %r" % (where, u)
    assert u["totalTokens"] == u["promptTokens"] + u["completionTokens"], "%s usage: %r" % (where, u)


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def check_node(n, where="node"):
    assert isinstance(n, dict) and set(n) == NODE_KEYS, "%s keys: %r" % (where, sorted(n) if isinstance(n, dict) else n)
    where = "%s %s" % (where, n["nodeId"])
    assert n["type"] in ("transform", "condition", "http", "llm", "delay", "workflow",
                         "approval", "agent"), n
    assert n["status"] in NODE_STATUSES, n
    assert isinstance(n["attempts"], int) and n["attempts"] >= 0, n
    _check_usage(n["usage"], where)
    assert _is_number(n["costUsd"]) and n["costUsd"] >= 0, n
    if n["type"] not in ("llm", "agent"):
        assert n["model"] is None, n
    if n["type"] not in ("llm", "workflow", "agent"):  # a workflow node's are its child's
        assert n["usage"] == ZERO_USAGE and n["costUsd"] == 0, n
    for k in ("startedAt", "finishedAt"):
        if n[k] is not None:
            parse_ts(n[k])
    if n["startedAt"] and n["finishedAt"]:
        assert parse_ts(n["startedAt"]) <= parse_ts(n["finishedAt"]), n
    if n["durationMs"] is not None:
        assert isinstance(n["durationMs"], int) and n["durationMs"] >= 0, n
    if n["error"] is not None:
        assert isinstance(n["error"], dict) and {"code", "message"} <= set(n["error"]), n
        assert isinstance(n["error"]["code"], str) and isinstance(n["error"]["message"], str), n
    if n["status"] == "succeeded":
        assert n["error"] is None and n["attempts"] >= 1, n
        assert n["startedAt"] and n["finishedAt"] and n["durationMs"] is not None, n
    if n["status"] == "failed":
        assert n["error"] is not None and n["attempts"] >= 1, n
    if n["status"] == "skipped":
        assert n["attempts"] == 0 and n["output"] is None and n["error"] is None, n
    if n["status"] in ("pending", "running"):
        assert n["finishedAt"] is None, n
    return n


def check_execution(e, listed=False):
    """The shape of an execution; listed: a list item (input, output and nodes may be absent)."""
    assert isinstance(e, dict), e
    keys = set(e)
    if listed:
        assert EXEC_KEYS - {"input", "output", "nodes"} <= keys <= EXEC_KEYS, sorted(keys)
    else:
        assert keys == EXEC_KEYS, "execution keys: %r" % sorted(keys)
    assert UUID7.match(e["id"]) and UUID7.match(e["workflowId"]), e
    assert isinstance(e["workflowVersion"], int) and e["workflowVersion"] >= 1, e
    assert e["status"] in EXEC_STATUSES, e
    assert isinstance(e["triggeredBy"], str) and UUID7.match(e["triggeredBy"]), e
    if e["trigger"] == "workflow":  # a child execution (workflow node)
        assert UUID7.match(e["parentExecutionId"]) and UUID7.match(e["rootExecutionId"]), e
        assert isinstance(e["depth"], int) and e["depth"] >= 1, e
    else:
        assert e["trigger"] == "api", e
        assert e["parentExecutionId"] is None and e["rootExecutionId"] is None and e["depth"] == 0, e
    parse_ts(e["createdAt"])
    for k in ("startedAt", "finishedAt"):
        if e[k] is not None:
            parse_ts(e[k])
    _check_usage(e["usage"], "execution")
    assert _is_number(e["costUsd"]) and e["costUsd"] >= 0, e
    assert isinstance(e["memoryBytes"], int) and e["memoryBytes"] >= 0, e
    st = e["status"]
    if st in ("queued", "running"):
        assert e["finishedAt"] is None and e["error"] is None and e.get("output") is None, e
        assert e["durationMs"] is None, e
    if st == "running":
        assert e["startedAt"] is not None, e
    if st in ENDED:
        assert e["finishedAt"] is not None, e
    if st == "succeeded":
        assert e["error"] is None, e
        assert e["startedAt"] is not None and isinstance(e["durationMs"], int) and e["durationMs"] >= 0, e
        if not listed or "output" in e:
            assert isinstance(e["output"], dict), e
    if st in ("failed", "cancelled", "timed_out"):
        assert e.get("output") is None, e
        err = e["error"]
        assert isinstance(err, dict) and set(err) == {"code", "message", "nodeId"}, e
        assert isinstance(err["code"], str) and isinstance(err["message"], str) and err["message"], e
    if e["startedAt"] and e["finishedAt"]:
        assert parse_ts(e["createdAt"]) <= parse_ts(e["startedAt"]) <= parse_ts(e["finishedAt"]), e
        assert isinstance(e["durationMs"], int) and e["durationMs"] >= 0, e
    if "nodes" in e:
        assert isinstance(e["nodes"], list), e
        seen = set()
        for n in e["nodes"]:
            check_node(n)
            assert n["nodeId"] not in seen, "node listed twice: %r" % n
            seen.add(n["nodeId"])
        # the execution's usage and cost are the sums over its nodes
        tot = {k: sum(n["usage"][k] for n in e["nodes"]) for k in USAGE_KEYS}
        assert e["usage"] == tot, (e["usage"], tot)
        assert abs(e["costUsd"] - sum(n["costUsd"] for n in e["nodes"])) < 1e-6, e
        if st in ENDED:
            for n in e["nodes"]:
                assert n["status"] not in ("pending", "running", "queued"), \
                    "node %s still %s in an ended execution: %r" % (n["nodeId"], n["status"], e)
    return e


def assert_node_error(e, nid, code, status="failed"):
    """The execution failed at node nid with code (also on the execution's error)."""
    assert e["status"] == "failed", json.dumps(e, indent=1)[:3000]
    assert e["error"]["code"] == code and e["error"]["nodeId"] == nid, e["error"]
    n = node_of(e, nid)
    assert n is not None, e
    assert n["status"] == status, n
    assert n["error"] and n["error"]["code"] == code, n
    assert isinstance(n["error"]["message"], str) and n["error"]["message"], n
    return n
