"""The Managed Updates v2 rollout source: `tctl get autoupdate_agent_rollout --format=json`.

A tenant on Managed Updates v1 (or none) has no rollout and tctl answers NotFound (in one of
several wordings, see exporter.tctl.runner): that is a successful refresh that clears the rollout
families, not an error. A new or changed rollout moves the tenant's target version and its
groups' versions: the tenant's deriver derives the target and the fleet again (`Hub.changed`).
"""

from __future__ import annotations

from exporter.core.errors import SourceError
from exporter.core.keys import PublishKey
from exporter.core.source import Source
from exporter.core.state import Hub, TenantState
from exporter.rollout.families import rollout_families
from exporter.rollout.model import Rollout, RolloutParseError, parse_rollout
from exporter.tctl.runner import TctlNotFoundError, run_tenant_tctl

ROLLOUT_ARGS = ("get", "autoupdate_agent_rollout", "--format=json")
MAX_ROLLOUT_BYTES = 16 * 1024 * 1024
"""One resource with a handful of groups; anything near this size is not a rollout."""


class RolloutSource(Source):
    kind = "rollout"
    timeout_slack = 5.0

    def __init__(self, hub: Hub, tenant: TenantState) -> None:
        config = tenant.config
        # The rollout block has no timeout of its own; it shares tctl's from the inventory block.
        super().__init__(tenant.name, config.rollout.interval, config.inventory.timeout)
        self.hub = hub
        self.tenant = tenant

    @property
    def key(self) -> PublishKey:
        return PublishKey("rollout", self.tenant.name)

    async def refresh(self) -> None:
        config = self.tenant.config
        rollout: Rollout | None
        try:
            data = await run_tenant_tctl(
                config,
                ROLLOUT_ARGS,
                timeout=self.timeout,
                max_bytes=min(MAX_ROLLOUT_BYTES, config.inventory.max_output_bytes),
            )
        except TctlNotFoundError as exc:
            self.response_bytes = len(exc.message)
            rollout = None
        else:
            self.response_bytes = len(data)
            try:
                rollout = parse_rollout(data)
            except RolloutParseError as exc:
                raise SourceError("parse", f"tctl get autoupdate_agent_rollout: {exc}") from None
        changed = rollout != self.tenant.rollout
        self.tenant.rollout = rollout
        self.hub.publish(self.key, rollout_families(self.tenant.name, rollout))
        if changed:  # the target, the fleet's groups and the agent report follow at once
            self.hub.changed(self.tenant)
