"""The plugin registry (connector/registry.py): plugins found through the `connector.plugins`
entry points provide inbound verifiers like everything else, and one that does not fit the
contract, or takes a name already registered, fails loudly at load time naming its entry point."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest
from marshmallow import fields

from connector.config import ConfigError, load_config
from connector.contract import (
    Action,
    Destination,
    InboundVerifier,
    PartnerConfigSchema,
    Plugin,
    Source,
    StrictSchema,
    Unauthorized,
)
from connector.registry import GROUP, PluginError, load_registry
from connector.verifiers import Bearer, HttpBasic, StandardWebhooks
from plugins.extole.auth import ExtoleSignature
from plugins.extole.testing import referral_event
from plugins.segment.auth import SegmentSignature, SegmentWriteKey
from tests.config_files import update_yaml


class HeaderSecret(InboundVerifier):
    """A third party's verifier: `X-Shared-Secret: <secret>`."""

    name = "SHARED_SECRET_HEADER"

    def verify(self, secrets, headers, body: bytes) -> None:
        if headers.get("X-Shared-Secret") not in secrets:
            raise Unauthorized("X-Shared-Secret is not valid")

    def check_secrets(self, secrets):
        return {i: "must be at least 20 characters" for i, s in enumerate(secrets) if len(s) < 20}


class EntryPoint:
    """Stands in for an installed package's entry point."""

    def __init__(self, name: str, plugin=None, error: Exception | None = None):
        self.name, self.value = name, f"third_party.{name}:plugin"
        self._plugin, self._error = plugin, error

    def load(self):
        if self._error is not None:
            raise self._error
        return self._plugin


@pytest.fixture
def installed(monkeypatch):
    """Install extra entry points beside the project's own."""

    def install(*extra: EntryPoint) -> None:
        found = [*entry_points(group=GROUP), *extra]
        monkeypatch.setattr("connector.registry.entry_points", lambda group: found if group == GROUP else [])

    return install


def test_built_in_verifiers_come_from_the_core_and_their_plugins():
    verifiers = load_registry().verifiers
    assert {name: type(v) for name, v in verifiers.items()} == {
        "BEARER": Bearer,
        "HTTP_BASIC": HttpBasic,
        "STANDARD_WEBHOOKS": StandardWebhooks,
        "HS256": ExtoleSignature,
        "SEGMENT_SIGNATURE": SegmentSignature,
        "SEGMENT_WRITE_KEY": SegmentWriteKey,
    }


def test_a_plugins_verifier_is_registered(installed):
    installed(EntryPoint("shared", Plugin(name="shared", verifiers=[HeaderSecret()])))
    assert isinstance(load_registry().verifiers["SHARED_SECRET_HEADER"], HeaderSecret)


def test_a_plugins_verifier_authenticates_a_configured_source(installed, config_dir, make_runtime):
    from connector.app import create_app

    installed(EntryPoint("shared", Plugin(name="shared", verifiers=[HeaderSecret()])))
    update_yaml(
        config_dir / "sources" / "extole.yaml",
        {"auth": {"algorithm": "SHARED_SECRET_HEADER", "secrets": ["a-long-shared-secret-value"]}},
    )
    client = create_app({"TESTING": True}, runtime=make_runtime()).test_client()
    refused = client.post("/webhooks/extole", json=referral_event(), headers={"X-Shared-Secret": "guess"})
    assert (refused.status_code, refused.json["message"]) == (401, "X-Shared-Secret is not valid")
    accepted = client.post(
        "/webhooks/extole", json=referral_event(), headers={"X-Shared-Secret": "a-long-shared-secret-value"}
    )
    assert (accepted.status_code, accepted.json) == (202, {"accepted": 1, "duplicates": 0})


def test_a_verifier_name_taken_twice_fails_at_load(installed):
    class Impostor(Bearer):
        pass

    installed(EntryPoint("zz-copy", Plugin(name="zz-copy", verifiers=[Impostor()])))
    with pytest.raises(PluginError) as exc:
        load_registry()
    assert str(exc.value) == "plugin 'zz-copy': inbound verifier 'BEARER' is already registered"


def test_one_plugin_offering_a_name_twice_fails_at_load(installed):
    installed(EntryPoint("twice", Plugin(name="twice", verifiers=[HeaderSecret(), HeaderSecret()])))
    with pytest.raises(PluginError) as exc:
        load_registry()
    assert str(exc.value) == ("plugin 'twice': inbound verifier 'SHARED_SECRET_HEADER' is already registered")


def test_a_verifier_that_is_not_an_inbound_verifier_fails_at_load(installed):
    class Lookalike:
        name = "LOOKALIKE"

        def verify(self, secrets, headers, body):
            return None

    installed(EntryPoint("odd", Plugin(name="odd", verifiers=[Lookalike()])))
    with pytest.raises(
        PluginError,
        match=r"^plugin 'odd': <.*Lookalike object at .*> is not an? "
        r"InboundVerifier$",
    ):
        load_registry()


def test_a_verifier_without_a_name_fails_at_load(installed):
    class Nameless(InboundVerifier):
        name = ""

    installed(EntryPoint("anon", Plugin(name="anon", verifiers=[Nameless()])))
    with pytest.raises(PluginError) as exc:
        load_registry()
    assert str(exc.value) == "plugin 'anon': a inbound verifier has no name"


def test_an_entry_point_that_is_not_a_plugin_fails_at_load(installed):
    installed(EntryPoint("loose", HeaderSecret()))
    with pytest.raises(PluginError) as exc:
        load_registry()
    assert str(exc.value) == "plugin 'loose': entry point must be a connector.contract.Plugin"


def test_a_plugin_that_cannot_import_fails_at_load(installed):
    installed(EntryPoint("broken", error=ImportError("No module named 'third_party'")))
    with pytest.raises(PluginError) as exc:
        load_registry()
    assert str(exc.value) == (
        "plugin 'broken' (third_party.broken:plugin) failed to load: No module named 'third_party'"
    )


def test_a_plugins_secret_problems_are_named_by_index(installed, config_dir):
    installed(EntryPoint("shared", Plugin(name="shared", verifiers=[HeaderSecret()])))
    update_yaml(
        config_dir / "sources" / "extole.yaml",
        {"auth": {"algorithm": "SHARED_SECRET_HEADER", "secrets": ["a-long-shared-secret-value", "short"]}},
    )
    with pytest.raises(ConfigError) as exc:
        load_config(config_dir, load_registry())
    assert exc.value.problems == [
        "config/sources/extole.yaml: auth.secrets.1: must be at least 20 characters"
    ]


# -- each plugin is checked against the contract when it registers -------------------------------
class NoAuthSchema(StrictSchema):
    plugin = fields.String()


class Planless(Destination):
    name = "planless"
    config_schema = PartnerConfigSchema
    actions: dict = {}


class TwoArgumentVerifier(InboundVerifier):
    name = "TWO_ARGUMENTS"

    def verify(self, secrets, headers):  # no body: the core passes three
        return None


class LooseSource(Source):
    name = "loose"
    config_schema = NoAuthSchema

    def parse(self, body, source_config):
        return []


class Unbuilt(Action):
    name = "unbuilt"


class OneAction(Destination):
    name = "one-action"
    config_schema = PartnerConfigSchema
    actions = {"unbuilt": Unbuilt()}

    def plan(self, event, partner):
        return []


@pytest.mark.parametrize(
    ("plugin", "problem"),
    [
        (
            Plugin(name="p", destinations=[Planless()]),
            "plugin 'p': destination 'planless' does not implement plan()",
        ),
        (
            Plugin(name="p", verifiers=[TwoArgumentVerifier()]),
            "plugin 'p': inbound verifier 'TWO_ARGUMENTS': verify() must take (secrets, headers, body), "
            "as the contract says; it takes (secrets, headers)",
        ),
        (
            Plugin(name="p", sources=[LooseSource()]),
            "plugin 'p': source 'loose': config_schema NoAuthSchema must subclass SourceConfigSchema",
        ),
        (
            Plugin(name="p", destinations=[OneAction()]),
            "plugin 'p': destination 'one-action' action 'unbuilt' does not implement build_request()",
        ),
    ],
)
def test_a_plugin_that_does_not_fit_the_contract_fails_at_load_naming_what_is_wrong(
    installed, plugin, problem
):
    installed(EntryPoint("p", plugin))
    with pytest.raises(PluginError) as exc:
        load_registry()
    assert str(exc.value) == problem
