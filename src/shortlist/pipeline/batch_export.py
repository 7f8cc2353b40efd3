"""Batch export: every user's recommendations as partitioned Parquet with the model's version.

Layout of the output folder: ``part-00000.parquet``, ``part-00001.parquet``, … (``users_per_part``
users each; columns ``user_id, item_id, rank, score, model_version``) and ``_manifest.json`` (the
model's version and data fingerprint, ``k``, the rules applied, and each part's users and rows). The
folder is written beside its target and renamed into place when complete, so a reader never sees
half an export; an earlier export in the same place is replaced, anything else is refused.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import polars as pl

from shortlist.errors import ConfigError, OutputPathError
from shortlist.pipeline.artifacts import library_versions, read_manifest, sha256_file, staged_directory
from shortlist.pipeline.external import internal_users
from shortlist.pipeline.parallel import user_shards
from shortlist.pipeline.progress import Progress, silent
from shortlist.pipeline.rules import Rules
from shortlist.pipeline.two_stage import TwoStageRecommender
from shortlist.schema import ITEM_ID, RANK, SCORE, USER_ID

EXPORT_KIND = "shortlist-recommendations"
MANIFEST = "_manifest.json"
MODEL_VERSION = "model_version"
COLUMNS = [USER_ID, ITEM_ID, RANK, SCORE, MODEL_VERSION]


def model_version(model_dir: Path) -> str:
    """The version a service reports for a model folder: its manifest's SHA-256, first 12 digits."""
    return sha256_file(Path(model_dir) / "manifest.json")[:12]


def check_export_target(target: Path) -> Path:
    """``target`` resolved, if an export may be written there: a new path, an empty folder, or an
    earlier export (which the new one replaces); anything else is refused before any work."""
    path = Path(target).expanduser().resolve()
    fix = "pass a new folder name (e.g. --out exports/recs)"
    if path == Path.cwd().resolve() or path in Path.cwd().resolve().parents:
        raise OutputPathError(f"--out {target}: the export folder cannot be the working directory or above it; {fix}")
    if path.exists() and not path.is_dir():
        raise OutputPathError(f"--out {target}: a file of that name exists and a partitioned export is a folder; "
                              f"{fix}, or drop --partition-users to write one file")
    if path.is_dir() and any(path.iterdir()) and not _is_export(path):
        raise OutputPathError(f"--out {target}: the folder exists and is not an earlier export (no {MANIFEST} of "
                              f"kind {EXPORT_KIND!r}), so replacing it would delete its files; {fix}")
    return path


def _is_export(path: Path) -> bool:
    try:
        return json.loads((path / MANIFEST).read_text()).get("kind") == EXPORT_KIND
    except (OSError, ValueError, AttributeError):
        return False


def export_partitioned(model: TwoStageRecommender, model_dir: Path, out_dir: Path, *, k: int, users_per_part: int,
                       user_ids: pl.Series | None = None, rules: Rules | None = None,
                       progress: Progress = silent) -> dict[str, Any]:
    """Write ``user_ids``' (``None``: every user the model knows) top-``k`` lists, through the model's
    rank path with ``rules``, as ``users_per_part``-user Parquet parts plus a manifest; returns it.
    Each part is one shard of :meth:`~TwoStageRecommender.recommend_batches`, a task of the current
    shard mapper (this process, or a cluster's workers)."""
    if users_per_part < 1:
        raise ConfigError(f"--partition-users must be >= 1, got {users_per_part}")
    target = check_export_target(out_dir)
    fitted = model.history_
    assert fitted is not None
    ext = internal_users(user_ids if user_ids is not None else fitted.users.ids, fitted.users)[0]
    version = model_version(model_dir)
    parts: list[dict[str, Any]] = []
    users = user_shards(ext, users_per_part)
    frames = model.recommend_batches(ext, k, rules=rules, shard_users=users_per_part, step="exporting",
                                     progress=progress)
    with staged_directory(target) as tmp:
        for part, frame in zip(users, frames, strict=True):
            name = f"part-{len(parts):05d}.parquet"
            frame.with_columns(pl.lit(version).alias(MODEL_VERSION)).write_parquet(tmp / name)
            parts.append({"file": name, "users": len(part), "rows": frame.height})
        manifest = _manifest(model_dir, version, k, rules, parts)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return manifest


def _manifest(model_dir: Path, version: str, k: int, rules: Rules | None, parts: list[dict[str, Any]]) -> dict[str, Any]:
    source = read_manifest(Path(model_dir), verify=False)
    return {"kind": EXPORT_KIND, "format": 1, MODEL_VERSION: version,
            "model_created": source.get("created"), "data_fingerprint": source.get("data_fingerprint"),
            "k": k, "rules": None if rules is None else rules.to_json(), "columns": COLUMNS,
            "users": sum(p["users"] for p in parts), "rows": sum(p["rows"] for p in parts), "parts": parts,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "versions": library_versions()}


__all__ = ["EXPORT_KIND", "MANIFEST", "check_export_target", "export_partitioned", "model_version"]
