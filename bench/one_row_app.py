"""A second yardstick for intake: the bare endpoint plus the least a durable webhook can do:
check the HMAC over the raw body, parse the JSON, and commit one row per event to SQLite (WAL,
synchronous=NORMAL, like the connector's store) before answering 202. Where the connector
lands between this and the bare endpoint says how much of its time is the store's rows and
indexes, and how much everything else. `ONE_ROW_DB` is the database file, `ONE_ROW_SECRET`
the HMAC secret."""

import hashlib
import hmac
import json
import os
import sqlite3

from flask import Flask, jsonify, request

app = Flask(__name__)
SECRET = os.environ["ONE_ROW_SECRET"].encode()
_connection = None


def connection() -> sqlite3.Connection:
    global _connection
    if _connection is None:  # one per gunicorn worker, opened after the fork
        _connection = sqlite3.connect(os.environ["ONE_ROW_DB"], isolation_level=None, timeout=30)
        _connection.execute("PRAGMA journal_mode=WAL")
        _connection.execute("PRAGMA synchronous=NORMAL")
        _connection.execute(
            "CREATE TABLE IF NOT EXISTS events (source TEXT, id TEXT, body TEXT, PRIMARY KEY (source, id))"
        )
    return _connection


@app.post("/webhooks/<source_id>")
def receive(source_id):
    body = request.get_data()
    expected = "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(request.headers.get("X-Extole-Signature", ""), expected):
        return jsonify(error="unauthorized"), 401
    event = json.loads(body)
    db = connection()
    db.execute("BEGIN IMMEDIATE")
    stored = db.execute(
        "INSERT OR IGNORE INTO events VALUES (?, ?, ?)", (source_id, str(event["event_id"]), body.decode())
    ).rowcount
    db.execute("COMMIT")
    return jsonify(accepted=stored, duplicates=1 - stored), 202
