"""The Listrak look-alike's Contact collection, `GET /List/{listId}/Contact` (Email API v1, Bearer
token): a list's contacts in one subscription state, filtered by external id and by date, with
the profile fields asked for, in pages of up to 5,000.

Dates follow the Swagger to the letter. For Subscribed contacts `startDate` and `endDate` apply to
the subscribe date: the original one (`useOriginalSubscribeDate=true`, the default; both bounds
inclusive) or the most recent one, a resubscribe's (`false`; `endDate` exclusive). For
Unsubscribed contacts they apply to the unsubscribe date, both bounds inclusive. A contact
without that date is outside every window; a date without an offset is UTC.

Pages are keyed on the email address: `nextPageCursor` names the last contact a page returned,
so a contact changing state while a client pages neither pushes another out of its page nor
comes twice. Listrak does not document how its own cursors behave under change."""

from __future__ import annotations

import base64
import bisect
from collections.abc import Callable

from flask import Blueprint, jsonify

from plugins.listrak.sandbox.activity import parse_when
from plugins.listrak.sandbox.reports import _window
from plugins.listrak.sandbox.routes import _field_ids, _query, page_size
from plugins.listrak.sandbox.state import SUBSCRIBED, UNSUBSCRIBED, Sandbox, invalid

QUERY = {
    "subscriptionState",
    "externalContactId",
    "segmentationFieldIds",
    "cursor",
    "count",
    "startDate",
    "endDate",
    "useOriginalSubscribeDate",
}


def _original(query: dict[str, str]) -> bool:
    value = query.get("useOriginalSubscribeDate", "true").lower()
    if value not in ("true", "false"):
        raise invalid("useOriginalSubscribeDate")
    return value == "true"


def date_filter(query: dict[str, str], state: str) -> Callable[[dict], bool]:
    """Whether a contact of `state` falls in the query's `startDate`/`endDate` window."""
    start, end = _window(query)
    original = _original(query)
    if start is None and end is None:
        return lambda contact: True
    end_exclusive = state == SUBSCRIBED and not original

    def date_of(contact: dict) -> str | None:
        if state == UNSUBSCRIBED:
            return contact["unsubscribeDate"]
        if original:
            return contact["subscribeDate"]
        return contact.get("resubscribeDate") or contact["subscribeDate"]

    def within(contact: dict) -> bool:
        at = parse_when(date_of(contact))
        if at is None or (start is not None and at < start):
            return False
        return end is None or (at < end if end_exclusive else at <= end)

    return within


def keyed_page(query: dict[str, str], contacts: list[dict]) -> tuple[list[dict], str | None]:
    """One page of `contacts` (sorted by email) after the cursor's email, and the next
    page's cursor (None at the end)."""
    size, cursor = page_size(query), query.get("cursor", "Start")
    start = 0
    if cursor != "Start":
        try:
            last = base64.b64decode(cursor.encode(), altchars=b"-_", validate=True).decode()
        except ValueError:
            raise invalid("cursor") from None
        start = bisect.bisect_right(contacts, last, key=lambda c: c["emailAddress"])
    page = contacts[start : start + size]
    more = start + size < len(contacts)
    following = base64.urlsafe_b64encode(page[-1]["emailAddress"].encode()).decode() if more else None
    return page, following


def contact_collection(sb: Sandbox) -> Blueprint:
    bp = Blueprint("listrak_email_v1_contacts", __name__, url_prefix="/email/v1")

    @bp.get("/List/<int:list_id>/Contact")
    def list_contacts(list_id: int):
        query = _query(QUERY)
        field_ids = _field_ids(query, sb.list_fields(list_id))
        state = query.get("subscriptionState", SUBSCRIBED)
        if state not in (SUBSCRIBED, UNSUBSCRIBED):
            raise invalid("subscriptionState")
        within = date_filter(query, state)
        external = query.get("externalContactId")
        with sb.lock:
            chosen = sorted(
                (
                    c
                    for c in sb.contacts[list_id].values()
                    if c["subscriptionState"] == state
                    and (external is None or c["externalContactID"] == external)
                    and within(c)
                ),
                key=lambda c: c["emailAddress"],
            )
            page, cursor = keyed_page(query, chosen)
            data = [sb.public_contact(list_id, c, field_ids) for c in page]
        return jsonify(status=200, nextPageCursor=cursor, data=data)

    return bp
