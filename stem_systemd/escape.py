"""Node names <-> systemd unit instance names, exactly as ``systemd-escape`` does it.

The rules are systemd's ``unit_name_escape()``/``unit_name_unescape()``
(src/basic/unit-name.c, documented in systemd-escape(1) and systemd.unit(5)
"String Escaping for Inclusion in Unit Names"): ``/`` becomes ``-``; every
byte outside ``[A-Za-z0-9:_.]`` (and ``-`` and ``\\`` themselves) becomes
``\\xHH`` in lowercase hex, per UTF-8 byte; a leading ``.`` is escaped too so
no unit name starts with a dot. ``tests/test_escape.py`` checks a corpus byte
for byte against the real ``systemd-escape``.
"""

from __future__ import annotations

import string

from stem_systemd.errors import UsageError

# systemd's UNIT_NAME_MAX is 256 including the terminating NUL (unit-name.h).
UNIT_NAME_MAX = 255
DEFAULT_TEMPLATE = "stem-worker"

_VALID = frozenset((string.ascii_letters + string.digits + ":_.").encode())


def unit_instance(node: str) -> str:
    """Escape ``node`` for use as a unit instance name (what ``systemd-escape NODE`` prints)."""
    raw = node.encode("utf-8", "surrogateescape")
    out: list[str] = []
    for pos, byte in enumerate(raw):
        if byte == ord("/"):
            out.append("-")
        elif byte in _VALID and not (pos == 0 and byte == ord(".")):
            out.append(chr(byte))
        else:
            out.append(f"\\x{byte:02x}")
    return "".join(out)


def unescape_instance(instance: str) -> str:
    """Reverse :func:`unit_instance` (what ``systemd-escape --unescape`` prints).

    As in systemd, ``-`` turns back into ``/`` and ``\\xHH`` into its byte.
    """
    out = bytearray()
    pos = 0
    while pos < len(instance):
        char = instance[pos]
        if char == "-":
            out += b"/"
        elif char == "\\":
            hexpart = instance[pos + 2 : pos + 4]
            if instance[pos + 1 : pos + 2] != "x" or len(hexpart) != 2 or not _is_hex(hexpart):
                raise UsageError(f"invalid escape in unit instance name {instance!r}")
            out.append(int(hexpart, 16))
            pos += 3
        else:
            out += char.encode("utf-8")
        pos += 1
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(
            f"unit instance name {instance!r} does not unescape to UTF-8 text"
        ) from None


def unit_name(node: str, template: str = DEFAULT_TEMPLATE) -> str:
    """The unit for ``node``: ``stem-worker@<escaped node>.service``; refuses invalid names."""
    check_unit_name(node, template)
    return _unit_name(node, template)


def check_unit_name(node: str, template: str = DEFAULT_TEMPLATE) -> None:
    """Raise UsageError unless ``node`` makes a valid instance of ``template@.service``.

    systemd refuses empty instances and names over UNIT_NAME_MAX bytes; ``/`` would
    silently turn into ``-`` (and back into ``/`` on the way out), and control
    characters have no business in unit names, logs or pidfile names.
    """
    if not node:
        raise UsageError("empty node name", hint="give every node a name, e.g. alpha")
    if "/" in node:
        raise UsageError(
            f"node name {node!r} contains '/'",
            hint="node names become file and unit names; use '-' or '_' instead",
        )
    if any(ord(c) < 0x20 or ord(c) == 0x7F or 0x80 <= ord(c) < 0xA0 for c in node):
        raise UsageError(
            f"node name {node!r} contains a control character",
            hint="use printable characters only",
        )
    try:
        node.encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError(f"node name {node!r} is not valid UTF-8") from None
    name = _unit_name(node, template)
    if len(name) > UNIT_NAME_MAX:
        raise UsageError(
            f"node name {node!r} is too long: its unit name would be {len(name)} bytes"
            f" (systemd allows {UNIT_NAME_MAX})",
            hint="use a shorter name; each byte outside [A-Za-z0-9:_.] takes four once escaped",
        )


def _unit_name(node: str, template: str) -> str:
    return f"{template}@{unit_instance(node)}.service"


def _is_hex(text: str) -> bool:
    return all(c in string.hexdigits for c in text)
