"""A small Server-Sent Events client for the API tests: one GET over
http.client, the chunked body read as it arrives and cut into events.

    s = SSE(srv, "/api/executions/%s/events" % eid, H(acct))
    s.status, s.headers            the response's
    s.next(timeout)                the next event {"id", "event", "data" (parsed JSON)}, or
                                   None when the stream ended (the server closed it)
    s.until("execution.finished")  events up to and including the first of that type
    s.comments                     the comment lines seen (": ping" -> "ping")
    s.close()
"""
import http.client
import json
import socket
import time


class SSE:
    def __init__(self, srv, path, headers=None, timeout=15.0):
        self.conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=timeout)
        hdrs = {"Accept": "text/event-stream"}
        hdrs.update(headers or {})
        self.conn.request("GET", path, headers=hdrs)
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.headers = {k.lower(): v for k, v in self.resp.getheaders()}
        self.buf = b""
        self.comments = []
        self.ended = False
        self.body = None
        if self.status != 200 or not self.headers.get("content-type", "").startswith("text/event-stream"):
            self.body = self.resp.read()
            self.ended = True

    def json(self):
        return json.loads(self.body)

    def _fill(self, deadline):
        self.conn.sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data = self.resp.read1(65536)
        except (socket.timeout, TimeoutError):
            return False
        except (http.client.IncompleteRead, ConnectionError):
            data = b""
        if not data:
            self.ended = True
            return False
        self.buf += data
        return True

    def next(self, timeout=10.0):
        """The next event, None at the end of the stream; raises TimeoutError."""
        deadline = time.monotonic() + timeout
        while True:
            while b"\n\n" in self.buf:
                block, self.buf = self.buf.split(b"\n\n", 1)
                ev = {}
                for line in block.decode().split("\n"):
                    if line.startswith(":"):
                        self.comments.append(line[1:].strip())
                        continue
                    name, _, value = line.partition(": ")
                    ev[name] = value
                if "data" in ev:
                    ev["data"] = json.loads(ev["data"])
                    ev["raw"] = block.decode()
                    return ev
            if self.ended:
                return None
            if not self._fill(deadline) and not self.ended:
                if time.monotonic() >= deadline:
                    raise TimeoutError("no event within %.1fs" % timeout)

    def until(self, etype, timeout=15.0, limit=10000):
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < limit:
            ev = self.next(max(0.01, deadline - time.monotonic()))
            if ev is None:
                break
            out.append(ev)
            if ev.get("event") == etype:
                break
        return out

    def rest(self, timeout=15.0):
        """Every event until the server ends the stream."""
        out = []
        deadline = time.monotonic() + timeout
        while True:
            ev = self.next(max(0.01, deadline - time.monotonic()))
            if ev is None:
                return out
            out.append(ev)

    def wait_comment(self, text, timeout=5.0):
        deadline = time.monotonic() + timeout
        while text not in self.comments:
            if self.ended:
                return False
            if not self._fill(deadline) and time.monotonic() >= deadline:
                return False
            while b"\n\n" in self.buf and text not in self.comments:
                block, self.buf = self.buf.split(b"\n\n", 1)
                for line in block.decode().split("\n"):
                    if line.startswith(":"):
                        self.comments.append(line[1:].strip())
        return True

    def close(self):
        try:
            self.conn.close()
        except OSError:
            pass
