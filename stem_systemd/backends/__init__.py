"""Backends manage nodes: ``pidfile`` (SysV, containers) and ``systemd`` (D-Bus)."""
