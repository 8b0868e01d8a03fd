"""A strict local look-alike of Listrak's OAuth2 token endpoint and Email API v1 (contacts, fields)."""

from __future__ import annotations

import argparse
import base64
import copy
import hashlib
import hmac
import json
import re
import secrets
import sys
import threading
import time
from datetime import UTC, datetime

from flask import Blueprint, Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException
from werkzeug.serving import make_server

from plugins.listrak.sandbox_faults import FaultBook, Meter, control_blueprint, intercept

# Plain HTTP is served on purpose: real Listrak refuses it (ERROR_UNSUPPORTED_PROTOCOL), but the
# sandbox only ever listens on loopback, where the connector accepts http:// URLs.

DEFAULT_CLIENTS = {"sandbox-client": "sandbox-secret",
                   "sandbox-staging-client": "sandbox-staging-secret"}


def _fields(*rows):
    return {fid: {"name": name, "dataType": kind} for fid, name, kind in rows}


# lists: {listId: {"listName", "segmentationFieldGroups": {groupId: {"name", "fields":
#   {fieldId: {"name", "dataType", "maxLength" (optional)}}}}}}; str ids are accepted too.
DEFAULT_LISTS = {
    12345: {"listName": "Referral opt-ins", "segmentationFieldGroups": {
        10: {"name": "Referral profile", "fields": _fields(
            (1001, "phone_number", "Text"), (1002, "share_link", "Text"),
            (1003, "first_name", "Text"), (1004, "last_name", "Text"), (1005, "funnel", "Text"))},
        20: {"name": "Audiences", "fields": _fields(
            (6789, "My audience", "CheckBox"), (6790, "Other audience", "CheckBox"))},
    }},
    456: {"listName": "Second list", "segmentationFieldGroups": {
        30: {"name": "Audiences", "fields": _fields((6789, "My audience", "CheckBox"))},
    }},
}
DEFAULT_MAX_LENGTH = {"CheckBox": 3, "RadioButton": 100}
SUBSCRIBED, UNSUBSCRIBED = "Subscribed", "Unsubscribed"
EMAIL_RE = re.compile(r"^[^@\s\"(),:;<>\[\]\\]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                      r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$")
CONTACT_KEYS = {"emailAddress", "subscriptionState", "externalContactID", "segmentationFieldValues"}
VALUE_KEYS = {"segmentationFieldId", "value"}
BULK_KEYS = {"emailAddress", "segmentationFieldValues"}
BULK_MAX, PAGE_MAX, FIELD_IDS_MAX = 10_000, 5_000, 30
UNAUTHORIZED = {"status": 401, "error": "ERROR_UNAUTHORIZED",
                "message": "Authorization was denied for this request."}


class ApiError(Exception):
    def __init__(self, status: int, error: str, message: str):
        super().__init__(message)
        self.status, self.error, self.message = status, error, message


def invalid(name: str) -> ApiError:
    return ApiError(400, "ERROR_INVALID_PARAMETER", f"An invalid value was supplied for {name}.")


def malformed(detail: str = "Invalid JSON body was supplied.") -> ApiError:
    return ApiError(400, "ERROR_MALFORMED_REQUEST_BODY", detail)


def not_found(what: str) -> ApiError:
    return ApiError(404, "ERROR_UNABLE_TO_LOCATE_RESOURCE",
                    f"Unable to locate a resource associated with the {what} supplied.")


def _normalize_lists(lists: dict) -> dict[int, dict]:
    out = {}
    for list_id, spec in copy.deepcopy(lists).items():
        groups = {}
        for group_id, group in spec.get("segmentationFieldGroups", {}).items():
            fields = {}
            for field_id, f in group.get("fields", {}).items():
                kind = f.get("dataType", "Text")
                fields[int(field_id)] = {"name": f["name"], "dataType": kind, "maxLength": int(
                    f.get("maxLength", DEFAULT_MAX_LENGTH.get(kind, 500)))}
            groups[int(group_id)] = {"name": group.get("name", f"Group {group_id}"),
                                     "fields": fields}
        out[int(list_id)] = {**spec, "listName": spec.get("listName", f"List {list_id}"),
                             "segmentationFieldGroups": groups}
    return out


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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
            raise ApiError(400, "ERROR_SEGMENTATION_FIELD_DEFINED_TWICE",
                           f"Two or more values were supplied for segmentationFieldId {fid}.")
        values[fid] = value
    return values


class Sandbox:
    """All sandbox state, guarded by one lock."""

    def __init__(self, clients: dict[str, str], lists: dict, token_lifetime: int, clock):
        self.clients, self.lists = dict(clients), _normalize_lists(lists)
        self.fields = {lid: {fid: {**f, "groupId": gid}
                             for gid, g in spec["segmentationFieldGroups"].items()
                             for fid, f in g["fields"].items()}
                       for lid, spec in self.lists.items()}
        self.token_lifetime, self.clock = token_lifetime, clock
        self.lock = threading.Lock()
        self.faults, self.meter = FaultBook(), Meter()
        self.tokens: dict[str, tuple[str, float]] = {}
        self.reset()

    def reset(self) -> None:
        """Forget contacts, counters, faults and latency (issued tokens stay valid)."""
        with self.lock:
            self.contacts: dict[int, dict[str, dict]] = {lid: {} for lid in self.lists}
        self.meter.reset()
        self.faults.reset()

    def issue_token(self, client_id: str) -> str:
        token = secrets.token_urlsafe(32)
        with self.lock:
            self.tokens[token] = (client_id, self.clock() + self.token_lifetime)
        self.meter.bump("token_fetches", client_id)
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
        self.meter.bump("per_client", client_id)
        return client_id

    def list_fields(self, list_id: int) -> dict[int, dict]:
        if list_id not in self.lists:
            raise not_found("listId")
        return self.fields[list_id]

    def upsert(self, list_id: int, email: str, state: str, external_id: str | None,
               values: dict[int, str] | None, override: bool, update_type: str,
               new_email: str | None) -> tuple[int, str]:
        now = _iso(self.clock())
        with self.lock:
            contacts = self.contacts[list_id]
            contact = contacts.get(email)
            if contact is None:
                if state == UNSUBSCRIBED:
                    raise ApiError(400, "ERROR_NOT_SUBSCRIBED_EMAIL_ADDRESS",
                                   "The emailAddress is not subscribed to the list.")
                contact = contacts[email] = {
                    "emailAddress": email, "subscriptionState": SUBSCRIBED, "subscribeDate": now,
                    "unsubscribeDate": None, "externalContactID": None,
                    "segmentationFieldValues": {}}
                status = 201
            else:
                status = 200
                current = contact["subscriptionState"]
                if state == SUBSCRIBED and current == UNSUBSCRIBED:
                    if not override:
                        raise ApiError(400, "ERROR_UNSUBSCRIBED_EMAIL_ADDRESS", "The emailAddress "
                                       "has already been unsubscribed from the list.")
                    contact.update(subscriptionState=SUBSCRIBED, subscribeDate=now,
                                   unsubscribeDate=None)
                elif state == UNSUBSCRIBED and current == SUBSCRIBED:
                    contact.update(subscriptionState=UNSUBSCRIBED, unsubscribeDate=now)
                if new_email and new_email != email:
                    if new_email in contacts:
                        raise ApiError(400, "ERROR_SUBSCRIBED_NEW_EMAIL_ADDRESS",
                                       "The newEmailAddress is already on the list.")
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

    def bulk_update(self, list_id: int, items: list[tuple[str, dict[int, str]]]) -> str:
        now = _iso(self.clock())
        with self.lock:
            contacts = self.contacts[list_id]
            for email, values in items:
                contact = contacts.setdefault(email, {
                    "emailAddress": email, "subscriptionState": SUBSCRIBED, "subscribeDate": now,
                    "unsubscribeDate": None, "externalContactID": None,
                    "segmentationFieldValues": {}})
                contact["segmentationFieldValues"].update(values)
        self.meter.bulk(list_id, len(items))
        return secrets.token_hex(8)

    def public_contact(self, list_id: int, contact: dict, field_ids: list[int] | None) -> dict:
        fields = self.fields[list_id]
        values = contact["segmentationFieldValues"]
        wanted = values if field_ids is None else [f for f in field_ids if f in values]
        email = contact["emailAddress"]
        return {
            "emailAddress": email,
            "emailKey": hashlib.md5(f"{list_id}:{email}".encode(), usedforsecurity=False
                                    ).hexdigest(),
            "universalEmailKey": hashlib.sha256(email.encode()).hexdigest(),
            "subscriptionState": contact["subscriptionState"],
            "subscribeDate": contact["subscribeDate"], "resubscribeDate": None,
            "subscribeMethod": None, "unsubscribeDate": contact["unsubscribeDate"],
            "unsubscribeMethod": None, "externalContactID": contact["externalContactID"],
            "segmentationFieldValues": [
                {"segmentationFieldGroupId": fields[fid]["groupId"], "segmentationFieldId": fid,
                 "value": values[fid]} for fid in wanted],
        }

    def state(self) -> dict:
        """The /_sandbox/state document (JSON-ready: list and field ids become strings)."""
        with self.lock:
            lists = {str(lid): {"listName": self.lists[lid]["listName"], "contacts": {
                email: {**c, "segmentationFieldValues": {
                    str(k): v for k, v in c["segmentationFieldValues"].items()}}
                for email, c in book.items()}} for lid, book in self.contacts.items()}
        return {"lists": lists, **self.meter.snapshot(), "faults": self.faults.describe(),
                "faults_applied": dict(self.faults.applied), "latency_ms": self.faults.latency_ms}


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
        raise ApiError(415, "ERROR_UNSUPPORTED_CONTENT_TYPE",
                       "The request's Content-Type must be application/json.")
    try:
        return json.loads(request.get_data())
    except (ValueError, UnicodeDecodeError):
        raise malformed() from None


def _field_ids(query: dict[str, str], fields: dict) -> list[int] | None:
    ids = _ids(query.get("segmentationFieldIds"), "segmentationFieldIds")
    if ids is not None and len(ids) > FIELD_IDS_MAX:
        raise ApiError(400, "ERROR_TOO_MANY_SEGMENTATION_FIELDS",
                       f"At most {FIELD_IDS_MAX} segmentationFieldIds may be requested.")
    if ids is not None and any(i not in fields for i in ids):
        raise invalid("segmentationFieldIds")
    return ids


def email_api(sb: Sandbox) -> Blueprint:
    bp = Blueprint("listrak_email_v1", __name__, url_prefix="/email/v1")

    @bp.post("/List/<int:list_id>/Contact")
    def upsert_contact(list_id: int):
        query = _query({"overrideUnsubscribe", "subscribedByContact", "sendDoubleOptIn",
                        "updateType", "eventIds", "newEmailAddress"})
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
            raise ApiError(400, "ERROR_UNSUBSCRIBE_WITH_SEGMENTATION_DATA",
                           "Profile field data cannot be supplied when unsubscribing a contact.")
        if state == UNSUBSCRIBED and event_ids:
            raise ApiError(400, "ERROR_UNSUBSCRIBE_WITH_EVENTS",
                           "Events cannot be supplied when unsubscribing a contact.")
        status, resource = sb.upsert(list_id, email, state, external_id,
                                     None if raw_values is None else values, override,
                                     update_type, new_email)
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

    @bp.get("/List/<int:list_id>/Contact")
    def list_contacts(list_id: int):
        # startDate/endDate/useOriginalSubscribeDate are not imitated: refused as unknown.
        query = _query({"subscriptionState", "externalContactId", "segmentationFieldIds",
                        "cursor", "count"})
        field_ids = _field_ids(query, sb.list_fields(list_id))
        state = query.get("subscriptionState", SUBSCRIBED)
        if state not in (SUBSCRIBED, UNSUBSCRIBED):
            raise invalid("subscriptionState")
        count = query.get("count", "1000")
        if not count.isdigit() or not 1 <= int(count) <= PAGE_MAX:
            raise invalid("count")
        cursor = query.get("cursor", "Start")
        try:
            offset = 0 if cursor == "Start" else int(base64.urlsafe_b64decode(cursor.encode()))
        except ValueError:
            offset = -1
        if offset < 0:
            raise invalid("cursor")
        external = query.get("externalContactId")
        with sb.lock:
            rows = [c for c in sb.contacts[list_id].values() if c["subscriptionState"] == state
                    and (external is None or c["externalContactID"] == external)]
            page = [sb.public_contact(list_id, c, field_ids)
                    for c in rows[offset:offset + int(count)]]
        more = offset + int(count) < len(rows)
        cursor = base64.urlsafe_b64encode(str(offset + int(count)).encode()).decode()
        return jsonify(status=200, nextPageCursor=cursor if more else None, data=page)

    @bp.post("/List/<int:list_id>/Contact/SegmentationField")
    def bulk_fields(list_id: int):
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
                raise malformed(f"[{i}] must be an object with emailAddress and "
                                "segmentationFieldValues.")
            if not isinstance(item.get("segmentationFieldValues"), list):
                raise invalid(f"[{i}].segmentationFieldValues")
            email = check_email(item.get("emailAddress"), f"[{i}].emailAddress")
            values = parse_values(item["segmentationFieldValues"], fields,
                                  f"[{i}].segmentationFieldValues")
            items.append((email, values))
        return jsonify(status=201, resourceId=sb.bulk_update(list_id, items)), 201

    @bp.get("/List/<int:list_id>")
    def get_list(list_id: int):
        _query(set())
        sb.list_fields(list_id)
        spec = sb.lists[list_id]
        return jsonify(status=200, data={
            "listId": list_id, "listName": spec["listName"], "folderId": 0, "ipPoolId": 0,
            "bounceDomainAlias": None, "bounceHandling": "Standard", "bounceUnsubscribeCount": 5,
            "createDate": "2024-01-01T00:00:00", "enableDoubleOptIn": False,
            "fromEmail": spec.get("fromEmail", "news@example.com"),
            "fromName": spec.get("fromName", "Sandbox")})

    @bp.get("/List/<int:list_id>/SegmentationFieldGroup")
    def get_groups(list_id: int):
        _query(set())
        sb.list_fields(list_id)
        groups = sb.lists[list_id]["segmentationFieldGroups"]
        return jsonify(status=200, data=[
            {"segmentationFieldGroupId": gid, "segmentationFieldGroupName": g["name"],
             "position": pos} for pos, (gid, g) in enumerate(groups.items(), start=1)])

    @bp.get("/List/<int:list_id>/SegmentationFieldGroup/<int:group_id>/SegmentationField")
    def get_fields(list_id: int, group_id: int):
        _query(set())
        sb.list_fields(list_id)
        group = sb.lists[list_id]["segmentationFieldGroups"].get(group_id)
        if group is None:
            raise not_found("listId and segmentationFieldGroupId")
        return jsonify(status=200, data=[
            {"segmentationFieldId": fid, "segmentationFieldName": f["name"],
             "segmentationFieldGroupId": group_id, "dataType": f["dataType"],
             "maxLength": f["maxLength"], "position": pos}
            for pos, (fid, f) in enumerate(group["fields"].items(), start=1)])

    return bp


ROUTE_NAMES = {"<int:list_id>": "<listId>", "<identifier>": "<contactIdentifier>",
               "<int:group_id>": "<segmentationFieldGroupId>"}


def _route_label() -> str:
    """E.g. "POST /List/<listId>/Contact" (Email API routes relative to /email/v1)."""
    if request.url_rule is None:
        return f"{request.method} (unknown route)"
    rule = request.url_rule.rule.removeprefix("/email/v1")
    for flask_name, listrak_name in ROUTE_NAMES.items():
        rule = rule.replace(flask_name, listrak_name)
    return f"{request.method} {rule}"


def _token(sb: Sandbox):
    if request.mimetype != "application/x-www-form-urlencoded":
        return jsonify(error="invalid_request"), 400
    form = request.form
    if form.get("grant_type") != "client_credentials":
        return jsonify(error="unsupported_grant_type"), 400
    client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
    expected = sb.clients.get(client_id)
    if expected is None or not hmac.compare_digest(expected.encode(), secret.encode()):
        return jsonify(error="Invalid Credentials"), 400
    response = jsonify(access_token=sb.issue_token(client_id), token_type="bearer",
                       expires_in=sb.token_lifetime)
    response.headers["Cache-Control"] = "no-store"
    return response


def create_sandbox_app(clients: dict[str, str] | None = None, lists: dict | None = None, *,
                       token_lifetime: int = 3599, clock=time.time) -> Flask:
    """The sandbox app: /OAuth2/Token, /email/v1/..., and the /_sandbox/ control routes.

    The Sandbox object (state, faults) is at app.extensions["listrak_sandbox"].
    """
    sb = Sandbox(DEFAULT_CLIENTS if clients is None else clients,
                 DEFAULT_LISTS if lists is None else lists, token_lifetime, clock)
    app = Flask(__name__)
    app.extensions["listrak_sandbox"] = sb
    app.register_blueprint(email_api(sb))
    app.register_blueprint(control_blueprint(sb))
    app.add_url_rule("/OAuth2/Token", "token", lambda: _token(sb), methods=["POST"])

    def is_api() -> bool:
        return request.path.startswith("/email/v1/") or request.path == "/OAuth2/Token"

    @app.before_request
    def gate():
        if not is_api():
            return None
        target = "token" if request.path == "/OAuth2/Token" else "api"
        sb.meter.request(_route_label(), email_api=target == "api")
        response = intercept(sb.faults, target, request.environ, sb.expire_tokens)
        if response is not None:
            return response
        if target == "api" and request.url_rule is not None:
            scheme, _, token = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or sb.client_for(token.strip()) is None:
                return jsonify(UNAUTHORIZED), 401
        return None

    @app.after_request
    def count_status(response: Response):
        if is_api():
            sb.meter.bump("per_status", str(response.status_code))
        return response

    @app.errorhandler(ApiError)
    def api_error(exc: ApiError):
        return jsonify(status=exc.status, error=exc.error, message=exc.message), exc.status

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        known = {404: ("ERROR_UNKNOWN_ROUTE", "Invalid route was supplied."),
                 405: ("ERROR_UNSUPPORTED_METHOD", "The route does not support this method.")}
        error, message = known.get(exc.code or 500, ("ERROR_INVALID_PARAMETER", exc.description))
        return jsonify(status=exc.code, error=error, message=message), exc.code

    @app.errorhandler(Exception)
    def unhandled(exc: Exception):
        app.logger.exception("listrak sandbox: unhandled error")
        return jsonify(status=500, error="ERROR_UNHANDLED_EXCEPTION",
                       message="An unexpected error occurred."), 500

    return app


def serve_in_thread(host: str = "127.0.0.1", port: int = 0, app: Flask | None = None):
    """Serve the sandbox (or `app`) from a daemon thread; returns (server, base_url)."""
    server = make_server(host, port, app or create_sandbox_app(), threaded=True)
    threading.Thread(target=server.serve_forever, name="listrak-sandbox", daemon=True).start()
    return server, f"http://{host}:{server.server_port}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="loopback only (plain HTTP)")
    parser.add_argument("--port", type=int, default=8900)
    parser.add_argument("--token-lifetime", type=int, default=3599)
    parser.add_argument("--lists", help="JSON file with the lists structure")
    args = parser.parse_args(argv)
    lists = None
    if args.lists:
        with open(args.lists, encoding="utf-8") as fh:
            lists = json.load(fh)
    app = create_sandbox_app(lists=lists, token_lifetime=args.token_lifetime)
    server = make_server(args.host, args.port, app, threaded=True)
    print(f"Listrak sandbox on http://{args.host}:{server.server_port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
