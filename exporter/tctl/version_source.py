"""The `tctl_version` source: which tctl the exporter runs, and whether each control plane still
supports it.

The image pins a tctl while Teleport Cloud upgrades the control plane on its own schedule, so the
pinned tctl silently falls out of support. Teleport's client rule: tctl must be on the control
plane's major or one below (a newer tctl is not supported either).

`tctl version` is read at start and again whenever the tenant's control-plane version has changed
since the last read (checked every `interval`, no exec otherwise). A version change from ping
re-publishes the verdict at once with the tctl already known.
"""

from __future__ import annotations

import logging
import re

from exporter.core.errors import SourceError
from exporter.core.keys import PublishKey
from exporter.core.source import Source
from exporter.core.state import Hub, TenantState
from exporter.core.versions import major_of, normalise
from exporter.tctl.runner import run_tctl_version, summarise_stderr
from exporter.tctl.version_families import version_info_families

log = logging.getLogger(__name__)

CHECK_INTERVAL = 30.0
VERSION_TIMEOUT = 15.0
_VERSION_TOKEN = re.compile(r"(?<![\w.])v(\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.+-]*)?)")


def parse_tctl_version(output: str) -> str | None:
    """The first `v<semver>` token: `Teleport Enterprise v18.1.4 git:v18.1.4-0-g5e2a1c4 go1.24.5`
    -> `18.1.4`; None when there is none."""
    match = _VERSION_TOKEN.search(output)
    return normalise(match.group(1)) if match else None


def tctl_compatible(tctl_version: str, control_plane_version: str | None) -> bool | None:
    """tctl's major is the control plane's or one below; None while either major is unknown."""
    tctl_major, plane_major = major_of(tctl_version), major_of(control_plane_version)
    if tctl_major is None or plane_major is None:
        return None
    return plane_major - 1 <= tctl_major <= plane_major


class TctlVersions:
    """The tctl version seen per tenant, published as one `tctl_version_info` family (tenants
    usually share one binary; the family has no tenant label)."""

    KEY = PublishKey("tctl_version_info")

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.by_tenant: dict[str, str] = {}

    def set(self, tenant: str, version: str) -> None:
        self.by_tenant[tenant] = version
        self.hub.publish(self.KEY, version_info_families(self.by_tenant.values()))


class TctlVersionSource(Source):
    kind = "tctl_version"

    def __init__(self, hub: Hub, tenant: TenantState, versions: TctlVersions) -> None:
        super().__init__(tenant.name, CHECK_INTERVAL, VERSION_TIMEOUT)
        self.hub = hub
        self.tenant = tenant
        self.versions = versions
        self._read_for: str | None = None

    @property
    def version(self) -> str | None:
        """tctl's version from its last read."""
        return self.tenant.tctl_version

    @property
    def compatible(self) -> bool | None:
        """The verdict (derived and published by the tenant's deriver); None while either
        version is unknown."""
        version = self.tenant.tctl_version
        if version is None:
            return None
        return tctl_compatible(version, self.tenant.control_plane_version)

    async def refresh(self) -> None:
        plane = self.tenant.control_plane_version
        if self.version is None or plane != self._read_for:
            tctl = self.tenant.config.inventory.tctl
            output = await run_tctl_version(tctl, timeout=self.timeout)
            version = parse_tctl_version(output.decode("utf-8", "replace"))
            if version is None:
                raise SourceError(
                    "parse", f"{tctl} version: no v<version> in {summarise_stderr(bytes(output))!r}"
                )
            self._read_for = plane
            self.tenant.tctl_version = version
            self.versions.set(self.tenant.name, version)
            self.hub.changed(self.tenant)
