#!/usr/bin/env python3
"""A loop of the conformance flake of issue 21: a pooled httpx2 client POSTs a JSON-RPC body
to /mcp without a key (401), then sends its next request on the same pool, as the MCP SDK's
OAuth client does (401, then discovery). Counts the next requests that fail with a disconnect.

    $CODIFIER_VENV/bin/python scripts/refused-keepalive.py http://127.0.0.1:PORT [rounds, 500]

against a running `codifier serve` (httpx2 comes with scripts/requirements-test.txt).
"""
import asyncio
import collections
import sys

import httpx2

if len(sys.argv) < 2:
    sys.exit("usage: refused-keepalive.py http://127.0.0.1:PORT [rounds]")
BASE = sys.argv[1].rstrip("/")
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 500
BODY = '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"repro","version":"1"}}}'

async def main():
    failures = collections.Counter()
    closes = 0
    async with httpx2.AsyncClient(timeout=10) as client:
        for _ in range(ROUNDS):
            refused = await client.post(f"{BASE}/mcp", content=BODY,
                                        headers={"content-type": "application/json",
                                                 "accept": "application/json, text/event-stream"})
            assert refused.status_code == 401, refused.status_code
            closes += refused.headers.get("connection", "") == "close"
            try:
                found = await client.get(f"{BASE}/.well-known/oauth-protected-resource/mcp")
                assert found.status_code == 200, found.status_code
            except httpx2.HTTPError as error:
                failures[f"{type(error).__name__}: {error}"] += 1
    print(f"{ROUNDS} rounds: {sum(failures.values())} next requests failed; {closes} refusals said Connection: close")
    for what, n in failures.most_common():
        print(f"  {n} x {what}")

asyncio.run(main())
