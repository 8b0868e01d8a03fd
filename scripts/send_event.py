"""Send one signed referral event to a running connector (`make run` prints how).

usage: python scripts/send_event.py opt_in|opt_out EMAIL [--url http://127.0.0.1:8000]
       python scripts/send_event.py sms_opt_in|sms_opt_out PHONE [--email EMAIL]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import uuid
from datetime import UTC, datetime

import requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("type", choices=["opt_in", "opt_out", "sms_opt_in", "sms_opt_out"])
    parser.add_argument("address", help="the email (opt_in, opt_out) or the phone number (sms_*)")
    parser.add_argument("--email", help="an SMS event's email, if the person gave one")
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--source", default="extole")
    parser.add_argument("--environment", default="production")
    args = parser.parse_args()
    secret = os.environ.get("EXTOLE_WEBHOOK_SECRET", "dev-webhook-secret")
    sms = args.type.startswith("sms_")
    person = {"phone_number": args.address} if sms else {"email": args.address}
    if sms and args.email:
        person["email"] = args.email
    if args.type in ("opt_in", "sms_opt_in"):
        person = {
            "first_name": "Jane",
            "last_name": "Doe",
            "phone_number": "+15555555555",
            "share_link": "refer.example.com/jdoe",
            "funnel": "advocate",
            **person,
        }
    event = {
        "event_id": f"demo-{uuid.uuid4().hex[:12]}",
        "type": args.type,
        "event_time": datetime.now(UTC).isoformat(),
        "environment": args.environment,
        "person": person,
    }
    body = json.dumps(event).encode()
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    response = requests.post(
        f"{args.url}/webhooks/{args.source}",
        data=body,
        timeout=10,
        headers={"Content-Type": "application/json", "X-Extole-Signature": f"sha256={signature}"},
    )
    print(response.status_code, response.text.strip())


if __name__ == "__main__":
    main()
