"""The yardstick for intake speed: a bare Flask endpoint that answers 202 and does nothing."""

from flask import Flask, jsonify

app = Flask(__name__)


@app.post("/webhooks/<source_id>")
def receive(source_id):
    return jsonify(accepted=1, duplicates=0), 202
