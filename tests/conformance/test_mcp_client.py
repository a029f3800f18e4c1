"""Conformance: the official MCP Python SDK (2.x) as a client of the real `codifier` binary.

Run: source scripts/test-env.sh && $CODIFIER_VENV/bin/python -m pytest tests/conformance
The binary is $CODIFIER_BIN (default target/debug/codifier); the suite is skipped without it,
except under CI=true, where a missing binary fails the run. The store is an SQLite file in a temp
dir, or the database $CONFORMANCE_DATABASE_URL names (scripts/test.sh runs the suite on both).
"""

import json
import logging
import os
import re
import subprocess
import time
import uuid
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx2
import jsonschema
import pytest
from mcp import ClientSession, types
from mcp.client.sse import sse_client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

REPO = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("CODIFIER_BIN", REPO / "target" / "debug" / "codifier"))
TOOLS = {"manage_projects", "update_memory", "fetch_context", "delete_memory"}
# Streamable HTTP at every revision the SDK speaks: 2026-07-28 (stateless, `server/discover`),
# 2025-11-25 (the SDK's newest handshake) and 2025-06-18 (pinned in the handshake).
MODERN = "2026-07-28"
REVISIONS = [MODERN, "2025-11-25", "2025-06-18"]
STREAMABLE = [f"streamable-http@{revision}" for revision in REVISIONS]
TRANSPORTS = [*STREAMABLE, "sse", "stdio"]
HTTP_TRANSPORTS = [*STREAMABLE, "sse"]
OPERATOR_TOKEN = "operator-" + uuid.uuid4().hex

if os.environ.get("CI") == "true" and not BIN.is_file():
    raise RuntimeError(f"CI=true and no codifier binary at {BIN}: build it first")
pytestmark = pytest.mark.skipif(not BIN.is_file(), reason=f"no codifier binary at {BIN}")


@pytest.fixture
def anyio_backend():
    return "asyncio"


@dataclass
class Server:
    base: str  # http://127.0.0.1:PORT
    env: dict  # environment for CLI and stdio runs (same database)
    key: str  # write key scoped to project "alpha"
    alpha: str  # project ids
    beta: str
    log: Path  # the server's JSON log


def _cli(env, *args):
    out = subprocess.run([str(BIN), *args], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, f"codifier {' '.join(args)} failed:\n{out.stderr}"
    return json.loads(out.stdout)


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("codifier")
    database_url = os.environ.get("CONFORMANCE_DATABASE_URL") or f"sqlite://{tmp}/codifier.db"
    env = dict(os.environ, DATABASE_URL=database_url, API_AUTH_TOKEN=OPERATOR_TOKEN,
               CODIFIER_LOG_FORMAT="json")
    env.pop("CODIFIER_ADDR_FILE", None)
    alpha = _cli(env, "projects", "create", "--name", "alpha")
    beta = _cli(env, "projects", "create", "--name", "beta")
    key = _cli(env, "keys", "create", "--project", "alpha", "--role", "write", "--label", "test")
    assert key["project_id"] == alpha["id"] and key["role"] == "write" and key["prefix"] in key["key"]

    with _serve(env, tmp / "first") as (base, log_path):
        yield Server(base, env, key["key"], alpha["id"], beta["id"], log_path)


@contextmanager
def _serve(env, tmp):
    """Runs `codifier serve` on a free port with `env`; yields its base URL and log file."""
    tmp.mkdir(parents=True, exist_ok=True)
    addr_file, log_path = tmp / "addr", tmp / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([str(BIN), "serve", "--listen", "127.0.0.1:0"], stdout=log,
                                stderr=subprocess.STDOUT, env=dict(env, CODIFIER_ADDR_FILE=str(addr_file)))
    try:
        deadline, addr = time.monotonic() + 30, ""
        while not re.fullmatch(r"127\.0\.0\.1:\d+", addr):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"server did not publish its address (exit {proc.poll()}):\n{log_path.read_text()}")
            time.sleep(0.1)
            addr = addr_file.read_text().strip() if addr_file.exists() else ""
        yield f"http://{addr}", log_path
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        # pytest shows this only when a test using the server failed: the server's side of it.
        print(f"server exit code {proc.returncode}; server log:\n{log_path.read_text(errors='replace')[-20000:]}")


async def start(session, revision, capabilities=None):
    """Opens `session` at `revision`: `server/discover` at 2026-07-28, else the handshake (at
    2025-06-18 declaring `capabilities`)."""
    if revision == MODERN:
        await session.discover()
    elif revision == "2025-11-25":
        await session.initialize()
    else:  # the SDK's initialize() always proposes its newest handshake revision
        result = await session.send_request(
            types.InitializeRequest(params=types.InitializeRequestParams(
                protocol_version=revision, capabilities=capabilities or types.ClientCapabilities(),
                client_info=types.Implementation(name="conformance", version="1"))),
            types.InitializeResult)
        session.adopt(result)
        await session.send_notification(types.InitializedNotification())
    assert session.protocol_version == revision


@asynccontextmanager
async def connect(transport, server, token=None, http_transport=None, **session_options):
    """An initialized ClientSession. HTTP transports send `token` as the bearer; stdio is the local
    operator. Streamable HTTP sessions take `session_options` (e.g. a `sampling_callback`)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if transport.startswith("streamable-http"):
        revision = transport.partition("@")[2] or "2025-11-25"
        log_level = "debug" if revision == MODERN else None
        async with (
            httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=300),
                               transport=http_transport) as http,
            streamable_http_client(f"{server.base}/mcp", http_client=http) as (read, write),
            ClientSession(read, write, log_level=log_level, **session_options) as session,
        ):
            sampling = types.SamplingCapability() if "sampling_callback" in session_options else None
            await start(session, revision, types.ClientCapabilities(sampling=sampling))
            yield session
    elif transport == "sse":
        async with sse_client(f"{server.base}/sse", headers=headers) as (read, write), \
                ClientSession(read, write) as session:
            await session.initialize()
            yield session
    else:
        env = {k: v for k, v in server.env.items() if k != "API_AUTH_TOKEN"}
        params = StdioServerParameters(command=str(BIN), args=["stdio"], env=env)
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            yield session


async def call(session, tool, **arguments):
    result = await session.call_tool(tool, arguments)
    text = "\n".join(block.text for block in result.content if block.type == "text")
    return result, text


def ids(result):
    return [memory["id"] for memory in result.structured_content["memories"]]


def test_health_answers_without_a_key(server):
    response = httpx2.get(f"{server.base}/health", timeout=10)
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


@pytest.mark.parametrize("method,path", [("POST", "/mcp"), ("GET", "/sse"), ("GET", "/mcp")])
@pytest.mark.parametrize("authorization", [None, "Bearer cdf_not_a_real_key", "Basic Zm9vOmJhcg=="])
def test_a_wrong_or_missing_bearer_gets_401_with_a_challenge_and_json(server, method, path, authorization):
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    if authorization:
        headers["Authorization"] = authorization
    body = {"jsonrpc": "2.0", "id": 1, "method": "ping"} if method == "POST" else None
    response = httpx2.request(method, f"{server.base}{path}", headers=headers, json=body, timeout=10)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].lower().startswith("bearer")
    assert "error" in response.json()


@pytest.mark.anyio
@pytest.mark.parametrize("transport", HTTP_TRANSPORTS)
async def test_the_sdk_cannot_connect_with_a_wrong_key(server, transport):
    try:
        with anyio.fail_after(20):
            async with connect(transport, server, "cdf_not_a_real_key") as session:
                await session.list_tools()
    except TimeoutError:
        pytest.fail("the client hung instead of being refused")
    except Exception:  # MCPError (streamable HTTP) or HTTPStatusError in an ExceptionGroup (SSE)
        return
    pytest.fail("a wrong key was accepted")


@pytest.mark.anyio
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_every_transport_lists_the_four_tools_with_input_schemas(server, transport):
    with anyio.fail_after(30):
        async with connect(transport, server, server.key) as session:
            tools = {tool.name: tool for tool in (await session.list_tools()).tools}
    assert TOOLS <= set(tools)
    for name in TOOLS:
        assert tools[name].input_schema.get("type") == "object", name
        assert tools[name].description, name


@pytest.mark.anyio
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_the_operator_can_create_a_project_and_get_it_by_name(server, transport):
    name = f"created-{transport}-{uuid.uuid4().hex[:8]}"
    with anyio.fail_after(30):
        async with connect(transport, server, OPERATOR_TOKEN) as session:
            created, text = await call(session, "manage_projects", operation="create", name=name)
            assert not created.is_error, text
            assert text.strip()
            project_id = created.structured_content["project"]["id"]
            got, text = await call(session, "manage_projects", operation="get", project_id=name)
            listed, _ = await call(session, "manage_projects", operation="list")
    assert not got.is_error, text
    assert project_id in json.dumps(got.structured_content)
    assert not listed.is_error and name in json.dumps(listed.structured_content)


@pytest.mark.anyio
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_memory_is_written_found_by_tag_and_query_then_deleted(server, transport):
    # HTTP uses the write key scoped to alpha; stdio is the local operator. Both address alpha.
    marker = f"zebracorn{uuid.uuid4().hex[:10]}"
    tag = f"conformance-{transport}"
    with anyio.fail_after(60):
        async with connect(transport, server, server.key) as session:
            written, text = await call(
                session, "update_memory", project_id="alpha", memory_type="rule",
                title=f"Prefer small commits ({marker})", tags=[tag, "conformance"],
                content={"text": f"Keep each commit focused on one change. {marker.upper()}"},
            )
            assert not written.is_error, text
            memory_id = written.structured_content["memory"]["id"]

            by_tag, text = await call(session, "fetch_context", project_id=server.alpha, tags=[tag])
            assert not by_tag.is_error, text
            assert memory_id in ids(by_tag)
            assert all(tag in m["tags"] for m in by_tag.structured_content["memories"])

            by_query, text = await call(session, "fetch_context", project_id=server.alpha, query=marker, limit=5)
            assert ids(by_query) == [memory_id], text
            assert by_query.structured_content["memories"][0]["title"].endswith(f"({marker})")

            deleted, text = await call(session, "delete_memory", project_id=server.alpha, id=memory_id)
            assert not deleted.is_error, text
            after, _ = await call(session, "fetch_context", project_id=server.alpha, tags=[tag])
            assert memory_id not in ids(after)


@pytest.mark.anyio
@pytest.mark.parametrize("transport", HTTP_TRANSPORTS)
async def test_a_project_key_cannot_touch_another_project(server, transport):
    with anyio.fail_after(30):
        async with connect(transport, server, server.key) as session:
            for project in (server.beta, "beta"):
                attempts = [
                    ("fetch_context", {"project_id": project}),
                    ("update_memory", {"project_id": project, "memory_type": "learning",
                                       "title": "Should not land", "content": {"text": "x"}}),
                    ("delete_memory", {"project_id": project, "id": str(uuid.uuid4())}),
                    ("manage_projects", {"operation": "get", "project_id": project}),
                ]
                for tool, arguments in attempts:
                    result, text = await call(session, tool, **arguments)
                    assert result.is_error, f"{tool} on {project}: {text}"


@pytest.mark.anyio
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_playbooks_are_prompts_and_run_step_by_step_through_the_sdk(server, transport):
    token = server.key if transport != "stdio" else None
    async with connect(transport, server, token) as session:
        prompts = {prompt.name for prompt in (await session.list_prompts()).prompts}
        assert {"initialize-project", "brownfield-onboard", "research-and-analyze"} <= prompts
        assert {"rules-from-context", "evals-from-rules", "roadmap-from-requirements"} <= prompts
        prompt = await session.get_prompt("initialize-project", {"project_id": "alpha"})
        assert "run_playbook" in prompt.messages[0].content.text

        result, text = await call(session, "run_playbook", playbook_id="initialize-project",
                                  project_id="alpha", input={"project_name": f"SDK {transport}"})
        assert not result.is_error, text
        view = result.structured_content
        assert view["current"]["id"] == "description" and len(view["outline"]) == 9
        result, text = await call(session, "advance_step", session_id=view["session_id"],
                                  step_id="description", input={"description": 42})
        assert result.is_error and "must be a string" in text
        result, text = await call(session, "advance_step", session_id=view["session_id"],
                                  step_id="description", input={"description": "From the SDK."})
        assert not result.is_error, text
        assert result.structured_content["current"]["id"] == "statement-of-work"
        assert "Next call" in text


# The formats JSON Schema 2020-12 defines. Validators ignore any other format (the TypeScript
# SDK's Ajv warns "unknown format ... ignored" for each), so our schemas may use no other.
STANDARD_FORMATS = {
    "date-time", "date", "time", "duration", "email", "idn-email", "hostname", "idn-hostname",
    "ipv4", "ipv6", "uri", "uri-reference", "iri", "iri-reference", "uuid", "uri-template",
    "json-pointer", "relative-json-pointer", "regex",
}


def _formats(schema):
    if isinstance(schema, dict):
        if isinstance(schema.get("format"), str):
            yield schema["format"]
        for value in schema.values():
            yield from _formats(value)
    elif isinstance(schema, list):
        for item in schema:
            yield from _formats(item)


def _strict_validator(schema):
    """A 2020-12 validator for `schema` that checks formats, after checking the schema itself."""
    jsonschema.Draft202012Validator.check_schema(schema)
    unknown = set(_formats(schema)) - STANDARD_FORMATS
    assert not unknown, f"formats JSON Schema does not define: {sorted(unknown)}"
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


@pytest.mark.anyio
@pytest.mark.parametrize("transport", STREAMABLE)
async def test_every_tool_schema_compiles_strictly_and_results_match_their_output_schema(server, transport):
    with anyio.fail_after(60):
        async with connect(transport, server, server.key) as session:
            tools = (await session.list_tools()).tools
            validators = {}
            for tool in tools:
                _strict_validator(tool.input_schema)
                assert tool.output_schema, f"{tool.name} has no output schema"
                validators[tool.name] = _strict_validator(tool.output_schema)
            written, text = await call(session, "update_memory", project_id="alpha",
                                       memory_type="learning", title=f"Schemas {uuid.uuid4().hex}",
                                       content="Plain text is accepted.", tags=["schema"])
            assert not written.is_error, text
            assert written.structured_content["memory"]["content"] == {"text": "Plain text is accepted."}
            fetched, text = await call(session, "fetch_context", project_id="alpha", limit=5)
            assert not fetched.is_error, text
            listed, text = await call(session, "manage_projects", operation="list")
    validators["update_memory"].validate(written.structured_content)
    validators["fetch_context"].validate(fetched.structured_content)
    validators["manage_projects"].validate(listed.structured_content)


@pytest.mark.anyio
@pytest.mark.parametrize("transport", STREAMABLE)
async def test_a_plain_session_logs_no_warning_in_the_sdk(server, caplog, transport):
    caplog.set_level(logging.WARNING)
    with anyio.fail_after(30):
        async with connect(transport, server, server.key) as session:
            await session.list_tools()
            result, text = await call(session, "fetch_context", project_id="alpha", limit=1)
            assert not result.is_error, text
    # Closing the session sends DELETE /mcp; the SDK warns unless it gets 200 or 204.
    warnings = [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING]
    assert warnings == []


class Alternating(httpx2.AsyncBaseTransport):
    """Sends each request to the next of several servers in turn (a load balancer with no
    affinity), and counts what each one answered."""

    def __init__(self, bases):
        self.targets = [httpx2.URL(base) for base in bases]
        self.answered = [0] * len(bases)
        self.inner = httpx2.AsyncHTTPTransport()
        self.turn = 0

    async def handle_async_request(self, request):
        index = self.turn % len(self.targets)
        self.turn += 1
        target = self.targets[index]
        request.url = request.url.copy_with(host=target.host, port=target.port)
        response = await self.inner.handle_async_request(request)
        self.answered[index] += 1
        return response

    async def aclose(self):
        await self.inner.aclose()


@pytest.mark.anyio
async def test_at_2026_07_28_one_client_alternates_between_two_server_processes(server, tmp_path):
    # No session and no sticky routing: every request may land on another process.
    marker = f"alternating{uuid.uuid4().hex[:10]}"
    with _serve(server.env, tmp_path / "second") as (second, _):
        balancer = Alternating([server.base, second])
        with anyio.fail_after(60):
            async with connect(f"streamable-http@{MODERN}", server, server.key, balancer) as session:
                tools = {tool.name for tool in (await session.list_tools()).tools}
                assert TOOLS <= tools
                written, text = await call(session, "update_memory", project_id="alpha",
                                           memory_type="rule", title=marker, content={"text": marker})
                assert not written.is_error, text
                for _ in range(2):  # read back on each process
                    found, text = await call(session, "fetch_context", project_id="alpha", query=marker)
                    assert not found.is_error, text
                    assert written.structured_content["memory"]["id"] in ids(found), text
    assert all(count >= 2 for count in balancer.answered), balancer.answered


@pytest.mark.anyio
@pytest.mark.parametrize("transport", [f"streamable-http@{MODERN}", "streamable-http@2025-11-25"])
async def test_server_tools_and_prompts_carry_a_title_and_an_icon(server, transport):
    with anyio.fail_after(30):
        async with connect(transport, server, server.key) as session:
            info = session.server_info
            tools = (await session.list_tools()).tools
            prompts = (await session.list_prompts()).prompts
    assert info.name == "codifier" and info.title == "Codifier"
    for item in [info, *tools, *prompts]:
        assert item.title, item
        assert item.icons and item.icons[0].src.startswith("data:image/svg+xml,"), item


@pytest.mark.anyio
async def test_a_traceparent_in_the_request_meta_reaches_the_tool_call_log_line(server):
    trace_id = uuid.uuid4().hex
    traceparent = f"00-{trace_id}-00f067aa0ba902b7-01"
    with anyio.fail_after(30):
        async with connect(f"streamable-http@{MODERN}", server, server.key) as session:
            result = await session.call_tool("fetch_context", {"project_id": "alpha", "limit": 1},
                                             meta={"traceparent": traceparent})
            assert not result.is_error
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        lines = [json.loads(line) for line in server.log.read_text().splitlines() if trace_id in line]
        if lines:
            break
        time.sleep(0.1)
    assert lines, "no log line carries the trace id"
    (line,) = lines
    assert line["message"] == "tool call" and line["tool"] == "fetch_context"
    assert line["traceparent"] == traceparent


@pytest.mark.anyio
async def test_at_2026_07_28_the_sdk_listens_for_resource_list_changes(server):
    from mcp.client.subscriptions import listen

    with anyio.fail_after(30):
        async with connect(f"streamable-http@{MODERN}", server, server.key) as session:
            async with listen(session, resources_list_changed=True, tools_list_changed=True) as sub:
                assert sub.honored.resources_list_changed is True
                assert not sub.honored.tools_list_changed  # our tool list never changes
                # Other requests go on while the listen stream is open.
                result, text = await call(session, "fetch_context", project_id="alpha", limit=1)
                assert not result.is_error, text



@pytest.mark.anyio
async def test_at_2026_07_28_the_sdk_listens_to_the_event_log_and_hears_each_new_event(server):
    from mcp.client.subscriptions import ResourceUpdated, listen

    log = f"codifier://projects/{server.alpha}/events"
    with anyio.fail_after(30):
        async with connect(f"streamable-http@{MODERN}", server, server.key) as session:
            async with listen(session, resource_subscriptions=[log]) as sub:
                assert sub.honored.resource_subscriptions == [log]
                title = f"Heard by a listener {uuid.uuid4().hex}"
                result, text = await call(session, "update_memory", project_id="alpha", memory_type="rule",
                                          title=title, content={"text": "A rule a listener hears of."})
                assert not result.is_error, text
                event = await sub.__anext__()
                assert isinstance(event, ResourceUpdated) and event.uri == log, event
            body = json.loads((await session.read_resource(log)).contents[0].text)
            assert body["events"][-1]["type"] == "memory.create", body
            assert body["events"][-1]["sequence"] == body["latest_sequence"]


@pytest.mark.anyio
@pytest.mark.filterwarnings("ignore:resources/subscribe is removed as of 2026-07-28")
async def test_at_2025_11_25_the_sdk_subscribes_to_the_event_log_and_is_told_of_a_new_event(server):
    log = f"codifier://projects/{server.alpha}/events"
    updated = anyio.Event()
    uris = []

    async def on_message(message):
        if isinstance(message, types.ResourceUpdatedNotification):
            uris.append(message.params.uri)
            updated.set()

    with anyio.fail_after(30):
        async with connect("streamable-http@2025-11-25", server, server.key, message_handler=on_message) as session:
            assert session.server_capabilities.resources.subscribe is True
            await session.subscribe_resource(log)
            result, text = await call(session, "update_memory", project_id="alpha", memory_type="rule",
                                      title=f"Told to a subscriber {uuid.uuid4().hex}",
                                      content={"text": "A rule a subscriber is told of."})
            assert not result.is_error, text
            await updated.wait()
    assert uris[0] == log

async def call_answering(session, model, tool, arguments):
    """`tool` at 2026-07-28, answering each input request of an input-required result with
    `model` and retrying with the echoed requestState (what the SDK's high-level Client does)."""
    responses = state = None
    for _ in range(5):
        result = await session.call_tool(tool, arguments, input_responses=responses, request_state=state,
                                         allow_input_required=True)
        if not isinstance(result, types.InputRequiredResult):
            return result
        responses = {key: await model(None, request.params) for key, request in result.input_requests.items()}
        state = result.request_state
    raise AssertionError(f"{tool} still asked for input after 5 rounds")


@pytest.mark.anyio
@pytest.mark.parametrize("transport", STREAMABLE)
async def test_a_generate_step_asks_the_sdk_model_at_every_revision(server, transport):
    # 2025 revisions: the server samples the client (a server-to-client request). 2026-07-28: the
    # call answers with an input-required result and a sealed requestState; the client answers it
    # through the same sampling callback and retries.
    prompts = []

    async def model(context, params):
        prompts.append(params.messages[0].content.text)
        return types.CreateMessageResult(
            role="assistant", model="stand-in",
            content=types.TextContent(type="text", text=f"SDK-ARTIFACT-{transport}-{len(prompts)}"))

    with anyio.fail_after(60):
        async with connect(transport, server, server.key, sampling_callback=model) as session:
            result, text = await call(session, "run_playbook", playbook_id="brownfield-onboard",
                                      project_id="alpha")
            assert not result.is_error, text
            session_id = result.structured_content["session_id"]
            result, text = await call(session, "advance_step", session_id=session_id,
                                      step_id="repositories", input={"repository_urls": []})
            assert not result.is_error, text
            arguments = {"session_id": session_id, "step_id": "extra-context",
                         "input": {"extra_context": f"Notes for {transport}."}}
            if transport == f"streamable-http@{MODERN}":
                asked = await session.call_tool("advance_step", arguments, allow_input_required=True)
                assert isinstance(asked, types.InputRequiredResult), asked
                assert asked.request_state and set(asked.input_requests) == {"generate"}
                state = asked.request_state
                tampered = state[:-2] + ("BB" if state.endswith("AA") else "AA")
                forged = {"generate": types.CreateMessageResult(
                    role="assistant", model="forger", content=types.TextContent(type="text", text="FORGED"))}
                refused = await session.call_tool("advance_step", arguments, request_state=tampered,
                                                  input_responses=forged, allow_input_required=True)
                assert refused.is_error and "requestState" in refused.content[0].text, refused
                result = await call_answering(session, model, "advance_step", arguments)
            else:
                result = await session.call_tool("advance_step", arguments)
            text = "\n".join(block.text for block in result.content if block.type == "text")
            assert not result.is_error, text
            assert result.structured_content["status"] == "completed", text
            found, text = await call(session, "fetch_context", project_id="alpha", memory_type="rule",
                                     limit=100)
            texts = [memory["content"].get("text") for memory in found.structured_content["memories"]]
            assert f"SDK-ARTIFACT-{transport}-1" in texts, texts
            assert "FORGED" not in texts
    assert len(prompts) == 2 and f"Notes for {transport}." in prompts[0]
