"""Env files: systemd's EnvironmentFile= rules, bad lines, and warnings where sh differs."""

from __future__ import annotations

import os
import random
import subprocess
from pathlib import Path

import pytest

from stem_systemd.envfile import parse_env_text, read_env_file
from stem_systemd.errors import UsageError

P = Path("/etc/stem/stem.env")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A=1", {"A": "1"}),
        ("A=1\n", {"A": "1"}),
        ("  A = 1  \n", {"A": "1"}),
        ("A=\n", {"A": ""}),
        ('A="a b"', {"A": "a b"}),
        ("A='a $b \"c\" \\n'", {"A": 'a $b "c" \\n'}),
        ('A="q\\"b\\\\d\\$t\\`x\\n"', {"A": 'q"b\\d$t`x\\n'}),
        ("A=a\\ b", {"A": "a b"}),
        ("A=a\\$b", {"A": "a$b"}),
        ("A=line\\\ncont", {"A": "linecont"}),
        ('A="multi\nline"', {"A": "multi\nline"}),
        ('A="esc\\\nnl"', {"A": "escnl"}),
        ("A=x # not a comment", {"A": "x # not a comment"}),
        ("# c\n; c\n\n  # indented\nA=1", {"A": "1"}),
        ('A=x"y"', {"A": 'x"y"'}),
        ("A='a'\"b\"", {"A": "ab"}),
        ('A="a" b', {"A": "ab"}),  # systemd skips blanks after a closing quote
        ("A=1\nA=2", {"A": "2"}),
        ("A=$HOME ${X} $(cmd)", {"A": "$HOME ${X} $(cmd)"}),
        ("export A=1", {"A": "1"}),
        ("A=x\r\nB=y\r\n", {"A": "x", "B": "y"}),
        ("A=köln", {"A": "köln"}),
        ("A=a=b", {"A": "a=b"}),
        ("_A1=v", {"_A1": "v"}),
        ("# comment \\\nA=1", {"A": "1"}),  # since systemd v254 the next line is not a comment
    ],
)
def test_systemd_rules(text: str, expected: dict[str, str]) -> None:
    """Values are what systemd's EnvironmentFile= parser (env-file.c) produces."""
    assert parse_env_text(text, P).values == expected


def test_lines_are_recorded() -> None:
    """Each variable remembers the line its assignment starts on."""
    env = parse_env_text('# c\n\nA=1\nB="two\nlines"\nC=3\n', P)
    assert env.lines == {"A": 3, "B": 4, "C": 6}


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("A=1\nFOO\n", ":2: expected KEY=VALUE, got 'FOO'"),
        ("FOO", ":1: expected KEY=VALUE, got 'FOO'"),
        ("1A=x", ":1: invalid variable name '1A'"),
        ("A-B=x", ":1: invalid variable name 'A-B'"),
        ('A=1\nB="open\n\n', ":2: unterminated quote"),
        ("A='open", ":1: unterminated quote"),
        ("export=1", None),
    ],
)
def test_bad_lines_are_usage_errors(text: str, fragment: str | None) -> None:
    """A malformed line is a usage error naming file:line (export=1 is a valid name)."""
    if fragment is None:
        assert parse_env_text(text, P).values == {"export": "1"}
        return
    with pytest.raises(UsageError) as exc:
        parse_env_text(text, P)
    assert f"{P}{fragment}" in exc.value.message
    assert exc.value.hint
    assert exc.value.exit_code == 2


def test_invalid_utf8_names_line(tmp_path: Path) -> None:
    """Invalid UTF-8 is a usage error naming file and line."""
    path = tmp_path / "stem.env"
    path.write_bytes(b"A=1\nB=\xff\n")
    with pytest.raises(UsageError, match=r"stem\.env:2: invalid UTF-8"):
        read_env_file(path)


def test_unreadable_file_is_a_usage_error(tmp_path: Path) -> None:
    """A missing env file is one clear usage error naming it."""
    with pytest.raises(UsageError, match="cannot read env file"):
        read_env_file(tmp_path / "missing.env")


def test_fifo_and_endless_device_are_refused_without_blocking(tmp_path: Path) -> None:
    """A FIFO with no writer or /dev/zero is one usage error naming its kind, not a hang or OOM."""
    fifo = tmp_path / "stem.env"
    os.mkfifo(fifo)
    with pytest.raises(UsageError, match=r"stem.env is not a regular file \(a FIFO\)"):
        read_env_file(fifo)
    with pytest.raises(UsageError, match=r"/dev/zero is not a regular file \(a character device\)"):
        read_env_file(Path("/dev/zero"))
    assert read_env_file(Path("/dev/null")).values == {}
    with pytest.raises(UsageError, match="Is a directory"):
        read_env_file(tmp_path)


def test_oversized_file_is_refused(tmp_path: Path) -> None:
    """An env file over 1 MiB (a wrong path, a log file) is a usage error, not read whole."""
    big = tmp_path / "big.env"
    big.write_bytes(b"# filler\n" * 120_000)  # 1.08 MB
    with pytest.raises(UsageError, match="larger than 1024 KiB"):
        read_env_file(big)


def test_nul_byte_is_a_usage_error_naming_the_line(tmp_path: Path) -> None:
    """A NUL byte cannot be passed in an environment: file:line, not a traceback at spawn."""
    path = tmp_path / "stem.env"
    path.write_bytes(b"A=1\nFOO=a\0b\n")
    with pytest.raises(UsageError, match=r"stem.env:2: NUL byte"):
        read_env_file(path)


def test_export_warns_that_systemd_ignores_it() -> None:
    """A leading export is accepted, with a systemd warning naming the line."""
    env = parse_env_text("A=1\nexport B=2\n", P)
    assert env.values == {"A": "1", "B": "2"}
    [warning] = env.warnings
    assert warning.kind == "systemd"
    assert str(warning).startswith(f"{P}:2: ")
    assert "ignores this line" in warning.message


def test_semicolon_comment_warns() -> None:
    """A ';' comment is fine for systemd but a syntax error for sh: warned with its line."""
    env = parse_env_text("A=1\n; comment\n", P)
    assert [(w.line, w.kind) for w in env.warnings] == [(2, "sh")]


def test_comment_ending_in_backslash_warns() -> None:
    """A comment ending in a backslash swallows the next line in systemd before v254."""
    env = parse_env_text("# x \\\nA=1\n", P)
    assert [(w.line, w.kind) for w in env.warnings] == [(1, "systemd")]


def test_warnings_name_the_line_and_key() -> None:
    """An sh difference names file, line and variable, and both readings."""
    env = parse_env_text("A=ok\nB=x # c\n", P)
    [warning] = env.warnings
    assert str(warning) == f"{P}:2: B: systemd reads 'x # c' but sh reads 'x'"


# ---- property: sh warnings fire exactly when sh reads a different value -----

SH_CORPUS = [
    # same in both
    "K=plain",
    'K="a b"',
    "K='a $b \"c\"'",
    'K="q\\"b\\\\d\\$t\\`x"',
    'K="back\\slash"',
    "K=a\\ b",
    "K=a\\$b",
    'K="multi\nline"',
    "K=cont\\\ninued",
    "K='a'\"b\"",
    "K=",
    "K=x   ",
    "  K=indented",
    "export K=1",
    "K=100%",
    "K=a=b",
    "K=$",
    "K=a$",
    "K=a~b",
    "K=köln",
    "K='~/quoted'",
    "# comment\nK=after",
    # different
    "K=$HOME",
    'K="$HOME"',
    "K=${HOME}",
    "K=`printf z`",
    "K=$(printf z)",
    "K=a stem_no_such_command",
    "K=x # comment",
    'K=a"b c"',
    "K=x'y'",
    'K="a" stem_no_such_command',
    "K=~/x",
    "K=x:~/y",
    "K=a;stem_no_such_command",
    "K= x",
    "K =x",
    "K=x\r",
    "; comment\nK=x",
    "K=x\n; comment",
]


UNSET = "<unset>"


def sh_values(path: Path, keys: list[str]) -> list[str] | None:
    """What `. FILE` in /bin/sh leaves in each key (UNSET if unset); None if sourcing fails."""
    script = '. "$1"; printf "%s\\0"' + "".join(f' "${{{k}-{UNSET}}}"' for k in keys)
    result = subprocess.run(
        ["sh", "-c", script, "sh", str(path)],
        capture_output=True,
        env={"HOME": "/home/stem-test", "PATH": "/usr/bin:/bin"},
        cwd=path.parent,
        check=False,
    )
    if result.returncode != 0:
        return None
    return result.stdout.decode("utf-8").split("\0")[:-1]


def assert_warned_iff_sh_differs(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    try:
        env = read_env_file(path)
    except UsageError:
        return  # not an env file at all; covered by the bad-line tests
    keys = sorted(env.values)
    differs = sh_values(path, keys) != [env.values[k] for k in keys]
    sh_warnings = [str(w) for w in env.warnings if w.kind == "sh"]
    assert bool(sh_warnings) == differs, (text, sh_values(path, keys), env.values, sh_warnings)


@pytest.mark.parametrize("text", SH_CORPUS)
def test_sh_warnings_fire_exactly_when_sh_differs(text: str, tmp_path: Path) -> None:
    """An sh warning is given if and only if /bin/sh sourcing the file reads a value differently."""
    assert_warned_iff_sh_differs(tmp_path / "stem.env", text + "\n")


# Only 'a' for letters: random words can never name a real command.
ALPHABET = [*"aaa \"'\\$#;~:=\n\t%{}`()/", "a="]


def test_sh_warnings_on_random_lines(tmp_path: Path) -> None:
    """The same iff-property holds on 150 seeded random lines of quotes, escapes and operators."""
    rng = random.Random(20261203)  # noqa: S311 (a fixed seed for a reproducible test, not crypto)
    for _ in range(150):
        tail = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 14)))
        assert_warned_iff_sh_differs(tmp_path / "stem.env", f"K={tail}\n")


def test_carriage_return_outside_values_warns() -> None:
    """A \\r that systemd takes as a line end (here inside a comment line) is warned about."""
    env = parse_env_text("# note\rB=1\n", P)
    assert env.values == {"B": "1"}
    assert [(w.line, w.kind) for w in env.warnings] == [(1, "sh")]
    assert "carriage return" in env.warnings[0].message
