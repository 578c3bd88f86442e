"""The launcher's fast argv parser against argparse: never a different answer.

``stem-worker`` parses the argv it is usually given without importing
argparse (a node's start-up cost, bench/RESULTS.md); for anything else it
falls back to argparse. These tests hold the fast parser to "the same values
as argparse, or decline": a fixed corpus plus seeded random argvs built from
the options, their edge-case values and junk.
"""

from __future__ import annotations

import contextlib
import io
import random

import pytest

from stem_systemd.launcher.worker import build_parser, fast_parse

TOKENS = [
    "--node", "-c", "--concurrency", "--logfile", "--jobs", "-Q", "--queues",
    "--ready-delay", "--heartbeat", "--node=", "--node=x=y", "--concurrency=3",
    "--jobs=/tmp/spool", "--heartbeat=0", "--ready-delay=0.5", "--conc", "-c4",
    "-c=4", "--help", "-h", "--", "-", "--nod", "--logfile=%n%I.log",
    "alpha", "my worker", "köln", "", "4", "-4", "0", "1e3", "inf", "nan", " 2 ",
    "0x10", "1_000", "2.5", "-0.5", "/var/log/stem/%n.log", "images,video",
]  # fmt: skip

CORPUS = [
    [],
    ["--node", "alpha"],
    ["--node=alpha", "-c", "4"],
    ["--node", "alpha", "--logfile", "/var/log/stem/%n%I.log", "--jobs", "/srv/jobs"],
    ["-c", "2", "-Q", "images", "--ready-delay", "0.2", "--heartbeat", "0"],
    ["--node", "a", "--node", "b"],
    ["--concurrency", " 3 "],
    ["--heartbeat", "inf"],
    ["--node", ""],
    ["--node="],
    ["-c4"],
    ["--conc", "4"],
    ["--node", "-x"],
    ["--node"],
    ["-c", "four"],
    ["stray"],
    ["--", "--node", "x"],
]


def argparse_values(argv: list[str]) -> dict[str, object] | str:
    """What argparse makes of argv: its values, or 'exit N' when it exits."""
    parser = build_parser()
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        try:
            return vars(parser.parse_args(argv))
        except SystemExit as exc:
            return f"exit {exc.code}"


def check(argv: list[str]) -> bool:
    """Assert the fast parser agrees with argparse or declines; True when it answered."""
    fast = fast_parse(argv)
    if fast is None:
        return False
    # repr: nan is a value argparse accepts too, and nan != nan.
    assert repr(fast) == repr(argparse_values(argv)), argv
    return True


@pytest.mark.parametrize("argv", CORPUS, ids=[" ".join(a) or "(empty)" for a in CORPUS])
def test_corpus_same_as_argparse_or_declined(argv: list[str]) -> None:
    """Each corpus argv: the same values as argparse, or left to argparse."""
    check(argv)


def test_the_common_forms_take_the_fast_path() -> None:
    """What `stem worker multi` and the units pass never needs argparse."""
    assert fast_parse(["--node", "alpha", "--logfile", "/l/%n%I.log", "-c", "2"]) is not None
    assert fast_parse(["--node=köln", "--jobs=/srv/jobs", "-Q", "images"]) is not None
    for declined in (["--help"], ["-c4"], ["--conc", "2"], ["--node", "-x"], ["-c", "x"]):
        assert fast_parse(declined) is None, declined


def test_random_argvs_same_as_argparse_or_declined() -> None:
    """3000 seeded random argvs from option strings, edge values and junk."""
    rng = random.Random(20261203)  # noqa: S311 - a reproducible corpus, not a secret
    answered = 0
    for _ in range(3000):
        argv = [rng.choice(TOKENS) for _ in range(rng.randint(0, 6))]
        answered += check(argv)
    # The test would prove nothing if the fast parser declined everything.
    assert answered > 100
