"""The re-ranker's user affinity column: added to candidates at search time, and to its training set."""

from __future__ import annotations

import numpy as np
import polars as pl

from shortlist.errors import ConfigError
from shortlist.schema import ITEM_ID, TIMESTAMP, USER_ID
from shortlist.search.affinity import RecommenderAffinity
from shortlist.search.candidates import Candidates
from shortlist.search.state import SearchState


def with_affinity(cands: Candidates, state: SearchState, users: list[str | None],
                  affinity: RecommenderAffinity | None) -> Candidates:
    """``cands`` with the affinity column appended (missing for anonymous queries or no affinity)."""
    if affinity is None:
        column = np.full((len(cands.query), 1), np.nan, dtype=np.float32)
    else:
        item_ids = state.documents.get_column(ITEM_ID).gather(cands.pos)
        column = affinity.features(users, cands.query, item_ids)
    return Candidates(query=cands.query, pos=cands.pos, features=np.hstack([cands.features, column]))


def personal_training_set(cands: Candidates, targets: np.ndarray, label: pl.DataFrame, state: SearchState,
                          affinity: RecommenderAffinity) -> tuple[Candidates, np.ndarray]:
    """Every labelled query twice, next to each other: anonymous, then with its reviewer's affinity,
    so the re-ranker serves both kinds of request. Refused when the recommender was fitted on data
    reaching into the labelled queries' period (it would know their answers)."""
    end, first = affinity.training_end(), int(label.get_column(TIMESTAMP).to_numpy().min())
    if end is not None and end >= first:
        raise ConfigError(f"the recommender was fitted on interactions up to {end}, but the re-ranker's queries "
                          f"start at {first}: it has seen their answers. Fix: fit it on the reviews before {first} "
                          f"(the index's history), or index without --model")
    users = label.get_column(USER_ID).to_list()
    anonymous = with_affinity(cands, state, [None] * len(users), None)
    personal = with_affinity(cands, state, users, affinity)
    query = np.concatenate([2 * cands.query, 2 * cands.query + 1])
    order = np.argsort(query, kind="stable")
    features = np.vstack([anonymous.features, personal.features])[order]
    both = Candidates(query=query[order], pos=np.concatenate([cands.pos, cands.pos])[order], features=features)
    return both, np.repeat(targets, 2)
