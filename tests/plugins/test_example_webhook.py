"""The example plugin of docs/plugins.md, in-process: its config files load as the docs show
them, the feed is read page by page from its cursor, each event becomes one POST of exactly
the documented body, and a wrong key kind is named at start-up."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime

import pytest

from connector.config import ConfigError, load_config
from connector.contract import InboundEvent, OutboundRequest, Partner, PartnerKeys, Poll, PollFailed
from connector.http import HttpClient
from connector.registry import load_registry
from connector.testing import ROOT
from plugins.example_webhook.destination import PostEvent, WebhookDestination
from plugins.example_webhook.feed import FeedSource

API = "https://feed.example.test"
CONFIG = ROOT / "docs" / "example_webhook" / "config"
ENV = {"EXAMPLE_API_URL": API, "EXAMPLE_TOKEN": "example-token-0123456789"}
EVENT = InboundEvent(
    "f-1", "signup", datetime(2026, 11, 22, 5, tzinfo=UTC), "production", "jane@example.com", {"id": "f-1"}
)


@pytest.fixture
def config(tmp_path):
    shutil.copytree(CONFIG, tmp_path / "config")
    return tmp_path / "config"


def test_the_documented_config_loads_with_both_parts_of_the_plugin(config):
    loaded = load_config(config, load_registry(), env=ENV)
    partner = loaded.partners["example-hooks"]
    assert (partner.plugin, partner.sources, partner.settings["url"]) == (
        "example_webhook",
        ("example-feed",),
        f"{API}/hooks",
    )
    assert loaded.pull_sources["example-feed"]["api_url"] == API


def test_an_event_becomes_one_post_of_the_documented_body():
    partner = Partner("example-hooks", keys=PartnerKeys("example-token"), settings={"url": f"{API}/hooks"})
    (planned,) = WebhookDestination().plan(EVENT, partner)
    assert (planned.action, planned.partner_key_id, planned.contact_key) == (
        "post_event",
        "example-token",
        None,
    )
    request = PostEvent().build_request(partner, [planned.spec])
    assert request == OutboundRequest(
        "POST",
        f"{API}/hooks",
        json={
            "id": "f-1",
            "type": "signup",
            "email": "jane@example.com",
            "time": "2026-11-22T05:00:00+00:00",
            "data": {"id": "f-1"},
        },
        headers={"Content-Type": "application/json"},
    )


def test_a_staging_event_without_a_staging_key_is_skipped():
    partner = Partner("example-hooks", keys=PartnerKeys("example-token"), settings={"url": f"{API}/hooks"})
    staging = InboundEvent("f-2", "signup", EVENT.event_time, "staging", None, {})
    (planned,) = WebhookDestination().plan(staging, partner)
    assert planned.skip_reason == "staging event and no staging key is configured"


class Token:
    def apply(self, request):
        request.headers["Authorization"] = "Bearer t"

    def refresh(self):
        pass

    def secrets(self):
        return ["t"]


def test_the_feed_is_read_page_by_page_from_the_cursor(requests_mock):
    pages = {
        "3": {
            "events": [
                {"id": "a", "type": "signup", "email": "A@example.com", "time": "2026-11-22T05:00:00Z"}
            ]
        },
        "4": {"events": [], "next": 4},
    }
    requests_mock.get(f"{API}/events", json=lambda request, context: pages[request.qs["after"][0]])
    source = {"api_url": API, "key": "example-token", "environment": "production"}
    polls = list(FeedSource().poll(source, {"after": 3}, 0.0, HttpClient(), lambda key_id: Token()))
    assert [(p.cursor, [e.email for e in p.events]) for p in polls] == [({"after": 4}, ["a@example.com"])]
    assert isinstance(polls[0], Poll)
    assert requests_mock.request_history[0].headers["Authorization"] == "Bearer t"


def test_a_feed_that_refuses_fails_the_poll(requests_mock):
    requests_mock.get(f"{API}/events", status_code=401, json={"error": "unauthorized"})
    source = {"api_url": API, "key": "example-token", "environment": "production"}
    with pytest.raises(PollFailed, match="GET /events: HTTP 401"):
        list(FeedSource().poll(source, None, 0.0, HttpClient(), lambda key_id: Token()))


def test_a_feed_key_that_is_not_bearer_is_named_at_start_up(config):
    (config / "keys" / "example-token.yaml").write_text(
        "name: t\npartner_key_id: example-token\nalgorithm: HTTP_BASIC\nclient_id: u\nkey: ${EXAMPLE_TOKEN}\n"
    )
    with pytest.raises(ConfigError) as exc:
        load_config(config, load_registry(), env=ENV)
    assert exc.value.problems == [
        "sources/example-feed.yaml: key: key 'example-token' is HTTP_BASIC; the feed takes a BEARER key"
    ]
