//! Latency of `validate_code` with a whole skills library loaded: validates a generated
//! 2,000-line TypeScript file (`src/features/orders.ts`) many times and prints p50 and p99.
//!
//!     cargo run --release --example validate_bench -- --mcp sqlite:/tmp/library.db
//!     cargo run --release --example validate_bench -- --database sqlite:/tmp/library.db
//!     cargo run --release --example validate_bench -- --pack /tmp/pack
//!
//! `--mcp` starts `codifier stdio` (the binary built next to this example) on a store whose
//! library was imported, and calls the `validate_code` tool through an MCP client, as an agent
//! does: each run is the whole call path (JSON-RPC over stdio, the tool's argument checks, the
//! service, the Markdown and structured result). `--database` opens a store whose library was imported with `codifier skills import` and runs
//! the whole service (the cache check against the store, the checks, the telemetry write) in a
//! project of its own. `--pack` reads the `validations.yaml` files of a skills tree directly and
//! runs the compiled checks alone (no store). `--runs N` sets the measured runs (default 200).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use codifier::auth::Identity;
use codifier::domain::guardrail::{Severity, Validation};
use codifier::guardrails::checks::{Check, CheckSet};
use codifier::guardrails::index::LibraryCache;
use codifier::guardrails::validate::{self, Request, Validator};

const PATH: &str = "src/features/orders.ts";
const LINES: usize = 2_000;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| {
        let at = args.iter().position(|arg| arg == flag)?;
        args.get(at + 1).cloned()
    };
    let runs: usize = value("--runs").map_or(Ok(200), |n| n.parse())?;
    let code = typescript(LINES);
    println!("file: {PATH}, {} lines, {} bytes", LINES, code.len());
    if let Some(url) = value("--mcp") {
        over_mcp(&url, &code, runs).await
    } else if let Some(url) = value("--database") {
        with_store(&url, &code, runs).await
    } else if let Some(dir) = value("--pack") {
        with_pack(Path::new(&dir), &code, runs)
    } else {
        anyhow::bail!("usage: validate_bench (--mcp URL | --database URL | --pack DIR) [--runs N]")
    }
}

async fn with_store(url: &str, code: &str, runs: usize) -> anyhow::Result<()> {
    let store = codifier::store::connect(url).await?;
    store.migrate().await?;
    let name = format!("validate-bench-{}", uuid::Uuid::new_v4());
    let actor = codifier::domain::Actor {
        label: "local".into(),
        tool: "validate_bench".into(),
    };
    let project = store.create_project(&actor, &name, None).await?.id;
    let validator = Validator::default();
    let cache = LibraryCache::default();
    let started = Instant::now();
    let library = cache.checks(store.as_ref()).await?;
    println!(
        "library: {} runnable checks ({} skipped), loaded and compiled in {:?}",
        library.checks().len(),
        library.skipped().len(),
        started.elapsed()
    );
    let request = Request {
        code: code.to_owned(),
        file_path: PATH.into(),
        ..Request::default()
    };
    let mut times = Vec::with_capacity(runs);
    let mut last = None;
    for run in 0..runs + 5 {
        let started = Instant::now();
        let report = validate::validate(
            &validator,
            &cache,
            store.as_ref(),
            &Identity::Local,
            project,
            request.clone(),
        )
        .await?;
        if run >= 5 {
            times.push(started.elapsed());
        }
        last = Some(report);
    }
    if let Some(report) = last {
        println!("{}", report.summary);
    }
    print_times("validate_code (service, SQLite store)", &mut times);
    Ok(())
}

/// Calls `validate_code` through `codifier stdio` (the binary next to this example's folder).
async fn over_mcp(url: &str, code: &str, runs: usize) -> anyhow::Result<()> {
    use rmcp::ServiceExt;
    use rmcp::model::CallToolRequestParams;
    let exe = std::env::current_exe()?;
    let binary = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("codifier"))
        .filter(|path| path.exists())
        .ok_or_else(|| {
            anyhow::anyhow!("build the server first: cargo build --release --bin codifier")
        })?;
    let mut command = tokio::process::Command::new(&binary);
    command
        .arg("stdio")
        .env("DATABASE_URL", url)
        .env("CODIFIER_LOG", "warn")
        .env("CODIFIER_EMBEDDINGS", "none")
        .env_remove("API_AUTH_TOKEN");
    let transport = rmcp::transport::TokioChildProcess::new(command)?;
    let client = ().serve(transport).await?;
    let call = |tool: &'static str, arguments: serde_json::Value| {
        let serde_json::Value::Object(arguments) = arguments else {
            unreachable!("arguments are an object")
        };
        client.call_tool(CallToolRequestParams::new(tool).with_arguments(arguments))
    };
    let name = format!("validate-bench-{}", uuid::Uuid::new_v4());
    let created = call(
        "manage_projects",
        serde_json::json!({"operation": "create", "name": name}),
    )
    .await?;
    anyhow::ensure!(
        created.is_error != Some(true),
        "create: {:?}",
        created.content
    );
    let arguments = serde_json::json!({"project_id": name, "code": code, "file_path": PATH});
    let mut times = Vec::with_capacity(runs);
    let mut last = None;
    for run in 0..runs + 5 {
        let started = Instant::now();
        let result = call("validate_code", arguments.clone()).await?;
        let took = started.elapsed();
        anyhow::ensure!(
            result.is_error != Some(true),
            "validate_code: {:?}",
            result.content
        );
        if run == 0 {
            println!("first call (reads and compiles the library): {took:?}");
        }
        if run >= 5 {
            times.push(took);
        }
        last = result.structured_content;
    }
    if let Some(report) = last {
        println!("{}", report["summary"].as_str().unwrap_or_default());
    }
    print_times("validate_code (MCP over stdio, release server)", &mut times);
    client.cancel().await?;
    Ok(())
}

fn with_pack(dir: &Path, code: &str, runs: usize) -> anyhow::Result<()> {
    let started = Instant::now();
    let checks = read_pack(dir)?;
    let count = checks.len();
    let set = CheckSet::build(checks, Vec::new(), false);
    println!(
        "pack: {count} regex validations read, {} runnable, {} patterns skipped, compiled in {:?}",
        set.checks().len(),
        set.skipped().len(),
        started.elapsed()
    );
    let set = Arc::new(set);
    let mut times = Vec::with_capacity(runs);
    for run in 0..runs + 5 {
        let started = Instant::now();
        let applicable = set.applicable(PATH, |_| true);
        let findings = set.run(&applicable, code);
        if run >= 5 {
            times.push(started.elapsed());
        }
        if run == 0 {
            println!(
                "{} checks apply, {} failed, {} unfinished",
                findings.ran,
                findings.failures.len(),
                findings.unfinished.len()
            );
        }
    }
    print_times("checks on the file (no store)", &mut times);
    Ok(())
}

fn print_times(what: &str, times: &mut [Duration]) {
    times.sort();
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    println!(
        "{what}: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms over {} runs",
        at(0.50).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        times[times.len() - 1].as_secs_f64() * 1e3,
        times.len()
    );
}

/// The regex validations of every `validations.yaml` under `dir`, read leniently (the pack's
/// `pattern`/`match`, `applies_to`/`file_glob`, either severity vocabulary).
fn read_pack(dir: &Path) -> anyhow::Result<Vec<Check>> {
    let mut checks = Vec::new();
    let files = ignore::WalkBuilder::new(dir)
        .standard_filters(false)
        .build();
    for entry in files.filter_map(Result::ok) {
        if entry.file_name() != "validations.yaml" {
            continue;
        }
        let text = std::fs::read_to_string(entry.path())?;
        let Ok(yaml) = serde_norway::from_str::<serde_json::Value>(&text) else {
            continue;
        };
        let skill = entry.path().parent().and_then(|p| p.file_name());
        let skill = skill.map(|s| s.to_string_lossy().into_owned());
        for item in yaml["validations"].as_array().into_iter().flatten() {
            let kind = item["type"].as_str().unwrap_or("regex");
            let patterns = strings(item.get("pattern").or(item.get("match")));
            if !kind.eq_ignore_ascii_case("regex") || patterns.is_empty() {
                continue;
            }
            let severity = item["severity"].as_str().and_then(Severity::parse);
            let validation = Validation {
                skill: skill.clone(),
                id: item["id"].as_str().unwrap_or_default().to_owned(),
                name: item["name"].as_str().unwrap_or_default().to_owned(),
                severity,
                kind: "regex".into(),
                patterns,
                message: item["message"].as_str().unwrap_or_default().to_owned(),
                fix_action: item["fix_action"].as_str().map(str::to_owned),
                applies_to: strings(item.get("applies_to").or(item.get("file_glob"))),
            };
            checks.push(Check {
                validation,
                severity: severity.unwrap_or(Severity::Warning),
                tags: Vec::new(),
            });
        }
    }
    Ok(checks)
}

fn strings(value: Option<&serde_json::Value>) -> Vec<String> {
    match value {
        Some(serde_json::Value::String(text)) => vec![text.clone()],
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .filter_map(|item| item.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

/// A TypeScript module of `lines` lines: imports, types, services with fetch calls, React
/// components, logging and error handling, repeated with varying names.
fn typescript(lines: usize) -> String {
    const HEAD: &str = "import React, { useEffect, useState } from 'react';\nimport { z } from 'zod';\nimport type { Order, Customer } from '../types';\n\n";
    const BLOCKS: [&str; 6] = [
        "export interface OrderLine{n} {\n  id: string;\n  quantity: number;\n  price: number;\n  note?: string;\n}\n\n",
        "export async function loadOrders{n}(customer: Customer): Promise<Order[]> {\n  const response = await fetch(`/api/customers/${customer.id}/orders?page={n}`);\n  if (!response.ok) {\n    throw new Error(`orders failed: ${response.status}`);\n  }\n  const data = await response.json();\n  return data.orders as Order[];\n}\n\n",
        "export function OrderList{n}({ customer }: { customer: Customer }) {\n  const [orders, setOrders] = useState<Order[]>([]);\n  useEffect(() => {\n    loadOrders{n}(customer).then(setOrders).catch((error) => console.error(error));\n  }, [customer]);\n  return (\n    <ul className=\"orders\">\n      {orders.map((order) => (\n        <li key={order.id}>{order.total.toFixed(2)}</li>\n      ))}\n    </ul>\n  );\n}\n\n",
        "const schema{n} = z.object({\n  email: z.string().email(),\n  amount: z.number().positive(),\n});\n\nexport function parseInput{n}(input: unknown) {\n  const parsed = schema{n}.safeParse(input);\n  if (!parsed.success) {\n    console.log('invalid input', parsed.error);\n    return null;\n  }\n  return parsed.data;\n}\n\n",
        "export class OrderCache{n} {\n  private entries = new Map<string, Order>();\n  get(id: string): Order | undefined {\n    return this.entries.get(id);\n  }\n  set(order: Order): void {\n    this.entries.set(order.id, order);\n    localStorage.setItem('order-{n}', JSON.stringify(order));\n  }\n}\n\n",
        "export const totals{n} = (orders: Order[]): number =>\n  orders.reduce((sum, order) => sum + order.total, 0);\n// TODO: round totals to cents before display\nexport const API_URL_{n} = process.env.API_URL ?? 'http://localhost:3000';\n\n",
    ];
    let mut out = String::from(HEAD);
    let mut n = 0;
    while out.lines().count() < lines {
        out.push_str(&BLOCKS[n % BLOCKS.len()].replace("{n}", &n.to_string()));
        n += 1;
    }
    out.lines().take(lines).collect::<Vec<_>>().join("\n") + "\n"
}
