"""Version parsing: every form Teleport prints, and garbage that must never crash."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporter.core.versions import Version, major_of, normalise, parse
from exporter.vocab import MAX_LABEL_VALUE, cap_label


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("v18.1.4", Version(18, 1, 4)),
        ("18.1.4", Version(18, 1, 4)),
        (" V17.0.0 ", Version(17, 0, 0)),
        ("18.2.0-rc.1", Version(18, 2, 0, "rc.1")),
        ("18.1.4-dev.x", Version(18, 1, 4, "dev.x")),
        ("v16.4.9-alpha.2+build.7", Version(16, 4, 9, "alpha.2")),
        ("17.0.0-aa", Version(17, 0, 0, "aa")),
        ("0.0.0", Version(0, 0, 0)),
    ],
)
def test_parses_teleport_versions(text: str, expected: Version) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "v",
        "18",
        "18.1",
        "18.1.4.5",
        "vendor-build",
        "18.01.4",
        "18.1.x",
        "18.1.4-",
        "none",
        "v 18.1.4",
    ],
)
def test_garbage_is_none(text: str) -> None:
    assert parse(text) is None
    assert major_of(text) is None


def test_version_text_is_normalised() -> None:
    assert str(Version(18, 2, 0, "rc.1")) == "18.2.0-rc.1"
    assert str(parse("v18.1.4")) == "18.1.4"
    assert normalise("v18.1.4") == "18.1.4"
    assert normalise("vendor") == "vendor"  # a v that does not start a version is kept
    assert normalise("x" * 500) == cap_label("x" * 500)
    assert parse("\u0661\u0668.1.4") is None  # Arabic-Indic digits are not a version


def test_major_of() -> None:
    assert major_of("v15.4.22") == 15
    assert major_of(None) is None
    assert major_of("") is None


@given(st.text(max_size=200))
def test_never_crashes_and_stays_bounded(text: str) -> None:
    label = normalise(text)
    assert len(label) <= MAX_LABEL_VALUE
    version = parse(text)
    if version is not None:
        assert parse(str(version)) == version
