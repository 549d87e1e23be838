"""A fake `tctl` for tests, benchmarks and the demo: the commands the exporter runs, with
generated or recorded output and injectable faults, printed byte for byte as Teleport's tctl
prints them: the inventory with a 2-space indent and a trailing newline (an empty fleet as
`[\n  \n]`), the rollout as protojson re-indented with 4 spaces, `version` as one line.

It insists on being called the way the exporter must call the real one (`--auth-server=...`,
`-i <identity file>`, `--format=json`, `TELEPORT_TOOLS_VERSION=off` in the environment) and
exits 97 with a loud message otherwise, so a test that passes through it proves the invocation.
Like the real tctl it fails when the identity file does not exist.

The scenario is a JSON object in the file named by `FAKE_TCTL_SCENARIO` (re-read on every run,
so a test can change it between refreshes); `FAKE_TCTL_FAULT` overrides its `fault`. Keys:

- `inventory`: keyword arguments of `fleetgen.generate_inventory` (`size`, `mix`, `broken`,
  `seed`, `control_plane_major`) plus `now` (Unix time) to pin timestamps;
  `inventory_file`: print this recorded output verbatim instead.
- `rollout`: keyword arguments of `fleetgen.generate_rollout` (with `now`), or null / absent for a
  tenant without a rollout (NotFound, as the real tctl); each group's counts come from the
  scenario's fleet, as Teleport's come from the agents' reports; `rollout_file`: recorded output;
  `not_found_message`: the NotFound wording to print (they vary with the auth server's cache).
- `tctl_version` (or `FAKE_TCTL_VERSION` in the environment): the version `tctl version` reports
  (default 18.1.4). `version` needs neither `--auth-server` nor an identity, as with the real one.
- `fault`: `hang` (never exits; leaves a helper process in its group too), `access_denied`,
  `expired_cert`, `garbage` (invalid JSON, exit 0), `huge` (`huge_bytes` of output, default
  64 MiB), `not_found`, `fail` (`stderr` and `exit_code`).
  `older_teleport` (an Auth server without the resource: gRPC's unknown method).
  `fault_command`: `inventory`, `rollout`, `agent_report` or `maintenance_config` to fault only
  that command.
- `agent_report`: `{"auth_servers": [[name, age_seconds], ...], "now": ...}`: the Auth servers
  whose `autoupdate_agent_report` (protojson, 4-space indent) `get autoupdate_agent_report`
  prints, computed from the scenario's fleet as Teleport computes them; `[]` without a rollout.
- `maintenance_config`: `{"weekdays": [...], "utc_start_hour": N}` for `get
  cluster_maintenance_config` (gogo JSON, 2-space indent, empty values omitted); NotFound without.
- With a rollout, the fleet's versions follow its group states (`fleetgen.settle_versions`).
- `expect_auth_server`, `expect_identity`: exact values the flags must have.
- `compact`: print JSON without tctl's 2-space indent (faster for huge fleets).
"""

from __future__ import annotations

import json
import os
import shlex
import stat
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from exporter.simulator.fleetgen import (
    generate_agent_reports,
    generate_inventory,
    generate_rollout,
    group_counts,
    settle_versions,
)

SCENARIO_ENV = "FAKE_TCTL_SCENARIO"
FAULT_ENV = "FAKE_TCTL_FAULT"
VERSION_ENV = "FAKE_TCTL_VERSION"
BAD_INVOCATION = 97
NOT_FOUND_MESSAGES = (
    'ERROR: autoupdate_agent_rollout "autoupdate-agent-rollout" doesn\'t exist',
    'ERROR: "autoupdate_agent_rollout" "autoupdate-agent-rollout" does not exist',
    'ERROR: no value for key "autoupdate-agent-rollout" in index name',
)
"""The NotFound wordings Teleport's auth caches have produced for a missing rollout."""
NOT_FOUND_MESSAGE = NOT_FOUND_MESSAGES[0]
DEFAULT_VERSION = "18.1.4"


def _parse_argv(argv: list[str]) -> tuple[dict[str, str], list[str]]:
    """Global flags (both `--flag=value` and `--flag value`) and positional words."""
    flags: dict[str, str] = {}
    words: list[str] = []
    names = {"--auth-server": "auth_server", "-i": "identity", "--identity": "identity"}
    names["--format"] = "format"
    index = 0
    while index < len(argv):
        arg = argv[index]
        name, equals, value = arg.partition("=")
        if name in names:
            if not equals:
                index += 1
                value = argv[index] if index < len(argv) else ""
            flags[names[name]] = value
        else:
            words.append(arg)
        index += 1
    return flags, words


def _fail(message: str, code: int = 1) -> int:
    print(message, file=sys.stderr)
    return code


def _write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def inventory_text(records: list[Any], compact: bool = False) -> str:
    """`tctl inventory ls --format=json`: json-iterator with a 2-space indent, one trailing
    newline; it prints an empty array as `[`, an indented empty line, `]`."""
    if compact:
        return json.dumps(records, separators=(",", ":"), ensure_ascii=False) + "\n"
    if not records:
        return "[\n  \n]\n"
    return json.dumps(records, indent=2, ensure_ascii=False) + "\n"


def rollout_text(resource: dict[str, Any], compact: bool = False) -> str:
    """`tctl get autoupdate_agent_rollout --format=json`: protojson inside an array, re-indented
    by encoding/json with 4 spaces."""
    if compact:
        return json.dumps([resource], separators=(",", ":"), ensure_ascii=False) + "\n"
    return json.dumps([resource], indent=4, ensure_ascii=False) + "\n"


def version_text(version: str) -> str:
    """`tctl version` of an Enterprise build."""
    return f"Teleport Enterprise v{version} git:v{version}-0-g5e2a1c4 go1.24.5\n"


def _now(options: dict[str, Any]) -> datetime | None:
    now = options.pop("now", None)
    return datetime.fromtimestamp(now, UTC) if now is not None else None


def _hang(argv: list[str]) -> int:
    # A helper in our process group with our arguments in its command line: if the exporter
    # killed only its direct child, this one would survive and the test would see it.
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)", *argv])
    time.sleep(3600)
    return 1


def _huge(size: int) -> int:
    chunk = ("[" + " " * 65535).encode()
    out = sys.stdout.buffer
    try:
        written = 0
        while written < size:
            out.write(chunk)
            written += len(chunk)
        out.flush()
    except BrokenPipeError:  # the exporter hung up, as it should
        return 1
    return 0


def _fault(fault: str, command: str, argv: list[str], scenario: dict[str, Any]) -> int:
    action, resource = {
        "inventory": ("list", "instance"),
        "agent_report": ("list", "autoupdate_agent_report"),
        "maintenance_config": ("read", "cluster_maintenance_config"),
    }.get(command, ("read", "autoupdate_agent_rollout"))
    if fault == "older_teleport":  # an Auth server that predates the resource
        return _fail(
            f"ERROR: unknown method List{resource.title().replace('_', '')}s for service "
            "teleport.autoupdate.v1.AutoUpdateService"
        )
    if fault == "hang":
        return _hang(argv)
    if fault == "access_denied":
        return _fail(f'ERROR: access denied to perform action "{action}" on "{resource}"')
    if fault == "expired_cert":
        return _fail("ERROR: remote error: tls: expired certificate")
    if fault == "garbage":
        _write('[{"kind": "instance", "metadata": {"name": "x"  <<< not json\n')
        return 0
    if fault == "huge":
        return _huge(int(scenario.get("huge_bytes", 64 * 1024 * 1024)))
    if fault == "not_found":
        return _fail(str(scenario.get("not_found_message", NOT_FOUND_MESSAGE)))
    if fault == "fail":
        message = str(scenario.get("stderr", "ERROR: simulated failure"))
        return _fail(message, int(scenario.get("exit_code", 1)))
    return _fail(f"fake tctl: unknown fault {fault!r}", BAD_INVOCATION)


def _invocation_problems(
    flags: dict[str, str], env: dict[str, str], scenario: dict[str, Any]
) -> list[str]:
    problems = []
    if env.get("TELEPORT_TOOLS_VERSION") != "off":
        problems.append("TELEPORT_TOOLS_VERSION=off is not set in the environment")
    if not flags.get("auth_server"):
        problems.append("--auth-server is missing")
    elif (
        "expect_auth_server" in scenario and flags["auth_server"] != scenario["expect_auth_server"]
    ):
        problems.append(
            f"--auth-server={flags['auth_server']}, expected {scenario['expect_auth_server']}"
        )
    if not flags.get("identity"):
        problems.append("-i <identity file> is missing")
    elif "expect_identity" in scenario and flags["identity"] != scenario["expect_identity"]:
        problems.append(f"-i {flags['identity']}, expected {scenario['expect_identity']}")
    if flags.get("format") != "json":
        problems.append("--format=json is missing")
    return problems


def run(argv: list[str], env: dict[str, str]) -> int:
    scenario_path = env.get(SCENARIO_ENV)
    scenario: dict[str, Any] = {}
    if scenario_path:
        scenario = json.loads(Path(scenario_path).read_text())
    flags, words = _parse_argv(argv)
    if words == ["version"]:
        if env.get("TELEPORT_TOOLS_VERSION") != "off":
            return _fail(
                "fake tctl: called wrongly: TELEPORT_TOOLS_VERSION=off is not set", BAD_INVOCATION
            )
        _write(version_text(env.get(VERSION_ENV) or scenario.get("tctl_version", DEFAULT_VERSION)))
        return 0
    problems = _invocation_problems(flags, env, scenario)
    if problems:
        return _fail("fake tctl: called wrongly: " + "; ".join(problems), BAD_INVOCATION)
    if words == ["inventory", "ls"]:
        command = "inventory"
    elif words == ["get", "autoupdate_agent_rollout"]:
        command = "rollout"
    elif words == ["get", "autoupdate_agent_report"]:
        command = "agent_report"
    elif words == ["get", "cluster_maintenance_config"]:
        command = "maintenance_config"
    else:
        return _fail(f"fake tctl: unsupported command {' '.join(words)!r}", BAD_INVOCATION)

    identity = flags["identity"]
    if not Path(identity).is_file():
        return _fail(f"ERROR: open {identity}: no such file or directory")

    fault = env.get(FAULT_ENV) or scenario.get("fault")
    target = scenario.get("fault_command")
    if fault and target in (None, command):
        return _fault(str(fault), command, argv, scenario)

    if command == "inventory":
        if "inventory_file" in scenario:
            _write(Path(scenario["inventory_file"]).read_text())
            return 0
        _write(inventory_text(_fleet(scenario), bool(scenario.get("compact"))))
        return 0
    if command == "agent_report":
        return _agent_report(scenario)
    if command == "maintenance_config":
        return _maintenance_config(scenario)

    if "rollout_file" in scenario:
        _write(Path(scenario["rollout_file"]).read_text())
        return 0
    rollout = scenario.get("rollout")
    if rollout is None:
        return _fail(str(scenario.get("not_found_message", NOT_FOUND_MESSAGE)))
    options = dict(rollout)
    now = _now(options)
    resource = generate_rollout(now=now, **options)
    if "inventory_file" not in scenario and "counts" not in options:
        # Teleport counts each group's agents from their own reports: the same fleet.
        names = [group["name"] for group in resource["status"].get("groups", [])]
        counts = group_counts(
            _fleet(scenario),
            resource["spec"]["target_version"],
            names,
            resource["spec"]["strategy"],
        )
        resource = generate_rollout(now=now, counts=counts, **options)
    _write(rollout_text(resource, bool(scenario.get("compact"))))
    return 0


def _rollout_resource(scenario: dict[str, Any]) -> dict[str, Any] | None:
    rollout = scenario.get("rollout")
    if rollout is None:
        return None
    options = dict(rollout)
    return generate_rollout(now=_now(options), **options)


def _fleet(scenario: dict[str, Any]) -> list[Any]:
    """The scenario's fleet; with a rollout, versions follow its group states (an unstarted
    group holds no agent on the target)."""
    options = dict(scenario.get("inventory") or {"size": 20})
    records = generate_inventory(now=_now(options), **options)
    rollout = _rollout_resource(scenario)
    return settle_versions(records, rollout) if rollout is not None else records


def _agent_report(scenario: dict[str, Any]) -> int:
    """`tctl get autoupdate_agent_report`: Auth servers write reports only while a rollout
    exists. `agent_report.auth_servers`: [[name, age in seconds], ...] (one fresh by default)."""
    if scenario.get("rollout") is None or "inventory_file" in scenario:
        _write("[]\n")
        return 0
    options = dict(scenario.get("agent_report") or {})
    servers = [tuple(server) for server in options.get("auth_servers", [["auth-0", 10.0]])]
    now = _now(options) or _now(dict(scenario.get("inventory") or {}))
    reports = generate_agent_reports(_fleet(scenario), servers, now)
    _write(json.dumps(reports, indent=4, ensure_ascii=False) + "\n")
    return 0


def _maintenance_config(scenario: dict[str, Any]) -> int:
    """`tctl get cluster_maintenance_config`: gogo JSON of ClusterMaintenanceConfigV1 (2-space
    indent, empty values omitted); NotFound when the scenario sets no `maintenance_config`
    (`{"weekdays": [...], "utc_start_hour": N}`)."""
    window = scenario.get("maintenance_config")
    if window is None:
        return _fail('ERROR: cluster_maintenance_config "cluster-maintenance-config" not found')
    upgrades: dict[str, Any] = {}
    if window.get("utc_start_hour"):
        upgrades["utc_start_hour"] = window["utc_start_hour"]
    if window.get("weekdays"):
        upgrades["weekdays"] = list(window["weekdays"])
    resource = {
        "kind": "cluster_maintenance_config",
        "version": "v1",
        "metadata": {"name": "cluster-maintenance-config", "revision": "3c1f0a52-b0e4"},
        "spec": {"agent_upgrades": upgrades} if upgrades else {},
        "nonce": 2,
    }
    _write(json.dumps([resource], indent=2) + "\n")
    return 0


def main() -> None:
    sys.exit(run(sys.argv[1:], dict(os.environ)))


def write_fake_tctl(directory: Path, scenario: dict[str, Any]) -> Path:
    """Write an executable `tctl` shell script running this module with `scenario` (saved as
    JSON next to it) into `directory`, and return its path. Calling it again with the same
    directory replaces the scenario; the script itself stays the same."""
    directory.mkdir(parents=True, exist_ok=True)
    scenario_file = directory / "tctl-scenario.json"
    # Atomic, so a fake tctl starting meanwhile reads the old scenario or the new, never half.
    pending = directory / ".tctl-scenario.json.tmp"
    pending.write_text(json.dumps(scenario))
    pending.replace(scenario_file)
    # The checkout this module lives in, so the script works with or without an installed
    # package (and never picks up another checkout's code).
    root = Path(__file__).resolve().parents[2]
    script = directory / "tctl"
    body = (
        "#!/bin/sh\n"
        f"{SCENARIO_ENV}={shlex.quote(str(scenario_file))}\n"
        f'PYTHONPATH={shlex.quote(str(root))}"${{PYTHONPATH:+:$PYTHONPATH}}"\n'
        f"export {SCENARIO_ENV} PYTHONPATH\n"
        f'exec {shlex.quote(sys.executable)} -m exporter.simulator.fake_tctl "$@"\n'
    )
    if not script.exists() or script.read_text() != body:
        temporary = directory / ".tctl.tmp"
        temporary.write_text(body)
        temporary.chmod(temporary.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        temporary.replace(script)
    return script


if __name__ == "__main__":
    main()
