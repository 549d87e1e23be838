"""What exporter/web/guard.py takes from uvicorn's internals exists in the installed uvicorn,
and that uvicorn and httptools are inside the ranges pyproject.toml declares (and the lock pins
inside them).

The guard subclasses uvicorn's httptools protocol and reads attributes the protocol sets up;
a uvicorn release that renames one would otherwise fail only under load, in production."""

from __future__ import annotations

import ast
import asyncio
import contextlib
import inspect
import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
import uvicorn
from packaging.requirements import Requirement
from packaging.version import Version
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from exporter.web import guard

ROOT = Path(__file__).resolve().parents[3]


def _requirement(name: str) -> Requirement:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    (spec,) = [d for d in project["dependencies"] if Requirement(d).name == name]
    return Requirement(spec)


@pytest.mark.parametrize("name", ["uvicorn", "httptools"])
def test_installed_and_locked_versions_are_in_the_declared_range(name: str) -> None:
    """uvicorn for its internals; httptools because the guard's protocol is uvicorn's httptools
    one, whose parser callbacks change with httptools releases."""
    requirement = _requirement(name)
    upper = [spec for spec in requirement.specifier if spec.operator in ("<", "<=", "==", "~=")]
    assert upper, f"{name} needs a tested version range, not any later version"
    assert Version(metadata.version(name)) in requirement.specifier
    locked = re.search(rf"^{name}==(\S+)", (ROOT / "requirements.lock").read_text(), re.M)
    assert locked is not None
    assert Version(locked.group(1)) in requirement.specifier


def _inherited_names() -> set[str]:
    """`self.x` / `super().x` that GuardedProtocol uses without defining: uvicorn's."""
    tree = ast.parse(inspect.getsource(guard.GuardedProtocol))
    used: set[str] = set()
    defined: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.value.id == "self":
                used.add(node.attr)
                if isinstance(node.ctx, ast.Store):
                    defined.add(node.attr)
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Call):
            func = node.value.func
            if isinstance(func, ast.Name) and func.id == "super":
                used.add(node.attr)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            defined.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            defined.add(node.target.id)
    overridden = {n for n in defined if hasattr(HttpToolsProtocol, n)}
    return (used - defined) | overridden


def test_the_protocol_attributes_the_guard_relies_on_exist() -> None:
    names = _inherited_names()
    # The walk must see the hooks the guard is built on, or it proves nothing.
    assert {"transport", "cycle", "pipeline", "connection_made", "data_received"} <= names
    config = uvicorn.Config(app=lambda *args: None, log_config=None)
    config.load()
    loop = asyncio.new_event_loop()
    try:
        protocol = HttpToolsProtocol(config, ServerState(), {}, _loop=loop)
        missing = sorted(n for n in names if not hasattr(protocol, n))
    finally:
        loop.close()
    assert missing == [], f"uvicorn {uvicorn.__version__} lacks {missing} (exporter/web/guard.py)"


def test_the_server_hooks_the_guard_overrides_exist() -> None:
    server_methods = {"capture_signals", "shutdown", "serve"}
    assert all(callable(getattr(uvicorn.Server, name, None)) for name in server_methods)
    assert "sockets" in inspect.signature(uvicorn.Server.shutdown).parameters
    server = guard.QuietServer(uvicorn.Config(app=lambda *args: None, log_config=None))
    assert hasattr(server, "started") and hasattr(server, "should_exit")
    with server.capture_signals():  # the exporter's own: no handler is installed
        pass
    assert isinstance(server.capture_signals(), contextlib.AbstractContextManager)
    server.config.load()
    assert hasattr(server.config, "http_protocol_class")
