"""The agent node kind: a bounded tool-calling loop (docs/api.md, "More node types").

Driven by FakeAgentLLM (a scripted OpenAI-compatible provider with tool calling) and
FakeHttp (the tools' API):
- a tool call then an answer: output, transcript, usage, the request the tool got, events;
- the tool calls of a step run in parallel;
- bad calls (an unknown tool, arguments that are not JSON, arguments against the schema)
  are answered to the model as error results and counted;
- limits: maxSteps, maxToolCalls, maxCostUsd (a priced model) fail AGENT_LIMIT naming
  the limit, the partial transcript kept; the node's timeoutMs bounds the loop;
- a provider error mid-loop is retried (node retry) without repeating a finished step,
  and a retry never refills a limit;
- a tool's result is cut at 65536 bytes;
- kill -9 during the second tool call: after the restart the first is not run again;
- the config is checked on save;
- with an anthropic credential the loop speaks the Messages API's tool_use.
"""
import json
import time
import uuid

import pytest

from authutil import login, register
from conftest import assert_error, shared_server
from fakes import (FakeAgentLLM, FakeAnthropic, H, check_execution, cost_of, create_workflow, engine_env, node_of, poll,
                   retry, run, start, wait_ended)
from fakes import fake_http, pricing_file  # noqa: F401 (fixtures used by name)
from sseclient import SSE


@pytest.fixture(scope="module")
def agent_llm():
    f = FakeAgentLLM().start()
    yield f
    f.stop()


@pytest.fixture(scope="module")
def srv(tmp_path_factory, agent_llm, pricing_file):
    yield from shared_server(tmp_path_factory, "engine-agent", **engine_env(agent_llm, pricing_file))


@pytest.fixture(scope="module")
def user(srv):
    return register(srv, name="Agent user")


WEATHER = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


def http_tool(name, url, parameters=None, **http):
    return {"name": name, "description": "calls %s" % url, "parameters": parameters or WEATHER,
            "http": dict({"url": url}, **http)}


def agent_node(nid, model, tools, prompt="What is the weather in Paris?", **config):
    conf = dict({"model": model, "messages": [{"role": "system", "content": "You are terse."},
                                              {"role": "user", "content": prompt}],
                 "tools": tools}, **config)
    extra = {k: conf.pop(k) for k in ("retry", "timeoutMs") if k in conf}
    return dict({"id": nid, "type": "agent", "config": conf}, **extra)


def events_of(srv, acct, eid):
    return SSE(srv, "/api/executions/%s/events" % eid, H(acct)).rest(timeout=10)


def tool_messages(req):
    return [m for m in req.json["messages"] if m["role"] == "tool"]


def test_a_tool_call_then_an_answer(srv, user, agent_llm, fake_http):
    model = "agent-weather"
    agent_llm.script(model, [{"tools": [("get_weather", {"city": "Paris"})]},
                             {"content": "Sunny in Paris."}])
    tool = http_tool("get_weather", fake_http.url + "/json?city={{args.city}}&who={{input.who}}",
                     method="POST", body={"asked": "{{args.city}}"})
    w = create_workflow(srv, user, [agent_node("ag", model, [tool])])
    e = check_execution(run(srv, user, w["id"], input={"who": "me"}))
    assert e["status"] == "succeeded", e
    n = node_of(e, "ag")
    out = n["output"]
    assert out["content"] == "Sunny in Paris." and out["finishReason"] == "stop", out
    assert out["steps"] == 2 and out["toolCalls"] == 1, out
    assert out["usage"] == {"promptTokens": 20, "completionTokens": 10, "totalTokens": 30}, out
    assert n["usage"] == out["usage"] and e["usage"] == out["usage"], (n, e["usage"])
    assert n["model"] == model and n["attempts"] == 1, n
    roles = [m["role"] for m in out["transcript"]]
    assert roles == ["system", "user", "assistant", "tool", "assistant"], out["transcript"]
    call = out["transcript"][2]["toolCalls"][0]
    assert call["name"] == "get_weather" and json.loads(call["arguments"]) == {"city": "Paris"}, call
    result = out["transcript"][3]
    assert result["toolCallId"] == call["id"] and result["name"] == "get_weather", result
    got = json.loads(result["content"])
    assert got["status"] == 200 and got["body"]["query"] == {"city": "Paris", "who": "me"}, got
    assert got["body"]["echo"] == {"asked": "Paris"} and got["body"]["method"] == "POST", got
    # the model's second request carried the tool's result for its call
    second = agent_llm.calls(model)[-1]
    sent = tool_messages(second)
    assert len(sent) == 1 and sent[0]["tool_call_id"] == call["id"], second.json
    assert json.loads(sent[0]["content"])["status"] == 200
    assert [t["function"]["name"] for t in second.json["tools"]] == ["get_weather"], second.json
    evs = events_of(srv, user, e["id"])
    agent = [(x["event"], x["data"].get("step")) for x in evs if x["event"].startswith("agent.")]
    assert agent == [("agent.step", 1), ("agent.tool_call", 1), ("agent.tool_result", 1),
                     ("agent.step", 2)], agent
    step1 = [x["data"] for x in evs if x["event"] == "agent.step"][0]
    assert step1["nodeId"] == "ag" and step1["toolCalls"] == 1 and step1["finishReason"] == "tool_calls", step1
    tc = [x["data"] for x in evs if x["event"] == "agent.tool_call"][0]
    assert tc["name"] == "get_weather" and json.loads(tc["arguments"]) == {"city": "Paris"}, tc
    seqs = [x["data"]["seq"] for x in evs if "seq" in x["data"]]
    assert seqs == list(range(1, len(seqs) + 1)), seqs


def test_the_tool_calls_of_a_step_run_in_parallel(srv, user, agent_llm, fake_http):
    """Each call of the step is held by the upstream until all three have arrived: run one
    after another, the first would be answered 504 after FakeHttp.GATE_WAIT seconds."""
    model = "agent-parallel"
    agent_llm.script(model, [{"tools": [("gated", {"city": "a"}), ("gated", {"city": "b"}),
                                        ("gated", {"city": "c"})]}, {"content": "ok"}])
    gate = fake_http.url + "/gate/%s/3" % uuid.uuid4().hex
    w = create_workflow(srv, user, [agent_node("ag", model, [http_tool("gated", gate)])])
    e = check_execution(run(srv, user, w["id"]))
    assert e["status"] == "succeeded" and node_of(e, "ag")["output"]["toolCalls"] == 3, e
    tools = [m for m in node_of(e, "ag")["output"]["transcript"] if m["role"] == "tool"]
    assert [m["toolCallId"] for m in tools] == ["call_0_0", "call_0_1", "call_0_2"], tools
    got = [json.loads(m["content"]) for m in tools]
    assert [g["status"] for g in got] == [200, 200, 200], "the calls ran one after another: %r" % got


def test_bad_calls_are_answered_to_the_model_as_errors(srv, user, agent_llm, fake_http):
    model = "agent-bad-calls"
    agent_llm.script(model, [{"tools": [("nope", {"city": "x"}), ("get_weather", "{not json"),
                                        ("get_weather", {"town": "Paris"}), ("get_weather", {"city": 7})]},
                             {"content": "sorry"}])
    fake_http.clear_requests()
    w = create_workflow(srv, user, [agent_node("ag", model, [http_tool("get_weather", fake_http.url + "/json")])])
    e = check_execution(run(srv, user, w["id"]))
    assert e["status"] == "succeeded", e
    out = node_of(e, "ag")["output"]
    assert out["toolCalls"] == 4 and out["steps"] == 2 and out["content"] == "sorry", out
    sent = tool_messages(agent_llm.calls(model)[-1])
    errors = [json.loads(m["content"])["error"] for m in sent]
    assert len(errors) == 4, sent
    assert "unknown tool" in errors[0] and "nope" in errors[0], errors
    assert "not a JSON object" in errors[1], errors
    assert "city" in errors[2] and "required" in errors[2], errors
    assert "city" in errors[3] and "string" in errors[3], errors
    assert fake_http.requests(path="/json") == [], "a bad call reached the tool"


def test_max_steps(srv, user, agent_llm, fake_http):
    model = "agent-loops"
    agent_llm.script(model, [{"tools": [("get_weather", {"city": "P%d" % k})]} for k in range(10)])
    w = create_workflow(srv, user, [agent_node("ag", model, [http_tool("get_weather", fake_http.url + "/json")],
                                               maxSteps=3)])
    e = check_execution(run(srv, user, w["id"]))
    assert e["status"] == "failed" and e["error"]["code"] == "AGENT_LIMIT", e
    n = node_of(e, "ag")
    assert n["error"]["details"] == {"limit": "maxSteps", "max": 3}, n["error"]
    assert n["output"]["steps"] == 3 and n["output"]["toolCalls"] == 3, n["output"]
    assert [m["role"] for m in n["output"]["transcript"]].count("tool") == 3, n["output"]
    assert n["usage"]["totalTokens"] == 45 and n["attempts"] == 1, n
    assert len(agent_llm.calls(model)) == 3


def test_max_tool_calls(srv, user, agent_llm, fake_http):
    model = "agent-greedy"
    agent_llm.script(model, [{"tools": [("get_weather", {"city": "a"})]},
                             {"tools": [("get_weather", {"city": "b"}), ("get_weather", {"city": "c"})]}])
    fake_http.clear_requests()
    w = create_workflow(srv, user, [agent_node("ag", model, [http_tool("get_weather", fake_http.url + "/json")],
                                               maxToolCalls=2)])
    e = check_execution(run(srv, user, w["id"]))
    n = node_of(e, "ag")
    assert e["status"] == "failed" and n["error"]["code"] == "AGENT_LIMIT", e
    assert n["error"]["details"] == {"limit": "maxToolCalls", "max": 2}, n["error"]
    assert n["output"]["toolCalls"] == 3 and n["output"]["steps"] == 2, n["output"]
    assert len(fake_http.requests(path="/json")) == 1, "a call of the step past the limit ran"


def test_max_cost_usd_with_a_priced_model(srv, user, agent_llm, fake_http):
    agent_llm.script("test-model", [{"tools": [("get_weather", {"city": "x%d" % k})]} for k in range(5)])
    one = cost_of("test-model", 10, 5)
    w = create_workflow(srv, user, [agent_node("ag", "test-model",
                                               [http_tool("get_weather", fake_http.url + "/json")],
                                               maxCostUsd=one * 1.5)])
    e = check_execution(run(srv, user, w["id"]))
    n = node_of(e, "ag")
    assert e["status"] == "failed" and n["error"]["code"] == "AGENT_LIMIT", e
    assert n["error"]["details"]["limit"] == "maxCostUsd", n["error"]
    assert n["output"]["steps"] == 2, n["output"]
    assert n["costUsd"] == pytest.approx(2 * one) and e["costUsd"] == pytest.approx(2 * one), (n, e)


def test_a_provider_error_mid_loop_is_retried_without_repeating_a_step(srv, user, agent_llm, fake_http):
    model = "agent-flaky"
    agent_llm.script(model, [{"tools": [("count", {"city": "x"})]},
                             {"fail": 500, "times": 1, "content": "recovered"}])
    w = create_workflow(srv, user, [agent_node("ag", model, [http_tool("count", fake_http.url + "/count/flaky-agent")],
                                               retry=retry(3, 50))])
    e = check_execution(run(srv, user, w["id"]))
    assert e["status"] == "succeeded", e
    n = node_of(e, "ag")
    assert n["attempts"] == 2 and n["output"]["content"] == "recovered", n
    assert n["output"]["steps"] == 2 and n["output"]["toolCalls"] == 1, n["output"]
    assert fake_http.hits("flaky-agent") == 1, "the finished tool call ran again"
    assert n["usage"]["totalTokens"] == 30, n
    assert len(agent_llm.calls(model)) == 3  # answer, failure, answer
    evs = [x["event"] for x in events_of(srv, user, e["id"])]
    assert evs.count("node.retrying") == 1 and evs.count("agent.step") == 2, evs


def test_a_retry_never_refills_a_limit(srv, user, agent_llm, fake_http):
    model = "agent-refill"
    agent_llm.script(model, [{"tools": [("get_weather", {"city": "a"})]},
                             {"fail": 503, "times": 1, "tools": [("get_weather", {"city": "b"})]},
                             {"content": "never"}])
    w = create_workflow(srv, user, [agent_node("ag", model, [http_tool("get_weather", fake_http.url + "/json")],
                                               maxSteps=2, retry=retry(3, 50))])
    e = check_execution(run(srv, user, w["id"]))
    n = node_of(e, "ag")
    assert e["status"] == "failed" and n["error"]["details"] == {"limit": "maxSteps", "max": 2}, n
    assert n["attempts"] == 2 and n["output"]["steps"] == 2, n


def test_a_tool_result_is_cut_at_64_kib(srv, user, agent_llm, fake_http):
    model = "agent-big"
    agent_llm.script(model, [{"tools": [("big", {"city": "x"})]}, {"content": "read it"}])
    w = create_workflow(srv, user, [agent_node("ag", model, [http_tool("big", fake_http.url + "/big/100000")])])
    e = check_execution(run(srv, user, w["id"]))
    assert e["status"] == "succeeded", e
    sent = tool_messages(agent_llm.calls(model)[-1])[0]["content"]
    assert len(sent.encode()) == 65536 and sent.startswith('{"status":200'), len(sent)


def test_the_node_timeout_bounds_the_loop(srv, user, agent_llm, fake_http):
    model = "agent-slow-tool"
    agent_llm.script(model, [{"tools": [("slow", {"city": "x"})]}, {"content": "late"}])
    w = create_workflow(srv, user, [agent_node("ag", model, [http_tool("slow", fake_http.url + "/delay/3000")],
                                               timeoutMs=700, retry=retry(3, 10))])
    t0 = time.monotonic()
    e = check_execution(run(srv, user, w["id"]))
    assert time.monotonic() - t0 < 2.5
    n = node_of(e, "ag")
    assert e["status"] == "failed" and n["error"]["code"] == "TIMEOUT" and n["attempts"] == 1, n
    assert n["output"]["steps"] == 1, n["output"]


def test_the_config_is_checked_on_save(srv, user, fake_http):
    good = http_tool("t", fake_http.url + "/json")
    cases = [
        ({"tools": [dict(good, parameters={"type": "object", "properties": {"a": {"$ref": "#/x"}}})]},
         "definition.nodes[0].config.tools[0].parameters"),
        ({"tools": [dict(good, name="bad name")]}, "definition.nodes[0].config.tools[0].name"),
        ({"tools": [good, good]}, "definition.nodes[0].config.tools[1].name"),
        ({"tools": [{k: v for k, v in good.items() if k != "http"}]}, "definition.nodes[0].config.tools[0].http"),
        ({"tools": [good], "maxSteps": 51}, "definition.nodes[0].config.maxSteps"),
        ({"tools": [good], "maxToolCalls": 0}, "definition.nodes[0].config.maxToolCalls"),
        ({"tools": [good], "maxCostUsd": 0}, "definition.nodes[0].config.maxCostUsd"),
    ]
    for conf, field in cases:
        node = agent_node("ag", "m", **conf)
        r = srv.post("/api/workflows", json={"name": "bad agent", "definition": {"nodes": [node], "edges": []}},
                     headers=H(user))
        assert_error(r, 400, "VALIDATION_ERROR")
        assert field in [d["field"] for d in r.json()["error"]["details"]], (field, r.json())
    # {{args...}} belongs to an agent tool's request only
    bad = {"id": "t", "type": "transform", "config": {"output": {"x": "{{args.city}}"}}}
    r = srv.post("/api/workflows", json={"name": "args", "definition": {"nodes": [bad], "edges": []}},
                 headers=H(user))
    assert_error(r, 400, "VALIDATION_ERROR")
    assert "args" in r.text


def test_kill_during_the_second_tool_call_runs_only_the_unfinished_one(aop_server, agent_llm, fake_http,
                                                                      pricing_file):
    env = engine_env(agent_llm, pricing_file, EXECUTION_LEASE_MS="2000")
    s1 = aop_server(**env)
    u = register(s1)
    model = "agent-crash"
    agent_llm.script(model, [{"tools": [("fast", {"city": "a"}), ("slow", {"city": "b"})]}, {"content": "done"}])
    fake_http.clear_requests()
    w = create_workflow(s1, u, [agent_node("ag", model, [http_tool("fast", fake_http.url + "/count/crash-fast"),
                                                         http_tool("slow", fake_http.url + "/delay/2500")])])
    eid = start(s1, u, w["id"])
    deadline = time.monotonic() + 10
    while not (fake_http.hits("crash-fast") == 1 and fake_http.requests(path="/delay/2500")):
        assert time.monotonic() < deadline, "the tools never ran"
        time.sleep(0.02)
    time.sleep(0.3)  # the first result is committed while the second is still in flight
    s1.kill()
    s2 = aop_server(**env)
    u = login(s2, u["_email"])
    e = check_execution(wait_ended(s2, u, eid, timeout=30))
    assert e["status"] == "succeeded", e
    out = node_of(e, "ag")["output"]
    assert out["content"] == "done" and out["steps"] == 2 and out["toolCalls"] == 2, out
    assert fake_http.hits("crash-fast") == 1, "the finished tool call ran again"
    assert len(fake_http.requests(path="/delay/2500")) == 2, "the unfinished one did not run again"
    assert len(agent_llm.calls(model)) == 2, "a committed model answer was asked again"
    tools = [m for m in out["transcript"] if m["role"] == "tool"]
    assert [m["name"] for m in tools] == ["fast", "slow"], tools


ANTHROPIC_KEY = "sk-ant-agent-0123456789"


def test_anthropic_tool_use(srv, user, fake_http):
    with FakeAnthropic(key=ANTHROPIC_KEY) as claude:
        model = "claude-agent"
        claude.script_tools(model, [{"content": "Let me look.", "tools": [("get_weather", {"city": "Oslo"}),
                                                                          ("get_weather", {"city": "Rome"})]},
                                    {"content": "Cold in Oslo, warm in Rome."}])
        r = srv.post("/api/credentials", json={"name": "claude-agent", "type": "anthropic",
                                               "data": {"apiKey": ANTHROPIC_KEY}, "baseUrl": claude.base_url},
                     headers=H(user))
        assert r.status_code == 201, r.text
        w = create_workflow(srv, user, [agent_node("ag", model, [http_tool("get_weather", fake_http.url + "/json?c={{args.city}}")],
                                                   credentialId=r.json()["id"], maxTokens=300)])
        e = check_execution(run(srv, user, w["id"]))
        assert e["status"] == "succeeded", e
        out = node_of(e, "ag")["output"]
        assert out["content"] == "Cold in Oslo, warm in Rome." and out["finishReason"] == "end_turn", out
        assert out["steps"] == 2 and out["toolCalls"] == 2, out
        assert out["usage"] == {"promptTokens": 24, "completionTokens": 14, "totalTokens": 38}, out
        first, second = claude.calls(model)
        assert first.json["system"] == "You are terse." and first.json["max_tokens"] == 300, first.json
        assert first.json["tools"][0] == {"name": "get_weather", "description": "calls %s" % (fake_http.url + "/json?c={{args.city}}"),
                                          "input_schema": WEATHER}, first.json["tools"]
        turns = second.json["messages"]
        assert [t["role"] for t in turns] == ["user", "assistant", "user"], turns
        uses = [b for b in turns[1]["content"] if b["type"] == "tool_use"]
        assert [(b["id"], b["input"]) for b in uses] == [("toolu_0_0", {"city": "Oslo"}),
                                                         ("toolu_0_1", {"city": "Rome"})], turns[1]
        results = turns[2]["content"]
        assert [b["tool_use_id"] for b in results] == ["toolu_0_0", "toolu_0_1"], results
        assert json.loads(results[1]["content"])["body"]["query"] == {"c": "Rome"}, results


# ---------------------------------------------------------------- workflow tools

LOOKUP = {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}


def wf_tool(name, workflow_id):
    return {"name": name, "description": "runs a workflow", "parameters": LOOKUP, "workflowId": workflow_id}


def test_a_workflow_tool_runs_a_child_and_its_spend_counts_once(srv, user, agent_llm):
    from authutil import admin_login
    agent_llm.script("cheap-model", [{"content": "child says hi"}])
    agent_llm.script("agent-wf", [{"tools": [("lookup", {"q": "x"})]}, {"content": "ok"}])
    child = create_workflow(srv, user, [{"id": "ask", "type": "llm", "config": {
        "model": "cheap-model", "messages": [{"role": "user", "content": "about {{input.q}}"}]}}])
    w = create_workflow(srv, user, [agent_node("ag", "agent-wf", [wf_tool("lookup", child["id"])])])
    adm = admin_login(srv)
    before = srv.get("/api/executions/analytics/summary", headers=H(adm)).json()
    e = check_execution(run(srv, user, w["id"]))
    assert e["status"] == "succeeded", e
    n = node_of(e, "ag")
    out = n["output"]
    assert out["content"] == "ok" and out["toolCalls"] == 1, out
    result = [m for m in out["transcript"] if m["role"] == "tool"][0]
    got = json.loads(result["content"])
    assert got["ask"]["content"] == "child says hi", got
    kids = srv.get("/api/executions", headers=H(user), params={"workflowId": child["id"]}).json()["data"]
    assert len(kids) == 1, kids
    kid = srv.get("/api/executions/%s" % kids[0]["id"], headers=H(user)).json()
    assert kid["parentExecutionId"] == e["id"] and kid["depth"] == 1 and kid["trigger"] == "workflow", kid
    assert kid["input"] == {"q": "x"}, kid
    child_cost = cost_of("cheap-model", 10, 5)
    assert n["usage"] == {"promptTokens": 30, "completionTokens": 15, "totalTokens": 45}, n
    assert n["costUsd"] == pytest.approx(child_cost) and e["costUsd"] == pytest.approx(child_cost), (n, e)
    after = srv.get("/api/executions/analytics/summary", headers=H(adm)).json()
    assert after["usage"]["totalTokens"] - before["usage"]["totalTokens"] == 45, (before, after)
    assert after["costUsd"] - before["costUsd"] == pytest.approx(child_cost), (before, after)


def test_a_failed_child_is_an_error_result_and_permission_is_checked(srv, user, agent_llm):
    from fakes import delay_node
    agent_llm.script("agent-wf-fail", [{"tools": [("lookup", {"q": "not a number"})]}, {"content": "it failed"}])
    child = create_workflow(srv, user, [delay_node("d", "{{input.q}}")])
    w = create_workflow(srv, user, [agent_node("ag", "agent-wf-fail", [wf_tool("lookup", child["id"])])])
    e = check_execution(run(srv, user, w["id"]))
    assert e["status"] == "succeeded", e
    result = [m for m in node_of(e, "ag")["output"]["transcript"] if m["role"] == "tool"][0]
    got = json.loads(result["content"])
    assert got["status"] == "failed" and got["error"]["code"] == "INVALID_CONFIG", got
    # a tool naming a workflow the owner may not execute is refused on save
    other = register(srv, name="Someone else")
    theirs = create_workflow(srv, other, [{"id": "t", "type": "transform", "config": {"output": 1}}])
    r = srv.post("/api/workflows", json={"name": "x", "definition": {"nodes": [
        agent_node("ag", "m", [wf_tool("lookup", theirs["id"])])], "edges": []}}, headers=H(user))
    assert_error(r, 400, "VALIDATION_ERROR")
    assert "definition.nodes[0].config.tools[0].workflowId" in [d["field"] for d in r.json()["error"]["details"]]


def test_cancelling_the_agent_cancels_its_workflow_tools_child(srv, user, agent_llm):
    from fakes import cancel, delay_node
    agent_llm.script("agent-wf-slow", [{"tools": [("lookup", {"q": "x"})]}, {"content": "never"}])
    child = create_workflow(srv, user, [delay_node("d", 20000)])
    w = create_workflow(srv, user, [agent_node("ag", "agent-wf-slow", [wf_tool("lookup", child["id"])])])
    eid = start(srv, user, w["id"])
    kids = []
    deadline = time.monotonic() + 10
    while not kids:
        assert time.monotonic() < deadline, "the child never ran"
        kids = [k for k in srv.get("/api/executions", headers=H(user),
                                   params={"workflowId": child["id"]}).json()["data"] if k["status"] == "running"]
        time.sleep(0.03)
    assert cancel(srv, user, eid)["status"] == "cancelled"
    k = wait_ended(srv, user, kids[0]["id"], timeout=5)
    assert k["status"] == "cancelled", k


def test_an_agent_killed_while_its_child_runs_reattaches_to_it(aop_server, agent_llm, pricing_file):
    from fakes import delay_node, transform, chain
    env = engine_env(agent_llm, pricing_file, EXECUTION_LEASE_MS="2000")
    s1 = aop_server(**env)
    u = register(s1)
    agent_llm.script("agent-wf-crash", [{"tools": [("lookup", {"q": "x"})]}, {"content": "back"}])
    child = create_workflow(s1, u, [delay_node("wait", 2500), transform("t", {"done": True})], chain("wait", "t"))
    w = create_workflow(s1, u, [agent_node("ag", "agent-wf-crash", [wf_tool("lookup", child["id"])])])
    eid = start(s1, u, w["id"])
    poll(s1, u, eid, lambda e: len(s1.get("/api/executions", headers=H(u),
                                          params={"workflowId": child["id"]}).json()["data"]) == 1,
         10, "the child queued")
    s1.kill()
    s2 = aop_server(**env)
    u = login(s2, u["_email"])
    e = check_execution(wait_ended(s2, u, eid, timeout=30))
    assert e["status"] == "succeeded" and node_of(e, "ag")["output"]["content"] == "back", e
    kids = s2.get("/api/executions", headers=H(u), params={"workflowId": child["id"]}).json()["data"]
    assert len(kids) == 1 and kids[0]["status"] == "succeeded", "a second child started: %r" % kids
    result = [m for m in node_of(e, "ag")["output"]["transcript"] if m["role"] == "tool"][0]
    assert json.loads(result["content"]) == {"t": {"done": True}}, result


def test_stream_sends_llm_delta_and_keeps_the_same_output(srv, user, agent_llm, fake_http):
    """stream: true: every model call streams, its text goes out as llm.delta, and the
    tool calls read from the stream run as they would without it."""
    turns = [{"content": "Checking.", "tools": [("get_weather", {"city": "Lima"})], "delay": 0.6},
             {"content": "Warm in Lima."}]
    agent_llm.script("agent-stream", turns)
    agent_llm.script("agent-nostream", turns)
    tool = http_tool("get_weather", fake_http.url + "/json?city={{args.city}}")
    streamed = create_workflow(srv, user, [agent_node("ag", "agent-stream", [tool], stream=True)])
    eid = start(srv, user, streamed["id"])
    sse = SSE(srv, "/api/executions/%s/events" % eid, H(user))
    evs = sse.rest(timeout=15)
    e = check_execution(wait_ended(srv, user, eid))
    assert e["status"] == "succeeded", e
    text = "".join(x["data"]["text"] for x in evs if x["event"] == "llm.delta")
    assert text == "Checking.Warm in Lima.", evs
    assert all(c.json.get("stream") is True for c in agent_llm.calls("agent-stream"))
    plain = create_workflow(srv, user, [agent_node("ag", "agent-nostream", [tool])])
    p = check_execution(run(srv, user, plain["id"]))
    a, b = node_of(e, "ag")["output"], node_of(p, "ag")["output"]
    assert json.loads(a["transcript"][3]["content"])["body"]["query"] == {"city": "Lima"}, a
    for k in ("content", "steps", "toolCalls", "finishReason", "usage"):
        assert a[k] == b[k], (k, a, b)
    assert [m["role"] for m in a["transcript"]] == [m["role"] for m in b["transcript"]]


# ---------------------------------------------------------------- bounds

def test_bounds_of_the_config_and_of_an_event(srv, user, agent_llm, fake_http):
    """32 tools are taken and 33 refused; an http tool's credential is checked on save as
    an http node's is; a call's arguments in agent.tool_call are cut at 2048 bytes."""
    tools = [http_tool("t%d" % k, fake_http.url + "/json") for k in range(33)]
    body = {"name": "many", "definition": {"nodes": [agent_node("ag", "m", tools[:32])], "edges": []}}
    assert srv.post("/api/workflows", json=body, headers=H(user)).status_code == 201
    body["definition"]["nodes"] = [agent_node("ag", "m", tools)]
    r = srv.post("/api/workflows", json=body, headers=H(user))
    assert_error(r, 400, "VALIDATION_ERROR")
    assert "definition.nodes[0].config.tools" in [d["field"] for d in r.json()["error"]["details"]]
    cred = http_tool("c", fake_http.url + "/json", credentialId="0190b2a4-0000-7000-8000-000000000000")
    body["definition"]["nodes"] = [agent_node("ag", "m", [cred])]
    r = srv.post("/api/workflows", json=body, headers=H(user))
    assert_error(r, 400, "VALIDATION_ERROR")
    assert "definition.nodes[0].config.tools[0].http.credentialId" in [
        d["field"] for d in r.json()["error"]["details"]], r.json()

    long_city = "x" * 3000
    agent_llm.script("agent-long-args", [{"tools": [("get_weather", {"city": long_city})]}, {"content": "ok"}])
    w = create_workflow(srv, user, [agent_node("ag", "agent-long-args", [http_tool("get_weather", fake_http.url + "/json")])])
    e = check_execution(run(srv, user, w["id"]))
    assert e["status"] == "succeeded", e
    call = [x["data"] for x in events_of(srv, user, e["id"]) if x["event"] == "agent.tool_call"][0]
    assert len(call["arguments"].encode()) == 2048 and call["arguments"].startswith('{"city": "xxx'), call
    assert json.loads(node_of(e, "ag")["output"]["transcript"][2]["toolCalls"][0]["arguments"])["city"] == long_city


def test_the_transcript_is_held_within_the_memory_limits(aop_server, agent_llm, fake_http, pricing_file):
    """NODE_OUTPUT_MAX_BYTES 20000: a transcript that would pass it with a 64 KiB tool
    result fails the node OUTPUT_TOO_LARGE instead of growing."""
    s = aop_server(**engine_env(agent_llm, pricing_file, NODE_OUTPUT_MAX_BYTES="20000"))
    u = register(s)
    agent_llm.script("agent-memory", [{"tools": [("big", {"city": "x"})]}, {"content": "never"}])
    w = create_workflow(s, u, [agent_node("ag", "agent-memory", [http_tool("big", fake_http.url + "/big/100000")])])
    e = check_execution(run(s, u, w["id"]))
    n = node_of(e, "ag")
    assert e["status"] == "failed" and n["error"]["code"] == "OUTPUT_TOO_LARGE", n
    assert len(agent_llm.calls("agent-memory")) == 1, "the model was called with a transcript past the limit"


def test_an_agent_calling_itself_stops_at_the_depth_bound(srv, user, agent_llm):
    """An agent whose workflow tool runs its own workflow: each level calls the tool once;
    at WORKFLOW_MAX_DEPTH (8) the call is answered DEPTH_EXCEEDED and every level ends."""
    agent_llm.script("agent-recurse", [{"tools": [("lookup", {"q": "deeper"})]}, {"content": "done"}])
    w = create_workflow(srv, user, [{"id": "t", "type": "transform", "config": {"output": 1}}])
    body = {"definition": {"nodes": [agent_node("ag", "agent-recurse", [wf_tool("lookup", w["id"])])], "edges": []}}
    r = srv.request("PUT", "/api/workflows/%s" % w["id"], headers=H(user), json=body)
    assert r.status_code == 200, r.text
    e = check_execution(run(srv, user, w["id"], timeout=60))
    assert e["status"] == "succeeded", e
    runs = srv.get("/api/executions", headers=H(user), params={"workflowId": w["id"], "limit": 100}).json()["data"]
    assert sorted(x["depth"] for x in runs) == list(range(9)), runs
    deepest = [x for x in runs if x["depth"] == 8][0]
    d = srv.get("/api/executions/%s" % deepest["id"], headers=H(user)).json()
    result = [m for m in node_of(d, "ag")["output"]["transcript"] if m["role"] == "tool"][0]
    assert "DEPTH_EXCEEDED" in json.loads(result["content"])["error"], result
