"""The vendor status page (Atlassian Statuspage `summary.json`), polled conditionally.

ETag / Last-Modified validators are sent back so an unchanged page costs a 304; a 429 or 503
with Retry-After pushes the next attempt back at least that far. A failing status page is a
source failure (status_page source down), never a statement about Teleport itself.
"""

from __future__ import annotations

import time

import httpx
from pydantic import ValidationError

from exporter.config import StatusPageConfig
from exporter.core.errors import SourceError
from exporter.core.http import (
    client,
    error_from_exception,
    get_following,
    read_capped,
    retry_after_seconds,
    tls_context,
)
from exporter.core.keys import PublishKey
from exporter.core.source import Source
from exporter.core.state import Hub
from exporter.status_page.families import status_families
from exporter.status_page.model import SUMMARY_ADAPTER

SUMMARY_PATH = "/api/v2/summary.json"
MAX_SUMMARY_BYTES = 4 * 1024 * 1024


class StatusPageSource(Source):
    kind = "status_page"

    def __init__(self, hub: Hub, config: StatusPageConfig) -> None:
        super().__init__(config.host, config.interval, config.timeout)
        self.hub = hub
        self.config = config
        self.page = config.host
        self._validators: dict[str, str] = {}
        self._client = client(
            tls_context(config.ca_file),
            config.timeout,
            # a poll a minute gains nothing from keep-alive, and a fresh handshake re-checks
            # the certificate every time
            limits=httpx.Limits(max_keepalive_connections=0),
            follow_redirects=False,  # get_following: same host, never https -> http
            headers={"Accept": "application/json"},
        )

    async def refresh(self) -> None:
        try:
            response = await get_following(
                self._client, self.config.url + SUMMARY_PATH, self._validators
            )
            try:
                body = await self._check(response)
            finally:
                await response.aclose()
        except Exception as exc:
            raise error_from_exception(exc) from exc
        if body is None:  # 304: the last good summary is still current
            self.hub.status_at = time.time()
            return
        try:
            summary = SUMMARY_ADAPTER.validate_json(body)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(document)"
            raise SourceError("parse", f"summary.json: {where}: {first['msg']}") from exc
        self.hub.status = summary
        self.hub.status_at = time.time()
        self.hub.publish(
            PublishKey("status_page", self.page),
            status_families(self.page, summary, self.config.components),
        )
        self._validators = {
            request_header: response.headers[response_header]
            for response_header, request_header in (
                ("etag", "If-None-Match"),
                ("last-modified", "If-Modified-Since"),
            )
            if response_header in response.headers
        }

    async def _check(self, response: httpx.Response) -> bytes | None:
        if response.status_code == 304 and self.hub.status is not None:
            return None
        if response.status_code in (429, 503):
            wait = retry_after_seconds(
                response.headers.get("retry-after"), time.time(), self.interval
            )
            raise SourceError(
                "http", f"status page answered HTTP {response.status_code}", retry_after=wait
            )
        if response.status_code != 200:
            raise SourceError("http", f"status page answered HTTP {response.status_code}")
        body = await read_capped(response, MAX_SUMMARY_BYTES)
        self.response_bytes = len(body)
        return body

    async def aclose(self) -> None:
        await self._client.aclose()
