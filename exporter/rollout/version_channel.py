"""The tenant's Managed Updates v1 version channel, a source of its own.

`GET https://<proxy>/v1/webapi/automaticupgrades/channel/default/version` answers `v18.1.4` or
`none`. It gives the target agent version on tenants whose ping carries no `auto_update` (older
clusters); on newer ones ping already says it, so the channel is not polled. It has its own
interval, timeout, size cap and error reasons: a slow or broken channel never touches the
probe, and so never the SLA ledger.
"""

from __future__ import annotations

import re

import httpx

from exporter.core.errors import SourceError
from exporter.core.http import (
    client,
    error_from_exception,
    get_following,
    read_capped,
    tls_context,
)
from exporter.core.source import Source
from exporter.core.state import Hub, TenantState

CHANNEL_PATH = "/v1/webapi/automaticupgrades/channel/default/version"
MAX_CHANNEL_BYTES = 4096
"""The answer is one short line; anything longer is not a version."""

_VERSION = re.compile(r"^v?\d+\.\d+\.\d+[0-9A-Za-z.+-]{0,64}$")


def parse_channel(body: bytes) -> str | None:
    """`v18.1.4` -> `18.1.4`; `none` -> None; anything else is a parse error."""
    try:
        text = body.decode("ascii").strip()
    except UnicodeDecodeError as exc:
        raise SourceError("parse", "version channel answer is not ASCII") from exc
    if text == "none":
        return None
    if not _VERSION.match(text):
        raise SourceError("parse", f"version channel answer is not a version: {text[:40]!r}")
    return text.removeprefix("v")


class VersionChannelSource(Source):
    kind = "version_channel"

    def __init__(self, hub: Hub, tenant: TenantState) -> None:
        config = tenant.config
        channel = config.version_channel
        super().__init__(tenant.name, channel.interval, channel.timeout)
        self.hub = hub
        self.tenant = tenant
        host = f"[{config.host}]" if ":" in config.host else config.host
        self.url = f"https://{host}:{config.port}{CHANNEL_PATH}"
        self._client = client(
            tls_context(config.ca_file),
            self.timeout,
            limits=httpx.Limits(max_keepalive_connections=0),
            follow_redirects=False,
        )

    def needed(self) -> bool:
        """Polled until ping is known to carry the target itself."""
        ping = self.tenant.ping
        return ping is None or ping.auto_update is None or not ping.auto_update.agent_version

    async def refresh(self) -> None:
        if not self.needed():
            return
        try:
            response = await get_following(self._client, self.url)
            try:
                if response.status_code != 200:
                    raise SourceError(
                        "http", f"version channel answered HTTP {response.status_code}"
                    )
                body = await read_capped(response, MAX_CHANNEL_BYTES)
                self.response_bytes = len(body)
            finally:
                await response.aclose()
        except Exception as exc:
            raise error_from_exception(exc) from exc
        version = parse_channel(body)
        if version == self.tenant.channel_version:
            return
        self.tenant.channel_version = version
        self.hub.changed(self.tenant)

    async def aclose(self) -> None:
        await self._client.aclose()
