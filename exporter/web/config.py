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

import anyio
import anyio.to_thread
import bcrypt
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from exporter.config import ConfigError, describe_validation_error
from exporter.web.guard import FailureLimiter

CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "RequestClientCert": ssl.CERT_OPTIONAL,
    "RequireAnyClientCert": ssl.CERT_REQUIRED,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
TLS_VERSIONS = {"TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}
TLS12_CIPHERS = ":".join(
    [
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
    ]
)
"""TLS 1.2 suites offered: forward-secret AEAD only (Go's and exporter-toolkit's defaults, less
the CBC ones). TLS 1.3 suites are all AEAD and stay OpenSSL's defaults."""


_VERIFIED = frozenset(
    {"RequireAnyClientCert", "VerifyClientCertIfGiven", "RequireAndVerifyClientCert"}
)


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
        # RequireAnyClientCert needs a CA here, unlike exporter-toolkit: Python's TLS cannot
        # require a certificate without verifying it, so without a CA it would refuse everyone.
        if self.client_auth_type in _VERIFIED and self.client_ca_file is None:
            raise ValueError(
                f"client_auth_type {self.client_auth_type} needs client_ca_file "
                "(client certificates are always verified)"
            )
        return self

    def server_context(self) -> ssl.SSLContext:
        """The server's TLS context; a key that does not match its certificate, or a file that
        is not PEM, is a ConfigError naming the key."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = TLS_VERSIONS[self.min_version]
        context.set_ciphers(TLS12_CIPHERS)
        try:
            context.load_cert_chain(self.cert_file, self.key_file)
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError(
                f"web config: tls_server_config.key_file: cannot use {str(self.key_file)!r} "
                f"with cert_file {str(self.cert_file)!r}: {_reason(exc)}"
            ) from None
        mode = CLIENT_AUTH[self.client_auth_type]
        if self.client_ca_file is None:
            # RequestClientCert without a CA: a certificate would only be asked for, never
            # checked, so it is not asked for at all (the same clients are let in).
            mode = ssl.CERT_NONE
        else:
            try:
                context.load_verify_locations(cafile=str(self.client_ca_file))
            except (ssl.SSLError, OSError) as exc:
                raise ConfigError(
                    "web config: tls_server_config.client_ca_file: cannot load "
                    f"{str(self.client_ca_file)!r}: {_reason(exc)}"
                ) from None
        context.verify_mode = mode
        return context


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason).lower().replace("_", " ")
    return str(getattr(exc, "strerror", None) or exc)


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
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"web config {str(path)!r}: {exc}") from None
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
        config = WebConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError("web config: " + describe_validation_error(exc)) from None
    if config.tls_server_config is not None:
        config.tls_server_config.server_context()  # fails now, with one line, not at listen
    return config


AuthVerdict = Literal["ok", "invalid", "rate_limited", "busy"]

BCRYPT_MAX_PASSWORD = 72
"""bcrypt reads at most 72 bytes; a longer password is refused rather than truncated."""
HASH_WORKERS = 2
"""Threads that run bcrypt: a flood of bad logins costs at most this many cores."""
MAX_WAITING_CHECKS = 32
"""Hash checks allowed to queue for a worker; beyond it a login is refused as busy."""
MAX_GOOD = 64


class BasicAuth:
    """Checks `Authorization: Basic` against bcrypt hashes.

    - Good credentials are remembered (by a SHA-256 of them) so Prometheus' scrapes do not pay
      for bcrypt each time, and an attack's queue never delays them.
    - bcrypt runs in a small worker pool off the event loop, with a bounded queue.
    - Failures are rate-limited per client address (`FailureLimiter`); a limited client costs
      no bcrypt at all.
    - An unknown user is checked against a dummy hash of the highest configured cost, so the
      answer's timing does not tell which users exist.
    """

    def __init__(self, users: dict[str, str], limiter: FailureLimiter | None = None) -> None:
        self._users = {
            user: hashed.replace("$2y$", "$2b$", 1).encode() for user, hashed in users.items()
        }
        # The highest cost among the users: an unknown user must take at least as long as the
        # slowest real one, or timing would single out a user with a higher cost.
        cost = max((_cost(h) for h in self._users.values()), default=10)
        self._dummy = bcrypt.hashpw(b"not a password", bcrypt.gensalt(rounds=cost))
        self._good: dict[bytes, None] = {}
        self.limiter = limiter or FailureLimiter()
        self._workers: anyio.CapacityLimiter | None = None

    async def check(self, header: str | None, client: str) -> AuthVerdict:
        credentials = _credentials(header)
        if credentials is not None:
            digest = hashlib.sha256(credentials[0] + b":" + credentials[1]).digest()
            if any(hmac.compare_digest(digest, good) for good in self._good):
                return "ok"
        if not self.limiter.allowed(client):
            return "rate_limited"
        if credentials is None or len(credentials[1]) > BCRYPT_MAX_PASSWORD:
            self.limiter.failed(client)
            return "invalid"
        if self._workers is None:
            self._workers = anyio.CapacityLimiter(HASH_WORKERS)
        if self._workers.statistics().tasks_waiting >= MAX_WAITING_CHECKS:
            return "busy"
        # The failure is taken before hashing and given back on success: concurrent guesses
        # from one client cannot all pass the limit while their checks are still running.
        self.limiter.failed(client)
        user, password = credentials
        hashed = self._users.get(user.decode(errors="replace"))
        matches = await anyio.to_thread.run_sync(
            _checkpw, password, hashed or self._dummy, limiter=self._workers
        )
        if hashed is None or not matches:
            return "invalid"
        self.limiter.refund(client)
        self._good[digest] = None
        while len(self._good) > MAX_GOOD:
            del self._good[next(iter(self._good))]
        return "ok"


def _credentials(header: str | None) -> tuple[bytes, bytes] | None:
    if not header or header[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True)
    except ValueError:
        return None
    user, sep, password = decoded.partition(b":")
    return (user, password) if sep else None


def _cost(hashed: bytes) -> int:
    try:
        return max(4, min(31, int(hashed.split(b"$")[2])))
    except (IndexError, ValueError):
        return 10


def _checkpw(password: bytes, hashed: bytes) -> bool:
    try:
        return bcrypt.checkpw(password, hashed)
    except ValueError:  # a malformed hash or an over-long password: a refusal, not a crash
        return False
