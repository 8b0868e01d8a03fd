"""Listrak Contact API, `POST /List/{listId}/Contact` (Bearer token from OAUTH_LISTRAK): subscribe
with profile fields, or unsubscribe with nothing else.

`resubscribe` decides what an opt-in does for a contact Listrak shows as unsubscribed: false
leaves them unsubscribed (skipped), true sends `overrideUnsubscribe=true` at once, `when_newer`
first sends without it and, when Listrak answers ERROR_UNSUBSCRIBED_EMAIL_ADDRESS, reads the
contact's `unsubscribeDate` (`GET /List/{listId}/Contact/{email}`) and re-subscribes only if the
opt-in's event_time is newer. Listrak dates without an offset are taken as UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote

from connector.plugin_api import (
    Action,
    OutboundRequest,
    Partner,
    State,
    Verdict,
)

WHEN_NEWER = "when_newer"
#: Listrak's answers to an opt-out that mean the contact already is where we want it.
ALREADY_OUT = {"ERROR_NOT_SUBSCRIBED_EMAIL_ADDRESS", "ERROR_UNSUBSCRIBED_EMAIL_ADDRESS"}
UNSUBSCRIBED = "ERROR_UNSUBSCRIBED_EMAIL_ADDRESS"


def contact_key(partner: Partner, environment: str, list_id, email: str) -> str:
    """Consent order for email: per (partner, environment, list, address)."""
    return f"{partner.id}|{environment}|{list_id}|{email}"


def _error_code(result) -> str | None:
    """Listrak's `error` when it is the usual string code (any other shape matches none)."""
    code = result.body.get("error") if isinstance(result.body, dict) else None
    return code if isinstance(code, str) else None


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def unsubscribe_date(body) -> datetime | None:
    """`data.unsubscribeDate` of a Get Contact answer, or None when absent or unreadable."""
    data = body.get("data") if isinstance(body, dict) else None
    value = data.get("unsubscribeDate") if isinstance(data, dict) else None
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class ContactSubscription(Action):
    """Subscribe with profile fields, or unsubscribe with nothing else."""

    name = "contact_subscription"
    consent = True

    def build_request(self, partner: Partner, specs: list[dict]) -> OutboundRequest:
        (spec,) = specs
        body = {"emailAddress": spec["email"], "subscriptionState": spec["state"]}
        if spec["state"] == "Subscribed":
            if spec.get("external_id"):
                body["externalContactID"] = spec["external_id"]
            body["segmentationFieldValues"] = spec.get("fields", [])
        params = {"overrideUnsubscribe": "true"} if spec.get("override") else {}
        return OutboundRequest(
            "POST",
            f"{partner.settings['api_url']}/List/{spec['list_id']}/Contact",
            params=params,
            json=body,
            headers={"Content-Type": "application/json"},
        )

    def interpret(self, partner, specs, result):
        (spec,) = specs
        code = _error_code(result)
        if result.status == 400 and spec["state"] == "Unsubscribed" and code in ALREADY_OUT:
            return [Verdict(State.DELIVERED, "already unsubscribed or not subscribed in Listrak")]
        if result.status == 400 and spec["state"] == "Subscribed" and code == UNSUBSCRIBED:
            return [Verdict(State.SKIPPED, "unsubscribed in Listrak (resubscribe is off)")]
        return None

    def exchange(self, partner, specs, send):
        (spec,) = specs
        result = send(self.build_request(partner, specs))
        unsubscribed = result.status == 400 and _error_code(result) == UNSUBSCRIBED
        if spec.get("resubscribe") != WHEN_NEWER or spec["state"] != "Subscribed" or not unsubscribed:
            return self.interpret(partner, specs, result)
        email = quote(spec["email"], safe="@")
        api = partner.settings["api_url"]
        contact = send(OutboundRequest("GET", f"{api}/List/{spec['list_id']}/Contact/{email}"))
        if not contact.ok:
            return None  # the core's reading of the GET: 5xx and 429 retry the whole attempt
        unsubscribed_at = unsubscribe_date(contact.body)
        opted_in_at = datetime.fromtimestamp(spec["event_time"], UTC)
        if unsubscribed_at is None:
            return [
                Verdict(
                    State.SKIPPED, "unsubscribed in Listrak, which shows no unsubscribe date (when_newer)"
                )
            ]
        if opted_in_at <= unsubscribed_at:
            return [
                Verdict(
                    State.SKIPPED,
                    f"left unsubscribed: this opt-in at {_iso(opted_in_at)} is not newer than the "
                    f"unsubscribe in Listrak at {_iso(unsubscribed_at)} (when_newer)",
                )
            ]
        again = send(self.build_request(partner, [dict(spec, override=True)]))
        verdicts = self.interpret(partner, specs, again)
        if verdicts is None and again.ok:
            reason = (
                f"re-subscribed: this opt-in at {_iso(opted_in_at)} is newer than the unsubscribe "
                f"in Listrak at {_iso(unsubscribed_at)} (when_newer)"
            )
            return [Verdict(State.DELIVERED, reason)]
        return verdicts

    def describe(self, spec):
        change = "subscribe" if spec["state"] == "Subscribed" else "unsubscribe"
        return f"email list {spec['list_id']}", change

    def notes(self, partner, spec):
        if spec.get("resubscribe") != WHEN_NEWER or spec["state"] != "Subscribed":
            return []
        api = partner.settings["api_url"]
        return [
            f"if Listrak answers {UNSUBSCRIBED}: GET {api}/List/{spec['list_id']}/Contact/"
            f"{spec['email']}, then the same POST with ?overrideUnsubscribe=true only if this opt-in "
            "is newer than the contact's unsubscribeDate (resubscribe: when_newer); otherwise skipped"
        ]
