"""The documentation's promises that code can check: the generated catalogue and alert table are
current, the quick start's two commands exist, the README stays short and links only to files
that exist, and the plain-Prometheus example is a valid configuration."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from exporter.core.catalogue import CATALOGUE
from exporter.docs import ALERTS_BEGIN, ALERTS_END, BEGIN, END, alerts_markdown, metrics_markdown

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"


def _block(path: Path, begin: str, end: str) -> str:
    text = path.read_text()
    return text[text.index(begin) : text.index(end) + len(end)] + "\n"


def test_metric_catalogue_in_docs_is_current() -> None:
    assert _block(DOCS / "metrics.md", BEGIN, END) == metrics_markdown(), (
        "docs/metrics.md is stale: paste the output of `teleport-cloud-exporter docs metrics`"
    )


def test_alert_table_in_runbook_is_current() -> None:
    assert _block(DOCS / "runbook.md", ALERTS_BEGIN, ALERTS_END) == alerts_markdown(), (
        "docs/runbook.md is stale: paste the output of `teleport-cloud-exporter docs alerts`"
    )


def test_alert_table_is_ordered_by_severity_and_links_to_sections() -> None:
    table = alerts_markdown()
    severities = re.findall(r"^\| `(\w+)`", table, re.M)
    order = {"critical": 0, "warning": 1, "info": 2}
    assert severities == sorted(severities, key=order.__getitem__)
    assert "TeleportCloudProbeFailing" in table.split("`warning`")[0]
    runbook = (DOCS / "runbook.md").read_text()
    for anchor in re.findall(r"\]\(#([a-z]+)\)", table):
        assert re.search(rf"^## {anchor}$", runbook, re.M | re.I), anchor


def test_every_family_is_documented_once() -> None:
    generated = metrics_markdown()
    for spec in CATALOGUE:
        name = spec.name + "_total" if spec.kind == "counter" else spec.name
        assert generated.count(f"| `{name}` |") == 1, spec.name


def test_quick_start_has_two_commands_that_exist() -> None:
    text = README.read_text()
    quick = text[text.index("## Quick start") : text.index("## A first hour")]
    commands = re.findall(r"```sh\n(.+?)\n```", quick, re.S)
    assert len(commands) == 2
    assert "serve --demo" in commands[0]
    assert commands[1].strip() == "scripts/test"
    assert (ROOT / "scripts" / "test").stat().st_mode & 0o111
    assert "scripts/test" in (ROOT / ".ci" / "run").read_text()
    # Both in the first screen: within the first 40 lines.
    head = "\n".join(text.splitlines()[:40])
    assert "serve --demo" in head and "scripts/test" in head
    # The demo makes its own certificates with the `demo` extra: the command must install it.
    installed = re.search(r"pip install '?\.(?:\[([a-z,]+)\])?'?", commands[0])
    assert installed is not None, commands[0]
    extras = set((installed.group(1) or "").split(","))
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "demo" in extras, "the quick start must install the demo extra"
    assert any(r.startswith("trustme") for r in declared["optional-dependencies"]["demo"])


def test_readme_is_read_in_ten_minutes() -> None:
    # About 2,000 words at 200 a minute; the references live in docs/.
    assert len(README.read_text().split()) < 2400


@pytest.mark.parametrize("page", [README, *sorted(DOCS.glob("*.md"))], ids=lambda p: p.name)
def test_relative_links_point_at_files_and_sections_that_exist(page: Path) -> None:
    text = page.read_text()
    for target in re.findall(r"\]\(([^)#:]+?)(?:#([^)]*))?\)", text):
        path, anchor = target
        linked = (page.parent / path).resolve()
        assert linked.exists(), f"{page.name} links to missing {path}"
        if anchor and linked.suffix == ".md":
            headings = re.findall(r"^#+ (.+)$", linked.read_text(), re.M)
            slugs = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in headings}
            assert anchor in slugs, f"{page.name} links to missing #{anchor} in {path}"


def test_what_it_looks_at_lists_every_source() -> None:
    from exporter.core.source import Source

    def subclasses(cls: type) -> set[type]:
        found: set[type] = set(cls.__subclasses__())
        return found | {sub for child in found for sub in subclasses(child)}

    import exporter.app  # noqa: F401  (imports every source)

    kinds = {str(vars(cls)["kind"]) for cls in subclasses(Source) if "kind" in vars(cls)}
    assert kinds, "no source found"
    text = README.read_text()
    table = text[text.index("## What it looks at") : text.index("## Command line")]
    listed = set(re.findall(r"^\| `(\w+)` \|", table, re.M))
    assert kinds <= listed, f"missing from the README's table: {sorted(kinds - listed)}"


def test_license_is_the_apache_license() -> None:
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text
    assert 'license = { text = "Apache-2.0" }' in (ROOT / "pyproject.toml").read_text()


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_plain_prometheus_example_is_valid() -> None:
    result = subprocess.run(
        ["promtool", "check", "config", str(ROOT / "prometheus" / "prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "alerts.yml" in result.stdout and "recording.yml" in result.stdout


@pytest.mark.parametrize("what", ["metrics", "alerts"])
def test_docs_command_prints_the_generated_part(what: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "exporter.cli", "docs", what],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    expected = metrics_markdown() if what == "metrics" else alerts_markdown()
    assert result.returncode == 0 and result.stdout == expected
