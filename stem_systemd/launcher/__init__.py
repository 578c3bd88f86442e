"""The bundled launchers: ``stem-worker`` and ``stem-scheduler``."""
