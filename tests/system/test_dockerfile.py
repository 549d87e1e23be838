"""The container recipe: lint-clean, pinned, non-root, and what it installs actually runs.

No container engine is needed: hadolint lints the Dockerfile, a small parser checks its
instructions, and the image's install step (build the wheel, install it into a fresh virtualenv,
run the console script) is replayed in a temporary directory.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import dev_tool

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
PORT = 10437
UID = 65532
# What the build stage copies from the build context (kept in step with the Dockerfile).
BUILD_INPUTS = (
    "requirements.lock",
    "requirements-build.lock",
    "pyproject.toml",
    "README.md",
    "exporter",
)


@dataclass
class Stage:
    image: str
    alias: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Recipe:
    global_args: dict[str, str]
    stages: list[Stage]

    @property
    def final(self) -> Stage:
        return self.stages[-1]

    def resolve(self, text: str) -> str:
        def value(match: re.Match[str]) -> str:
            name = match.group(1) or match.group(2)
            assert name in self.global_args, f"ARG {name} has no default"
            return self.global_args[name]

        return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, text)


def _logical_lines(text: str) -> list[str]:
    lines: list[str] = []
    current = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") and not current:
            continue
        if stripped.startswith("#"):
            continue  # comment lines inside a continued instruction
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        if current.strip():
            lines.append(current.strip())
        current = ""
    if current.strip():
        lines.append(current.strip())
    return lines


def _parse() -> Recipe:
    recipe = Recipe(global_args={}, stages=[])
    for line in _logical_lines(DOCKERFILE.read_text()):
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        rest = rest.strip()
        if keyword == "FROM":
            words = [w for w in rest.split() if not w.startswith("--")]
            alias = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            recipe.stages.append(Stage(image=words[0], alias=alias))
        elif keyword == "ARG" and not recipe.stages:
            name, _, default = rest.partition("=")
            recipe.global_args[name] = default.strip("\"'")
        elif recipe.stages:
            recipe.final.instructions.append((keyword, rest))
    assert recipe.stages, "Dockerfile has no FROM"
    return recipe


def _instructions(stage: Stage, keyword: str) -> list[str]:
    return [rest for key, rest in stage.instructions if key == keyword]


def _project_version() -> str:
    text = (ROOT / "exporter" / "__init__.py").read_text()
    match = re.search(r"""^__version__\s*=\s*["']([^"']+)["']""", text, re.MULTILINE)
    assert match, "exporter/__init__.py has no __version__"
    return match.group(1)


# --- lint and structure --------------------------------------------------------------------------


def test_hadolint_has_no_findings() -> None:
    result = subprocess.run(
        [dev_tool("hadolint"), "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_base_images_are_pinned_by_digest() -> None:
    """A tag can be re-pointed, a digest cannot: every base is pulled by digest. Teleport's
    digest has no usable default, so a build that does not give one stops at its FROM."""
    recipe = _parse()
    aliases = {stage.alias for stage in recipe.stages if stage.alias}
    digest = r"@sha256:[0-9a-f]{64}"
    bases = [stage.image for stage in recipe.stages if stage.image not in aliases]
    python = recipe.resolve(bases[0])
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm" + digest, python), python
    assert bases[-1] == bases[0], "build and runtime share one Python base"
    (teleport,) = [b for b in bases if "TELEPORT_IMAGE" in b]
    assert teleport == "${TELEPORT_IMAGE}:${TELEPORT_VERSION}@${TELEPORT_DIGEST}"
    assert recipe.global_args["TELEPORT_IMAGE"] == (
        "public.ecr.aws/gravitational/teleport-ent-distroless"
    )
    assert re.fullmatch(r"\d+\.\d+\.\d+", recipe.global_args["TELEPORT_VERSION"])
    assert not re.fullmatch(digest[1:], recipe.global_args["TELEPORT_DIGEST"]), (
        "no made-up default digest: the builder gives Teleport's"
    )


def test_every_base_image_is_a_build_argument() -> None:
    """Mirrors and the container test's stand-ins replace every base image with --build-arg."""
    recipe = _parse()
    aliases = {stage.alias for stage in recipe.stages if stage.alias}
    for stage in recipe.stages:
        if stage.image in aliases:
            continue
        names = re.findall(r"\$\{(\w+)\}", stage.image)
        assert names and re.fullmatch(r"(\$\{\w+\}[:@]?)+", stage.image), (
            f"FROM {stage.image}: the image must come from build arguments"
        )
        assert all(name in recipe.global_args for name in names)
    assert "TELEPORT_IMAGE" in recipe.global_args


def test_dependencies_are_installed_from_the_lock_with_hashes() -> None:
    build = _parse().stages[0]
    runs = " ".join(_instructions(build, "RUN"))
    assert "--require-hashes" in runs and "-r requirements.lock" in runs
    # The build backend is hash-checked too, and the wheel is built with it, not with whatever
    # an isolated build would download.
    assert "--require-hashes --only-binary=:all: -r requirements-build.lock" in runs
    assert "--no-build-isolation" in runs
    # The served virtualenv has no pip of its own.
    assert "python -m venv --without-pip /opt/venv" in runs
    # The project's wheel brings no dependency of its own past the lock.
    assert "--no-deps --no-index" in runs
    final = _parse().final
    assert any(c == "--from=build /opt/venv /opt/venv" for c in _instructions(final, "COPY"))


def test_runs_as_non_root_and_exposes_the_port() -> None:
    final = _parse().final
    users = _instructions(final, "USER")
    assert users, "the final stage sets no USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    assert user == str(UID)
    exposed = " ".join(_instructions(final, "EXPOSE")).split()
    assert str(PORT) in exposed or f"{PORT}/tcp" in exposed


def test_entrypoint_command_environment_and_labels() -> None:
    recipe = _parse()
    final = recipe.final
    # tini first: it reaps the orphans of tctl process groups killed on timeout
    assert _instructions(final, "ENTRYPOINT") == [
        '["/usr/bin/tini", "--", "teleport-cloud-exporter"]'
    ]
    assert _instructions(final, "CMD") == [
        '["serve", "--config", "/etc/teleport-cloud-exporter/config.yaml"]'
    ]
    env = " ".join(_instructions(final, "ENV"))
    assert "TELEPORT_TOOLS_VERSION=off" in env
    assert "PYTHONUNBUFFERED=1" in env
    assert "/opt/venv/bin" in env
    copies = _instructions(final, "COPY")
    assert any(c.startswith("--from=") and c.endswith(" /usr/local/bin/tctl") for c in copies)

    labels = dict(
        item.split("=", 1) for rest in _instructions(final, "LABEL") for item in shlex.split(rest)
    )
    for key in ("title", "description", "source", "licenses", "version"):
        assert f"org.opencontainers.image.{key}" in labels, key
    assert labels["org.opencontainers.image.licenses"] == "Apache-2.0"
    args = dict(rest.split("=", 1) for rest in _instructions(final, "ARG") if "=" in rest)
    assert labels["org.opencontainers.image.version"] == "${VERSION}"
    assert args["VERSION"] == _project_version(), "bump ARG VERSION with the project"


def test_build_context_holds_what_the_build_copies() -> None:
    patterns = [
        line.strip().lstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for name in (".venv", ".git"):
        assert name in patterns, f".dockerignore should exclude {name}"
    build = _parse().stages[0]
    copied = [
        word
        for rest in _instructions(build, "COPY")
        for word in rest.split()[:-1]
        if not word.startswith("--")
    ]
    assert sorted(copied) == sorted(BUILD_INPUTS)
    for name in BUILD_INPUTS:
        assert (ROOT / name).exists(), f"the image build copies {name}, which does not exist"
        excluded = [p for p in patterns if fnmatch.fnmatch(name, p)]
        assert not excluded, f".dockerignore excludes {name} ({excluded})"


# --- the install step, replayed ------------------------------------------------------------------


def _run(args: list[str | Path], cwd: Path, env: dict[str, str]) -> str:
    result = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, (
        f"`{' '.join(str(a) for a in args)}` exited {result.returncode}:\n"
        f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    return result.stdout + result.stderr


@pytest.mark.timeout(900)
def test_wheel_installs_into_a_clean_venv_and_runs(tmp_path: Path) -> None:
    """What the image does: the locked dependencies, then the wheel, into a fresh venv; run it.

    Slow (a minute or two: it downloads the dependencies from PyPI) but part of the default run.
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME") and not key.startswith("TCE_")
    }
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["TELEPORT_TOOLS_VERSION"] = "off"

    # The build context, as the Dockerfile copies it (nothing else of the tree).
    source = tmp_path / "src"
    source.mkdir()
    for name in BUILD_INPUTS:
        path = ROOT / name
        assert path.exists(), f"the image build copies {name}, which does not exist"
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, source / name)
    build, venv = tmp_path / "build", tmp_path / "venv"
    _run([sys.executable, "-m", "venv", build], tmp_path, env)
    pip = build / "bin" / "pip"
    hashed: list[str | Path] = [
        "install",
        "--no-cache-dir",
        "--require-hashes",
        "--only-binary=:all:",
        "-r",
    ]
    _run([pip, *hashed, "requirements-build.lock"], source, env)
    _run([sys.executable, "-m", "venv", "--without-pip", venv], tmp_path, env)
    served: list[str | Path] = [pip, "--python", venv / "bin" / "python"]
    _run([*served, *hashed, "requirements.lock"], source, env)
    dist = tmp_path / "dist"
    _run(
        [pip, "wheel", "--no-deps", "--no-build-isolation", "--no-cache-dir", "-w", dist, "."],
        source,
        env,
    )
    wheels = list(dist.glob("*.whl"))
    assert len(wheels) == 1, wheels
    version = _project_version()
    assert wheels[0].name.startswith(f"teleport_cloud_exporter-{version}-")

    _run([*served, "install", "--no-deps", "--no-index", wheels[0]], tmp_path, env)
    _run([*served, "check"], tmp_path, env)
    assert not (venv / "bin" / "pip").exists(), "the served virtualenv carries no pip"
    for absent in ("trustme", "setuptools", "pip"):
        probe = subprocess.run(
            [venv / "bin" / "python", "-c", f"import {absent}"],
            capture_output=True,
            timeout=60,
            check=False,
            env=env,
        )
        assert probe.returncode != 0, f"{absent} is importable from the served virtualenv"

    command = venv / "bin" / "teleport-cloud-exporter"
    assert command.is_file(), "the wheel installs no teleport-cloud-exporter console script"
    output = _run([command, "--version"], tmp_path, env)
    assert version in output
    help_text = _run([command, "--help"], tmp_path, env)
    assert "--config" in help_text or "serve" in help_text
    # The package came from the wheel, not from the source tree.
    location = _run(
        [venv / "bin" / "python", "-c", "import exporter; print(exporter.__file__)"],
        tmp_path,
        env,
    )
    assert str(venv) in location
