"""Teleport version strings: parse and normalise, never crash.

Versions reach us from ping, the version channel and `tctl inventory ls`, with or without a
leading `v` (`v18.1.4`, `18.1.4`), as pre-releases and dev builds (`18.2.0-rc.1`,
`18.1.4-dev.x`), and occasionally as garbage from a custom build. Only the major matters for skew,
but the whole version is kept so labels stay exact.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from exporter.vocab import cap_label

_SEMVER = re.compile(
    r"(0|[1-9]\d{0,8})\.(0|[1-9]\d{0,8})\.(0|[1-9]\d{0,8})"
    r"(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
    r"(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?",
    re.ASCII,
)


class Version(NamedTuple):
    major: int
    minor: int
    patch: int
    prerelease: str = ""

    def __str__(self) -> str:
        core = f"{self.major}.{self.minor}.{self.patch}"
        return f"{core}-{self.prerelease}" if self.prerelease else core


def normalise(text: str) -> str:
    """The label form of a version: surrounding blanks and one leading `v` removed, capped.

    The `v` goes only before a digit, so garbage such as `vendor-build` stays recognisable.
    """
    text = text.strip()
    if len(text) > 1 and text[0] in "vV" and text[1] in "0123456789":
        text = text[1:]
    return cap_label(text)


def parse(text: str) -> Version | None:
    """`v18.1.4`, `18.1.4`, `18.2.0-rc.1`, `18.1.4-dev.x` -> Version; anything else -> None.

    Build metadata (`+abc`) is accepted and dropped, as semver ignores it for precedence.
    """
    match = _SEMVER.fullmatch(normalise(text))
    if match is None:
        return None
    major, minor, patch, prerelease = match.groups()
    return Version(int(major), int(minor), int(patch), prerelease or "")


def major_of(text: str | None) -> int | None:
    """The major version of `text`, or None when it is missing or unparseable."""
    if not text:
        return None
    version = parse(text)
    return version.major if version is not None else None


def same_version(left: str, right: str) -> bool:
    """Whether two version strings name the same version (`v18.1.4` == `18.1.4`); unparseable
    ones compare by their normalised text."""
    parsed_left, parsed_right = parse(left), parse(right)
    if parsed_left is not None and parsed_right is not None:
        return parsed_left == parsed_right
    return normalise(left) == normalise(right)
