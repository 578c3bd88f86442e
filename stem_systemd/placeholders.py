"""``%`` placeholders in the command, pidfile and logfile templates.

The table (ours; celery's ``%n``/``%h``/``%i``/``%I`` minus its ``%N``/``%d``):

    %n  node name           %h  host name        %i  1-based node index
    %I  per-process suffix: "" for a node's main process, "-k" for pool process k
    %%  a literal percent

Anything else after ``%`` (or a trailing lone ``%``) is a usage error: a typo
must not turn into a file literally named ``%x.pid``.

``%I`` can only be resolved by the launcher, which knows its own processes.
A string that still carries ``%I`` is therefore a *launcher template*: its
literal percents stay escaped as ``%%`` so that ``%%I`` in the operator's
template can never turn into a live ``%I``; the launcher expands it with
:func:`expand_suffix` in one pass. Everything else is expanded fully here.
"""

from __future__ import annotations

from collections.abc import Mapping

from stem_systemd.errors import UsageError

KNOWN = "nhiI%"
HINT = "placeholders: %n node, %h host, %i node index, %I process suffix, %% a literal percent"


def _scan(template: str, what: str) -> list[tuple[str, str]]:
    """Split ``template`` into ("lit", text) and ("ph", letter) parts; refuse unknown ones."""
    parts: list[tuple[str, str]] = []
    pos = 0
    while pos < len(template):
        pct = template.find("%", pos)
        if pct < 0:
            parts.append(("lit", template[pos:]))
            break
        if pct > pos:
            parts.append(("lit", template[pos:pct]))
        letter = template[pct + 1 : pct + 2]
        if not letter:
            raise UsageError(f"the {what} template {template!r} ends in a lone '%'", hint=HINT)
        if letter not in KNOWN:
            raise UsageError(
                f"unknown placeholder %{letter} in the {what} template {template!r}", hint=HINT
            )
        parts.append(("ph", letter))
        pos = pct + 2
    return parts


def check(template: str, what: str) -> None:
    """Raise UsageError if ``template`` holds an unknown placeholder (``what`` names it)."""
    _scan(template, what)


def has_suffix(template: str, what: str = "command") -> bool:
    """True if ``template`` holds a live ``%I`` (not the literal ``%%I``)."""
    return ("ph", "I") in _scan(template, what)


def expand(
    template: str, what: str, values: Mapping[str, str], *, launcher: bool | None = None
) -> str:
    """Expand ``%n``/``%h``/``%i``/``%%`` from ``values`` (keys ``n``, ``h``, ``i``).

    ``launcher=True`` keeps ``%I`` and escapes every literal percent as ``%%``
    (a launcher template); ``False`` expands fully with ``%I`` as the main
    process's empty suffix; ``None`` chooses ``True`` exactly when the template
    holds a live ``%I``.
    """
    parts = _scan(template, what)
    if launcher is None:
        launcher = ("ph", "I") in parts
    out: list[str] = []
    for kind, text in parts:
        if kind == "lit":
            out.append(_lit(text, launcher))
        elif text == "%":
            out.append("%%" if launcher else "%")
        elif text == "I":
            out.append("%I" if launcher else "")
        else:
            out.append(_lit(values[text], launcher))
    return "".join(out)


def expand_suffix(template: str, suffix: str) -> str:
    """The launcher's half: expand ``%I`` to ``suffix`` and ``%%`` to ``%`` in one pass.

    ``suffix`` is ``""`` for the main process and ``"-k"`` for pool process k.
    Any other placeholder is a usage error (the template was not made by
    :func:`expand` with ``launcher=True``).
    """
    out: list[str] = []
    for kind, text in _scan(template, "logfile"):
        if kind == "lit":
            out.append(text)
        elif text == "%":
            out.append("%")
        elif text == "I":
            out.append(suffix)
        else:
            raise UsageError(
                f"placeholder %{text} left in the logfile template {template!r}",
                hint="the launcher expands only %I and %%; stem worker multi expands the rest",
            )
    return "".join(out)


def escape(text: str) -> str:
    """Quote literal text for inclusion in a template (``%`` -> ``%%``)."""
    return text.replace("%", "%%")


def _lit(text: str, launcher: bool) -> str:
    return escape(text) if launcher else text
