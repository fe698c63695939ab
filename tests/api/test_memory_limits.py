"""Memory and storage budgets of executions (API.md, "Limits, quotas and fairness"):
a node's output capped in memory (NODE_OUTPUT_MAX_BYTES -> OUTPUT_TOO_LARGE), an
execution's in-memory state capped (EXECUTION_MEMORY_MAX_BYTES -> MEMORY_LIMIT), the
stored output of an execution capped in all (EXECUTION_STORED_MAX_BYTES), list items
without `input`, and the refusals on /metrics.

The servers' peak resident memory is read from /proc/<pid>/status (VmHWM) of the
process the fixture started; the bounds are generous (the test build runs under
AddressSanitizer) and no assertion is about time."""
import base64
import os

import pytest

from authutil import register
from conftest import db_dump
from fakes import (H, assert_node_error, chain, check_execution, condition, create_workflow, edge, engine_env,
                   get_execution, list_executions, node_of, run, run_nodes, start, transform,
                   wait_ended)

RSS_BOUND_MB = 300


def peak_rss_mb(srv):
    """The server's peak resident set so far (VmHWM), in MiB."""
    with open("/proc/%d/status" % srv.pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    raise AssertionError("no VmHWM in /proc/%d/status" % srv.pid)


def noise(n):
    """n bytes of incompressible ASCII, so that no layer below can shrink it."""
    return base64.b64encode(os.urandom(n * 3 // 4 + 3)).decode("ascii")[:n]


def metric(srv, sample):
    """The value of one sample of /metrics, named with its labels (0 when absent)."""
    for line in srv.get("/metrics").text.splitlines():
        name, _, value = line.rpartition(" ")
        if name == sample:
            return float(value)
    return 0.0


# ---------------------------------------------------------------- the audit's findings

def test_copies_of_a_large_input_fail_output_too_large(aop_server):
    """One transform whose output lists 2,000 copies of a 200 KB input: 400 MB if
    it were built. It fails OUTPUT_TOO_LARGE without ever holding it."""
    srv = aop_server(**engine_env())
    user = register(srv)
    w = create_workflow(srv, user, [transform("t", ["{{input.x}}"] * 2000)])
    e = run(srv, user, w["id"], input={"x": "x" * 200000}, timeout=120)
    check_execution(e)
    n = assert_node_error(e, "t", "OUTPUT_TOO_LARGE")
    assert n["attempts"] == 1 and n["output"] is None, n
    assert "NODE_OUTPUT_MAX_BYTES" in n["error"]["message"], n["error"]
    peak = peak_rss_mb(srv)
    assert peak < RSS_BOUND_MB, "server peaked at %.0f MiB" % peak


def test_doubling_chain_is_refused_and_the_server_carries_on(aop_server):
    """21 nodes, each holding its predecessor's output twice: 2^21 times the input
    if copied. The execution fails, memory stays bounded, another user's next
    execution still succeeds."""
    srv = aop_server(**engine_env())
    user = register(srv)
    nodes = [transform("n0", "{{input.x}}")]
    for i in range(1, 21):
        ref = "{{nodes.n%d.output}}" % (i - 1)
        nodes.append(transform("n%d" % i, {"k0": ref, "k1": ref}))
    w = create_workflow(srv, user, nodes, chain(*["n%d" % i for i in range(21)]))
    e = run(srv, user, w["id"], input={"x": "y" * 1000}, timeout=120)
    check_execution(e)
    assert e["status"] == "failed", e["error"]
    code, nid = e["error"]["code"], e["error"]["nodeId"]
    assert code in ("OUTPUT_TOO_LARGE", "MEMORY_LIMIT"), e["error"]
    assert_node_error(e, nid, code)
    assert node_of(e, "n20")["status"] == "skipped", node_of(e, "n20")
    peak = peak_rss_mb(srv)
    assert peak < RSS_BOUND_MB, "server peaked at %.0f MiB" % peak

    other = register(srv)
    _, ok = run_nodes(srv, other, [transform("a", {"v": "{{input.v}}"}), transform("b", "{{nodes.a.output}}")],
                      [edge("a", "b")], input={"v": 7})
    assert ok["status"] == "succeeded" and ok["output"] == {"b": {"v": 7}}, ok


STORED_MAX = 1024 * 1024


def test_stored_output_is_capped_per_execution(aop_server):
    """50 nodes each outputting a 200 KB input (10 MB per execution): the database
    grows by about EXECUTION_STORED_MAX_BYTES per execution, not by 10 MB, and GET
    of the execution stays within the cap plus its input and a little overhead."""
    srv = aop_server(**engine_env(EXECUTION_STORED_MAX_BYTES=str(STORED_MAX)))
    user = register(srv)
    w = create_workflow(srv, user, [transform("n%02d" % i, "{{input.x}}") for i in range(50)])
    before = len(db_dump(srv))
    x = noise(200000)
    for _ in range(2):
        e = run(srv, user, w["id"], input={"x": x}, timeout=120)
        assert e["status"] == "succeeded", e["error"]
        r = srv.get("/api/executions/%s" % e["id"], headers=H(user))
        assert r.status_code == 200
        assert len(r.content) < STORED_MAX + len(x) + 256 * 1024, len(r.content)
        full = r.json()
        check_execution(full)
        whole = [n for n in full["nodes"] if n["output"] == x]
        marked = [n for n in full["nodes"] if isinstance(n["output"], dict) and n["output"].get("truncated")]
        assert len(whole) + len(marked) == 50, [n["output"] for n in full["nodes"]][:3]
        assert 1 <= len(whole) <= STORED_MAX // len(x), len(whole)
        for n in marked:
            assert n["output"]["sizeBytes"] == len(x) + 2 and isinstance(n["output"]["preview"], str), n
    grown = len(db_dump(srv)) - before
    assert grown < 4 * (STORED_MAX + len(x)) + 4 * 1024 * 1024, "database grew by %d bytes" % grown


def test_small_outputs_stay_whole_past_the_stored_budget(aop_server):
    """Once the stored budget is spent, a large output is stored as the marker, but one of
    1 KiB or less (a condition's result, read again on a resume) is stored whole."""
    srv = aop_server(**engine_env(EXECUTION_STORED_MAX_BYTES="1024"))
    user = register(srv)
    nodes = [transform("big", "{{input.x}}"), condition("c", "{{input.flag}}", "eq", True),
             transform("yes", {"ok": 1})]
    _, e = run_nodes(srv, user, nodes, [edge("big", "c"), edge("c", "yes", when=True)],
                     input={"x": "b" * 5000, "flag": True})
    assert e["status"] == "succeeded", e["error"]
    big = node_of(e, "big")["output"]
    assert isinstance(big, dict) and big.get("truncated") is True and big["sizeBytes"] == 5002, str(big)[:200]
    assert node_of(e, "c")["output"] == {"result": True}
    assert e["output"] == {"yes": {"ok": 1}}


LIMITED = dict(NODE_OUTPUT_MAX_BYTES="65536", EXECUTION_MEMORY_MAX_BYTES="262144")


@pytest.fixture
def limited(aop_server):
    return aop_server(**engine_env(**LIMITED))


def test_memory_limit_fails_the_node_and_bounds_memory_bytes(limited):
    """Ten 50 KB outputs do not fit 256 KiB: a node fails MEMORY_LIMIT (not retried)
    and memoryBytes stays within the limit plus one node's output cap."""
    user = register(limited)
    nodes = [transform("n%d" % i, "{{input.x}}", retry={"maxAttempts": 3, "backoffMs": 0}) for i in range(10)]
    w = create_workflow(limited, user, nodes, chain(*["n%d" % i for i in range(10)]))
    e = run(limited, user, w["id"], input={"x": "m" * 50000}, timeout=60)
    check_execution(e)
    assert e["status"] == "failed", "succeeded holding %d bytes" % e["memoryBytes"]
    n = assert_node_error(e, e["error"]["nodeId"], "MEMORY_LIMIT")
    assert n["attempts"] == 1, n
    assert "EXECUTION_MEMORY_MAX_BYTES" in n["error"]["message"], n["error"]
    assert 0 < e["memoryBytes"] <= 262144 + 65536, e["memoryBytes"]
    # what fits still runs, and reports what it held
    w2 = create_workflow(limited, user, nodes[:3], chain("n0", "n1", "n2"))
    ok = run(limited, user, w2["id"], input={"x": "m" * 50000}, timeout=60)
    assert ok["status"] == "succeeded", ok["error"]
    assert 150000 < ok["memoryBytes"] <= 262144, ok["memoryBytes"]


def test_output_cap_applies_to_every_node_in_memory(limited):
    """A 70 KB output passes NODE_OUTPUT_MAX_BYTES (64 KiB): OUTPUT_TOO_LARGE, not
    retried; one of 60 KB is fine."""
    user = register(limited)
    _, e = run_nodes(limited, user, [transform("t", {"v": "{{input.x}}"}, retry={"maxAttempts": 3})],
                     input={"x": "o" * 70000})
    n = assert_node_error(e, "t", "OUTPUT_TOO_LARGE")
    assert n["attempts"] == 1 and n["output"] is None, n
    # a rendered string made of text counts too
    _, e = run_nodes(limited, user, [transform("t", {"v": "a {{input.x}} b"})], input={"x": "o" * 70000})
    assert_node_error(e, "t", "OUTPUT_TOO_LARGE")
    _, ok = run_nodes(limited, user, [transform("t", {"v": "{{input.x}}"})], input={"x": "o" * 60000})
    assert ok["status"] == "succeeded" and ok["output"]["t"]["v"] == "o" * 60000


def test_refusals_and_memory_show_on_metrics(limited):
    user = register(limited)
    base_out = metric(limited, 'aop_node_limit_refusals_total{reason="OUTPUT_TOO_LARGE"}')
    base_mem = metric(limited, 'aop_node_limit_refusals_total{reason="MEMORY_LIMIT"}')
    base_runs = metric(limited, "aop_execution_memory_bytes_count")
    _, e = run_nodes(limited, user, [transform("t", "{{input.x}}")], input={"x": "o" * 70000})
    assert_node_error(e, "t", "OUTPUT_TOO_LARGE")
    nodes = [transform("n%d" % i, "{{input.x}}") for i in range(10)]
    _, e = run_nodes(limited, user, nodes, chain(*["n%d" % i for i in range(10)]), input={"x": "m" * 50000})
    assert e["status"] == "failed" and e["error"]["code"] == "MEMORY_LIMIT", e["error"]
    assert metric(limited, 'aop_node_limit_refusals_total{reason="OUTPUT_TOO_LARGE"}') == base_out + 1
    assert metric(limited, 'aop_node_limit_refusals_total{reason="MEMORY_LIMIT"}') == base_mem + 1
    assert metric(limited, "aop_execution_memory_bytes_count") == base_runs + 2
    assert metric(limited, "aop_execution_memory_bytes_max") >= e["memoryBytes"] > 0
    text = limited.get("/metrics").text
    assert "# TYPE aop_execution_memory_bytes histogram" in text
    assert 'aop_execution_memory_bytes_bucket{le="+Inf"}' in text


# ---------------------------------------------------------------- lists

def test_list_items_omit_input(aop_server):
    srv = aop_server(**engine_env())
    user = register(srv)
    w = create_workflow(srv, user, [transform("t", {"v": "{{input.v}}"})])
    eid = start(srv, user, w["id"], input={"v": "secret-ish " * 100})
    wait_ended(srv, user, eid)
    items = list_executions(srv, user, workflowId=w["id"])["data"]
    assert [x["id"] for x in items] == [eid]
    assert "input" not in items[0], sorted(items[0])
    check_execution(items[0], listed=True)
    assert get_execution(srv, user, eid)["input"] == {"v": "secret-ish " * 100}
