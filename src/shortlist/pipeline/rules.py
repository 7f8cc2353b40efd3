"""``Rules``: what a shop sets on top of the model — filters, boosts, pins and a cap per category —
as one frozen value in external ids, built from TOML, JSON or a request's fields.

The rules act inside the model's one rank path (:meth:`TwoStageRecommender.rank`), for a request and
a batch alike, after the ranker has scored the candidates and before the top-k, in this order:

1. **filters** drop candidates: an allow-list of available items (``available_items``), exclusions
   (``exclude_items``), categories (an item in any of them passes; every level of an ``A > B`` path
   counts) and a price range (an item without a price fails a price rule);
2. **boosts** move the scores of matching items (listed ``items`` or items in any of ``categories``):
   ``multiply`` m adds ln(m) to the score — the ranker's scores are log-scale and may be negative, so
   m > 1 always raises an item and m < 1 always lowers it — and ``add`` adds to it;
3. candidates are **ordered** by boosted score, and at most ``max_per_category`` items of one category
   are kept (an item counts under its catalogue category value as written, ``Home > Kitchen`` being
   one category; items without one are never capped);
4. the **top k**; a list that the filters or the cap left short is ranked again from a wider candidate
   budget (each source's depth and the union's budget ×2, ×4, … up to ×``widen``), then topped up from
   popularity within the filters and the cap;
5. **pins** put items at fixed positions (1-based), pushing the rest down; a pinned item must pass the
   filters and, when repeats are off, be new to the user, else that pin is skipped for that user.
   Pins override the cap.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from shortlist.data.ids import normalize_ids
from shortlist.errors import RulesError

#: The largest candidate widening factor a rule set may ask for.
MAX_WIDEN = 64
FIELDS = ("available_items", "exclude_items", "categories", "min_price", "max_price", "boosts", "pins",
          "max_per_category", "widen")


@dataclass(frozen=True)
class Boost:
    """Scores of ``items`` and of items in any of ``categories``: + ln(``multiply``) + ``add``."""

    items: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    multiply: float = 1.0
    add: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"items": list(self.items), "categories": list(self.categories), "multiply": self.multiply,
                "add": self.add}


@dataclass(frozen=True)
class Pin:
    """``item_id`` at 1-based ``position``."""

    item_id: str
    position: int


@dataclass(frozen=True)
class Rules:
    """Business rules in external ids (see the module docstring for what each does, and the order).

    ``available_items``: ``None`` means every item is available; an empty tuple means none is.
    ``categories``: empty means no category filter. ``widen``: the largest candidate widening factor
    (1: never widen)."""

    available_items: tuple[str, ...] | None = None
    exclude_items: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    min_price: float | None = None
    max_price: float | None = None
    boosts: tuple[Boost, ...] = ()
    pins: tuple[Pin, ...] = ()
    max_per_category: int | None = None
    widen: int = 8

    def __post_init__(self) -> None:
        _check(self)

    @property
    def empty(self) -> bool:
        """True when the rules change nothing."""
        return self == Rules(widen=self.widen)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, source: str = "rules") -> Rules:
        """Rules from a parsed TOML or JSON object; unknown keys and wrong types are a :class:`RulesError`."""
        if not isinstance(data, Mapping):
            raise RulesError(source, f"must be a table of rules, got {type(data).__name__}")
        unknown = sorted(set(data) - set(FIELDS))
        if unknown:
            raise RulesError(unknown[0], f"unknown rule in {source}; valid rules: {', '.join(FIELDS)}")
        available = data.get("available_items")
        return cls(
            available_items=None if available is None else _ids(available, "available_items"),
            exclude_items=_ids(data.get("exclude_items", ()), "exclude_items"),
            categories=_texts(data.get("categories", ()), "categories"),
            min_price=_number(data.get("min_price"), "min_price"),
            max_price=_number(data.get("max_price"), "max_price"),
            boosts=tuple(_boost(b, f"boosts[{i}]") for i, b in enumerate(_list(data.get("boosts", ()), "boosts"))),
            pins=tuple(_pin(p, f"pins[{i}]") for i, p in enumerate(_list(data.get("pins", ()), "pins"))),
            max_per_category=_integer(data.get("max_per_category"), "max_per_category"),
            widen=_integer(data.get("widen", 8), "widen") or 0,
        )

    def to_json(self) -> dict[str, Any]:
        """The rules as JSON (for manifests and cache keys); ``from_mapping(to_json())`` gives them back."""
        out: dict[str, Any] = {
            "exclude_items": list(self.exclude_items), "categories": list(self.categories),
            "boosts": [b.to_json() for b in self.boosts],
            "pins": [{"item_id": p.item_id, "position": p.position} for p in self.pins], "widen": self.widen,
        }
        if self.available_items is not None:
            out["available_items"] = list(self.available_items)
        for name in ("min_price", "max_price", "max_per_category"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        return out


def _check(r: Rules) -> None:
    if r.min_price is not None and r.max_price is not None and r.min_price > r.max_price:
        raise RulesError("min_price", f"{r.min_price} is above max_price {r.max_price}")
    for name in ("min_price", "max_price"):
        value = getattr(r, name)
        if value is not None and (not math.isfinite(value) or value < 0):
            raise RulesError(name, f"must be a finite number >= 0, got {value}")
    if r.max_per_category is not None and r.max_per_category < 1:
        raise RulesError("max_per_category", f"must be >= 1, got {r.max_per_category}")
    if not 1 <= r.widen <= MAX_WIDEN:
        raise RulesError("widen", f"must be in 1..{MAX_WIDEN}, got {r.widen}")
    positions = [p.position for p in r.pins]
    items = [p.item_id for p in r.pins]
    if any(p < 1 for p in positions):
        raise RulesError("pins", f"positions are 1-based, got {min(positions)}")
    if len(set(positions)) < len(positions) or len(set(items)) < len(items):
        raise RulesError("pins", "each position and each item may be pinned once")
    for i, b in enumerate(r.boosts):
        if not math.isfinite(b.multiply) or b.multiply <= 0 or not math.isfinite(b.add):
            raise RulesError(f"boosts[{i}]", f"multiply must be a finite number > 0 and add finite, got "
                                            f"multiply={b.multiply}, add={b.add}")
        if not b.items and not b.categories:
            raise RulesError(f"boosts[{i}]", "name the items or categories it applies to")


def _list(value: Any, name: str) -> list[Any]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise RulesError(name, f"must be a list, got {type(value).__name__}")
    return list(value)


def _ids(value: Any, name: str) -> tuple[str, ...]:
    """External ids by the one id rule (``17850`` and ``"17850"`` are the same id), duplicates dropped."""
    values = _list(value, name)
    if any(isinstance(v, bool) or not isinstance(v, str | int) for v in values):
        raise RulesError(name, "ids must be strings or integers")
    ids = normalize_ids([str(v) for v in values], source=name) if values else None
    if ids is not None and ids.null_count():
        raise RulesError(name, "ids must not be empty")
    return tuple(dict.fromkeys(ids.to_list())) if ids is not None else ()


def _texts(value: Any, name: str) -> tuple[str, ...]:
    values = _list(value, name)
    if any(not isinstance(v, str) or not v.strip() for v in values):
        raise RulesError(name, "must be a list of non-empty strings")
    return tuple(dict.fromkeys(v.strip() for v in values))


def _number(value: Any, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RulesError(name, f"must be a number, got {value!r}")
    return float(value)


def _integer(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise RulesError(name, f"must be an integer, got {value!r}")
    return int(value)


def _boost(value: Any, name: str) -> Boost:
    if not isinstance(value, Mapping):
        raise RulesError(name, "must be a table with items and/or categories, and multiply and/or add")
    extra = sorted(set(value) - {"items", "categories", "multiply", "add"})
    if extra:
        raise RulesError(name, f"unknown key {extra[0]!r}; valid: items, categories, multiply, add")
    return Boost(items=_ids(value.get("items", ()), f"{name}.items"),
                 categories=_texts(value.get("categories", ()), f"{name}.categories"),
                 multiply=_number(value.get("multiply", 1.0), f"{name}.multiply") or 0.0,
                 add=_number(value.get("add", 0.0), f"{name}.add") or 0.0)


def _pin(value: Any, name: str) -> Pin:
    if not isinstance(value, Mapping) or set(value) != {"item_id", "position"}:
        raise RulesError(name, "must be a table with exactly item_id and position")
    ids = _ids([value["item_id"]], f"{name}.item_id")
    position = _integer(value["position"], f"{name}.position")
    assert position is not None
    return Pin(ids[0], position)


__all__ = ["FIELDS", "Boost", "Pin", "Rules"]
