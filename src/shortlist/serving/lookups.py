"""The read-only lookups of the service — similar items, an item, a user's history, the users, the
model's description — each over one variant's loaded model."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np

from shortlist.serving.engine import Engine
from shortlist.serving.errors import NotFoundError

if TYPE_CHECKING:
    from shortlist.serving.service import Service


def _item(engine: Engine, item_id: str) -> int:
    item = engine.item_index(item_id)
    if item is None:
        raise NotFoundError(f"item_id {item_id!r} is unknown to the model")
    return item


def similar(svc: Service, variant: str, item_id: str, k: int) -> dict[str, Any]:
    svc.check_k(k)
    engine = svc.engine(variant)
    items, scores = engine.similar(_item(engine, item_id), k)
    ids = engine.item_ext[items]
    t = engine.titles
    return {"item_id": item_id, "model_version": engine.version, "variant": variant,
            "items": [{"item_id": i, "title": None if t is None else t[j], "score": round(float(s), 6), "rank": r + 1}
                      for r, (j, i, s) in enumerate(zip(items, ids, scores, strict=True))]}


def item(svc: Service, variant: str, item_id: str) -> dict[str, Any]:
    engine = svc.engine(variant)
    return engine.item_info(_item(engine, item_id))


def history(svc: Service, variant: str, user_id: str, n: int) -> dict[str, Any]:
    """The user's online events (newest first), then their stored history."""
    engine = svc.engine(variant)
    user = engine.user_index(user_id)
    events, _ = svc.store.events(user_id)
    rows: list[dict[str, Any]] = []
    for e in reversed(events):
        idx = engine.item_index(e.item_id)
        rows.append({"item_id": e.item_id, "timestamp": e.timestamp, "online": True,
                     "title": None if idx is None or engine.titles is None else engine.titles[idx]})
    stored = svc.stored_history(engine, user_id)
    own = stored if stored is not None else engine.user_history(user)
    order = np.argsort(own.timestamps, kind="stable")
    keep = max(0, n - len(rows))
    items, ts = own.items[order][::-1][:keep], own.timestamps[order][::-1][:keep]  # newest first
    t = engine.titles
    rows += [{"item_id": i, "timestamp": int(s), "online": False, "title": None if t is None else t[j]}
             for j, i, s in zip(items, engine.item_ext[items], ts, strict=True)]
    return {"user_id": user_id, "known": user is not None, "items": rows[:n]}


def users(svc: Service, variant: str, limit: int) -> dict[str, Any]:
    """The model's most active users."""
    engine = svc.engine(variant)
    order = np.argsort(-engine.user_lengths, kind="stable")[:limit]
    return {"users": engine.users.external(order).to_list() if len(order) else []}


def model_info(svc: Service, variant: str) -> dict[str, Any]:
    engine = svc.engine(variant)
    return {
        "model_version": engine.version, "variant": variant, "created": engine.manifest.get("created"),
        "shortlist_version": engine.manifest.get("shortlist_version"), "config": engine.manifest.get("config"),
        "sources": list(engine.index_stats()["sources"]), "index": engine.index_stats(),
        "training_metrics": engine.model.metrics_, "top_features": engine.top_features(10),
        "latency": svc.latency_percentiles(), "drift": None if engine.drift is None else engine.drift.report(),
        "cache": svc.cache.backend, "feature_store": svc.store.backend,
        "uptime_s": round(time.time() - svc.started, 1),
    }


__all__ = ["history", "item", "model_info", "similar", "users"]
