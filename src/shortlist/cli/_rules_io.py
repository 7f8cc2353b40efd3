"""Reading a business-rules file (``--rules``) for `recommend` and `serve`: TOML or JSON, its keys
those of :class:`~shortlist.pipeline.rules.Rules`, plus ``available_items_file`` / ``exclude_items_file``
naming a table with an ``item_id`` column (a stock list), relative to the rules file."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from shortlist.errors import ConfigError, EmptyInputError, MissingColumnError, RulesError
from shortlist.pipeline.rules import Rules
from shortlist.schema import ITEM_ID

#: Keys that name an ids file, and the rule the file's ids fill.
ID_FILES = {"available_items_file": "available_items", "exclude_items_file": "exclude_items"}


def read_rules(path: Path) -> Rules:
    """The rules in ``path`` (``.toml`` or ``.json``; a file holding one ``[rules]`` table works too)."""
    raw = _parse(path)
    if set(raw) == {"rules"} and isinstance(raw["rules"], dict):
        raw = raw["rules"]
    for key, rule in ID_FILES.items():
        if key in raw:
            if rule in raw:
                raise RulesError(key, f"give {rule} or {key}, not both")
            if not isinstance(raw[key], str):
                raise RulesError(key, "must be a file path (relative to the rules file)")
            raw[rule] = read_item_ids(path.parent / raw.pop(key), rule)
    return Rules.from_mapping(raw, source=str(path))


def _parse(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"--rules {path}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".toml":
            return tomllib.loads(path.read_text(encoding="utf-8"))
        if suffix == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ConfigError(f"--rules {path}: the file must hold a JSON object of rules")
            return data
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"--rules {path}: cannot parse it: {e}") from e
    raise ConfigError(f"--rules {path}: a rules file is .toml or .json, got {suffix or 'no extension'!r}")


def read_item_ids(path: Path, rule: str) -> list[str]:
    """The ``item_id`` column of a CSV / Parquet / JSON table (ids as text, as every input's)."""
    from shortlist.data.loaders.generic import read_frame

    if not path.exists():
        raise RulesError(f"{rule}_file", f"{path} does not exist")
    df = read_frame(path, string_columns=(ITEM_ID,))
    if ITEM_ID not in df.columns:
        raise MissingColumnError(str(path), ITEM_ID, df.columns, hint="give the file an item_id column")
    if df.height == 0:
        raise EmptyInputError(str(path), "item ids")
    ids = df.get_column(ITEM_ID)
    if ids.null_count():
        raise RulesError(f"{rule}_file", f"{path}: {ids.null_count()} rows have no item_id; fill or remove them")
    return [str(v) for v in ids.to_list()]
