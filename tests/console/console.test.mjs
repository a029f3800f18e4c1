// The web console in a real headless Chromium, against a real `codifier serve`: sign in,
// search, history and restore, what a read key may do, revocation, CSRF, the live timeline and
// the layout at 360 px. Run with `npm test` here (scripts/test.sh does).

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { launchBrowser, operatorToken, repo, signIn, startServer, withPage } from "./harness.mjs";

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** Posts a form from inside the page (as a forged form would), returning the status. */
function postFrom(page, path, fields) {
  return page.evaluate(async ({ path, fields }) => {
    const response = await fetch(path, {
      method: "POST",
      body: new URLSearchParams(fields),
      redirect: "manual",
    });
    return response.status;
  }, { path, fields });
}

/** With CODIFIER_CONSOLE_DOCS_SCREENSHOTS set, saves the page as docs/NAME for the README. */
async function docsScreenshot(page, name) {
  if (!process.env.CODIFIER_CONSOLE_DOCS_SCREENSHOTS) return;
  mkdirSync(join(repo, "docs"), { recursive: true });
  await page.screenshot({ path: join(repo, "docs", name), fullPage: true });
}

/** The CSRF token of the page's sign-out form. */
function csrfOf(page) {
  return page.locator('form[action="/console/sign-out"] input[name="csrf"]').inputValue();
}

test("the operator signs in and sees each project with its memory count", async () => {
  await withPage(browser, "operator-projects", async (page) => {
    await signIn(page, server.url, operatorToken);
    const row = page.getByRole("row", { name: /console/ });
    await assert.doesNotReject(row.waitFor());
    const count = (label) => row.locator(`td[data-label="${label}"]`).innerText();
    // Four memories written here, and those remember and the playbook stored.
    assert.ok(Number(await count("Memories")) >= 4, await row.innerText());
    assert.equal(await count("Plans"), "1");
    assert.equal(await count("Playbook sessions"), "1");
    assert.equal(await count("Snapshots"), "0");
    assert.equal(await page.getByRole("link", { name: "Server" }).count(), 1);
  });
});

test("a write key searches and finds the memory it means", async () => {
  await withPage(browser, "search", async (page) => {
    await signIn(page, server.url, server.keys.write);
    await page.getByRole("link", { name: "console", exact: true }).click();
    // By meaning when the local model is here: no word of this query is in the memory.
    // Without the model the search runs on words, so the query names them.
    const query = server.semantic ? "when do we ship releases to prod" : "deployments production";
    const first = page.locator(".results li h2 a").first();
    const deadline = Date.now() + 90_000;
    for (;;) {
      await page.getByLabel("Search (meaning and words)").fill(query);
      await page.getByRole("button", { name: "Search" }).click();
      await page.waitForLoadState();
      if ((await first.count()) && (await first.innerText()) === "Release schedule") break;
      // The server embeds what was written before it started in the background.
      if (Date.now() > deadline) assert.fail(`the search did not rank the memory first: ${await page.locator("main").innerText()}`);
      await new Promise((done) => setTimeout(done, 1000));
    }
    if (server.semantic) {
      assert.match(await page.locator("main").innerText(), /Ranked by hybrid search/);
    }
    await docsScreenshot(page, "console-search.png");
    await first.click();
    await assert.doesNotReject(page.getByRole("heading", { name: "Release schedule" }).waitFor());
  });
});

test("a memory's history shows what changed and restores a revision", async () => {
  await withPage(browser, "history", async (page) => {
    await signIn(page, server.url, server.keys.write);
    await page.goto(`${server.url}/console/projects/console/memories/${server.release}`);
    assert.match(await page.locator("#content").innerText(), /Thursday/);
    const diff = page.locator("pre.diff");
    assert.match(await diff.locator(".del").allInnerTexts().then((t) => t.join("\n")), /Tuesday/);
    assert.match(await diff.locator(".add").allInnerTexts().then((t) => t.join("\n")), /Thursday/);
    await page.getByRole("button", { name: "Restore revision 1" }).click();
    await page.waitForLoadState();
    assert.match(await page.locator("#content").innerText(), /Tuesday/);
    // Restoring kept the Thursday version as a revision of its own.
    assert.equal(await page.getByRole("button", { name: "Restore revision 2" }).count(), 1);
  });
});

test("a read key finds no edit controls and its forged posts are refused", async () => {
  await withPage(browser, "read-key", async (page) => {
    await signIn(page, server.url, server.keys.read);
    const memory = `/console/projects/console/memories/${server.release}`;
    await page.goto(server.url + memory);
    await assert.doesNotReject(page.getByRole("heading", { name: "Release schedule" }).waitFor());
    for (const name of ["Edit", "Delete", /Restore revision/]) {
      assert.equal(await page.getByRole("button", { name }).count(), 0, `${name} shown`);
      assert.equal(await page.getByRole("link", { name }).count(), 0, `${name} shown`);
    }
    assert.equal(await page.getByRole("link", { name: "Keys" }).count(), 0);
    const csrf = await csrfOf(page);
    assert.equal(await postFrom(page, `${memory}/delete`, { csrf }), 403);
    assert.equal(await postFrom(page, `${memory}/restore`, { csrf, revision: "1" }), 403);
    await page.reload();
    await assert.doesNotReject(page.getByRole("heading", { name: "Release schedule" }).waitFor());
  });
});

test("a post without its CSRF token is refused and changes nothing", async () => {
  await withPage(browser, "csrf", async (page) => {
    await signIn(page, server.url, server.keys.write);
    const memory = `/console/projects/console/memories/${server.release}`;
    await page.goto(server.url + memory);
    assert.equal(await postFrom(page, `${memory}/delete`, {}), 403);
    assert.equal(await postFrom(page, `${memory}/delete`, { csrf: "0".repeat(64) }), 403);
    await page.reload();
    await assert.doesNotReject(page.getByRole("heading", { name: "Release schedule" }).waitFor());
  });
});

test("the events page shows a change as it happens", async () => {
  await withPage(browser, "events", async (page, context) => {
    await signIn(page, server.url, server.keys.write);
    await page.goto(`${server.url}/console/projects/console/events`);
    await assert.doesNotReject(page.getByText("Listening for new events.").waitFor({ timeout: 15_000 }));
    const other = await context.newPage();
    await other.goto(`${server.url}/console/projects/console/memories/${server.release}`);
    await other.getByRole("button", { name: "Restore revision 2" }).click();
    await assert.doesNotReject(page.locator("#live li", { hasText: /memory\./ }).first().waitFor({ timeout: 15_000 }));
  });
});

test("the memories page fits a 360 px wide screen", async () => {
  await withPage(browser, "narrow", async (page) => {
    await signIn(page, server.url, server.keys.write);
    await page.goto(`${server.url}/console/projects/console/memories`);
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 360, `the page is ${width} px wide`);
  }, { width: 360, height: 740 });
});

test("a plan's page draws its task graph with one box per task and fits 360 px", async () => {
  await withPage(browser, "plan-graph", async (page) => {
    await signIn(page, server.url, server.keys.read);
    await page.goto(`${server.url}/console/projects/console/plans`);
    await page.getByRole("link", { name: "Launch the site" }).click();
    await assert.doesNotReject(page.getByRole("heading", { name: "Launch the site" }).waitFor());
    assert.equal(new URL(page.url()).pathname.endsWith(`/plans/${server.plan}`), true);
    const svg = page.locator("svg.plan-graph");
    assert.equal(await svg.count(), 1);
    assert.equal(await svg.locator("g.task").count(), 3);
    assert.equal(await svg.locator("line.edge").count(), 2);
    assert.deepEqual(
      (await svg.locator("g.task").evaluateAll((gs) => gs.map((g) => g.dataset.task))).sort(),
      ["build", "design", "review"],
    );
    const box = await svg.locator('g.task[data-task="design"] rect').boundingBox();
    assert.ok(box && box.width > 100 && box.height > 20, "the boxes are drawn");
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 360, `the page is ${width} px wide`);
    await page.setViewportSize({ width: 1100, height: 800 });
    await docsScreenshot(page, "console-plan.png");
  }, { width: 360, height: 740 });
});

test("the guardrails page shows a read key the open issues, decisions and sharp edges, with nothing to change", async () => {
  await withPage(browser, "guardrails", async (page) => {
    await signIn(page, server.url, server.keys.read);
    await page.getByRole("link", { name: "console", exact: true }).click();
    await page.getByRole("link", { name: "Guardrails" }).click();
    await assert.doesNotReject(page.getByRole("heading", { name: "Guardrails", level: 1 }).waitFor());
    const main = await page.locator("main").innerText();
    for (const shown of ["The onboarding guide still links to the retired wiki",
      "Keep the onboarding guide in the repository", "Scheduled emails go out in the server",
      "An interval started in an effect"]) {
      assert.ok(main.includes(shown), `${shown} is not on the page: ${main}`);
    }
    // The only control is signing out.
    assert.deepEqual(await page.locator("main button, main input, main select, main textarea").count(), 0);
    assert.deepEqual(await page.getByRole("button").allInnerTexts(), ["Sign out"]);
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 360, `the page is ${width} px wide`);
  }, { width: 360, height: 740 });
});

test("a playbook session opens from the list with the keyboard and shows each step and what it collected", async () => {
  await withPage(browser, "playbook-session", async (page) => {
    await signIn(page, server.url, server.keys.read);
    await page.goto(`${server.url}/console/projects/console/playbooks`);
    const link = page.locator(`a[href$="/playbooks/${server.session}"]`);
    await link.focus();
    await page.keyboard.press("Enter");
    await page.waitForURL(new RegExp(`/playbooks/${server.session}$`));
    const rows = page.locator("table.outline tbody tr");
    assert.ok((await rows.count()) > 2, "the whole outline");
    assert.match(await rows.nth(0).innerText(), /\bdone\b/);
    assert.equal(await page.locator('tr[aria-current="step"]').count(), 1);
    assert.match(await page.locator('tr[aria-current="step"]').innerText(), /\bcurrent\b/);
    assert.match(await page.locator("dl.collected").innerText(), /project_name[\s\S]*Console demo/);
    assert.deepEqual(await page.getByRole("button").allInnerTexts(), ["Sign out"]);
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 360, `the page is ${width} px wide`);
  }, { width: 360, height: 740 });
});

test("the server page shows the operator the embedder, its backlog and the tool figures", async () => {
  await withPage(browser, "server", async (page) => {
    await signIn(page, server.url, operatorToken);
    await page.getByRole("link", { name: "Server" }).click();
    await assert.doesNotReject(page.getByRole("heading", { name: "Server", level: 1 }).waitFor());
    const backlog = await page.locator("#backlog").innerText();
    assert.match(backlog, server.semantic ? /\d+ memories waiting for a vector/ : /no model loaded/);
    assert.equal(await page.getByRole("table", { name: "Store operations by name" }).count(), 1);
  });
});

test("revoking a key on the Keys page ends that key's session", async () => {
  await withPage(browser, "revoke", async (page, context) => {
    const reader = await browser.newContext();
    try {
      const readerPage = await reader.newPage();
      await signIn(readerPage, server.url, server.keys.read);
      await signIn(page, server.url, operatorToken);
      await page.goto(`${server.url}/console/projects/console/keys`);
      const prefix = server.keys.read.split("_")[1];
      await page.getByRole("button", { name: `Revoke ${prefix}` }).click();
      await page.waitForLoadState();
      assert.match(await page.getByRole("row", { name: new RegExp(prefix) }).innerText(), /revoked/);
      // The server trusts a checked key for 1 s here (CODIFIER_KEY_CACHE_SECONDS).
      await new Promise((done) => setTimeout(done, 1200));
      await readerPage.goto(`${server.url}/console`);
      assert.equal(new URL(readerPage.url()).pathname, "/console/sign-in");
      await assert.doesNotReject(readerPage.getByRole("alert").waitFor());
    } finally {
      await reader.close();
    }
    void context;
  });
});
