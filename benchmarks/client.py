"""Scraping clients for the benchmarks: curl (a C client, as close to Prometheus' Go client as a
shell gets), timed by curl itself from connect to last byte, and the target process control."""

from __future__ import annotations

import contextlib
import statistics
import subprocess
import sys
import time
from types import TracebackType

CURL = "curl"
GZIP_OPENMETRICS = {
    "Accept": "application/openmetrics-text; version=1.0.0",
    "Accept-Encoding": "gzip",
}
TEXT = {"Accept": "text/plain"}


class Target:
    """A `benchmarks.target` process (ours, peer or floor) and its command pipe."""

    def __init__(self, kind: str, agents: int, tenants: int = 1) -> None:
        self.kind = kind
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "benchmarks.target",
                kind,
                "--agents",
                str(agents),
                "--tenants",
                str(tenants),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line.startswith("port "), f"{kind} target did not start: {line!r}"
        self.url = f"http://127.0.0.1:{int(line.split()[1])}/metrics"

    def _ask(self, command: str) -> list[str]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self.process.stdout.readline().split()

    def change(self) -> float:
        """Change the body as a probe result does; the target's own time for it."""
        return float(self._ask("change")[1])

    def refresh(self) -> None:
        """Start a whole inventory refresh in the target (`ours` only)."""
        self._ask("refresh")

    def refreshed(self) -> float:
        """Wait for the refresh; its CPU seconds."""
        return float(self._ask("refreshed")[1])

    def stats(self) -> tuple[float, float]:
        """(RSS in MB, CPU seconds so far)."""
        _, rss, cpu = self._ask("stats")
        return float(rss), float(cpu)

    def __enter__(self) -> Target:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        with contextlib.suppress(BrokenPipeError, OSError):
            self._ask("quit")
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def curl_command(headers: dict[str, str], rate: str | None = None) -> list[str]:
    command = [CURL, "-s", "-w", "%{time_total}\\n", "--max-time", "60"]
    if rate:
        command += ["--limit-rate", rate]
    for key, value in headers.items():
        command += ["-H", f"{key}: {value}"]
    return command


def curl_times(
    url: str, headers: dict[str, str], count: int, rate: str | None = None
) -> list[float]:
    """`count` scrapes in one curl process, one after the other on a kept-alive connection."""
    command = curl_command(headers, rate)
    for _ in range(count):
        command += ["-o", "/dev/null", url]
    result = subprocess.run(command, capture_output=True, text=True, check=True, timeout=600)
    return [float(line) for line in result.stdout.split()]


def after_change(target: Target, headers: dict[str, str], count: int, budget: float) -> list[float]:
    """Scrapes each made just after a body change, as Prometheus meets the body in production
    (a probe refreshes every 15 s, Prometheus scrapes every 15-60 s)."""
    timings: list[float] = []
    deadline = time.monotonic() + budget
    while len(timings) < count and time.monotonic() < deadline:
        target.change()
        timings += curl_times(target.url, headers, 1)
    return timings


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(values: list[float]) -> str:
    if not values:
        return "no scrapes"
    return (
        f"p50 {statistics.median(values) * 1000:7.1f} ms  p99 {quantile(values, 0.99) * 1000:7.1f}"
        f" ms  max {max(values) * 1000:7.1f} ms  (n={len(values)})"
    )
