#!/usr/bin/python3
"""A fake OpenAI-compatible LLM API for the benchmarks: POST
/v1/chat/completions answers after DELAY seconds with a chat completion that
echoes the last message, and token usage. Keep-alive, any number of
concurrent connections (fakehttp.py). Unlike
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
import sys
import time

from fakehttp import response, serve_forever

PATH = "/v1/chat/completions"
DELAY = float(sys.argv[2]) if len(sys.argv) > 2 else 0.0
KEY = sys.argv[3] if len(sys.argv) > 3 else ""


def reply(status, reason, obj, keep):
    return response(status, reason, json.dumps(obj, separators=(",", ":")).encode(), keep)


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


async def answer(request, keep):
    if request.method != "POST" or request.target != PATH:
        return error(404, b"Not Found", "no such route", keep)
    if KEY and request.headers.get("authorization", "") != "Bearer " + KEY:
        return error(401, b"Unauthorized", "Incorrect API key provided", keep)
    try:
        req = json.loads(request.body)
    except ValueError:
        req = None
    out = completion(req)
    if out is None:
        return error(400, b"Bad Request", "a model and a list of messages are required", keep)
    await asyncio.sleep(DELAY)
    return reply(200, b"OK", out, keep)


if __name__ == "__main__":
    serve_forever(answer)
