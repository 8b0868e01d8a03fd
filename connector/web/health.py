"""/healthz (alive), /readyz (store reachable, config loaded), /metrics (Prometheus)."""

from __future__ import annotations

import os

from flask import Blueprint, Response, current_app, jsonify
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from sqlalchemy import text

from connector.metrics import StoreCollector
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
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
        output = generate_latest(registry)
    else:
        output = generate_latest(REGISTRY)
    store_registry = CollectorRegistry()
    store_registry.register(StoreCollector(runtime.engine))
    output += generate_latest(store_registry)
    return Response(output, mimetype=CONTENT_TYPE_LATEST)
