"""End to end: the official MCP Python SDK's OAuth client (`mcp.client.auth.OAuthClientProvider`)
against the real `codifier` binary's authorization server (issue 20).

The SDK runs discovery (protected-resource and authorization-server metadata), dynamic client
registration, PKCE and the token exchange; the "person" is this test, which opens the consent
page the SDK's redirect handler is given and posts its form with an API key, as a browser would
(with the page's CSRF cookie and hidden fields). Then a tool call, a refresh once the access
token has expired (its lifetime is set to 2 s here), and refusals after the key is revoked.

The SDK only accepts client ID metadata document URLs over https, which this test cannot serve,
so CIMD is covered by the Rust tests (tests/api/oauth/flow.rs) instead.

Run: source scripts/test-env.sh && $CODIFIER_VENV/bin/python -m pytest tests/conformance
Store: an SQLite file, or $CONFORMANCE_DATABASE_URL (scripts/test.sh runs both).
"""

import html
import json
import os
import re
import subprocess
import time
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import anyio
import httpx2
import pytest
from mcp import ClientSession
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

REPO = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("CODIFIER_BIN", REPO / "target" / "debug" / "codifier"))
OPERATOR_TOKEN = "operator-" + uuid.uuid4().hex
REDIRECT = "http://localhost:3030/callback"

if os.environ.get("CI") == "true" and not BIN.is_file():
    raise RuntimeError(f"CI=true and no codifier binary at {BIN}: build it first")
pytestmark = pytest.mark.skipif(not BIN.is_file(), reason=f"no codifier binary at {BIN}")


@pytest.fixture
def anyio_backend():
    return "asyncio"


def _cli(env, *args):
    out = subprocess.run([str(BIN), *args], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, f"codifier {' '.join(args)} failed:\n{out.stderr}"
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("codifier-oauth")
    addr_file, log_path = tmp / "addr", tmp / "server.log"
    # The other conformance module may share this database: its project names differ from ours.
    database_url = os.environ.get("CONFORMANCE_DATABASE_URL") or f"sqlite://{tmp}/codifier.db"
    env = dict(os.environ, DATABASE_URL=database_url, API_AUTH_TOKEN=OPERATOR_TOKEN,
               CODIFIER_OAUTH_ACCESS_TOKEN_SECONDS="2", CODIFIER_KEY_CACHE_SECONDS="1")
    env.pop("CODIFIER_ADDR_FILE", None)
    _cli(env, "projects", "create", "--name", "oauth-alpha")
    key = _cli(env, "keys", "create", "--project", "oauth-alpha", "--role", "write", "--label", "oauth")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([str(BIN), "serve", "--listen", "127.0.0.1:0"], stdout=log,
                                stderr=subprocess.STDOUT, env=dict(env, CODIFIER_ADDR_FILE=str(addr_file)))
    try:
        deadline, addr = time.monotonic() + 30, ""
        while not re.fullmatch(r"127\.0\.0\.1:\d+", addr):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"server did not publish its address:\n{log_path.read_text()}")
            time.sleep(0.1)
            addr = addr_file.read_text().strip() if addr_file.exists() else ""
        yield {"base": f"http://{addr}", "env": env, "key": key, "log": log_path}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        # pytest shows this only when a test of the module failed: the server's side of it.
        print(f"server exit code {proc.returncode}; server log:\n{log_path.read_text(errors='replace')[-20000:]}")


class MemoryStorage:
    """The SDK's TokenStorage protocol, in memory."""

    def __init__(self):
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens):
        self.tokens = tokens

    async def get_client_info(self):
        return self.client_info

    async def set_client_info(self, client_info):
        self.client_info = client_info


class Person:
    """Plays the person at the consent page: opens it, pastes the key, approves."""

    def __init__(self, base, key):
        self.base, self.key = base, key
        self.result: AuthorizationCodeResult | None = None
        self.pages = 0

    async def redirect_handler(self, authorization_url: str) -> None:
        assert authorization_url.startswith(f"{self.base}/oauth/authorize?"), authorization_url
        self.pages += 1
        async with httpx2.AsyncClient(follow_redirects=False) as browser:
            page = await browser.get(authorization_url)
            assert page.status_code == 200, page.text
            form = {html.unescape(name): html.unescape(value) for name, value in
                    re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page.text)}
            assert "csrf" in form and "code_challenge" in form, page.text
            form.update(key=self.key, action="approve")
            answer = await browser.post(f"{self.base}/oauth/authorize", data=form, headers={"Origin": self.base})
            assert answer.status_code == 303, answer.text
            location = answer.headers["location"]
            assert location.startswith(REDIRECT) and self.key not in location
            query = {name: values[0] for name, values in parse_qs(urlparse(location).query).items()}
            self.result = AuthorizationCodeResult(code=query["code"], state=query.get("state"), iss=query.get("iss"))

    async def callback_handler(self) -> AuthorizationCodeResult:
        assert self.result is not None
        return self.result


@pytest.mark.anyio
async def test_the_sdk_oauth_client_connects_calls_refreshes_and_is_refused_after_revocation(server):
    base, key = server["base"], server["key"]
    storage, person = MemoryStorage(), Person(base, key["key"])
    provider = OAuthClientProvider(
        server_url=f"{base}/mcp",
        client_metadata=OAuthClientMetadata(
            client_name="mcp python sdk (pytest)", redirect_uris=[REDIRECT],
            grant_types=["authorization_code", "refresh_token"], response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=storage,
        redirect_handler=person.redirect_handler,
        callback_handler=person.callback_handler,
    )
    with anyio.fail_after(60):
        async with (
            httpx2.AsyncClient(auth=provider, timeout=30) as http,
            streamable_http_client(f"{base}/mcp", http_client=http) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            assert person.pages == 1, "one consent"
            assert storage.client_info is not None and storage.client_info.client_id.startswith("cdc_")
            first = storage.tokens
            assert first is not None and first.access_token.startswith("cdo_at_")
            written = await session.call_tool("update_memory", {
                "project_id": "oauth-alpha", "memory_type": "rule", "title": "Over OAuth",
                "content": {"text": "written by the Python SDK's OAuth client"}})
            assert not written.is_error, written.content

            await anyio.sleep(2.5)  # the access token (2 s) has expired: the SDK refreshes it
            read_back = await session.call_tool("fetch_context", {"project_id": "oauth-alpha"})
            assert not read_back.is_error, read_back.content
            assert "Over OAuth" in json.dumps(read_back.structured_content)
            second = storage.tokens
            assert second.access_token != first.access_token, "the access token was refreshed"
            assert second.refresh_token != first.refresh_token, "the refresh token rotated"
            assert person.pages == 1, "refreshing needed no second consent"

    _cli(server["env"], "keys", "revoke", key["prefix"])
    await anyio.sleep(1.2)  # CODIFIER_KEY_CACHE_SECONDS=1
    async with httpx2.AsyncClient(timeout=10) as raw:
        refused = await raw.post(f"{base}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
                                 headers={"Authorization": f"Bearer {storage.tokens.access_token}",
                                          "Accept": "application/json, text/event-stream"})
        assert refused.status_code == 401
        assert refused.json()["error"] == "revoked_api_key"
        assert "resource_metadata=" in refused.headers["www-authenticate"]
        again = await raw.post(f"{base}/oauth/token", data={
            "grant_type": "refresh_token", "refresh_token": storage.tokens.refresh_token,
            "client_id": storage.client_info.client_id})
        assert again.status_code == 400 and again.json()["error"] == "invalid_grant", again.text
    assert key["key"] not in server["log"].read_text(), "the key never reaches the log"
