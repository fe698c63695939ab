#!/usr/bin/python3
"""A slow HTTP/1.1 server for the execution benchmark: answers every request
after DELAY seconds with a small JSON body (the connection handling is
fakehttp.py's).

usage: slow_server.py [PORT [DELAY]]     (PORT 0, the default: any free port;
                                          DELAY 1 s by default)
Listens on 127.0.0.1 and prints the port it got on the first line of stdout.
Stops on SIGTERM or SIGINT.
"""
import asyncio
import sys

from fakehttp import response, serve_forever

BODY = b'{"ok":true,"slow":true}'
DELAY = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0


async def answer(request, keep):
    await asyncio.sleep(DELAY)
    return response(200, b"OK", BODY, keep)


if __name__ == "__main__":
    serve_forever(answer)
