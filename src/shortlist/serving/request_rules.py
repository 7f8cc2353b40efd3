"""A request's business rules: its fields checked, turned into :class:`Rules`, compiled against the
serving model's catalogue and added to the server's own rules."""

from __future__ import annotations

import json
from typing import Any

from shortlist.errors import RulesError
from shortlist.pipeline.item_rules import ItemRules
from shortlist.pipeline.rules import Boost, Pin, Rules
from shortlist.serving.engine import Engine
from shortlist.serving.errors import BadRequestError
from shortlist.serving.schemas import RuleFields

#: Most boosts a request may carry.
MAX_BOOSTS = 20


def check_list(field: str, values: list[Any] | None, limit: int) -> None:
    """A request list over ``limit`` entries is a 422 naming ``field``."""
    if values is not None and len(values) > limit:
        raise BadRequestError(field, f"{field} has {len(values)} entries, over the limit of {limit}")


def request_rules(req: RuleFields, *, max_items: int, max_k: int) -> Rules | None:
    """The request's rule fields as :class:`Rules` (``None``: it sets none); lists longer than
    ``max_items`` and pins past ``max_k`` are refused."""
    for name in ("exclude_items", "categories", "available_items"):
        check_list(name, getattr(req, name), max_items)
    check_list("boosts", req.boosts, MAX_BOOSTS)
    check_list("pins", req.pins, max_k)
    for i, b in enumerate(req.boosts or ()):
        check_list(f"boosts[{i}].items", b.items, max_items)
        check_list(f"boosts[{i}].categories", b.categories, max_items)
    if any(p.position > max_k for p in req.pins or ()):
        raise BadRequestError("pins", f"a pin's position is at most {max_k} (--max-k)")
    try:
        rules = Rules(
            available_items=None if req.available_items is None else _ids(req.available_items),
            exclude_items=_ids(req.exclude_items or ()), categories=tuple(dict.fromkeys(req.categories or ())),
            min_price=req.min_price, max_price=req.max_price,
            boosts=tuple(Boost(items=_ids(b.items or ()), categories=tuple(b.categories or ()), multiply=b.multiply,
                               add=b.add) for b in req.boosts or ()),
            pins=tuple(Pin(str(p.item_id), p.position) for p in req.pins or ()),
            max_per_category=req.max_per_category)
    except RulesError as e:
        raise BadRequestError(e.field, e.message) from None
    return None if rules.empty else rules


def compiled(engine: Engine, rules: Rules | None) -> ItemRules | None:
    """The server's rules plus ``rules`` over ``engine``'s items (``None``: the server's alone)."""
    if rules is None:
        return None
    try:
        mine = ItemRules.compile(rules, engine.catalogue)
    except RulesError as e:
        raise BadRequestError(e.field, e.message) from None
    return engine.default_rules.merged(mine)


def cache_key(rules: Rules | None) -> str:
    """The rules as a cache key part (equal rules, equal key)."""
    return "" if rules is None else json.dumps(rules.to_json(), sort_keys=True)


def _ids(values: Any) -> tuple[str, ...]:
    return tuple(dict.fromkeys(str(v) for v in values))


__all__ = ["cache_key", "check_list", "compiled", "request_rules"]
