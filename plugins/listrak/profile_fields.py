"""Listrak bulk profile-field route, `POST /List/{listId}/Contact/SegmentationField` (Beta;
Bearer token from OAUTH_LISTRAK): many contacts' field values in one JSON array per list.

The worker hands this action up to CHUNK_SIZE due deliveries that share a batch key (partner,
environment, list); each delivery gets its own outcome, so a failed chunk retries only its own
events and a contact Listrak refuses by index fails alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from connector.plugin_api import (
    CODE_KEYS,
    MESSAGE_KEYS,
    Action,
    OutboundRequest,
    Partner,
    State,
    Verdict,
    readable,
)

#: Contacts per request. Each request starts one list import in Listrak, so fewer, larger
#: requests are kinder to it than one per event; 500 contacts stay near 60 KB (one check-box
#: field each), far below body limits, answer well inside the worker's lease, turn a burst of
#: 10,000 audience events into 20 requests, and bound what one refused chunk puts back in the
#: queue. The worker claims up to threads × CHUNK_SIZE rows per pass, so it stays a few thousand.
CHUNK_SIZE = 500
#: Listrak names a refused array item by index: "... supplied for [3].emailAddress."
_ITEM_INDEX = re.compile(r"(?:^|\s)\[(\d+)\]")
#: The bulk route is in Beta: an integration without access to it gets this error.
NO_BETA_ACCESS = "ERROR_INTEGRATION_CANNOT_ACCESS_BETA_ROUTE"
BETA_ADVICE = (
    "ask Listrak support to give this integration access to the Beta route "
    "POST /List/{listId}/Contact/SegmentationField (Update Email Contact Profile Fields), then replay"
)


@dataclass
class _Contact:
    email: str
    values: dict[int, str] = field(default_factory=dict)
    winners: dict[int, int] = field(default_factory=dict)  # field id → spec index that set it
    specs: list[int] = field(default_factory=list)


def merge(specs: list[dict]) -> tuple[list[_Contact], set[int]]:
    """One array item per email, in input order; for one email and field the newest event
    (event_time, then input order) wins. Returns the items and the indexes of specs whose
    every value lost to a newer one in the same request."""
    contacts: dict[str, _Contact] = {}
    stamps: dict[tuple[str, int], tuple[float, int]] = {}
    for index, spec in enumerate(specs):
        contact = contacts.setdefault(spec["email"], _Contact(spec["email"]))
        contact.specs.append(index)
        stamp = (spec.get("event_time", 0.0), index)
        for item in spec["fields"]:
            fid = item["segmentationFieldId"]
            if stamps.get((spec["email"], fid), (float("-inf"), -1)) <= stamp:
                stamps[(spec["email"], fid)] = stamp
                contact.values[fid] = item["value"]
                contact.winners[fid] = index
    overridden = {
        index
        for index, spec in enumerate(specs)
        if spec["fields"]
        and not any(
            contacts[spec["email"]].winners.get(f["segmentationFieldId"]) == index for f in spec["fields"]
        )
    }
    return list(contacts.values()), overridden


class UpdateEmailContactProfileFields(Action):
    name = "update_email_contact_profile_fields"
    max_batch = CHUNK_SIZE

    def build_request(self, partner: Partner, specs: list[dict]) -> OutboundRequest:
        lists = sorted({spec["list_id"] for spec in specs})
        if len(lists) != 1:
            raise ValueError(f"one request per list, got specs for lists {lists}")
        contacts, _ = merge(specs)
        body = [
            {
                "emailAddress": c.email,
                "segmentationFieldValues": [
                    {"segmentationFieldId": fid, "value": value} for fid, value in c.values.items()
                ],
            }
            for c in contacts
        ]
        return OutboundRequest(
            "POST",
            f"{partner.settings['api_url']}/List/{lists[0]}/Contact/SegmentationField",
            json=body,
            headers={"Content-Type": "application/json"},
        )

    def notes(self, partner: Partner, spec: dict) -> list[str]:
        return list(spec.get("notes") or ())  # fields a mapping left out, and why

    def interpret(self, partner: Partner, specs: list[dict], result) -> list[Verdict] | None:
        contacts, overridden = merge(specs)
        if result.ok:
            return [
                Verdict(State.SKIPPED, "a newer event in the same request set these fields")
                if index in overridden
                else Verdict(State.DELIVERED, "; ".join(spec.get("notes") or ()) or None)
                for index, spec in enumerate(specs)
            ]
        if isinstance(result.body, dict) and result.body.get("error") == NO_BETA_ACCESS:
            return [Verdict(State.DEAD, f"{NO_BETA_ACCESS}: {BETA_ADVICE}")] * len(specs)
        refused = _refused_item(result, len(contacts))
        if refused is None:
            return None  # the core's policy: 408/429/5xx retry, other 4xx dead
        error, message = refused[1], refused[2]
        culprits = set(contacts[refused[0]].specs)
        return [
            Verdict(State.DEAD, f"Listrak refused this contact: {error}: {message}")
            if index in culprits
            else Verdict(
                State.RETRYING, "another contact in the same request was refused; sending again without it"
            )
            for index in range(len(specs))
        ]


class UpdateEmailContactProfileFieldsUnbatched(UpdateEmailContactProfileFields):
    """The same request with one event each, for mappings with `enable_batching: false`.
    A separate action (not a batch key of its own per delivery) so the worker claims these
    like any single delivery, never thousands at a time, and sends them without a window."""

    name = "update_email_contact_profile_fields_unbatched"
    max_batch = 1


def _refused_item(result, size: int) -> tuple[int, str, str] | None:
    """(item index, error, message) when Listrak's 400 names one item of a multi-item array."""
    if result.status != 400 or size < 2 or not isinstance(result.body, dict):
        return None
    message = readable(result.body.get("message"), MESSAGE_KEYS) or ""
    match = _ITEM_INDEX.search(message)
    if match is None or int(match.group(1)) >= size:
        return None
    return int(match.group(1)), readable(result.body.get("error"), CODE_KEYS) or "HTTP 400", message
