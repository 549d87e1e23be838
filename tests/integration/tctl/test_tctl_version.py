"""tctl compatibility: `tctl version` read through the fake tctl (a real subprocess), Teleport's
client rule, the families, the warning, and the finding in `check`."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import anyio
import pytest

from exporter.check.collect import run_check
from exporter.config import Settings
from exporter.core.errors import SourceError
from exporter.core.state import Hub
from exporter.derivations import attach_derivers
from exporter.probe.model import PingInfo
from exporter.simulator.demo import demo_config, start_simulator
from exporter.simulator.fake_tctl import write_fake_tctl
from exporter.tctl.version_source import (
    TctlVersions,
    TctlVersionSource,
    parse_tctl_version,
    tctl_compatible,
)
from tests.conftest import parse_samples, series, value

COMPATIBLE = "teleport_cloud_tctl_compatible"
INFO = "teleport_cloud_tctl_version_info"


@pytest.mark.parametrize(
    ("line", "version"),
    [
        ("Teleport Enterprise v18.1.4 git:v18.1.4-0-g5e2a1c4 go1.24.5", "18.1.4"),
        ("Teleport v17.5.2 git:v17.5.2-0-gabc go1.23.1\n", "17.5.2"),
        ("Teleport Enterprise v18.2.0-rc.1 git:v18.2.0-rc.1-0-g1 go1.24.5", "18.2.0-rc.1"),
        ("warning: something\nTeleport Enterprise v16.4.9 git: go1.22", "16.4.9"),
        ("Teleport Enterprise development build", None),
        ("", None),
    ],
)
def test_first_v_semver_token(line: str, version: str | None) -> None:
    assert parse_tctl_version(line) == version


@pytest.mark.parametrize(
    ("tctl", "plane", "expected"),
    [
        ("18.1.4", "18.0.0", True),
        ("17.5.2", "18.1.4", True),  # one below: supported
        ("16.4.9", "18.1.4", False),  # two below
        ("19.0.0", "18.1.4", False),  # newer than the control plane
        ("18.1.4", None, None),  # ping not answered yet
        ("18.1.4", "garbage", None),
    ],
)
def test_client_rule(tctl: str, plane: str | None, expected: bool | None) -> None:
    assert tctl_compatible(tctl, plane) is expected


def _source(tmp_path: Path, version: str) -> tuple[Hub, TctlVersionSource]:
    fake = write_fake_tctl(tmp_path / "bin", {"tctl_version": version})
    settings = Settings(
        state_dir=tmp_path,
        tenants=[
            {
                "proxy": "proxy.example.test",
                "name": "t",
                "inventory": {"tctl": str(fake), "identity_file": str(tmp_path / "none")},
            }
        ],
    )
    hub = attach_derivers(Hub(settings))
    return hub, TctlVersionSource(hub, hub.tenants["t"], TctlVersions(hub))


def test_two_majors_behind_is_incompatible_and_warned(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    hub, source = _source(tmp_path, "16.4.9")
    tenant = hub.tenants["t"]
    anyio.run(source.refresh)  # before ping: version known, verdict not yet
    samples = parse_samples(hub.exposition.body().decode())
    assert series(samples, INFO) == [{"version": "16.4.9"}]
    assert not series(samples, COMPATIBLE)

    tenant.ping = PingInfo(server_version="18.1.4")
    with caplog.at_level(logging.WARNING):
        hub.changed(tenant)  # the verdict follows the new control plane at once
    samples = parse_samples(hub.exposition.body().decode())
    assert value(samples, COMPATIBLE, tenant="t") == 0
    assert "tctl 16.4.9 is not supported by control plane 18.1.4" in caplog.text

    tenant.ping = PingInfo(server_version="17.0.1")  # the control plane's major changes
    hub.changed(tenant)
    assert value(parse_samples(hub.exposition.body().decode()), COMPATIBLE, tenant="t") == 1


def test_re_read_when_the_control_plane_changes(tmp_path: Path) -> None:
    hub, source = _source(tmp_path, "17.5.2")
    tenant = hub.tenants["t"]
    tenant.ping = PingInfo(server_version="18.1.4")
    anyio.run(source.refresh)
    assert value(parse_samples(hub.exposition.body().decode()), COMPATIBLE, tenant="t") == 1
    write_fake_tctl(tmp_path / "bin", {"tctl_version": "18.1.4"})  # a new image's tctl
    anyio.run(source.refresh)
    assert source.version == "17.5.2"  # same control plane: no exec
    tenant.ping = PingInfo(server_version="19.0.0")
    anyio.run(source.refresh)
    assert source.version == "18.1.4"
    samples = parse_samples(hub.exposition.body().decode())
    assert series(samples, INFO) == [{"version": "18.1.4"}]
    assert value(samples, COMPATIBLE, tenant="t") == 1


def test_unreadable_version_is_a_parse_error(tmp_path: Path) -> None:
    _, source = _source(tmp_path, "x")
    script = tmp_path / "bin" / "tctl"
    script.write_text("#!/bin/sh\necho 'Teleport development build'\n")
    with pytest.raises(SourceError) as caught:
        anyio.run(source.refresh)
    assert caught.value.reason == "parse"


def test_check_reports_an_unsupported_tctl(tmp_path: Path) -> None:
    sim, tctl = start_simulator("healthy", 5, tmp_path)
    scenario = json.loads((tmp_path / "tctl-scenario.json").read_text())
    write_fake_tctl(tmp_path, {**scenario, "tctl_version": "16.4.9"})
    sim.start_in_thread()
    try:
        out = io.StringIO()
        code = run_check(Settings(**demo_config(sim, sim.workdir, tctl, "127.0.0.1:0")), out)
    finally:
        sim.stop()
    report = out.getvalue()
    assert code == 1, report
    assert "tctl            16.4.9: NOT supported by control plane 18.1.4" in report
    findings = report[report.index("Findings:") :]
    assert "demo: tctl 16.4.9 is not supported by control plane 18.1.4" in findings
