"""Pure code: multi arguments and settings -> node specs (placeholders, overrides).

PLACEHOLDER: the skeleton's interface; the node-expansion work replaces the body.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class NodeSpec:
    """One node, fully expanded.

    ``command`` is the launcher argv from STEM_WORKER_COMMAND; ``args`` the
    node's own extra arguments (shared options, per-node overrides, everything
    after ``--``). ``logfile`` keeps ``%I`` for the launcher to expand per
    process; ``pidfile`` is fully expanded.
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
        return Path(self.logfile.replace("%I", ""))
