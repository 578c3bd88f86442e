"""Node names <-> unit instance names, checked against the real systemd-escape."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from stem_systemd.errors import UsageError
from stem_systemd.escape import (
    UNIT_NAME_MAX,
    check_unit_name,
    unescape_instance,
    unit_instance,
    unit_name,
)

CORPUS = [
    "alpha",
    "eu-west",
    "my worker",
    "köln",
    "w1@host",
    "a.b",
    ".hidden",
    "..",
    "-dash",
    "a\\b",
    "x:y_z",
    "tab\there",
    "100%",
    "a/b",
    "/lead",
    "ünïcödé-ñame",
    "emoji 🚀 worker",
    "東京",
    "quote'\"`$",
    "L" * 120,
    "é" * 40,
]

NAMES = [n for n in CORPUS if "/" not in n and "\t" not in n]


@pytest.mark.skipif(shutil.which("systemd-escape") is None, reason="systemd-escape not installed")
def test_unit_instance_matches_systemd_escape_byte_for_byte() -> None:
    """unit_instance() prints exactly what systemd-escape prints for every corpus string."""
    out = subprocess.run(["systemd-escape", "--", *CORPUS], capture_output=True, check=True).stdout
    expected = out.decode("ascii").rstrip("\n").split(" ")
    assert [unit_instance(name) for name in CORPUS] == expected


@pytest.mark.skipif(shutil.which("systemd-escape") is None, reason="systemd-escape not installed")
def test_unescape_matches_systemd_escape_unescape() -> None:
    """unescape_instance() agrees with systemd-escape --unescape (which also maps '-' to '/')."""
    # systemd-escape joins its outputs with spaces: leave out names containing one
    escaped = [unit_instance(name) for name in CORPUS if " " not in name]
    out = subprocess.run(
        ["systemd-escape", "--unescape", "--", *escaped], capture_output=True, check=True
    ).stdout
    expected = out.decode("utf-8").rstrip("\n").split(" ")
    assert [unescape_instance(e) for e in escaped] == expected


@pytest.mark.parametrize("name", NAMES)
def test_names_round_trip(name: str) -> None:
    """Every valid node name survives escaping and unescaping unchanged."""
    assert unescape_instance(unit_instance(name)) == name


@pytest.mark.parametrize(
    ("name", "unit"),
    [
        ("alpha", "stem-worker@alpha.service"),
        ("eu-west", "stem-worker@eu\\x2dwest.service"),
        ("my worker", "stem-worker@my\\x20worker.service"),
        ("köln", "stem-worker@k\\xc3\\xb6ln.service"),
        ("w1@host", "stem-worker@w1\\x40host.service"),
        (".hidden", "stem-worker@\\x2ehidden.service"),
    ],
)
def test_unit_name(name: str, unit: str) -> None:
    """unit_name() wraps the escaped instance in the stem-worker@.service template."""
    assert unit_name(name) == unit


def test_unit_name_other_template() -> None:
    """unit_name() takes another template prefix."""
    assert unit_name("a b", template="stem-scheduler") == "stem-scheduler@a\\x20b.service"


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("", "empty"),
        ("a/b", "'/'"),
        ("tab\there", "control character"),
        ("nl\nx", "control character"),
        ("del\x7f", "control character"),
        ("c1\x85", "control character"),
        ("x" * (UNIT_NAME_MAX - len("stem-worker@.service") + 1), "too long"),
        ("ö" * 30, "too long"),
    ],
)
def test_invalid_unit_names_are_refused(name: str, fragment: str) -> None:
    """Names that cannot make a valid unit are a usage error naming the problem."""
    with pytest.raises(UsageError) as exc:
        check_unit_name(name)
    assert fragment in exc.value.message
    assert exc.value.hint
    assert exc.value.exit_code == 2


def test_longest_valid_name_is_accepted() -> None:
    """A name whose unit name is exactly 255 bytes is still valid."""
    name = "x" * (UNIT_NAME_MAX - len("stem-worker@.service"))
    assert len(unit_name(name)) == UNIT_NAME_MAX


@pytest.mark.parametrize("bad", ["a\\x4", "a\\y41", "a\\", "\\xff"])
def test_unescape_refuses_malformed_input(bad: str) -> None:
    """Malformed escapes and non-UTF-8 results are usage errors, not garbage names."""
    with pytest.raises(UsageError):
        unescape_instance(bad)
