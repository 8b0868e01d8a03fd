"""The example plugin of docs/plugins.md: a destination that POSTs each event as JSON to a URL
(`example_webhook`) and a pull source that reads events from a JSON feed (`example_feed`), both
authenticated with the core's BEARER keys. It needs no core change: the core finds it through
the `connector.plugins` entry point in setup.cfg."""

from connector.plugin_api import Plugin
from plugins.example_webhook.destination import WebhookDestination
from plugins.example_webhook.feed import FeedSource

plugin = Plugin(name="example_webhook", destinations=[WebhookDestination()], pull_sources=[FeedSource()])
