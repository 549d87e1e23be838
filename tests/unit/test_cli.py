"""The command line as a user meets it: help, version, and configuration errors (exit 2)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from exporter import __version__

EXPORTER = [sys.executable, "-m", "exporter.cli"]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*EXPORTER, *args], capture_output=True, text=True, timeout=60, env=env, check=False
    )


def test_version_and_help() -> None:
    version = run("--version")
    assert version.returncode == 0 and __version__ in version.stdout
    help_text = run("serve", "--help").stdout
    for flag in (
        "--config",
        "--demo",
        "--web.listen-address",
        "--web.config.file",
        "--log.level",
        "--log.format",
    ):
        assert flag in help_text
    assert "check" in run("--help").stdout and "simulate" in run("--help").stdout


def _config(tmp_path: Path, text: str) -> Path:
    (tmp_path / "id").mkdir(exist_ok=True)
    path = tmp_path / "config.yaml"
    path.write_text(
        text.replace("IDDIR", str(tmp_path / "id")).replace("STATE", str(tmp_path / "state"))
    )
    return path


BAD_CONFIGS = [
    (
        "tenants:\n  - proxy: a.teleport.sh\n    pnig: {}\n",
        "tenants[0].pnig: unknown key (did you mean 'ping'?)",
    ),
    ("tenants:\n  - proxy: a.teleport.sh\n    flavour: {}\n", "tenants[0].flavour: unknown key\n"),
    (
        "status_page: {ca_file: /nonexistent/ca.pem}\ntenants:\n  - proxy: a.teleport.sh\n",
        "status_page.ca_file: cannot read CA bundle '/nonexistent/ca.pem'",
    ),
    (
        "status_page: {ca_file: IDDIR/../config.yaml}\ntenants:\n  - proxy: a.teleport.sh\n",
        "config.yaml' holds no PEM certificate",
    ),
    ("tenants:\n  - name: nameless\n", "tenants[0].proxy: required key is missing"),
    (
        "tenants:\n  - proxy: a.teleport.sh\n    ping: {interval: soon}\n",
        "tenants[0].ping.interval: invalid duration 'soon'",
    ),
    (
        "tenants:\n  - proxy: a.teleport.sh\n    inventory: {per_agent_metrics: maybe}\n",
        "tenants[0].inventory.per_agent_metrics",
    ),
    ("tenants:\n  - proxy: https://a.teleport.sh/\n", "tenants[0].proxy: expected host[:port]"),
    (
        "tenants:\n  - proxy: a.teleport.sh\n    sla: {objective: 99.9}\n",
        "tenants[0].sla.objective",
    ),
    (
        "tenants:\n  - proxy: a.teleport.sh\n    inventory: "
        "{identity_file: /nonexistent/dir/identity}\n",
        "identity_file: directory '/nonexistent/dir' does not exist",
    ),
    ("status_page: {url: ftp://x}\ntenants:\n  - proxy: a.teleport.sh\n", "status_page.url"),
    (
        "tenants:\n  - proxy: a.teleport.sh\n  - proxy: a.teleport.sh\n",
        "tenant name 'a.teleport.sh' is used twice",
    ),
    ("tenants: [\n", "is not valid YAML"),
    ("listen_address: nowhere\ntenants:\n  - proxy: a.teleport.sh\n", "listen_address"),
]


@pytest.mark.parametrize(("text", "message"), BAD_CONFIGS)
def test_bad_config_names_the_key_and_exits_2(tmp_path: Path, text: str, message: str) -> None:
    if "identity_file" not in text and "tenants:\n" in text:
        text = text.replace(
            "proxy: a.teleport.sh\n",
            "proxy: a.teleport.sh\n    inventory: {identity_file: IDDIR/identity}\n",
        )
    result = run("serve", "--config", str(_config(tmp_path, text)))
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", ["serve", "check"])
@pytest.mark.parametrize("key", ["status_page", "tenants[0]"])
def test_missing_ca_file_is_one_line_and_exit_2(tmp_path: Path, command: str, key: str) -> None:
    status = "{ca_file: /nonexistent/ca.pem}" if key == "status_page" else "{}"
    tenant = "    ca_file: /nonexistent/ca.pem\n" if key != "status_page" else ""
    text = (
        f"state_dir: STATE\nstatus_page: {status}\ntenants:\n  - proxy: a.teleport.sh\n"
        f"{tenant}    inventory: {{identity_file: IDDIR/identity}}\n"
    )
    result = run(command, "--config", str(_config(tmp_path, text)))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"teleport-cloud-exporter: configuration error: {key}.ca_file: cannot read CA bundle "
        "'/nonexistent/ca.pem'"
    ]


def test_missing_config_file(tmp_path: Path) -> None:
    result = run("--config", str(tmp_path / "absent.yaml"))
    assert result.returncode == 2 and "cannot read config file" in result.stderr


def test_no_tenant_at_all_says_how_to_start() -> None:
    result = run("serve")
    assert result.returncode == 2 and "--demo" in result.stderr


def test_environment_overrides_and_is_validated(tmp_path: Path) -> None:
    import os

    config = _config(
        tmp_path,
        "state_dir: STATE\ntenants:\n  - proxy: a.teleport.sh\n    inventory: "
        "{identity_file: IDDIR/identity}\n",
    )
    env = {**os.environ, "TCE_STATUS_PAGE__INTERVAL": "often"}
    result = run("check", "--config", str(config), env=env)
    # The message names the variable the value came from, not only the key it sets.
    assert result.returncode == 2 and (
        "status_page.interval (from TCE_STATUS_PAGE__INTERVAL): invalid duration 'often'"
        in result.stderr
    )


def test_a_value_from_the_file_is_not_blamed_on_the_environment(tmp_path: Path) -> None:
    import os

    config = _config(
        tmp_path,
        "state_dir: STATE\nstatus_page: {interval: often}\ntenants:\n  - proxy: a.teleport.sh\n"
        "    inventory: {identity_file: IDDIR/identity}\n",
    )
    env = {**os.environ, "TCE_STATUS_PAGE__TIMEOUT": "5s"}
    result = run("check", "--config", str(config), env=env)
    assert result.returncode == 2
    assert "status_page.interval: invalid duration 'often'" in result.stderr
    assert "TCE_" not in result.stderr


def test_a_list_from_the_environment_is_named(tmp_path: Path) -> None:
    import os

    env = {**os.environ, "TCE_TENANTS": '[{"proxy": "a.teleport.sh", "ping": {"intervall": 5}}]'}
    result = run("check", env=env)
    assert result.returncode == 2
    assert (
        "tenants[0].ping.intervall (from TCE_TENANTS): unknown key (did you mean 'interval'?)"
        in result.stderr
    )


def test_unwritable_state_dir_stops_the_start(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where a directory should be")
    config = _config(
        tmp_path,
        f"state_dir: {blocker}/state\nlisten_address: 127.0.0.1:0\ntenants:\n  - proxy: "
        f"a.teleport.sh\n    inventory: {{identity_file: IDDIR/identity}}\n",
    )
    result = run("serve", "--config", str(config))
    assert result.returncode == 2 and "state_dir" in result.stderr


def test_busy_port_stops_the_start(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        config = _config(
            tmp_path,
            "state_dir: STATE\ntenants:\n  - proxy: a.teleport.sh\n    inventory: "
            "{identity_file: IDDIR/identity}\n",
        )
        result = run("serve", "--config", str(config), "--web.listen-address", f"127.0.0.1:{port}")
    assert result.returncode == 2 and "listen_address" in result.stderr


HOSTILE_CONFIGS = [
    (b'tenants:\n  - proxy: "a\xff.teleport.sh"\n', {}, "is not UTF-8"),
    (b'state_dir: "/tmp/a\\0b"\n', {}, "state_dir: path contains a NUL byte"),
    (
        b'tenants:\n  - proxy: a.teleport.sh\n    ca_file: "/tmp/a\\0b"\n',
        {},
        "tenants[0].ca_file",
    ),
    (
        b'tenants:\n  - proxy: a.teleport.sh\n    inventory: {identity_file: "/tmp/a\\0b"}\n',
        {},
        "tenants[0].inventory.identity_file: path contains a NUL byte",
    ),
    (b"", {"TCE_TENANTS": "not json"}, "tenants: environment variable TCE_TENANTS"),
    (
        b"",
        {"TCE_STATUS_PAGE__COMPONENTS": "[", "TCE_TENANTS": '[{"proxy": "a.teleport.sh"}]'},
        "status_page.components: environment variable TCE_STATUS_PAGE__COMPONENTS",
    ),
]


@pytest.mark.parametrize(
    ("raw", "env", "message"),
    HOSTILE_CONFIGS,
    ids=["not-utf8", "nul-state-dir", "nul-ca-file", "nul-identity", "env-json", "env-nested"],
)
def test_hostile_config_is_one_line_exit_2(
    tmp_path: Path, raw: bytes, env: dict[str, str], message: str
) -> None:
    import os

    path = tmp_path / "config.yaml"
    tenant = b"tenants:\n  - proxy: a.teleport.sh\n    inventory: {enabled: false}\n"
    path.write_bytes(raw if b"tenants" in raw or env else raw + tenant)
    base = {k: v for k, v in os.environ.items() if not k.startswith("TCE_")}
    result = run("serve", "--config", str(path), env={**base, **env})
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_web_config_not_utf8_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        f"state_dir: {tmp_path}/state\nlisten_address: 127.0.0.1:0\n"
        "tenants:\n  - proxy: a.teleport.sh\n    inventory: {enabled: false}\n"
        "    rollout: {enabled: false}\n"
    )
    web = tmp_path / "web.yaml"
    web.write_bytes(b"basic_auth_users:\n  \xff: x\n")
    result = run("serve", "--config", str(config), "--web.config.file", str(web))
    assert result.returncode == 2 and "web config" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
