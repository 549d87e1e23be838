"""The image, built from the real Dockerfile with podman and run the way Kubernetes runs it.

The registries that hold `python:*` and Teleport's images are out of reach, so the base images are
stand-ins made from Debian packages (mmdebstrap), selected with the Dockerfile's build arguments:
a Python 3.11 base, and a "Teleport image" holding the project's fake tctl at the path the
Dockerfile copies `tctl` from. The container runs with a read-only root filesystem as 65532,
against the simulated tenant on the host's loopback; it collects the inventory through the
image's own `/usr/local/bin/tctl`, and its SLA ledger on a mounted volume survives `kill -9`.

Slow (about a minute with a warm stand-in rootfs, two without). Skipped when
TCE_SKIP_CONTAINER=1, except in CI (CI=true), where it always runs. TCE_IMAGE_CACHE names a
directory to keep the stand-in rootfs in between runs (.ci/run sets one per CI run).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path

import pytest
import trustme
import yaml

from exporter.simulator.scenarios import SimState
from exporter.simulator.server import SimulatedTenant
from exporter.sla.ledger import DB_NAME, Ledger
from tests.conftest import Samples, parse_samples, value

ROOT = Path(__file__).resolve().parents[2]
IN_CI = os.environ.get("CI") == "true"
UID = 65532
AGENTS = 25
TENANT = "ct"
STATE = "/var/lib/teleport-cloud-exporter"
ETC = "/etc/teleport-cloud-exporter"
MACHINE_ID = "/opt/machine-id"
# The host's CA bundle: package registries are reached through a TLS-inspecting proxy.
HOST_CERTS = Path("/etc/ssl/certs")
PODMAN = ["podman", "--runtime", "runc"]
# This machine's default ulimits are above what an unprivileged runtime may set.
ULIMITS = ["--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096"]
STANDIN_PACKAGES = "python3,python3-venv,python-is-python3,ca-certificates,passwd"
# The stand-in for Teleport's tctl: the project's fake, run by the image's own interpreter. The
# exporter passes tctl an allowlisted environment only, so the stand-in names its scenario itself.
FAKE_TCTL = (
    "#!/bin/sh\n"
    f"FAKE_TCTL_SCENARIO={ETC}/tctl-scenario.json exec /opt/venv/bin/python"
    ' -m exporter.simulator.fake_tctl "$@"\n'
)

pytestmark = [
    pytest.mark.skipif(
        not IN_CI and os.environ.get("TCE_SKIP_CONTAINER") == "1",
        reason="TCE_SKIP_CONTAINER=1 (the container test always runs in CI)",
    ),
    pytest.mark.timeout(1500),
]


def _run(args: list[str], timeout: float = 900, check: bool = True) -> str:
    result = subprocess.run(
        args, capture_output=True, text=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL
    )
    if check and result.returncode != 0:
        pytest.fail(
            f"`{' '.join(args)}` exited {result.returncode}:\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result.stdout


def _require_tools() -> None:
    missing = [t for t in ("podman", "runc", "mmdebstrap") if shutil.which(t) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} missing: `apt-get install -y podman runc mmdebstrap`")
    if os.geteuid() != 0:
        # Rootful podman, as in CI: volume ownership (65532) is set from the host side.
        pytest.fail("the container test runs as root (or set TCE_SKIP_CONTAINER=1)")


def _standin_rootfs(cache: Path) -> Path:
    """A minimal Debian 12 with Python 3.11: what `python:3.11-slim-bookworm` provides."""
    rootfs = cache / "python-standin-rootfs.tar"
    if not rootfs.is_file():
        # Written aside and renamed, so an interrupted run never leaves a half rootfs behind.
        pending = cache / "python-standin-rootfs.part.tar"
        _run(
            [
                "mmdebstrap",
                "--quiet",
                "--format=tar",
                "--variant=minbase",
                f"--include={STANDIN_PACKAGES}",
                "bookworm",
                str(pending),
            ]
        )
        pending.replace(rootfs)
    return rootfs


@dataclass(frozen=True)
class Images:
    python: str
    teleport: str
    exporter: str


def _digest(image: str) -> str:
    digest = _run([*PODMAN, "image", "inspect", "--format", "{{.Digest}}", image]).strip()
    assert digest.startswith("sha256:"), f"{image} has no digest: {digest!r}"
    return digest


def _size(image: str) -> int:
    return int(_run([*PODMAN, "image", "inspect", "--format", "{{.Size}}", image]).strip())


@pytest.fixture(scope="module")
def images(
    tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Iterator[Images]:
    _require_tools()
    cached = os.environ.get("TCE_IMAGE_CACHE")
    cache = Path(cached) if cached else tmp_path_factory.mktemp("image-cache")
    cache.mkdir(parents=True, exist_ok=True)
    tag = uuid.uuid4().hex[:10]
    built = Images(
        python=f"localhost/tce-python-standin:{tag}",
        teleport=f"localhost/tce-teleport-standin:{tag}",
        exporter=f"localhost/teleport-cloud-exporter:test-{tag}",
    )
    try:
        _run([*PODMAN, "import", str(_standin_rootfs(cache)), built.python])
        python_digest = _digest(built.python)
        context = tmp_path_factory.mktemp("teleport-standin")
        (context / "tctl").write_text(FAKE_TCTL)
        (context / "tctl").chmod(0o755)
        (context / "Containerfile").write_text(
            "ARG BASE\nFROM ${BASE}\nCOPY tctl /usr/local/bin/tctl\n"
        )
        base_arg = f"BASE={built.python}"
        _run(
            [
                *PODMAN,
                "build",
                *ULIMITS,
                "--build-arg",
                base_arg,
                "-t",
                built.teleport,
                str(context),
            ]
        )
        name, _, version = built.teleport.rpartition(":")
        # By digest, as the Dockerfile pulls its real bases: the stand-ins' digests are known
        # only now that they are built.
        build_args = {
            "PYTHON_IMAGE": f"{built.python}@{python_digest}",
            "TELEPORT_IMAGE": name,
            "TELEPORT_VERSION": version,
            "TELEPORT_DIGEST": _digest(built.teleport),
        }
        _run(
            [
                *PODMAN,
                "build",
                *ULIMITS,
                "--pull=never",
                "--layers=false",
                "-f",
                str(ROOT / "Dockerfile"),
            ]
            + [arg for key, val in build_args.items() for arg in ("--build-arg", f"{key}={val}")]
            + ["-v", f"{HOST_CERTS}:{HOST_CERTS}:ro", "-t", built.exporter, str(ROOT)]
        )
        base, final = _size(built.python), _size(built.exporter)
        reporter = pytestconfig.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(
                f"\nimage size: {final / 1e6:.0f} MB on the stand-in base ({base / 1e6:.0f} MB):"
                f" the exporter adds {(final - base) / 1e6:.0f} MB"
            )
        yield built
    finally:
        # --layers=false left no intermediate images: these three are all this test made.
        for image in (built.exporter, built.teleport, built.python):
            _run([*PODMAN, "rmi", "--force", image], check=False)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _identity(path: Path) -> float:
    """A Machine ID-like identity file (key, certificate); returns the certificate's notAfter."""
    from datetime import datetime

    not_after = datetime(2031, 5, 17, 12, 0, tzinfo=UTC)
    leaf = trustme.CA().issue_cert("bot-exporter", not_after=not_after)
    path.write_bytes(leaf.private_key_pem.bytes() + leaf.cert_chain_pems[0].bytes())
    path.chmod(0o600)
    return not_after.timestamp()


@dataclass
class Deployment:
    name: str
    port: int
    state: Path
    expiry: float


@pytest.fixture
def deployment(images: Images, tmp_path: Path) -> Iterator[Deployment]:
    (tmp_path / "sim").mkdir()
    sim = SimulatedTenant(SimState(), workdir=tmp_path / "sim").start_in_thread()
    etc, machine_id, state = tmp_path / "etc", tmp_path / "machine-id", tmp_path / "state"
    for directory in (etc, machine_id, state):
        directory.mkdir()
    shutil.copy(sim.ca_file, etc / "simulator-ca.pem")
    expiry = _identity(machine_id / "identity")
    (etc / "tctl-scenario.json").write_text(
        json.dumps(
            {
                "inventory": {"size": AGENTS, "mix": "skewed", "control_plane_major": 18},
                "rollout": {},
                "expect_auth_server": sim.proxy,
                "expect_identity": f"{MACHINE_ID}/identity",
            }
        )
    )
    port = _free_port()
    config = {
        "listen_address": f"127.0.0.1:{port}",
        "state_dir": STATE,
        "status_page": {"url": sim.url, "interval": "5s", "ca_file": f"{ETC}/simulator-ca.pem"},
        "tenants": [
            {
                "proxy": sim.proxy,
                "name": TENANT,
                "ca_file": f"{ETC}/simulator-ca.pem",
                "ping": {"interval": "1s", "timeout": "2s"},
                "inventory": {
                    "tctl": "/usr/local/bin/tctl",
                    "identity_file": f"{MACHINE_ID}/identity",
                    "interval": "5s",
                },
                "rollout": {"interval": "5s"},
            }
        ],
    }
    (etc / "config.yaml").write_text(yaml.safe_dump(config))
    # As tbot and the PersistentVolumeClaim's fsGroup would: the identity and the state
    # directory belong to the container's user.
    for path in (machine_id, machine_id / "identity", state):
        os.chown(path, UID, UID)
    name = f"tce-test-{uuid.uuid4().hex[:8]}"
    _run(
        [
            *PODMAN,
            "run",
            "--detach",
            f"--name={name}",
            "--network=host",
            "--read-only",
            f"--user={UID}:{UID}",
            *ULIMITS,
            f"--volume={etc}:{ETC}:ro",
            f"--volume={machine_id}:{MACHINE_ID}:ro",
            f"--volume={state}:{STATE}",
            images.exporter,
        ]
    )
    try:
        yield Deployment(name=name, port=port, state=state, expiry=expiry)
    finally:
        logs = _run([*PODMAN, "logs", name], check=False)
        _run([*PODMAN, "rm", "--force", "--time", "1", name], check=False)
        sim.stop()
        # Leave the tree removable by pytest whoever runs it.
        for path in (machine_id, machine_id / "identity", state, *state.iterdir()):
            os.chown(path, os.getuid(), os.getgid())
        assert "PRIVATE KEY" not in logs and "CERTIFICATE-----" not in logs, "identity logged"


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _scrape_until(port: int, ready: str, attempts: int = 180) -> Samples:
    """Scrape every half second (at most `attempts` times) until the series `ready` appears."""
    text = ""
    for _ in range(attempts):
        try:
            status, text = _get(port, "/metrics")
        except OSError:
            status = 0
        if status == 200 and any(line.startswith(ready) for line in text.splitlines()):
            return parse_samples(text)
        time.sleep(0.5)
    pytest.fail(f"no {ready} after {attempts} scrapes; last body:\n{text[-2000:]}")


def _ledger_probes(state: Path) -> int:
    ledger = Ledger.open(state, readonly=True)
    try:
        return sum(m.probes for m in ledger.minutes(TENANT, 0, 2**40))
    finally:
        ledger.close()


def test_image_serves_inventory_through_its_own_tctl(deployment: Deployment) -> None:
    samples = _scrape_until(deployment.port, "teleport_cloud_agents_by_skew{")
    assert value(samples, "teleport_cloud_source_up", source="inventory", target=TENANT) == 1
    by_skew = [v for (name, _), v in samples.items() if name == "teleport_cloud_agents_by_skew"]
    assert sum(by_skew) == AGENTS
    assert value(samples, "teleport_cloud_probe_success", tenant=TENANT) == 1
    status, body = _get(deployment.port, "/readyz")
    assert (status, body) == (200, "OK\n")


def test_image_reports_identity_expiry(deployment: Deployment) -> None:
    samples = _scrape_until(deployment.port, "teleport_cloud_identity_expiry_timestamp_seconds")
    assert value(
        samples, "teleport_cloud_identity_expiry_timestamp_seconds", tenant=TENANT
    ) == pytest.approx(deployment.expiry)


def test_ledger_survives_kill_9(deployment: Deployment) -> None:
    _scrape_until(deployment.port, "teleport_cloud_sla_observed_seconds")
    before = 0
    for _ in range(60):  # a few probes committed (the interval is 1 s)
        before = _ledger_probes(deployment.state)
        if before >= 3:
            break
        time.sleep(0.5)
    assert before >= 3, "the exporter committed no probes to the ledger"

    _run([*PODMAN, "kill", "--signal", "KILL", deployment.name])
    _run([*PODMAN, "wait", deployment.name], timeout=60)
    database = deployment.state / DB_NAME
    with sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    after_kill = _ledger_probes(deployment.state)
    assert after_kill >= before, "committed probes were lost"

    # The same volume, a new process: it opens the ledger and goes on counting into it.
    _run([*PODMAN, "start", deployment.name])
    _scrape_until(deployment.port, "teleport_cloud_sla_observed_seconds")
    resumed = after_kill
    for _ in range(60):
        resumed = _ledger_probes(deployment.state)
        if resumed > after_kill:
            break
        time.sleep(0.5)
    assert resumed > after_kill, "the restarted container did not record into the old ledger"


def test_image_carries_no_installer_and_no_demo_dependency(images: Images) -> None:
    """What runs in production can install nothing and holds only runtime dependencies: no pip
    (base or virtualenv, nor the wheels that would reinstall it), no setuptools or wheel, no
    trustme; the demo says which extra it needs."""
    script = (
        "import importlib.util, sys, sysconfig, pathlib\n"
        "found = [m for m in ('pip', 'setuptools', 'wheel', 'trustme') "
        "if importlib.util.find_spec(m)]\n"
        "wheels = [str(p) for p in pathlib.Path('/').glob('usr/**/pip-*.whl')]\n"
        "print(','.join(found + wheels) or 'none')\n"
    )
    for python in ("/opt/venv/bin/python", "python3"):
        run = [*PODMAN, "run", "--rm", "--read-only", *ULIMITS, "--entrypoint", python]
        out = _run([*run, images.exporter, "-c", script])
        assert out.strip() == "none", f"{python}: {out.strip()}"
    demo = subprocess.run(
        [*PODMAN, "run", "--rm", "--read-only", *ULIMITS, images.exporter, "serve", "--demo"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert demo.returncode == 2 and "demo extra" in demo.stderr, demo.stderr[-500:]
