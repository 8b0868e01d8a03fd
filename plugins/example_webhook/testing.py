"""Test helpers for the example plugin: its look-alike as a part of a connector.testing stack
(`Lookalike`), with the env its config files read and ways to seed the feed and read what the
destination posted."""

from __future__ import annotations

import sys

import requests

from connector.testing import Part, Sidecar, free_port

TOKEN = "example-token-0123456789"


class Lookalike(Part):
    def __init__(self, port: int | None = None):
        port = port or free_port()
        self.url = f"http://127.0.0.1:{port}"
        argv = [
            sys.executable,
            "-m",
            "connector.cli",
            "example-sandbox",
            "--port",
            str(port),
            "--token",
            TOKEN,
        ]
        super().__init__(
            sidecars=[Sidecar("example-sandbox", argv, f"{self.url}/_sandbox/state")],
            env={"EXAMPLE_API_URL": self.url, "EXAMPLE_TOKEN": TOKEN},
        )

    def seed(self, *events: dict) -> None:
        requests.post(
            f"{self.url}/_sandbox/feed", json={"events": list(events)}, timeout=10
        ).raise_for_status()

    def received(self) -> list[dict]:
        return requests.get(f"{self.url}/_sandbox/received", timeout=10).json()["received"]
