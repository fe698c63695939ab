"""The web console in a real browser (headless Chromium): sign-in, one's own
workflows, the graph, live executions and the timeline, approvals, charts,
credentials; and throughout, no JavaScript error, no request to another
origin, no secret in the page.

One server (SQLite, a fake LLM) and one browser serve the whole module;
the tests run in file order and build on what the module's fixture made.
With AOP_SCREENSHOT=<path> the timeline test saves a screenshot there
(`make screenshot` writes docs/console.png).
"""
import json
import os
import time

import pytest
import requests

from authutil import ADMIN_EMAIL, ADMIN_PASSWORD, DEFAULT_PASSWORD, bearer, login, make_user
from browser import Browser
from conftest import make_manager
from fakes import (H, create_workflow, delay_node, edge, engine_env, execute, llm_node, poll,
                   start, transform, wait_ended)

# A pricing file of plausible prices, so the costs page shows cents, not dollars per token.
PRICING = {"models": {"gpt-4o-mini": {"inputPerMillion": 15, "outputPerMillion": 60},
                      "claude-haiku": {"inputPerMillion": 8, "outputPerMillion": 40}}}
SECRET = "tok-console-Secret-5a1e0c7e9b3d"
ROTATED = "tok-console-Rotated-77c0ffee42aa"


def approval_node(nid, message):
    return {"id": nid, "type": "approval", "config": {"message": message}}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The server, its accounts and workflows, and the browser."""
    from fakes import FakeLLM
    llm = FakeLLM().start()
    llm.script("gpt-4o-mini", prompt_tokens=1200, completion_tokens=300)
    llm.script("claude-haiku", prompt_tokens=800, completion_tokens=500)
    tmp = tmp_path_factory.mktemp("console")
    pricing = tmp / "pricing.json"
    pricing.write_text(json.dumps(PRICING))
    m = make_manager(tmp)
    srv = m.server(**engine_env(llm=llm, pricing=pricing))
    w = {"srv": srv, "llm": llm}
    w["alice"] = make_user(srv, email="alice-%d@example.com" % srv.port, name="Alice")
    w["bob"] = make_user(srv, email="bob-%d@example.com" % srv.port, name="Bob")
    a = w["alice"]
    w["summarise"] = create_workflow(
        srv, a, name="Summarise support tickets",
        description="Reads a ticket, asks a model for a summary, formats it.",
        nodes=[transform("fetch", {"ticket": "{{input.ticket}}"}),
               llm_node("summarise", "gpt-4o-mini", "Summarise: {{nodes.fetch.output.ticket}}"),
               llm_node("classify", "claude-haiku", "Classify: {{nodes.fetch.output.ticket}}"),
               transform("format", {"summary": "{{nodes.summarise.output.content}}",
                                    "label": "{{nodes.classify.output.content}}"})],
        edges=[edge("fetch", "summarise"), edge("fetch", "classify"),
               edge("summarise", "format"), edge("classify", "format")])
    w["slow"] = create_workflow(
        srv, a, name="Nightly report",
        nodes=[transform("collect", {"rows": 3}), delay_node("crunch", 1500),
               delay_node("render", 1000), transform("publish", {"ok": True})],
        edges=[edge("collect", "crunch"), edge("crunch", "render"), edge("render", "publish")])
    w["quick"] = create_workflow(srv, a, name="Echo", nodes=[transform("echo", {"hi": 1})])
    w["approve"] = create_workflow(
        srv, a, name="Refund approval",
        nodes=[transform("ask", {"amount": 120}), approval_node("manager", "Refund 120 EUR?"),
               transform("refund", {"done": True})],
        edges=[edge("ask", "manager"), edge("manager", "refund", when=True)])
    w["bobs"] = create_workflow(srv, w["bob"], name="Bob private pipeline",
                                nodes=[transform("x", {"y": 1})])
    for i in range(3):
        wait_ended(srv, a, start(srv, a, w["summarise"]["id"], input={"ticket": "printer %d" % i}))
    b = Browser("http://127.0.0.1:%d" % srv.port)
    w["browser"] = b
    try:
        yield w
    finally:
        b.quit()
        m.finalize()
        llm.stop()


@pytest.fixture(autouse=True)
def clean_browser(world, request):
    """After each test: no JavaScript error or failed load in the browser's
    console (a test that expects one drains it itself), and no request to
    anything but the server."""
    yield
    b = world["browser"]
    errors = [e for e in b.console_log() if e["level"] in ("SEVERE", "WARNING")]
    assert not errors, "browser console: %r" % errors
    others = [u for u in b.requests() if not u.startswith(b.base + "/")]
    assert not others, "requests to another origin: %r" % others


def alice(world):
    world["browser"].as_user(world["alice"]["_email"], DEFAULT_PASSWORD)


def test_sign_in(world):
    b = world["browser"]
    a = world["alice"]
    b.open("/console/workflows")
    b.wait_css("#signin")
    b.find("#signin input[name=email]").send_keys(a["_email"])
    b.find("#signin input[name=password]").send_keys("wrong-password-1")
    b.find("#signin button[type=submit]").click()
    b.wait(lambda: "INVALID_CREDENTIALS" in b.text(), what="the refusal")
    # the refused login shows as a failed load (401), and nothing else does
    logged = b.console_log()
    assert all("/api/auth/login" in e["message"] and "401" in e["message"] for e in logged), logged
    b.find("#signin input[name=password]").clear()
    b.find("#signin input[name=password]").send_keys(DEFAULT_PASSWORD)
    b.find("#signin button[type=submit]").click()
    b.wait(lambda: a["_email"] in b.find("#who").text, what="signed in")
    assert b.d.current_url == b.base + "/console/workflows"
    # the access token stays in memory; the tab keeps only a refresh token
    stored = b.js("return Object.assign({}, sessionStorage)")
    assert list(stored) == ["aop.refresh"], stored
    assert b.js("return Object.keys(localStorage).length") == 0
    # a reload stays signed in (the refresh token is exchanged)
    b.open("/console/workflows")
    b.wait(lambda: a["_email"] in b.find("#who").text, what="still signed in after a reload")
    assert b.js("return sessionStorage.getItem('aop.refresh')") != stored["aop.refresh"]


def test_only_ones_own_workflows_are_listed_and_searchable(world):
    b = world["browser"]
    alice(world)
    b.open("/console/workflows")
    b.wait(lambda: len(b.finds("#workflows tbody tr")) == 4, what="alice's four workflows")
    names = {r.find_element("css selector", "td a").text for r in b.finds("#workflows tbody tr")}
    assert names == {"Summarise support tickets", "Nightly report", "Echo", "Refund approval"}, names
    assert "Bob private pipeline" not in b.d.page_source
    b.find("input.search").send_keys("nightly")
    b.wait(lambda: [r.text for r in b.finds("#workflows tbody tr td a")] == ["Nightly report"],
           what="the search narrowing the list")


def test_the_definition_is_drawn_as_a_graph(world):
    b = world["browser"]
    alice(world)
    wf = world["summarise"]
    b.open("/console/workflows/" + wf["id"])  # a deep link loads directly
    b.wait_css("svg.graph")
    nodes = {g.get_attribute("data-node") for g in b.finds("svg.graph g.node")}
    assert nodes == {"fetch", "summarise", "classify", "format"}, nodes
    assert len(b.finds("svg.graph g.edge path")) == 4
    # laid out left to right: fetch before the two calls, format after them
    x = {g.get_attribute("data-node"): g.rect["x"] for g in b.finds("svg.graph g.node")}
    assert x["fetch"] < x["summarise"] == x["classify"] < x["format"], x
    assert b.wait(lambda: len(b.finds("#versions tbody tr")) == 1)


def test_a_new_execution_appears_and_turns_succeeded_without_a_reload(world):
    b, srv, a = world["browser"], world["srv"], world["alice"]
    alice(world)
    b.open("/console/executions")
    b.wait_css("#executions")
    time.sleep(0.5)  # the page's event stream is open
    b.mark()
    eid = start(srv, a, world["slow"]["id"])
    row = '#executions tr[data-id="%s"]' % eid
    b.wait(lambda: b.finds(row), what="the new execution in the list")
    assert "Nightly report v1" in b.find(row).text
    seen = set()

    def status():
        s = b.find(row + " .status").text
        seen.add(s)
        return s == "succeeded"
    b.wait(status, timeout=15, what="succeeded")
    assert "running" in seen or "queued" in seen, seen
    assert b.marked(), "the page was loaded again"


def test_the_timeline_follows_a_running_execution(world):
    b, srv, a = world["browser"], world["srv"], world["alice"]
    alice(world)
    eid = start(srv, a, world["slow"]["id"])
    b.open("/console/executions/" + eid)
    b.wait_css("svg.gantt")
    b.mark()
    bar = lambda n: b.find('svg.gantt g[data-node="%s"]' % n).get_attribute("data-status")
    b.wait(lambda: bar("crunch") == "running", what="crunch running")
    took = lambda n: int(b.find('svg.gantt g[data-node="%s"] .bar-label' % n).text.split()[1])
    t0 = took("crunch")
    time.sleep(0.6)
    # still running, and its bar follows the clock
    assert bar("crunch") == "running"
    assert took("crunch") >= t0 + 400, (t0, took("crunch"))
    b.wait(lambda: bar("render") == "running", what="render running")
    assert bar("crunch") == "succeeded"
    b.wait(lambda: b.find("#exec-status").text == "succeeded", timeout=10, what="the end")
    assert [bar(n) for n in ("collect", "crunch", "render", "publish")] == ["succeeded"] * 4
    assert b.marked(), "the page was loaded again"
    # the nodes' outputs, read once the execution ended
    b.wait(lambda: '"ok": true' in b.find('details[data-node="publish"]').get_attribute("innerHTML"))
    shot = os.environ.get("AOP_SCREENSHOT")
    if shot:
        b.js("window.scrollTo(0, 0)")
        assert b.screenshot(shot) > 10000


def test_approve_from_the_page(world):
    b, srv, a = world["browser"], world["srv"], world["alice"]
    alice(world)
    eid = start(srv, a, world["approve"]["id"])
    poll(srv, a, eid, lambda e: e["status"] == "waiting", what="waiting")
    b.open("/console/approvals")
    item = b.wait_css('li.approval[data-execution="%s"]' % eid)
    assert "Refund 120 EUR?" in item.text
    item.find_element("css selector", "input").send_keys("fine by me")
    item.find_element("css selector", "button.approve").click()
    b.wait(lambda: not b.finds('li.approval[data-execution="%s"]' % eid), what="the approval gone")
    e = wait_ended(srv, a, eid)
    assert e["status"] == "succeeded", e
    out = next(n for n in e["nodes"] if n["nodeId"] == "manager")["output"]
    assert (out["decision"], out["comment"], out["decidedBy"]) == ("approve", "fine by me", a["user"]["id"])


def test_a_non_admin_is_told_costs_are_for_admins(world):
    b = world["browser"]
    alice(world)
    b.open("/console/costs")
    assert "only an admin" in b.wait_css("#costs-admin-only").text


def test_credentials_never_show_their_secret(world):
    b, srv, a = world["browser"], world["srv"], world["alice"]
    alice(world)
    b.open("/console/credentials")
    form = b.wait_css("#new-credential")
    form.find_element("css selector", "input[name=name]").send_keys("ticket system")
    b.js("const s = document.querySelector('#new-credential select[name=type]');"
         "s.value = 'http_bearer'; s.dispatchEvent(new Event('change', {bubbles: true}))")
    b.wait(lambda: b.finds("#new-credential input[name=token]"))
    b.find("#new-credential input[name=token]").send_keys(SECRET)
    b.find("#new-credential input[name=allowedHosts]").send_keys("tickets.example.com")
    b.find("#new-credential button[type=submit]").click()
    row = b.wait_css("#credentials tbody tr")
    assert "…" + SECRET[-4:] in row.text
    assert b.find("#new-credential input[name=name]").get_property("value") == ""
    # rotate: new data from the page
    row.find_element("xpath", ".//button[text()='Rotate']").click()
    b.wait_css("#credentials form.inline input[name=token]").send_keys(ROTATED)
    b.find("#credentials form.inline button[type=submit]").click()
    b.wait(lambda: "…" + ROTATED[-4:] in b.find("#credentials tbody tr").text, what="the new hint")
    for s in (SECRET, ROTATED, a["accessToken"], a["refreshToken"]):
        assert s not in b.d.page_source
        assert not b.js("return [...document.querySelectorAll('input')].some(i => i.value === arguments[0])", s)
    creds = srv.get("/api/credentials", headers=H(a)).json()["data"]
    assert [c["hint"] for c in creds] == ["…" + ROTATED[-4:]]
    # delete, confirmed with a second click
    b.find("#credentials tbody tr").find_element("xpath", ".//button[text()='Delete']").click()
    b.find("#credentials tbody tr").find_element("xpath", ".//button[text()='Really delete']").click()
    b.wait(lambda: not b.finds("#credentials tbody tr"), what="the credential gone")
    assert srv.get("/api/credentials", headers=H(a)).json()["data"] == []


def test_api_keys_of_the_signed_in_user(world):
    b, srv, a = world["browser"], world["srv"], world["alice"]
    alice(world)
    b.open("/console/keys")
    b.wait_css("form.card input[required]").send_keys("deploy bot")
    b.find("form.card button[type=submit]").click()
    key = b.wait_css("#new-key code").text
    assert key.startswith("aop_")
    assert srv.get("/api/auth/me", headers={"X-API-Key": key}).json()["email"] == a["_email"]
    b.find("#new-key button").click()
    assert key not in b.d.page_source
    assert [r.find_element("css selector", "td").text for r in b.finds("#keys tbody tr")] == ["deploy bot"]


def test_charts_render_for_an_admin(world):
    b = world["browser"]
    alice(world)
    b.sign_out()
    assert b.js("return sessionStorage.length") == 0
    b.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)
    b.open("/console/costs")
    b.wait(lambda: len(b.finds("figure.chart canvas")) == 4, what="four charts")
    titles = [f.get_attribute("data-chart") for f in b.finds("figure.chart")]
    assert titles == ["Cost by day (USD)", "Executions by day", "Cost by model (USD)",
                      "Cost by workflow (USD)"], titles
    for i in range(1, 5):
        assert b.canvas_painted("figure.chart:nth-child(%d) canvas" % i) > 500, i
    # by model: both models the workflow called
    models = b.js("return [...document.querySelectorAll('figure.chart:nth-child(3) .chart-data td:first-child')]"
                  ".map(td => td.textContent)")
    assert sorted(models) == ["claude-haiku", "gpt-4o-mini"], models
    shot = os.environ.get("AOP_SCREENSHOT")
    if shot:
        b.screenshot(shot.replace(".png", "-costs.png"))


def test_short_lived_access_tokens_are_refreshed_without_a_reload(world, tmp_path):
    """A server whose access tokens live 4 s: the page keeps working past
    several of them, refreshing ahead of expiry (no 401 is ever answered), and
    stays signed in."""
    m = make_manager(tmp_path)
    srv = m.server(**engine_env(ACCESS_TOKEN_TTL="4"))
    b = Browser("http://127.0.0.1:%d" % srv.port)
    try:
        u = make_user(srv, email="carol-%d@example.com" % srv.port, name="Carol")
        create_workflow(srv, u, name="Carol's", nodes=[transform("t", {"a": 1})])
        b.sign_in(u["_email"], DEFAULT_PASSWORD)
        b.wait(lambda: b.finds("#workflows tbody tr"), what="the list")
        b.mark()
        first = b.js("return sessionStorage.getItem('aop.refresh')")
        for page in ("Executions", "Workflows", "Approvals", "Workflows"):
            time.sleep(2.5)
            b.d.find_element("link text", page).click()
            b.wait(lambda: b.finds("main h1") and b.find("main h1").text == page, what=page)
            assert not b.finds(".error"), b.text()
        b.wait(lambda: b.finds("#workflows tbody tr"), what="the list again")
        assert b.marked(), "the page was loaded again"
        assert b.js("return sessionStorage.getItem('aop.refresh')") != first
        logged = b.console_log()
        assert not logged, logged
        assert all(u.startswith(b.base + "/") for u in b.requests())
    finally:
        b.quit()
        m.finalize()
