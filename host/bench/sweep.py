"""Concurrency sweep: how `claribi-host serve` behaves as more tool calls are in flight at once.

What is measured
    `close-standin` runs with `--latency-ms 100` (every /mcp request it answers takes 100 ms more, like
    a distant vendor) and JSON responses. K connections to it are made in one data directory
    (`close-1` … `close-K`, the same stand-in, different names), and `claribi-host serve --http` serves
    them with `--max-result-bytes 10000000` (the result comes whole, never summarized).

    One asyncio client process (raw JSON-RPC over httpx keep-alive connections, in pools of 8 per httpx
    client; one MCP session, as one engine would hold, or --sessions S) keeps exactly N calls of
    `<connection>__find_opportunities` in flight — N workers, each sending its next call when the last
    one answered — for N in 1, 8, 64, 256, 1000, each level running max(4·N, 200) calls. Twice: every
    call to `close-1` (one connection), then calls spread round-robin over all K connections. Per level:

      * throughput: successful calls per second of wall time;
      * latency p50/p99 of every call (errors included: that is what the engine waits);
      * errors by kind: the result's `structuredContent.error.kind` (`busy` when a call waited too
        long for an instance, `unavailable`, ...), `jsonrpc CODE`, `http STATUS`, or the client's
        transport error (`transport ReadTimeout`, ...);
      * memory of the serve process: peak VmRSS polled from /proc/PID/status every 50 ms during the
        level, and VmHWM (the kernel's own peak) at the end;
      * the duration serve itself logs for those calls (`claribi::call ... duration_ms=`), read from
        its log: the time inside the host's service path; the client's latency minus it is time spent
        before or after (HTTP, the MCP session, result shaping, the client);
      * CPU used during the level by serve, the stand-in and the client (/proc/PID/stat), and by
        everything else on the machine (/proc/stat), since all share the machine's cores;
      * "≈ busy": throughput × the level-1 p50 (Little's law): about how many calls the host actually
        runs at once, to compare with its instance caps, which are read from host/src and printed.

    The client's clock per call runs from sending the POST to the last byte of the response. The client
    shares the machine's cores with serve and the stand-in, so it is kept cheap: a large successful
    response is recognised without parsing it (see common.outcome), workers share httpx clients of 8
    connections each (one pool of 1000 spends a core scanning itself), and `sniffio` is installed
    (httpcore imports it on every request). A level whose "o" CPU column is high shared the machine.

Outputs: a table on stdout, target/bench/sweep.json, host/docs/bench/sweep.png.

How to run
    host/bench/run.sh
    BIN_DIR=target/debug SWEEP_LEVELS=1,8,64 SWEEP_MIN_CALLS=16 SWEEP_PER_LEVEL=2 host/bench/run.sh
    target/bench-venv/bin/python host/bench/sweep.py --bin-dir target/release --levels 1,8,64,256,1000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import re
import resource
import shlex
import time
from collections import Counter
from pathlib import Path

import httpx
from importlib.metadata import version

import common
from common import BenchError, RawClient, TOOL, TOOL_ARGS, percentile


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bin-dir", type=Path, default=common.REPO / "target" / "release",
                   help="directory holding claribi-host and close-standin (default: target/release)")
    p.add_argument("--levels", default="1,8,64,256,1000", help="calls in flight, comma-separated")
    p.add_argument("--per-level", type=int, default=4, help="calls per level = max(PER_LEVEL x N, MIN_CALLS)")
    p.add_argument("--min-calls", type=int, default=200, help="see --per-level")
    p.add_argument("--connections", type=int, default=4, help="connections to spread over (default 4)")
    p.add_argument("--latency-ms", type=int, default=100, help="the stand-in's --latency-ms")
    p.add_argument("--max-result-bytes", type=int, default=10_000_000, help="serve's --max-result-bytes")
    p.add_argument("--sessions", type=int, default=1,
                   help="MCP sessions the workers are spread over (default 1, as one engine holds)")
    p.add_argument("--call-timeout", type=float, default=120.0, help="client timeout per call, seconds")
    p.add_argument("--level-timeout", type=float, default=600.0, help="a level still running is stopped, seconds")
    p.add_argument("--json-out", type=Path, default=common.REPO / "target" / "bench" / "sweep.json")
    p.add_argument("--png", type=Path, default=common.REPO / "host" / "docs" / "bench" / "sweep.png")
    return p.parse_args()


def instance_caps() -> dict:
    """The host's instance caps as host/src says them now (the binary may be older than the source):
    `max_instances` in HostConfig::new (host/src/service/mod.rs) and `per_connection_max` in
    Runtime::new (host/src/sandbox/runtime.rs)."""
    out: dict = {"source": "host/src/service/mod.rs, host/src/sandbox/runtime.rs"}
    try:
        svc = (common.REPO / "host/src/service/mod.rs").read_text()
        rt = (common.REPO / "host/src/sandbox/runtime.rs").read_text()
    except OSError as e:
        out["note"] = f"cannot read the source: {e}"
        return out
    m = re.search(r"HostConfig\s*\{[^}]*max_instances:\s*(\d+)", svc)
    if m:
        out["max_instances"] = int(m.group(1))
    line = re.search(r"per_connection_max:\s*([^,\n]*max_instances[^,\n]*),", rt)
    if line:
        out["per_connection_expr"] = line.group(1).strip()
        f = re.fullmatch(r"\(max_instances\s*/\s*(\d+)\)\.max\((\d+)\)", out["per_connection_expr"])
        if f and "max_instances" in out:
            out["per_connection_max"] = max(out["max_instances"] // int(f.group(1)), int(f.group(2)))
    overrides = [
        str(p.relative_to(common.REPO)) for p in (common.REPO / "host/src/cli").glob("*.rs")
        if "max_instances" in p.read_text()
    ]
    out["cli_overrides"] = overrides
    return out


def describe_caps(caps: dict) -> str:
    if "max_instances" not in caps:
        return f"unknown ({caps.get('note', 'not found in ' + caps['source'])})"
    per = caps.get("per_connection_max", f"`{caps.get('per_connection_expr', '?')}`")
    text = (f"{caps['max_instances']} instances on the host (HostConfig::new max_instances), "
            f"{per} per connection (per_connection_max = {caps.get('per_connection_expr', '?')}); "
            f"a call waiting longer than its call timeout (or starting with < 1/10 of it left) is `busy`")
    if caps.get("cli_overrides"):
        text += f"; the CLI sets max_instances in {', '.join(caps['cli_overrides'])}"
    return text + " [read from the source at run time]"


LOG_LINE = re.compile(r'claribi::call: .*tool="find_opportunities" duration_ms=(\d+)')


def logged_durations(log: Path, offset: int) -> list[float]:
    """duration_ms of the find_opportunities calls serve logged past `offset` of its log: the time a
    call spent inside the host's service (instance slot wait included), from its own clock."""
    with open(log, "rb") as f:
        f.seek(offset)
        text = f.read().decode(errors="replace")
    return [float(m.group(1)) for m in LOG_LINE.finditer(text)]


async def run_level(clients: list[RawClient], tools: list[str], in_flight: int, total: int,
                    serve: common.Child, standin: common.Child, level_timeout: float) -> dict:
    """Keep `in_flight` calls going until `total` have been sent (worker w uses clients[w]); poll
    serve's memory and everyone's CPU meanwhile."""
    counter = itertools.count()
    latencies: list[float] = []
    kinds: Counter = Counter()
    sizes: list[int] = []
    peak = {"rss_kib": 0, "threads": 0}

    async def worker(client: RawClient) -> None:
        while (i := next(counter)) < total:
            t0 = time.perf_counter()
            try:
                call = await client.call_tool(tools[i % len(tools)], TOOL_ARGS)
                kind = f"http {call.status}" if call.status != 200 else common.outcome(call.message)[0]
                if kind == "ok" and len(sizes) < 1:
                    sizes.append(call.body_bytes)
            except httpx.HTTPError as e:
                kind = f"transport {type(e).__name__}"
            except ValueError as e:  # broken JSON
                kind = f"bad-json {type(e).__name__}"
            latencies.append((time.perf_counter() - t0) * 1000)
            kinds[kind] += 1

    async def poll() -> None:
        while True:
            st = common.proc_status(pid)
            peak["rss_kib"] = max(peak["rss_kib"], st.get("VmRSS", 0))
            peak["threads"] = max(peak["threads"], st.get("Threads", 0))
            await asyncio.sleep(0.05)

    pid = serve.pid
    log_offset = serve.log_path.stat().st_size
    pids = {"serve": pid, "stand-in": standin.pid, "client": os.getpid()}
    cpu0 = {k: common.cpu_seconds(p) for k, p in pids.items()}
    machine0 = common.machine_busy_seconds()
    poller = asyncio.create_task(poll())
    started = time.perf_counter()
    tasks = [asyncio.create_task(worker(clients[w])) for w in range(min(in_flight, total))]
    done, pending = await asyncio.wait(tasks, timeout=level_timeout)
    for t in pending:
        t.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    seconds = time.perf_counter() - started
    cpu = {k: 100 * (common.cpu_seconds(p) - cpu0[k]) / seconds for k, p in pids.items()}
    cpu["other"] = max(0.0, 100 * (common.machine_busy_seconds() - machine0) / seconds - sum(cpu.values()))
    poller.cancel()
    await asyncio.gather(poller, return_exceptions=True)
    for t in done:
        if t.exception() is not None:
            raise t.exception()
    await asyncio.sleep(0.3)  # let the drain thread write serve's last log lines
    logged = logged_durations(serve.log_path, log_offset)
    finished = sum(kinds.values())
    if finished < total:
        kinds["unfinished (level timeout)"] += total - finished
    ok = kinds.get("ok", 0)
    return {
        "in_flight": in_flight,
        "calls": total,
        "seconds": seconds,
        "ok": ok,
        "throughput": ok / seconds if seconds > 0 else 0.0,
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "max_ms": max(latencies) if latencies else float("nan"),
        "logged_calls": len(logged),
        "logged_p50_ms": percentile(logged, 50),
        "logged_p99_ms": percentile(logged, 99),
        "errors": {k: v for k, v in sorted(kinds.items()) if k != "ok"},
        "peak_rss_mib": peak["rss_kib"] / 1024,
        "cpu_percent": cpu,
        "peak_threads": peak["threads"],
        "result_bytes": sizes[0] if sizes else None,
        "timed_out": bool(pending),
    }


# Workers per httpx client. httpx's pool (httpcore) scans all its connections for every request it
# assigns, so one client with 1000 connections spends most of a core in that scan (measured: at 256 in
# flight it, not the server, capped throughput). Small pools keep the client cheap.
WORKERS_PER_POOL = 8


async def sweep(serve: common.Child, standin: common.Child, serve_url: str, names: list[str], levels: list[int],
                args) -> dict:
    pools = -(-max(levels) // WORKERS_PER_POOL)
    limits = httpx.Limits(max_connections=WORKERS_PER_POOL, max_keepalive_connections=WORKERS_PER_POOL)
    async with contextlib.AsyncExitStack() as stack:
        https = [await stack.enter_async_context(httpx.AsyncClient(timeout=httpx.Timeout(args.call_timeout), limits=limits))
                 for _ in range(pools)]
        sessions = [RawClient(https[i % pools], serve_url) for i in range(args.sessions)]
        for session in sessions:
            await session.initialize()
        # worker w: pool w // WORKERS_PER_POOL, session w mod S
        clients = [sessions[w % len(sessions)].sharing(https[w // WORKERS_PER_POOL]) for w in range(max(levels))]
        listed = await clients[0].list_tools()
        tools = [f"{n}__{TOOL}" for n in names]
        missing = [t for t in tools if t not in listed]
        if missing:
            raise BenchError(f"serve does not list {', '.join(missing)}")
        modes = {"one connection": tools[:1], f"spread over {len(tools)}": tools}
        results: dict = {}
        for mode, mode_tools in modes.items():
            results[mode] = []
            for n in levels:
                total = max(args.per_level * n, args.min_calls)
                r = await run_level(clients, mode_tools, n, total, serve, standin, args.level_timeout)
                first = results[mode][0] if results[mode] else r
                r["busy_estimate"] = r["throughput"] * first["p50_ms"] / 1000 if first["in_flight"] == 1 else None
                results[mode].append(r)
                print_row(mode, r, flush=True)
                if not serve.alive():
                    r["serve_exit"] = serve.proc.returncode
                    print(f"!! serve exited ({serve.proc.returncode}) during this level; see {serve.log_path}")
                    return results
        return results


HEADER = (f"{'mode':<16} {'in flight':>9} {'calls':>6} {'secs':>7} {'ok/s':>7} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'max ms':>8} {'log p50':>8} {'log p99':>8} {'≈busy':>6} {'RSS MiB':>8} {'thr':>4} {'CPU% s/v/c/o':>14}  errors")


def print_row(mode: str, r: dict, flush: bool = False) -> None:
    errors = ", ".join(f"{k}: {v}" for k, v in r["errors"].items()) or "-"
    c = r["cpu_percent"]
    cpu = f"{c['serve']:.0f}/{c['stand-in']:.0f}/{c['client']:.0f}/{c['other']:.0f}"
    print(f"{mode:<16} {r['in_flight']:>9} {r['calls']:>6} {r['seconds']:>7.1f} {r['throughput']:>7.1f} "
          f"{r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f} {r['max_ms']:>8.1f} "
          f"{r['logged_p50_ms']:>8.1f} {r['logged_p99_ms']:>8.1f} "
          f"{'-' if r['busy_estimate'] is None else format(r['busy_estimate'], '.1f'):>6} "
          f"{r['peak_rss_mib']:>8.1f} {r['peak_threads']:>4} {cpu:>14}  {errors}", flush=flush)


def plot(results: dict, path: Path, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, (lat, thr) = plt.subplots(1, 2, figsize=(12, 4.8))
    for (mode, rows), color in zip(results.items(), ("tab:blue", "tab:orange", "tab:green")):
        x = [r["in_flight"] for r in rows]
        lat.plot(x, [r["p50_ms"] for r in rows], "o-", color=color, label=f"{mode} p50")
        lat.plot(x, [r["p99_ms"] for r in rows], "s--", color=color, label=f"{mode} p99")
        thr.plot(x, [r["throughput"] for r in rows], "o-", color=color, label=mode)
    levels = sorted({r["in_flight"] for rows in results.values() for r in rows})
    for ax in (lat, thr):
        ax.set_xscale("log")
        ax.set_xticks(levels, [str(n) for n in levels])
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set_xlabel("calls in flight")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    lat.set_yscale("log")
    lat.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    lat.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    lat.set_ylabel("latency (ms)")
    lat.set_title("latency per call")
    thr.set_ylabel("successful calls / s")
    thr.set_title("throughput")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run() -> None:
    args = parse_args()
    levels = [int(x) for x in args.levels.split(",") if x.strip()]
    if not levels or min(levels) < 1:
        raise BenchError(f"--levels {args.levels!r}: give positive numbers, e.g. 1,8,64")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < max(levels) * 2 + 256:  # one socket per call in flight, plus the files of this process
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(levels) * 2 + 256), hard))
    bin_dir = args.bin_dir.resolve()
    common.check_binaries(bin_dir)
    tmp = common.tmp_root() / "sweep"
    tmp.mkdir(parents=True, exist_ok=True)
    data_dir = tmp / "data"
    names = [f"close-{i + 1}" for i in range(args.connections)]
    caps = instance_caps()
    children: list[common.Child] = []
    try:
        standin, standin_url, api_key = common.start_standin(bin_dir, tmp, latency_ms=args.latency_ms)
        children.append(standin)
        connect_argv = []
        for name in names:
            connect_argv = common.connect(bin_dir, data_dir, name, standin_url, api_key)
        serve, serve_url = common.start_serve(bin_dir, data_dir, tmp, args.max_result_bytes)
        children.append(serve)
        common.print_header("Concurrency sweep through claribi-host serve", {
            "binaries": f"{bin_dir} ({common.binary_version(bin_dir / 'claribi-host')})",
            "client": f"httpx {version('httpx')}, raw JSON-RPC, asyncio, {args.sessions} MCP session(s)",
            "stand-in": shlex.join(standin.argv) + f"  -> {standin_url}",
            "connect": f"{len(names)}x " + shlex.join(connect_argv).replace(names[-1], "close-I", 1)
                       + f"  (I = 1..{len(names)}, {common.API_KEY_ENV}=<stand-in key>)",
            "serve": shlex.join(serve.argv) + f"  -> {serve_url} (pid {serve.pid})",
            "levels": f"{levels}, calls per level max({args.per_level}·N, {args.min_calls}), "
                      f"client timeout {args.call_timeout:.0f} s per call",
            "instance cap": describe_caps(caps),
        })
        print()
        print(HEADER)
        results = asyncio.run(sweep(serve, standin, serve_url, names, levels, args))
        end = common.proc_status(serve.pid)
        alive = serve.alive()
    finally:
        for child in reversed(children):
            child.stop()

    print()
    print(f"serve process: VmHWM (peak RSS over the whole sweep) {end.get('VmHWM', 0) / 1024:.1f} MiB, "
          f"VmRSS at the end {end.get('VmRSS', 0) / 1024:.1f} MiB, {'alive' if alive else 'EXITED'} at the end")
    print("columns: ok/s = successful calls per second; p50/p99/max = the client's latency over every call; "
          "log p50/p99 = duration_ms serve logged for the same calls (its service path, slot wait included);\n"
          "         ≈busy = ok/s × level-1 p50 (calls the host runs at once); RSS = peak VmRSS polled during "
          "the level; thr = peak threads;\n"
          "         CPU% s/v/c/o = CPU used during the level by serve / the stand-in / this client / other processes "
          f"(100 = one core; the machine has {os.cpu_count()})")
    title = (f"claribi-host serve, find_opportunities via stand-in with {args.latency_ms} ms latency; "
             f"{common.machine()['cpu']}, {common.machine()['cores']} cores; cap: "
             f"{caps.get('max_instances', '?')} instances, {caps.get('per_connection_max', '?')} per connection")
    plot(results, args.png, title)
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps({
        "machine": common.machine(), "latency_ms": args.latency_ms, "connections": names,
        "levels": levels, "instance_caps": caps, "serve_vmhwm_kib": end.get("VmHWM"),
        "serve_alive_at_end": alive, "results": results,
    }, indent=2))
    print(f"figures: {args.json_out}; plot: {args.png}")


if __name__ == "__main__":
    common.main_guard(run)
