"""Commit messages read like git's own history (scripts/check_commit_msg.py, also the
commit-msg hook `make install` sets up): every commit since the check was added passes it."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess

import pytest

from connector.testing import ROOT

_spec = importlib.util.spec_from_file_location("check_commit_msg", ROOT / "scripts" / "check_commit_msg.py")
check = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check)

WHY = "\n\nThe body says why the change was made."

CASES = [
    # (case, message, problems)
    ("good", "Cap the requests one poll may send" + WHY, []),
    ("a verb ending in -ss", "Process refusals in memory" + WHY, []),
    ("git's own merge subject", "Merge branch 'sms'", []),
    ("too long", "Add " + "x" * 69 + WHY, ["the subject is 73 characters; at most 72"]),
    ("past tense", "Added a cap" + WHY, ["the subject starts with 'Added': use the imperative"]),
    ("third person", "Adds a cap" + WHY, ["the subject starts with 'Adds': use the imperative"]),
    ("a sentence", "The cap is 200 pages" + WHY, ["the subject starts with 'The': begin with the verb"]),
    ("lower case", "cap the pages" + WHY, ["the subject starts with 'cap': begin with a capitalised verb"]),
    ("a period", "Cap the pages." + WHY, ["the subject ends with a period"]),
    ("no body", "Cap the pages", ["after the subject: a blank line, then a body that says why"]),
    (
        "no blank line",
        "Cap the pages\nbecause",
        ["after the subject: a blank line, then a body that says why"],
    ),
    ("comments are not a body", "Cap the pages\n\n# Please enter", ["after the subject: a blank line"]),
]


@pytest.mark.parametrize(("message", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_commit_message_rules(message, expected):
    found = check.problems(message)
    assert len(found) == len(expected)
    assert all(f.startswith(e) for f, e in zip(found, expected, strict=True))


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(), reason="not a git checkout")
def test_every_commit_since_the_check_reads_well():
    done = subprocess.run(
        ["python3", str(ROOT / "scripts" / "check_commit_msg.py"), "--since-check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
