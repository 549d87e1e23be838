"""Where an exporter process spends its CPU: a py-spy profile summed into named buckets.

`record(pid, seconds, out)` runs `py-spy record --format raw` against a running process (Python
frames, sampled without pausing it; threads the OS sees sleeping are left out, and so are
samples whose innermost frame is a wait, as a second filter). `breakdown(out)` sums the
collapsed stacks two ways: by the activity that caused the work (a probe, a source's health, an
SLA tick, an inventory refresh, a scrape, the event loop itself) and by the operation (TLS
handshakes, building snapshots, combining CRCs, rendering and compressing, parsing). A stack
counts once per view, in the first bucket whose pattern it contains.
    python -m benchmarks.profile STACKS_FILE      # print the breakdown of a recorded profile
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

# Patterns name both the package layout (fleet/source.py) and the flat one it replaced
# (sources/inventory.py), so a profile of an older build sorts the same way.
ACTIVITIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("inventory refresh (worker thread)", ("_parse_and_publish", "_rederive")),
    (
        "inventory tctl run (subprocess, pipes)",
        ("sources/tctl.py", "sources/inventory.py", "tctl/runner.py", "fleet/source.py"),
    ),
    ("source health publishes", ("_publish_health",)),
    ("SLA ticks and ledger", ("sla_service.py", "exporter/ledger.py", "exporter/sla/")),
    ("probes (ping: HTTP, TLS, publish)", ("sources/ping.py", "exporter/probe/")),
    (
        "other sources (rollout, channel, identity, tctl version, agent report)",
        ("exporter/sources/", "exporter/rollout/", "exporter/tctl/", "exporter/status_page/"),
    ),
    ("scrapes (server)", ("exporter/server.py", "exporter/web/", "uvicorn/", "httptools")),
    ("loop monitor", ("LoopMonitor", "monitor.run")),
    ("event loop itself (asyncio, selectors)", ("asyncio/", "selectors.py", "anyio/")),
)
OPERATIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("TLS handshakes", ("do_handshake",)),
    ("other TLS (reads, writes, contexts)", ("ssl.py", "libssl", "libcrypto")),
    ("inventory JSON parse", ("parse_inventory",)),
    ("fleet derivation", ("derive_fleet",)),
    ("fleet families", ("fleet_families",)),
    ("snapshot build (whole-body CRC, chunk lists)", ("_build (exporter/exposition",)),
    ("family CRC combination", ("recombine", "gzipparts.py", "gzip_parts.py")),
    ("render and deflate", ("render_family", "deflate_part", "render_lines")),
    ("SQLite", ("sqlite3", "libsqlite")),
    ("HTTP client (httpx, httpcore)", ("httpx/", "httpcore/")),
    ("HTTP server (uvicorn, httptools)", ("uvicorn/", "httptools")),
    ("subprocess handling", ("subprocess.py", "Process", "_process")),
    ("garbage collector", ("gc_collect", "collect_main", "_PyGC_", "gc_collect_main")),
    ("event loop (asyncio, selectors)", ("asyncio/", "selectors.py")),
)


def record(pid: int, seconds: float, out: Path, rate: int = 100) -> subprocess.Popen[bytes]:
    """Start py-spy on `pid` for `seconds` (returns at once; wait on the result)."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    command = [
        py_spy,
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(int(seconds)),
        "--rate",
        str(rate),
        "--nonblocking",
        "--threads",
        "--format",
        "raw",
        "--output",
        str(out),
    ]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


IDLE = (
    "select (selectors.py",
    "wait (threading.py",
    "get (queue.py",
    "_wait_for_tstate_lock",
    "_do_waitpid",  # asyncio's child watcher: a thread blocked in waitpid per tctl run
)


def stacks(path: Path) -> Counter[str]:
    """Collapsed stacks and their sample counts, waits left out."""
    counts: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        python_frames = [frame for frame in stack.split(";") if ".py:" in frame]
        innermost = python_frames[-1] if python_frames else ""
        if stack and count.isdigit() and not any(idle in innermost for idle in IDLE):
            counts[stack] += int(count)
    return counts


def bucket(stack: str, buckets: tuple[tuple[str, tuple[str, ...]], ...]) -> str:
    for name, patterns in buckets:
        if any(pattern in stack for pattern in patterns):
            return name
    return "other"


def breakdown(path: Path) -> str:
    counts = stacks(path)
    total = sum(counts.values())
    if not total:
        return "no samples"
    lines = [f"{total} active samples"]
    for title, buckets in (("by activity", ACTIVITIES), ("by operation", OPERATIONS)):
        sums: Counter[str] = Counter()
        for stack, count in counts.items():
            sums[bucket(stack, buckets)] += count
        lines.append(f"  {title}:")
        for name, count in sums.most_common():
            lines.append(f"    {100 * count / total:5.1f} %  {name}")
    return "\n".join(lines)


def main() -> None:
    print(breakdown(Path(sys.argv[1])))


if __name__ == "__main__":
    main()
