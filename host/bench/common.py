"""Shared pieces of the Python benchmark harness (see sdk_anchor.py and sweep.py).

* Processes: `close-standin` and `claribi-host serve` are started as children that die with this
  process (PR_SET_PDEATHSIG) and whose ids are appended to `$BENCH_TMP/pids`, so that run.sh's trap
  can end them even if Python itself is killed. Their output is drained into log files there.
* `RawClient`: a minimal MCP Streamable HTTP client over httpx (keep-alive, one POST per JSON-RPC
  request, `initialize` once to get a session, JSON or SSE responses). Its clock stops when the last
  byte of the response body has arrived; parsing happens after.
* Statistics (percentiles) and the machine description printed with every figure.
"""

from __future__ import annotations

import ctypes
import itertools
import json
import os
import platform
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
TOOL = "find_opportunities"
TOOL_ARGS = {"status_type": "active", "sort_by": "largest_value"}
API_KEY_ENV = "CLARIBI_BENCH_CLOSE_KEY"


class BenchError(Exception):
    """A failure reported as one line (`bench: ...`) with exit code 1."""


def main_guard(fn) -> None:
    """Run `fn()`, turning every failure into one line on stderr and exit code 1. SIGTERM (run.sh's
    trap) exits through the `finally` blocks, which stop the servers."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        fn()
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        sys.exit(130)
    except BenchError as e:
        print(f"bench: {e}", file=sys.stderr)
        sys.exit(1)
    except Exception as e:  # noqa: BLE001 - one line whatever went wrong
        print(f"bench: {type(e).__name__}: {e}".replace("\n", " "), file=sys.stderr)
        sys.exit(1)


# --------------------------------------------------------------------------------------------------
# Processes


def tmp_root() -> Path:
    """`$BENCH_TMP` (made by run.sh with mktemp), else a fresh temporary directory."""
    root = os.environ.get("BENCH_TMP")
    if root:
        return Path(root)
    return Path(tempfile.mkdtemp(prefix="claribi-bench."))


def _die_with_parent() -> None:
    # Ctrl-C stops both servers cleanly; a background job of a script starts with SIGINT ignored.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    # PR_SET_PDEATHSIG = 1: the kernel sends SIGTERM to the child when this process goes away.
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)
    except OSError:
        pass


class Child:
    """A child process whose stdout/stderr lines are copied to a log file by daemon threads;
    `wait_line(pattern)` returns the first match of a regex on a line of either stream."""

    def __init__(self, name: str, argv: list[str], tmp: Path, env: dict | None = None):
        self.name = name
        self.argv = argv
        self.log_path = tmp / f"{name}.log"
        self._log = open(self.log_path, "a", buffering=1)
        self._lines: list[str] = []
        self._cond = threading.Condition()
        self.proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            env={**os.environ, **(env or {})},
            preexec_fn=_die_with_parent,
        )
        with open(Path(os.environ.get("BENCH_TMP") or tmp) / "pids", "a") as f:  # read by run.sh's trap
            f.write(f"{self.proc.pid}\n")
        for stream, tag in ((self.proc.stdout, "out"), (self.proc.stderr, "err")):
            threading.Thread(target=self._drain, args=(stream, tag), daemon=True).start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _drain(self, stream, tag: str) -> None:
        for line in stream:
            self._log.write(f"[{tag}] {line}")
            with self._cond:
                if len(self._lines) < 10_000:  # only the start is searched
                    self._lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_line(self, pattern: str, timeout: float) -> re.Match:
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = 0
        with self._cond:
            while True:
                for line in self._lines[seen:]:
                    m = regex.search(line)
                    if m:
                        return m
                seen = len(self._lines)
                if self.proc.poll() is not None:
                    raise BenchError(
                        f"{self.name} exited ({self.proc.returncode}) before printing /{pattern}/; see {self.log_path}"
                    )
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BenchError(f"{self.name} printed no /{pattern}/ within {timeout:.0f} s; see {self.log_path}")
                self._cond.wait(min(left, 0.5))

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # both binaries stop cleanly on Ctrl-C
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def start_standin(bin_dir: Path, tmp: Path, latency_ms: int = 0, name: str = "standin") -> tuple[Child, str, str]:
    """Start `close-standin` on free ports with JSON responses; return (child, MCP URL, API key).
    It prints the MCP URL on stdout and `issuer ..., API key KEY, protocol ...` on stderr."""
    argv = [
        str(bin_dir / "close-standin"),
        "--port", "0", "--as-port", "0",
        "--mode", "json",
        "--latency-ms", str(latency_ms),
    ]
    child = Child(name, argv, tmp)
    url = child.wait_line(r"^(https?://\S+/mcp)\s*$", 60).group(1)
    key = child.wait_line(r"API key (\S+?),", 10).group(1)
    return child, url, key


def connect(bin_dir: Path, data_dir: Path, name: str, url: str, api_key: str) -> list[str]:
    """`claribi-host --data-dir D connect NAME --plugin builtin:close --endpoint URL --api-key-env VAR`.
    Naming the loopback endpoint in --endpoint is what grants it; no --allow-origin is needed."""
    argv = [
        str(bin_dir / "claribi-host"), "--data-dir", str(data_dir),
        "connect", name, "--plugin", "builtin:close", "--endpoint", url, "--api-key-env", API_KEY_ENV,
    ]
    done = subprocess.run(
        argv, env={**os.environ, API_KEY_ENV: api_key}, capture_output=True, text=True,
        stdin=subprocess.DEVNULL, timeout=600,
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise BenchError(f"connect {name} failed ({done.returncode}): {last}")
    return argv


def start_serve(bin_dir: Path, data_dir: Path, tmp: Path, max_result_bytes: int) -> tuple[Child, str]:
    """`claribi-host --data-dir D serve --http 127.0.0.1:0 --max-result-bytes N`; return (child, URL).
    serve prints `serving MCP (Streamable HTTP) on http://ADDR/mcp; ...` on stderr."""
    argv = [
        str(bin_dir / "claribi-host"), "--data-dir", str(data_dir),
        "serve", "--http", "127.0.0.1:0", "--max-result-bytes", str(max_result_bytes),
    ]
    child = Child("serve", argv, tmp)
    url = child.wait_line(r"on (http://\S+/mcp)", 120).group(1)
    return child, url


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS / VmHWM / Threads of a process from /proc/PID/status (kB, count); {} once it is gone."""
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "VmHWM", "Threads"):
                    out[key] = int(rest.split()[0])
    except OSError:
        pass
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (/proc/PID/stat), in seconds."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has been busy (all cores, /proc/stat), to tell how much other
    processes took from a measurement."""
    try:
        with open("/proc/stat") as f:
            cpu = [int(x) for x in f.readline().split()[1:]]
        idle = cpu[3] + cpu[4]  # idle + iowait
        return (sum(cpu[:8]) - idle) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def load_average() -> str:
    try:
        return " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        return "?"


# --------------------------------------------------------------------------------------------------
# The raw JSON-RPC client


def jsonrpc_message(body: str, content_type: str) -> str:
    """The JSON-RPC response's text in a JSON body or an SSE stream (its last non-empty `data:` event:
    rmcp may send an empty priming event first, and no request here asks for progress)."""
    if "text/event-stream" not in content_type:
        return body
    if "\r" in body:
        body = body.replace("\r\n", "\n").replace("\r", "\n")
    # str.split and str.startswith, not a regex: this runs on every response of the sweep.
    for event in reversed(body.split("\n\n")):
        data = "\n".join(line[5:].removeprefix(" ") for line in event.split("\n") if line.startswith("data:"))
        if data.strip():
            return data
    return ""


def outcome(message: str, full: bool = False) -> tuple[str, dict | None]:
    """Classify a tools/call response: `ok`, the result's `structuredContent.error.kind` (`busy`, ...),
    `tool-error` (isError without a kind) or `jsonrpc <code>`. A large successful body (compact JSON
    from serde or Python) is recognised without parsing unless `full`: parsing half a megabyte per call
    would cost the client as much CPU as the host it measures."""
    head = message[:256]
    cheap = not full and len(message) > 4096 and '"result"' in head and '"isError":true' not in message
    if cheap:
        return "ok", None
    if not message:
        return "empty-response", None
    msg = json.loads(message)
    if "error" in msg:
        return f"jsonrpc {msg['error'].get('code')}", msg
    result = msg.get("result") or {}
    if result.get("isError"):
        err = (result.get("structuredContent") or {}).get("error") or {}
        return str(err.get("kind") or "tool-error"), msg
    return "ok", msg


@dataclass
class RawCall:
    seconds: float
    status: int
    body_bytes: int
    message: str  # the JSON-RPC response text
    content_type: str
    session_id: str | None = None  # the Mcp-Session-Id response header, if any


class RawClient:
    """MCP over plain HTTP POSTs: `initialize` once (session id and negotiated version kept), then one
    POST per tools/call on a keep-alive httpx client."""

    def __init__(self, http: httpx.AsyncClient, url: str, headers: dict[str, str] | None = None,
                 protocol_version: str = "2025-11-25"):
        self.http = http
        self.url = url
        self.base_headers = {
            "Accept": "application/json, text/event-stream",
            "Content-Type": "application/json",
            **(headers or {}),
        }
        self.protocol_version = protocol_version
        self.session_id: str | None = None
        self.initialized = False
        self._ids = itertools.count(1)

    def sharing(self, http: httpx.AsyncClient) -> "RawClient":
        """The same MCP session over another httpx client (its own connection pool)."""
        other = RawClient(http, self.url, None, self.protocol_version)
        other.base_headers = dict(self.base_headers)
        other.session_id, other.initialized, other._ids = self.session_id, self.initialized, self._ids
        return other

    def headers(self) -> dict[str, str]:
        h = dict(self.base_headers)
        if self.session_id:
            h["Mcp-Session-Id"] = self.session_id
        if self.initialized:
            h["MCP-Protocol-Version"] = self.protocol_version
        return h

    async def post(self, payload: dict) -> RawCall:
        data = json.dumps(payload, separators=(",", ":")).encode()
        t0 = time.perf_counter()
        r = await self.http.post(self.url, content=data, headers=self.headers())
        body = r.text  # httpx has read the whole body already
        seconds = time.perf_counter() - t0
        ctype = r.headers.get("content-type", "")
        return RawCall(seconds, r.status_code, len(r.content), jsonrpc_message(body, ctype), ctype,
                       r.headers.get("mcp-session-id"))

    async def initialize(self) -> None:
        call = await self.post({
            "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {
                "protocolVersion": self.protocol_version,
                "capabilities": {},
                "clientInfo": {"name": "claribi-bench-raw", "version": "1"},
            },
        })
        if call.status != 200:
            raise BenchError(f"initialize at {self.url}: HTTP {call.status}: {call.message[:200]}")
        result = json.loads(call.message).get("result") or {}
        self.protocol_version = result.get("protocolVersion", self.protocol_version)
        self.session_id = call.session_id  # None for a stateless server
        self.initialized = True
        note = await self.http.post(
            self.url, content=b'{"jsonrpc":"2.0","method":"notifications/initialized"}', headers=self.headers()
        )
        if note.status_code not in (200, 202, 204):
            raise BenchError(f"notifications/initialized at {self.url}: HTTP {note.status_code}")

    async def call_tool(self, name: str, arguments: dict) -> RawCall:
        return await self.post({
            "jsonrpc": "2.0", "id": next(self._ids), "method": "tools/call",
            "params": {"name": name, "arguments": arguments},
        })

    async def list_tools(self) -> list[str]:
        call = await self.post({"jsonrpc": "2.0", "id": next(self._ids), "method": "tools/list", "params": {}})
        if call.status != 200:
            raise BenchError(f"tools/list at {self.url}: HTTP {call.status}: {call.message[:200]}")
        return [t["name"] for t in json.loads(call.message)["result"]["tools"]]


# --------------------------------------------------------------------------------------------------
# Figures


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default); NaN for no values."""
    if not values:
        return float("nan")
    s = sorted(values)
    pos = (len(s) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def machine() -> dict[str, str]:
    model = "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return {
        "cpu": model,
        "cores": str(os.cpu_count()),
        "memory": mem,
        "os": f"{platform.system()} {platform.release()} {platform.machine()}",
        "python": platform.python_version(),
    }


def print_header(title: str, extra: dict[str, str]) -> None:
    m = machine()
    print(f"== {title}")
    print(f"machine: {m['cpu']}, {m['cores']} cores, {m['memory']}, {m['os']}, Python {m['python']}")
    print(f"command: {shlex.join([sys.executable, *sys.argv])}")
    print(f"load average at the start: {load_average()} (other work on the machine skews every figure)")
    for k, v in extra.items():
        print(f"{k}: {v}")


def binary_version(path: Path) -> str:
    try:
        out = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=30)
        return out.stdout.strip() or out.stderr.strip()
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"? ({e})"


def check_binaries(bin_dir: Path) -> None:
    for name in ("claribi-host", "close-standin"):
        if not os.access(bin_dir / name, os.X_OK):
            raise BenchError(f"{bin_dir / name} is missing; build it (cargo build --release -p claribi-host -p close-standin)")
