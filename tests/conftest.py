"""Shared fixtures: a real notify socket (filesystem or abstract) recording datagrams."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from stem_systemd.notify import NotifyListener


@pytest.fixture(params=["filesystem", "abstract"])
def notify_listener(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[NotifyListener]:
    """A bound NotifyListener, once on a filesystem path and once on an abstract name."""
    if request.param == "filesystem":
        listener = NotifyListener(tmp_path_factory.mktemp("notify") / "notify.sock")
    else:
        listener = NotifyListener()
    with listener:
        yield listener
