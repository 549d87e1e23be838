"""The inventory source against the fake tctl as a real subprocess: the happy path, every bad
input, hangs and cancellation, with the process table checked for leftovers."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import pytest
from prometheus_client.metrics_core import Metric

from exporter.config import Settings
from exporter.core.errors import SourceError
from exporter.core.keys import PublishKey
from exporter.core.state import Hub, TenantState
from exporter.derivations import attach_derivers
from exporter.fleet.source import InventorySource, scaled_interval
from exporter.probe.model import AutoUpdate, PingInfo
from exporter.simulator.fake_tctl import BAD_INVOCATION, write_fake_tctl
from exporter.simulator.fleetgen import generate_inventory
from exporter.tctl.runner import classify_failure, summarise_stderr
from tests.conftest import parse_samples, series, value
from tests.unit.fleet.test_fleet import assert_matches, independent_expectation

NOW = 1_750_000_000.0
FLEET = {"size": 400, "mix": "skewed", "broken": 3, "seed": 11, "now": NOW}
IDENTITY_CONTENT = "-----BEGIN SECRET IDENTITY-----\nhunter2\n"


def _setup(
    tmp_path: Path, scenario: dict[str, Any], **inventory: Any
) -> tuple[Hub, TenantState, InventorySource, Path]:
    identity = tmp_path / "identity"
    identity.write_text(IDENTITY_CONTENT)
    scenario = {
        "expect_auth_server": "127.0.0.1:3080",
        "expect_identity": str(identity),
        **scenario,
    }
    fake = write_fake_tctl(tmp_path / "bin", scenario)
    settings = Settings(
        state_dir=tmp_path,
        tenants=[
            {
                "proxy": "127.0.0.1:3080",
                "name": "t",
                "inventory": {"tctl": str(fake), "identity_file": str(identity), **inventory},
            }
        ],
    )
    hub = attach_derivers(Hub(settings))
    tenant = hub.tenants["t"]
    return hub, tenant, InventorySource(hub, tenant), fake


def _set_ping(tenant: TenantState, server: str = "18.1.4", target: str = "18.1.4") -> None:
    tenant.ping = PingInfo(server_version=server, auto_update=AutoUpdate(agent_version=target))


def _expected(fleet: dict[str, Any], major: int | None, target: str | None) -> dict[str, Any]:
    options = dict(fleet)
    now = options.pop("now")
    records = generate_inventory(now=datetime.fromtimestamp(now, UTC), **options)
    return independent_expectation(records, major, target)


def _failure(source: InventorySource) -> SourceError:
    with pytest.raises(SourceError) as caught:
        anyio.run(source.refresh)
    return caught.value


def _processes(marker: str) -> list[str]:
    """Live processes whose command line holds `marker`, and zombie children of this process."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            cmdline = Path(entry.path, "cmdline").read_bytes()
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        state, ppid = stat.rpartition(")")[2].split()[:2]
        if marker.encode() in cmdline and state != "Z":
            command = cmdline.replace(b"\0", b" ").decode(errors="replace")
            found.append(f"{entry.name} alive: {command}")
        elif state == "Z" and int(ppid) == os.getpid():
            found.append(f"{entry.name} zombie child of the test")
    return found


def _assert_no_leftovers(marker: str) -> None:
    deadline = time.monotonic() + 3
    while _processes(marker) and time.monotonic() < deadline:
        time.sleep(0.05)  # SIGKILL is delivered at once, but exit takes a moment
    assert _processes(marker) == []


def test_publishes_fleet_matching_independent_counts(tmp_path: Path) -> None:
    hub, tenant, source, _ = _setup(tmp_path, {"inventory": FLEET})
    _set_ping(tenant)
    anyio.run(source.refresh)
    samples = parse_samples(hub.exposition.body().decode())
    expected = _expected(FLEET, 18, "18.1.4")
    assert expected["total"] == 400 and expected["broken"] == 3
    assert_matches(samples, expected)
    assert tenant.inventory is not None
    assert len(tenant.inventory) == 403  # 400 agents + Auth + 2 Proxy; broken ones dropped
    assert source.view is not None and source.view.excluded_control_plane == 3
    seen = series(samples, "teleport_cloud_agent_last_seen_timestamp_seconds")
    assert len(seen) == 400
    assert all(
        NOW - 20 * 60
        < value(samples, "teleport_cloud_agent_last_seen_timestamp_seconds", **labels)
        < NOW
        for labels in seen
    )


def test_skipped_records_are_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _, _, source, _ = _setup(tmp_path, {"inventory": FLEET})
    anyio.run(source.refresh)
    assert "skipped 3 of 406 inventory records" in caplog.text
    # ... and says which, with the reason, so the records can be found with tctl.
    line = next(r.getMessage() for r in caplog.records if "skipped 3 of 406" in r.getMessage())
    examples = line.split("not valid instances: ")[1].split("; ")
    assert len(examples) == 3 and all(re.match(r"^\S+: \S+: .+", e) for e in examples), line


def test_recorded_output_verbatim(tmp_path: Path) -> None:
    fixture = Path(__file__).resolve().parents[2] / "fixtures" / "inventory_small.json"
    hub, tenant, source, _ = _setup(tmp_path, {"inventory_file": str(fixture)})
    _set_ping(tenant)
    anyio.run(source.refresh)
    samples = parse_samples(hub.exposition.body().decode())
    assert_matches(samples, independent_expectation(json.loads(fixture.read_text()), 18, "18.1.4"))


def test_new_versions_from_ping_re_derive_without_tctl(tmp_path: Path) -> None:
    hub, tenant, source, fake = _setup(tmp_path, {"inventory": FLEET})
    anyio.run(source.refresh)  # before ping: skew unknown
    samples = parse_samples(hub.exposition.body().decode())
    assert_matches(samples, _expected(FLEET, None, None))

    fake.unlink()  # proves the re-derivation does not run tctl again
    for version, major in (("18.1.4", 18), ("19.0.0", 19)):  # then the control plane moves on
        _set_ping(tenant, version, version)
        hub.changed(tenant)
        samples = parse_samples(hub.exposition.body().decode())
        assert_matches(samples, _expected(FLEET, major, version))

    deriver = hub.derivers["t"]
    republished: list[PublishKey] = []
    publish = deriver.publish

    def recording(key: PublishKey, families: Iterable[Metric]) -> None:
        republished.append(key)
        publish(key, families)

    deriver.publish = recording
    hub.changed(tenant)  # nothing new: nothing derived, nothing rendered again
    assert republished == []


def test_per_agent_metrics_off(tmp_path: Path) -> None:
    hub, tenant, source, _ = _setup(tmp_path, {"inventory": FLEET}, per_agent_metrics=False)
    _set_ping(tenant)
    anyio.run(source.refresh)
    samples = parse_samples(hub.exposition.body().decode())
    assert not series(samples, "teleport_cloud_agent_info")
    assert_matches(samples, _expected(FLEET, 18, "18.1.4"))


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"fault": "access_denied"}, "auth"),
        ({"fault": "expired_cert"}, "auth"),
        ({"fault": "garbage"}, "parse"),
        ({"inventory_file": "MISSING"}, "other"),  # the fake itself fails: tctl crashed
        ({"fault": "fail", "stderr": "ERROR: dial tcp: connection refused"}, "connect"),
        (
            {"fault": "fail", "stderr": "ERROR: x509: certificate signed by unknown authority"},
            "tls",
        ),
        ({"fault": "fail", "stderr": "panic: runtime error", "exit_code": 2}, "other"),
    ],
)
def test_failures_keep_the_previous_fleet(
    tmp_path: Path, change: dict[str, Any], reason: str
) -> None:
    hub, tenant, source, _ = _setup(tmp_path, {"inventory": FLEET})
    _set_ping(tenant)
    anyio.run(source.refresh)
    before = hub.exposition.body()
    inventory = tenant.inventory

    identity = str(tenant.config.inventory.identity_file)
    if change.get("inventory_file") == "MISSING":
        change = {"inventory_file": str(tmp_path / "missing.json")}
    write_fake_tctl(
        tmp_path / "bin",
        {"expect_auth_server": "127.0.0.1:3080", "expect_identity": identity, **change},
    )
    error = _failure(source)
    assert error.reason == reason, error.message
    assert hub.exposition.body() == before
    assert tenant.inventory is inventory
    assert "hunter2" not in error.message and "SECRET" not in error.message


def test_auth_message_names_the_action(tmp_path: Path) -> None:
    _, _, source, _ = _setup(tmp_path, {"fault": "access_denied"})
    error = _failure(source)
    assert error.reason == "auth"
    assert 'access denied to perform action "list" on "instance"' in error.message


def test_missing_identity_file_is_auth(tmp_path: Path) -> None:
    _, tenant, source, _ = _setup(tmp_path, {"inventory": FLEET})
    tenant.config.inventory.identity_file.unlink()
    assert _failure(source).reason == "auth"


def test_missing_binary_is_exec(tmp_path: Path) -> None:
    _, _, source, _ = _setup(tmp_path, {}, tctl=str(tmp_path / "no-such-tctl"))
    error = _failure(source)
    assert error.reason == "exec" and "no-such-tctl" in error.message


def test_not_executable_is_exec(tmp_path: Path) -> None:
    script = tmp_path / "tctl-plain"
    script.write_text("#!/bin/sh\necho '[]'\n")
    script.chmod(0o644)
    _, _, source, _ = _setup(tmp_path, {}, tctl=str(script))
    assert _failure(source).reason == "exec"


def test_not_a_program_is_exec(tmp_path: Path) -> None:
    blob = tmp_path / "tctl-blob"
    blob.write_bytes(b"\x7fELF\x00garbage")
    blob.chmod(0o755)
    _, _, source, _ = _setup(tmp_path, {}, tctl=str(blob))
    assert _failure(source).reason == "exec"


def test_hang_times_out_and_kills_the_process_group(tmp_path: Path) -> None:
    hub, tenant, source, _ = _setup(tmp_path, {"inventory": FLEET}, timeout="1.5s")
    anyio.run(source.refresh)
    before = hub.exposition.body()
    marker = str(tenant.config.inventory.identity_file)
    write_fake_tctl(tmp_path / "bin", {"fault": "hang"})

    seen_running: list[str] = []
    errors: list[SourceError] = []

    async def run() -> None:
        async def watch() -> None:
            await anyio.sleep(1.0)
            seen_running.extend(_processes(marker))

        async with anyio.create_task_group() as group:
            group.start_soon(watch)
            try:
                await source.refresh()
            except SourceError as error:
                errors.append(error)

    started = time.monotonic()
    anyio.run(run)
    assert [error.reason for error in errors] == ["timeout"]
    assert time.monotonic() - started < 5
    # the fake and the helper it left in its group were both running...
    assert len(seen_running) == 2, seen_running
    # ...and both are gone, with no zombie left behind
    _assert_no_leftovers(marker)
    assert hub.exposition.body() == before


def test_cancellation_from_outside_kills_the_process_group(tmp_path: Path) -> None:
    _, tenant, source, _ = _setup(tmp_path, {"fault": "hang"}, timeout="60s")
    marker = str(tenant.config.inventory.identity_file)

    async def run() -> None:
        with anyio.move_on_after(1.0):  # as the runtime's own timeout would
            await source.refresh()

    anyio.run(run)
    _assert_no_leftovers(marker)


def test_too_much_output_is_too_large(tmp_path: Path) -> None:
    hub, tenant, source, _ = _setup(tmp_path, {"inventory": FLEET}, max_output_bytes=1_000_000)
    anyio.run(source.refresh)
    before = hub.exposition.body()
    identity = str(tenant.config.inventory.identity_file)
    write_fake_tctl(tmp_path / "bin", {"fault": "huge", "huge_bytes": 50_000_000})
    assert _failure(source).reason == "too_large"
    _assert_no_leftovers(identity)
    assert hub.exposition.body() == before


def test_fake_tctl_rejects_a_wrong_invocation(tmp_path: Path) -> None:
    """The fake is strict, so the tests above prove how the exporter calls tctl."""
    identity = tmp_path / "identity"
    identity.write_text("x")
    fake = write_fake_tctl(tmp_path / "bin", {"inventory": {"size": 1}})
    env = {key: value for key, value in os.environ.items() if key != "TELEPORT_TOOLS_VERSION"}
    good = [
        str(fake),
        "--auth-server=h:443",
        "-i",
        str(identity),
        "inventory",
        "ls",
        "--format=json",
    ]
    wrong = {
        "no TELEPORT_TOOLS_VERSION": (good, env),
        "no --auth-server": ([good[0], *good[2:]], {**env, "TELEPORT_TOOLS_VERSION": "off"}),
        "no -i": ([*good[:2], *good[4:]], {**env, "TELEPORT_TOOLS_VERSION": "off"}),
    }
    for what, (argv, environment) in wrong.items():
        done = subprocess.run(argv, env=environment, capture_output=True, check=False)
        assert done.returncode == BAD_INVOCATION, what
        assert b"called wrongly" in done.stderr
    done = subprocess.run(
        good, env={**env, "TELEPORT_TOOLS_VERSION": "off"}, capture_output=True, check=False
    )
    assert done.returncode == 0 and len(json.loads(done.stdout)) == 4


@pytest.mark.parametrize(
    ("stderr", "reason"),
    [
        ('ERROR: access denied to perform action "list" on "instance"', "auth"),
        ("ERROR: ssh: handshake failed: ssh: unable to authenticate", "auth"),
        ("ERROR: remote error: tls: expired certificate", "auth"),
        ("ERROR: x509: certificate has expired or is not yet valid", "auth"),
        ("ERROR: Not logged in.", "auth"),
        ("ERROR: open /ids/identity: no such file or directory", "auth"),
        ("ERROR: x509: certificate signed by unknown authority", "tls"),
        ("ERROR: dial tcp 10.0.0.1:443: connect: connection refused", "connect"),
        ('ERROR: autoupdate_agent_rollout "autoupdate-agent-rollout" doesn\'t exist', None),
        ("ERROR: rollout not found", None),
        ("panic: runtime error: index out of range", "other"),
    ],
)
def test_classify_failure(stderr: str, reason: str | None) -> None:
    assert classify_failure(stderr, Path("/ids/identity")) == reason


def test_stderr_summary_never_carries_key_material() -> None:
    summary = summarise_stderr(b"ERROR: bad identity\n-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n")
    assert "MIIEow" not in summary and summary.startswith("ERROR: bad identity")


@pytest.mark.parametrize("document", ["null", "{}", '{"items": []}'])
def test_output_tctl_never_prints_keeps_the_last_good_fleet(tmp_path: Path, document: str) -> None:
    hub, tenant, source, _ = _setup(tmp_path, {"inventory": FLEET})
    _set_ping(tenant)
    anyio.run(source.refresh)
    before, kept = hub.exposition.body(), tenant.inventory
    recorded = tmp_path / "broken.json"
    recorded.write_text(document + "\n")
    write_fake_tctl(tmp_path / "bin", {"inventory_file": str(recorded)})
    assert _failure(source).reason == "parse"
    assert hub.exposition.body() == before and tenant.inventory is kept


_MEMORY_PROBE = """
import anyio, json, sys
from pathlib import Path
from exporter.config import Settings
from exporter.core.errors import SourceError
from exporter.core.state import Hub
from exporter.fleet.source import InventorySource, scaled_interval

def rss():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024

tctl, identity = sys.argv[1], sys.argv[2]
settings = Settings(state_dir=".", tenants=[{"proxy": "127.0.0.1:3080", "name": "t",
    "inventory": {"tctl": tctl, "identity_file": identity}}])
hub = Hub(settings)
source = InventorySource(hub, hub.tenants["t"])
before = rss()
try:
    anyio.run(source.refresh)
except SourceError as exc:
    reason = exc.reason
print(json.dumps({"reason": reason, "before": before, "after": rss(),
    "limit": settings.tenants[0].inventory.max_output_bytes}))
"""


def test_memory_goes_back_down_after_an_oversized_output(tmp_path: Path) -> None:
    """A runaway tctl printing more than the default cap (in a fresh process, so the figures are
    its own): refused as too_large, and the process's resident memory returns close to where it
    was, well below the shipped Kubernetes limit of 512 MiB."""
    identity = tmp_path / "identity"
    identity.write_text(IDENTITY_CONTENT)
    limit = 64 * 1024 * 1024
    fake = write_fake_tctl(tmp_path / "bin", {"fault": "huge", "huge_bytes": limit + 2**20})
    result = subprocess.run(
        [sys.executable, "-c", _MEMORY_PROBE, str(fake), str(identity)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=True,
    )
    figures = json.loads(result.stdout)
    assert figures["reason"] == "too_large" and figures["limit"] == limit
    assert figures["after"] < 512 * 1024 * 1024
    assert figures["after"] - figures["before"] < 64 * 1024 * 1024, figures


@pytest.mark.parametrize(
    ("response_bytes", "expected"),
    [
        (100_000, 60.0),  # ~160 agents: the configured interval
        (6_300_000, 567.0),  # ~10,000 agents: 40 MB an hour
        (630_000_000, 3600.0),  # ~1,000,000 agents: capped at max_interval
    ],
)
def test_scaled_interval(response_bytes: int, expected: float) -> None:
    assert scaled_interval(60.0, response_bytes, 40_000_000, 3600.0) == pytest.approx(expected)
    assert scaled_interval(60.0, response_bytes, 0, 3600.0) == 60.0  # scaling off


def test_large_fleet_stretches_the_interval_and_reports_its_bytes(tmp_path: Path) -> None:
    from exporter.core.scheduler import Runtime

    hub, _, source, fake = _setup(
        tmp_path, {"inventory": {"size": 3000}}, max_bytes_per_hour=10_000_000
    )
    runtime = Runtime(hub, [source], seed=1)
    assert anyio.run(runtime.refresh_once, source) is None
    printed = subprocess.run(
        [
            str(fake),
            "--auth-server=127.0.0.1:3080",
            "-i",
            str(tmp_path / "identity"),
            "inventory",
            "ls",
            "--format=json",
        ],
        env={**os.environ, "TELEPORT_TOOLS_VERSION": "off"},
        capture_output=True,
        check=True,
    ).stdout
    samples = parse_samples(hub.exposition.body().decode())
    measured = value(
        samples, "teleport_cloud_source_response_bytes", source="inventory", target="t"
    )
    assert measured == source.response_bytes
    assert abs(measured - len(printed)) < 0.01 * len(printed)  # last_seen varies run to run
    assert source.interval == pytest.approx(measured * 3600 / 10_000_000)
    assert source.interval > 60
