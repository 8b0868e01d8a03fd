"""A `listrak` partner's `sms:` block checked: across files for `check-config` (its keys exist in
keys/ and are OAUTH_LISTRAK keys), and live for `connector verify` against Listrak's SMS API (or
the sandbox) with those keys: each key's token, the sender code (`GET /ShortCode/{id}`) and the
phone list (`GET /ShortCode/{id}/PhoneList/{id}`)."""

from __future__ import annotations

from connector.plugin_api import (
    OutboundRequest,
    Partner,
)
from plugins.listrak.oauth import ListrakOAuthAlgorithm
from plugins.listrak.sms import phone_list_url, sms_place
from plugins.listrak.verify import failure, tokens


def check(partner: Partner, config) -> list[str]:
    """Problems with the keys the `sms:` block names, as `sms.keys.<environment>: …`."""
    sms = partner.settings.get("sms")
    if sms is None:
        return []
    problems = []
    for environment, key_id in sms["keys"].items():
        if not key_id:
            continue
        key = config.keys.get(key_id)
        if key is None:
            # A key file that exists but is invalid has its own problems listed already.
            if not (config.directory / "keys" / f"{key_id}.yaml").exists():
                problems.append(f"sms.keys.{environment}: no key {key_id!r} in keys/")
        elif key["algorithm"] != ListrakOAuthAlgorithm.name:
            problems.append(
                f"sms.keys.{environment}: key {key_id!r} is {key['algorithm']}; Listrak's SMS API "
                f"takes an {ListrakOAuthAlgorithm.name} key (of an SMS integration)"
            )
    return problems


def _data(result):
    """A Get answer's record: `data` as an object, or (as Listrak's own example of Get SMS List
    shows it) an array holding one, or the bare record its schema describes."""
    body = result.body if isinstance(result.body, dict) else {}
    data = body.get("data", body)
    if isinstance(data, list):
        data = data[0] if data else None
    return data if isinstance(data, dict) else {}


def verify_sms(partner: Partner, http, credentials) -> list[tuple[bool, str]]:
    sms = partner.settings.get("sms")
    if not sms:
        return []
    api, code_id, list_id = sms["api_url"], sms["sender_code_id"], sms["phone_list_id"]
    checks, working = tokens(sms["keys"], api, credentials, http.redactor, what="SMS ")
    if not working:
        return [
            *checks,
            (False, f"{sms_place(code_id, list_id)}: not checked (no SMS key could fetch a token)"),
        ]
    for key_id, creds in working:
        suffix = f" with key {key_id}" if len(working) > 1 else ""
        code = http.send(OutboundRequest("GET", f"{api}/ShortCode/{code_id}"), creds)
        if not code.ok:
            checks.append((False, f"sender code {code_id}{suffix}: {failure(code)}"))
            continue
        found = _data(code)
        described = ", ".join(
            str(found[name]) for name in ("code", "country", "merchantName") if found.get(name)
        )
        checks.append((True, f"sender code {code_id}{suffix}: exists ({described or 'no details'})"))
        phone_list = http.send(OutboundRequest("GET", phone_list_url(api, code_id, list_id)), creds)
        if not phone_list.ok:
            checks.append(
                (False, f"SMS list {list_id} on sender code {code_id}{suffix}: {failure(phone_list)}")
            )
            continue
        found = _data(phone_list)
        described = ", ".join(str(found[name]) for name in ("phoneListName", "status") if found.get(name))
        line = f"SMS list {list_id} on sender code {code_id}{suffix}: exists ({described or 'no details'})"
        if found.get("requireDoubleOptIn"):
            line += (
                "; it requires double opt-in, so a number the connector subscribes stays pending "
                "until the person replies"
            )
        checks.append((True, line))
    return checks
