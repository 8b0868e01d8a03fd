"""The example plugin of docs/plugins.md on real processes, as the docs walk through it: its
config files as they are, its look-alike (`connector example-sandbox`), gunicorn and a worker;
the feed's events reach the webhook, each once."""

import pytest

from connector.testing import ROOT, Stack, wait_until
from plugins.example_webhook.testing import Lookalike

pytestmark = pytest.mark.e2e


def test_the_feeds_events_reach_the_webhook_once_each(tmp_path):
    lookalike = Lookalike()
    stack = Stack(
        tmp_path / "stack",
        example_config=ROOT / "docs" / "example_webhook" / "config",
        parts={"example_webhook": lookalike},
    )
    try:
        stack.start(workers=1)
        lookalike.seed(*({"id": f"f-{i}", "type": "signup", "email": f"p{i}@example.com"} for i in range(5)))
        received = wait_until(lambda: len(lookalike.received()) >= 5 and lookalike.received(), timeout=30)
        assert sorted(r["id"] for r in received) == [f"f-{i}" for i in range(5)]
        assert received[0]["data"]["type"] == "signup"
        # The look-alike has them before the worker records what it answered.
        assert wait_until(lambda: stack.delivery_states() == {"delivered": 5}, timeout=30)
    finally:
        stack.stop()
