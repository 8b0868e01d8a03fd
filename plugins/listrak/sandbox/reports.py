"""The Listrak look-alike's reporting routes (Email API v1, Bearer token): a list's messages,
one message, its activity rows, its links and each link's clickers, with Listrak's paging
(`cursor` from `Start`, `count` up to 5000, `nextPageCursor` null on the last page) and JSON
shapes from its Swagger; plus `POST /_sandbox/activity` to seed them."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, jsonify, request
from marshmallow import ValidationError

from plugins.listrak.sandbox.activity import ActivitySeed, listrak_time, parse_when
from plugins.listrak.sandbox.faults import problem
from plugins.listrak.sandbox.routes import _query, page_of
from plugins.listrak.sandbox.state import ApiError, Sandbox, invalid, not_found

PAGING = {"cursor", "count"}
#: activityType values and the row flag each selects.
ACTIVITY_TYPES = {
    "Open": "open",
    "Read": "read",
    "Click": "click",
    "Bounce": "bounce",
    "Unsubscribe": "unsubscribe",
    "Abuse": "abuse",
}


def _window(query: dict[str, str]) -> tuple[datetime | None, datetime | None]:
    bounds = []
    for name in ("startDate", "endDate"):
        raw = query.get(name)
        parsed = None if raw is None else parse_when(raw)
        if raw is not None and parsed is None:
            raise invalid(name)
        bounds.append(parsed)
    return bounds[0], bounds[1]


def _within(value: str | None, start: datetime | None, end: datetime | None) -> bool:
    if start is None and end is None:
        return True
    when = parse_when(value) if value else None
    return when is not None and (start is None or when >= start) and (end is None or when <= end)


def _paged(query: dict[str, str], items: list):
    page, following = page_of(query, items)
    return jsonify(status=200, nextPageCursor=following, data=page)


def reports_api(sb: Sandbox) -> Blueprint:
    bp = Blueprint("listrak_email_v1_reports", __name__, url_prefix="/email/v1")
    book = sb.activity

    def message_or_404(list_id: int, message_id: int) -> dict:
        sb.list_fields(list_id)
        message = book.message(list_id, message_id)
        if message is None:
            raise not_found("listId and messageId")
        return message

    @bp.get("/List/<int:list_id>/Message")
    def list_messages(list_id: int):
        query = _query({*PAGING, "startDate", "endDate", "includeTestMessages"})
        sb.list_fields(list_id)
        start, end = _window(query)
        with book.lock:
            found = [
                {
                    "messageId": m["messageId"],
                    "sendDate": m["sendDate"],
                    "messageStatus": "Sent",
                    "campaignId": m["campaignId"],
                    "externalCampaignId": m["externalCampaignId"],
                    "subject": m["subject"],
                }
                for m in book.messages.get(list_id, {}).values()
                if _within(m["sendDate"], start, end)
            ]
        return _paged(query, found)

    @bp.get("/List/<int:list_id>/Message/<int:message_id>")
    def get_message(list_id: int, message_id: int):
        _query(set())
        m = message_or_404(list_id, message_id)
        return jsonify(
            status=200,
            data={
                "messageId": m["messageId"],
                "sendDate": m["sendDate"],
                "messageStatus": "Sent",
                "enableUniversalEmailKeySetting": False,
                "campaignId": m["campaignId"],
                "bodyHtml": f"<html><body><h1>{m['subject']}</h1></body></html>",
                "bodyText": m["subject"],
                "codePage": 65001,
                "enablePassalong": False,
                "enableTracking": True,
                "externalCampaignId": m["externalCampaignId"],
                "fromEmail": m["fromEmail"],
                "fromName": m["fromName"],
                "googleAnalyticsCampaignName": None,
                "googleAnalyticsCampaignContent": None,
                "replyEmail": m["fromEmail"],
                "savedAudienceId": None,
                "segmentsApplied": {"includedSegments": [], "excludedSegments": []},
                "subject": m["subject"],
                "toName": None,
            },
        )

    @bp.get("/List/<int:list_id>/Message/<int:message_id>/Activity")
    def get_activity(list_id: int, message_id: int):
        query = _query({*PAGING, "activityType", "dateType", "startDate", "endDate", "emailAddress"})
        message_or_404(list_id, message_id)
        flag = query.get("activityType")
        if flag is not None and flag not in ACTIVITY_TYPES:
            raise invalid("activityType")
        date_type = query.get("dateType", "Send")
        if date_type not in ("Send", "Activity"):
            raise invalid("dateType")
        start, end = _window(query)
        email = query.get("emailAddress", "").strip().lower() or None
        date_key = "sendDate" if date_type == "Send" else "activityDate"
        with book.lock:
            rows = book.rows[(list_id, message_id)]
            chosen = [rows[email]] if email and email in rows else [] if email else list(rows.values())
            found = [
                dict(row)
                for row in chosen
                if (flag is None or row[ACTIVITY_TYPES[flag]]) and _within(row[date_key], start, end)
            ]
        return _paged(query, found)

    @bp.get("/List/<int:list_id>/Message/<int:message_id>/Link")
    def get_links(list_id: int, message_id: int):
        query = _query(PAGING)
        message_or_404(list_id, message_id)
        with book.lock:
            found = [
                {
                    "linkId": link["linkId"],
                    "linkDescription": link["linkDescription"],
                    "linkUrl": link["linkUrl"],
                    "clickCount": len(book.clicks.get((list_id, message_id, link["linkId"]), [])),
                }
                for link in book.links[(list_id, message_id)].values()
            ]
        return _paged(query, found)

    @bp.get("/List/<int:list_id>/Message/<int:message_id>/Link/<int:link_id>/Clicker")
    def get_clickers(list_id: int, message_id: int, link_id: int):
        query = _query({*PAGING, "startDate", "endDate"})
        message_or_404(list_id, message_id)
        start, end = _window(query)
        with book.lock:
            if link_id not in book.links[(list_id, message_id)]:
                raise not_found("listId, messageId and messageLinkId")
            found = [
                dict(click)
                for click in book.clicks.get((list_id, message_id, link_id), [])
                if _within(click["clickDate"], start, end)
            ]
        return _paged(query, found)

    return bp


def seed_activity(sb: Sandbox, body: dict) -> dict[str, int]:
    """Load an ActivitySeed body and apply it; ValidationError names the bad field."""
    seed = ActivitySeed().load(body)
    list_id = seed["list_id"]
    try:
        fields = sb.list_fields(list_id)
    except ApiError:
        raise ValidationError({"list_id": [f"no list {list_id} in the sandbox"]}) from None
    for i, contact in enumerate(seed["contacts"]):
        unknown = [k for k in contact["segmentationFieldValues"] if int(k) not in fields]
        if unknown:
            raise ValidationError(
                {
                    f"contacts.{i}.segmentationFieldValues": [
                        f"no profile field {unknown[0]} in list {list_id}"
                    ]
                }
            )
    try:
        added = sb.activity.add(seed, listrak_time(datetime.fromtimestamp(sb.clock(), UTC)))
    except KeyError as exc:
        raise ValidationError({"body": [exc.args[0]]}) from None
    for contact in seed["contacts"]:
        values = {int(k): v for k, v in contact["segmentationFieldValues"].items()}
        sb.put_contact(
            list_id,
            contact["emailAddress"].lower(),
            contact["subscriptionState"],
            values,
            contact["subscribeDate"],
            contact["unsubscribeDate"],
        )
    return added


def seeding(sb: Sandbox) -> Blueprint:
    """`POST /_sandbox/activity`: contacts, messages, rows, links and clicks in bulk."""
    bp = Blueprint("listrak_sandbox_activity", __name__, url_prefix="/_sandbox")

    @bp.errorhandler(ValidationError)
    def invalid_body(exc: ValidationError):
        return problem(exc)

    @bp.post("/activity")
    def seed():
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise ValidationError({"body": ["must be a JSON object"]})
        return jsonify(added=seed_activity(sb, body)), 201

    return bp
