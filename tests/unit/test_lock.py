"""requirements.lock: every distribution the image installs, pinned with a hash, and in step
with pyproject.toml (checked offline through the digest the lock records)."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements.lock"
PIN = re.compile(r"^([A-Za-z0-9._-]+)==(\S+) \\\n    --hash=sha256:[0-9a-f]{64}$", re.MULTILINE)


def _lock_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lock", ROOT / "scripts" / "lock.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _pins() -> dict[str, str]:
    return {canonicalize_name(name): version for name, version in PIN.findall(LOCK.read_text())}


def test_lock_matches_pyproject() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "lock.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_every_requirement_line_is_pinned_with_a_hash() -> None:
    body = [line for line in LOCK.read_text().splitlines() if line and not line.startswith("#")]
    assert len(body) == 2 * len(_pins()), "a line of the lock is neither a pin nor its hash"


def test_every_dependency_is_pinned_within_its_specifier() -> None:
    lock = _lock_module()
    pins = _pins()
    for text in lock.dependencies():
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is a dependency but not in requirements.lock"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"{name}=={pins[name]} does not satisfy {requirement.specifier}"
        )


def test_check_notices_a_changed_dependency_list(tmp_path: Path) -> None:
    lock = _lock_module()
    pyproject = tmp_path / "pyproject.toml"
    text = (ROOT / "pyproject.toml").read_text()
    pyproject.write_text(text.replace('"PyYAML>=6",', '"PyYAML>=6",\n  "rich>=13",'))
    recorded = lock.recorded_digest(LOCK.read_text())
    assert recorded == lock.digest(lock.dependencies())
    assert lock.digest(lock.dependencies(pyproject)) != recorded
    # Reordering or reformatting the same list is not a change.
    assert lock.digest(list(reversed(lock.dependencies()))) == recorded
