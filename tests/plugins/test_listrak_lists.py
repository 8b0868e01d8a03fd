"""Several lists per Listrak partner (subscription_list_ids), and `resubscribe: when_newer`: an
opt-in re-subscribes a contact Listrak shows as unsubscribed only when it is newer than
Listrak's unsubscribe date, read from the Contact API first."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from marshmallow import ValidationError

from connector.app import create_app
from connector.contract import HttpResult, InboundEvent, OutboundRequest, Partner, State, Verdict
from connector.delivery.worker import Worker
from connector.testing.store import after_planning, stored_attempts, stored_deliveries
from plugins.extole.testing import referral_event, sign
from plugins.listrak.contacts import ContactSubscription
from plugins.listrak.destination import ListrakDestination, ListrakPartnerSchema
from plugins.listrak.testing import API
from tests.config_files import update_yaml

BASE = {
    "plugin": "listrak",
    "sources": ["extole"],
    "api_url": API,
    "keys": {"production": "listrak-production"},
    "segmentation_fields": {"first_name": 1003},
}
OPT_IN_AT = datetime(2026, 11, 22, 5, 0, tzinfo=UTC)


def partner(**values) -> Partner:
    return Partner.from_config("listrak", ListrakPartnerSchema().load({**BASE, **values}))


def event(kind: str = "opt_in") -> InboundEvent:
    person = {"email": "jane@example.com", "first_name": "Jane"}
    return InboundEvent("e-1", kind, OPT_IN_AT, "production", "jane@example.com", {"person": person})


# -- config --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("values", "problems"),
    [
        (
            {"subscription_list_id": 1, "subscription_list_ids": [2]},
            {"subscription_list_ids": ["give subscription_list_id or subscription_list_ids, not both"]},
        ),
        ({}, {"subscription_list_ids": ["one of subscription_list_id or subscription_list_ids is required"]}),
        ({"subscription_list_ids": []}, {"subscription_list_ids": ["Shorter than minimum length 1."]}),
        ({"subscription_list_ids": [5, 5]}, {"subscription_list_ids": ["each list once"]}),
        (
            {"subscription_list_ids": [5], "segmentation_fields_by_list": {6: {"first_name": 1}}},
            {"segmentation_fields_by_list": ["lists [6] are not among the subscription lists [5]"]},
        ),
        (
            {"subscription_list_id": 5, "resubscribe": "sometimes"},
            {"resubscribe": ["must be false, true or when_newer"]},
        ),
    ],
)
def test_list_settings_that_are_refused(values, problems):
    with pytest.raises(ValidationError) as refused:
        ListrakPartnerSchema().load({**BASE, **values})
    assert refused.value.messages == problems


def test_one_list_keeps_working_and_reads_as_a_list_of_one():
    loaded = partner(subscription_list_id=12345)
    settings = loaded.settings
    assert (settings["subscription_list_ids"], settings["subscription_list_id"]) == ([12345], 12345)


# -- planning ------------------------------------------------------------------------------------
def test_opt_in_subscribes_to_each_list_with_that_lists_fields():
    several = partner(
        subscription_list_ids=[12345, 456], segmentation_fields_by_list={456: {"first_name": 2003}}
    )
    planned = ListrakDestination().plan(event(), several)
    assert [(p.spec["list_id"], p.spec["fields"], p.contact_key) for p in planned] == [
        (
            12345,
            [{"segmentationFieldId": 1003, "value": "Jane"}],
            "listrak|production|12345|jane@example.com",
        ),
        (456, [{"segmentationFieldId": 2003, "value": "Jane"}], "listrak|production|456|jane@example.com"),
    ]


def test_opt_out_unsubscribes_from_each_list():
    planned = ListrakDestination().plan(event("opt_out"), partner(subscription_list_ids=[12345, 456]))
    assert [(p.spec, p.contact_key) for p in planned] == [
        (
            {"list_id": 12345, "email": "jane@example.com", "state": "Unsubscribed"},
            "listrak|production|12345|jane@example.com",
        ),
        (
            {"list_id": 456, "email": "jane@example.com", "state": "Unsubscribed"},
            "listrak|production|456|jane@example.com",
        ),
    ]


@pytest.mark.parametrize(
    ("setting", "extra"),
    [
        (False, {}),
        (True, {"override": True}),
        ("when_newer", {"resubscribe": "when_newer", "event_time": OPT_IN_AT.timestamp()}),
    ],
)
def test_resubscribe_setting_in_the_planned_opt_in(setting, extra):
    (planned,) = ListrakDestination().plan(event(), partner(subscription_list_id=12345, resubscribe=setting))
    assert planned.spec == {
        "list_id": 12345,
        "email": "jane@example.com",
        "state": "Subscribed",
        "fields": [{"segmentationFieldId": 1003, "value": "Jane"}],
        **extra,
    }


# -- when_newer ----------------------------------------------------------------------------------
UNSUBSCRIBED = HttpResult(
    400,
    3.0,
    {
        "status": 400,
        "error": "ERROR_UNSUBSCRIBED_EMAIL_ADDRESS",
        "message": "The emailAddress has already been unsubscribed from the list.",
    },
)
DONE = HttpResult(200, 3.0, {"status": 200, "resourceId": "jane@example.com"})


def contact(unsubscribe_date) -> HttpResult:
    data = {"emailAddress": "jane@example.com", "subscriptionState": "Unsubscribed"}
    return HttpResult(200, 2.0, {"status": 200, "data": {**data, "unsubscribeDate": unsubscribe_date}})


def converse(*answers: HttpResult, setting="when_newer") -> tuple[list, list[OutboundRequest]]:
    """Run the action's exchange against scripted answers; (verdicts, requests sent)."""
    sent: list[OutboundRequest] = []
    replies = iter(answers)

    def send(request):
        sent.append(request)
        return next(replies)

    (planned,) = ListrakDestination().plan(event(), partner(subscription_list_id=12345, resubscribe=setting))
    verdicts = ContactSubscription().exchange(
        Partner.from_config("listrak", {"api_url": API}), [planned.spec], send
    )
    return verdicts, [(r.method, r.url, r.params) for r in sent]


def test_newer_opt_in_re_subscribes_after_reading_the_unsubscribe_date():
    verdicts, sent = converse(UNSUBSCRIBED, contact("2026-11-21T08:00:00"), DONE)
    assert verdicts == [
        Verdict(
            State.DELIVERED,
            "re-subscribed: this opt-in at 2026-11-22T05:00:00Z is newer than the unsubscribe in "
            "Listrak at 2026-11-21T08:00:00Z (when_newer)",
        )
    ]
    assert sent == [
        ("POST", f"{API}/List/12345/Contact", {}),
        ("GET", f"{API}/List/12345/Contact/jane@example.com", {}),
        ("POST", f"{API}/List/12345/Contact", {"overrideUnsubscribe": "true"}),
    ]


@pytest.mark.parametrize(
    ("unsubscribed_at", "reason"),
    [
        (
            "2026-11-22T05:30:00Z",
            "left unsubscribed: this opt-in at 2026-11-22T05:00:00Z is not newer than the unsubscribe "
            "in Listrak at 2026-11-22T05:30:00Z (when_newer)",
        ),
        (
            "2026-11-22T00:00:00-05:00",
            "left unsubscribed: this opt-in at 2026-11-22T05:00:00Z is not newer than the unsubscribe "
            "in Listrak at 2026-11-22T05:00:00Z (when_newer)",
        ),
        (None, "unsubscribed in Listrak, which shows no unsubscribe date (when_newer)"),
        ("last week", "unsubscribed in Listrak, which shows no unsubscribe date (when_newer)"),
    ],
)
def test_opt_in_not_newer_than_the_unsubscribe_is_skipped_without_override(unsubscribed_at, reason):
    verdicts, sent = converse(UNSUBSCRIBED, contact(unsubscribed_at))
    assert verdicts == [Verdict(State.SKIPPED, reason)]
    assert [method for method, _, _ in sent] == ["POST", "GET"]


def test_subscribed_or_new_contact_needs_one_request():
    verdicts, sent = converse(DONE)
    assert (verdicts, len(sent)) == (None, 1)


def test_contact_read_failing_leaves_the_verdict_to_the_core():
    verdicts, sent = converse(UNSUBSCRIBED, HttpResult(503, 2.0, "busy"))
    assert (verdicts, len(sent)) == (None, 2)


def test_resubscribe_off_reads_nothing():
    verdicts, sent = converse(UNSUBSCRIBED, setting=False)
    assert verdicts == [Verdict(State.SKIPPED, "unsubscribed in Listrak (resubscribe is off)")]
    assert len(sent) == 1


def test_the_attempt_record_keeps_the_requests_that_led_to_the_last(
    config_dir, make_runtime, requests_mock, listrak_token
):
    update_yaml(config_dir / "partners/listrak.yaml", {"resubscribe": "when_newer"})
    runtime = make_runtime()
    contact_url = f"{API}/List/12345/Contact"
    requests_mock.post(
        contact_url,
        [
            {"status_code": 400, "json": UNSUBSCRIBED.body},
            {"status_code": 200, "json": DONE.body},
        ],
    )
    requests_mock.get(f"{contact_url}/jane.doe@example.com", json=contact("2026-11-01T00:00:00Z").body)
    body = json.dumps(referral_event(event_time="2026-11-22T05:00:00Z")).encode()
    client = create_app({"TESTING": True}, runtime=runtime).test_client()
    headers = {"Content-Type": "application/json", "X-Extole-Signature": sign(body)}
    assert client.post("/webhooks/extole", data=body, headers=headers).status_code == 202
    Worker(runtime).run_once()
    (delivery,) = stored_deliveries(after_planning(runtime))
    assert (delivery["state"], delivery["reason"]) == (
        "delivered",
        "re-subscribed: this opt-in at 2026-11-22T05:00:00Z is newer than the unsubscribe in Listrak "
        "at 2026-11-01T00:00:00Z (when_newer)",
    )
    (attempt,) = stored_attempts(runtime)
    assert attempt["request"]["params"] == {"overrideUnsubscribe": "true"}
    assert [(b["request"]["method"], b["response"]["status"]) for b in attempt["request"]["before"]] == [
        ("POST", 400),
        ("GET", 200),
    ]
    assert attempt["error_message"] == delivery["reason"]
