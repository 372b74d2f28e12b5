"""SDK anchor: what `claribi-host serve` adds to one MCP tool call, seen from a real MCP client.

What is measured
    The same `tools/call` — Close's `find_opportunities` with {"status_type": "active",
    "sort_by": "largest_value"}, a result of tens to hundreds of KB (printed) — along four paths, interleaved call by call
    in rounds (the order rotates every round, so drift and warm-up hit every path alike):

      (a) raw  -> stand-in   a minimal JSON-RPC client (httpx, keep-alive, one POST per call,
                             `initialize` once) straight to `close-standin`, with the
                             `Close-API-Key` and `Close-Scope: mcp.read` headers
      (b) SDK  -> stand-in   the official MCP Python SDK (`mcp.client.streamable_http` +
                             `ClientSession`) straight to the stand-in, same headers
      (c) raw  -> serve      the raw client through `claribi-host serve --http` (tool
                             `<connection>__find_opportunities`): serve, a fresh WebAssembly instance
                             of the Close connector, the host's wire checks, then the stand-in
      (d) SDK  -> serve      the SDK client through serve

    The raw client's clock stops when the last byte of the HTTP response has arrived (it parses after);
    the SDK's includes its own parsing and validation, as an engine built on it would pay. The host's
    added cost is c−a (raw) and d−b (SDK), at p50 and p99, and the ratios c/a and d/b. The stand-in runs
    with JSON responses and no added latency; serve runs with `--max-result-bytes 10000000`, so the
    result comes whole rather than summarized.

How to run
    host/bench/run.sh                          # builds nothing if target/release has both binaries
    BIN_DIR=target/debug ANCHOR_CALLS=20 host/bench/run.sh   # a quick check on debug binaries
    target/bench-venv/bin/python host/bench/sdk_anchor.py --bin-dir target/release --calls 200
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import shlex
import time
from pathlib import Path

import httpx
from importlib.metadata import version

from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
import mcp.types

import common
from common import BenchError, RawClient, TOOL, TOOL_ARGS, percentile

CONNECTION = "close"
TIMEOUT = httpx.Timeout(120.0)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bin-dir", type=Path, default=common.REPO / "target" / "release",
                   help="directory holding claribi-host and close-standin (default: target/release)")
    p.add_argument("--calls", type=int, default=200, help="timed calls per path (default 200)")
    p.add_argument("--warmup", type=int, default=10, help="untimed calls per path first (default 10)")
    p.add_argument("--max-result-bytes", type=int, default=10_000_000, help="serve's --max-result-bytes")
    p.add_argument("--json-out", type=Path, default=common.REPO / "target" / "bench" / "anchor.json",
                   help="where to write the figures as JSON")
    return p.parse_args()


class SdkPath:
    """An MCP Python SDK session kept open; `call()` times `ClientSession.call_tool`."""

    def __init__(self, session: ClientSession):
        self.session = session

    async def call(self, name: str) -> tuple[float, int]:
        t0 = time.perf_counter()
        result = await self.session.call_tool(name, TOOL_ARGS)
        seconds = time.perf_counter() - t0
        if result.isError:
            kind = ((result.structuredContent or {}).get("error") or {}).get("kind", "tool-error")
            raise BenchError(f"SDK call of {name} failed: {kind}: {result.content[0].text[:200] if result.content else ''}")
        text_bytes = sum(len(c.text.encode()) for c in result.content if isinstance(c, mcp.types.TextContent))
        return seconds, text_bytes


async def open_sdk(stack: contextlib.AsyncExitStack, url: str, headers: dict[str, str]) -> SdkPath:
    http = await stack.enter_async_context(create_mcp_http_client(headers=headers, timeout=TIMEOUT))
    read, write, _ = await stack.enter_async_context(streamable_http_client(url, http_client=http))
    session = await stack.enter_async_context(ClientSession(read, write))
    await session.initialize()
    return SdkPath(session)


async def raw_call(client: RawClient, name: str) -> tuple[float, int]:
    call = await client.call_tool(name, TOOL_ARGS)
    if call.status != 200:
        raise BenchError(f"raw call of {name} at {client.url}: HTTP {call.status}: {call.message[:200]}")
    kind, _ = common.outcome(call.message, full=True)
    if kind != "ok":
        raise BenchError(f"raw call of {name} at {client.url}: {kind}")
    return call.seconds, call.body_bytes


async def measure(standin_url: str, api_key: str, serve_url: str, calls: int, warmup: int) -> dict:
    vendor_headers = {"Close-API-Key": api_key, "Close-Scope": "mcp.read"}
    served_tool = f"{CONNECTION}__{TOOL}"
    limits = httpx.Limits(max_connections=4, max_keepalive_connections=4)
    async with contextlib.AsyncExitStack() as stack:
        http_a = await stack.enter_async_context(httpx.AsyncClient(timeout=TIMEOUT, limits=limits))
        http_c = await stack.enter_async_context(httpx.AsyncClient(timeout=TIMEOUT, limits=limits))
        raw_a = RawClient(http_a, standin_url, vendor_headers, mcp.types.LATEST_PROTOCOL_VERSION)
        raw_c = RawClient(http_c, serve_url, {}, mcp.types.LATEST_PROTOCOL_VERSION)
        await raw_a.initialize()
        await raw_c.initialize()
        tools = await raw_c.list_tools()
        if served_tool not in tools:
            raise BenchError(f"serve does not list {served_tool} (it lists {len(tools)} tools)")
        sdk_b = await open_sdk(stack, standin_url, vendor_headers)
        sdk_d = await open_sdk(stack, serve_url, {})

        paths = {
            "a": ("raw -> stand-in", lambda: raw_call(raw_a, TOOL)),
            "b": ("SDK -> stand-in", lambda: sdk_b.call(TOOL)),
            "c": ("raw -> serve", lambda: raw_call(raw_c, served_tool)),
            "d": ("SDK -> serve", lambda: sdk_d.call(served_tool)),
        }
        order = list(paths)
        for _ in range(warmup):
            for key in order:
                await paths[key][1]()
        times: dict[str, list[float]] = {k: [] for k in order}
        sizes: dict[str, int] = {}
        for rnd in range(calls):
            rotated = order[rnd % len(order):] + order[: rnd % len(order)]
            for key in rotated:
                seconds, size = await paths[key][1]()
                times[key].append(seconds * 1000)
                sizes[key] = size
        return {
            key: {
                "path": paths[key][0],
                "calls": len(times[key]),
                "p50_ms": percentile(times[key], 50),
                "p99_ms": percentile(times[key], 99),
                "min_ms": min(times[key]),
                "mean_ms": sum(times[key]) / len(times[key]),
                # raw paths: HTTP response body bytes; SDK paths: bytes of the result's text blocks
                "bytes": sizes[key],
                "bytes_what": "HTTP body" if key in ("a", "c") else "text content",
            }
            for key in order
        }


def run() -> None:
    args = parse_args()
    # The SDK ends a session with DELETE and warns "Session termination failed: 202" when the server
    # answers 202 Accepted (rmcp does) instead of 200; the session is ended all the same.
    logging.getLogger("mcp.client.streamable_http").setLevel(logging.ERROR)
    bin_dir = args.bin_dir.resolve()
    common.check_binaries(bin_dir)
    tmp = common.tmp_root() / "anchor"
    tmp.mkdir(parents=True, exist_ok=True)
    data_dir = tmp / "data"
    children: list[common.Child] = []
    try:
        standin, standin_url, api_key = common.start_standin(bin_dir, tmp)
        children.append(standin)
        connect_argv = common.connect(bin_dir, data_dir, CONNECTION, standin_url, api_key)
        serve, serve_url = common.start_serve(bin_dir, data_dir, tmp, args.max_result_bytes)
        children.append(serve)
        common.print_header("SDK anchor: one find_opportunities call along four paths", {
            "binaries": f"{bin_dir} ({common.binary_version(bin_dir / 'claribi-host')}, "
                        f"{common.binary_version(bin_dir / 'close-standin')})",
            "clients": f"mcp {version('mcp')} (protocol {mcp.types.LATEST_PROTOCOL_VERSION}), httpx {version('httpx')}",
            "stand-in": shlex.join(standin.argv) + f"  -> {standin_url}",
            "connect": shlex.join(connect_argv) + f"  ({common.API_KEY_ENV}=<stand-in key>)",
            "serve": shlex.join(serve.argv) + f"  -> {serve_url}",
            "calls": f"{args.calls} per path after {args.warmup} warm-up, interleaved in rotating rounds",
            "tool": f"{TOOL} {json.dumps(TOOL_ARGS)}",
        })
        res = asyncio.run(measure(standin_url, api_key, serve_url, args.calls, args.warmup))
        if not serve.alive():
            raise BenchError(f"serve exited ({serve.proc.returncode}) during the run; see {serve.log_path}")
        rss = common.proc_status(serve.pid)
    finally:
        for child in reversed(children):
            child.stop()

    print()
    print(f"{'path':<20} {'p50 ms':>9} {'p99 ms':>9} {'min ms':>9} {'bytes':>9}  (bytes of)")
    for key, r in res.items():
        print(f"({key}) {r['path']:<16} {r['p50_ms']:9.2f} {r['p99_ms']:9.2f} {r['min_ms']:9.2f} {r['bytes']:9d}  {r['bytes_what']}")
    added = {}
    for label, via, direct in (("raw", "c", "a"), ("SDK", "d", "b")):
        v, d = res[via], res[direct]
        added[label] = {
            "p50_ms": v["p50_ms"] - d["p50_ms"], "p99_ms": v["p99_ms"] - d["p99_ms"],
            "p50_ratio": v["p50_ms"] / d["p50_ms"], "p99_ratio": v["p99_ms"] / d["p99_ms"],
        }
        a = added[label]
        print(f"host added, {label:<3} ({via}-{direct}): p50 {a['p50_ms']:+.2f} ms ({a['p50_ratio']:.2f}x), "
              f"p99 {a['p99_ms']:+.2f} ms ({a['p99_ratio']:.2f}x)")
    print(f"serve process: VmHWM {rss.get('VmHWM', 0) / 1024:.1f} MiB, VmRSS {rss.get('VmRSS', 0) / 1024:.1f} MiB at the end")

    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps({
        "machine": common.machine(), "paths": res, "host_added": added,
        "serve_vmhwm_kib": rss.get("VmHWM"), "calls": args.calls, "warmup": args.warmup,
    }, indent=2))
    print(f"figures: {args.json_out}")


if __name__ == "__main__":
    common.main_guard(run)
