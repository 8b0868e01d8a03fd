"""Contacts' userIds (the value of `user_id_field`) from Listrak's Contact routes, for one
list during one poll: one `GET /List/{id}/Contact/{email}` per contact while few are unknown,
else the list's contacts in pages of 5,000 (Subscribed first, then Unsubscribed only if
contacts are still unknown), so 100,000 recipients cost tens of requests, not 100,000."""

from __future__ import annotations

from collections.abc import Iterable

from plugins.listrak_activity.reading import NotFound, Reader, contact_path, single

#: More unknown contacts than this in one page of activity → read the list in pages.
ONE_BY_ONE_MAX = 50
STATES = ("Subscribed", "Unsubscribed")


def field_value(contact: dict, field_id: int | None) -> str | None:
    values = contact.get("segmentationFieldValues")
    for item in values if isinstance(values, list) else []:
        if not isinstance(item, dict):
            continue
        if item.get("segmentationFieldId") == field_id and item.get("value") not in (None, ""):
            return str(item["value"])
    return None


class UserIds:
    """Who has which userId on one list. Only contacts with a value are kept from the paged
    listing; once both subscription states are listed, a contact not found has none (Listrak
    answers 404 for a contact not on the list: no userId either)."""

    def __init__(self, reader: Reader, list_id: int, field_id: int | None):
        self.reader, self.list_id, self.field_id = reader, list_id, field_id
        self.known: dict[str, str | None] = {}
        self.listed_states: list[str] = []

    def lookup(self, emails: Iterable[str]) -> dict[str, str | None]:
        """{email: userId or None} for lower-case `emails`."""
        wanted = set(emails)
        if self.field_id is None:
            return dict.fromkeys(wanted)
        unknown = [e for e in wanted if e not in self.known]
        for state in STATES:
            if len(unknown) <= ONE_BY_ONE_MAX:
                break
            if state not in self.listed_states:
                self._list(state)
                unknown = [e for e in unknown if e not in self.known]
        if len(self.listed_states) == len(STATES):
            self.known.update(dict.fromkeys(unknown))
        else:
            for email in sorted(unknown):
                self.known[email] = self._one(email)
        return {e: self.known.get(e) for e in wanted}

    def _one(self, email: str) -> str | None:
        params, path = {"segmentationFieldIds": str(self.field_id)}, contact_path(self.list_id, email)
        try:
            body = self.reader.get(path, params)
        except NotFound:
            return None
        return field_value(single(body, path), self.field_id)

    def _list(self, state: str) -> None:
        params = {"segmentationFieldIds": str(self.field_id), "subscriptionState": state}
        for rows, _ in self.reader.pages(f"/List/{self.list_id}/Contact", params):
            for contact in rows:
                value = field_value(contact, self.field_id)
                email = contact.get("emailAddress")
                if value is not None and isinstance(email, str):
                    self.known[email.strip().lower()] = value
        self.listed_states.append(state)
