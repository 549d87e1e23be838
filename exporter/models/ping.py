"""`GET /webapi/ping` (api/client/webclient PingResponse): the fields the exporter reads.

Unknown keys are ignored and every field is optional beyond the version, because older
clusters omit `auto_update`, `edition` and `fips`.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, TypeAdapter


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


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
