"""``ItemRules``: :class:`~shortlist.pipeline.rules.Rules` compiled against a model's catalogue into
arrays over internal item ids, and the steps of the rank path that apply them (see
:mod:`shortlist.pipeline.rules` for what each rule does and their order)."""

from __future__ import annotations

import logging
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
import scipy.sparse as sp

from shortlist.data.catalogue import Items
from shortlist.data.ids import IdMap, normalize_ids
from shortlist.errors import RulesError
from shortlist.ordering import best_first
from shortlist.pipeline.ranked import top_up
from shortlist.pipeline.rules import Rules
from shortlist.retrieval.union import CandidateUnion
from shortlist.schema import CATEGORY, PRICE

if TYPE_CHECKING:
    from shortlist.pipeline.two_stage import TwoStageRecommender

logger = logging.getLogger(__name__)
Lists = tuple[np.ndarray, np.ndarray, np.ndarray]  # items, scores, rows (users × k), as Ranked holds them


@dataclass(frozen=True, eq=False)
class RuleCatalogue:
    """What rules are resolved against: the item id map, each item's categories (case-folded, every
    level of a path), its cap group (its category value as written; -1: none) and price (NaN: none)."""

    ids: IdMap
    n_items: int
    categories: list[frozenset[str]] | None = None
    groups: np.ndarray | None = None
    prices: np.ndarray | None = None

    @classmethod
    def build(cls, ids: IdMap, n_items: int, items: Items | None) -> RuleCatalogue:
        if items is None:
            return cls(ids, n_items)
        categories = groups = prices = None
        if items.has(CATEGORY):
            sets = [frozenset(c.casefold() for c in s) for s in items.category_sets()[:n_items]]
            categories = sets + [frozenset()] * max(0, n_items - len(sets))
            value = items.aligned(CATEGORY).head(n_items).cast(pl.Utf8).str.strip_chars().str.to_lowercase()
            text = value.fill_null("").to_numpy().astype(str)
            _, codes = np.unique(text, return_inverse=True)
            groups = np.full(n_items, -1, np.int32)
            groups[: len(codes)] = np.where(text == "", -1, codes)
        if items.has(PRICE) and items.frame.schema[PRICE].is_numeric():
            price = items.aligned(PRICE).head(n_items).cast(pl.Float64).fill_null(np.nan).to_numpy()
            prices = np.full(n_items, np.nan)
            prices[: len(price)] = price
        return cls(ids, n_items, categories, groups, prices)

    def item_indices(self, item_ids: tuple[str, ...]) -> tuple[np.ndarray, int]:
        """The known items' internal ids, and how many of ``item_ids`` the model does not know."""
        if not item_ids:
            return np.zeros(0, np.int64), 0
        idx = self.ids.index(normalize_ids(pl.Series(item_ids, dtype=pl.Utf8)))  # " 17850", "17850.0": one id
        known = idx.drop_nulls().to_numpy().astype(np.int64)
        known = known[known < self.n_items]
        return known, len(item_ids) - len(known)

    def category_mask(self, categories: tuple[str, ...] | list[str], field: str = "categories") -> np.ndarray:
        """Items in any of ``categories`` (any of an item's categories matches; case-insensitive)."""
        if self.categories is None:
            raise RulesError(field, "this model's catalogue has no category column; drop the category rule")
        wanted = {c.strip().casefold() for c in categories}
        return np.fromiter((bool(s & wanted) for s in self.categories), dtype=bool, count=self.n_items)

    def price_mask(self, low: float | None, high: float | None) -> np.ndarray:
        """Items whose price is within [``low``, ``high``]; an item without a price is outside."""
        if self.prices is None:
            raise RulesError("min_price" if low is not None else "max_price",
                             "this model's catalogue has no numeric price column; drop the price rule")
        low_ = -np.inf if low is None else low
        high_ = np.inf if high is None else high
        with np.errstate(invalid="ignore"):
            return (self.prices >= low_) & (self.prices <= high_)


_CATALOGUES: weakref.WeakKeyDictionary[Any, tuple[int, int, RuleCatalogue]] = weakref.WeakKeyDictionary()


def model_catalogue(model: TwoStageRecommender) -> RuleCatalogue:
    """The fitted ``model``'s rule catalogue, built once per fit (kept beside the model, weakly)."""
    history, items = model.history_, model.items_
    assert history is not None
    stamp = (id(history), id(items))
    cached = _CATALOGUES.get(model)
    if cached is not None and cached[:2] == stamp:
        return cached[2]
    catalogue = RuleCatalogue.build(history.items, history.n_items, items)
    _CATALOGUES[model] = (*stamp, catalogue)
    return catalogue


@dataclass(frozen=True, eq=False)
class ItemRules:
    """Rules over internal item ids. ``allowed``: the filters (``None``: every item); ``bonus``: added
    to each item's score (the boosts); ``pins``: (item, 0-based position) pairs by position; ``cap``:
    at most so many items of one ``groups`` value a list; ``widen``: the largest widening factor;
    ``ignored``: ids the model does not know, by rule (they cannot be listed anyway)."""

    allowed: np.ndarray | None = None
    bonus: np.ndarray | None = None
    pins: tuple[tuple[int, int], ...] = ()
    cap: int | None = None
    groups: np.ndarray | None = None
    widen: int = 8
    ignored: tuple[tuple[str, int], ...] = ()

    @property
    def narrows(self) -> bool:
        """Whether the rules can leave a list short (filters or a cap): then widening may help."""
        return self.allowed is not None or self.cap is not None

    @classmethod
    def compile(cls, rules: Rules, catalogue: RuleCatalogue) -> ItemRules:
        """``rules`` resolved against ``catalogue``; a rule the catalogue cannot answer (categories
        without a category column, an unknown pinned item) is a :class:`RulesError`."""
        masks, ignored = [], []
        if rules.available_items is not None:
            idx, unknown = catalogue.item_indices(rules.available_items)
            masks.append(_mask(catalogue.n_items, idx, True))
            ignored.append(("available_items", unknown))
        if rules.exclude_items:
            idx, unknown = catalogue.item_indices(rules.exclude_items)
            masks.append(~_mask(catalogue.n_items, idx, True))
            ignored.append(("exclude_items", unknown))
        if rules.categories:
            masks.append(catalogue.category_mask(rules.categories))
        if rules.min_price is not None or rules.max_price is not None:
            masks.append(catalogue.price_mask(rules.min_price, rules.max_price))
        allowed = np.logical_and.reduce(masks) if masks else None
        bonus = None
        for i, b in enumerate(rules.boosts):
            idx, unknown = catalogue.item_indices(b.items)
            match = _mask(catalogue.n_items, idx, True)
            if b.categories:
                match |= catalogue.category_mask(b.categories, f"boosts[{i}].categories")
            bonus = np.zeros(catalogue.n_items, np.float32) if bonus is None else bonus
            bonus[match] += np.float32(np.log(b.multiply) + b.add)
            ignored.append((f"boosts[{i}].items", unknown))
        pins = []
        for i, p in enumerate(sorted(rules.pins, key=lambda p: p.position)):
            idx, unknown = catalogue.item_indices((p.item_id,))
            if unknown:
                raise RulesError(f"pins[{i}]", f"item_id {p.item_id!r} is unknown to the model; pin items it knows")
            pins.append((int(idx[0]), p.position - 1))
        if rules.max_per_category is not None and catalogue.groups is None:
            raise RulesError("max_per_category", "this model's catalogue has no category column; drop the cap")
        return cls(allowed, bonus, tuple(pins), rules.max_per_category,
                   catalogue.groups if rules.max_per_category is not None else None, rules.widen,
                   tuple((name, n) for name, n in ignored if n))

    def merged(self, other: ItemRules) -> ItemRules:
        """Both rule sets at once (a server's default and a request's): filters of both, boosts summed,
        the smaller cap and widening; ``other``'s pin wins where both pin an item or a position."""
        allowed = self.allowed if other.allowed is None else other.allowed if self.allowed is None \
            else self.allowed & other.allowed
        bonus = self.bonus if other.bonus is None else other.bonus if self.bonus is None else self.bonus + other.bonus
        taken_items, taken_positions = {i for i, _ in other.pins}, {p for _, p in other.pins}
        pins = sorted([p for p in self.pins if p[0] not in taken_items and p[1] not in taken_positions]
                      + list(other.pins), key=lambda p: p[1])
        caps = [c for c in (self.cap, other.cap) if c is not None]
        return ItemRules(allowed, bonus, tuple(pins), min(caps) if caps else None,
                         self.groups if self.groups is not None else other.groups, min(self.widen, other.widen),
                         self.ignored + other.ignored)

    # --- the rank path's steps -------------------------------------------------------------------
    def boost(self, items: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """``scores`` of candidate ``items`` with the boosts added."""
        return scores if self.bonus is None else scores + self.bonus[items]

    def keep(self, union: CandidateUnion, scores: np.ndarray) -> np.ndarray | None:
        """The union rows that pass the filters and, in score order, the cap (``None``: all rows)."""
        keep = None if self.allowed is None else self.allowed[union.items]
        if self.cap is None or self.groups is None:
            return keep
        idx = np.arange(len(union)) if keep is None else np.flatnonzero(keep)
        order = idx[best_first(union.users[idx], scores[idx], union.items[idx])]
        out = np.zeros(len(union), bool)
        out[order[within_cap(union.users[order], self.groups[union.items[order]], self.cap)]] = True
        return out

    def top_up(self, lists: Lists, ranking: np.ndarray, n_items: int, seen: sp.csr_matrix | None) -> Lists:
        """Short lists filled from popularity ``ranking`` within the filters and the cap."""
        if self.allowed is not None:
            ranking = ranking[self.allowed[ranking]]
        if self.cap is None or self.groups is None:
            return top_up(*lists, ranking, n_items, seen)
        k = lists[0].shape[1]
        width = 2 * k
        while True:  # fill wider than k, drop what the cap refuses, widen until full or out of items
            wide = top_up(_pad(lists[0], width, -1), _pad(lists[1], width, np.nan), _pad(lists[2], width, -1),
                          ranking, n_items, seen)
            rows = np.repeat(np.arange(len(wide[0])), width)
            flat = wide[0].reshape(-1)
            ok = (flat >= 0) & within_cap(rows, np.where(flat >= 0, self.groups[flat], -1), self.cap)
            out = compact(wide, ok.reshape(wide[0].shape), k)
            if (out[0] >= 0).all() or width >= k + len(ranking):
                return out
            width *= 4

    def pin(self, lists: Lists, seen: sp.csr_matrix | None) -> Lists:
        """Pinned items at their positions (where they pass the filters and are new to the user when
        ``seen`` is given), the rest of each list pushed down in order."""
        items, scores, rows = lists
        k = items.shape[1]
        pins = [(i, p) for i, p in self.pins if p < k]
        if not pins:
            return lists
        ok = np.ones((len(items), len(pins)), bool)
        pin_items = np.array([i for i, _ in pins], np.int64)
        if self.allowed is not None:
            ok &= self.allowed[pin_items][None, :]
        if seen is not None:
            ok &= seen[:, pin_items].toarray() == 0
        placed: Lists = (np.full(items.shape, -1, np.int64), np.full(items.shape, np.nan, np.float32),
                         np.full(items.shape, -1, np.int64))
        rest = items >= 0
        for j, (item, position) in enumerate(pins):
            at = ok[:, j]
            here = (items == item) & at[:, None]
            score = np.where(here.any(axis=1), np.where(here, scores, 0).sum(axis=1), np.nan)
            row = np.where(here.any(axis=1), np.where(here, rows, 0).sum(axis=1), -1)
            placed[0][at, position], placed[1][at, position], placed[2][at, position] = item, score[at], row[at]
            rest &= ~here
        free = compact(lists, rest, k)
        slot = placed[0] < 0
        r, c = np.nonzero(slot)
        t = (np.cumsum(slot, axis=1) - 1)[r, c]
        for out, src in zip(placed, free, strict=True):
            out[r, c] = src[r, t]
        return compact(placed, placed[0] >= 0, k)


def item_rules(model: TwoStageRecommender, rules: Rules | ItemRules | None) -> ItemRules:
    """``rules`` as :class:`ItemRules` for ``model`` (compiled against its catalogue when given as
    :class:`Rules`); no rules: rules that change nothing."""
    if rules is None:
        return ItemRules()
    if isinstance(rules, ItemRules):
        return rules
    compiled = ItemRules.compile(rules, model_catalogue(model))
    for name, n in compiled.ignored:
        logger.info("rules: %d id(s) in %s are unknown to the model (they cannot be listed)", n, name)
    return compiled


def within_cap(keys: np.ndarray, groups: np.ndarray, cap: int) -> np.ndarray:
    """For entries in priority order within each key: True where fewer than ``cap`` earlier entries of
    the same key share the entry's group (group -1: never capped)."""
    n = len(keys)
    order = np.lexsort((np.arange(n), groups, keys))
    k, g = keys[order], groups[order]
    start = np.r_[True, (k[1:] != k[:-1]) | (g[1:] != g[:-1])] if n else np.zeros(0, bool)
    idx = np.arange(n)
    rank = idx - np.maximum.accumulate(np.where(start, idx, 0))
    out = np.empty(n, bool)
    out[order] = (rank < cap) | (g < 0)
    return out


def compact(lists: Lists, keep: np.ndarray, k: int) -> Lists:
    """Each row's kept entries moved left in order, cut to ``k`` columns (-1 / NaN padding)."""
    items, scores, rows = lists
    n = len(items)
    col = np.cumsum(keep, axis=1) - 1
    r, c = np.nonzero(keep & (col < k))
    out: Lists = (np.full((n, k), -1, np.int64), np.full((n, k), np.nan, np.float32), np.full((n, k), -1, np.int64))
    for dst, src in zip(out, (items, scores, rows), strict=True):
        dst[r, col[r, c]] = src[r, c]
    return out


def _pad(m: np.ndarray, width: int, fill: float) -> np.ndarray:
    out = np.full((len(m), width), fill, dtype=m.dtype)
    out[:, : m.shape[1]] = m[:, :width]
    return out


def _mask(n: int, idx: np.ndarray, value: bool) -> np.ndarray:
    out = np.zeros(n, bool) if value else np.ones(n, bool)
    out[idx] = value
    return out


__all__ = ["ItemRules", "RuleCatalogue", "compact", "item_rules", "model_catalogue", "within_cap"]
