"""Generic outbound key algorithms: BEARER (a static token) and HTTP_BASIC."""

from __future__ import annotations

import base64

from marshmallow import fields

from connector.config import KeyConfigSchema, secret_field
from connector.contract import Credentials, KeyAlgorithm, OutboundRequest, Plugin


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

    def credentials(self, key_config: dict, http) -> Credentials:
        return StaticHeader(f"Bearer {key_config['key']}", key_config["key"])


class HttpBasic(KeyAlgorithm):
    name = "HTTP_BASIC"
    config_schema = BasicKeySchema

    def credentials(self, key_config: dict, http) -> Credentials:
        pair = f"{key_config['client_id']}:{key_config['key']}".encode()
        encoded = base64.b64encode(pair).decode()
        return StaticHeader(f"Basic {encoded}", key_config["key"])


plugin = Plugin(name="core", key_algorithms=[Bearer(), HttpBasic()])
