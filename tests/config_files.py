"""Editing the copied example config in tests by YAML path, so tests do not depend on its
comments or layout."""

from __future__ import annotations

from pathlib import Path

import yaml


def update_yaml(path: Path, set: dict | None = None, drop: tuple[str, ...] = ()) -> None:
    """Set dotted keys ("keys.staging") to values and remove dotted keys, in place."""
    data = yaml.safe_load(path.read_text()) or {}
    for dotted, value in (set or {}).items():
        *parents, last = dotted.split(".")
        node = data
        for name in parents:
            node = node.setdefault(name, {})
        node[last] = value
    for dotted in drop:
        *parents, last = dotted.split(".")
        node = data
        for name in parents:
            node = node[name]
        node.pop(last)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
