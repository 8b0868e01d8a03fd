"""`connector verify <source>` for Listrak activity: live, read-only checks against the Email API
(or the sandbox) with the source's OAUTH_LISTRAK key — the token, each list, the Message and
Reporting permissions (Listrak answers 403 with an ERROR_… code when the integration lacks
one), the `user_id_field` profile field and, with `membership: true`, the Contact permission
and the contact reads by date that membership needs."""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from connector.plugin_api import InvalidCredentials, OutboundRequest
from plugins.listrak_activity.reading import failure


def _when(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _get(http, creds, url: str, params: dict | None = None):
    return http.send(OutboundRequest("GET", url, params=params or {}), creds)


def _list_fields(http, creds, api: str, list_id: int) -> tuple[dict[int, str] | None, str]:
    """{field id: description} over every field group of the list, or (None, why not): Listrak
    has no list-wide field listing, so one GET per field group."""
    groups = _get(http, creds, f"{api}/List/{list_id}/SegmentationFieldGroup")
    if not groups.ok:
        return None, f"field groups unreadable: {failure(groups)}"
    found: dict[int, str] = {}
    group_rows = (groups.body or {}).get("data") or []
    for group in group_rows:
        group_id = group.get("segmentationFieldGroupId")
        result = _get(
            http, creds, f"{api}/List/{list_id}/SegmentationFieldGroup/{group_id}/SegmentationField"
        )
        if not result.ok:
            return None, f"fields of group {group_id} unreadable: {failure(result)}"
        for row in (result.body or {}).get("data") or []:
            found[row.get("segmentationFieldId")] = (
                f"{row.get('segmentationFieldName')!r}, {row.get('dataType')}, "
                f"group {group.get('segmentationFieldGroupName')!r}"
            )
    return found, f"{len(group_rows)} field group(s)"


def _token(source: Mapping[str, Any], credentials, redactor) -> tuple[tuple[bool, str], object | None]:
    label = f"token for key {source['key']}"
    try:
        creds = credentials(source["key"])
        creds.apply(OutboundRequest("GET", source["api_url"]))
    except InvalidCredentials as exc:
        return (False, f"{label}: refused by the token endpoint: {exc}"), None
    except Exception as exc:  # unreachable, unreadable answer, ...
        return (False, f"{label}: could not fetch: {redactor.text(str(exc))}"), None
    return (True, f"{label}: fetched"), creds


def _check_list(http, creds, api: str, list_id: int, source: Mapping[str, Any]) -> list[tuple[bool, str]]:
    listed = _get(http, creds, f"{api}/List/{list_id}")
    if not listed.ok:
        return [(False, f"list {list_id}: {failure(listed)}")]
    name = ((listed.body or {}).get("data") or {}).get("listName")
    checks = [(True, f"list {list_id}: exists ({name!r})")]
    now = time.time()
    window = {"startDate": _when(now - source["lookback"]), "endDate": _when(now), "count": "1"}
    messages = _get(http, creds, f"{api}/List/{list_id}/Message", window)
    if not messages.ok:
        checks.append((False, f"Message permission on list {list_id}: {failure(messages)}"))
        checks.append((False, f"Reporting permission on list {list_id}: not checked (no message readable)"))
        return checks
    checks.append((True, f"Message permission on list {list_id}: messages readable"))
    found = (messages.body or {}).get("data") or []
    if not found:  # nothing sent in the window: any older message will do
        older = _get(http, creds, f"{api}/List/{list_id}/Message", {"count": "1"})
        found = ((older.body or {}).get("data") or []) if older.ok else []
    if not found:
        checks.append((True, f"Reporting permission on list {list_id}: not checked (no message sent yet)"))
    else:
        message_id = found[0].get("messageId")
        activity = _get(http, creds, f"{api}/List/{list_id}/Message/{message_id}/Activity", {"count": "1"})
        if activity.ok:
            checks.append(
                (True, f"Reporting permission on list {list_id}: activity of message {message_id} readable")
            )
        else:
            checks.append((False, f"Reporting permission on list {list_id}: {failure(activity)}"))
    if source.get("membership"):
        checks.append(_check_membership(http, creds, api, list_id, now))
    field_id = source.get("user_id_field")
    if field_id is not None:
        fields, how = _list_fields(http, creds, api, list_id)
        if fields is None:
            checks.append((False, f"user_id_field {field_id} in list {list_id}: {how}"))
        elif field_id in fields:
            checks.append((True, f"user_id_field {field_id}: exists in list {list_id} ({fields[field_id]})"))
        else:
            checks.append((False, f"user_id_field {field_id}: not in list {list_id} (searched {how})"))
    return checks


def _check_membership(http, creds, api: str, list_id: int, now: float) -> tuple[bool, str]:
    """One read of the contacts subscribed in the last day, as each poll reads them."""
    label = f"Contact permission on list {list_id} (membership: true reads who subscribed and unsubscribed)"
    window = {
        "subscriptionState": "Subscribed",
        "startDate": _when(now - 86400),
        "endDate": _when(now),
        "useOriginalSubscribeDate": "false",
        "count": "1",
    }
    contacts = _get(http, creds, f"{api}/List/{list_id}/Contact", window)
    if contacts.ok:
        return True, f"{label}: contacts readable by subscribe date"
    hint = " (grant the integration the Contact permission)" if contacts.status == 403 else ""
    return False, f"{label}: {failure(contacts)}{hint}"


def verify(source: Mapping[str, Any], http, credentials) -> list[tuple[bool, str]]:
    """(ok, line) per check; `credentials(partner_key_id)` gives a key's Credentials."""
    token, creds = _token(source, credentials, http.redactor)
    if creds is None:
        return [token, *((False, f"list {i}: not checked (no token)") for i in source["lists"])]
    checks = [token]
    for list_id in source["lists"]:
        checks.extend(_check_list(http, creds, source["api_url"], list_id, source))
    return checks
