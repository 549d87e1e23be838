"""HTTP helpers shared by the HTTP sources: TLS contexts, capped reads, error reasons."""

from __future__ import annotations

import ssl
from email.utils import parsedate_to_datetime
from pathlib import Path

import certifi
import httpx

from exporter.errors import SourceError


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
    if any(isinstance(e, ssl.SSLError | ssl.CertificateError) for e in _chain(exc)):
        return SourceError("tls", f"TLS failure: {exc}")
    if isinstance(exc, httpx.TransportError | OSError):
        return SourceError("connect", f"connection failed: {exc or exc.__class__.__name__}")
    return SourceError("other", f"{exc.__class__.__name__}: {exc}")


async def read_capped(response: httpx.Response, max_bytes: int) -> bytes:
    """The response body, refusing more than max_bytes (a hostile or broken server)."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise SourceError("too_large", f"response of {declared} bytes exceeds {max_bytes}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise SourceError("too_large", f"response exceeds {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """Retry-After as seconds to wait: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError):
        return None
