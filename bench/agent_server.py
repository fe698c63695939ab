#!/usr/bin/python3
"""A fake OpenAI-compatible LLM with tool calling, and the tool it calls, for the
agent benchmark (bench/agent_bench.py). Keep-alive, any number of concurrent
connections (fakehttp.py); it keeps only timestamps.

usage: agent_server.py [PORT]   (PORT 0, the default: any free port)
Listens on 127.0.0.1 and prints the port it got on the first line of stdout.

POST /v1/chat/completions: the model "bench-<steps>-<ms>" answers the request
carrying k assistant messages after <ms> milliseconds: with one tool call of "tool"
while k + 1 < steps, else with a final answer. The conversation is named by the
last word of the first user message (the agent's "run <name>").
GET or POST /tool/<name>?ms=<ms>: {"ok": true} after <ms> milliseconds.
GET /gaps: for each conversation, the milliseconds between each answer this
server sent and the request that followed it (the engine's time between two
calls: reading the answer, storing the step, building the next request), as
{name: [gap, ...]}; DELETE /gaps forgets them.
"""
import asyncio
import json
import time
import urllib.parse

from fakehttp import response, serve_forever

PATH = "/v1/chat/completions"
last_sent = {}  # conversation -> monotonic time its last answer was handed to the socket
gaps = {}


def note_arrival(name):
    t = time.monotonic()
    if name in last_sent:
        gaps.setdefault(name, []).append((t - last_sent.pop(name)) * 1000.0)


def reply(obj, keep):
    return response(200, b"OK", json.dumps(obj, separators=(",", ":")).encode(), keep)


async def answer(request, keep):
    target = urllib.parse.urlsplit(request.target)
    if request.target == "/gaps":
        if request.method == "DELETE":
            gaps.clear()
            last_sent.clear()
        return reply(gaps, keep)
    if target.path.startswith("/tool/"):
        name = target.path[6:]
        note_arrival(name)
        ms = int((urllib.parse.parse_qs(target.query).get("ms") or ["0"])[0])
        if ms:
            await asyncio.sleep(ms / 1000.0)
        last_sent[name] = time.monotonic()
        return reply({"ok": True}, keep)
    if request.method != "POST" or target.path != PATH:
        return response(404, b"Not Found", b"{}", keep)
    req = json.loads(request.body)
    msgs = req["messages"]
    first = next(m["content"] for m in msgs if m["role"] == "user")
    name = first.rsplit(" ", 1)[-1]
    note_arrival(name)
    _, steps, ms = req["model"].split("-")
    if int(ms):
        await asyncio.sleep(int(ms) / 1000.0)
    k = sum(1 for m in msgs if m["role"] == "assistant")
    msg = {"role": "assistant", "content": None}
    if k + 1 < int(steps):
        msg["tool_calls"] = [{"id": "call_%d" % k, "type": "function",
                              "function": {"name": "tool", "arguments": "{\"k\":%d}" % k}}]
        finish = "tool_calls"
    else:
        msg["content"] = "done"
        finish = "stop"
    out = {"id": "chatcmpl-bench", "object": "chat.completion", "created": int(time.time()),
           "model": req["model"], "choices": [{"index": 0, "message": msg, "finish_reason": finish}],
           "usage": {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25}}
    last_sent[name] = time.monotonic()
    return reply(out, keep)


if __name__ == "__main__":
    serve_forever(answer)
