"""The mixin renders from an installed package, not only from a checkout: the files a wheel
holds (every package's modules plus the package data pyproject.toml declares), copied alone to
a directory outside the checkout, render the committed rules, dashboards and Kubernetes objects
byte for byte."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
OUTPUTS = (
    "prometheus/alerts.yml",
    "prometheus/recording.yml",
    "grafana/dashboards/teleport-cloud-fleet.json",
    "grafana/dashboards/teleport-cloud-overview.json",
    "k8s/base/prometheusrule.yaml",
    "k8s/base/dashboards.yaml",
)


def _install_like_a_wheel(site: Path) -> None:
    """Packages as setuptools finds them (a directory with __init__.py), their modules, and
    the declared package data: nothing else of the checkout."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    data: dict[str, list[str]] = setuptools["package-data"]
    for init in (ROOT / "exporter").rglob("__init__.py"):
        package = init.parent
        name = ".".join(package.relative_to(ROOT).parts)
        target = site / package.relative_to(ROOT)
        target.mkdir(parents=True, exist_ok=True)
        for module in package.glob("*.py"):
            shutil.copy2(module, target / module.name)
        for pattern in data.get(name, []):
            for item in package.glob(pattern):
                shutil.copy2(item, target / item.name)


def test_the_mixin_renders_every_output_from_an_installed_package(tmp_path: Path) -> None:
    site, out = tmp_path / "site", tmp_path / "out"
    _install_like_a_wheel(site)
    # -I: no PYTHONPATH, no user site; the copy comes first on the path (the project's own
    # editable install stays importable, so the copy must be the one imported: asserted).
    result = subprocess.run(
        [sys.executable, "-I", "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
         "import exporter; assert exporter.__file__.startswith(sys.argv[1]), exporter.__file__; "
         "from exporter.cli import main; sys.exit(main(['mixin', '--out', sys.argv[2]]))",
         str(site), str(out)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "skipped" not in result.stderr
    for relative in OUTPUTS:
        rendered = (out / relative).read_text(encoding="utf-8")
        assert rendered == (ROOT / relative).read_text(encoding="utf-8"), relative
