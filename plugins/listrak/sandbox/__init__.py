"""A strict local look-alike of Listrak's OAuth2 token endpoint (client credentials), Email API
v1 (contacts, profile fields, email activity reports) and SMS API v1 (sender codes, phone lists,
SMS contacts), with fault injection, for demos, tests and benchmarks.

`state` holds the in-memory account, `routes` the Email API routes (`collection` the Contact
collection, filtered by date), `sms` the SMS API's routes and contacts, `activity` and `reports`
the email activity and its reporting routes, `faults` the fault book and the `/_sandbox/`
control routes. Run it with `connector sandbox [--demo]` or `python -m plugins.listrak.sandbox`.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from datetime import UTC, datetime

from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException
from werkzeug.serving import make_server

from plugins.listrak.sandbox.accounts import account_control
from plugins.listrak.sandbox.collection import contact_collection
from plugins.listrak.sandbox.demo import demo_seed
from plugins.listrak.sandbox.faults import control_blueprint, intercept
from plugins.listrak.sandbox.reports import reports_api, seed_activity, seeding
from plugins.listrak.sandbox.routes import email_api, request_emails, route_label, token_endpoint
from plugins.listrak.sandbox.sms import DEFAULT_SENDER_CODES, DEFAULT_SMS_CLIENTS, SmsBook, sms_api
from plugins.listrak.sandbox.state import DEFAULT_CLIENTS, DEFAULT_LISTS, ApiError, Sandbox

# Plain HTTP is served on purpose: real Listrak refuses it (ERROR_UNSUPPORTED_PROTOCOL), but the
# sandbox only ever listens on loopback, where the connector accepts http:// URLs.

UNAUTHORIZED = {
    "status": 401,
    "error": "ERROR_UNAUTHORIZED",
    "message": "Authorization was denied for this request.",
}
KNOWN_HTTP_ERRORS = {
    404: ("ERROR_UNKNOWN_ROUTE", "Invalid route was supplied."),
    405: ("ERROR_UNSUPPORTED_METHOD", "The route does not support this method."),
}


def create_sandbox_app(
    clients: dict[str, str] | None = None,
    lists: dict | None = None,
    *,
    sms_clients: dict[str, str] | None = None,
    sender_codes: dict | None = None,
    token_lifetime: int = 3599,
    clock=time.time,
    demo: bool = False,
) -> Flask:
    """The sandbox app: /OAuth2/Token, /email/v1/..., /sms/v1/... and the /_sandbox/ control
    routes. `clients` are Email integrations, `sms_clients` SMS integrations: a token opens
    the routes of its own integration's API only. `demo` seeds email activity on the example
    list (`demo.demo_seed`).

    The Sandbox object (state, faults) is at app.extensions["listrak_sandbox"]; its SMS side
    (`sms.SmsBook`) at `.sms`.
    """
    sms_clients = DEFAULT_SMS_CLIENTS if sms_clients is None else sms_clients
    sms = SmsBook(DEFAULT_SENDER_CODES if sender_codes is None else sender_codes, sms_clients, clock)
    sb = Sandbox(
        {**(DEFAULT_CLIENTS if clients is None else clients), **sms_clients},
        DEFAULT_LISTS if lists is None else lists,
        token_lifetime,
        clock,
        sms=sms,
    )
    app = Flask(__name__)
    app.extensions["listrak_sandbox"] = sb
    app.register_blueprint(email_api(sb))
    app.register_blueprint(contact_collection(sb))
    app.register_blueprint(sms_api(sms))
    app.register_blueprint(reports_api(sb))
    app.register_blueprint(control_blueprint(sb))
    app.register_blueprint(account_control(sb))
    app.register_blueprint(seeding(sb))
    if demo:
        seed_activity(sb, demo_seed(datetime.fromtimestamp(clock(), UTC)))
    app.add_url_rule("/OAuth2/Token", "token", lambda: token_endpoint(sb), methods=["POST"])

    def is_api() -> bool:
        return request.path.startswith(("/email/v1/", "/sms/v1/")) or request.path == "/OAuth2/Token"

    @app.before_request
    def gate():
        """Count the request, apply latency and faults, then check the bearer token (of an
        integration of the API's own kind)."""
        if not is_api():
            return None
        target = "token" if request.path == "/OAuth2/Token" else "api"
        route = route_label()
        emails = request_emails() if target == "api" else frozenset()
        sb.count_request(route, api=target == "api", emails=emails)
        response = intercept(sb.faults, target, request.environ, sb.expire_tokens, route, emails)
        if response is not None:
            return response
        if target == "api" and request.url_rule is not None:
            scheme, _, token = request.headers.get("Authorization", "").partition(" ")
            client = sb.client_for(token.strip()) if scheme.lower() == "bearer" else None
            if client is None or (client in sms.clients) != request.path.startswith("/sms/v1/"):
                return jsonify(UNAUTHORIZED), 401
            g.listrak_client = client  # for routes that depend on the integration's permissions
        return None

    @app.after_request
    def count_status(response: Response):
        if is_api():
            sb.count_status(response.status_code)
        return response

    @app.errorhandler(ApiError)
    def api_error(exc: ApiError):
        return jsonify(status=exc.status, error=exc.error, message=exc.message), exc.status

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        error, message = KNOWN_HTTP_ERRORS.get(exc.code or 500, ("ERROR_INVALID_PARAMETER", exc.description))
        return jsonify(status=exc.code, error=error, message=message), exc.code

    @app.errorhandler(Exception)
    def unhandled(exc: Exception):
        app.logger.exception("listrak sandbox: unhandled error")
        return jsonify(
            status=500, error="ERROR_UNHANDLED_EXCEPTION", message="An unexpected error occurred."
        ), 500

    return app


def serve_in_thread(host: str = "127.0.0.1", port: int = 0, app: Flask | None = None):
    """Serve the sandbox (or `app`) from a daemon thread; returns (server, base_url)."""
    server = make_server(host, port, app or create_sandbox_app(), threaded=True)
    # Polling for shutdown every 50 ms (not 0.5 s) lets tests stop it without waiting.
    threading.Thread(target=server.serve_forever, args=(0.05,), name="listrak-sandbox", daemon=True).start()
    return server, f"http://{host}:{server.server_port}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="loopback only (plain HTTP)")
    parser.add_argument("--port", type=int, default=8900)
    parser.add_argument("--token-lifetime", type=int, default=3599)
    parser.add_argument("--lists", help="JSON file with the lists structure")
    parser.add_argument("--demo", action="store_true", help="seed email activity on the example list")
    args = parser.parse_args(argv)
    lists = None
    if args.lists:
        with open(args.lists, encoding="utf-8") as fh:
            lists = json.load(fh)
    app = create_sandbox_app(lists=lists, token_lifetime=args.token_lifetime, demo=args.demo)
    server = make_server(args.host, args.port, app, threaded=True)
    print(f"Listrak sandbox on http://{args.host}:{server.server_port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
