"""The HTTP/1.1 side of the benchmarks' fake upstreams (slow_server.py,
llm_server.py): keep-alive connections on asyncio streams, the standard
library only, any number of them at once.

A fake gives serve_forever() its handler, an async function of
(request, keep) returning the whole response (see response()); request has
.method, .target, .headers (lowercased names) and .body. Chunked bodies
are not expected from the engine: they are answered 400 and the connection
closed. The server listens on 127.0.0.1, prints the port it got on the
first line of stdout and stops on SIGTERM or SIGINT.
"""
import asyncio
import resource
import signal
import sys

MAX_HEAD = 64 * 1024
MAX_BODY = 1024 * 1024


class Request:
    def __init__(self, method, target, headers, body):
        self.method, self.target, self.headers, self.body = method, target, headers, body


def response(status, reason, body, keep, content_type=b"application/json"):
    return b"".join((
        b"HTTP/1.1 %d %s\r\n" % (status, reason),
        b"Content-Type: %s\r\n" % content_type,
        b"Content-Length: %d\r\n" % len(body),
        b"Connection: keep-alive\r\n" if keep else b"Connection: close\r\n",
        b"\r\n", body))


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass


async def _serve(reader, writer, handler):
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.LimitOverrunError:
                writer.write(response(431, b"Request Header Fields Too Large", b"{}", False))
                await writer.drain()
                return
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            lines = head.decode("latin-1").split("\r\n")
            method, _, rest = lines[0].partition(" ")
            target, _, version = rest.rpartition(" ")
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name:
                    headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length") or 0)
            if "chunked" in headers.get("transfer-encoding", "").lower() or length > MAX_BODY:
                writer.write(response(400, b"Bad Request", b"{}", False))
                await writer.drain()
                return
            conn = headers.get("connection", "").lower()
            keep = conn != "close" and (version == "HTTP/1.1" or conn == "keep-alive")
            body = await reader.readexactly(length) if length else b""
            writer.write(await handler(Request(method, target, headers, body), keep))
            await writer.drain()
            if not keep:
                return
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        try:
            writer.close()
        except Exception:
            pass


async def _main(handler, port):
    raise_nofile()
    server = await asyncio.start_server(lambda r, w: _serve(r, w, handler), "127.0.0.1", port,
                                        backlog=4096, limit=MAX_HEAD)
    print(server.sockets[0].getsockname()[1], flush=True)
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    async with server:
        await stop


def serve_forever(handler):
    """Serves handler on the port argv[1] names (0 or none: any free port)."""
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    asyncio.run(_main(handler, port))
