#!/usr/bin/python3
"""A slow HTTP/1.1 server for the execution benchmark: answers every request
after DELAY seconds with a small JSON body. Keep-alive, any number of
concurrent connections (asyncio streams, the standard library only).

usage: slow_server.py [PORT [DELAY]]     (PORT 0, the default: any free port)
Listens on 127.0.0.1 and prints the port it got on the first line of stdout.
Stops on SIGTERM or SIGINT.
"""
import asyncio
import resource
import signal
import sys

BODY = b'{"ok":true,"slow":true}'
MAX_HEAD = 64 * 1024


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass


def reply(status, reason, keep):
    return b"".join((
        b"HTTP/1.1 %d %s\r\n" % (status, reason),
        b"Content-Type: application/json\r\n",
        b"Content-Length: %d\r\n" % len(BODY),
        b"Connection: keep-alive\r\n" if keep else b"Connection: close\r\n",
        b"\r\n", BODY))


async def serve(reader, writer, delay):
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.LimitOverrunError:
                writer.write(reply(431, b"Request Header Fields Too Large", False))
                await writer.drain()
                return
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            lines = head.decode("latin-1").split("\r\n")
            version = lines[0].rsplit(" ", 1)[-1] if lines[0] else ""
            length = 0
            conn = ""
            chunked = False
            for line in lines[1:]:
                name, _, value = line.partition(":")
                name = name.strip().lower()
                if name == "content-length":
                    length = int(value.strip() or 0)
                elif name == "connection":
                    conn = value.strip().lower()
                elif name == "transfer-encoding":
                    chunked = "chunked" in value.lower()
            if chunked:                      # not expected from the engine: answer, then close
                keep = False
            else:
                keep = conn != "close" and (version == "HTTP/1.1" or conn == "keep-alive")
                if length:
                    await reader.readexactly(length)
            await asyncio.sleep(delay)
            writer.write(reply(200, b"OK", keep))
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


async def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    delay = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
    raise_nofile()
    server = await asyncio.start_server(lambda r, w: serve(r, w, delay), "127.0.0.1", port,
                                        backlog=4096, limit=MAX_HEAD)
    print(server.sockets[0].getsockname()[1], flush=True)
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    async with server:
        await stop


if __name__ == "__main__":
    asyncio.run(main())
