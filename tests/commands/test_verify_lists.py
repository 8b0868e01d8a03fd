"""`connector verify` for several lists (each list and its own field ids) and the Beta
profile-field bulk route, against the Listrak sandbox served from a thread."""

from __future__ import annotations

import pytest

from connector.cli import main
from plugins.listrak.sandbox import create_sandbox_app, serve_in_thread
from tests.config_files import update_yaml
from tests.conftest import TEST_ENV


@pytest.fixture
def sandbox(env, monkeypatch):
    app = create_sandbox_app(
        clients={TEST_ENV["LISTRAK_CLIENT_ID"]: TEST_ENV["LISTRAK_CLIENT_SECRET"]},
        sms_clients={TEST_ENV["LISTRAK_SMS_CLIENT_ID"]: TEST_ENV["LISTRAK_SMS_CLIENT_SECRET"]},
    )
    server, url = serve_in_thread(app=app)
    monkeypatch.setenv("LISTRAK_AUTH_URL", f"{url}/OAuth2/Token")
    monkeypatch.setenv("LISTRAK_API_URL", f"{url}/email/v1")
    monkeypatch.setenv("LISTRAK_SMS_API_URL", f"{url}/sms/v1")
    yield app.extensions["listrak_sandbox"]
    server.shutdown()
    server.server_close()


@pytest.fixture
def production_only(config_dir):
    update_yaml(config_dir / "partners/listrak.yaml", drop=("keys.staging",))


def verify(config_dir, capsys) -> tuple[int, list[str]]:
    code = main(["--config", str(config_dir), "verify", "listrak"])
    return code, capsys.readouterr().out.splitlines()


def test_integration_without_beta_access_is_its_own_fail_line(config_dir, sandbox, production_only, capsys):
    sandbox.beta_denied.add(TEST_ENV["LISTRAK_CLIENT_ID"])
    code, lines = verify(config_dir, capsys)
    assert code == 1
    assert [line for line in lines if "bulk route" in line] == [
        "  FAIL  profile-field bulk route (Beta) with key listrak-production: "
        "ERROR_INTEGRATION_CANNOT_ACCESS_BETA_ROUTE: the mappings ('Engage audience my_audience → field "
        "6789') need it; ask Listrak support to give this integration access to the Beta route "
        "POST /List/{listId}/Contact/SegmentationField (Update Email Contact Profile Fields), then replay"
    ]
    assert lines[-1] == "11 of 12 checks passed; 1 failed"
    assert sandbox.contacts[12345] == {}  # the probe imported nothing


def test_integration_with_beta_access_passes(config_dir, sandbox, production_only, capsys):
    code, lines = verify(config_dir, capsys)
    assert code == 0
    assert (
        "  ok    profile-field bulk route (Beta) with key listrak-production: this integration may use it"
        in lines
    )


def test_no_mappings_no_probe(config_dir, sandbox, production_only, capsys):
    update_yaml(config_dir / "partners/listrak.yaml", {"mappings": []})
    code, lines = verify(config_dir, capsys)
    assert code == 0
    assert not [line for line in lines if "bulk route" in line]
    assert "POST /List/<listId>/Contact/SegmentationField" not in sandbox.counts.per_route


def test_each_list_and_its_own_field_ids_are_checked(config_dir, sandbox, production_only, capsys):
    update_yaml(
        config_dir / "partners/listrak.yaml",
        {
            "subscription_list_ids": [12345, 456],
            "segmentation_fields_by_list": {456: {"first_name": 6789, "last_name": 1004}},
            "mappings": [],
        },
        drop=("subscription_list_id",),
    )
    code, lines = verify(config_dir, capsys)
    assert code == 1
    assert [line for line in lines if "list 456" in line and "SMS" not in line] == [
        "  ok    list 456: exists ('Second list')",
        "  ok    profile field 6789 (first_name): exists in list 456 ('My audience', CheckBox, "
        "group 'Audiences')",
        "  FAIL  profile field 1004 (last_name): not in list 456 (searched 1 field group(s))",
    ]
