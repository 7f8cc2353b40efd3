"""Widening the candidate budget for the users whose lists the rules left short.

When filters (or a cap per category) remove many of a user's candidates, the list would be mostly
popularity top-up. Instead, those users are ranked again from a wider candidate pool — each source
asked for ×2 its depth and the union budget ×2, then ×4, … up to the rules' ``widen`` factor — until
their lists fill with scored items, or the sources have nothing more to give them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from shortlist.pipeline.item_rules import ItemRules
from shortlist.pipeline.ranked import Ranked
from shortlist.pipeline.stage1 import Stage1
from shortlist.retrieval.union import CandidateUnion

#: ``rank_at(users, factor)``: the shard's Ranked from a candidate pool ``factor`` times the usual.
RankAt = Callable[[np.ndarray, int], Ranked]


def widened(stage: Stage1, factor: int, n_items: int) -> Stage1:
    """``stage`` asking each source for ``factor`` × its depth and keeping ``factor`` × its budget
    (at most the catalogue); the same fitted sources, not a copy of them."""
    if factor == 1:
        return stage
    return dataclasses.replace(stage, per_source=min(stage.per_source * factor, n_items),
                               max_candidates=min(stage.max_candidates * factor, n_items))


def rank_widening(rank_at: RankAt, users: np.ndarray, k: int, rules: ItemRules) -> Ranked:
    """``rank_at(users, 1)``, then the users whose lists hold fewer than ``k`` ranked or pinned items
    ranked again at ×2, ×4, … (up to ``rules.widen``) while their candidate pool still grows."""
    ranked = rank_at(users, 1)
    if not rules.narrows or rules.widen < 2:
        return ranked
    sizes = _pool_sizes(ranked)
    growing = sizes > 0  # users without candidates (unknown to the model) have nothing to widen
    pinned = np.array([i for i, _ in rules.pins], np.int64)
    factor = 1
    while factor * 2 <= rules.widen:
        filled = ((ranked.rows >= 0) | np.isin(ranked.items, pinned)).sum(axis=1)
        short = np.flatnonzero((filled < k) & growing)
        if not len(short):
            break
        factor *= 2
        again = rank_at(ranked.users[short], factor)
        now = _pool_sizes(again)
        growing[short] = now > sizes[short]
        sizes[short] = now
        ranked = _replace_rows(ranked, short, again)
    return ranked


def _pool_sizes(ranked: Ranked) -> np.ndarray:
    """Candidates in each user's union."""
    return np.bincount(_positions(ranked.users, ranked.union.users), minlength=len(ranked.users))


def _positions(users: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Each value's position in ``users`` (distinct; every value is one of them)."""
    order = np.argsort(users, kind="stable")
    return order[np.searchsorted(users[order], values)]


def _replace_rows(ranked: Ranked, short: np.ndarray, again: Ranked) -> Ranked:
    """``ranked`` with the lists (and union rows, features) of rows ``short`` taken from ``again``;
    the union stays grouped by user in the shard's order."""
    old = ranked.union
    kept = np.flatnonzero(~np.isin(old.users, ranked.users[short]))
    new = again.union
    union = CandidateUnion(np.r_[old.users[kept], new.users], np.r_[old.items[kept], new.items],
                           np.concatenate([old.ranks[:, kept], new.ranks], axis=1),
                           np.concatenate([old.scores[:, kept], new.scores], axis=1), old.sources,
                           None if old.fused is None or new.fused is None else np.r_[old.fused[kept], new.fused])
    order = np.argsort(_positions(ranked.users, union.users), kind="stable")
    where = np.empty(len(order), np.int64)
    where[order] = np.arange(len(order))  # a concatenated row's place in the reordered union
    from_old = np.full(len(old), -1, np.int64)
    from_old[kept] = where[: len(kept)]
    rows = np.where(ranked.rows >= 0, from_old[np.maximum(ranked.rows, 0)], -1)
    rows[short] = np.where(again.rows >= 0, where[len(kept) + np.maximum(again.rows, 0)], -1)
    items, scores = ranked.items.copy(), ranked.scores.copy()
    items[short], scores[short] = again.items, again.scores
    parts = [(ranked.features, kept), (again.features, np.arange(len(new)))]
    whole = all(f is not None for f, at in parts if len(at))
    matrices = [f[at] for f, at in parts if f is not None and len(at)]
    features = np.concatenate(matrices)[order] if whole and matrices else None
    stages = {s: ranked.stages.get(s, 0.0) + again.stages.get(s, 0.0) for s in {*ranked.stages, *again.stages}}
    failed = tuple(dict.fromkeys(ranked.failed + again.failed))
    return Ranked(ranked.users, items, scores, rows, union.take(order), features, failed, stages)


__all__ = ["rank_widening", "widened"]
