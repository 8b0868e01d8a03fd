"""The `core` plugin: generic outbound key algorithms (BEARER, HTTP_BASIC) and inbound
verifiers (STANDARD_WEBHOOKS, BEARER, HTTP_BASIC) that no partner owns."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from marshmallow import fields

from connector import verifiers
from connector.contract import (
    Credentials,
    Http,
    KeyAlgorithm,
    KeyConfigSchema,
    OutboundRequest,
    Plugin,
    secret_field,
)


class StaticHeader(Credentials):
    def __init__(self, header: str, secret: str):
        self.header = header
        self.secret = secret

    def apply(self, request: OutboundRequest) -> None:
        request.headers["Authorization"] = self.header

    def secrets(self) -> list[str]:
        return [self.secret]


class BearerKeySchema(KeyConfigSchema):
    key = secret_field(required=True)


class BasicKeySchema(KeyConfigSchema):
    client_id = fields.String(required=True)
    key = secret_field(required=True)


class Bearer(KeyAlgorithm):
    name = "BEARER"
    config_schema = BearerKeySchema

    def credentials(self, key_config: Mapping[str, Any], http: Http) -> Credentials:
        return StaticHeader(f"Bearer {key_config['key']}", key_config["key"])

    def shown_headers(self, key_config: Mapping[str, Any]) -> dict[str, str]:
        return {"Authorization": "Bearer ***"}


class HttpBasic(KeyAlgorithm):
    name = "HTTP_BASIC"
    config_schema = BasicKeySchema

    def credentials(self, key_config: Mapping[str, Any], http: Http) -> Credentials:
        pair = f"{key_config['client_id']}:{key_config['key']}".encode()
        encoded = base64.b64encode(pair).decode()
        return StaticHeader(f"Basic {encoded}", key_config["key"])

    def shown_headers(self, key_config: Mapping[str, Any]) -> dict[str, str]:
        return {"Authorization": "Basic ***"}


plugin = Plugin(
    name="core",
    key_algorithms=[Bearer(), HttpBasic()],
    verifiers=[verifiers.StandardWebhooks(), verifiers.Bearer(), verifiers.HttpBasic()],
)
