"""The tenant's agents against the 10,000 Teleport asks Enterprise Cloud customers to discuss
first: a line in every report, a finding once over 80 % (or projected over the limit)."""

from __future__ import annotations

from types import SimpleNamespace

from exporter.check.findings import ProbeView, SizeView, TenantView, _fleet
from exporter.fleet.derive import FleetView


def _fleet_of(count: int) -> FleetView:
    return FleetView(
        # Counted, and asked for their updater status only.
        agents=[SimpleNamespace(updater_status="ok")] * count,  # type: ignore[list-item]
        by_version_upgrader={("18.1.4", "binary"): count},
        by_service={},
        by_updater_status={},
        by_skew={
            "current": count,
            "one_major_behind": 0,
            "unsupported_old": 0,
            "unsupported_newer": 0,
            "unknown": 0,
        },
        outdated=0,
        upgrade_blocked=False,
        blocking_agents=[],
        control_plane_version="18.1.4",
        control_plane_major=18,
        target_version="18.1.4",
        excluded_control_plane=0,
    )


def _view() -> TenantView:
    return TenantView(
        name="acme",
        proxy="acme.teleport.sh:443",
        probe=ProbeView(state="ok", last=None),
        control_plane="18.1.4",
        cluster_name="acme",
        target_version="18.1.4",
    )


def test_over_80_percent_is_a_finding_with_whom_to_contact() -> None:
    view = _view()
    _fleet(view, _fleet_of(8_100))
    assert view.size is not None and view.size.agents == 8_100
    texts = [finding.text for finding in view.findings]
    assert any(
        "8,100 of the 10,000 agents" in text and "(81%)" in text and "account team" in text
        for text in texts
    ), texts


def test_under_the_share_is_shown_but_not_a_finding() -> None:
    view = _view()
    _fleet(view, _fleet_of(8_000))
    assert view.size is not None and not view.size.over_share
    assert "8,000 of the 10,000 agents Teleport asks to discuss first (80%)" in view.size.line()
    assert not [f for f in view.findings if "10,000" in f.text]


def test_a_projection_over_the_limit_is_a_finding_below_the_share() -> None:
    size = SizeView(agents=6_000, projected=10_500)
    assert not size.over_share and size.projected_over
    assert "10,500 in 30 days" in size.line()
    assert not SizeView(agents=6_000, projected=9_000).projected_over
    assert "not projected" in SizeView(agents=6_000).line()
