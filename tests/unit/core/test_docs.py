"""The README's promises that code can check: the metric catalogue and the quick start."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from exporter.core.catalogue import CATALOGUE
from exporter.core.docs import BEGIN, END, metrics_markdown

README = Path(__file__).resolve().parents[3] / "README.md"


def test_metric_catalogue_in_readme_is_current() -> None:
    text = README.read_text()
    section = text[text.index(BEGIN) : text.index(END) + len(END)] + "\n"
    assert section == metrics_markdown(), (
        "README metric catalogue is stale: run `teleport-cloud-exporter docs metrics` and paste it"
    )


def test_every_family_is_documented_once() -> None:
    generated = metrics_markdown()
    for spec in CATALOGUE:
        name = spec.name + "_total" if spec.kind == "counter" else spec.name
        assert generated.count(f"| `{name}` |") == 1, spec.name


def test_quick_start_has_two_commands_that_exist() -> None:
    text = README.read_text()
    quick = text[text.index("## Quick start") : text.index("## What it looks at")]
    commands = re.findall(r"```sh\n(.+?)\n```", quick, re.S)
    assert len(commands) == 2
    assert "serve --demo" in commands[0]
    assert commands[1].strip() == "scripts/test"
    assert (README.parent / "scripts" / "test").stat().st_mode & 0o111
    assert "scripts/test" in (README.parent / ".ci" / "run").read_text()


def test_docs_command_prints_the_catalogue() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "exporter.cli", "docs", "metrics"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0 and result.stdout == metrics_markdown()
