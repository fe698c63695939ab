#!/usr/bin/python3
"""A fake OpenAI-compatible LLM API for the benchmarks: POST
/v1/chat/completions answers after DELAY seconds with a chat completion that
echoes the last message, and token usage. Keep-alive, any number of
concurrent connections (asyncio streams, the standard library only). Unlike
the test suite's fake (tests/api/fakes.py) it records nothing, so it can run
for as long as a soak does.

usage: llm_server.py [PORT [DELAY [KEY]]]   (PORT 0, the default: any free port;
                                              KEY: the API key it expects, default none)
Listens on 127.0.0.1 and prints the port it got on the first line of stdout.
Any other path or method answers 404; a wrong key 401; a body that is not a
JSON object with a string model and a list of messages 400.
Stops on SIGTERM or SIGINT.
"""
import asyncio
import json
import resource
import signal
import sys
import time

MAX_HEAD = 64 * 1024
MAX_BODY = 1024 * 1024
PATH = b"/v1/chat/completions"


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass


def reply(status, reason, obj, keep):
    body = json.dumps(obj, separators=(",", ":")).encode()
    return b"".join((
        b"HTTP/1.1 %d %s\r\n" % (status, reason),
        b"Content-Type: application/json\r\n",
        b"Content-Length: %d\r\n" % len(body),
        b"Connection: keep-alive\r\n" if keep else b"Connection: close\r\n",
        b"\r\n", body))


def error(status, reason, message, keep):
    return reply(status, reason, {"error": {"message": message, "type": "invalid_request_error"}},
                 keep)


def completion(req):
    """The answer to a parsed request, or None when it is not one."""
    if not isinstance(req, dict) or not isinstance(req.get("model"), str):
        return None
    msgs = req.get("messages")
    if not isinstance(msgs, list) or not msgs or not isinstance(msgs[-1], dict):
        return None
    last = msgs[-1].get("content")
    text = "echo: %s" % (last if isinstance(last, str) else "")
    prompt = sum(len(str(m.get("content", ""))) // 4 + 1 for m in msgs if isinstance(m, dict))
    done = len(text) // 4 + 1
    return {
        "id": "chatcmpl-bench", "object": "chat.completion", "created": int(time.time()),
        "model": req["model"],
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": done,
                  "total_tokens": prompt + done},
    }


async def answer(head, body, delay, key, keep):
    lines = head.decode("latin-1").split("\r\n")
    method, _, rest = lines[0].partition(" ")
    target = rest.rsplit(" ", 1)[0].encode("latin-1")
    if method != "POST" or target != PATH:
        return error(404, b"Not Found", "no such route", keep)
    auth = ""
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "authorization":
            auth = value.strip()
    if key and auth != "Bearer " + key:
        return error(401, b"Unauthorized", "Incorrect API key provided", keep)
    try:
        req = json.loads(body)
    except ValueError:
        req = None
    out = completion(req)
    if out is None:
        return error(400, b"Bad Request", "a model and a list of messages are required", keep)
    await asyncio.sleep(delay)
    return reply(200, b"OK", out, keep)


async def serve(reader, writer, delay, key):
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.LimitOverrunError:
                writer.write(error(431, b"Request Header Fields Too Large", "headers too large",
                                   False))
                await writer.drain()
                return
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            lines = head.decode("latin-1").split("\r\n")
            version = lines[0].rsplit(" ", 1)[-1] if lines[0] else ""
            length, conn, chunked = 0, "", False
            for line in lines[1:]:
                name, _, value = line.partition(":")
                name = name.strip().lower()
                if name == "content-length":
                    length = int(value.strip() or 0)
                elif name == "connection":
                    conn = value.strip().lower()
                elif name == "transfer-encoding":
                    chunked = "chunked" in value.lower()
            if chunked or length > MAX_BODY:  # not expected from the engine: answer, then close
                writer.write(error(400, b"Bad Request", "send a Content-Length body", False))
                await writer.drain()
                return
            keep = conn != "close" and (version == "HTTP/1.1" or conn == "keep-alive")
            body = await reader.readexactly(length) if length else b""
            writer.write(await answer(head, body, delay, key, keep))
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
    delay = float(sys.argv[2]) if len(sys.argv) > 2 else 0.0
    key = sys.argv[3] if len(sys.argv) > 3 else ""
    raise_nofile()
    server = await asyncio.start_server(lambda r, w: serve(r, w, delay, key), "127.0.0.1", port,
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
