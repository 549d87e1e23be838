"""Headless Chromium (Debian's `chromium`) driven over the DevTools protocol, on a pipe.

`--remote-debugging-pipe` speaks the protocol as NUL-terminated JSON on file descriptors 3 (to
the browser) and 4 (from it): no WebSocket library, no browser download, no port. Every wait is
bounded.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
TIMEOUT = 30.0


class ChromiumError(RuntimeError):
    pass


class Browser:
    """One headless Chromium with one page; `open()` navigates and waits for the load."""

    def __init__(self, width: int = 1280, height: int = 900) -> None:
        if CHROMIUM is None:
            raise ChromiumError("chromium is not installed")
        self._profile = tempfile.mkdtemp(prefix="tce-chromium-")
        to_browser_read, self._to_browser = os.pipe()
        self._from_browser, from_browser_write = os.pipe()
        # The protocol's descriptors are 3 and 4 in the browser; bash moves the pipes there
        # (no preexec_fn: this process runs threads).
        redirect = f'exec "$@" 3<&{to_browser_read} 4>&{from_browser_write}'
        self._process = subprocess.Popen(
            [
                "bash",
                "-c",
                redirect,
                "chromium",
                CHROMIUM,
                "--headless",
                "--no-sandbox",  # tests run as root in a container
                "--disable-gpu",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--ignore-certificate-errors",  # the test servers' own CAs
                "--remote-debugging-pipe",
                f"--user-data-dir={self._profile}",
                f"--window-size={width},{height}",
                "about:blank",
            ],
            pass_fds=(to_browser_read, from_browser_write),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_browser_read)
        os.close(from_browser_write)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self._session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        for domain in ("Page", "Network", "Runtime"):
            self.call(f"{domain}.enable", session=True)
        self.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            session=True,
        )

    def call(
        self, method: str, params: dict[str, Any] | None = None, *, session: bool = False
    ) -> Any:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self._session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + TIMEOUT
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise ChromiumError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            if time.monotonic() > deadline:
                raise ChromiumError("no answer from chromium in time")
            chunk = os.read(self._from_browser, 65536)
            if not chunk:
                raise ChromiumError("chromium closed the pipe")
            self._buffer += chunk
        raw, _, self._buffer = self._buffer.partition(b"\0")
        parsed: dict[str, Any] = json.loads(raw)
        return parsed

    def authenticate(self, username: str, password: str) -> None:
        """Send basic-auth credentials with every request of the page."""
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        self.call(
            "Network.setExtraHTTPHeaders",
            {"headers": {"Authorization": f"Basic {token}"}},
            session=True,
        )

    def open(self, url: str) -> int:
        """Navigate and wait for the load event; returns the document's HTTP status."""
        self.events.clear()
        self.call("Page.navigate", {"url": url}, session=True)
        deadline = time.monotonic() + TIMEOUT
        status = 0
        seen = 0
        while True:
            for event in self.events[seen:]:
                if event.get("method") == "Network.responseReceived":
                    params = event["params"]
                    if params.get("type") == "Document":
                        status = int(params["response"]["status"])
                if event.get("method") == "Page.loadEventFired":
                    return status
            seen = len(self.events)
            self.events.append(self._read(deadline))

    def requested_urls(self) -> list[str]:
        return [
            event["params"]["request"]["url"]
            for event in self.events
            if event.get("method") == "Network.requestWillBeSent"
        ]

    def evaluate(self, expression: str) -> Any:
        result = self.call(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=True
        )
        if "exceptionDetails" in result:
            raise ChromiumError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def text(self) -> str:
        """What a person reads: the rendered text (CSS applied, hidden parts left out)."""
        return str(self.evaluate("document.body.innerText"))

    def tables(self) -> list[list[list[str]]]:
        """Every table as rows of cell texts, header row included."""
        value = self.evaluate(
            "[...document.querySelectorAll('table')].map(t => [...t.rows].map("
            "r => [...r.cells].map(c => c.innerText.trim())))"
        )
        return list(value)

    def screenshot(
        self,
        path: Path,
        *,
        greyscale: bool = False,
        selector: str | None = None,
        max_height: int = 1600,
    ) -> None:
        """A PNG of the element `selector` (default the whole page), at most `max_height` CSS
        pixels tall; `greyscale` renders it as a person without colour vision sees it."""
        self.call(
            "Emulation.setEmulatedVisionDeficiency",
            {"type": "achromatopsia" if greyscale else "none"},
            session=True,
        )
        box = self.evaluate(
            "(() => { const e = %s; const r = e.getBoundingClientRect();"
            " return [r.left + scrollX, r.top + scrollY, r.width, r.height]; })()"
            % (f"document.querySelector({json.dumps(selector)})" if selector else "document.body")
        )
        x, y, width, height = (float(v) for v in box)
        result = self.call(
            "Page.captureScreenshot",
            {
                "format": "png",
                "captureBeyondViewport": True,
                "clip": {
                    "x": max(0.0, x - 8),
                    "y": max(0.0, y - 8),
                    "width": width + 16,
                    "height": min(height + 16, max_height),
                    "scale": 1,
                },
            },
            session=True,
        )
        path.write_bytes(base64.b64decode(result["data"]))

    def close(self) -> None:
        with contextlib.suppress(ChromiumError):
            self.call("Browser.close")
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=10)
        os.close(self._to_browser)
        os.close(self._from_browser)
        shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
