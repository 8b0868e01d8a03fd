"""`connector sandbox`: serve a destination plugin's local look-alike of its partner API.

It runs in one gunicorn process (the sandbox keeps its state in memory) with many threads and
HTTP keep-alive, like the real API, so benchmarks measure the connector and not the server."""

from __future__ import annotations

import sys

from gunicorn.app.base import BaseApplication

from connector.registry import load_registry


class _SandboxServer(BaseApplication):
    def __init__(self, app, options: dict):
        self.application = app
        self.options = options
        super().__init__()

    def load_config(self):
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        return self.application


def register(subparsers) -> None:
    parser = subparsers.add_parser("sandbox", help="run a partner's local sandbox (default listrak)")
    parser.add_argument("plugin", nargs="?", default="listrak")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8900)
    parser.add_argument("--threads", type=int, default=64,
                        help="concurrent requests (hanging faults hold one each)")
    parser.set_defaults(func=run)


def run(args) -> int:
    destination = load_registry().destinations.get(args.plugin)
    app = destination.sandbox_app() if destination else None
    if app is None:
        print(f"no sandbox for destination plugin {args.plugin!r}", file=sys.stderr)
        return 2

    def ready(_server):
        print(f"{args.plugin} sandbox on http://{args.host}:{args.port}", flush=True)

    _SandboxServer(app, {
        "bind": f"{args.host}:{args.port}", "workers": 1, "worker_class": "gthread",
        "threads": args.threads, "keepalive": 75, "timeout": 0, "graceful_timeout": 2,
        "loglevel": "warning", "when_ready": ready, "accesslog": None,
    }).run()
    return 0
