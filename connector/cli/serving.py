"""Serving a WSGI app from a command (a plugin's sandbox): one gunicorn process, so in-memory
state is shared, with many threads and HTTP keep-alive like a real API, so benchmarks measure
the connector and not the server."""

from __future__ import annotations

from gunicorn.app.base import BaseApplication


class _Server(BaseApplication):
    def __init__(self, app, options: dict):
        self.application = app
        self.options = options
        super().__init__()

    def load_config(self):
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        return self.application


def serve(app, host: str, port: int, threads: int, ready_message: str) -> None:
    def ready(_server):
        print(ready_message, flush=True)

    _Server(
        app,
        {
            "bind": f"{host}:{port}",
            "workers": 1,
            "worker_class": "gthread",
            "threads": threads,
            "keepalive": 75,
            "timeout": 0,
            "graceful_timeout": 2,
            "loglevel": "warning",
            "when_ready": ready,
            "accesslog": None,
        },
    ).run()
