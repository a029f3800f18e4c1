// End to end with the official MCP TypeScript SDK's OAuth client (issue 20): its
// StreamableHTTPClientTransport with an `authProvider` runs discovery (the 401's
// resource_metadata, then both metadata documents), dynamic client registration and PKCE, and
// hands the consent URL to the "person", who approves it in Debian's headless Chromium with a
// write key. Then the code exchange (`finishAuth`), a tool call, a refresh once the access token
// has expired (2 s here) with no second consent, and refusals after the key is revoked.

import assert from "node:assert/strict";
import { createServer } from "node:http";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { launchBrowser, startServer, withPage } from "./harness.mjs";

let server;
let browser;
let callback;
let redirect;

before(async () => {
  server = await startServer({ CODIFIER_OAUTH_ACCESS_TOKEN_SECONDS: "2" });
  browser = await launchBrowser();
  callback = createServer((_, response) => response.end("client callback"));
  await new Promise((done) => callback.listen(0, "127.0.0.1", done));
  redirect = `http://localhost:${callback.address().port}/callback`;
});

after(async () => {
  await browser?.close();
  await server?.stop();
  callback?.close();
});

/** The SDK's OAuthClientProvider, keeping everything in memory and recording what it was given. */
class Provider {
  constructor(redirectUrl) {
    this.redirect = redirectUrl;
    this.consentPages = [];
    this.saved = [];
  }
  get redirectUrl() {
    return this.redirect;
  }
  get clientMetadata() {
    return {
      client_name: "MCP TypeScript SDK (node:test)", redirect_uris: [this.redirect],
      grant_types: ["authorization_code", "refresh_token"], response_types: ["code"],
      token_endpoint_auth_method: "none",
    };
  }
  clientInformation() {
    return this.client;
  }
  saveClientInformation(client) {
    this.client = client;
  }
  tokens() {
    return this.saved.at(-1);
  }
  saveTokens(tokens) {
    this.saved.push(tokens);
  }
  redirectToAuthorization(url) {
    this.consentPages.push(url);
  }
  saveCodeVerifier(verifier) {
    this.verifier = verifier;
  }
  codeVerifier() {
    return this.verifier;
  }
  invalidateCredentials(scope) {
    this.invalidated = scope;
    if (scope === "all" || scope === "tokens") this.saved = [];
    if (scope === "all" || scope === "client") this.client = undefined;
    if (scope === "all" || scope === "verifier") this.verifier = undefined;
  }
}

async function connect(provider) {
  const client = new Client({ name: "codifier-ts-oauth-test", version: "1.0.0" });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`), { authProvider: provider }));
  return client;
}

test("the TypeScript SDK's OAuth client registers, is approved in the browser, calls tools, refreshes and is refused after revocation", async () => {
  const provider = new Provider(redirect);
  const transport = new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`), { authProvider: provider });
  await assert.rejects(new Client({ name: "codifier-ts-oauth-test", version: "1.0.0" }).connect(transport), UnauthorizedError);
  assert.match(provider.client?.client_id ?? "", /^cdc_/, "registered dynamically");
  assert.equal(provider.consentPages.length, 1);
  const consent = provider.consentPages[0];
  assert.equal(`${consent.origin}${consent.pathname}`, `${server.url}/oauth/authorize`);
  assert.equal(consent.searchParams.get("code_challenge_method"), "S256");
  assert.equal(consent.searchParams.get("resource"), `${server.url}/mcp`);

  let code;
  await withPage(browser, "oauth-typescript-sdk", async (page) => {
    await page.goto(consent.href);
    assert.match(await page.locator("h1").innerText(), /MCP TypeScript SDK/);
    await page.fill("#key", server.keys.write);
    await page.click("#continue");
    assert.equal(await page.locator("#project").innerText(), "console");
    await Promise.all([page.waitForURL((url) => url.href.startsWith(redirect)), page.click("#approve")]);
    code = new URL(page.url()).searchParams.get("code");
  });
  assert.match(code, /^cdo_ac_/);
  await transport.finishAuth(code);
  const first = provider.tokens();
  assert.match(first.access_token, /^cdo_at_/);

  const client = await connect(provider);
  const written = await client.callTool({ name: "update_memory", arguments: {
    project_id: "console", memory_type: "rule", title: "Over OAuth from TypeScript",
    content: { text: "written by the TypeScript SDK's OAuth client" } } });
  assert.ok(!written.isError, JSON.stringify(written.content));

  await sleep(2500); // the access token (2 s) has expired: the SDK refreshes it on the 401
  const read = await client.callTool({ name: "fetch_context", arguments: { project_id: "console", query: "TypeScript" } });
  assert.ok(!read.isError, JSON.stringify(read.content));
  assert.match(JSON.stringify(read.structuredContent), /Over OAuth from TypeScript/);
  const second = provider.tokens();
  assert.notEqual(second.access_token, first.access_token, "the access token was refreshed");
  assert.notEqual(second.refresh_token, first.refresh_token, "the refresh token rotated");
  assert.equal(provider.consentPages.length, 1, "refreshing needed no second consent");

  server.cli(["keys", "revoke", server.prefixes.write]);
  await sleep(1200); // CODIFIER_KEY_CACHE_SECONDS=1
  const refused = await fetch(`${server.url}/mcp`, {
    method: "POST",
    headers: { authorization: `Bearer ${second.access_token}`, "content-type": "application/json",
      accept: "application/json, text/event-stream" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "ping" }),
  });
  assert.equal(refused.status, 401);
  assert.equal((await refused.json()).error, "revoked_api_key");
  // The SDK's own next call: its refresh is refused ("approve again"), so it drops its tokens and
  // sends the person back to the consent page.
  await assert.rejects(client.callTool({ name: "fetch_context", arguments: { project_id: "console" } }), UnauthorizedError);
  assert.equal(provider.invalidated, "tokens");
  assert.equal(provider.consentPages.length, 2, "after revocation the SDK asks for consent again");
  await client.close().catch(() => {});
});
