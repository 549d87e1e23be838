"""HTTP helpers shared by the HTTP sources: the client (no proxy environment, identity
encoding), TLS contexts, capped reads with bounded decompression, error reasons, guarded
redirects and a bounded Retry-After."""

from __future__ import annotations

import errno
import ssl
import zlib
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import certifi
import httpx

from exporter.core.errors import SourceError


def tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """Public CAs (certifi, so a slim image needs no system bundle) plus an optional extra "
    "bundle."""
    context = ssl.create_default_context(cafile=certifi.where())
    if ca_file is not None:
        context.load_verify_locations(cafile=str(ca_file))
    return context


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def error_from_exception(exc: Exception) -> SourceError:
    """Map a transport exception to a SourceError with a bounded reason."""
    if isinstance(exc, SourceError):
        return exc
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return SourceError("timeout", f"timed out: {exc.__class__.__name__}")
    if isinstance(exc, httpx.TooManyRedirects):
        return SourceError("http", f"redirect trouble: {exc}")
    if any(isinstance(e, ssl.SSLError | ssl.CertificateError) for e in _chain(exc)):
        return SourceError("tls", f"TLS failure: {exc}")
    if isinstance(exc, httpx.TransportError | OSError):
        return SourceError("connect", f"connection failed: {exc or exc.__class__.__name__}")
    return SourceError("other", f"{exc.__class__.__name__}: {exc}")


IDENTITY = {"Accept-Encoding": "identity"}
"""Asked of every upstream: the answers are small, and a compressed one could inflate a
thousandfold (a gzip bomb) before any size cap sees it."""

_DECODERS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


def client(verify: ssl.SSLContext, timeout: float, **options: Any) -> httpx.AsyncClient:
    """An httpx client for an upstream source: proxy environment variables are ignored (as
    blackbox_exporter does by default; every source goes direct, so a probe and the status
    page see the same network path), and identity encoding is asked for."""
    headers = {**IDENTITY, **options.pop("headers", {})}
    return httpx.AsyncClient(
        verify=verify, timeout=timeout, trust_env=False, headers=headers, **options
    )


async def read_capped(response: httpx.Response, max_bytes: int) -> bytes:
    """The response body, refusing more than max_bytes (a hostile or broken server) both on the
    wire and once decoded. A server that compresses although asked not to may use one gzip or
    deflate layer, inflated with a bound; stacked or other codings are refused."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise SourceError("too_large", f"response of {declared} bytes exceeds {max_bytes}")
    codings = [
        c.strip().lower()
        for c in response.headers.get("content-encoding", "").split(",")
        if c.strip() and c.strip().lower() != "identity"
    ]
    if len(codings) > 1 or (codings and codings[0] not in _DECODERS):
        raise SourceError("http", f"unsupported content-encoding {', '.join(codings)!r}")
    inflate = zlib.decompressobj(_DECODERS[codings[0]]) if codings else None
    chunks: list[bytes] = []
    wire = size = 0
    async for raw in response.aiter_raw():
        wire += len(raw)
        if wire > max_bytes:
            raise SourceError("too_large", f"response exceeds {max_bytes} bytes")
        if inflate is None:
            chunk = raw
        else:
            try:
                # at most one byte past the cap is inflated: the bomb never unpacks
                chunk = inflate.decompress(raw, max_bytes - size + 1)
            except zlib.error as exc:
                raise SourceError("parse", f"bad {codings[0]} data: {exc}") from None
        size += len(chunk)
        if size > max_bytes:
            raise SourceError("too_large", f"response exceeds {max_bytes} bytes once decoded")
        chunks.append(chunk)
    return b"".join(chunks)


MIN_RETRY_AFTER_CAP = 3600.0
"""A Retry-After is honoured up to the larger of 10 intervals and this: a server must not be
able to silence a source (and with the status page, the SLA's maintenance exclusion) for years."""

RESOURCE_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
"""Errors that say the exporter's host ran out of something, not that the peer failed."""


def retry_after_seconds(value: str | None, now: float, interval: float) -> float | None:
    """Retry-After as seconds to wait (delta-seconds or an HTTP date), capped at the larger of
    10 intervals and an hour."""
    if not value:
        return None
    value = value.strip()
    cap = max(10.0 * interval, MIN_RETRY_AFTER_CAP)
    if value.isdigit():
        return min(float(value), cap)
    try:
        return min(max(0.0, parsedate_to_datetime(value).timestamp() - now), cap)
    except (TypeError, ValueError, OverflowError):
        return None


def resource_exhaustion(exc: BaseException) -> bool:
    """Whether an out-of-descriptors/buffers/memory error is anywhere in the cause chain."""
    return any(
        isinstance(e, MemoryError) or (isinstance(e, OSError) and e.errno in RESOURCE_ERRNOS)
        for e in _chain(exc)
    )


REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5


def redirect_target(response: httpx.Response) -> httpx.URL | None:
    """Where a redirect may lead: same host and port, never from https to http. Anything else
    is an `http` failure, so a compromised or misconfigured page cannot send us elsewhere."""
    if response.status_code not in REDIRECT_STATUSES or "location" not in response.headers:
        return None
    current = response.request.url
    try:
        target = current.join(response.headers["location"])
    except httpx.InvalidURL as exc:
        raise SourceError("http", f"redirect to an invalid URL: {exc}") from exc
    if target.host != current.host or target.port != current.port:
        raise SourceError("http", f"redirect to another host refused: {target.host}")
    if current.scheme == "https" and target.scheme != "https":
        raise SourceError("http", "redirect from https to http refused")
    return target


async def get_following(
    client: httpx.AsyncClient, url: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    """GET (streamed) following at most MAX_REDIRECTS same-host redirects; a loop or a longer
    chain is an `http` failure. The caller closes the response."""
    request = client.build_request("GET", url, headers=headers)
    for _ in range(MAX_REDIRECTS + 1):
        response = await client.send(request, stream=True, follow_redirects=False)
        try:
            target = redirect_target(response)
        except BaseException:
            await response.aclose()
            raise
        if target is None:
            return response
        await response.aclose()
        request = client.build_request("GET", target, headers=headers)
    raise SourceError("http", f"more than {MAX_REDIRECTS} redirects (a redirect loop?)")
