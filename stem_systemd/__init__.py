"""stem-systemd: the daemonization layer for Stem background-job workers."""

__version__ = "0.1.0"
