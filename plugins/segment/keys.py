"""Segment write keys (SEGMENT_WRITE_KEY): HTTP Basic with the write key as the user name and an
empty password, as Segment's own libraries authenticate to the tracking API."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from connector.plugin_api import (
    Credentials,
    Http,
    KeyAlgorithm,
    KeyConfigSchema,
    OutboundRequest,
    secret_field,
)


class SegmentWriteKeySchema(KeyConfigSchema):
    key = secret_field(required=True)  # the source's write key


def basic_header(write_key: str) -> str:
    """`Basic base64("<write key>:")`: the colon is kept, as Segment's docs ask."""
    return "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()


class WriteKeyCredentials(Credentials):
    def __init__(self, write_key: str):
        self.write_key = write_key
        self.header = basic_header(write_key)

    def apply(self, request: OutboundRequest) -> None:
        request.headers["Authorization"] = self.header

    def secrets(self) -> list[str]:
        # The encoded form too: it is the key in another spelling.
        return [self.write_key, self.header.split(" ", 1)[1]]


class SegmentWriteKeyAlgorithm(KeyAlgorithm):
    name = "SEGMENT_WRITE_KEY"
    config_schema = SegmentWriteKeySchema

    def credentials(self, key_config: Mapping[str, Any], http: Http) -> Credentials:
        return WriteKeyCredentials(key_config["key"])

    def shown_headers(self, key_config: Mapping[str, Any]) -> dict[str, str]:
        return {"Authorization": "Basic ***"}
