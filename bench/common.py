"""Helpers shared by the benchmark scripts: environment, servers, process-tree timing, tables and JSON."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from dbt_ferry.core.layout import runs_prefix

# Imported up front: other sessions sharing .venv may re-sync it without the bench group while a benchmark runs.
# Without psutil (the bench group not installed, as under `make test`), /proc is read directly.
try:
    import psutil
except ImportError:  # pragma: no cover
    psutil = None

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
OUT = REPO / "bench" / "out"

QUIET_ENV = {
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "UV_PYTHON_DOWNLOADS": "never",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "eu-west-1",
}


def base_env(**extra: str) -> dict[str, str]:
    # PYTHONDONTWRITEBYTECODE off: every side imports from .pyc, as an installed dbt or an image would.
    dropped = ("VIRTUAL_ENV", "PYTHONDONTWRITEBYTECODE")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DBT_FERRY_") and k not in dropped}
    env.update(QUIET_ENV)
    env["PATH"] = f"{BIN}:{REPO / '.tools' / 'bin'}:{env.get('PATH', '')}"
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def prefect_server(home: Path | None = None) -> Iterator[str]:
    """A real local Prefect server (``prefect server start``), started once; yields its API URL."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="ferry-bench-prefect-") as tmp:
        env = base_env(PREFECT_HOME=str(home or tmp))
        env.pop("PREFECT_API_URL", None)
        log = open(Path(tmp) / "server.log", "w")  # noqa: SIM115
        proc = subprocess.Popen(
            [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}/api"
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:  # noqa: S310
                        if resp.status == 200:
                            break
                except OSError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the Prefect server did not start: {(Path(tmp) / 'server.log').read_text()}")
                time.sleep(0.5)
            yield url
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            log.close()


@contextlib.contextmanager
def server(api_url: str | None) -> Iterator[str]:
    """``api_url`` when given, else a Prefect server started for the benchmark."""
    if api_url:
        yield api_url
        return
    with prefect_server() as url:
        yield url


@dataclass
class Measured:
    wall: float
    peak_rss: int  # bytes, sum over the process tree, sampled
    returncode: int
    first_match: float | None = None


def run_measured(
    args: Sequence[str],
    *,
    env: dict[str, str],
    cwd: Path | None = None,
    log: Path | None = None,
    interval: float = 0.05,
    stop_on: str | None = None,
    timeout: float = 3600,
) -> Measured:
    """Run ``args``; wall time and peak RSS of the whole tree (psutil, every ``interval`` s).

    ``stop_on``: a text to watch for on stdout; the time it first shows is recorded and the tree is killed.
    """
    out = open(log or os.devnull, "w")  # noqa: SIM115
    started = time.perf_counter()
    proc = subprocess.Popen(
        list(args), env=env, cwd=cwd, stdout=subprocess.PIPE if stop_on else out, stderr=subprocess.STDOUT,
        start_new_session=True, text=stop_on is not None,
    )  # fmt: skip
    peak = 0
    done = threading.Event()
    first: list[float] = []

    def sample() -> None:
        nonlocal peak
        if psutil is None:
            while not done.is_set():
                peak = max(peak, _proc_tree_rss(proc.pid))
                done.wait(interval)
            return
        try:
            root = psutil.Process(proc.pid)
        except psutil.NoSuchProcess:
            return
        while not done.is_set():
            total = 0
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                break
            for p in procs:
                with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                    total += p.memory_info().rss
            peak = max(peak, total)
            done.wait(interval)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        if stop_on is not None:
            assert proc.stdout is not None
            for line in proc.stdout:
                out.write(line)
                if stop_on in line:
                    first.append(time.perf_counter() - started)
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    break
        code = proc.wait(timeout=timeout)
    finally:
        wall = time.perf_counter() - started
        done.set()
        sampler.join()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        out.close()
    return Measured(wall, peak, code, first[0] if first else None)


def dbt_ended(results: Path | None) -> float | None:
    """When dbt wrote ``results`` (a ``run_results.json``: its ``generated_at``), as a Unix time."""
    if results is None:
        return None
    try:
        stamp = json.loads(results.read_text())["metadata"]["generated_at"]
    except (OSError, ValueError, KeyError):
        return None
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def newest_results(store: Path, environment: str = "local") -> Path | None:
    """The ``run_results.json`` of the latest run a job published to the local ``store``."""
    found = sorted((store / runs_prefix(environment)).glob("*/run_results.json"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def _proc_tree_rss(root: int) -> int:
    """RSS of ``root`` and its descendants from /proc (the fallback when psutil is missing)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
    tree, frontier = {root}, [root]
    while frontier:
        pid = frontier.pop()
        children = [p for p, parent in parents.items() if parent == pid and p not in tree]
        tree.update(children)
        frontier += children
    page = os.sysconf("SC_PAGE_SIZE")
    total = 0
    for pid in tree:
        with contextlib.suppress(OSError, ValueError, IndexError):
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * page
    return total


def stats(values: Sequence[float]) -> dict[str, float | int]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def fmt(s: dict[str, float | int] | None, scale: float = 1.0, digits: int = 2) -> str:
    if not s:
        return "-"
    return f"{s['median'] / scale:.{digits}f} ({s['min'] / scale:.{digits}f}-{s['max'] / scale:.{digits}f})"


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        print("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))
        if n == 0:
            print("  ".join("-" * w for w in widths))


def write_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str))
    print(f"written {path}")


def machine() -> dict[str, object]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = int(line.split()[1]) * 1024
    return {"nproc": os.cpu_count(), "cpu": model, "mem_bytes": mem, "loadavg": os.getloadavg()}
