"""The example plugin's look-alike (`connector example-sandbox`): the feed the source reads and
the endpoint the destination posts to, in one small Flask app, with `/_sandbox/` routes a test
steers it through (seed the feed, read what was posted)."""

from __future__ import annotations

import threading

from flask import Flask, jsonify, request

PAGE = 2  # events per feed page, so a poll reads several pages


def create_sandbox_app(token: str) -> Flask:
    app = Flask("example_sandbox")
    lock = threading.Lock()
    feed: list[dict] = []
    received: list[dict] = []

    def authorised() -> bool:
        return request.headers.get("Authorization") == f"Bearer {token}"

    @app.get("/events")
    def events():
        if not authorised():
            return jsonify(error="unauthorized"), 401
        after = int(request.args.get("after", "0"))
        with lock:
            page = feed[after : after + PAGE]
        return jsonify(events=page, next=after + len(page))

    @app.post("/hooks")
    def hooks():
        if not authorised():
            return jsonify(error="unauthorized"), 401
        with lock:
            received.append(request.get_json())
        return jsonify(received=True), 202

    @app.post("/_sandbox/feed")
    def seed():
        with lock:
            feed.extend(request.get_json()["events"])
        return jsonify(events=len(feed))

    @app.get("/_sandbox/received")
    def posted():
        with lock:
            return jsonify(received=list(received))

    @app.get("/_sandbox/state")
    def state():
        with lock:
            return jsonify(feed=len(feed), received=len(received))

    return app
