#!/usr/bin/env python3
"""Checks a VitaSync MCP server with the official MCP Python SDK (package `mcp`, 2.x).

Usage:
    mcp_client_check.py stdio <vitasync binary> <api base url> <api key> <user id> <day>
    mcp_client_check.py http  <mcp url>         <api base url> <api key> <user id> <day>

Over the chosen transport it initialises (classic handshake), lists the nine tools, calls each
with valid and with invalid arguments, reads a resource, subscribes to the user's context,
pushes a resting-heart-rate sample for 2024-03-<day> through the REST API and waits for the
`notifications/resources/updated` that must follow. Then it connects again in the SDK's default
("auto") mode, which probes for the newest protocol first (2026-07-28), calls a tool, listens
(`subscriptions/listen`) to the user's scores, pushes a sample for 2024-03-<day + 2> and waits
for the update event. The stdio server is
started with this process's environment (DATABASE_URL, VITASYNC_DATA_DIR, VITASYNC_API_KEY).
Prints one line per check; exits non-zero on the first failure.
"""

import asyncio
import json
import os
import sys
import time
import urllib.request

import httpx2
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

TOOLS = {
    "list_users", "list_connections", "query_health_metrics", "get_events",
    "get_personal_records", "get_health_context", "get_anomaly_alerts", "get_correlations",
    "get_health_scores",
}


def fail(msg):
    print(f"FAIL: {msg}", flush=True)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def target(kind, where, key):
    if kind == "stdio":
        return StdioServerParameters(command=where, args=["mcp"], env=dict(os.environ))
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=30)
    return streamable_http_client(where, http_client=http)


def ingest(api, key, user, day):
    body = json.dumps({"samples": [{
        "metric": "resting_heart_rate", "value": 70 + day,
        "recorded_at": f"2024-03-{day:02d}T06:00:00Z"}]}).encode()
    req = urllib.request.Request(
        f"{api}/v1/users/{user}/health", data=body, method="POST",
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        check(r.status == 200, f"ingest answered {r.status}")


def notification_uri(message):
    m = getattr(message, "root", message)
    if getattr(m, "method", None) == "notifications/resources/updated":
        return m.params.uri
    return None


async def legacy(kind, where, api, key, user, day):
    updates = asyncio.Queue()

    async def on_message(message):
        uri = notification_uri(message)
        if uri is not None:
            await updates.put(uri)

    async with Client(target(kind, where, key), mode="legacy", message_handler=on_message) as c:
        check(c.server_info is not None and c.server_info.name == "vitasync", f"server info {c.server_info}")
        names = {t.name for t in (await c.list_tools()).tools}
        check(names == TOOLS, f"tools {sorted(names)}")
        print(f"{kind}: initialised, nine tools", flush=True)

        valid = {
            "list_users": {"search": ""},
            "list_connections": {"user_id": user},
            "query_health_metrics": {"user_id": user, "granularity": "daily"},
            "get_events": {"user_id": user},
            "get_personal_records": {"user_id": user},
            "get_health_context": {"user_id": user},
            "get_anomaly_alerts": {"user_id": user},
            "get_correlations": {"user_id": user},
            "get_health_scores": {"user_id": user, "from": "2024-03-01"},
        }
        invalid = {
            "list_users": ({"limit": 5000}, "limit"),
            "list_connections": ({"status": "sleepy"}, "status"),
            "query_health_metrics": ({"user_id": user, "granularity": "hourly"}, "granularity"),
            "get_events": ({"user_id": user, "type": "nap"}, "type"),
            "get_personal_records": ({"user_id": user, "metric": "nope"}, "metric"),
            "get_health_context": ({"user_id": "not-a-uuid"}, "user_id"),
            "get_anomaly_alerts": ({"user_id": user, "severity": "huge"}, "severity"),
            "get_correlations": ({"user_id": user, "lag_days": 7}, "lag_days"),
            "get_health_scores": ({"user_id": user, "to": "yesterday"}, "to"),
        }
        for name, args in valid.items():
            r = await c.call_tool(name, args)
            check(not r.is_error, f"{name}({args}) failed: {r.content}")
            check(isinstance(r.structured_content, dict) and "data" in r.structured_content,
                  f"{name} has no structured data: {r.structured_content}")
        users = (await c.call_tool("list_users", {})).structured_content["data"]
        check(any(u["id"] == user for u in users), f"user {user} not listed")
        for name, (args, field) in invalid.items():
            r = await c.call_tool(name, args)
            text = r.content[0].text if r.content else ""
            check(r.is_error and field in text, f"{name}({args}) -> {r.is_error} {text}")
        print(f"{kind}: nine tools answer valid and invalid arguments", flush=True)

        uri = f"vitasync://users/{user}/context"
        read = await c.read_resource(uri)
        doc = json.loads(read.contents[0].text)
        check("summary" in doc["data"], f"context resource: {doc}")
        print(f"{kind}: read {uri}", flush=True)

        await c.subscribe_resource(uri)
        start = time.monotonic()
        ingest(api, key, user, day)
        try:
            got = await asyncio.wait_for(updates.get(), timeout=10)
        except asyncio.TimeoutError:
            fail(f"{kind}: no resources/updated within 10 s")
        check(got == uri, f"updated {got}, expected {uri}")
        print(f"{kind}: notified {time.monotonic() - start:.2f} s after the ingest", flush=True)


async def auto(kind, where, api, key, user, day):
    async with Client(target(kind, where, key)) as c:
        r = await c.call_tool("get_health_context", {"user_id": user})
        check(not r.is_error, f"auto mode call failed: {r.content}")
        print(f"{kind}: auto mode ({c.protocol_version}) calls tools", flush=True)
        if c.protocol_version < "2026-07-28":
            return
        uri = f"vitasync://users/{user}/scores"
        async with c.listen(resource_subscriptions=[uri]) as sub:
            check(list(sub.honored.resource_subscriptions or []) == [uri], f"honored {sub.honored}")
            start = time.monotonic()
            ingest(api, key, user, day)
            try:
                event = await asyncio.wait_for(sub.__anext__(), timeout=10)
            except asyncio.TimeoutError:
                fail(f"{kind}: no update on subscriptions/listen within 10 s")
            check(getattr(event, "uri", None) == uri, f"event {event}")
            print(f"{kind}: listen notified {time.monotonic() - start:.2f} s after the ingest", flush=True)


def main():
    if len(sys.argv) != 7 or sys.argv[1] not in ("stdio", "http"):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    kind, where, api, key, user, day = sys.argv[1:]
    asyncio.run(legacy(kind, where, api.rstrip("/"), key, user, int(day)))
    asyncio.run(auto(kind, where, api.rstrip("/"), key, user, int(day) + 2))
    print(f"ok {kind}", flush=True)


if __name__ == "__main__":
    main()
