"""Every publish key kind has exactly one writer: the module `exporter.core.keys.OWNERS` names.

The source is walked (as tests/unit/test_import_graph.py walks imports) for every
`PublishKey(...)` built in the package; a kind built in a second module, or built from a value
that is not a literal (its owner could not be checked), fails here before it reaches a scrape.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from exporter.core.keys import KINDS, OWNERS, PublishKey
from tests.unit.test_import_graph import PACKAGE, module_name


def writers(package: Path = PACKAGE) -> tuple[dict[str, set[str]], list[str]]:
    """Kind -> the modules that build a `PublishKey` of it; and the places whose kind is not a
    string literal."""
    found: dict[str, set[str]] = {}
    unchecked: list[str] = []
    for path in sorted(package.rglob("*.py")):
        module = module_name(path, package)
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if name != "PublishKey":
                continue
            kind = (
                node.args[0]
                if node.args
                else next((k.value for k in node.keywords if k.arg == "kind"), None)
            )
            if isinstance(kind, ast.Constant) and isinstance(kind.value, str):
                found.setdefault(kind.value, set()).add(module)
            else:
                unchecked.append(f"{module}:{node.lineno}")
    return found, unchecked


def ownership_errors(package: Path = PACKAGE) -> list[str]:
    found, unchecked = writers(package)
    errors = [f"{where}: PublishKey kind is not a string literal" for where in unchecked]
    owners: dict[str, str] = {str(kind): module for kind, module in OWNERS.items()}
    for kind in sorted(set(found) | set(owners)):
        modules = found.get(kind, set())
        owner = owners.get(kind)
        if modules != {owner}:
            errors.append(f"{kind!r}: owned by {owner}, written by {sorted(modules)}")
    return errors


def test_every_kind_is_documented_with_one_owner() -> None:
    assert sorted(OWNERS) == sorted(KINDS)
    assert len(KINDS) == len(set(KINDS))


def test_every_kind_is_written_by_its_owner_alone() -> None:
    assert ownership_errors() == []


def _package(tmp_path: Path, modules: dict[str, str]) -> Path:
    package = tmp_path / "exporter"
    for name, text in modules.items():
        path = package / f"{name.replace('.', '/')}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return package


def test_a_second_writer_is_caught(tmp_path: Path) -> None:
    package = _package(
        tmp_path,
        {
            "derivations": 'KEY = PublishKey("fleet", "t")\n',
            "fleet.source": 'hub.publish(keys.PublishKey(kind="fleet", target="t"), [])\n',
        },
    )
    found, _ = writers(package)
    assert found["fleet"] == {"exporter.derivations", "exporter.fleet.source"}
    errors = ownership_errors(package)
    assert (
        "'fleet': owned by exporter.derivations, written by ['exporter.derivations', "
        "'exporter.fleet.source']" in errors
    )


def test_a_kind_built_from_a_variable_cannot_be_checked(tmp_path: Path) -> None:
    package = _package(tmp_path, {"core.scheduler": "kind = 'build'\nKEY = PublishKey(kind)\n"})
    assert "exporter.core.scheduler:2: PublishKey kind is not a string literal" in (
        ownership_errors(package)
    )


def test_an_unknown_kind_is_a_type_error(tmp_path: Path) -> None:
    """mypy --strict, as CI runs it, rejects a kind outside the vocabulary."""
    snippet = tmp_path / "snippet.py"
    snippet.write_text(
        'from exporter.core.keys import PublishKey\n\nPublishKey("fleet", "t")\n'
        'PublishKey("fleets", "t")\n',
        encoding="utf-8",
    )
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(snippet)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=PACKAGE.parent,
    )
    assert result.returncode == 1, result.stdout
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    assert (
        len(errors) == 1
        and "snippet.py:4:" in errors[0]
        and '"fleets"' in errors[0].replace("'", '"')
    ), errors


def test_keys_hash_and_compare_as_tuples() -> None:
    """The exposition hashes keys on every publish: a key is a plain pair underneath."""
    key = PublishKey("probe", "t")
    assert key == ("probe", "t") and hash(key) == hash(("probe", "t"))
    assert PublishKey("build") == ("build", "")
