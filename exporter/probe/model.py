"""`GET /webapi/ping` (api/client/webclient PingResponse): the fields the exporter reads.

Unknown keys are ignored and every field is optional beyond the version, because older
clusters omit `auto_update`, `edition` and `fips`. Only `server_version` decides whether the
answer is a ping answer at all: a proxy that answers with it is up, whatever shape the other
fields take. `parse_ping` drops an optional field of an unexpected type and reports its path,
so an upstream format change is logged and counted, never recorded as downtime.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError, field_validator

from exporter.vocab import PROBE_PHASES


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    @field_validator("*", mode="after")
    @classmethod
    def _unicode_text(cls, value: Any) -> Any:
        # JSON may spell a lone surrogate ("\ud800"); such a string cannot be written as UTF-8
        # (labels, logs), so the field is refused like one of the wrong type.
        if isinstance(value, str):
            try:
                value.encode()
            except UnicodeEncodeError:
                raise ValueError("not Unicode text (a lone surrogate)") from None
        return value


class AutoUpdate(_Lenient):
    tools_version: str = ""
    tools_auto_update: bool = False
    agent_version: str = ""
    agent_auto_update: bool = False
    agent_update_jitter_seconds: int = 0


class SSHSettings(_Lenient):
    public_addr: str = ""
    ssh_public_addr: str = ""
    ssh_tunnel_public_addr: str = ""
    web_listen_addr: str = ""
    listen_addr: str = ""
    tunnel_listen_addr: str = ""


class KubeSettings(_Lenient):
    enabled: bool = False
    public_addr: str = ""
    listen_addr: str = ""


class DBSettings(_Lenient):
    postgres_public_addr: str = ""
    mysql_public_addr: str = ""
    mongo_public_addr: str = ""


class ProxySettings(_Lenient):
    tls_routing_enabled: bool = False
    ssh: SSHSettings = SSHSettings()
    kube: KubeSettings = KubeSettings()
    db: DBSettings = DBSettings()


class PingInfo(_Lenient):
    server_version: str
    min_client_version: str = ""
    cluster_name: str = ""
    edition: str = ""
    fips: bool = False
    automatic_upgrades: bool = False
    auto_update: AutoUpdate | None = None
    proxy: ProxySettings = ProxySettings()

    def endpoints(self) -> list[tuple[str, str]]:
        """(endpoint, address) for every public address the proxy publishes."""
        ssh, kube, db = self.proxy.ssh, self.proxy.kube, self.proxy.db
        candidates = [
            ("web", ssh.public_addr),
            ("ssh", ssh.ssh_public_addr),
            ("ssh_tunnel", ssh.ssh_tunnel_public_addr),
            ("kube", kube.public_addr if kube.enabled or kube.public_addr else ""),
            ("postgres", db.postgres_public_addr),
            ("mysql", db.mysql_public_addr),
            ("mongo", db.mongo_public_addr),
        ]
        return [(name, address) for name, address in candidates if address]


PING_ADAPTER: TypeAdapter[PingInfo] = TypeAdapter(PingInfo)


MAX_IGNORED_FIELDS = 64
"""Drop at most this many bad fields from one answer; past it the answer is not a ping answer."""


class PingParseError(ValueError):
    """The body is not a ping answer: not JSON, not an object, or no string `server_version`."""


@dataclass(frozen=True)
class ParsedPing:
    ping: PingInfo
    ignored: tuple[str, ...]
    """Dotted paths of optional fields dropped for an unexpected type."""


def parse_ping(body: bytes) -> ParsedPing:
    """A ping answer, best effort beyond `server_version` (see the module's docstring)."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise PingParseError(f"not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise PingParseError(f"expected a JSON object, got {type(document).__name__}")
    version = document.get("server_version")
    if not isinstance(version, str) or not version.strip():
        raise PingParseError("no server_version string in the answer")
    ignored: list[str] = []
    for _ in range(MAX_IGNORED_FIELDS):
        try:
            return ParsedPing(PING_ADAPTER.validate_python(document), tuple(ignored))
        except ValidationError as exc:
            for error in exc.errors():
                path = [part for part in error["loc"] if isinstance(part, str | int)]
                if not path or path == ["server_version"]:
                    raise PingParseError(f"unusable answer: {error['msg']}") from None
                if _drop(document, path):
                    ignored.append(".".join(str(part) for part in path))
    raise PingParseError(f"more than {MAX_IGNORED_FIELDS} fields of an unexpected type")


def _drop(document: dict[str, Any], path: list[str | int]) -> bool:
    """Remove the value at `path` (or its closest existing ancestor below the top level)."""
    node: Any = document
    for depth, part in enumerate(path):
        last = depth == len(path) - 1
        if isinstance(node, dict) and part in node:
            if last or not isinstance(node[part], dict | list):
                del node[part]
                return True
            node = node[part]
        else:
            return False
    return False


@dataclass(frozen=True)
class ProbeFailure:
    """A failed probe as people read it: when, the error reason and what was seen."""

    at: float
    reason: str
    message: str


@dataclass
class ProbeResult:
    """One probe's measurements; what is not reached stays at its default."""

    started_at: float
    success: bool = False
    duration: float = 0.0
    phases: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PROBE_PHASES, 0.0))
    status_code: int = 0
    cert_not_after: float | None = None
    ping: PingInfo | None = None
    recorded: bool = False
    """Set once the result went to the ledger: a probe is evidence for one minute, once."""
