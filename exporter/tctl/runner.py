"""Running `tctl` against a tenant: bounded in time and output, never leaving processes behind.

tctl is the only authenticated way into a Cloud tenant (Machine ID identity file). It is run as
`<tctl> --auth-server=<proxy> -i <identity file> <args...>` with `TELEPORT_TOOLS_VERSION=off`
(otherwise tctl may re-exec or download another version of itself), stdin closed, in its own
session so that a timeout can kill the whole process group, helpers included. Its environment
is an allowlist (`TCTL_ENVIRONMENT`), not the exporter's whole environment.

Failures become `SourceError` reasons:

- `exec`: the binary is missing, not executable or not a program;
- `auth`: tctl exited non-zero with an access-denied, expired-certificate, failed-handshake or
  not-logged-in message, or could not read the identity file;
- `tls`: a certificate problem that is not about our identity (unknown authority, ...);
- `connect`: tctl could not reach the proxy;
- `timeout`: no exit within the timeout (the process group is killed and reaped);
- `too_large`: more than `max_bytes` on stdout (the process group is killed and reaped);
- `other`: any other non-zero exit, or death by a signal.
A NotFound answer raises `TctlNotFoundError` (reason `other`), which callers for which "not found"
is a normal answer catch. Its wording depends on the auth server's cache code: `... does not
exist`, `... doesn't exist`, `not found`, and (an older cache) `no value for key ... in index`.

Output is gathered into one growing buffer (no second copy to join it); a buffer that large is
a memory mapping of its own, so after an oversized output the memory goes back to the system at
once instead of leaving the process at its peak size.

stderr goes into the error message (bounded, PEM blocks cut) and from there to the log; the
identity file is only ever named by its path.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import anyio
from anyio.abc import Process

from exporter.config import TenantConfig
from exporter.core.errors import Reason, SourceError

log = logging.getLogger(__name__)

STDERR_LIMIT = 16 * 1024
MESSAGE_LIMIT = 600
VERSION_OUTPUT_LIMIT = 64 * 1024
REAP_TIMEOUT = 5.0
"""After SIGKILL a process exits at once unless stuck in the kernel; don't hang on one that is."""

_AUTH_MARKERS = (
    "access denied",
    "certificate has expired",
    "certificate expired",
    "expired certificate",
    "ssh: handshake failed",
    "unable to authenticate",
    "not logged in",
    "failed to load identity",
    "bad certificate",
    "invalid credentials",
)
_TLS_MARKERS = ("x509:", "tls:")
_CONNECT_MARKERS = (
    "connection refused",
    "no such host",
    "dial tcp",
    "i/o timeout",
    "network is unreachable",
    "connection reset",
    "no route to host",
)
_NOT_FOUND_MARKERS = ("doesn't exist", "does not exist", "not found", "no value for key")


class TctlNotFoundError(SourceError):
    """tctl answered NotFound: for a singleton such as the rollout, "there is none"."""

    def __init__(self, message: str) -> None:
        super().__init__("other", message)


def classify_failure(stderr: str, identity_file: Path | None) -> Reason | None:
    """The reason for a non-zero exit from its stderr; None for NotFound."""
    text = stderr.lower()
    if any(marker in text for marker in _AUTH_MARKERS):
        return "auth"
    # tbot has not written the identity yet, or wrote it where we cannot read it.
    if (
        identity_file is not None
        and str(identity_file).lower() in text
        and ("no such file" in text or "permission denied" in text)
    ):
        return "auth"
    if any(marker in text for marker in _TLS_MARKERS):
        return "tls"
    if any(marker in text for marker in _CONNECT_MARKERS):
        return "connect"
    if any(marker in text for marker in _NOT_FOUND_MARKERS):
        return None
    return "other"


def summarise_stderr(stderr: bytes) -> str:
    text = stderr.decode("utf-8", "replace")
    pem = text.find("-----BEGIN")
    if pem >= 0:  # never let key material reach the log, whatever tctl printed
        text = text[:pem] + "[PEM block removed]"
    text = " ".join(text.split())
    return text[:MESSAGE_LIMIT] or "(no output on stderr)"


def _kill_group(process: Process) -> None:
    # The child leads its own session, so its pid is the group id; Linux does not reuse a pid
    # while it still names a process group, so this cannot hit a stranger.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


async def run_tctl(
    tctl: str,
    proxy: str,
    identity_file: Path,
    args: Sequence[str],
    *,
    # Our own deadline rather than the caller's cancel scope: on expiry the process group must
    # be killed and the failure reported as `timeout`, not as a bare cancellation.
    timeout: float,  # noqa: ASYNC109
    max_bytes: int,
) -> bytearray:
    """Run tctl and return its stdout; raise SourceError (see the module doc) on failure."""
    command = [tctl, f"--auth-server={proxy}", "-i", str(identity_file), *args]
    return await _run(
        command, " ".join(args[:3]), identity_file, timeout=timeout, max_bytes=max_bytes
    )


async def run_tctl_version(tctl: str, *, timeout: float) -> bytearray:  # noqa: ASYNC109
    """`<tctl> version`: needs no cluster, so no identity. TELEPORT_TOOLS_VERSION=off matters
    here too: otherwise tctl could re-exec another version and report that one."""
    return await _run(
        [tctl, "version"], "version", None, timeout=timeout, max_bytes=VERSION_OUTPUT_LIMIT
    )


TCTL_ENVIRONMENT = frozenset(
    {
        "PATH",
        "HOME",
        "TMPDIR",
        "TZ",
        "LANG",
        "LC_ALL",
        "LC_CTYPE",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "NO_PROXY",
        "no_proxy",
    }
)
"""What tctl inherits from the exporter's environment; everything else (cloud credentials,
tokens, the exporter's own settings) stays behind. The proxy variables pass because tctl is a
Go program with Go's proxy rules: where egress needs a proxy, tctl needs it too. The exporter's
own HTTP sources ignore them (see exporter.core.http)."""


def tctl_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The allowlisted part of `environ`, with `TELEPORT_TOOLS_VERSION=off`."""
    env = {key: value for key, value in environ.items() if key in TCTL_ENVIRONMENT}
    env["TELEPORT_TOOLS_VERSION"] = "off"
    return env


async def _run(
    command: list[str],
    what: str,
    identity_file: Path | None,
    *,
    timeout: float,  # noqa: ASYNC109 (see run_tctl)
    max_bytes: int,
) -> bytearray:
    tctl = command[0]
    env = tctl_environment(os.environ)
    log.debug("running %s", " ".join(command))
    try:
        process = await anyio.open_process(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,
        )
    except OSError as exc:  # missing, not executable, not a program (ENOEXEC), ...
        raise SourceError("exec", f"cannot run {tctl!r}: {exc.strerror or exc}") from None

    output = bytearray()
    stderr = bytearray()
    too_large = False
    finished = False

    async def read_stderr() -> None:
        assert process.stderr is not None
        async for chunk in process.stderr:  # keep draining so tctl never blocks on a full pipe
            if len(stderr) < STDERR_LIMIT:
                stderr.extend(chunk[: STDERR_LIMIT - len(stderr)])

    async def read_stdout() -> None:
        nonlocal too_large
        assert process.stdout is not None
        async for chunk in process.stdout:
            if len(output) + len(chunk) > max_bytes:
                too_large = True
                return
            output.extend(chunk)

    try:
        with anyio.move_on_after(timeout):
            async with anyio.create_task_group() as group:
                group.start_soon(read_stderr)
                await read_stdout()
                if too_large:
                    group.cancel_scope.cancel()
            if not too_large:
                await process.wait()
                finished = True
    finally:
        if not finished:  # timeout, too much output, or cancelled from outside
            _kill_group(process)
        with anyio.move_on_after(REAP_TIMEOUT, shield=True):
            await process.aclose()  # closes the pipes and reaps the child: no zombie

    if too_large:
        del output[:]  # a buffer this size is its own mapping: emptying it unmaps it at once
        raise SourceError("too_large", f"tctl {what}: output exceeds {max_bytes} bytes")
    if not finished:
        raise SourceError("timeout", f"tctl {what}: no answer within {timeout:g}s")
    code = process.returncode
    if code is not None and code < 0:
        raise SourceError("other", f"tctl {what} killed by signal {-code}")
    if code != 0:
        message = f"tctl {what} exited with {code}: {summarise_stderr(bytes(stderr))}"
        reason = classify_failure(stderr.decode("utf-8", "replace"), identity_file)
        if reason is None:
            raise TctlNotFoundError(message)
        raise SourceError(reason, message)
    return output


async def run_tenant_tctl(
    config: TenantConfig,
    args: Sequence[str],
    *,
    timeout: float,  # noqa: ASYNC109 (run_tctl's own deadline, see there)
    max_bytes: int,
) -> bytearray:
    """`run_tctl` with the tenant's binary, proxy and identity file."""
    return await run_tctl(
        config.inventory.tctl,
        auth_server(config.host, config.port),
        config.inventory.identity_file,
        args,
        timeout=timeout,
        max_bytes=max_bytes,
    )


def auth_server(host: str, port: int) -> str:
    """The `--auth-server` value for a proxy: always with a port (tctl would otherwise assume
    the Auth port 3025), IPv6 hosts in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
