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
from exporter.core.source import Source
from exporter.core.state import Hub, TenantState
from exporter.core.versions import major_of, normalise
from exporter.tctl.runner import run_tctl_version, summarise_stderr
from exporter.tctl.version_families import compatibility_families, version_info_families

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

    KEY = ("tctl_version_info",)

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
        self.version: str | None = None
        """tctl's version from its last read."""
        self.compatible: bool | None = None
        """The last verdict; None while the control-plane version is unknown."""
        self._read_for: str | None = None
        self._warned_for: tuple[str, str | None] | None = None
        hub.on_versions_changed.append(self._versions_changed)

    @property
    def key(self) -> tuple[str, str]:
        return ("tctl_version", self.tenant.name)

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
            self.version, self._read_for = version, plane
            self.versions.set(self.tenant.name, version)
        self._publish()

    def _publish(self) -> None:
        if self.version is None:
            return
        plane = self.tenant.control_plane_version
        self.compatible = tctl_compatible(self.version, plane)
        self.hub.publish(self.key, compatibility_families(self.tenant.name, self.compatible))
        if self.compatible is False and self._warned_for != (self.version, plane):
            self._warned_for = (self.version, plane)
            log.warning(
                "tenant %s: tctl %s is not supported by control plane %s (tctl must be on its "
                "major or one below); upgrade the tctl the exporter runs",
                self.tenant.name,
                self.version,
                plane,
            )

    def _versions_changed(self, tenant: TenantState) -> None:
        if tenant.name == self.tenant.name:
            self._publish()
