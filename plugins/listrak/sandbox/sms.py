"""The Listrak look-alike's SMS API v1 (`/sms/v1`): sender codes, their phone lists and contacts,
served as strictly as Listrak's Swagger describes them — the routes the connector calls and the
ones `connector verify` and the consent story read. Only an SMS integration's token opens them
(and it opens no Email API route). Requests go through the same gate as the Email API's: counts,
latency and fault injection."""

from __future__ import annotations

import copy
import re
import threading
from datetime import UTC, datetime

from flask import Blueprint, jsonify

from plugins.listrak.sandbox.routes import _json_body, _query, check_email, page_of
from plugins.listrak.sandbox.state import invalid, malformed, not_found

DEFAULT_SMS_CLIENTS = {"sandbox-sms-client": "sandbox-sms-secret"}
# sender codes: {senderCodeId: {"code", "country", "merchantName", "phoneLists": {phoneListId:
#   {"phoneListName", "requireDoubleOptIn" (optional)}}}}; str ids are accepted too.
DEFAULT_SENDER_CODES = {
    123: {
        "code": "55555",
        "country": "US",
        "merchantName": "Sandbox Store",
        "phoneLists": {456: {"phoneListName": "Referral SMS"}, 789: {"phoneListName": "Second SMS list"}},
    }
}
SUBSCRIBED, UNSUBSCRIBED = "Subscribed", "Unsubscribed"
PHONE = re.compile(r"^[0-9]{8,15}$")
CONTACT_KEYS = {
    "phoneNumber",
    "emailAddress",
    "firstName",
    "lastName",
    "birthday",
    "postalCode",
    "optedOut",
    "segmentationFieldValues",
}
TEXT_MAX = 100


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _normalised(sender_codes: dict) -> dict[int, dict]:
    out = {}
    for code_id, spec in copy.deepcopy(sender_codes).items():
        lists = {int(list_id): dict(item) for list_id, item in spec.get("phoneLists", {}).items()}
        out[int(code_id)] = {**spec, "phoneLists": lists}
    return out


def check_phone(value: object, name: str = "phoneNumber") -> str:
    """Digits with the country code, as the SMS API's phone numbers are written."""
    if not isinstance(value, str) or not PHONE.match(value):
        raise invalid(name)
    return value


class SmsBook:
    """The account's SMS side: contacts per sender code, each with its phone lists."""

    def __init__(self, sender_codes: dict, clients: dict[str, str], clock):
        self.sender_codes, self.clients, self.clock = _normalised(sender_codes), dict(clients), clock
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.contacts: dict[int, dict[str, dict]] = {code_id: {} for code_id in self.sender_codes}

    def sender_code(self, code_id: int) -> dict:
        if code_id not in self.sender_codes:
            raise not_found("senderCodeId")
        return self.sender_codes[code_id]

    def phone_list(self, code_id: int, list_id: int) -> dict:
        found = self.sender_codes.get(code_id, {}).get("phoneLists", {}).get(list_id)
        if found is None:
            raise not_found("senderCodeId and phoneListId")
        return found

    def contact(self, code_id: int, phone: str) -> dict:
        """A copy of the contact (call without the lock)."""
        self.sender_code(code_id)
        with self.lock:
            found = self.contacts[code_id].get(phone)
            if found is None:
                raise not_found("senderCodeId and phoneNumber")
            return copy.deepcopy(found)

    def create(self, code_id: int, list_id: int, contact: dict) -> None:
        self.phone_list(code_id, list_id)
        now = _iso(self.clock())
        with self.lock:
            book = self.contacts[code_id]
            if contact["phoneNumber"] in book:
                raise invalid("phoneNumber")  # Create Contact is for numbers new to the sender code
            book[contact["phoneNumber"]] = {
                **{name: None for name in CONTACT_KEYS},
                "segmentationFieldValues": [],
                **contact,
                "optedOut": False,
                "subscribeDate": now,
                "unsubscribeDate": None,
                "lists": {
                    list_id: {"subscriptionState": SUBSCRIBED, "subscribeDate": now, "unsubscribeDate": None}
                },
            }

    def subscribe(self, code_id: int, phone: str, list_id: int) -> None:
        self.phone_list(code_id, list_id)
        now = _iso(self.clock())
        with self.lock:
            contact = self.contacts[code_id].get(phone)
            if contact is None:  # only numbers the sender code knows: Create Contact for the rest
                raise not_found("senderCodeId, phoneNumber, and phoneListId")
            membership = contact["lists"].get(list_id)
            if membership is None or membership["subscriptionState"] != SUBSCRIBED:
                contact["lists"][list_id] = {
                    "subscriptionState": SUBSCRIBED,
                    "subscribeDate": now,
                    "unsubscribeDate": None,
                }

    def unsubscribe(self, code_id: int, phone: str, list_id: int) -> None:
        self.phone_list(code_id, list_id)
        now = _iso(self.clock())
        with self.lock:
            contact = self.contacts[code_id].get(phone)
            membership = contact and contact["lists"].get(list_id)
            if membership is None:  # only a number that is on the list
                raise not_found("senderCodeId, phoneNumber, and phoneListId")
            if membership["subscriptionState"] == SUBSCRIBED:
                # The list only: the contact's own unsubscribeDate is its opt-out of the whole
                # sender code (a STOP reply), which this is not.
                membership.update(subscriptionState=UNSUBSCRIBED, unsubscribeDate=now)

    def state(self) -> dict:
        """For /_sandbox/state: per sender code, each phone list's numbers and their state."""
        with self.lock:
            return {
                str(code_id): {
                    "code": spec.get("code"),
                    "phoneLists": {
                        str(list_id): {
                            "phoneListName": phone_list["phoneListName"],
                            "contacts": {
                                phone: dict(contact["lists"][list_id])
                                for phone, contact in self.contacts[code_id].items()
                                if list_id in contact["lists"]
                            },
                        }
                        for list_id, phone_list in spec["phoneLists"].items()
                    },
                    "contacts": {
                        phone: {k: v for k, v in contact.items() if k != "lists"}
                        for phone, contact in self.contacts[code_id].items()
                    },
                }
                for code_id, spec in self.sender_codes.items()
            }


def _contact_body() -> dict:
    """Create Contact's body (an SMSContact), checked as strictly as the Email API's."""
    body = _json_body()
    if not isinstance(body, dict):
        raise malformed("The body must be a Contact object.")
    unknown = sorted(set(body) - CONTACT_KEYS)
    if unknown:
        raise malformed(f"Unknown Contact property: {unknown[0]}.")
    contact = {"phoneNumber": check_phone(body.get("phoneNumber"))}
    if body.get("emailAddress") is not None:
        contact["emailAddress"] = check_email(body["emailAddress"], "emailAddress")
    for name in ("firstName", "lastName", "postalCode", "birthday"):
        value = body.get(name)
        if value is not None and (not isinstance(value, str) or len(value) > TEXT_MAX):
            raise invalid(name)
        if value is not None:
            contact[name] = value
    if not isinstance(body.get("optedOut", False), bool):
        raise invalid("optedOut")
    if body.get("optedOut"):
        raise invalid("optedOut")  # Create Contact subscribes: an opted-out new contact is a contradiction
    values = body.get("segmentationFieldValues")
    if values not in (None, []):
        raise invalid("segmentationFieldValues")  # the sandbox's sender codes have no SMS profile fields
    return contact


def sms_api(book: SmsBook) -> Blueprint:
    bp = Blueprint("listrak_sms_v1", __name__, url_prefix="/sms/v1")

    @bp.get("/ShortCode/<int:sender_code_id>")
    def get_sender_code(sender_code_id: int):
        _query(set())
        spec = book.sender_code(sender_code_id)
        return jsonify(
            status=200,
            data={
                "shortCodeId": sender_code_id,
                "code": spec.get("code"),
                "country": spec.get("country"),
                "merchantName": spec.get("merchantName"),
                "emailListId": 0,
                "emailListName": None,
                "externalEventId": 0,
                "externalEventName": None,
                "phoneNumberSegmentationFieldGroupId": 0,
                "phoneNumberSegmentationFieldGroupName": None,
                "phoneNumberSegmentationFieldId": 0,
                "phoneNumberSegmentationFieldName": None,
                "acquisitionSourceSegmentationFieldGroupId": 0,
                "acquisitionSourceSegmentationFieldGroupName": None,
                "acquisitionSourceSegmentationFieldId": 0,
                "acquisitionSourceSegmentationFieldName": None,
            },
        )

    @bp.get("/ShortCode/<int:sender_code_id>/PhoneList/<int:phone_list_id>")
    def get_phone_list(sender_code_id: int, phone_list_id: int):
        _query(set())
        spec = book.phone_list(sender_code_id, phone_list_id)
        # As Listrak's own example answers Get SMS List: the one list inside an array.
        return jsonify(
            status=200,
            data=[
                {
                    "phoneListId": phone_list_id,
                    "phoneListName": spec["phoneListName"],
                    "createDate": "2024-01-01T00:00:00",
                    "status": "Active",
                    "smsListType": "Standard",
                    "messageLimit": 0,
                    "messageLimitTimeFrame": None,
                    "requireDoubleOptIn": bool(spec.get("requireDoubleOptIn")),
                    "requireAgeGate": False,
                }
            ],
        )

    @bp.get("/ShortCode/<int:sender_code_id>/Contact/<phone>")
    def get_contact(sender_code_id: int, phone: str):
        _query(set())
        contact = book.contact(sender_code_id, check_phone(phone))
        contact.pop("lists")
        return jsonify(status=200, data=contact)

    @bp.get("/ShortCode/<int:sender_code_id>/Contact/<phone>/PhoneList")
    def get_contact_lists(sender_code_id: int, phone: str):
        query = _query({"cursor", "count"})
        contact = book.contact(sender_code_id, check_phone(phone))
        rows = [
            {
                "phoneListId": list_id,
                "subscriptionState": membership["subscriptionState"],
                "subscribeDate": membership["subscribeDate"],
                "unsubscribeDate": membership["unsubscribeDate"],
                "pendingDate": None,
                "pendingDoubleOptIn": False,
                "pendingAgeGate": False,
            }
            for list_id, membership in sorted(contact["lists"].items())
        ]
        page, cursor = page_of(query, rows)
        return jsonify(status=200, nextPageCursor=cursor, data=page)

    @bp.post("/ShortCode/<int:sender_code_id>/Contact/<phone>/PhoneList/<int:phone_list_id>")
    def subscribe(sender_code_id: int, phone: str, phone_list_id: int):
        _query(set())
        book.subscribe(sender_code_id, check_phone(phone), phone_list_id)
        return jsonify(status=201, resourceId=phone), 201

    @bp.post("/ShortCode/<int:sender_code_id>/PhoneList/<int:phone_list_id>/Contact")
    def create_contact(sender_code_id: int, phone_list_id: int):
        _query(set())
        book.phone_list(sender_code_id, phone_list_id)  # Listrak checks the route before the body
        contact = _contact_body()
        book.create(sender_code_id, phone_list_id, contact)
        return jsonify(status=201, resourceId=contact["phoneNumber"]), 201

    @bp.delete("/ShortCode/<int:sender_code_id>/ContactUnsubscribe/<phone>/PhoneList/<int:phone_list_id>")
    def unsubscribe(sender_code_id: int, phone: str, phone_list_id: int):
        _query(set())
        book.unsubscribe(sender_code_id, check_phone(phone), phone_list_id)
        return jsonify(status=200)

    return bp
