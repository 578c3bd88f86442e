"""Errors that carry their exit code; only the CLI entry point prints and exits.

Exit codes follow the LSB init-script conventions where they apply
(LSB 5.0 core, "Init Script Actions"): 2 usage, 4 insufficient privilege,
5 not installed; 1 is a generic failure.
"""

from __future__ import annotations


class StemError(Exception):
    """A failure the user can act on: one line of message, optionally a hint."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(StemError):
    """Bad input: an unknown placeholder, a selector matching no node, ..."""

    exit_code = 2


class PrivilegeError(StemError):
    """Missing privilege: permission denied on a path or by polkit."""

    exit_code = 4


class NotInstalledError(StemError):
    """A required piece (unit template, command) is not installed."""

    exit_code = 5
