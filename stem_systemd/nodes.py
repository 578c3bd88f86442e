"""Pure code: multi arguments and settings -> node specs (names, overrides, placeholders).

Behaviour reference: celery's ``celery/apps/multi.py`` (``MultiParser``,
``NamespacedOptionParser``); the rules below are ours.

Arguments: ``[NAMES... | N] [WORKER-OPTIONS...] [-- ARGS...]``.

- Names come first; the first token starting with ``-`` begins the worker
  options. With no names, STEM_WORKER_NODES's words are used.
- A single number ``N`` means ``N`` nodes named ``w1`` .. ``wN``. celery names
  them ``celery1``..; we keep the short ``w`` so a node stays easy to type, and
  never generate bare numbers: ``stop 2`` would mean "two nodes" again.
  For the same reason a node name may not look like a selector index or range
  (``2``, ``1-3``), so every selector below has exactly one reading.
- Worker options are celery-style. ``-c 4`` / ``--opt=value`` / ``--opt value``
  go to every node. ``-c:SEL 4`` or ``--opt:SEL=value`` go to the nodes that
  SEL selects: a 1-based index (``2``), a range (``1-3``), a node name
  (``alpha``), or a comma list of those (``1,3,alpha``). A selector (or any item
  of it) that matches no node is a usage error.
- Precedence, one rule: for each option, a node gets the value of the *last*
  selector override that matches it; without one, the last plain value. The
  option keeps the place where it first appeared. (So ``-c 2 -c:1 8`` and
  ``-c:1 8 -c 2`` both give node 1 ``-c 8`` and the others ``-c 2``; ``-c 2 -c 3``
  gives everyone ``-c 3``.) Options are matched by spelling: ``-c`` and
  ``--concurrency`` are different options.
- Tokens after ``--`` go, untouched, to every node after its options.

Placeholders (%n %h %i %I %%, see :mod:`stem_systemd.placeholders`) are
expanded in the command, pidfile and logfile templates, not in worker options
or ``--`` arguments, which reach the launcher verbatim.

Node names: anything printable that also makes a valid systemd unit instance,
except names that are empty, start with ``-``, contain ``/`` or ``%``, or look
like a selector number. ``eu-west``, ``my worker``, ``köln``, ``w1@host`` are fine.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from stem_systemd import placeholders
from stem_systemd.config import Settings
from stem_systemd.errors import UsageError
from stem_systemd.escape import check_unit_name

COUNT_PREFIX = "w"
MAX_COUNT = 1000
_NUMBERISH = re.compile(r"\d+(-\d+)?")
NAME_MAX = 255  # bytes in one path component (Linux)
PIDFILE_EXTRA = 13  # the atomic write's temp name: ".<name>.<pid>.tmp"


@dataclass(frozen=True)
class NodeSpec:
    """One node, fully expanded.

    ``command`` is the launcher argv from STEM_WORKER_COMMAND; ``args`` the
    node's own extra arguments (shared options, per-node overrides, everything
    after ``--``). ``pidfile`` is fully expanded. ``logfile`` is a *launcher
    template*: ``%I`` is kept for the launcher to expand per process and literal
    percents stay escaped as ``%%`` (expand it with
    :func:`stem_systemd.placeholders.expand_suffix`, never by hand). ``env`` is
    what the node's environment gets on top of the caller's: STEM_WORKER_NODE,
    STEM_WORKER_INDEX, STEM_WORKER_PIDFILE, STEM_WORKER_LOGFILE and the env file's
    variables not overridden by the process environment (NOTIFY_SOCKET is the
    starter's to add).
    """

    name: str
    index: int  # 1-based
    command: tuple[str, ...]
    args: tuple[str, ...]
    pidfile: Path
    logfile: str
    env: Mapping[str, str] = field(default_factory=dict)

    @property
    def argv(self) -> tuple[str, ...]:
        return self.command + self.args

    @property
    def main_logfile(self) -> Path:
        """The node's main-process logfile (``%I`` expanded to the empty suffix)."""
        return Path(placeholders.expand_suffix(self.logfile, ""))


@dataclass(frozen=True)
class _Option:
    key: str  # "-c", "--loglevel"
    selector: str | None
    value: str | None
    joined: bool  # rendered as --key=value (one token) rather than two tokens

    def render(self) -> tuple[str, ...]:
        if self.value is None:
            return (self.key,)
        if self.joined:
            return (f"{self.key}={self.value}",)
        return (self.key, self.value)


def expand(
    args: Sequence[str],
    passthrough: Sequence[str],
    settings: Settings,
    host: str,
    *,
    allow_empty: bool = False,
) -> list[NodeSpec]:
    """Turn a verb's arguments into node specs (see the module docstring for the rules).

    With no names here and none in STEM_WORKER_NODES this is a usage error,
    unless ``allow_empty`` (e.g. ``status`` listing what systemd knows), which
    returns ``[]``.
    """
    args = list(args)
    passthrough = list(passthrough)
    if "--" in args:  # defensive: the caller normally splits at "--" itself
        cut = args.index("--")
        args, passthrough = args[:cut], args[cut + 1 :] + passthrough
    split = next((i for i, a in enumerate(args) if a.startswith("-") and a != "-"), len(args))
    if args[:split]:
        names = node_names(args[:split])
    else:
        try:
            names = node_names(settings.nodes)
        except UsageError as exc:
            source = settings.sources.get("STEM_WORKER_NODES", "STEM_WORKER_NODES")
            raise UsageError(f"{exc.message} (from {source})", hint=exc.hint) from None
    if not names:
        if allow_empty:
            return []
        raise UsageError(
            "no nodes given",
            hint="name them (stem worker multi start alpha beta), give a count (start 3)"
            " or set STEM_WORKER_NODES",
        )
    options = _parse_options(args[split:])
    per_node = _assign(options, names)
    return [
        _spec(name, index, per_node[name] + tuple(passthrough), settings, host)
        for index, name in enumerate(names, start=1)
    ]


def node_spec(
    name: str, settings: Settings, host: str, *, index: int = 1, args: Sequence[str] = ()
) -> NodeSpec:
    """The spec of one node known by name (e.g. a unit's instance), ``args`` taken verbatim.

    For ``stem worker exec NODE``: unlike :func:`expand`, a lone number is never
    read as a count here; it is refused like everywhere else.
    """
    check_node_name(name)
    return _spec(name, index, tuple(args), settings, host)


def _spec(name: str, index: int, args: tuple[str, ...], settings: Settings, host: str) -> NodeSpec:
    values = {"n": name, "h": host, "i": str(index)}
    command = tuple(placeholders.expand(t, "command", values) for t in settings.command)
    pidfile = Path(placeholders.expand(settings.pidfile, "pidfile", values, launcher=False))
    _check_pidfile_length(name, pidfile)
    logfile = placeholders.expand(settings.logfile, "logfile", values, launcher=True)
    env = dict(settings.file_env)
    env.update(
        STEM_WORKER_NODE=name,
        STEM_WORKER_INDEX=str(index),
        STEM_WORKER_PIDFILE=str(pidfile),
        STEM_WORKER_LOGFILE=logfile,
    )
    return NodeSpec(name, index, command, args, pidfile, logfile, env)


def _check_pidfile_length(name: str, pidfile: Path) -> None:
    """Every component fits NAME_MAX, the file's own name with room for its temp and lock names."""
    for part in pidfile.parts:
        limit = NAME_MAX if part != pidfile.name else NAME_MAX - PIDFILE_EXTRA
        if len(part.encode()) > limit:
            raise UsageError(
                f"node {name}: a pidfile path component is {len(part.encode())} bytes long"
                f" (at most {limit} here)",
                hint="use a shorter node name or a shorter --pidfile / STEM_PIDFILE template",
            )


def node_names(tokens: Sequence[str]) -> list[str]:
    """Names from ``tokens``: a lone count ``N`` -> ``w1``..``wN``; else the names, checked."""
    if len(tokens) == 1 and tokens[0].isdigit():
        count = int(tokens[0])
        if not 1 <= count <= MAX_COUNT:
            raise UsageError(
                f"node count must be between 1 and {MAX_COUNT}, got {tokens[0]}",
                hint="give a count like 3 (nodes w1 w2 w3) or node names",
            )
        return [f"{COUNT_PREFIX}{i}" for i in range(1, count + 1)]
    seen: set[str] = set()
    for name in tokens:
        check_node_name(name)
        if name in seen:
            raise UsageError(f"node {name!r} is named twice", hint="each node name may appear once")
        seen.add(name)
    return list(tokens)


def check_node_name(name: str) -> None:
    """Raise UsageError (naming the node and the fix) unless ``name`` is usable everywhere.

    Pidfiles, logfiles and systemd units are named after nodes, so the rules are
    the union of theirs (see :func:`stem_systemd.escape.check_unit_name`).
    """
    if name.startswith("-"):
        raise UsageError(
            f"node name {name!r} starts with '-'",
            hint="node names go before worker options; pick a name starting with a letter",
        )
    if name in {".", ".."}:
        raise UsageError(
            f"node name {name!r} is a directory name",
            hint="a template such as /run/stem/%n/pid would escape its directory; pick a word",
        )
    if "%" in name:
        raise UsageError(
            f"node name {name!r} contains '%'",
            hint="'%' starts a placeholder in pidfile and logfile templates; leave it out",
        )
    if _NUMBERISH.fullmatch(name):
        raise UsageError(
            f"node name {name!r} looks like a node index or range",
            hint=f"a lone number is a node count; name nodes like {COUNT_PREFIX}{name}",
        )
    check_unit_name(name)


def _parse_options(tokens: Sequence[str]) -> list[_Option]:
    options: list[_Option] = []
    pos = 0
    while pos < len(tokens):
        arg = tokens[pos]
        if not arg.startswith("-") or arg == "-":
            raise UsageError(
                f"unexpected argument {arg!r} after the worker options",
                hint="node names go before worker options; each option takes at most one value"
                " (quote values with spaces)",
            )
        joined = False
        value: str | None = None
        head = arg
        if arg.startswith("--") and "=" in arg:
            head, value = arg.split("=", 1)
            joined = True
        elif pos + 1 < len(tokens) and not tokens[pos + 1].startswith("-"):
            value = tokens[pos + 1]
            pos += 1
        key, sep, selector = head.partition(":")
        if sep and not selector:
            raise UsageError(
                f"empty node selector in {arg!r}",
                hint="write -c:2 4, -Q:alpha images or --opt:1-3=value",
            )
        options.append(_Option(key, selector if sep else None, value, joined))
        pos += 1
    return options


def _assign(options: Sequence[_Option], names: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """Each node's option tokens, by the precedence rule in the module docstring."""
    order: list[str] = []
    for opt in options:
        if opt.key not in order:
            order.append(opt.key)
    chosen: dict[str, dict[str, _Option]] = {name: {} for name in names}
    for opt in options:  # plain values first, later beats earlier
        if opt.selector is None:
            for name in names:
                chosen[name][opt.key] = opt
    for opt in options:  # then overrides, later beats earlier
        if opt.selector is not None:
            for name in _select(opt.selector, names, opt):
                chosen[name][opt.key] = opt
    return {
        name: tuple(
            tok for key in order if key in chosen[name] for tok in chosen[name][key].render()
        )
        for name in names
    }


def _select(selector: str, names: Sequence[str], opt: _Option) -> list[str]:
    picked: list[str] = []
    for item in selector.split(","):
        match = _NUMBERISH.fullmatch(item)
        if match:
            first, _, last = item.partition("-")
            lo, hi = int(first), int(last or first)
            if lo < 1 or hi < lo or hi > len(names):
                raise UsageError(
                    f"selector {item!r} in {opt.key}:{selector} is out of range"
                    f" (there are {len(names)} nodes, numbered from 1)",
                    hint="use a 1-based index, a range like 1-3 or a node name",
                )
            picked.extend(names[lo - 1 : hi])
        elif item in names:
            picked.append(item)
        else:
            raise UsageError(
                f"selector {item!r} in {opt.key}:{selector} matches no node",
                hint="nodes: " + " ".join(names),
            )
    return picked
