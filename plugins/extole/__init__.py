"""Extole outbound webhooks (referral opt-in / opt-out events) as a source."""

from connector.plugin_api import Plugin
from plugins.extole.auth import ExtoleSignature
from plugins.extole.source import ExtoleSource

plugin = Plugin(name="extole", sources=[ExtoleSource()], verifiers=[ExtoleSignature()])
