"""The `agent_report` source (Teleport 18+): `tctl get autoupdate_agent_report --format=json`.

Auth serves the reports from its cache, so reading them costs the tenant little, unlike `tctl
inventory ls`, which scans the backend: where the reports exist they keep the per-group
aggregates fresh every minute while the full inventory is read far less often.

Reports exist only while a Managed Updates v2 rollout does; the families are absent without one
(also when the rollout goes away between two refreshes). A tenant on Teleport 17, or a bot role
without the `autoupdate_agent_report` rule (`list` and `read`), cannot serve the source at all:
that is said once in the log and the source shows down (`source_up` 0) without counting an error
every minute; it is checked again every `UNAVAILABLE_RECHECK` seconds.
"""

from __future__ import annotations

import logging

from exporter.core.errors import SourceError, SourceUnavailableError
from exporter.core.source import Source
from exporter.core.state import Hub, TenantState
from exporter.rollout.agent_report_model import (
    AgentReportParseError,
    MergedReport,
    merge_reports,
    parse_agent_reports,
)
from exporter.tctl.runner import TctlNotFoundError, run_tenant_tctl

log = logging.getLogger(__name__)

AGENT_REPORT_ARGS = ("get", "autoupdate_agent_report", "--format=json")
MAX_REPORT_BYTES = 16 * 1024 * 1024
UNAVAILABLE_RECHECK = 3600.0
RESOURCE = "autoupdate_agent_report"
_OLDER_TELEPORT_MARKERS = (
    "unsupported resource",
    "not supported",
    "unknown resource",
    "unimplemented",
    "not implemented",
    "unknown method",
)


def unavailable_reason(error: SourceError, resource: str = RESOURCE) -> str | None:
    """Why the tenant cannot serve `resource` at all, or None for an ordinary failure."""
    text = error.message.lower()
    if error.reason == "auth" and "access denied" in text and resource in text:
        return f"the bot's role has no rule for {resource} (tctl: {error.message})"
    if error.reason == "other" and any(marker in text for marker in _OLDER_TELEPORT_MARKERS):
        return f"the tenant's Teleport cannot serve {resource} (tctl: {error.message})"
    return None


class AgentReportSource(Source):
    kind = "agent_report"
    timeout_slack = 5.0

    def __init__(self, hub: Hub, tenant: TenantState) -> None:
        config = tenant.config
        super().__init__(tenant.name, config.agent_report.interval, config.inventory.timeout)
        self.hub = hub
        self.tenant = tenant

    @property
    def report(self) -> MergedReport | None:
        """The merged report as published (for `check` and tests): reports exist only while a
        rollout does, so the tenant's deriver publishes it only then, and follows the rollout
        at once both ways (exporter.derivations)."""
        return self.tenant.agent_report if self.tenant.rollout is not None else None

    async def refresh(self) -> None:
        config = self.tenant.config
        try:
            data = await run_tenant_tctl(
                config,
                AGENT_REPORT_ARGS,
                timeout=self.timeout,
                max_bytes=min(MAX_REPORT_BYTES, config.inventory.max_output_bytes),
            )
        except TctlNotFoundError:
            data = bytearray(b"[]")
        except SourceError as exc:
            reason = unavailable_reason(exc)
            if reason is not None:
                self.tenant.agent_report = None
                self.hub.changed(self.tenant)
                raise SourceUnavailableError(reason, UNAVAILABLE_RECHECK) from None
            raise
        self.response_bytes = len(data)
        try:
            reports = parse_agent_reports(data)
        except AgentReportParseError as exc:
            raise SourceError("parse", f"tctl get {RESOURCE}: {exc}") from None
        merged = merge_reports(reports)
        if merged is not None and merged.dropped:
            log.debug(
                "tenant %s: dropped agent reports older than Teleport accepts from %s",
                self.tenant.name,
                ", ".join(merged.dropped),
            )
        self.tenant.agent_report = merged
        self.hub.changed(self.tenant)
