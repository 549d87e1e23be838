"""What each dashboard panel costs on a real Prometheus: rows, bytes, time, samples.

The real exporter serves 50 tenants x 1,000 agents with per-agent series (the simulator and the
fake tctl, as in benchmarks.tenants). Debian's Prometheus scrapes it as two replicas (two scrape
jobs relabelled to one `job` and two `instance`s: the series shape of a 2-replica StatefulSet)
and evaluates the shipped recording rules. Then every query of every shipped dashboard runs as
an instant query with all tenants selected (the dashboards' default), three times; the best run
is reported with the rows and bytes of its answer and Prometheus' own evaluation time and
samples read. Side by side: the same panels of the dashboards as `--baseline REV` shipped them
(default: none). Targets (the on-call issue): every panel under 500 rows and 100 ms.

    python -m benchmarks.dashboard_queries [--tenants 50] [--agents 1000] [--baseline REV]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml

from benchmarks.tenants import config, free_port, wait_for_fleets
from exporter.mixin.dashboards.build import concrete

ROOT = Path(__file__).resolve().parents[1]
DASHBOARDS = ("teleport-cloud-overview.json", "teleport-cloud-fleet.json")
MAX_ROWS, MAX_MS = 500, 100.0
RUNS = 3


PER_AGENT = ("teleport_cloud_agent_info", "teleport_cloud_agent_major_versions_behind")


def panel_queries(boards: dict[str, str]) -> list[tuple[str, str]]:
    """(dashboard / panel title, expression) of every panel target, with every tenant selected;
    the per-agent panels also with one tenant (`[t00]`), as an on-call engineer drills down."""
    out = []
    for name, text in boards.items():
        for panel in json.loads(text)["panels"]:
            for target in panel.get("targets", []):
                title = f"{name.removeprefix('teleport-cloud-').removesuffix('.json')} / "
                expr = target["expr"]
                if "$agent_tenant" in expr:
                    # The per-agent tables read one tenant by design (variable agent_tenant).
                    out.append((f"{title}[t00] {panel['title']}", concrete(expr, "t00", ".*")))
                    continue
                out.append((title + panel["title"], concrete(expr, ".*", ".*", literal=False)))
                if any(family in expr for family in PER_AGENT):
                    out.append((f"{title}[t00] {panel['title']}", concrete(expr, "t00", ".*")))
    return out


def run_query(base: str, expr: str) -> tuple[int, int, float, float, int]:
    """rows, bytes, wall ms, Prometheus' evaluation ms, samples read (best of RUNS)."""
    best: tuple[int, int, float, float, int] | None = None
    for _ in range(RUNS):
        started = time.perf_counter()
        response = httpx.get(
            f"{base}/api/v1/query", params={"query": expr, "stats": "all"}, timeout=60
        )
        wall = (time.perf_counter() - started) * 1000
        body = response.json()
        assert body["status"] == "success", (expr, body)
        stats = body["data"].get("stats", {})
        result = (
            len(body["data"]["result"]),
            len(response.content),
            wall,
            float(stats.get("timings", {}).get("evalTotalTime", 0.0)) * 1000,
            int(stats.get("samples", {}).get("totalQueryableSamples", 0)),
        )
        if best is None or result[2] < best[2]:
            best = result
    assert best is not None
    return best


def baseline_boards(revision: str) -> dict[str, str]:
    out = {}
    for name in DASHBOARDS:
        shown = subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{revision}:grafana/dashboards/{name}"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        out[name] = shown.stdout
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--tenants", type=int, default=50)
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--baseline", default="", help="a git revision whose dashboards to compare")
    args = parser.parse_args()
    prometheus = shutil.which("prometheus")
    if prometheus is None:
        raise SystemExit("needs Debian's prometheus")
    workdir = Path(tempfile.mkdtemp(prefix="tce-queries-"))
    port = free_port()
    path, sim = config(args.tenants, args.agents, workdir, port)
    exporter = subprocess.Popen(
        [sys.executable, "-m", "exporter.cli", "serve", "--config", str(path)],
        stdout=(workdir / "exporter.log").open("wb"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    prom: subprocess.Popen[bytes] | None = None
    try:
        wait_for_fleets(f"http://127.0.0.1:{port}/metrics", args.tenants, exporter)
        scrape = [
            {
                "job_name": f"replica-{i}",
                "scrape_interval": "15s",
                "scrape_timeout": "10s",
                "static_configs": [{"targets": [f"127.0.0.1:{port}"]}],
                "relabel_configs": [
                    {"target_label": "job", "replacement": "teleport-cloud-exporter"},
                    {"target_label": "instance", "replacement": f"exporter-{i}"},
                ],
            }
            for i in range(2)
        ]
        prom_port = free_port()
        (workdir / "prometheus.yml").write_text(
            yaml.safe_dump(
                {
                    "global": {"evaluation_interval": "15s"},
                    "rule_files": [str(ROOT / "prometheus" / "recording.yml")],
                    "scrape_configs": scrape,
                }
            )
        )
        prom = subprocess.Popen(
            [prometheus, f"--config.file={workdir / 'prometheus.yml'}",
             f"--storage.tsdb.path={workdir / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{prom_port}"],
            stdout=(workdir / "prometheus.log").open("wb"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        base = f"http://127.0.0.1:{prom_port}"
        expected = 2 * args.tenants * args.agents
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            time.sleep(5)
            try:
                got = httpx.get(
                    f"{base}/api/v1/query",
                    params={"query": "count(teleport_cloud_agent_info)"},
                    timeout=10,
                ).json()["data"]["result"]
            except (httpx.TransportError, KeyError, ValueError):
                continue
            if got and int(float(got[0]["value"][1])) >= expected:
                break
        else:
            raise SystemExit("Prometheus did not ingest both replicas' agents in 5 minutes")
        time.sleep(40)  # two more scrapes and rule evaluations: rates and recorded series exist
        current = {n: (ROOT / "grafana" / "dashboards" / n).read_text() for n in DASHBOARDS}
        sets = [("shipped", current)]
        if args.baseline:
            sets.append((args.baseline, baseline_boards(args.baseline)))
        print(
            f"{args.tenants} tenants x {args.agents} agents x 2 replicas "
            f"({expected} agent_info series); all tenants selected; best of {RUNS}"
        )
        for label, boards in sets:
            print(f"\n{label}: rows, bytes, wall ms, Prometheus eval ms, samples")
            worst_rows = worst_ms = 0.0
            for title, expr in panel_queries(boards):
                rows, size, wall, evaluation, samples = run_query(base, expr)
                worst_rows, worst_ms = max(worst_rows, rows), max(worst_ms, wall)
                flag = " <-- over" if rows > MAX_ROWS or wall > MAX_MS else ""
                print(
                    f"  {title[:58]:58} {rows:6d} {size:9d} {wall:7.1f} {evaluation:7.1f} "
                    f"{samples:9d}{flag}"
                )
            print(
                f"  worst: {worst_rows:.0f} rows (target < {MAX_ROWS}), {worst_ms:.1f} ms "
                f"(target < {MAX_MS:.0f} ms)"
            )
    finally:
        for process in (prom, exporter):
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=30)
        sim.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
