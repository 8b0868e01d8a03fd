"""The Listrak look-alike's routes: the OAuth2 client-credentials token endpoint and the Email API
v1 (contacts, bulk profile fields, lists, field groups), as strict about input as Listrak."""

from __future__ import annotations

import base64
import hmac
import json
import re

from flask import Blueprint, g, jsonify, request

from plugins.listrak.sandbox.state import (
    SUBSCRIBED,
    UNSUBSCRIBED,
    ApiError,
    Sandbox,
    invalid,
    malformed,
    not_found,
)

EMAIL_RE = re.compile(
    r"^[^@\s\"(),:;<>\[\]\\]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$"
)
CONTACT_KEYS = {"emailAddress", "subscriptionState", "externalContactID", "segmentationFieldValues"}
VALUE_KEYS = {"segmentationFieldId", "value"}
BULK_KEYS = {"emailAddress", "segmentationFieldValues"}
BULK_MAX, PAGE_MAX, FIELD_IDS_MAX = 10_000, 5_000, 30
ROUTE_NAMES = {
    "<int:sender_code_id>": "<senderCodeId>",
    "<int:phone_list_id>": "<phoneListId>",
    "<phone>": "<phoneNumber>",
    "<int:list_id>": "<listId>",
    "<identifier>": "<contactIdentifier>",
    "<int:group_id>": "<segmentationFieldGroupId>",
    "<int:message_id>": "<messageId>",
    "<int:link_id>": "<messageLinkId>",
}


def check_email(value: object, name: str) -> str:
    if not isinstance(value, str) or len(value) > 254 or not EMAIL_RE.match(value):
        raise invalid(name)
    return value.lower()


def parse_values(raw: object, fields: dict[int, dict], name: str) -> dict[int, str]:
    """[{segmentationFieldId:int, value:str}] → {id: value}, checked against the list's fields."""
    if raw is None:
        return {}
    if not isinstance(raw, list):
        raise malformed(f"{name} must be an array.")
    values: dict[int, str] = {}
    for i, item in enumerate(raw):
        where = f"{name}[{i}]"
        if not isinstance(item, dict) or set(item) - VALUE_KEYS:
            raise malformed(f"{where} must be an object with segmentationFieldId and value.")
        fid, value = item.get("segmentationFieldId"), item.get("value")
        if isinstance(fid, bool) or not isinstance(fid, int) or fid not in fields:
            raise invalid(f"{where}.segmentationFieldId")
        field = fields[fid]
        if not isinstance(value, str) or len(value) > field["maxLength"]:
            raise invalid(f"{where}.value")
        if field["dataType"] == "CheckBox" and value not in ("on", "off", ""):
            raise invalid(f"{where}.value")
        if fid in values:
            raise ApiError(
                400,
                "ERROR_SEGMENTATION_FIELD_DEFINED_TWICE",
                f"Two or more values were supplied for segmentationFieldId {fid}.",
            )
        values[fid] = value
    return values


def _query(allowed: set[str]) -> dict[str, str]:
    """Query parameters by their canonical name (matched case-insensitively, like ASP.NET)."""
    canonical = {name.lower(): name for name in allowed}
    out = {}
    for key, value in request.args.items():
        if key.lower() not in canonical:
            raise invalid(key)
        out[canonical[key.lower()]] = value
    return out


def _bool(query: dict[str, str], name: str) -> bool:
    value = query.get(name, "false").lower()
    if value not in ("true", "false"):
        raise invalid(name)
    return value == "true"


def _ids(raw: str | None, name: str) -> list[int] | None:
    if raw is None:
        return None
    parts = [p.strip() for p in raw.split(",")]
    if not all(p.isdigit() for p in parts):
        raise invalid(name)
    return [int(p) for p in parts]


def _json_body() -> object:
    if request.mimetype != "application/json":
        raise ApiError(
            415, "ERROR_UNSUPPORTED_CONTENT_TYPE", "The request's Content-Type must be application/json."
        )
    try:
        return json.loads(request.get_data())
    except (ValueError, UnicodeDecodeError):
        raise malformed() from None


def _field_ids(query: dict[str, str], fields: dict) -> list[int] | None:
    ids = _ids(query.get("segmentationFieldIds"), "segmentationFieldIds")
    if ids is not None and len(ids) > FIELD_IDS_MAX:
        raise ApiError(
            400,
            "ERROR_TOO_MANY_SEGMENTATION_FIELDS",
            f"At most {FIELD_IDS_MAX} segmentationFieldIds may be requested.",
        )
    if ids is not None and any(i not in fields for i in ids):
        raise invalid("segmentationFieldIds")
    return ids


def email_api(sb: Sandbox) -> Blueprint:
    bp = Blueprint("listrak_email_v1", __name__, url_prefix="/email/v1")

    @bp.post("/List/<int:list_id>/Contact")
    def upsert_contact(list_id: int):
        query = _query(
            {
                "overrideUnsubscribe",
                "subscribedByContact",
                "sendDoubleOptIn",
                "updateType",
                "eventIds",
                "newEmailAddress",
            }
        )
        body = _json_body()
        fields = sb.list_fields(list_id)
        if not isinstance(body, dict):
            raise malformed("The body must be a Contact object.")
        unknown = sorted(set(body) - CONTACT_KEYS)
        if unknown:
            raise malformed(f"Unknown Contact property: {unknown[0]}.")
        email = check_email(body.get("emailAddress"), "emailAddress")
        state = body.get("subscriptionState", SUBSCRIBED)
        if state not in (SUBSCRIBED, UNSUBSCRIBED):
            raise invalid("subscriptionState")
        external_id = body.get("externalContactID")
        if external_id is not None and not isinstance(external_id, str):
            raise invalid("externalContactID")
        raw_values = body.get("segmentationFieldValues")
        values = parse_values(raw_values, fields, "segmentationFieldValues")
        override = _bool(query, "overrideUnsubscribe")
        for flag in ("subscribedByContact", "sendDoubleOptIn"):  # checked, no effect here
            _bool(query, flag)
        update_type = query.get("updateType", "Update")
        if update_type not in ("Update", "Append", "Overwrite"):
            raise invalid("updateType")
        event_ids = _ids(query.get("eventIds"), "eventIds")
        new_email = query.get("newEmailAddress")
        new_email = check_email(new_email, "newEmailAddress") if new_email is not None else None
        if state == UNSUBSCRIBED and values:
            raise ApiError(
                400,
                "ERROR_UNSUBSCRIBE_WITH_SEGMENTATION_DATA",
                "Profile field data cannot be supplied when unsubscribing a contact.",
            )
        if state == UNSUBSCRIBED and event_ids:
            raise ApiError(
                400,
                "ERROR_UNSUBSCRIBE_WITH_EVENTS",
                "Events cannot be supplied when unsubscribing a contact.",
            )
        status, resource = sb.upsert(
            list_id,
            email,
            state,
            external_id,
            None if raw_values is None else values,
            override,
            update_type,
            new_email,
        )
        return jsonify(status=status, resourceId=resource), status

    @bp.get("/List/<int:list_id>/Contact/<identifier>")
    def get_contact(list_id: int, identifier: str):
        query = _query({"segmentationFieldIds"})
        field_ids = _field_ids(query, sb.list_fields(list_id))
        with sb.lock:
            contact = sb.contacts[list_id].get(identifier.strip().lower())
            data = contact and sb.public_contact(list_id, contact, field_ids)
        if data is None:
            raise not_found("listId and contactIdentifier")
        return jsonify(status=200, data=data)

    @bp.post("/List/<int:list_id>/Contact/SegmentationField")
    def bulk_fields(list_id: int):
        sb.check_beta_access(g.get("listrak_client"))  # Listrak checks this before the input
        _query(set())
        body = _json_body()
        fields = sb.list_fields(list_id)
        if not isinstance(body, list):
            raise malformed("The body must be an array of contacts with profile field values.")
        if not 1 <= len(body) <= BULK_MAX:
            raise invalid(f"the request body (1 to {BULK_MAX} items)")
        items = []
        for i, item in enumerate(body):
            if not isinstance(item, dict) or set(item) - BULK_KEYS:
                raise malformed(f"[{i}] must be an object with emailAddress and segmentationFieldValues.")
            if not isinstance(item.get("segmentationFieldValues"), list):
                raise invalid(f"[{i}].segmentationFieldValues")
            email = check_email(item.get("emailAddress"), f"[{i}].emailAddress")
            values = parse_values(item["segmentationFieldValues"], fields, f"[{i}].segmentationFieldValues")
            items.append((email, values))
        return jsonify(status=201, resourceId=sb.bulk_update(list_id, items)), 201

    @bp.get("/List/<int:list_id>")
    def get_list(list_id: int):
        _query(set())
        sb.list_fields(list_id)
        spec = sb.lists[list_id]
        return jsonify(
            status=200,
            data={
                "listId": list_id,
                "listName": spec["listName"],
                "folderId": 0,
                "ipPoolId": 0,
                "bounceDomainAlias": None,
                "bounceHandling": "Standard",
                "bounceUnsubscribeCount": 5,
                "createDate": "2024-01-01T00:00:00",
                "enableDoubleOptIn": False,
                "fromEmail": spec.get("fromEmail", "news@example.com"),
                "fromName": spec.get("fromName", "Sandbox"),
            },
        )

    @bp.get("/List/<int:list_id>/SegmentationFieldGroup")
    def get_groups(list_id: int):
        _query(set())
        sb.list_fields(list_id)
        groups = sb.lists[list_id]["segmentationFieldGroups"]
        return jsonify(
            status=200,
            data=[
                {"segmentationFieldGroupId": gid, "segmentationFieldGroupName": g["name"], "position": pos}
                for pos, (gid, g) in enumerate(groups.items(), start=1)
            ],
        )

    @bp.get("/List/<int:list_id>/SegmentationFieldGroup/<int:group_id>/SegmentationField")
    def get_fields(list_id: int, group_id: int):
        _query(set())
        sb.list_fields(list_id)
        group = sb.lists[list_id]["segmentationFieldGroups"].get(group_id)
        if group is None:
            raise not_found("listId and segmentationFieldGroupId")
        return jsonify(
            status=200,
            data=[
                {
                    "segmentationFieldId": fid,
                    "segmentationFieldName": f["name"],
                    "segmentationFieldGroupId": group_id,
                    "dataType": f["dataType"],
                    "maxLength": f["maxLength"],
                    "position": pos,
                }
                for pos, (fid, f) in enumerate(group["fields"].items(), start=1)
            ],
        )

    return bp


def token_endpoint(sb: Sandbox):
    """`POST /OAuth2/Token`: form-encoded client credentials → a bearer token."""
    if request.mimetype != "application/x-www-form-urlencoded":
        return jsonify(error="invalid_request"), 400
    form = request.form
    if form.get("grant_type") != "client_credentials":
        return jsonify(error="unsupported_grant_type"), 400
    client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
    expected = sb.clients.get(client_id)
    if expected is None or not hmac.compare_digest(expected.encode(), secret.encode()):
        return jsonify(error="Invalid Credentials"), 400
    response = jsonify(
        access_token=sb.issue_token(client_id), token_type="bearer", expires_in=sb.token_lifetime
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def request_emails() -> frozenset[str]:
    """The contacts a request names: `emailAddress` of a body (one contact or an array of
    them) and a contact identifier in the path, lower-case; on the SMS API the phone number
    (path or body `phoneNumber`) too (for faults and per-contact counts)."""
    found = set()
    for name in ("identifier", "phone"):
        value = (request.view_args or {}).get(name)
        if isinstance(value, str):
            found.add(value)
    if request.is_json:
        body = request.get_json(silent=True)
        for item in body if isinstance(body, list) else [body]:
            for name in ("emailAddress", "phoneNumber"):
                if isinstance(item, dict) and isinstance(item.get(name), str):
                    found.add(item[name])
    return frozenset(email.strip().lower() for email in found)


def route_label() -> str:
    """E.g. "POST /List/<listId>/Contact" (Email API routes relative to /email/v1; SMS API
    routes keep their /sms/v1)."""
    if request.url_rule is None:
        return f"{request.method} (unknown route)"
    rule = request.url_rule.rule.removeprefix("/email/v1")
    for flask_name, listrak_name in ROUTE_NAMES.items():
        rule = rule.replace(flask_name, listrak_name)
    return f"{request.method} {rule}"


def page_size(query: dict[str, str]) -> int:
    """`count`: 1000 unless given, at most 5000."""
    count = query.get("count", "1000")
    if not count.isdigit() or not 1 <= int(count) <= PAGE_MAX:
        raise invalid("count")
    return int(count)


def page_of(query: dict[str, str], items: list) -> tuple[list, str | None]:
    """One page of `items` by `cursor`/`count`, and the next page's cursor (None at the end)."""
    size, cursor = page_size(query), query.get("cursor", "Start")
    try:
        offset = 0 if cursor == "Start" else int(base64.urlsafe_b64decode(cursor.encode()))
    except ValueError:
        offset = -1
    if offset < 0:
        raise invalid("cursor")
    more = offset + size < len(items)
    following = base64.urlsafe_b64encode(str(offset + size).encode()).decode() if more else None
    return items[offset : offset + size], following
