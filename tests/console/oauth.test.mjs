// The OAuth consent page (issue 20) in a real headless Chromium, against a real `codifier serve`:
// a client registers, the person opens the authorization URL, pastes a write key, sees the
// project and role it carries, narrows it to read, approves, and lands on the client's redirect
// URI with a code and the state. Run with `npm test` here (scripts/test.sh does).

import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { createServer } from "node:http";
import { after, before, test } from "node:test";
import { launchBrowser, startServer, withPage } from "./harness.mjs";

let server;
let browser;
// The client's redirect URI, served for real (Playwright does not route the target of a redirect).
let callback;
let redirect;

before(async () => {
  server = await startServer();
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

test("a person approves a client with a write key narrowed to read and lands on its redirect with a code", async () => {
  const registered = await fetch(`${server.url}/oauth/register`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ client_name: "Browser test client", redirect_uris: [redirect] }),
  });
  assert.equal(registered.status, 201);
  const { client_id } = await registered.json();
  const verifier = randomBytes(32).toString("base64url");
  const challenge = createHash("sha256").update(verifier).digest("base64url");
  const query = new URLSearchParams({
    response_type: "code", client_id, redirect_uri: redirect, state: "browser-state",
    code_challenge: challenge, code_challenge_method: "S256", resource: `${server.url}/mcp`,
  });

  await withPage(browser, "oauth-consent", async (page) => {
    await page.goto(`${server.url}/oauth/authorize?${query}`);
    assert.match(await page.locator("h1").innerText(), /Browser test client/);
    assert.equal(await page.locator("#redirect-host").innerText(), "localhost");

    await page.fill("#key", "cdf_wrongwrong_" + "x".repeat(40));
    await page.click("#continue");
    assert.match(await page.locator("#notice").innerText(), /not known/);

    await page.fill("#key", server.keys.write);
    await page.click("#continue");
    assert.equal(await page.locator("#project").innerText(), "console");
    assert.equal(await page.locator("#key-role").innerText(), "write");
    const offered = await page.locator("#role option").allInnerTexts();
    assert.deepEqual(offered, ["read", "write"], "a write key never offers admin");
    await page.selectOption("#role", "read");
    await Promise.all([page.waitForURL((url) => url.href.startsWith(redirect)), page.click("#approve")]);

    const landed = new URL(page.url());
    assert.equal(landed.searchParams.get("state"), "browser-state");
    const code = landed.searchParams.get("code");
    assert.match(code, /^cdo_ac_/);
    assert.ok(!page.url().includes(server.keys.write), "the key is not in the URL");

    const token = await fetch(`${server.url}/oauth/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: "authorization_code", code, client_id,
        redirect_uri: redirect, code_verifier: verifier }),
    });
    assert.equal(token.status, 200);
    assert.match((await token.json()).access_token, /^cdo_at_/);
  });
});
