"""What Listrak holds now for one address, read live for a person's consent story with the
partner's own OAUTH_LISTRAK keys (each environment's key: they may reach different accounts).

An email address: `GET /List/{listId}/Contact/{email}` on each subscription list (Email API).
A phone number, when the partner has an `sms:` block: `GET /ShortCode/{senderCodeId}/Contact/
{phone}` (the contact on the sender code: `optedOut`, dates) and, since that answer names no
list, `GET /ShortCode/{senderCodeId}/Contact/{phone}/PhoneList` for its state on the phone list.
A 404 means Listrak has no such contact there: "not on the list".
"""

from __future__ import annotations

from urllib.parse import quote

from connector.plugin_api import (
    ContactAddress,
    ContactState,
    InvalidCredentials,
    OutboundRequest,
    Partner,
)
from plugins.listrak.contacts import contact_key
from plugins.listrak.sms import sms_contact_key, sms_place

NOT_ON_LIST = "not on the list"
EMAIL_FACTS = ("subscribeDate", "resubscribeDate", "unsubscribeDate", "externalContactID")
SMS_FACTS = ("optedOut", "subscribeDate", "unsubscribeDate", "emailAddress", "firstName", "lastName")
LIST_FACTS = ("subscribeDate", "unsubscribeDate", "pendingDate", "pendingDoubleOptIn", "pendingAgeGate")


#: A partner's error text is shown as far as this (its answers may be of any size or shape).
MAX_PROBLEM = 300


def _answer_problem(result) -> str:
    if result.status is None:
        return (result.error or "no answer")[:MAX_PROBLEM]
    if result.ok:
        return f"HTTP {result.status}, but no data in the answer that Listrak's API describes"
    body = result.body if isinstance(result.body, dict) else {}
    code, message = body.get("error"), body.get("message")
    said = " ".join(str(p) for p in (f"HTTP {result.status}", code and f"{code}:", message) if p)
    return said[:MAX_PROBLEM]


def _state_of(found: dict) -> str:
    state = found.get("subscriptionState")
    return str(state)[:100] if state is not None else "unknown (Listrak named no subscriptionState)"


def _data(result):
    data = result.body.get("data") if isinstance(result.body, dict) else None
    return data if isinstance(data, dict | list) else None


def _facts(found: dict, names) -> dict:
    return {name: found[name] for name in names if isinstance(found, dict) and found.get(name) is not None}


class _Reader:
    def __init__(self, http, credentials, key_id: str):
        self.http, self.credentials, self.key_id = http, credentials, key_id

    def get(self, url: str):
        """(answer, request line) — or raise InvalidCredentials."""
        request = OutboundRequest("GET", url)
        result = self.http.send(request, self.credentials(self.key_id))
        return result, f"GET {result.request_record.get('url', url)}"


def _keys(keys: dict) -> list[tuple[str, str]]:
    return [(environment, key_id) for environment, key_id in keys.items() if key_id]


def _label(place: str, environment: str, keys: dict) -> str:
    return f"{place} · {environment} key" if len(_keys(keys)) > 1 else place


def _refused(place: str, key, key_id: str, exc) -> ContactState:
    return ContactState(place, key, None, error=f"key {key_id}: {exc}")


def _reached(state: str) -> bool | None:
    """Whether a contact in this state gets messages from the list (None: cannot tell)."""
    return {"Subscribed": True, "Unsubscribed": False}.get(state)


def _email_states(partner: Partner, email: str, http, credentials) -> list[ContactState]:
    found = []
    for environment, key_id in _keys(partner.keys.configured()):
        reader = _Reader(http, credentials, key_id)
        for list_id in partner.settings["subscription_list_ids"]:
            place = _label(f"email list {list_id}", environment, partner.keys.configured())
            key = contact_key(partner, environment, list_id, email)
            url = f"{partner.settings['api_url']}/List/{list_id}/Contact/{quote(email, safe='@')}"
            try:
                result, line = reader.get(url)
            except InvalidCredentials as exc:
                found.append(_refused(place, key, key_id, exc))
                continue
            data = _data(result)
            if result.ok and isinstance(data, dict):
                state = _state_of(data)
                facts = _facts(data, EMAIL_FACTS)
                found.append(ContactState(place, key, state, facts, request=line, subscribed=_reached(state)))
            elif result.status == 404:
                found.append(ContactState(place, key, NOT_ON_LIST, request=line, subscribed=False))
            else:
                found.append(ContactState(place, key, None, error=_answer_problem(result), request=line))
    return found


def _sms_states(partner: Partner, phone: str, http, credentials) -> list[ContactState]:
    sms = partner.settings["sms"]
    code_id, list_id = sms["sender_code_id"], sms["phone_list_id"]
    found = []
    for environment, key_id in _keys(sms["keys"]):
        reader = _Reader(http, credentials, key_id)
        place = _label(sms_place(code_id, list_id), environment, sms["keys"])
        key = sms_contact_key(partner, environment, code_id, list_id, phone)
        base = f"{sms['api_url']}/ShortCode/{code_id}/Contact/{phone}"
        try:
            contact, line = reader.get(base)
            if contact.status == 404:
                facts = {"on the sender code": False}
                found.append(ContactState(place, key, NOT_ON_LIST, facts, request=line, subscribed=False))
                continue
            contact_data = _data(contact)
            if not contact.ok or not isinstance(contact_data, dict):
                found.append(ContactState(place, key, None, error=_answer_problem(contact), request=line))
                continue
            lists, lists_line = reader.get(f"{base}/PhoneList")
        except InvalidCredentials as exc:
            found.append(_refused(place, key, key_id, exc))
            continue
        facts = _facts(contact_data, SMS_FACTS)
        rows = _data(lists)
        if not lists.ok or not isinstance(rows, list):
            error = _answer_problem(lists)
            found.append(ContactState(place, key, None, facts, error=error, request=lists_line))
            continue
        both = f"{line}, then {lists_line}"
        membership = next((r for r in rows if isinstance(r, dict) and r.get("phoneListId") == list_id), None)
        if membership is None:
            found.append(ContactState(place, key, NOT_ON_LIST, facts, request=both, subscribed=False))
            continue
        facts |= {f"list {name}": value for name, value in _facts(membership, LIST_FACTS).items()}
        state = _state_of(membership)
        # A number opted out of the whole sender code (a STOP reply) gets no text from any list.
        reached = False if contact_data.get("optedOut") is True else _reached(state)
        found.append(ContactState(place, key, state, facts, request=both, subscribed=reached))
    return found


def read_contact(partner: Partner, address: ContactAddress, http, credentials) -> list[ContactState]:
    if address.kind == "email":
        return _email_states(partner, address.value, http, credentials)
    if address.kind == "phone" and partner.settings.get("sms"):
        return _sms_states(partner, address.value, http, credentials)
    return []
