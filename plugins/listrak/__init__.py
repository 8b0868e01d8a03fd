"""Listrak Email API (Contact, profile fields) as a destination, with OAUTH_LISTRAK keys."""

from connector.plugin_api import Plugin
from plugins.listrak.destination import ListrakDestination
from plugins.listrak.oauth import ListrakOAuthAlgorithm

plugin = Plugin(name="listrak", destinations=[ListrakDestination()], key_algorithms=[ListrakOAuthAlgorithm()])
