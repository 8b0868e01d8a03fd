"""Config loading: every problem names its file and field, all are reported at once, and
neither `connector check-config` nor the WSGI app starts on a bad directory."""

from __future__ import annotations

import textwrap

import pytest

from connector.app import create_app
from connector.cli import main
from connector.config import ConfigError, load_config
from connector.contract import PartnerKeys
from connector.registry import load_registry
from plugins.listrak.testing import API, TOKEN_URL
from tests.config_files import update_yaml


@pytest.fixture(scope="module")
def registry():
    return load_registry()


def write(config_dir, relpath: str, text: str) -> None:
    path = config_dir / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))


def edit(config_dir, relpath: str, drop: tuple[str, ...] = (), **values) -> None:
    """Set (or drop) top-level or dotted fields: edit(d, "partners/listrak.yaml", enabled=False)."""
    update_yaml(config_dir / relpath, {k.replace("__", "."): v for k, v in values.items()}, drop)


def problems(config_dir, registry) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        load_config(config_dir, registry)
    return exc.value.problems


PARTNER = "config/partners/listrak.yaml"
SOURCE = "config/sources/extole.yaml"
PROD_KEY = "config/keys/listrak-production.yaml"


def test_example_config_loads_with_env_values(config_dir, registry, env):
    config = load_config(config_dir, registry)
    assert sorted(config.keys) == ["listrak-production", "listrak-sms-production", "listrak-staging"]
    assert config.keys["listrak-production"]["authorization_url"] == TOKEN_URL
    assert config.sources["extole"]["auth"] == {
        "algorithm": "HS256",
        "secrets": [env["EXTOLE_WEBHOOK_SECRET"]],
    }
    partner = config.partners["listrak"]
    assert partner.settings["api_url"] == API
    assert partner.keys == PartnerKeys(production="listrak-production", staging="listrak-staging")
    assert "extole" in partner.sources
    assert config.settings["retry_schedule"] == [1, 10, 60, 600, 3600, 10800, 43200, 43200]
    assert {env["LISTRAK_CLIENT_SECRET"], env["EXTOLE_WEBHOOK_SECRET"]} <= config.secrets


def test_unknown_key_names_file_and_field(config_dir, registry):
    edit(config_dir, "partners/listrak.yaml", colour="blue")
    assert problems(config_dir, registry) == [f"{PARTNER}: colour: Unknown field."]


def test_unknown_nested_key_names_its_path(config_dir, registry):
    edit(config_dir, "partners/listrak.yaml", segmentation_fields__shoe_size=9)
    assert problems(config_dir, registry) == [f"{PARTNER}: segmentation_fields.shoe_size: Unknown field."]


def test_missing_environment_variable_names_file_and_field(config_dir, registry, monkeypatch):
    monkeypatch.delenv("LISTRAK_CLIENT_SECRET")
    assert problems(config_dir, registry) == [
        f"{PROD_KEY}: key: environment variable LISTRAK_CLIENT_SECRET is not set"
    ]


def test_missing_environment_variable_inside_a_list(config_dir, registry, monkeypatch):
    monkeypatch.delenv("EXTOLE_WEBHOOK_SECRET")
    assert problems(config_dir, registry) == [
        f"{SOURCE}: auth.secrets[0]: environment variable EXTOLE_WEBHOOK_SECRET is not set"
    ]


def test_wrong_types_are_each_reported(config_dir, registry):
    edit(
        config_dir,
        "partners/listrak.yaml",
        subscription_list_id="abc",
        send_opt_ins="maybe",
        retry_schedule=["soon", "1m"],
    )
    found = problems(config_dir, registry)
    assert f"{PARTNER}: subscription_list_id: Not a valid integer." in found
    assert f"{PARTNER}: send_opt_ins: Not a valid boolean." in found
    assert any(p.startswith(f"{PARTNER}: retry_schedule.0: 'soon' is not a duration") for p in found)
    assert len(found) == 3


@pytest.mark.parametrize(
    "url",
    [
        "http://api.listrak.com/email/v1",
        "ftp://127.0.0.1/x",
        "api.listrak.com/email/v1",
        "http://10.0.0.5/v1",
    ],
)
def test_outbound_url_must_be_https_unless_loopback(config_dir, registry, monkeypatch, url):
    monkeypatch.setenv("LISTRAK_API_URL", url)
    assert problems(config_dir, registry) == [
        f"{PARTNER}: api_url: must be an https:// URL (http:// only for loopback hosts)"
    ]


def test_token_url_is_checked_like_api_url(config_dir, registry, monkeypatch):
    monkeypatch.setenv("LISTRAK_AUTH_URL", "http://auth.listrak.com/OAuth2/Token")
    found = problems(config_dir, registry)
    assert found == [
        f"{PROD_KEY}: authorization_url: must be an https:// URL (http:// only for loopback hosts)",
        "config/keys/listrak-sms-production.yaml: authorization_url: must be an https:// URL "
        "(http:// only for loopback hosts)",
        "config/keys/listrak-staging.yaml: authorization_url: must be an https:// URL "
        "(http:// only for loopback hosts)",
    ]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8900/email/v1",
        "http://localhost:8900/email/v1",
        "http://[::1]:8900/email/v1",
        "http://127.8.0.1/email/v1",
    ],
)
def test_http_is_accepted_for_loopback_hosts(config_dir, registry, monkeypatch, url):
    monkeypatch.setenv("LISTRAK_API_URL", url + "/")
    assert load_config(config_dir, registry).partners["listrak"].settings["api_url"] == url


def test_partner_key_id_must_match_file_stem(config_dir, registry):
    edit(config_dir, "keys/listrak-staging.yaml", partner_key_id="listrak-stage")
    assert problems(config_dir, registry) == [
        "config/keys/listrak-staging.yaml: partner_key_id: must equal the file name ('listrak-staging')"
    ]


def test_unknown_key_algorithm(config_dir, registry):
    edit(config_dir, "keys/listrak-production.yaml", algorithm="OAUTH_MYSTERY")
    (found,) = problems(config_dir, registry)
    assert found.startswith(f"{PROD_KEY}: algorithm: unknown key algorithm 'OAUTH_MYSTERY' (known: ")
    assert "OAUTH_LISTRAK" in found


def test_unknown_source_and_destination_plugins(config_dir, registry):
    edit(config_dir, "sources/extole.yaml", plugin="friendbuy")
    edit(config_dir, "partners/listrak.yaml", plugin="klaviyo")
    found = problems(config_dir, registry)
    assert found[0].startswith(f"{SOURCE}: plugin: unknown source plugin 'friendbuy' (known: ")
    assert found[1].startswith(f"{PARTNER}: plugin: unknown destination plugin 'klaviyo' (known: ")


def test_plugin_given_as_a_list_is_a_problem_not_a_crash(config_dir, registry):
    edit(config_dir, "sources/extole.yaml", plugin=["extole"])
    (found,) = problems(config_dir, registry)
    assert found.startswith(f"{SOURCE}: plugin: unknown source plugin ['extole']")


def test_partner_referring_to_a_missing_key_or_source(config_dir, registry):
    edit(config_dir, "partners/listrak.yaml", sources=["extole", "talkable"], keys__staging="listrak-qa")
    assert problems(config_dir, registry) == [
        f"{PARTNER}: sources: no source 'talkable' in sources/",
        f"{PARTNER}: keys.staging: no key 'listrak-qa' in keys/",
    ]


def test_partner_without_staging_key_is_valid(config_dir, registry):
    edit(config_dir, "partners/listrak.yaml", drop=("keys.staging",))
    assert load_config(config_dir, registry).partners["listrak"].keys.staging is None


def test_source_without_auth_does_not_start(config_dir, registry):
    write(config_dir, "sources/extole.yaml", "plugin: extole\n")
    assert problems(config_dir, registry) == [f"{SOURCE}: auth: Missing data for required field."]


def test_inbound_algorithm_must_be_known(config_dir, registry):
    edit(config_dir, "sources/extole.yaml", auth__algorithm="MD5")
    (found,) = problems(config_dir, registry)
    assert found == (
        f"{SOURCE}: auth.algorithm: unknown auth algorithm 'MD5' (known: BEARER, "
        "HS256, HTTP_BASIC, SEGMENT_SIGNATURE, SEGMENT_WRITE_KEY, STANDARD_WEBHOOKS)"
    )


def test_http_basic_secret_needs_a_colon(config_dir, registry):
    write(
        config_dir,
        "sources/basic.yaml",
        """\
        plugin: extole
        auth:
          algorithm: HTTP_BASIC
          secrets: ["extole:pw", "nocolon"]
        """,
    )
    assert problems(config_dir, registry) == [
        "config/sources/basic.yaml: auth.secrets.1: HTTP_BASIC secrets are user:password"
    ]


def test_verifier_secret_problems_are_named_by_index(config_dir, registry):
    write(
        config_dir,
        "sources/standard.yaml",
        """\
        plugin: extole
        auth:
          algorithm: STANDARD_WEBHOOKS
          secrets: ["whsec_c3RhbmRhcmQtd2ViaG9va3Mta2V5LTMyLWJ5dGVzISE=", "whsec_%%%", "plain"]
        """,
    )
    assert problems(config_dir, registry) == [
        "config/sources/standard.yaml: auth.secrets.1: not a Standard Webhooks secret (whsec_ and base64)",
        "config/sources/standard.yaml: auth.secrets.2: not a Standard Webhooks secret (whsec_ and base64)",
    ]


def test_http_basic_password_is_a_secret(config_dir, registry):
    write(
        config_dir,
        "sources/basic.yaml",
        """\
        plugin: extole
        auth: {algorithm: HTTP_BASIC, secrets: ["extole:s3cret-pw"]}
        """,
    )
    config = load_config(config_dir, registry)
    assert {"extole:s3cret-pw", "s3cret-pw"} <= config.secrets


def test_dead_retention_under_seven_days_is_refused(config_dir, registry):
    write(config_dir, "connector.yaml", "retention:\n  dead: 6d\n")
    assert problems(config_dir, registry) == [
        "config/connector.yaml: retention.dead: dead deliveries are kept at least 7 days"
    ]


def test_connector_yaml_durations_and_defaults(config_dir, registry):
    write(config_dir, "connector.yaml", "worker:\n  lease: 2m\n  poll_interval: 500ms\n")
    settings = load_config(config_dir, registry).settings
    assert settings["worker"]["lease"] == 120
    assert settings["worker"]["poll_interval"] == 0.5
    assert settings["retention"]["dead"] == 7 * 86400


def test_empty_connector_yaml_is_all_defaults(config_dir, registry):
    write(config_dir, "connector.yaml", "# nothing\n")
    settings = load_config(config_dir, registry).settings
    assert settings["worker"]["threads"] == 32
    assert settings["retry_schedule"] == [1, 10, 60, 600, 3600, 3 * 3600, 12 * 3600, 12 * 3600]


def test_key_file_supplies_the_secret(config_dir, registry, monkeypatch):
    monkeypatch.delenv("LISTRAK_CLIENT_SECRET")
    write(config_dir, "secrets/listrak.key", "from-a-file-secret\n")
    edit(config_dir, "keys/listrak-production.yaml", drop=("key",), key_file="secrets/listrak.key")
    config = load_config(config_dir, registry)
    assert config.keys["listrak-production"]["key"] == "from-a-file-secret"
    assert "from-a-file-secret" in config.secrets


def test_unreadable_key_file_names_file_and_field(config_dir, registry):
    edit(config_dir, "keys/listrak-production.yaml", drop=("key",), key_file="secrets/missing.key")
    (found,) = problems(config_dir, registry)
    assert found.startswith(f"{PROD_KEY}: key_file: cannot read ")
    assert found.endswith("secrets/missing.key")


def test_invalid_yaml_and_non_mapping_files(config_dir, registry):
    write(config_dir, "sources/broken.yaml", "plugin: [extole\n")
    write(config_dir, "sources/listy.yaml", "- plugin: extole\n")
    found = problems(config_dir, registry)
    assert found[0].startswith("config/sources/broken.yaml: not valid YAML: ")
    assert found[1] == "config/sources/listy.yaml: must be a YAML mapping of settings"


def test_many_problems_are_reported_at_once(config_dir, registry, monkeypatch):
    monkeypatch.delenv("LISTRAK_STAGING_CLIENT_ID")
    write(config_dir, "connector.yaml", "retention: {dead: 1d}\nworkers: 3\n")
    edit(config_dir, "keys/listrak-production.yaml", partner_key_id="prod")
    edit(config_dir, "partners/listrak.yaml", subscription_list_id=-1)
    found = problems(config_dir, registry)
    assert found == [
        "config/connector.yaml: retention.dead: dead deliveries are kept at least 7 days",
        "config/connector.yaml: workers: Unknown field.",
        f"{PROD_KEY}: partner_key_id: must equal the file name ('listrak-production')",
        "config/keys/listrak-staging.yaml: client_id: environment variable "
        "LISTRAK_STAGING_CLIENT_ID is not set",
        f"{PARTNER}: subscription_list_id: Must be greater than or equal to 1.",
    ]


def test_secrets_never_appear_in_problems(config_dir, registry, env):
    edit(config_dir, "keys/listrak-production.yaml", extra=1)
    edit(config_dir, "sources/extole.yaml", auth__algorithm="HTTP_BASIC")
    with pytest.raises(ConfigError) as refused:
        load_config(config_dir, registry)
    message = str(refused.value)
    assert "extra: Unknown field." in message
    assert env["LISTRAK_CLIENT_SECRET"] not in message
    assert env["EXTOLE_WEBHOOK_SECRET"] not in message


# -- connector check-config -----------------------------------------------------------------


def test_check_config_ok_exits_zero(config_dir, capsys):
    assert main(["--config", str(config_dir), "check-config"]) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith(f"{config_dir}: OK — 3 key(s), ")
    assert out.endswith(" source(s), 1 partner(s)")


def test_check_config_prints_every_problem_and_exits_nonzero(config_dir, capsys, monkeypatch):
    monkeypatch.delenv("LISTRAK_API_URL")
    edit(config_dir, "sources/extole.yaml", auth__algorithm="MD5")
    assert main(["--config", str(config_dir), "check-config"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"2 problem(s) in {config_dir}:"
    assert err[1].startswith(f"  {SOURCE}: auth.algorithm: unknown auth algorithm 'MD5'")
    assert err[2] == f"  {PARTNER}: api_url: environment variable LISTRAK_API_URL is not set"


def test_check_config_on_missing_directory(tmp_path, capsys):
    assert main(["--config", str(tmp_path / "nowhere"), "check-config"]) == 1
    assert "config directory does not exist" in capsys.readouterr().err


def test_check_config_refuses_an_inbound_hmac_secret_under_16_bytes(config_dir, capsys, monkeypatch):
    monkeypatch.setenv("EXTOLE_WEBHOOK_SECRET", "short")
    assert main(["--config", str(config_dir), "check-config"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"1 problem(s) in {config_dir}:",
        f"  {SOURCE}: auth.secrets.0: shorter than 16 bytes: HMAC secrets need at least 16 "
        "(use a long random one)",
    ]


SHORT = "shorter than 16 bytes: HMAC secrets need at least 16 (use a long random one)"


def test_short_hmac_secrets_of_every_hmac_algorithm_are_named_by_file_and_index(config_dir, registry):
    write(
        config_dir,
        "sources/signed.yaml",
        """\
        plugin: segment
        auth: {algorithm: SEGMENT_SIGNATURE, secrets: ["a-secret-of-16-b", "fifteen-bytes!!"]}
        """,
    )
    write(
        config_dir,
        "sources/standard.yaml",
        """\
        plugin: extole
        auth:
          algorithm: STANDARD_WEBHOOKS
          secrets: ["whsec_c2l4dGVlbi1ieXRlLWtleQ==", "whsec_ZmlmdGVlbi1ieXRlLWtl"]
        """,
    )
    assert problems(config_dir, registry) == [
        f"config/sources/signed.yaml: auth.secrets.1: {SHORT}",
        "config/sources/standard.yaml: auth.secrets.1: shorter than 16 bytes once decoded: HMAC "
        "secrets need at least 16 (use a long random one)",
    ]


def test_allow_sha1_is_an_hs256_option(config_dir, registry):
    edit(config_dir, "sources/extole.yaml", auth__allow_sha1=False)
    assert load_config(config_dir, registry).sources["extole"]["auth"]["allow_sha1"] is False
    edit(config_dir, "sources/extole.yaml", auth__algorithm="BEARER")
    assert problems(config_dir, registry) == [
        f"{SOURCE}: auth.allow_sha1: only the HS256 algorithm has this option"
    ]


# -- the WSGI app refuses to boot ------------------------------------------------------------


def test_create_app_raises_config_error_with_the_message(config_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("CONNECTOR_CONFIG_DIR", str(config_dir))
    monkeypatch.setenv("CONNECTOR_DATABASE_URL", f"sqlite:///{tmp_path}/app.db")
    monkeypatch.delenv("EXTOLE_WEBHOOK_SECRET")
    with pytest.raises(ConfigError) as exc:
        create_app()
    assert str(exc.value) == (
        "invalid configuration:\n  config/sources/extole.yaml: "
        "auth.secrets[0]: environment variable EXTOLE_WEBHOOK_SECRET is not set"
    )


def test_create_app_boots_on_good_config(config_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("CONNECTOR_CONFIG_DIR", str(config_dir))
    monkeypatch.setenv("CONNECTOR_DATABASE_URL", f"sqlite:///{tmp_path}/app.db")
    response = create_app().test_client().get("/readyz")
    assert response.status_code == 200
    assert "extole" in response.json["sources"]


def test_lease_shorter_than_three_request_timeouts_is_refused(config_dir, registry):
    write(config_dir, "connector.yaml", "worker:\n  lease: 20s\n  http_timeout: 10s\n")
    with pytest.raises(ConfigError) as refused:
        load_config(config_dir, registry)
    assert refused.value.problems == [
        "config/connector.yaml: worker.lease: must be at least 3 × http_timeout"
    ]
