"""Logging in Prometheus' habits: `--log.level` and `--log.format=logfmt|json`."""

from __future__ import annotations

import json
import logging
import sys
import time

LEVELS = ("debug", "info", "warn", "error")


# Bidirectional overrides and isolates: they reorder what a terminal shows after them.
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_char(c: str) -> str:
    if c in _ESCAPES:
        return _ESCAPES[c]
    if c < " " or "\x7f" <= c <= "\x9f" or c in _BIDI or "\ud800" <= c <= "\udfff":
        return f"\\u{ord(c):04x}"
    return c


def _logfmt_value(value: str) -> str:
    """A logfmt value: quoted when it needs to be, with every control character (C0, DEL, C1),
    bidirectional override and lone surrogate escaped, so upstream text (tctl's stderr, a
    server's error) can neither forge a log line nor send escape sequences to a terminal."""
    if value and all(" " < c < "\x7f" and c not in '"=\\' for c in value):
        return value
    return '"' + "".join(_escape_char(c) for c in value) + '"'


class _Formatter(logging.Formatter):
    def __init__(self, fmt: str) -> None:
        super().__init__()
        self.fmt = fmt

    def format(self, record: logging.LogRecord) -> str:
        fields = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower().replace("warning", "warn"),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            fields["error"] = self.formatException(record.exc_info)
        if self.fmt == "json":
            return json.dumps(fields)
        return " ".join(f"{key}={_logfmt_value(value)}" for key, value in fields.items())


class RateLimit(logging.Filter):
    """At most `burst` records per `window` seconds for each (logger, message text); the
    rest are dropped and counted, and the next record let through says how many. Keeps an
    accept() failing in a tight loop (out of descriptors) from writing megabytes of log."""

    def __init__(self, burst: int = 5, window: float = 60.0, max_keys: int = 1024) -> None:
        super().__init__()
        self.burst = burst
        self.window = window
        self.max_keys = max_keys
        self._seen: dict[tuple[str, str], tuple[float, int, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.getMessage()[:200])
        start, count, dropped = self._seen.get(key, (record.created, 0, 0))
        if record.created - start >= self.window:
            start, count = record.created, 0
        if count >= self.burst:
            self._seen[key] = (start, count, dropped + 1)
            return False
        if dropped:
            record.msg = f"{record.getMessage()} ({dropped} identical lines suppressed)"
            record.args = None
        if len(self._seen) >= self.max_keys and key not in self._seen:
            self._seen.clear()
        self._seen[key] = (start, count + 1, 0)
        return True


def setup_logging(level: str = "info", fmt: str = "logfmt") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter(fmt))
    handler.addFilter(RateLimit())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(
        {"warn": logging.WARNING}.get(level, getattr(logging, level.upper(), logging.INFO))
    )
    for noisy in ("httpx", "httpcore", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # uvicorn's lifecycle lines (process started, startup complete, ...) repeat for every
    # server in the process (the demo runs two) and say less than our own "listening on":
    # its warnings and errors stay, its info lines only at debug.
    logging.getLogger("uvicorn.error").setLevel(
        logging.DEBUG if level == "debug" else logging.WARNING
    )
