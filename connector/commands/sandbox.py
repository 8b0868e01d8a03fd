"""`connector sandbox`: serve a destination plugin's local look-alike of its partner API."""

from __future__ import annotations

import sys

from werkzeug.serving import make_server

from connector.registry import load_registry


def register(subparsers) -> None:
    parser = subparsers.add_parser("sandbox", help="run a partner's local sandbox (default listrak)")
    parser.add_argument("plugin", nargs="?", default="listrak")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8900)
    parser.set_defaults(func=run)


def run(args) -> int:
    destination = load_registry().destinations.get(args.plugin)
    app = destination.sandbox_app() if destination else None
    if app is None:
        print(f"no sandbox for destination plugin {args.plugin!r}", file=sys.stderr)
        return 2
    server = make_server(args.host, args.port, app, threaded=True)
    print(f"{args.plugin} sandbox on http://{args.host}:{server.server_port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0
