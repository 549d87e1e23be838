"""The shipped rules on Debian's real Prometheus and Alertmanager, over a day and a half of history.

History cannot be waited for, so it is written the way an operator backfills: synthetic series
(OpenMetrics) -> `promtool tsdb create-blocks-from openmetrics`, the recording rules that the
day-long alerts read -> `promtool tsdb create-blocks-from rules` against a first Prometheus, then
a second Prometheus on the same TSDB evaluates the shipped rules at "now" and sends to a real
Alertmanager routing with the example configuration to a webhook in this test.

Scenarios (one tenant each), all ending at the moment Prometheus starts:
- restarted: upgrade blocked for 26 hours, the exporter pod rescheduled at hour 8 (new
  instance/pod labels, a 10-minute gap) -> ControlPlaneUpgradeBlocked fires;
- one-down / both-down: one of two replicas, or both, failing every probe for 10 minutes ->
  only both-down pages;
- short-outage: every probe failing for the last 3 minutes -> ProbeFailing pages;
- blip: one down minute (probes and the exporter's burn rates at 99.9 %) -> no page, no ticket;
- trend: 58 % of the budget spent, 3d burn rate 2, 20 days left -> SLABreachProjected tickets
  while SLABreached stays silent;
- stale: replica 1's inventory failed 24 hours ago with the fleet still blocked, replica 2 saw
  the agents upgraded 22 hours ago -> no ControlPlaneUpgradeBlocked, and a SourceReplicaDown
  ticket naming replica 1;
- fresh: replica 2 was added 2 hours ago and saw no downtime; replica 1 observed the month and
  its breach -> SLABreached tickets (the replica that observed most speaks);
- thin: one down minute in 20 observed (a restarted exporter with a young ledger), burn rate 50
  in every window -> no burn-rate ticket, no projected breach, a coverage ticket;
- partial: 40 % of the probes failing for the last hour -> ProbePartialOutage pages while
  ProbeFailing stays silent.

Only `for:` durations are shortened (the unit tests in tests/rules/ pin them); expressions,
labels, annotations and routing are the shipped ones.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.system.test_end_to_end import free_port
from tests.system.test_stack import (
    ALERTMANAGER,
    Process,
    Webhook,
    _query,
    _receiver_for,
    _shortened_rules,
    _wait,
    start_alertmanager,
)

ROOT = Path(__file__).resolve().parents[2]
JOB = "teleport-cloud-exporter"
HOURS = 26
STEP = 60  # seconds between samples

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("prometheus") is None or ALERTMANAGER is None,
        reason="needs Debian's prometheus and prometheus-alertmanager",
    ),
]

Series = tuple[str, dict[str, str], Callable[[int], float | None]]
MINUTES = HOURS * 60
LAST = MINUTES - 1  # index of the last minute, the moment Prometheus starts


def _labels(instance: str, **labels: str) -> dict[str, str]:
    return {"job": JOB, "instance": instance, "pod": "exporter-" + instance[-7:-6], **labels}


def _probes(
    tenant: str, instance: str, down: Callable[[int], bool], share: float = 1.0
) -> list[Series]:
    """Probe counters of one replica: 4 probes a minute, `share` of them failed while
    down(minute index)."""
    failed = [0.0]
    succeeded = [0.0]
    for minute in range(1, MINUTES):
        lost = 4 * share if down(minute) else 0.0
        failed.append(failed[-1] + lost)
        succeeded.append(succeeded[-1] + 4 - lost)
    return [
        (
            "teleport_cloud_source_errors_total",
            _labels(instance, source="ping", target=tenant, reason="timeout"),
            failed.__getitem__,
        ),
        (
            "teleport_cloud_probe_latency_seconds_count",
            _labels(instance, tenant=tenant),
            succeeded.__getitem__,
        ),
    ]


def _constant(value: float) -> Callable[[int], float]:
    return lambda i: value


WINDOW_SECONDS = {
    "5m": 300, "30m": 1800, "1h": 3600, "2h": 7200, "6h": 21600, "1d": 86400, "3d": 259200
}  # fmt: skip


def _after_blip(value: float) -> Callable[[int], float | None]:
    """The value from the down minute (2 minutes before the end) on, no sample before."""
    return lambda i: value if i >= LAST - 2 else None


def _windows(
    tenant: str, instance: str, objective: float, down: float, observed: Callable[[int], float]
) -> list[Series]:
    """The ledger's burn-rate windows: `down` seconds in each, observed(window seconds) of it."""
    out: list[Series] = []
    for window, length in WINDOW_SECONDS.items():
        seen = observed(length)
        labels = _labels(instance, tenant=tenant, window=window)
        burn = (down / seen) / (1 - objective) if seen else 0.0
        out += [
            ("teleport_cloud_sla_burn_rate", labels, _constant(burn)),
            ("teleport_cloud_sla_window_observed_seconds", labels, _constant(seen)),
            ("teleport_cloud_sla_window_downtime_seconds", labels, _constant(down)),
        ]
    return out


def _month(instance: str, tenant: str, end: int, **values: float) -> list[Series]:
    """A replica's month: 0.999 objective, 20 days left, the given figures."""
    figures = {
        "objective_ratio": 0.999,
        "error_budget_seconds": 2592.0,
        "period_end_timestamp_seconds": float(end + 20 * 86400),
        "period_start_timestamp_seconds": float(end - 10 * 86400),
        **values,
    }
    return [
        (f"teleport_cloud_sla_{name}", _labels(instance, tenant=tenant), _constant(value))
        for name, value in figures.items()
    ]


def scenario(end: int) -> list[Series]:
    """Every series as a function of the minute index (0 .. LAST; None: no sample)."""
    out: list[Series] = [
        # restarted: pod a until 18h before the end, pod b from 17h50m before it.
        (
            "teleport_cloud_control_plane_upgrade_blocked",
            _labels("10.0.0.1:10437", tenant="restarted"),
            lambda i: 1.0 if i <= LAST - 18 * 60 else None,
        ),
        (
            "teleport_cloud_control_plane_upgrade_blocked",
            _labels("10.0.0.2:10437", tenant="restarted"),
            lambda i: 1.0 if i >= LAST - (17 * 60 + 50) else None,
        ),
    ]
    # Both replicas were scraped fine (else TeleportCloudExporterDown pages).
    out += [
        ("up", {"job": JOB, "instance": ip}, lambda i: 1.0)
        for ip in ("10.0.0.1:10437", "10.0.0.2:10437")
    ]
    out += _probes("one-down", "10.0.0.1:10437", lambda i: False)
    out += _probes("one-down", "10.0.0.2:10437", lambda i: i > LAST - 10)
    out += _probes("both-down", "10.0.0.1:10437", lambda i: i > LAST - 10)
    out += _probes("both-down", "10.0.0.2:10437", lambda i: i > LAST - 10)
    out += _probes("short-outage", "10.0.0.1:10437", lambda i: i > LAST - 3)
    out += _probes("blip", "10.0.0.1:10437", lambda i: i == LAST - 2)
    # blip's ledger right after its down minute at 99.9 %, every window fully observed: the 1h
    # burn rate is 16.7.
    out += [
        (name, labels, _after_blip(value(0) or 0.0))
        for name, labels, value in _windows("blip", "10.0.0.1:10437", 0.999, 60, lambda w: w)
    ]
    # trend: a 30-day month with 20 days left, 58 % of the budget spent, 3d burn rate 2 on a
    # fully observed window.
    out += _month(
        "10.0.0.1:10437", "trend", end, downtime_seconds=1500, observed_seconds=864000, breached=0
    )
    out += [
        ("teleport_cloud_sla_burn_rate", _labels("10.0.0.1:10437", tenant="trend", window="3d"),
         _constant(2.0)),
        ("teleport_cloud_sla_window_observed_seconds",
         _labels("10.0.0.1:10437", tenant="trend", window="3d"), _constant(259200.0)),
        ("teleport_cloud_sla_window_downtime_seconds",
         _labels("10.0.0.1:10437", tenant="trend", window="3d"), _constant(518.4)),
    ]  # fmt: skip
    # stale: replica 1's inventory failed 24 hours ago and keeps its last data (blocked);
    # replica 2's saw the agents upgraded 22 hours ago.
    out += [
        (
            "teleport_cloud_control_plane_upgrade_blocked",
            _labels("10.0.0.1:10437", tenant="stale"),
            _constant(1.0),
        ),
        (
            "teleport_cloud_source_up",
            _labels("10.0.0.1:10437", source="inventory", target="stale"),
            lambda i: 1.0 if i < LAST - 24 * 60 else 0.0,
        ),
        (
            "teleport_cloud_control_plane_upgrade_blocked",
            _labels("10.0.0.2:10437", tenant="stale"),
            lambda i: 1.0 if i < LAST - 22 * 60 else 0.0,
        ),
        (
            "teleport_cloud_source_up",
            _labels("10.0.0.2:10437", source="inventory", target="stale"),
            _constant(1.0),
        ),
    ]
    # fresh: replica 1 observed 10 days and 50 down minutes (breached); replica 2, added 2 hours
    # ago, saw nothing down.
    out += _month(
        "10.0.0.1:10437", "fresh", end, downtime_seconds=3000, observed_seconds=864000, breached=1
    )
    out += _month(
        "10.0.0.2:10437", "fresh", end, downtime_seconds=0, observed_seconds=7200, breached=0
    )
    # thin: a young ledger, 20 minutes observed, one of them down: a burn rate of 50 in every
    # window that would project 16.7 days of downtime by the month's end.
    out += _month(
        "10.0.0.1:10437", "thin", end, downtime_seconds=60, observed_seconds=1200, breached=0
    )
    out += _windows("thin", "10.0.0.1:10437", 0.999, 60, lambda w: min(w, 1200))
    out += _probes("thin", "10.0.0.1:10437", lambda i: i == LAST - 2)
    # partial: 40 % of the probes failing for the last hour.
    out += _probes("partial", "10.0.0.1:10437", lambda i: i > LAST - 60, share=0.4)
    # tbot sidecars are up: they must not stand in for the exporters.
    out += [
        ("up", {"job": JOB + "-tbot", "instance": ip}, _constant(1.0))
        for ip in ("10.0.0.1:3001", "10.0.0.2:3001")
    ]
    return out


def openmetrics(series: list[Series], end: int) -> str:
    """OpenMetrics text for `promtool tsdb create-blocks-from openmetrics`: a family's series
    together, each series' samples in time order."""
    lines: list[str] = []
    for name, labels, value in sorted(series, key=lambda s: s[0]):
        text = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        for i in range(MINUTES):
            sample = value(i)
            if sample is not None:
                lines.append(f"{name}{{{text}}} {sample} {end - (LAST - i) * STEP}")
    return "\n".join(lines) + "\n# EOF\n"


def _self_contained_recording_rules(target: Path) -> Path:
    """The recording rules that read only exporter series: what create-blocks-from rules can
    backfill (it cannot chain rules), and all that the day-long alerts' subqueries read."""
    rules = yaml.safe_load((ROOT / "prometheus" / "recording.yml").read_text(encoding="utf-8"))
    kept = [
        rule for group in rules["groups"] for rule in group["rules"] if ":" not in str(rule["expr"])
    ]
    path = target / "backfill.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "backfill", "rules": kept}]}))
    return path


def _run(*args: str) -> None:
    proc = subprocess.run(args, capture_output=True, text=True, timeout=240, check=False)
    assert proc.returncode == 0, f"{' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"


def _prometheus(work: Path, name: str, config: dict[str, Any]) -> tuple[Process, str]:
    port = free_port()
    (work / f"{name}.yml").write_text(yaml.safe_dump(config))
    process = Process(
        [
            "prometheus",
            f"--config.file={work / f'{name}.yml'}",
            f"--storage.tsdb.path={work / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--storage.tsdb.retention.time=30d",
            "--rules.alert.resend-delay=1s",
        ],
        work / f"{name}.log",
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait(
            f"{name} ready",
            lambda: httpx.get(f"{base}/-/ready", timeout=5).status_code == 200,
            [process.log],
        )
    except BaseException:
        process.stop()
        raise
    return process, base


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    work = tmp_path_factory.mktemp("alerts-live")
    end = int(time.time()) // 60 * 60 - 60
    (work / "history.om").write_text(openmetrics(scenario(end), end))
    _run("promtool", "tsdb", "create-blocks-from", "openmetrics", str(work / "history.om"),
         str(work / "tsdb"))  # fmt: skip

    # Backfill the recorded series the subqueries read, from a first Prometheus.
    first, base = _prometheus(work, "backfill-prometheus", {"global": {}})
    try:
        _run(
            "promtool", "tsdb", "create-blocks-from", "rules",
            f"--start={end - HOURS * 3600}", f"--end={end}", f"--url={base}",
            f"--output-dir={work / 'recorded'}", "--eval-interval=300s",
            str(_self_contained_recording_rules(work)),
        )  # fmt: skip
    finally:
        first.stop()
    for block in (work / "recorded").iterdir():
        if block.is_dir():
            shutil.move(str(block), str(work / "tsdb" / block.name))

    webhook = Webhook()
    alertmanager, am_port = start_alertmanager(work, webhook)
    second: Process | None = None
    try:
        _wait(
            "alertmanager ready",
            lambda: httpx.get(f"http://127.0.0.1:{am_port}/-/ready", timeout=5).status_code == 200,
            [alertmanager.log],
        )
        second, base = _prometheus(
            work,
            "prometheus",
            {
                "global": {"evaluation_interval": "1s"},
                "rule_files": _shortened_rules(work),
                "alerting": {
                    "alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]
                },
            },
        )
        yield {"webhook": webhook, "prometheus": base, "logs": [second.log, alertmanager.log]}
    finally:
        if second is not None:
            second.stop()
        alertmanager.stop()
        webhook.server.shutdown()


EXPECTED = {
    ("TeleportCloudControlPlaneUpgradeBlocked", "restarted"),
    ("TeleportCloudProbeFailing", "both-down"),
    ("TeleportCloudProbeFailing", "short-outage"),
    ("TeleportCloudSLABreachProjected", "trend"),
    ("TeleportCloudSLABreached", "fresh"),
    ("TeleportCloudProbePartialOutage", "partial"),
    ("TeleportCloudSourceReplicaDown", ""),
    ("TeleportCloudSLACoverageLow", "thin"),
}


def _firing(webhook: Webhook) -> dict[tuple[str, str], tuple[str, dict[str, Any]]]:
    return {
        (a["labels"]["alertname"], a["labels"].get("tenant", "")): (path, a)
        for path, a in webhook.alerts()
        if a["status"] == "firing"
    }


def test_scenarios_reach_alertmanager_as_expected(live: dict[str, Any]) -> None:
    webhook: Webhook = live["webhook"]
    _wait(
        "the expected alerts at the webhook",
        lambda: set(_firing(webhook)) >= EXPECTED,
        live["logs"],
    )
    # One more round of evaluation and grouping for anything that should not be there.
    time.sleep(5)
    firing = _firing(webhook)
    pager = "/" + _receiver_for("critical")
    ticket = "/" + _receiver_for("warning")
    # a pod restart in the middle of a blocked period still fires
    path, alert = firing[("TeleportCloudControlPlaneUpgradeBlocked", "restarted")]
    assert path == ticket and "pod" not in alert["labels"] and "instance" not in alert["labels"]
    # both replicas failing pages, one of two does not
    assert firing[("TeleportCloudProbeFailing", "both-down")][0] == pager
    assert ("TeleportCloudProbeFailing", "one-down") not in firing
    # a 3-minute outage pages
    assert firing[("TeleportCloudProbeFailing", "short-outage")][0] == pager
    # a single down minute neither pages nor tickets
    assert not [key for key in firing if key[1] == "blip"], firing.keys()
    # a projected breach tickets before the budget is gone
    assert firing[("TeleportCloudSLABreachProjected", "trend")][0] == ticket
    assert ("TeleportCloudSLABreached", "trend") not in firing
    # a replica whose inventory failed a day ago does not keep a fixed fleet blocked, and is
    # named in a ticket of its own
    assert not [key for key in firing if key[1] == "stale"], firing.keys()
    path, alert = firing[("TeleportCloudSourceReplicaDown", "")]
    assert path == ticket
    assert (alert["labels"]["instance"], alert["labels"]["target"]) == ("10.0.0.1:10437", "stale")
    # a replica added 2 hours ago does not hide the breach the other one observed
    assert firing[("TeleportCloudSLABreached", "fresh")][0] == ticket
    # one down minute in 20 observed: no burn-rate ticket, no projection, no page; only the
    # thin coverage itself is worth a ticket
    thin = {key[0] for key in firing if key[1] == "thin"}
    assert thin == {"TeleportCloudSLACoverageLow"}, thin
    assert firing[("TeleportCloudSLACoverageLow", "thin")][0] == ticket
    # a partial outage pages; ProbeFailing stays silent under its threshold
    assert firing[("TeleportCloudProbePartialOutage", "partial")][0] == pager
    assert ("TeleportCloudProbeFailing", "partial") not in firing
    # the tbot sidecars being up, the exporters being up: no ExporterDown
    assert not [key for key in firing if key[0].startswith("TeleportCloudExporter")]
    # nothing pages but what should
    paged = {key for key, (path, _) in firing.items() if path == pager}
    assert paged == {
        ("TeleportCloudProbeFailing", "both-down"),
        ("TeleportCloudProbeFailing", "short-outage"),
        ("TeleportCloudProbePartialOutage", "partial"),
    }


def test_backfilled_history_is_what_the_alert_measured(live: dict[str, Any]) -> None:
    """The blocked series really has a 10-minute hole at the restart (else the test proves
    nothing about restarts)."""
    base = live["prometheus"]
    steps = _query(
        base,
        'count_over_time(tenant:teleport_cloud_control_plane_upgrade_blocked:max{tenant="restarted"}[1d:5m])',
    )
    assert steps and float(steps[0]["value"][1]) < 24 * 12
