"""`connector verify` for Listrak: live checks against the Email API (or the sandbox) with the
partner's own OAUTH_LISTRAK keys: each key's token, every list, every profile field id, and, when
mappings use it, access to the Beta profile-field bulk route. (The `sms:` block's checks are in
`sms_checks`.)

Listrak has no list-wide field listing, so fields are found with one GET per field group. The
bulk route has no read-only form: it is probed with an empty array, which imports nothing
(Listrak refuses it as invalid input, past the Beta check, or starts an empty import).
"""

from __future__ import annotations

from connector.plugin_api import (
    InvalidCredentials,
    OutboundRequest,
    Partner,
)
from plugins.listrak.profile_fields import BETA_ADVICE, NO_BETA_ACCESS

_FIELD_PREFIX = "profile field"
BULK_ROUTE = "profile-field bulk route (Beta)"


def failure(result) -> str:
    if result.status is None:
        return result.error or "no response"
    body = result.body if isinstance(result.body, dict) else {}
    code, message = body.get("error"), body.get("message")
    return " ".join(p for p in (f"HTTP {result.status}", code and f"{code}:", message) if p)


def _fields_to_check(partner: Partner) -> dict[int, list[tuple[str, int]]]:
    """{list id: [(what uses it, field id)]}: each subscription list's attributes, then the
    field ids of mappings whose list id is fixed in the config."""
    by_list = partner.settings.get("segmentation_fields_by_list") or {}
    wanted: dict[int, list[tuple[str, int]]] = {
        list_id: list(by_list.get(list_id, partner.settings["segmentation_fields"]).items())
        for list_id in partner.settings.get("subscription_list_ids")
        or [partner.settings["subscription_list_id"]]
    }
    for mapping in partner.settings.get("mappings") or []:
        list_id = mapping.get("list_id")
        if not isinstance(list_id, int):
            continue  # read from each event: nothing fixed to check
        for key in mapping.get("profile_field_values", {}):
            if str(key).isdigit() and int(key) > 0:
                wanted.setdefault(list_id, []).append((f"mapping {mapping.get('name', '?')!r}", int(key)))
    return wanted


def tokens(keys: dict, api_url: str, credentials, redactor, what: str = "") -> tuple[list, list]:
    """A check line per key of `keys` ({environment: partner_key_id}) fetching its token, and
    the (key id, Credentials) that worked. `what` names the API ("SMS ") in the lines."""
    checks, working = [], []
    for environment, key_id in keys.items():
        if not key_id:
            continue
        label = f"{what}token for key {key_id} ({environment})"
        try:
            creds = credentials(key_id)
            creds.apply(OutboundRequest("GET", api_url))
        except InvalidCredentials as exc:
            checks.append((False, f"{label}: refused by the token endpoint: {exc}"))
        except Exception as exc:  # unreachable, unreadable answer, ...
            checks.append((False, f"{label}: could not fetch: {redactor.text(str(exc))}"))
        else:
            checks.append((True, f"{label}: fetched"))
            working.append((key_id, creds))
    return checks, working


def _get(http, creds, url: str):
    return http.send(OutboundRequest("GET", url), creds)


def _list_fields(http, creds, api: str, list_id: int) -> tuple[dict[int, str] | None, str]:
    """{field id: description} over every field group of the list, or (None, why not)."""
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


def _bulk_route(partner: Partner, http, working: list, list_id: int) -> list[tuple[bool, str]]:
    """One probe per key: the Beta permission belongs to the integration, not to a list."""
    used_by = ", ".join(repr(m.get("name", "?")) for m in partner.settings.get("mappings") or [])
    checks = []
    for key_id, creds in working:
        url = f"{partner.settings['api_url']}/List/{list_id}/Contact/SegmentationField"
        result = http.send(
            OutboundRequest("POST", url, json=[], headers={"Content-Type": "application/json"}), creds
        )
        code = result.body.get("error") if isinstance(result.body, dict) else None
        label = f"{BULK_ROUTE} with key {key_id}"
        if code == NO_BETA_ACCESS:
            checks.append(
                (False, f"{label}: {NO_BETA_ACCESS}: the mappings ({used_by}) need it; {BETA_ADVICE}")
            )
        elif result.ok or (result.status == 400 and code):
            checks.append((True, f"{label}: this integration may use it"))
        else:
            checks.append((False, f"{label}: {failure(result)}"))
    return checks


def verify(partner: Partner, http, credentials) -> list[tuple[bool, str]]:
    """(ok, line) per check; `credentials(partner_key_id)` gives a key's Credentials."""
    api = partner.settings["api_url"]
    checks, working = tokens(partner.keys.configured(), api, credentials, http.redactor)
    for list_id, wanted in _fields_to_check(partner).items():
        if not working:
            checks.append((False, f"list {list_id}: not checked (no key could fetch a token)"))
            continue
        readable = None
        for key_id, creds in working:
            result = _get(http, creds, f"{api}/List/{list_id}")
            suffix = f" with key {key_id}" if len(working) > 1 else ""
            if result.ok:
                name = ((result.body or {}).get("data") or {}).get("listName")
                checks.append((True, f"list {list_id}{suffix}: exists ({name!r})"))
                readable = readable or creds
            else:
                checks.append((False, f"list {list_id}{suffix}: {failure(result)}"))
        if not wanted:
            continue
        if readable is None:
            checks.append(
                (False, f"{_FIELD_PREFIX}s of list {list_id}: not checked (the list could not be read)")
            )
            continue
        found, how = _list_fields(http, readable, api, list_id)
        if found is None:
            checks.append((False, f"{_FIELD_PREFIX}s of list {list_id}: {how}"))
            continue
        for used_by, field_id in wanted:
            if field_id in found:
                checks.append(
                    (
                        True,
                        f"{_FIELD_PREFIX} {field_id} ({used_by}): exists in list "
                        f"{list_id} ({found[field_id]})",
                    )
                )
            else:
                checks.append(
                    (False, f"{_FIELD_PREFIX} {field_id} ({used_by}): not in list {list_id} (searched {how})")
                )
    if partner.settings.get("mappings") and working:
        fixed = [m["list_id"] for m in partner.settings["mappings"] if isinstance(m.get("list_id"), int)]
        checks += _bulk_route(partner, http, working, (fixed or partner.settings["subscription_list_ids"])[0])
    return checks
