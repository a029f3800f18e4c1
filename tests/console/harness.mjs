// What the console's browser tests share: a real `codifier serve` on a fresh SQLite file (its
// memories written through `codifier stdio`, a real MCP session), and Debian's Chromium driven
// through playwright-core. Nothing here downloads a browser.

import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { chromium } from "playwright-core";

export const repo = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const operatorToken = "console-operator-token-0123456789";
const bin = process.env.CODIFIER_BIN || join(repo, "target/debug/codifier");

/** The local model's directory when its files are here (then search finds by meaning). */
export function modelDir() {
  const candidates = [process.env.CODIFIER_TEST_MODEL_DIR, join(repo, "target/codifier-model")];
  return candidates.find((dir) => dir && existsSync(join(dir, "model.safetensors"))) || null;
}

function run(env, args) {
  const done = spawnSync(bin, args, { env: { ...process.env, ...env }, encoding: "utf8" });
  if (done.status !== 0) {
    throw new Error(`codifier ${args.join(" ")} failed: ${done.stderr}`);
  }
  return JSON.parse(done.stdout);
}

/** Calls MCP tools as the local operator through `codifier stdio`; returns each result. */
async function callTools(env, calls) {
  const child = spawn(bin, ["stdio"], { env: { ...process.env, ...env }, stdio: ["pipe", "pipe", "ignore"] });
  const answers = new Map();
  let buffered = "";
  child.stdout.setEncoding("utf8");
  child.stdout.on("data", (chunk) => {
    buffered += chunk;
    let end;
    while ((end = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, end).trim();
      buffered = buffered.slice(end + 1);
      if (line) {
        const message = JSON.parse(line);
        if (message.id !== undefined) answers.set(message.id, message);
      }
    }
  });
  const send = (message) => child.stdin.write(JSON.stringify(message) + "\n");
  const answer = async (id) => {
    for (let i = 0; i < 600 && !answers.has(id); i++) await sleep(50);
    const message = answers.get(id);
    if (!message) throw new Error(`codifier stdio did not answer request ${id}`);
    if (message.error || message.result?.isError) {
      throw new Error(`request ${id} failed: ${JSON.stringify(message)}`);
    }
    return message.result;
  };
  send({ jsonrpc: "2.0", id: 0, method: "initialize", params: {
    protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "console-tests", version: "1" } } });
  await answer(0);
  send({ jsonrpc: "2.0", method: "notifications/initialized" });
  const results = [];
  for (const [index, [name, args]] of calls.entries()) {
    send({ jsonrpc: "2.0", id: index + 1, method: "tools/call", params: { name, arguments: args } });
    results.push((await answer(index + 1)).structuredContent);
  }
  child.stdin.end();
  child.kill();
  return results;
}

/**
 * Starts a server over a fresh database holding project `console` and a few memories; `settings`
 * are extra environment variables for `codifier serve`.
 */
export async function startServer(settings = {}) {
  const dir = mkdtempSync(join(tmpdir(), "codifier-console-"));
  const base = { DATABASE_URL: `sqlite://${join(dir, "console.db")}`, CODIFIER_EMBEDDINGS: "none" };
  run(base, ["projects", "create", "--name", "console"]);
  const keys = {};
  const prefixes = {};
  for (const role of ["read", "write"]) {
    const made = run(base, ["keys", "create", "--project", "console", "--role", role]);
    keys[role] = made.key;
    prefixes[role] = made.prefix;
  }
  const memory = (title, content, tags) => ["update_memory", {
    project_id: "console", memory_type: "learning", title, content, tags }];
  const written = await callTools(base, [
    memory("Release schedule", "Deployments to production happen on Tuesday mornings, after the change review board approves them.", ["ops"]),
    memory("Office plants", "The ficus by the window is watered on Fridays.", ["office"]),
    memory("Invoice numbering", "Invoices are numbered per fiscal year with the prefix INV.", ["finance"]),
    memory("Coffee machine", "Descale the espresso machine every month with citric acid.", ["office"]),
  ]);
  const release = written[0].memory.id;
  // A second version of the release memory, so it has a revision to compare and restore.
  await callTools(base, [["update_memory", { project_id: "console", id: release,
    content: "Deployments to production happen on Thursday mornings, after the change review board approves them." }]]);

  // A plan of three tasks (two wait for the first), for the Plans pages.
  const [planned] = await callTools(base, [["plan_tasks", { project_id: "console", title: "Launch the site",
    tasks: [{ id: "design", title: "Design the pages" },
      { id: "build", title: "Build the pages", depends_on: ["design"] },
      { id: "review", title: "Review the copy", depends_on: ["design"] }] }]]);
  const plan = planned.plan_id;

  // The skills library (a small pack in the public layout) and what agents remembered, for the
  // Guardrails page; a playbook session with its first step answered, for the session page.
  run(base, ["skills", "import", join(repo, "tests/fixtures/skills/agent"), "--json"]);
  const [, , started] = await callTools(base, [
    ["remember", { project_id: "console",
      decision: { what: "Keep the onboarding guide in the repository", why: "The wiki copy went stale twice" },
      issue: { description: "The onboarding guide still links to the retired wiki", status: "open" },
      sharp_edge: { id: "mail-time-zone", summary: "Scheduled emails go out in the server's time zone", severity: "error",
        situation: "Scheduling a newsletter for 9:00", why: "The scheduler reads the host's clock, set to UTC",
        solution: "Store the reader's time zone with the schedule" } }],
    ["load_context", { project_id: "console", stack_hints: ["React"] }],
    ["run_playbook", { playbook_id: "initialize-project", project_id: "console",
      input: { project_name: "Console demo" } }],
  ]);
  const session = started.session_id;

  const model = modelDir();
  const env = {
    ...process.env,
    ...base,
    API_AUTH_TOKEN: operatorToken,
    CODIFIER_ADDR_FILE: join(dir, "addr"),
    CODIFIER_KEY_CACHE_SECONDS: "1",
    CODIFIER_LOG: "warn",
    CODIFIER_MODEL_FETCH: "off",
    ...(model ? { CODIFIER_EMBEDDINGS: "local", CODIFIER_MODEL_DIR: model } : {}),
    ...settings,
  };
  const child = spawn(bin, ["serve", "--listen", "127.0.0.1:0"], { env, stdio: ["ignore", "ignore", "inherit"] });
  let address = "";
  for (let i = 0; i < 400 && !address; i++) {
    await sleep(50);
    address = existsSync(env.CODIFIER_ADDR_FILE) ? readFileSync(env.CODIFIER_ADDR_FILE, "utf8").trim() : "";
  }
  if (!address) throw new Error("codifier serve did not start");
  const url = `http://${address}`;
  return {
    url, keys, prefixes, release, plan, session, semantic: Boolean(model),
    /** Runs the `codifier` command line on the server's database; returns its JSON output. */
    cli: (args) => run(base, args),
    async stop() {
      child.kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Debian's Chromium, headless, with everything that would reach the network turned off. */
export function launchBrowser() {
  // playwright-core gives every launch a fresh temporary profile (--user-data-dir) of its own.
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

/** Runs `body` with a fresh page; a failure saves a screenshot under target/console-screenshots. */
export async function withPage(browser, name, body, viewport = { width: 1100, height: 800 }) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  try {
    await body(page, context);
  } catch (error) {
    const shots = join(repo, "target/console-screenshots");
    mkdirSync(shots, { recursive: true });
    const file = join(shots, `${name.replace(/[^a-z0-9]+/gi, "-")}.png`);
    await page.screenshot({ path: file, fullPage: true }).catch(() => {});
    error.message += `\n(screenshot: ${file})`;
    throw error;
  } finally {
    await context.close();
  }
}

/** Signs `page` in with `key` through the form. */
export async function signIn(page, url, key) {
  await page.goto(`${url}/console/sign-in`);
  await page.getByLabel("API key or operator token").fill(key);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${url}/console`);
}
