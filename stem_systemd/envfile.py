"""Env files read with systemd's ``EnvironmentFile=`` rules, and where sh would differ.

The rules (systemd.exec(5) "EnvironmentFile="; the state machine is
``parse_env_file_internal()`` in systemd's src/basic/env-file.c, mirrored here
state for state):

- ``KEY=VALUE`` per line; blanks around the key and after ``=`` are ignored,
  trailing blanks of an unquoted value are chomped.
- ``#`` or ``;`` as the first non-blank character starts a comment line. There
  are no inline comments: ``A=x # y`` is ``x # y``.
- ``'...'`` is literal; ``"..."`` unescapes only ``\\"``, ``\\\\``, ``\\$``, ``\\```
  (others keep their backslash, as in sh) and drops an escaped newline.
  Unquoted, ``\\c`` is ``c`` and ``\\`` + newline continues the line. Quotes
  are only quotes at the start of the value or right after another quoted
  part: ``A=x"y"`` is ``x"y"``.
- No ``$`` expansion, no command substitution, no tilde expansion.

Where we are stricter than systemd (which logs and skips): a line without
``=``, an invalid variable name, an unterminated quote and invalid UTF-8 are
usage errors naming ``file:line``. A leading ``export`` is accepted (so the
file can also be sourced by sh), with a warning that systemd itself ignores
such a line.

For every assignment the line is also read the way ``. FILE`` in a POSIX sh
would read it (:func:`_sh_read`); where the two values differ, or sh would
expand, run or reject something, a warning names the line.
"""

from __future__ import annotations

import os
import pwd
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from stem_systemd.errors import UsageError

WHITESPACE = " \t\n\r"
NEWLINE = "\n\r"
COMMENTS = "#;"
SHELL_NEED_ESCAPE = '"\\`$'
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_SIZE = 1024 * 1024  # bytes; far above any real env file, far below trouble
_EXPORT = re.compile(r"export[ \t]+([A-Za-z_][A-Za-z0-9_]*)")


@dataclass(frozen=True)
class EnvWarning:
    """One line that sh (``kind="sh"``) or systemd itself (``"systemd"``) reads differently."""

    path: Path
    line: int
    kind: Literal["sh", "systemd"]
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


@dataclass(frozen=True)
class EnvFile:
    """The assignments of one env file (later ones win), their lines, and the warnings."""

    path: Path
    values: dict[str, str]
    lines: dict[str, int]
    warnings: tuple[EnvWarning, ...]


@dataclass
class _Record:
    key: str
    value: str
    line: int
    start: int  # offset of the key's first character


def read_env_file(path: Path) -> EnvFile:
    """Read and parse ``path``; unreadable files and bad lines are usage errors."""
    data = _read_bounded(path)
    if b"\0" in data:
        line = data[: data.index(b"\0")].count(b"\n") + 1
        raise UsageError(
            f"{path}:{line}: NUL byte (no environment value can hold one)",
            hint="remove it; save the file as text",
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise UsageError(f"{path}:{line}: invalid UTF-8", hint="save the file as UTF-8") from None
    return parse_env_text(text, path)


def _read_bounded(path: Path) -> bytes:
    """The bytes of a regular file (or /dev/null) of at most MAX_SIZE: never blocks, never balloons.

    A FIFO would block open(2) or read(2) until a writer comes, a device such
    as /dev/zero never ends.
    """
    hint = "check the --env-file path and its permissions"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise UsageError(f"cannot read env file {path}: {exc.strerror}", hint=hint) from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise UsageError(f"cannot read env file {path}: Is a directory", hint=hint)
        dev_null = stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3)  # devices.txt
        if not (stat.S_ISREG(st.st_mode) or dev_null):
            raise UsageError(
                f"env file {path} is not a regular file ({_file_kind(st.st_mode)})",
                hint="point --env-file at a KEY=VALUE text file",
            )
        chunks: list[bytes] = []
        size = 0
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_SIZE:
                raise UsageError(
                    f"env file {path} is larger than {MAX_SIZE // 1024} KiB",
                    hint="an env file holds KEY=VALUE lines; check the --env-file path",
                )
        return b"".join(chunks)
    except OSError as exc:
        raise UsageError(f"cannot read env file {path}: {exc.strerror}", hint=hint) from None
    finally:
        os.close(fd)


def _file_kind(mode: int) -> str:
    kinds = {
        stat.S_IFIFO: "a FIFO",
        stat.S_IFCHR: "a character device",
        stat.S_IFBLK: "a block device",
        stat.S_IFSOCK: "a socket",
    }
    return kinds.get(stat.S_IFMT(mode), "not a regular file")


def parse_env_text(text: str, path: Path) -> EnvFile:
    """Parse env-file ``text`` (``path`` only names it in messages)."""
    warnings: list[EnvWarning] = []
    values: dict[str, str] = {}
    lines: dict[str, int] = {}
    for rec in _systemd_records(text, path, warnings):
        key = rec.key
        export = _EXPORT.fullmatch(key)
        if export:
            key = export.group(1)
            warnings.append(
                EnvWarning(
                    path,
                    rec.line,
                    "systemd",
                    f"systemd's EnvironmentFile= ignores this line ('{rec.key}' is not a"
                    " variable name); drop 'export' so units see it too",
                )
            )
        elif not _NAME.fullmatch(key):
            raise UsageError(
                f"{path}:{rec.line}: invalid variable name {key!r}",
                hint="names are letters, digits and '_', not starting with a digit",
            )
        sh_value, why = _sh_read(text, rec.start)
        if sh_value is None:
            warnings.append(
                EnvWarning(path, rec.line, "sh", f"{key}: {why}; systemd reads {rec.value!r}")
            )
        elif sh_value != rec.value:
            warnings.append(
                EnvWarning(
                    path,
                    rec.line,
                    "sh",
                    f"{key}: systemd reads {rec.value!r} but sh reads {sh_value!r}",
                )
            )
        values[key] = rec.value
        lines[key] = rec.line
    warnings.sort(key=lambda w: w.line)
    return EnvFile(path, values, lines, tuple(warnings))


# One branch per state of systemd's machine, kept in one function so it reads
# side by side with env-file.c.
def _systemd_records(  # noqa: PLR0912, PLR0915
    text: str, path: Path, warnings: list[EnvWarning]
) -> list[_Record]:
    """systemd's state machine (env-file.c); collects comment-line warnings on the way."""
    records: list[_Record] = []
    state = "PRE_KEY"
    key: list[str] = []
    value: list[str] = []
    last_key_ws: int | None = None
    last_value_ws: int | None = None
    line = 1  # physical line of the current character
    rec_line = 1
    rec_start = 0
    quote_line = 0
    cr_line = 0

    def push(chomp: bool) -> None:
        k = "".join(key[:last_key_ws] if last_key_ws is not None else key)
        v = value[:last_value_ws] if chomp and last_value_ws is not None else value
        records.append(_Record(k, "".join(v), rec_line, rec_start))

    for pos, c in enumerate(text):
        if c == "\r" and state in ("PRE_KEY", "COMMENT") and cr_line != line:
            cr_line = line  # a \r ending a value shows up in the value comparison instead
            warnings.append(
                EnvWarning(
                    path,
                    line,
                    "sh",
                    "carriage return: systemd reads it as a line end, sh as part of a word"
                    " (DOS line endings? convert with dos2unix)",
                )
            )
        if state == "PRE_KEY":
            if c in COMMENTS:
                state = "COMMENT"
                _comment_warnings(text, pos, path, line, warnings)
            elif c not in WHITESPACE:
                state = "KEY"
                key, value = [c], []
                last_key_ws = None
                rec_line, rec_start = line, pos
        elif state == "KEY":
            if c in NEWLINE:
                raise UsageError(
                    f"{path}:{rec_line}: expected KEY=VALUE, got {''.join(key).strip()!r}",
                    hint="every line is KEY=VALUE, a comment starting with '#', or empty",
                )
            if c == "=":
                state = "PRE_VALUE"
                last_value_ws = None
            else:
                if c not in WHITESPACE:
                    last_key_ws = None
                elif last_key_ws is None:
                    last_key_ws = len(key)
                key.append(c)
        elif state == "PRE_VALUE":
            if c in NEWLINE:
                state = "PRE_KEY"
                push(chomp=False)
            elif c == "'":
                state, quote_line = "SINGLE_QUOTE_VALUE", line
            elif c == '"':
                state, quote_line = "DOUBLE_QUOTE_VALUE", line
            elif c == "\\":
                state = "VALUE_ESCAPE"
            elif c not in WHITESPACE:
                state = "VALUE"
                value.append(c)
        elif state == "VALUE":
            if c in NEWLINE:
                state = "PRE_KEY"
                push(chomp=True)
            elif c == "\\":
                state = "VALUE_ESCAPE"
                last_value_ws = None
            else:
                if c not in WHITESPACE:
                    last_value_ws = None
                elif last_value_ws is None:
                    last_value_ws = len(value)
                value.append(c)
        elif state == "VALUE_ESCAPE":
            state = "VALUE"
            if c not in NEWLINE:  # an escaped newline is eaten entirely
                value.append(c)
        elif state == "SINGLE_QUOTE_VALUE":
            if c == "'":
                state = "PRE_VALUE"
            else:
                value.append(c)
        elif state == "DOUBLE_QUOTE_VALUE":
            if c == '"':
                state = "PRE_VALUE"
            elif c == "\\":
                state = "DOUBLE_QUOTE_VALUE_ESCAPE"
            else:
                value.append(c)
        elif state == "DOUBLE_QUOTE_VALUE_ESCAPE":
            state = "DOUBLE_QUOTE_VALUE"
            if c in SHELL_NEED_ESCAPE:
                value.append(c)
            elif c != "\n":
                value += ["\\", c]
        elif state == "COMMENT":
            if c == "\\":
                state = "COMMENT_ESCAPE"
            elif c in NEWLINE:
                state = "PRE_KEY"
        elif state == "COMMENT_ESCAPE":
            state = "PRE_KEY" if c in NEWLINE else "COMMENT"
        if c == "\n":
            line += 1

    if state == "KEY":
        raise UsageError(
            f"{path}:{rec_line}: expected KEY=VALUE, got {''.join(key).strip()!r}",
            hint="every line is KEY=VALUE, a comment starting with '#', or empty",
        )
    if state in ("SINGLE_QUOTE_VALUE", "DOUBLE_QUOTE_VALUE", "DOUBLE_QUOTE_VALUE_ESCAPE"):
        raise UsageError(
            f"{path}:{quote_line}: unterminated quote in the value of {''.join(key).strip()!r}",
            hint="close the quote; a quoted value may span lines but must end",
        )
    if state in ("PRE_VALUE", "VALUE", "VALUE_ESCAPE"):
        push(chomp=state == "VALUE")
    return records


def _comment_warnings(
    text: str, pos: int, path: Path, line: int, warnings: list[EnvWarning]
) -> None:
    end = text.find("\n", pos)
    body = text[pos:] if end < 0 else text[pos:end]
    line_start = text.rfind("\n", 0, pos) + 1
    if body.startswith(";") and not text[line_start:pos].strip(" \t"):
        warnings.append(
            EnvWarning(
                path,
                line,
                "sh",
                "';' starts a comment for systemd only; sh reports a syntax error"
                " and stops reading the file: use '#'",
            )
        )
    if body.rstrip("\r").endswith("\\"):
        warnings.append(
            EnvWarning(
                path,
                line,
                "systemd",
                "comment ends in a backslash: systemd before v254 also ignores the next line",
            )
        )


# ---- how a POSIX sh would read the same assignment -------------------------

_SPECIAL_PARAMS = "@*#?$!-"


def _expands(text: str, pos: int) -> bool:
    """True if the ``$`` at ``pos`` starts an expansion in sh (not a literal ``$``)."""
    nxt = text[pos + 1 : pos + 2]
    return bool(nxt) and (nxt.isalnum() or nxt in "_{(" + _SPECIAL_PARAMS)


# A small tokenizer: one branch per sh quoting construct, one return per reason.
def _sh_read(text: str, start: int) -> tuple[str | None, str]:  # noqa: PLR0911, PLR0912, PLR0915
    """Read one simple command from ``start`` as sh does; return (value, "") or (None, why).

    Only the subset that can be a plain assignment is interpreted: quotes,
    backslashes, line continuations, comments. Anything sh would expand or
    execute makes the value unknown, with the reason.
    """
    words: list[list[tuple[str, bool]]] = []  # chars with their "quoted" flag
    cur: list[tuple[str, bool]] | None = None
    pos = 0 + start
    n = len(text)

    def word() -> list[tuple[str, bool]]:
        nonlocal cur
        if cur is None:
            cur = []
            words.append(cur)
        return cur

    while pos < n:
        c = text[pos]
        if c == "\n":
            break
        if c in " \t":
            cur = None
            pos += 1
        elif c == "#" and cur is None:
            break
        elif c == "\\":
            nxt = text[pos + 1 : pos + 2]
            if nxt == "\n":
                pos += 2
                continue
            word().append((nxt or "\\", True))
            pos += 2
        elif c == "'":
            end = text.find("'", pos + 1)
            if end < 0:
                return None, "sh finds no closing quote"
            w = word()
            w.extend((ch, True) for ch in text[pos + 1 : end])
            pos = end + 1
        elif c == '"':
            w = word()
            pos += 1
            while True:
                if pos >= n:
                    return None, "sh finds no closing quote"
                d = text[pos]
                if d == '"':
                    pos += 1
                    break
                if d == "\\":
                    nxt = text[pos + 1 : pos + 2]
                    if nxt in SHELL_NEED_ESCAPE and nxt:
                        w.append((nxt, True))
                    elif nxt != "\n":
                        w.extend([("\\", True), (nxt, True)])
                    pos += 2
                    continue
                if d == "`" or (d == "$" and _expands(text, pos)):
                    return None, "sh expands '$' and '`' inside double quotes"
                w.append((d, True))
                pos += 1
        elif c == "`" or (c == "$" and _expands(text, pos)):
            return None, "sh expands '$' and '`' (systemd keeps them literally)"
        elif c in ";&|<>()":
            return None, f"sh reads {c!r} as an operator; quote the value"
        else:
            word().append((c, False))
            pos += 1

    if words and "".join(ch for ch, _ in words[0]) == "export" and not any(q for _, q in words[0]):
        words = words[1:]
    if len(words) != 1:
        return None, "sh splits the line at unquoted blanks and runs the rest as a command"
    chars = words[0]
    eq = next((i for i, (ch, q) in enumerate(chars) if ch == "=" and not q), -1)
    name = chars[:eq] if eq > 0 else []
    if not name or any(q for _, q in name) or not _NAME.fullmatch("".join(c for c, _ in name)):
        return None, "sh does not read this as an assignment"
    val = chars[eq + 1 :]
    for i, (ch, q) in enumerate(val):
        if ch == "~" and not q and (i == 0 or val[i - 1] == (":", False)) and _tilde(val[i + 1 :]):
            return None, "sh expands an unquoted leading '~' to a home directory"
    return "".join(ch for ch, _ in val), ""


def _tilde(rest: list[tuple[str, bool]]) -> bool:
    """Whether sh expands a ``~`` followed by ``rest`` in an assignment (POSIX 2.6.1).

    The tilde-prefix runs to the first unquoted ``/`` or ``:``; empty means
    $HOME, otherwise it is a login name, expanded only if such a user exists.
    """
    prefix: list[tuple[str, bool]] = []
    for ch, q in rest:
        if ch in "/:" and not q:
            break
        prefix.append((ch, q))
    if not prefix:
        return True
    if any(q for _, q in prefix):
        return False
    try:
        pwd.getpwnam("".join(ch for ch, _ in prefix))
    except KeyError:
        return False
    return True
