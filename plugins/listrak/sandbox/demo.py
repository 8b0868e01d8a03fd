"""Demo email activity on the example list for `connector sandbox --demo` (used by `make run`):
two messages with opens, clicks, a bounce with its reason, an unsubscribe and an abuse report;
three of the five recipients carry a user id in profile field 1006, one is not on the list. Two
of the four contacts have unsubscribed (a membership poll sends their list trait as false)."""

from __future__ import annotations

from datetime import datetime, timedelta

from plugins.listrak.sandbox.activity import listrak_time

DEMO_LIST, DEMO_USER_ID_FIELD = 12345, 1006


def demo_seed(now: datetime) -> dict:
    """Two messages on the example list with opens, clicks, a bounce with its reason, an
    unsubscribe and an abuse report; three of the five recipients carry a user id; the two
    who unsubscribed from a message are unsubscribed from the list."""

    def at(**delta) -> str:
        return listrak_time(now - timedelta(**delta))

    sender = {"fromEmail": "rewards@example.com", "fromName": "Example Rewards"}
    return {
        "list_id": DEMO_LIST,
        "contacts": [
            {
                "emailAddress": "jane.doe@example.com",
                "segmentationFieldValues": {"1006": "u-829"},
                "subscribeDate": at(days=30),
            },
            {
                "emailAddress": "john.smith@example.com",
                "segmentationFieldValues": {"1006": "u-830"},
                "subscribeDate": at(days=30),
                "subscriptionState": "Unsubscribed",
                "unsubscribeDate": at(days=1),
            },
            {
                "emailAddress": "ana.garcia@example.com",
                "segmentationFieldValues": {"1006": "u-831"},
                "subscribeDate": at(days=20),
            },
            {
                "emailAddress": "lee.wong@example.com",
                "subscribeDate": at(days=60),
                "subscriptionState": "Unsubscribed",
                "unsubscribeDate": at(days=1, hours=12),
            },
        ],  # pat.jones@example.com is not on the list: no userId
        "messages": [
            {"messageId": 9001, "subject": "Jane sent you $20", "sendDate": at(days=2), **sender},
            {"messageId": 9002, "subject": "Your reward expires soon", "sendDate": at(hours=3), **sender},
        ],
        "rows": [
            {
                "messageId": 9001,
                "emailAddress": "jane.doe@example.com",
                "open": True,
                "activityDate": at(days=2, hours=-1),
            },
            {
                "messageId": 9001,
                "emailAddress": "john.smith@example.com",
                "open": True,
                "unsubscribe": True,
                "activityDate": at(days=1),
            },
            {
                "messageId": 9001,
                "emailAddress": "ana.garcia@example.com",
                "bounce": True,
                "bounceReason": "550 5.1.1 mailbox unavailable",
                "activityDate": at(days=2, minutes=-1),
            },
            {
                "messageId": 9001,
                "emailAddress": "lee.wong@example.com",
                "abuse": True,
                "unsubscribe": True,
                "activityDate": at(days=1, hours=12),
            },
            {
                "messageId": 9001,
                "emailAddress": "pat.jones@example.com",
                "open": True,
                "activityDate": at(hours=30),
            },
            {
                "messageId": 9002,
                "emailAddress": "jane.doe@example.com",
                "open": True,
                "activityDate": at(hours=2),
            },
            {"messageId": 9002, "emailAddress": "pat.jones@example.com"},
        ],
        "links": [
            {
                "messageId": 9001,
                "linkId": 1,
                "linkUrl": "https://refer.example.com/claim?c=jdoe",
                "linkDescription": "Claim $20",
            },
            {
                "messageId": 9001,
                "linkId": 2,
                "linkUrl": "https://example.com/shop",
                "linkDescription": "Shop now",
            },
            {
                "messageId": 9002,
                "linkId": 3,
                "linkUrl": "https://refer.example.com/claim?c=jdoe",
                "linkDescription": "Claim",
            },
        ],
        "clicks": [
            {
                "messageId": 9001,
                "linkId": 1,
                "emailAddress": "jane.doe@example.com",
                "clickDate": at(days=2, hours=-1, minutes=-2),
            },
            {
                "messageId": 9001,
                "linkId": 2,
                "emailAddress": "jane.doe@example.com",
                "clickDate": at(days=1, hours=20),
            },
            {
                "messageId": 9001,
                "linkId": 1,
                "emailAddress": "pat.jones@example.com",
                "clickDate": at(hours=29),
            },
            {
                "messageId": 9002,
                "linkId": 3,
                "emailAddress": "jane.doe@example.com",
                "clickDate": at(hours=2),
            },
        ],
    }
