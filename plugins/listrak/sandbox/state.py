"""The sandbox's in-memory Listrak account: OAuth2 clients and issued tokens, lists with their
profile fields, contacts, and the request counts tests assert. One lock guards all of it."""

from __future__ import annotations

import copy
import hashlib
import secrets
import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from plugins.listrak.sandbox.activity import ActivityBook, contact_date
from plugins.listrak.sandbox.faults import FaultBook

DEFAULT_CLIENTS = {"sandbox-client": "sandbox-secret", "sandbox-staging-client": "sandbox-staging-secret"}


def _fields(*rows):
    return {fid: {"name": name, "dataType": kind} for fid, name, kind in rows}


# lists: {listId: {"listName", "segmentationFieldGroups": {groupId: {"name", "fields":
#   {fieldId: {"name", "dataType", "maxLength" (optional)}}}}}}; str ids are accepted too.
DEFAULT_LISTS = {
    12345: {
        "listName": "Referral opt-ins",
        "segmentationFieldGroups": {
            10: {
                "name": "Referral profile",
                "fields": _fields(
                    (1001, "phone_number", "Text"),
                    (1002, "share_link", "Text"),
                    (1003, "first_name", "Text"),
                    (1004, "last_name", "Text"),
                    (1005, "funnel", "Text"),
                    (1006, "user_id", "Text"),
                ),
            },
            20: {
                "name": "Audiences",
                "fields": _fields((6789, "My audience", "CheckBox"), (6790, "Other audience", "CheckBox")),
            },
        },
    },
    456: {
        "listName": "Second list",
        "segmentationFieldGroups": {
            30: {"name": "Audiences", "fields": _fields((6789, "My audience", "CheckBox"))},
        },
    },
}
DEFAULT_MAX_LENGTH = {"CheckBox": 3, "RadioButton": 100}
SUBSCRIBED, UNSUBSCRIBED = "Subscribed", "Unsubscribed"


class ApiError(Exception):
    """An Email API error response: {status, error, message}."""

    def __init__(self, status: int, error: str, message: str):
        super().__init__(message)
        self.status, self.error, self.message = status, error, message


def invalid(name: str) -> ApiError:
    return ApiError(400, "ERROR_INVALID_PARAMETER", f"An invalid value was supplied for {name}.")


def malformed(detail: str = "Invalid JSON body was supplied.") -> ApiError:
    return ApiError(400, "ERROR_MALFORMED_REQUEST_BODY", detail)


def not_found(what: str) -> ApiError:
    return ApiError(
        404,
        "ERROR_UNABLE_TO_LOCATE_RESOURCE",
        f"Unable to locate a resource associated with the {what} supplied.",
    )


def _normalize_lists(lists: dict) -> dict[int, dict]:
    out = {}
    for list_id, spec in copy.deepcopy(lists).items():
        groups = {}
        for group_id, group in spec.get("segmentationFieldGroups", {}).items():
            fields = {}
            for field_id, f in group.get("fields", {}).items():
                kind = f.get("dataType", "Text")
                fields[int(field_id)] = {
                    "name": f["name"],
                    "dataType": kind,
                    "maxLength": int(f.get("maxLength", DEFAULT_MAX_LENGTH.get(kind, 500))),
                }
            groups[int(group_id)] = {"name": group.get("name", f"Group {group_id}"), "fields": fields}
        out[int(list_id)] = {
            **spec,
            "listName": spec.get("listName", f"List {list_id}"),
            "segmentationFieldGroups": groups,
        }
    return out


def _iso(ts: float) -> str:
    return contact_date(datetime.fromtimestamp(ts, UTC))


def _new_contact(email: str, now: str) -> dict:
    return {
        "emailAddress": email,
        "subscriptionState": SUBSCRIBED,
        "subscribeDate": now,
        "unsubscribeDate": None,
        "externalContactID": None,
        "segmentationFieldValues": {},
    }


@dataclass
class RequestCounts:
    """What the sandbox was asked, for tests to assert: `total` counts Email and SMS API requests,
    `per_route` counts the token endpoint too, `per_client` counts API calls by the client whose
    token they carried, `per_contact` counts API requests naming each contact (whatever they
    were answered), `token_fetches` counts tokens issued, `bulk_calls` lists bulk requests."""

    total: int = 0
    per_route: dict[str, int] = field(default_factory=dict)
    per_contact: dict[str, int] = field(default_factory=dict)
    per_status: dict[str, int] = field(default_factory=dict)
    per_client: dict[str, int] = field(default_factory=dict)
    token_fetches: dict[str, int] = field(default_factory=dict)
    bulk_calls: list[dict] = field(default_factory=list)


def _bump(counts: dict[str, int], name: str) -> None:
    counts[name] = counts.get(name, 0) + 1


class Sandbox:
    """All sandbox state, guarded by one lock."""

    def __init__(self, clients: dict[str, str], lists: dict, token_lifetime: int, clock, sms=None):
        self.clients, self.lists = dict(clients), _normalize_lists(lists)
        self.sms = sms  # the SMS side (sandbox/sms.py's SmsBook): its contacts, its clients
        self.fields = {
            lid: {
                fid: {**f, "groupId": gid}
                for gid, g in spec["segmentationFieldGroups"].items()
                for fid, f in g["fields"].items()
            }
            for lid, spec in self.lists.items()
        }
        self.token_lifetime, self.clock = token_lifetime, clock
        self.lock = threading.Lock()
        self.faults = FaultBook()
        self.activity = ActivityBook()
        self.tokens: dict[str, tuple[str, float]] = {}
        self.reset()

    def reset(self) -> None:
        """Forget contacts, email activity, counts, faults and latency (issued tokens stay valid)."""
        with self.lock:
            self.contacts: dict[int, dict[str, dict]] = {lid: {} for lid in self.lists}
            self.counts = RequestCounts()
            self.beta_denied: set[str] = set()  # clients without the Beta routes (`/_sandbox/beta_access`)
        self.activity.reset()
        self.faults.reset()
        if self.sms is not None:
            self.sms.reset()

    # -- request counts ----------------------------------------------------------------------
    def count_request(self, route: str, api: bool, emails: Iterable[str] = ()) -> None:
        with self.lock:
            if api:
                self.counts.total += 1
            _bump(self.counts.per_route, route)
            for email in emails:
                _bump(self.counts.per_contact, email)

    def count_status(self, status: int) -> None:
        with self.lock:
            _bump(self.counts.per_status, str(status))

    # -- tokens ------------------------------------------------------------------------------
    def issue_token(self, client_id: str) -> str:
        token = secrets.token_urlsafe(32)
        with self.lock:
            self.tokens[token] = (client_id, self.clock() + self.token_lifetime)
            _bump(self.counts.token_fetches, client_id)
        return token

    def expire_tokens(self) -> None:
        with self.lock:
            self.tokens.clear()

    def client_for(self, token: str) -> str | None:
        with self.lock:
            client_id, expires = self.tokens.get(token, (None, 0.0))
            if client_id is None or expires <= self.clock():
                self.tokens.pop(token, None)
                return None
            _bump(self.counts.per_client, client_id)
        return client_id

    # -- lists and contacts ------------------------------------------------------------------
    def list_fields(self, list_id: int) -> dict[int, dict]:
        if list_id not in self.lists:
            raise not_found("listId")
        return self.fields[list_id]

    def upsert(
        self,
        list_id: int,
        email: str,
        state: str,
        external_id: str | None,
        values: dict[int, str] | None,
        override: bool,
        update_type: str,
        new_email: str | None,
    ) -> tuple[int, str]:
        now = _iso(self.clock())
        with self.lock:
            contacts = self.contacts[list_id]
            contact = contacts.get(email)
            if contact is None:
                if state == UNSUBSCRIBED:
                    raise ApiError(
                        400,
                        "ERROR_NOT_SUBSCRIBED_EMAIL_ADDRESS",
                        "The emailAddress is not subscribed to the list.",
                    )
                contact = contacts[email] = _new_contact(email, now)
                status = 201
            else:
                status = 200
                current = contact["subscriptionState"]
                if state == SUBSCRIBED and current == UNSUBSCRIBED:
                    if not override:
                        raise ApiError(
                            400,
                            "ERROR_UNSUBSCRIBED_EMAIL_ADDRESS",
                            "The emailAddress has already been unsubscribed from the list.",
                        )
                    # subscribeDate stays the original one; resubscribeDate is the latest.
                    contact.update(subscriptionState=SUBSCRIBED, unsubscribeDate=None, resubscribeDate=now)
                elif state == UNSUBSCRIBED and current == SUBSCRIBED:
                    contact.update(subscriptionState=UNSUBSCRIBED, unsubscribeDate=now)
                if new_email and new_email != email:
                    if new_email in contacts:
                        raise ApiError(
                            400,
                            "ERROR_SUBSCRIBED_NEW_EMAIL_ADDRESS",
                            "The newEmailAddress is already on the list.",
                        )
                    contacts[new_email] = contacts.pop(email)
                    contact["emailAddress"] = email = new_email
            if external_id is not None:
                contact["externalContactID"] = external_id
            if values is not None:
                if update_type == "Overwrite":
                    contact["segmentationFieldValues"] = dict(values)
                else:  # Update and Append both merge here
                    contact["segmentationFieldValues"].update(values)
            return status, email

    def put_contact(
        self,
        list_id: int,
        email: str,
        state: str,
        values: dict[int, str],
        subscribed_at: str | None = None,
        unsubscribed_at: str | None = None,
    ) -> None:
        """Seed a contact as it is (no Listrak rules applied): `POST /_sandbox/activity`. Dates
        are contact dates (`contact_date`); an unsubscribed contact without one gets now."""
        now = _iso(self.clock())
        with self.lock:
            contact = self.contacts[list_id].setdefault(email, _new_contact(email, subscribed_at or now))
            if subscribed_at:
                contact["subscribeDate"] = subscribed_at
            contact["subscriptionState"] = state
            if state == UNSUBSCRIBED:
                contact["unsubscribeDate"] = unsubscribed_at or contact["unsubscribeDate"] or now
            contact["segmentationFieldValues"].update(values)

    def bulk_update(self, list_id: int, items: list[tuple[str, dict[int, str]]]) -> str:
        now = _iso(self.clock())
        with self.lock:
            contacts = self.contacts[list_id]
            for email, values in items:
                contact = contacts.setdefault(email, _new_contact(email, now))
                contact["segmentationFieldValues"].update(values)
            self.counts.bulk_calls.append({"list_id": list_id, "items": len(items)})
        return secrets.token_hex(8)

    def seed_contact(
        self,
        list_id: int,
        email: str,
        state: str,
        at: str | None = None,
        values: dict[int, str] | None = None,
    ) -> dict:
        """A contact as if it had changed in Listrak itself at `at` (a contact date; default
        now), e.g. unsubscribed from an email's link: a new contact's subscribeDate, a returning
        one's resubscribeDate, or the unsubscribeDate (`POST /_sandbox/contacts`). Its copy."""
        at = at or _iso(self.clock())
        with self.lock:
            contact = self.contacts[list_id].get(email)
            if contact is None:
                contact = self.contacts[list_id][email] = _new_contact(email, at)
            elif state == SUBSCRIBED and contact["subscriptionState"] == UNSUBSCRIBED:
                contact["resubscribeDate"] = at
            contact["subscriptionState"] = state
            contact["unsubscribeDate"] = at if state == UNSUBSCRIBED else None
            contact["segmentationFieldValues"].update(values or {})
            return copy.deepcopy(contact)

    def check_beta_access(self, client_id: str | None) -> None:
        with self.lock:
            denied = client_id in self.beta_denied
        if denied:
            raise ApiError(
                400,
                "ERROR_INTEGRATION_CANNOT_ACCESS_BETA_ROUTE",
                "This route is in Beta and not yet generally available for all integrations.",
            )

    def public_contact(self, list_id: int, contact: dict, field_ids: list[int] | None) -> dict:
        """A contact as the Email API returns it (call with the lock held)."""
        fields = self.fields[list_id]
        values = contact["segmentationFieldValues"]
        wanted = values if field_ids is None else [f for f in field_ids if f in values]
        email = contact["emailAddress"]
        return {
            "emailAddress": email,
            "emailKey": hashlib.md5(f"{list_id}:{email}".encode(), usedforsecurity=False).hexdigest(),
            "universalEmailKey": hashlib.sha256(email.encode()).hexdigest(),
            "subscriptionState": contact["subscriptionState"],
            "subscribeDate": contact["subscribeDate"],
            "resubscribeDate": contact.get("resubscribeDate"),
            "subscribeMethod": None,
            "unsubscribeDate": contact["unsubscribeDate"],
            "unsubscribeMethod": None,
            "externalContactID": contact["externalContactID"],
            "segmentationFieldValues": [
                {
                    "segmentationFieldGroupId": fields[fid]["groupId"],
                    "segmentationFieldId": fid,
                    "value": values[fid],
                }
                for fid in wanted
            ],
        }

    def state(self) -> dict:
        """The /_sandbox/state document (JSON-ready: list and field ids become strings)."""
        with self.lock:
            lists = {
                str(lid): {
                    "listName": self.lists[lid]["listName"],
                    "contacts": {
                        email: {
                            **c,
                            "segmentationFieldValues": {
                                str(k): v for k, v in c["segmentationFieldValues"].items()
                            },
                        }
                        for email, c in book.items()
                    },
                }
                for lid, book in self.contacts.items()
            }
            counts = asdict(self.counts)
        return {
            "lists": lists,
            "sms": self.sms.state() if self.sms is not None else {},
            "activity": self.activity.summary(),
            "requests": counts,
            "faults": self.faults.describe(),
            "faults_applied": dict(self.faults.applied),
            "latency_ms": self.faults.latency_ms,
        }
