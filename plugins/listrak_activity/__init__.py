"""Listrak email activity (Email API v1 reporting routes, OAUTH_LISTRAK keys) as a pull source
whose events are Segment track and identify messages."""

from connector.plugin_api import Plugin
from plugins.listrak_activity.source import ListrakActivitySource

plugin = Plugin(name="listrak_activity", pull_sources=[ListrakActivitySource()])
