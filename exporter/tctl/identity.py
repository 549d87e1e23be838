"""The expiry of a Machine ID identity file's TLS certificate, reading nothing else of it.

An identity file (tbot's `identity` output) holds a private key, an SSH certificate, the TLS
certificate and the cluster's CA certificates. Only lines inside `CERTIFICATE` PEM blocks are
kept; every other line, the key included, is dropped as it is read. The first certificate that is
not a CA is the identity's own. Nothing here logs or raises with the file's content.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import ExtensionOID

BEGIN = "-----BEGIN CERTIFICATE-----"
END = "-----END CERTIFICATE-----"
MAX_BYTES = 1024 * 1024
"""An identity file is a few kilobytes; a bigger one is not an identity file."""


class IdentityError(Exception):
    """The identity file has no usable certificate; the message never quotes the file."""


def certificate_blocks(lines: Iterable[str]) -> list[str]:
    """The PEM `CERTIFICATE` blocks among `lines`, each as text; other lines are discarded."""
    blocks: list[str] = []
    current: list[str] | None = None
    for raw in lines:
        line = raw.strip()
        if line == BEGIN:
            current = [line]
        elif current is not None:
            current.append(line)
            if line == END:
                blocks.append("\n".join(current) + "\n")
                current = None
    return blocks


def _is_ca(certificate: x509.Certificate) -> bool:
    try:
        constraints = certificate.extensions.get_extension_for_oid(ExtensionOID.BASIC_CONSTRAINTS)
    except x509.ExtensionNotFound:
        return False
    return bool(constraints.value.ca)  # type: ignore[attr-defined]


def leaf_expiry(blocks: Iterable[str]) -> float:
    """notAfter (Unix seconds) of the first certificate that is not a CA."""
    for block in blocks:
        try:
            certificate = x509.load_pem_x509_certificate(block.encode())
        except ValueError:
            raise IdentityError("a certificate block does not parse") from None
        if not _is_ca(certificate):
            return certificate.not_valid_after_utc.timestamp()
    raise IdentityError("no TLS certificate (only CA certificates, or none at all)")


def group_or_other_readable(mode: int) -> bool:
    return bool(mode & (stat.S_IRGRP | stat.S_IROTH))


def read_expiry(path: Path) -> tuple[float, int]:
    """(notAfter, file mode) of the identity file at `path`. Blocking: call from a thread.

    Raises OSError when the file cannot be read and IdentityError when it holds no certificate.
    """
    with path.open("r", encoding="ascii", errors="replace") as handle:
        info = os.fstat(handle.fileno())
        if info.st_size > MAX_BYTES:
            raise IdentityError(f"larger than {MAX_BYTES} bytes: not an identity file")
        return leaf_expiry(certificate_blocks(handle)), stat.S_IMODE(info.st_mode)
