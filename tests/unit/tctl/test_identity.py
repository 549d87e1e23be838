"""The identity file's certificate expiry: only certificate blocks are read, nothing is logged
of the file, and a group- or world-readable file is warned about."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import anyio
import pytest
import trustme

from exporter.config import Settings
from exporter.core.errors import SourceError
from exporter.core.state import Hub
from exporter.derivations import attach_derivers
from exporter.sources import build_sources
from exporter.tctl.identity import IdentityError, certificate_blocks, leaf_expiry, read_expiry
from exporter.tctl.identity_source import IdentitySource
from tests.conftest import parse_samples, value

NOT_AFTER = datetime(2030, 3, 4, 5, 6, 7, tzinfo=UTC)
SSH_CERT = "ssh-ed25519-cert-v01@openssh.com AAAAIHNzaC1lZDI1NTE5LWNlcnQtdjAxQG9wZW5zc2guY29t\n"


def write_identity(path: Path, not_after: datetime = NOT_AFTER, mode: int = 0o600) -> bytes:
    """A file shaped like tbot's identity output: key, SSH certificate, TLS certificate, CA
    lines and the CA's certificate. Returns the private key, which must never leak."""
    ca = trustme.CA()
    leaf = ca.issue_cert("bot-exporter", not_after=not_after)
    key = leaf.private_key_pem.bytes()
    path.write_bytes(
        key
        + SSH_CERT.encode()
        + leaf.cert_chain_pems[0].bytes()
        + b"@cert-authority *.example.teleport.sh ssh-rsa AAAAB3NzaC1yc2E type=host\n"
        + ca.cert_pem.bytes()
    )
    path.chmod(mode)
    return key


def test_expiry_is_the_tls_certificates_not_the_cas(tmp_path: Path) -> None:
    path = tmp_path / "identity"
    write_identity(path)
    expiry, mode = read_expiry(path)
    assert expiry == NOT_AFTER.timestamp()
    assert mode == 0o600


def test_only_certificate_blocks_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "identity"
    key = write_identity(path)
    blocks = certificate_blocks(path.read_text().splitlines())
    assert len(blocks) == 2
    kept = "".join(blocks)
    assert "PRIVATE KEY" not in kept and "ssh-ed25519" not in kept
    assert key.decode().splitlines()[1] not in kept


def test_a_file_without_a_leaf_certificate_is_a_parse_error(tmp_path: Path) -> None:
    ca = trustme.CA()
    with pytest.raises(IdentityError, match="no TLS certificate"):
        leaf_expiry([ca.cert_pem.bytes().decode()])
    with pytest.raises(IdentityError, match="no TLS certificate"):
        leaf_expiry(certificate_blocks(["not an identity"]))
    broken = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    with pytest.raises(IdentityError, match="does not parse") as raised:
        leaf_expiry([broken])
    assert "AAAA" not in str(raised.value)


def _source(tmp_path: Path, identity: Path) -> tuple[Hub, IdentitySource]:
    settings = Settings(
        state_dir=tmp_path,
        tenants=[
            {"proxy": "127.0.0.1:3080", "name": "t", "inventory": {"identity_file": identity}}
        ],
    )
    hub = attach_derivers(Hub(settings))
    return hub, IdentitySource(hub, hub.tenants["t"])


def test_source_publishes_expiry_and_warns_once_about_loose_permissions(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "identity"
    key = write_identity(path, mode=0o640)
    hub, source = _source(tmp_path, path)
    with caplog.at_level(logging.WARNING, logger="exporter.tctl.identity_source"):
        anyio.run(source.refresh)
        anyio.run(source.refresh)
    samples = parse_samples(hub.exposition.body().decode())
    expiry = value(samples, "teleport_cloud_identity_expiry_timestamp_seconds", tenant="t")
    assert expiry == NOT_AFTER.timestamp()
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1, warnings
    assert "0640" in warnings[0] and str(path) in warnings[0]
    assert key.decode().splitlines()[1] not in caplog.text

    path.chmod(0o600)
    caplog.clear()
    anyio.run(source.refresh)
    assert not caplog.records


def test_renewal_shows_at_the_next_refresh(tmp_path: Path) -> None:
    path = tmp_path / "identity"
    write_identity(path)
    hub, source = _source(tmp_path, path)
    anyio.run(source.refresh)
    renewed = datetime(2030, 3, 4, 6, 6, 7, tzinfo=UTC)
    write_identity(path, not_after=renewed)
    anyio.run(source.refresh)
    samples = parse_samples(hub.exposition.body().decode())
    expiry = value(samples, "teleport_cloud_identity_expiry_timestamp_seconds", tenant="t")
    assert expiry == renewed.timestamp()


@pytest.mark.parametrize(
    ("content", "reason"), [(None, "auth"), (b"simulated identity\n", "parse")]
)
def test_missing_or_certificateless_file_fails_the_source(
    tmp_path: Path, content: bytes | None, reason: str
) -> None:
    path = tmp_path / "identity"
    if content is not None:
        path.write_bytes(content)
    _, source = _source(tmp_path, path)
    with pytest.raises(SourceError) as raised:
        anyio.run(source.refresh)
    assert raised.value.reason == reason
    assert "simulated identity" not in raised.value.message


def test_one_identity_source_per_tenant_with_inventory(tmp_path: Path) -> None:
    identity = tmp_path / "identity"
    settings = Settings(
        state_dir=tmp_path,
        tenants=[
            {"proxy": "a.example.com", "name": "a", "inventory": {"identity_file": identity}},
            {
                "proxy": "b.example.com",
                "name": "b",
                "inventory": {"enabled": False, "identity_file": identity},
            },
        ],
    )
    kinds = [(s.kind, s.target) for s in build_sources(attach_derivers(Hub(settings)), None)]
    assert ("identity", "a") in kinds
    assert ("identity", "b") not in kinds
