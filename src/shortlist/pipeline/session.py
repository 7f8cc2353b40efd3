"""An anonymous or new user's session as a history the model can rank for: the same candidate
sources and feature code as a known user's, with user and pair features from the session itself."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from shortlist.data.containers import Interactions
from shortlist.data.ids import normalize_ids
from shortlist.features.profile import UserHistory

logger = logging.getLogger(__name__)


def session_history(fitted: Interactions, item_ids: Sequence[str | int], timestamps: Sequence[int] | None) -> UserHistory:
    """The session's known items (internal ids) in order, with their timestamps (without them: one
    second apart, ending at the history's end); unknown items are dropped and logged."""
    idx = fitted.items.index(normalize_ids(list(item_ids), source="session items"))
    known = idx.is_not_null().to_numpy()
    if not known.all():
        logger.info("session: %d unknown item id(s) ignored", int((~known).sum()))
    items = idx.drop_nulls().to_numpy().astype(np.int64)
    end = fitted.time_span()[1]
    ts = (np.asarray(timestamps, dtype=np.int64)[known] if timestamps is not None
          else end - np.arange(len(items))[::-1])
    return UserHistory(items, ts)
