#!/usr/bin/python3
"""Creates workflows through the API for the benchmark and prints their ids.

usage: seed_workflows.py BASE_URL TOKEN COUNT [THREADS]
Each workflow has a 12-node definition (transform, condition, http, llm,
delay) like the ones users build; names, tags and statuses vary.
"""
import concurrent.futures
import json
import sys
import threading

import requests

STATUSES = ("draft", "active", "archived")
TAGS = ("support", "sales", "ops", "research", "billing", "nightly")


def definition():
    nodes = [{"id": "start", "type": "transform", "config": {"output": {"q": "{{input.question}}"}}},
             {"id": "route", "type": "condition",
              "config": {"left": "{{nodes.start.output.q}}", "op": "exists"}}]
    edges = [{"from": "start", "to": "route"}]
    prev = "route"
    for i in range(10):
        kind = ("http", "llm", "transform", "delay")[i % 4]
        config = {
            "http": {"method": "POST", "url": "https://api.example.com/items",
                     "headers": {"Accept": "application/json"},
                     "body": {"q": "{{input.question}}"}},
            "llm": {"model": "gpt-4o-mini",
                    "messages": [{"role": "system", "content": "Answer briefly."},
                                 {"role": "user", "content": "{{input.question}}"}]},
            "transform": {"output": {"step": i, "prev": "{{nodes.%s.output}}" % prev}},
            "delay": {"ms": 10},
        }[kind]
        nid = "n%d" % i
        nodes.append({"id": nid, "type": kind, "config": config})
        edge = {"from": prev, "to": nid}
        if prev == "route":
            edge["when"] = True
        edges.append(edge)
        prev = nid
    return {"nodes": nodes, "edges": edges}


def main():
    base, token, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    threads = int(sys.argv[4]) if len(sys.argv) > 4 else 8
    local = threading.local()
    body_def = definition()

    def create(i):
        s = getattr(local, "s", None)
        if s is None:
            s = local.s = requests.Session()
            s.headers.update({"Authorization": "Bearer " + token})
        r = s.post(base + "/api/workflows", json={
            "name": "Workflow %05d" % i, "description": "Benchmark workflow number %d" % i,
            "tags": list(dict.fromkeys([TAGS[i % len(TAGS)], TAGS[(i // 7) % len(TAGS)]])),
            "status": STATUSES[i % 3], "definition": body_def})
        if r.status_code != 201:
            raise SystemExit("create failed: %d %s" % (r.status_code, r.text[:200]))
        return r.json()["id"]

    with concurrent.futures.ThreadPoolExecutor(threads) as ex:
        for wid in ex.map(create, range(count)):
            print(wid)


if __name__ == "__main__":
    main()
