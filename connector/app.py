"""The Flask application factory: `create_app()` builds the runtime once and mounts the
blueprints. Bad configuration, or a store whose schema is behind the code, raises here, so
gunicorn refuses to boot with the message."""

from __future__ import annotations

import logging
import os

from flask import Flask, jsonify
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from connector import logs
from connector.config import ConfigError
from connector.runtime import Runtime
from connector.web import access, admin, health, live, openapi, webhooks
from connector.web.refusals import RefusalLog

MAX_BODY_BYTES = 1024 * 1024
TRUSTED_PROXIES_ENV = "CONNECTOR_TRUSTED_PROXIES"
log = logging.getLogger("connector.app")


def create_app(test_config: dict | None = None, runtime: Runtime | None = None) -> Flask:
    test_config = test_config or {}
    app = Flask(__name__, static_folder=None)  # the Live View serves its own files; no /static route
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.config.update(test_config)
    if runtime is None:
        runtime = Runtime.build(test_config.get("CONFIG_DIR"), test_config.get("DATABASE_URL"))
    app.extensions["connector"] = runtime
    app.extensions["refusals"] = RefusalLog(runtime.engine, runtime.redactor)
    logs.configure(runtime.config.settings["logging"], runtime.redactor)

    trust_proxies(app)
    access.configure(app)
    for blueprint in (webhooks.bp, health.bp, admin.api, live.bp, openapi.bp):
        app.register_blueprint(blueprint)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        return jsonify(error=exc.name.lower(), message=exc.description), exc.code

    @app.errorhandler(UnicodeDecodeError)
    def undecodable(exc: UnicodeDecodeError):
        # Raw bytes that are not UTF-8 in a query string or form: the client's mistake.
        return jsonify(error="bad request", message="the request is not valid UTF-8"), 400

    @app.errorhandler(OperationalError)
    def store_busy(exc: OperationalError):
        log.error("store unavailable: %s", type(exc.orig).__name__ if exc.orig else exc)
        response = jsonify(error="store unavailable", message="try again shortly")
        response.headers["Retry-After"] = "5"
        return response, 503

    return app


def trust_proxies(app: Flask) -> None:
    """Behind N reverse proxies (CONNECTOR_TRUSTED_PROXIES=N), the client's address and scheme
    are the ones the nearest N proxies passed on in X-Forwarded-For / -Proto: the address the
    admin sign-in limit counts by. Unset or 0: the address that connected (no header trusted)."""
    value = os.environ.get(TRUSTED_PROXIES_ENV, "").strip() or "0"
    if not (value.isascii() and value.isdigit()) or int(value) > 10:
        raise ConfigError([f"{TRUSTED_PROXIES_ENV} must be a number of proxies from 0 to 10, not {value!r}"])
    if int(value):
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=int(value), x_proto=int(value))  # type: ignore[method-assign]
