"""docs/plugins.md works as written: every file it quotes (`<!-- file: path -->` before a code
block) is quoted whole and as it is, and the example plugin it walks through is registered."""

from __future__ import annotations

import re
from importlib.metadata import entry_points

from connector.testing import ROOT

QUOTE = re.compile(r"<!-- file: (\S+) -->\n```\w*\n(.*?)\n```", re.S)


def quotes(text: str) -> dict[str, str]:
    return dict(QUOTE.findall(text))


def test_every_quoted_file_is_quoted_as_it_is():
    quoted = quotes((ROOT / "docs" / "plugins.md").read_text())
    assert len(quoted) >= 6
    differ = [path for path, body in quoted.items() if (ROOT / path).read_text().rstrip("\n") != body]
    assert differ == []


def test_the_example_plugin_is_registered_as_the_docs_say():
    registered = {
        group: {ep.name: ep.value for ep in entry_points(group=group)}
        for group in ("connector.plugins", "connector.commands", "connector.testing")
    }
    assert registered["connector.plugins"]["example_webhook"] == "plugins.example_webhook:plugin"
    assert registered["connector.commands"]["example-sandbox"] == "plugins.example_webhook.cli:register"
    assert registered["connector.testing"]["example_webhook"] == "plugins.example_webhook.testing:Lookalike"


def test_a_quote_that_drifted_from_its_file_is_found():
    text = "<!-- file: a.py -->\n```python\nx = 1\n```\n"
    assert quotes(text) == {"a.py": "x = 1"}
