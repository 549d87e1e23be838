"""What every source is: a named target refreshed on an interval by the runtime.

A source fetches, parses and publishes its families through the `Hub`; on any failure it raises
`SourceError` (or lets a timeout cancel it) and publishes nothing, so its last good families
stay exposed. The runtime (`exporter.core.scheduler`) owns scheduling, timeouts, backoff and the
source-health families; sources never touch those.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from prometheus_client.metrics_core import Metric

from exporter.core.catalogue import SOURCE_IGNORED_FIELDS
from exporter.core.errors import SourceError


class Source(ABC):
    kind: ClassVar[str]
    """The `source` label: ping, inventory, rollout or status_page."""

    backoff: ClassVar[bool] = True
    """Whether failures stretch the interval. The probe keeps its cadence: its failures are
    the measurement the SLA ledger needs, minute by minute."""

    timeout_slack: ClassVar[float] = 0.0
    """Extra seconds the runtime allows beyond `timeout` for sources that enforce their own
    (tctl is killed at `timeout`; parsing what it printed may take a moment more)."""

    def __init__(self, target: str, interval: float, timeout: float) -> None:
        self.target = target
        self.interval = interval
        self.timeout = timeout
        self.response_bytes: int | None = None
        """Size of the last answer read from upstream (`source_response_bytes`): what the
        exporter costs the tenant. None until a source that measures it has read one."""

    @abstractmethod
    async def refresh(self) -> None:
        """Fetch, parse and publish once. Raise SourceError on failure."""

    async def aclose(self) -> None:  # noqa: B027 (optional hook)
        """Release connections or other resources; called once at shutdown."""

    async def failed(self, error: SourceError) -> None:  # noqa: B027 (optional hook)
        """Called by the runtime after a failed refresh (also after a timeout), before the
        health families are updated. The probe uses it to publish probe_success 0."""

    async def unobserved(self, reason: str, error: SourceError) -> None:
        """Called instead of `failed` when the failure is the exporter's own (out of file
        descriptors, a blocked event loop, a bug): `reason` is one of UNOBSERVED_REASONS. The
        probe overrides it so such a failure never becomes downtime evidence."""
        await self.failed(error)


class IgnoredFields:
    """`source_ignored_fields_total{source,target}`: optional upstream fields of an unexpected
    type or size that a source dropped instead of failing the refresh."""

    def __init__(self, source: str, target: str) -> None:
        self._labels = (source, target)
        self.count = 0

    def add(self, count: int) -> None:
        self.count += count

    def families(self) -> list[Metric]:
        return [SOURCE_IGNORED_FIELDS.counts([(self._labels, self.count)])]
