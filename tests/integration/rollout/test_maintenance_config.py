"""The tenant's agent upgrade window (`cluster_maintenance_config`): shape, next start, source."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import pytest

from exporter.config import Settings
from exporter.core.state import Hub
from exporter.derivations import attach_derivers
from exporter.rollout.maintenance_config_model import (
    MaintenanceConfigParseError,
    UpgradeWindow,
    parse_maintenance_config,
)
from exporter.rollout.maintenance_config_source import MaintenanceConfigSource
from exporter.simulator.fake_tctl import write_fake_tctl
from tests.conftest import parse_samples, series, value

NEXT = "teleport_cloud_agent_upgrade_window_next_start_timestamp_seconds"
# Tuesday 2026-12-01.
TUESDAY = datetime(2026, 12, 1, 2, 30, tzinfo=UTC)


def _doc(upgrades: dict[str, Any] | None) -> bytes:
    spec = {"agent_upgrades": upgrades} if upgrades is not None else {}
    return json.dumps([{"kind": "cluster_maintenance_config", "spec": spec}], indent=2).encode()


@pytest.mark.parametrize(
    ("upgrades", "now", "expected"),
    [
        # Before today's window: today.
        ({"utc_start_hour": 3, "weekdays": ["Tue"]}, TUESDAY, datetime(2026, 12, 1, 3)),
        # Inside today's window (an hour long): its start.
        (
            {"utc_start_hour": 2, "weekdays": ["tuesday"]},
            TUESDAY,
            datetime(2026, 12, 1, 2),
        ),
        # After it: next week.
        ({"utc_start_hour": 1, "weekdays": ["Tue"]}, TUESDAY, datetime(2026, 12, 8, 1)),
        # Hour 0 is omitted by the encoder; Thursday and Monday: the nearest.
        ({"weekdays": ["Mon", "Thu"]}, TUESDAY, datetime(2026, 12, 3, 0)),
        # No weekdays: every day.
        ({"utc_start_hour": 1}, TUESDAY, datetime(2026, 12, 2, 1)),
        # Yesterday's window still open across midnight.
        (
            {"utc_start_hour": 23, "weekdays": ["Mon"]},
            datetime(2026, 11, 30, 23, 59, tzinfo=UTC),
            datetime(2026, 11, 30, 23),
        ),
    ],
)
def test_next_start(upgrades: dict[str, Any], now: datetime, expected: datetime) -> None:
    window = parse_maintenance_config(_doc(upgrades))
    assert window is not None
    assert window.next_start(now) == expected.replace(tzinfo=UTC)


def test_shapes() -> None:
    assert parse_maintenance_config(_doc(None)) is None  # no agent upgrade window set
    assert parse_maintenance_config(b"[]") is None
    assert parse_maintenance_config(_doc({"weekdays": ["Funday"]})) is None
    assert parse_maintenance_config(_doc({"weekdays": ["*"]})) == UpgradeWindow(
        frozenset(range(7)), 0
    )
    with pytest.raises(MaintenanceConfigParseError, match="utc_start_hour"):
        parse_maintenance_config(_doc({"utc_start_hour": 24}))
    with pytest.raises(MaintenanceConfigParseError):
        parse_maintenance_config(b'{"spec": 5}')


def test_source_publishes_the_next_start_and_not_found_clears_it(tmp_path: Path) -> None:
    identity = tmp_path / "identity"
    identity.write_text("identity")
    scenario = {"maintenance_config": {"weekdays": ["Mon", "Wed", "Fri"], "utc_start_hour": 4}}
    tctl = write_fake_tctl(tmp_path / "bin", scenario)
    settings = Settings(
        state_dir=tmp_path,
        tenants=[
            {
                "proxy": "p.example",
                "name": "t",
                "inventory": {"tctl": str(tctl), "identity_file": str(identity)},
            }
        ],
    )
    hub = attach_derivers(Hub(settings))
    source = MaintenanceConfigSource(hub, hub.tenants["t"])
    before = datetime.now(UTC)
    anyio.run(source.refresh)
    samples = parse_samples(hub.exposition.body().decode())
    start = datetime.fromtimestamp(value(samples, NEXT, tenant="t"), UTC)
    assert start.weekday() in (0, 2, 4) and start.hour == 4 and start.minute == 0
    assert before.timestamp() - 3600 < start.timestamp() <= before.timestamp() + 3 * 86400
    assert source.response_bytes is not None and source.response_bytes > 100

    write_fake_tctl(tmp_path / "bin", {})  # no window set: NotFound
    anyio.run(source.refresh)
    assert not series(parse_samples(hub.exposition.body().decode()), NEXT)
    assert hub.tenants["t"].upgrade_window is None
