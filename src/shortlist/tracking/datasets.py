"""The data a run used, as MLflow dataset inputs: a name, the data's fingerprint as the digest,
where it came from, and a profile (sizes, time span, the split) that MLflow shows beside it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from shortlist.data.containers import Interactions
from shortlist.data.split import Split
from shortlist.schema import ITEM, USER

#: MLflow keeps at most 36 characters of a digest; the full fingerprint is in the profile.
_DIGEST_CHARS = 32
CONTEXT_TAG = "mlflow.data.context"


@dataclass(frozen=True)
class DataInput:
    """One dataset input of a run: ``context`` says its role (``training``, ``train``, ``test``)."""

    name: str
    fingerprint: str
    source: str
    profile: Mapping[str, Any]
    context: str


def data_profile(data: Interactions) -> dict[str, Any]:
    """Rows, active users and items, and the time span (UTC) of an interaction log."""
    out: dict[str, Any] = {"rows": len(data), "users": int(np.unique(data.column(USER)).size),
                           "items": int(np.unique(data.column(ITEM)).size)}
    if len(data):
        first, last = data.time_span()
        out |= {"first": _iso(first), "last": _iso(last)}
    return out


def split_inputs(split: Split, *, name: str, source: str) -> list[DataInput]:
    """The train and test parts of an evaluation split, each profiled with the split's summary."""
    summary = {"protocol": split.protocol, "repeats": split.repeats, "test_users": int(split.test_users.size),
               "removed": dict(split.counts)}
    return [DataInput(f"{name}:{part}", data.fingerprint(), source,
                      {**data_profile(data), "part": part, "split": summary}, part)
            for part, data in (("train", split.train), ("test", split.test))]


def to_mlflow(item: DataInput) -> Any:
    """The MLflow ``DatasetInput`` entity (metadata only: the rows stay where they are). A file is a
    ``local`` source (its absolute path); a named dataset a ``code`` source (its loader)."""
    from mlflow.entities import Dataset, DatasetInput, InputTag

    path = Path(item.source)
    kind, where = ("local", {"uri": str(path.resolve())}) if path.exists() else \
        ("code", {"tags": {"shortlist.dataset": item.source}})
    profile = json.dumps({**item.profile, "fingerprint": item.fingerprint}, default=str)
    entity = Dataset(name=item.name, digest=item.fingerprint[:_DIGEST_CHARS], source_type=kind,
                     source=json.dumps(where), profile=profile)
    return DatasetInput(entity, tags=[InputTag(CONTEXT_TAG, item.context)])


def profile_text(item: DataInput) -> str:
    return json.dumps({"name": item.name, "fingerprint": item.fingerprint, **item.profile}, indent=2, default=str)


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="seconds")
