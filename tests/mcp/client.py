"""Drives `bgtask mcp` (stdio) or the dashboard's /mcp (HTTP) with the
official MCP Python SDK's client, one scenario per invocation; prints one
JSON object with what it saw, for the Rust integration test to check.

Usage: client.py SCENARIO (stdio: BGTASK, the binary, runs `bgtask mcp` in
the current directory; http: MCP_URL and MCP_TOKEN).
"""

import asyncio
import json
import os
import sys
import time

import anyio
import httpx2
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client


def server():
    url = os.environ.get("MCP_URL")
    if url:
        token = os.environ["MCP_TOKEN"]
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=120)
        return streamable_http_client(url, http_client=http)
    return StdioServerParameters(
        command=os.environ["BGTASK"], args=["mcp"], env=dict(os.environ), cwd=os.getcwd()
    )


def dump(x):
    if hasattr(x, "model_dump"):
        return x.model_dump(mode="json", by_alias=True, exclude_none=True)
    return x


async def lists(c):
    tools = await c.list_tools()
    resources = await c.list_resources()
    templates = await c.list_resource_templates()
    prompts = await c.list_prompts()
    return {
        "protocol": c.protocol_version,
        "server": dump(c.server_info),
        "tools": [dump(t) for t in tools.tools],
        "resources": [r.uri for r in resources.resources],
        "templates": [t.uri_template for t in templates.resource_templates],
        "prompts": [p.name for p in prompts.prompts],
    }


async def call(c, name, args):
    r = await c.call_tool(name, args)
    return {
        "is_error": bool(r.is_error),
        "structured": r.structured_content,
        "text": "".join(getattr(b, "text", "") for b in r.content),
    }


async def main():
    scenario = sys.argv[1]
    args = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    out = {}
    progress = []

    async with Client(server(), read_timeout_seconds=300) as c:
        if scenario == "lists":
            out = await lists(c)
        elif scenario == "call":
            out = await call(c, args["tool"], args.get("arguments", {}))
        elif scenario == "calls":
            out = {"results": [await call(c, a["tool"], a.get("arguments", {})) for a in args["calls"]]}
        elif scenario == "progress":
            async def on_progress(p, total, message):
                progress.append({"progress": p, "total": total, "message": message})

            r = await c.call_tool(args["tool"], args.get("arguments", {}), progress_callback=on_progress)
            out = {"is_error": bool(r.is_error), "structured": r.structured_content, "progress": progress}
        elif scenario == "raw_error":
            try:
                r = await c.call_tool(args["tool"], args.get("arguments", {}))
                out = {"error": None, "is_error": bool(r.is_error), "text": "".join(getattr(b, "text", "") for b in r.content)}
            except Exception as e:  # noqa: BLE001 - the protocol error is what is checked
                out = {"error": str(e)}
        elif scenario == "cancel":
            try:
                await c.call_tool(args["tool"], args.get("arguments", {}), read_timeout_seconds=args["after"])
                out = {"cancelled": False}
            except Exception as e:  # noqa: BLE001 - the timeout is the point
                out = {"cancelled": True, "error": str(e)}
        elif scenario == "listen":
            async with c.listen(resource_subscriptions=args["uris"]) as sub:
                print(json.dumps({"listening": True}), flush=True)
                with anyio.fail_after(args.get("within", 60)):
                    async for event in sub:
                        out = {"uri": getattr(event, "uri", None), "repr": repr(event)}
                        break
        elif scenario == "read":
            r = await c.read_resource(args["uri"])
            out = {"contents": [json.loads(getattr(x, "text", "null")) for x in r.contents]}
        elif scenario == "prompt":
            r = await c.get_prompt(args["name"], args.get("arguments", {}))
            out = {"messages": [dump(m) for m in r.messages]}
        else:
            raise SystemExit(f"unknown scenario {scenario}")
    print(json.dumps(out))


if __name__ == "__main__":
    anyio.run(main)
