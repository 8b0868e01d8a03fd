"""Generated configurations (hypothesis): the example config directory with values replaced,
keys removed, or whole files replaced by any text. `connector check-config` answers every one
with OK (exit 0) or the problems (exit 1), never a traceback; a configuration it accepts
builds a runtime."""

from __future__ import annotations

import contextlib
import io
import shutil
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.cli import main
from connector.runtime import Runtime
from connector.testing import ROOT
from tests.fuzzing import examples

EXAMPLES = examples(60)
FILES = sorted(str(p.relative_to(ROOT / "config")) for p in (ROOT / "config").rglob("*.yaml"))
ODD = st.sampled_from(
    [
        "",
        "\ud800",
        "\x00",
        "a\x00b",
        "\n",
        "${UNSET_VARIABLE}",
        "${LISTRAK_API_URL}",
        "${",
        "$${LISTRAK_API_URL}",
        "10s",
        "-1s",
        "1e999s",
        "0ms",
        "99999999999d",
        "http://10.0.0.1/v1",
        "https://",
        "http://localhost:99999/x",
        "ftp://127.0.0.1/",
        "HS256",
        "STANDARD_WEBHOOKS",
        "whsec_",
        "whsec_%%%",
        "OAUTH_LISTRAK",
        "listrak",
        "extole",
        "segment",
        "listrak-production",
        "/dev/null",
        "key_file",
        "allow_sha1",
        "/",
        "../../etc/passwd",
        "update_email_contact_profile_fields",
        "useAudienceKey",
        -1,
        0,
        2**70,
        1e308,
        float("inf"),
        True,
        None,
        [],
        {},
        [None],
        {"path": None},
    ]
)


def _is_str(value) -> bool:
    return isinstance(value, str)


TEXT = st.text(st.characters(exclude_categories=()), max_size=10)
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | TEXT | ODD,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(TEXT | ODD.filter(_is_str), children, max_size=3)
    ),
    max_leaves=6,
)


def _paths(node, prefix=()) -> list[tuple]:
    """Every key path in a loaded YAML document (list indexes included)."""
    found = []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in items:
        found.append((*prefix, key))
        found += _paths(child, (*prefix, key))
    return found


@st.composite
def edits(draw):
    """(file, edit) pairs: set a path to a value, remove it, add a key, or replace the file."""
    changes = []
    for _ in range(draw(st.integers(1, 3))):
        name = draw(st.sampled_from(FILES))
        document = yaml.safe_load((ROOT / "config" / name).read_text()) or {}
        kind = draw(st.sampled_from(["set"] * 5 + ["remove", "add", "text"]))
        if kind == "text":
            changes.append((name, kind, draw(st.one_of(TEXT, st.binary(max_size=40))), None))
            continue
        paths = _paths(document) or [("plugin",)]
        path = draw(st.sampled_from(paths)) if kind != "add" else (draw(TEXT | ODD.filter(_is_str)),)
        changes.append((name, kind, path, draw(VALUES) if kind != "remove" else None))
    return changes


def _edit(directory: Path, changes) -> None:
    for name, kind, path, value in changes:
        file = directory / name
        if kind == "text":
            file.write_bytes(path if isinstance(path, bytes) else path.encode("utf-8", "surrogatepass"))
            continue
        try:
            document = yaml.safe_load(file.read_text())
        except (yaml.YAMLError, UnicodeDecodeError):
            continue  # an earlier edit replaced the file
        node = document
        for key in path[:-1]:
            try:
                node = node[key]
            except (KeyError, IndexError, TypeError):
                break
        else:
            if isinstance(node, dict) or (isinstance(node, list) and isinstance(path[-1], int)):
                with contextlib.suppress(KeyError, IndexError, TypeError):
                    if kind == "remove":
                        del node[path[-1]]
                    else:
                        node[path[-1]] = value
        file.write_text(yaml.safe_dump(document, allow_unicode=False))


def test_check_config_answers_every_generated_configuration(env):
    outcomes = []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(edits())
    def one(changes):
        with tempfile.TemporaryDirectory() as workdir:
            directory = Path(workdir) / "config"
            shutil.copytree(ROOT / "config", directory)
            _edit(directory, changes)
            out, err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = main(["--config", str(directory), "check-config"])
            outcomes.append(code)
            assert code in (0, 1), err.getvalue()
            if code == 0:
                Runtime.build(str(directory), "sqlite://")
            else:
                assert f" problem(s) in {directory}:" in err.getvalue().splitlines()[0]

    one()
    assert len(outcomes) == EXAMPLES
