"""Commit messages as git's own history reads: a subject of at most 72 characters in the
imperative ("Cap the requests one poll may send", not "Capped …" or "Caps …"), no trailing
period, then a blank line and a body that says why.

    python scripts/check_commit_msg.py FILE    the commit-msg hook (.githooks/commit-msg)
    python scripts/check_commit_msg.py --since-check
                                               every commit since this check was added
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

MAX_SUBJECT = 72
#: Words ending like a past tense or a third person that are imperatives all the same.
IMPERATIVE_AS_IS = {
    "embed",
    "feed",
    "need",
    "proceed",
    "seed",
    "shed",
    "speed",
    "succeed",
    "access",
    "address",
    "bypass",
    "discuss",
    "pass",
    "process",
    "focus",
    "alias",
    "canvas",
}
#: Words that begin a sentence about the change rather than an order to make it.
NOT_A_VERB = {"a", "an", "the", "this", "these", "that", "it", "we", "i", "one", "each", "every"}
ROOT = Path(__file__).resolve().parents[1]
THIS_FILE = "scripts/check_commit_msg.py"


def problems(message: str) -> list[str]:
    """What is wrong with a commit message ([] when nothing is)."""
    lines = [line for line in message.splitlines() if not line.startswith("#")]
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines or not lines[0].strip():
        return ["the subject (first line) is empty"]
    subject = lines[0]
    if subject.startswith(("Merge ", "Revert ", "fixup! ", "squash! ")):
        return []  # git writes these itself
    found = []
    if len(subject) > MAX_SUBJECT:
        found.append(f"the subject is {len(subject)} characters; at most {MAX_SUBJECT}")
    if subject.rstrip().endswith("."):
        found.append("the subject ends with a period")
    first = re.split(r"[\s:]", subject.strip(), maxsplit=1)[0]
    word = first.lower()
    if not first[:1].isupper():
        found.append(f"the subject starts with {first!r}: begin with a capitalised verb")
    elif word in NOT_A_VERB:
        found.append(f"the subject starts with {first!r}: begin with the verb ('Add …', 'Fix …')")
    elif word not in IMPERATIVE_AS_IS and (
        word.endswith(("ed", "ing")) or (word.endswith("s") and not word.endswith(("ss", "us", "is")))
    ):
        found.append(f"the subject starts with {first!r}: use the imperative ('Add', not 'Added' or 'Adds')")
    if len(lines) < 3 or lines[1].strip() or not any(line.strip() for line in lines[2:]):
        found.append("after the subject: a blank line, then a body that says why")
    return found


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout


def commits_since_check() -> list[str]:
    """Commits from the one that added this check to HEAD, oldest first (older ones predate
    the rule and are left as they are)."""
    added = _git("log", "--diff-filter=A", "--format=%H", "--", THIS_FILE).split()
    if not added:
        return []
    first = added[-1]
    return [first, *_git("rev-list", "--reverse", f"{first}..HEAD").split()]


def main(argv: list[str]) -> int:
    if argv == ["--since-check"]:
        failed = 0
        for commit in commits_since_check():
            found = problems(_git("log", "-1", "--format=%B", commit))
            if found:
                failed += 1
                subject = _git("log", "-1", "--format=%s", commit).strip()
                print(f"{commit[:10]} {subject!r}: " + "; ".join(found))
        return 1 if failed else 0
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    found = problems(Path(argv[0]).read_text(encoding="utf-8"))
    for problem in found:
        print(f"commit-msg: {problem}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
