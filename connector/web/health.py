"""/healthz (alive), /readyz (store reachable, config loaded), /metrics (Prometheus; with
`metrics.token` set, only for `Authorization: Bearer <token>`)."""

from __future__ import annotations

import hmac
import os

from flask import Blueprint, Response, current_app, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from sqlalchemy import text

from connector.metrics import RefusalCollector, StoreCollector
from connector.outbox.engine import reading

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    runtime = current_app.extensions["connector"]
    try:
        with reading(runtime.engine) as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        return jsonify(status="unavailable", store=type(exc).__name__), 503
    return jsonify(
        status="ready", sources=sorted(runtime.config.all_sources), partners=sorted(runtime.config.partners)
    )


@bp.get("/metrics")
def metrics():
    runtime = current_app.extensions["connector"]
    token = runtime.config.settings["metrics"]["token"]
    if token is not None and not _bearer(token):
        response = jsonify(error="unauthorized", message="missing or wrong metrics token")
        response.headers["WWW-Authenticate"] = 'Bearer realm="connector metrics"'
        return response, 401
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
        output = generate_latest(registry)
    else:
        output = generate_latest(REGISTRY)
    output += generate_latest(_store_registry(runtime))
    refusals = CollectorRegistry()
    refusals.register(RefusalCollector(current_app.extensions["refusals"].counts))
    output += generate_latest(refusals)
    return Response(output, mimetype=CONTENT_TYPE_LATEST)


def _bearer(token: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def _store_registry(runtime) -> CollectorRegistry:
    """One store collector per app (so its cache lives as long as the process serves)."""
    registry = current_app.extensions.get("connector.store_metrics")
    if registry is None:
        registry = CollectorRegistry()
        registry.register(StoreCollector(runtime.engine, tuple(sorted(runtime.config.partners))))
        registry = current_app.extensions.setdefault("connector.store_metrics", registry)
    return registry
