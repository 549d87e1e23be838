"""Who may reach the exporter in the shipped Kubernetes deployment: the rendered NetworkPolicy
of the example overlay, evaluated for a few would-be readers of the fleet's metrics."""

from __future__ import annotations

from typing import Any

from tests.hostile.catalogue import case
from tests.hostile.env import Env

Peer = tuple[str, dict[str, str]]
"""A client pod: its namespace and its labels."""


def _matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    assert set(selector) <= {"matchLabels"}, f"only matchLabels is evaluated here: {selector}"
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def _admitted(policy: dict[str, Any], own_namespace: str, peer: Peer, port: int) -> bool:
    """NetworkPolicy ingress semantics for pod peers: some rule lists the port and some `from`
    entry matches (namespaceSelector and podSelector in one entry must both match; a
    podSelector alone means the policy's own namespace)."""
    namespace, labels = peer
    namespace_labels = {"kubernetes.io/metadata.name": namespace}
    for rule in policy["spec"].get("ingress", []):
        if not any(p["port"] == port for p in rule.get("ports", [])):
            continue
        peers = rule.get("from")
        if not peers:
            return True  # no `from`: every source
        for entry in peers:
            by_namespace = entry.get("namespaceSelector")
            by_pod = entry.get("podSelector")
            if by_namespace is None and namespace != own_namespace:
                continue
            if by_namespace is not None and not _matches(by_namespace, namespace_labels):
                continue
            if by_pod is None or _matches(by_pod, labels):
                return True
    return False


@case(
    "k8s-metrics-readable-only-by-prometheus",
    "deployment",
    "prometheus=in,in grafana=out,out app_pod=out,out same_namespace=out,out "
    "prometheus_elsewhere=out,out",
)
def _network_policy(env: Env) -> str:
    from tests.integration.mixin.test_k8s import _one, _render

    docs = _render("overlays/example")
    policy = _one(docs, "NetworkPolicy")
    own = policy["metadata"]["namespace"]
    peers: dict[str, Peer] = {
        "prometheus": ("monitoring", {"app.kubernetes.io/name": "prometheus"}),
        "grafana": ("monitoring", {"app.kubernetes.io/name": "grafana"}),
        "app_pod": ("default", {"app": "shop"}),
        "same_namespace": (own, {"app": "debug"}),
        "prometheus_elsewhere": ("default", {"app.kubernetes.io/name": "prometheus"}),
    }
    verdicts = []
    for name, peer in peers.items():
        ports = [_admitted(policy, own, peer, port) for port in (10437, 3001)]
        verdicts.append(f"{name}=" + ",".join("in" if p else "out" for p in ports))
    return " ".join(verdicts)
