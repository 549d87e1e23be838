"""`--web.config.file`: TLS, mutual TLS and basic auth in Prometheus exporter-toolkit's format.

tls_server_config:
  cert_file: server.crt
  key_file: server.key
  client_auth_type: RequireAndVerifyClientCert   # or VerifyClientCertIfGiven, NoClientCert
  client_ca_file: clients-ca.crt
  min_version: TLS12                             # or TLS13
basic_auth_users:
  alice: $2y$10$...                              # bcrypt hash
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ssl
from pathlib import Path
from typing import Literal

import bcrypt
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from exporter.config import ConfigError, describe_validation_error

CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "RequestClientCert": ssl.CERT_OPTIONAL,
    "RequireAnyClientCert": ssl.CERT_REQUIRED,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
TLS_VERSIONS = {"TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}


class TLSServerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    cert_file: Path
    key_file: Path
    client_auth_type: Literal[
        "NoClientCert",
        "RequestClientCert",
        "RequireAnyClientCert",
        "VerifyClientCertIfGiven",
        "RequireAndVerifyClientCert",
    ] = "NoClientCert"
    client_ca_file: Path | None = None
    min_version: Literal["TLS12", "TLS13"] = "TLS12"

    @field_validator("cert_file", "key_file", "client_ca_file")
    @classmethod
    def _readable(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"file {str(value)!r} does not exist")
        return value

    @model_validator(mode="after")
    def _ca_for_verification(self) -> TLSServerConfig:
        if "Verify" in self.client_auth_type and self.client_ca_file is None:
            raise ValueError(f"client_auth_type {self.client_auth_type} needs client_ca_file")
        return self


class WebConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tls_server_config: TLSServerConfig | None = None
    basic_auth_users: dict[str, str] = {}

    @field_validator("basic_auth_users")
    @classmethod
    def _bcrypt_hashes(cls, users: dict[str, str]) -> dict[str, str]:
        for user, hashed in users.items():
            if not hashed.startswith(("$2a$", "$2b$", "$2y$")):
                raise ValueError(f"user {user!r}: expected a bcrypt hash")
        return users


def load_web_config(path: Path) -> WebConfig:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"web config {str(path)!r}: {exc}") from exc
    base = path.parent

    def _resolve(value: object) -> object:
        return (
            str(base / value) if isinstance(value, str) and not Path(value).is_absolute() else value
        )

    tls = data.get("tls_server_config") if isinstance(data, dict) else None
    if isinstance(tls, dict):
        for key in ("cert_file", "key_file", "client_ca_file"):
            if key in tls:
                tls[key] = _resolve(tls[key])
    try:
        return WebConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError("web config: " + describe_validation_error(exc)) from None


class BasicAuth:
    """Checks `Authorization: Basic` against bcrypt hashes, remembering good credentials (by
    a SHA-256 of them) so Prometheus' scrapes do not pay for bcrypt each time."""

    def __init__(self, users: dict[str, str]) -> None:
        self._users = {user: hashed.encode() for user, hashed in users.items()}
        self._good: set[bytes] = set()

    def check(self, header: str | None) -> bool:
        if not header or not header.lower().startswith("basic "):
            return False
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True)
        except ValueError:
            return False
        user, sep, password = decoded.partition(b":")
        if not sep:
            return False
        digest = hashlib.sha256(decoded).digest()
        if any(hmac.compare_digest(digest, good) for good in self._good):
            return True
        hashed = self._users.get(user.decode(errors="replace"))
        if hashed is None or not bcrypt.checkpw(password, hashed.replace(b"$2y$", b"$2b$", 1)):
            return False
        self._good.add(digest)
        return True
