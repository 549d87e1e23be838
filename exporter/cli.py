"""Command line: serve (default), check, simulate, sla report, docs.

Exit codes: 0 fine, 1 findings (check), 2 configuration or collection problem.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from exporter import __version__
from exporter.config import DEFAULT_LISTEN_ADDRESS, ConfigError, Settings, load_config
from exporter.core.logs import LEVELS, setup_logging

log = logging.getLogger("exporter")

COMMANDS = ("serve", "check", "simulate", "sla", "docs", "mixin")
EXIT_OK, EXIT_FINDINGS, EXIT_CONFIG = 0, 1, 2

DESCRIPTION = """\
Prometheus exporter for Teleport Enterprise Cloud tenants: agent version skew against the
control plane, automatic-update enrolment, Managed Updates v2 rollouts, the proxy's
reachability and latency (/webapi/ping), the vendor status page, and the monthly SLA budget.

Try it without any tenant:   teleport-cloud-exporter serve --demo
"""

EPILOG = """\
Every configuration key can also be set from the environment with the TCE_ prefix and __ for
nesting, e.g. TCE_STATUS_PAGE__INTERVAL=2m or TCE_TENANTS='[{"proxy": "x.teleport.sh"}]'.
Flags win over the environment, which wins over the file.
"""


DEMO_WITH_CONFIG = (
    "--config: --demo builds its own configuration for the simulated tenant; to run your "
    "configuration against the simulator, start `teleport-cloud-exporter simulate --workdir DIR` "
    "and edit the DIR/config.yaml it writes"
)


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, metavar="FILE", help="YAML configuration file")
    parser.add_argument(
        "--log.level", dest="log_level", choices=LEVELS, default="info", help="log level (info)"
    )
    parser.add_argument(
        "--log.format",
        dest="log_format",
        choices=("logfmt", "json"),
        default="logfmt",
        help="log line format (logfmt)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="teleport-cloud-exporter",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version", action="version", version=f"teleport-cloud-exporter {__version__}"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="run the exporter (the default command)",
        description="Run the exporter: refresh every source in the background and serve /metrics.",
    )
    _add_common(serve)
    serve.add_argument(
        "--demo",
        action="store_true",
        help="watch a built-in simulated tenant (no configuration, no network); honours "
        "--web.listen-address and --web.config.file, refuses --config",
    )
    serve.add_argument(
        "--version", action="version", version=f"teleport-cloud-exporter {__version__}"
    )
    serve.add_argument(
        "--web.listen-address",
        dest="listen_address",
        metavar="ADDR",
        help=f"address to serve on (config listen_address, default {DEFAULT_LISTEN_ADDRESS})",
    )
    serve.add_argument(
        "--web.config.file",
        dest="web_config",
        type=Path,
        metavar="FILE",
        help="exporter-toolkit web configuration: TLS, mutual TLS, basic auth (bcrypt)",
    )

    check = commands.add_parser(
        "check",
        help="collect once and print a report (exit 0 healthy, 1 findings, 2 could not collect)",
        description="Collect every source once and print a readable report: control-plane "
        "version, agents per skew class, agents blocking the next upgrade, upgrader enrolment, "
        "rollout groups, status page and SLA month to date. Exit code 0 healthy, 1 findings, "
        "2 could not collect. Suitable for cron and CI.",
    )
    _add_common(check)
    check.add_argument("--demo", action="store_true", help="check the built-in simulated tenant")

    simulate = commands.add_parser(
        "simulate",
        help="serve the simulated tenant alone (dashboard and alert work)",
        description="Serve the simulated tenant (ping, version channel, status page over HTTPS "
        "with its own CA) and write a fake tctl; prints the configuration to point an exporter "
        "at it.",
    )
    simulate.add_argument(
        "--listen", default="127.0.0.1:0", metavar="ADDR", help="address (127.0.0.1:0)"
    )
    simulate.add_argument(
        "--scenario",
        default="demo",
        help="healthy, skewed, outage, maintenance or demo; switchable later through "
        "/_sim/state (demo)",
    )
    simulate.add_argument(
        "--agents", type=int, default=250, help="fleet size printed by the fake tctl"
    )
    simulate.add_argument(
        "--workdir",
        type=Path,
        help="where to write the CA, fake tctl and config, kept after exit (default: a "
        "temporary directory, removed on exit)",
    )

    sla = commands.add_parser("sla", help="SLA evidence from the ledger")
    sla_commands = sla.add_subparsers(dest="sla_command", metavar="SUBCOMMAND", required=True)
    report = sla_commands.add_parser(
        "report",
        help="a month's downtime, budget and down intervals",
        description="Print a month's objective, budget, downtime, maintenance, observed coverage, "
        "uptime and the list of down intervals, from the ledger under state_dir.",
    )
    _add_common(report)
    report.add_argument(
        "--demo", action="store_true", help="report a simulated month of the demo tenant"
    )
    report.add_argument("--month", metavar="YYYY-MM", help="the month (default: the current one)")
    report.add_argument("--format", choices=("text", "json"), default="text")
    report.add_argument(
        "--ledger",
        action="append",
        type=Path,
        default=[],
        metavar="DIR",
        help="a replica's state directory (or ledger file) instead of state_dir; repeat to merge "
        "replicas: a minute is down only when every replica that observed it saw it down",
    )

    docs = commands.add_parser(
        "docs", help="print a generated page part: the metric catalogue or the alerts by severity"
    )
    docs.add_argument("what", choices=("metrics", "alerts"))

    mixin = commands.add_parser(
        "mixin",
        help="render the rules, dashboards and Kubernetes objects from a mixin configuration",
        description="Render prometheus/alerts.yml, prometheus/recording.yml, "
        "grafana/dashboards/*.json (with the mixin extra) and the Kubernetes objects that carry "
        "them (k8s/base/prometheusrule.yaml, k8s/base/dashboards.yaml) under DIR, from the "
        "defaults overridden by FILE (job selector, cluster label, runbook URL, severities, "
        "thresholds).",
    )
    mixin.add_argument("--config", type=Path, metavar="FILE", help="overrides of the defaults")
    mixin.add_argument("--out", type=Path, metavar="DIR", default=Path("."), help="(.)")
    mixin.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if a file under DIR differs"
    )
    return parser


def _normalise_argv(argv: list[str]) -> list[str]:
    """`teleport-cloud-exporter --config x` means `serve --config x`."""
    if not argv or (argv[0] not in COMMANDS and argv[0] not in ("-h", "--help", "--version")):
        return ["serve", *argv]
    return argv


def _load(args: argparse.Namespace, **overrides: Any) -> Settings:
    settings = load_config(args.config, **overrides)
    if not settings.tenants:
        raise ConfigError("tenants: no tenant configured (pass --config FILE, or --demo to try it)")
    return settings


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(_normalise_argv(list(sys.argv[1:] if argv is None else argv)))
    if args.command == "docs":
        from exporter.docs import alerts_markdown, metrics_markdown

        sys.stdout.write(metrics_markdown() if args.what == "metrics" else alerts_markdown())
        return EXIT_OK
    if args.command == "mixin":
        from exporter.mixin.generate import main_mixin

        return main_mixin(args.config, args.out, check=args.check)
    if args.command == "simulate":
        setup_logging()
        from exporter.simulator.demo import run_simulator
        from exporter.simulator.scenarios import SCENARIOS

        if args.scenario not in SCENARIOS:
            parser.error(
                f"simulate --scenario: unknown scenario {args.scenario!r} "
                f"(choose from {', '.join(SCENARIOS)})"
            )

        return run_simulator(args.listen, args.scenario, args.agents, args.workdir)
    setup_logging(args.log_level, args.log_format)
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "check":
            if args.demo:
                if args.config:
                    raise ConfigError(DEMO_WITH_CONFIG)
                from exporter.simulator.demo import demo_check

                return demo_check()
            settings = _load(args)
            from exporter.check.collect import run_check

            return run_check(settings)
        if args.demo:
            if args.config or args.ledger:
                raise ConfigError(
                    "--demo reports a simulated ledger: leave out --config and --ledger"
                )
            from exporter.simulator.demo import demo_sla_report

            return demo_sla_report(args.month, args.format, sys.stdout)
        from exporter.sla.report import main_report

        configured = _load(args) if args.config or not args.ledger else None
        return main_report(configured, args.month, args.format, sys.stdout, ledgers=args.ledger)
    except ConfigError as exc:
        # One line, whatever the cause's text holds (YAML errors span lines).
        message = " ".join(str(exc).split())
        print(f"teleport-cloud-exporter: configuration error: {message}", file=sys.stderr)
        return EXIT_CONFIG


def _serve(args: argparse.Namespace) -> int:
    from exporter.app import serve
    from exporter.web.config import load_web_config

    if args.demo:
        if args.config:
            raise ConfigError(DEMO_WITH_CONFIG)
        try:
            from exporter.simulator.demo import run_demo
        except ModuleNotFoundError as exc:  # trustme: an extra, left out of the served image
            raise ConfigError(
                f"--demo needs the demo extra ({exc.name} is missing): "
                "pip install 'teleport-cloud-exporter[demo]'"
            ) from None

        return run_demo(args.listen_address or DEFAULT_LISTEN_ADDRESS, args.web_config)
    settings = _load(args, listen_address=args.listen_address)
    web = load_web_config(args.web_config) if args.web_config else None
    return serve(settings, web)


if __name__ == "__main__":
    sys.exit(main())
