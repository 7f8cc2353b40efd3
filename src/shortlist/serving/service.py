"""``Service``: request-level logic between the HTTP routes and the engines — A/B variants, cache,
online events, business rules, fallbacks, metrics and drift. The routes only translate HTTP; the
read-only lookups live in :mod:`shortlist.serving.lookups`."""

from __future__ import annotations

import functools
import json
import logging
import time
from collections import deque
from typing import Any

import numpy as np
import orjson

from shortlist.features.profile import UserHistory
from shortlist.pipeline.item_rules import ItemRules
from shortlist.serving.cache import MemoryCache, RedisCache, ResponseCache
from shortlist.serving.engine import Answer, Engine
from shortlist.serving.errors import BadRequestError, NotFoundError
from shortlist.serving.histories_redis import RedisHistories
from shortlist.serving.holder import ModelHolder, ReloadInProgressError
from shortlist.serving.metrics import ALL_VARIANTS, ServiceMetrics
from shortlist.serving.redis_link import RedisLink
from shortlist.serving.request_rules import cache_key, check_list, compiled, request_rules
from shortlist.serving.schemas import EventRequest, RecommendRequest, SessionRequest
from shortlist.serving.settings import ServingSettings
from shortlist.serving.store import Event, EventStore, MemoryEventStore, RedisEventStore
from shortlist.serving.variants import UnknownVariantError, Variants

logger = logging.getLogger(__name__)
DRIFT_ROWS_PER_REQUEST = 8
_ORJSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS

__all__ = ["BadRequestError", "NotFoundError", "Service", "dumps"]


def dumps(body: Any) -> bytes:
    """A response body as JSON bytes (orjson; numpy scalars and arrays accepted; NaN and infinities
    become ``null``, keeping the JSON valid)."""
    return orjson.dumps(body, option=_ORJSON_OPTIONS)


class Service:
    def __init__(self, settings: ServingSettings) -> None:
        self.settings = settings
        self.metrics = ServiceMetrics()
        loader = functools.partial(
            Engine.load, drift_users=settings.drift_reference_users, drift_threshold=settings.drift_threshold,
            max_candidates=settings.max_candidates, explain_top=settings.explain_top, rules=settings.rules)
        self.variants = Variants(settings.served, salt=settings.salt, loader=loader)
        self.redis: RedisLink | None = None
        self.cache: ResponseCache
        self.store: EventStore
        if settings.redis_url:
            self.redis = RedisLink(settings.redis_url, timeout_s=settings.redis_timeout_s,
                                   retry_s=settings.redis_retry_s)
            self.cache = RedisCache(self.redis, ttl_s=settings.cache_ttl_s)
            self.store = RedisEventStore(self.redis, max_events=settings.max_online_events)
        else:
            self.cache = MemoryCache(ttl_s=settings.cache_ttl_s, max_users=settings.cache_max_users)
            self.store = MemoryEventStore(max_events=settings.max_online_events)
        self.pushed: RedisHistories | None = RedisHistories(self.redis) if self.redis is not None else None
        self.latencies: dict[str, deque[float]] = {}
        self.started = time.time()
        for name, h in self.variants.holders.items():
            self.metrics.model_info.labels(name, h.current.version).set(1)

    @property
    def holder(self) -> ModelHolder:
        """The control variant's holder (the one model, when no A/B test runs)."""
        return self.variants.holder()

    def engine(self, variant: str | None = None) -> Engine:
        """The loaded model of ``variant`` (``None``: the control); an unknown variant is a 404."""
        try:
            return self.variants.holder(variant).current
        except UnknownVariantError as e:
            raise NotFoundError(str(e)) from None

    # --- helpers ---------------------------------------------------------------------------------
    def record(self, variant: str, endpoint: str, status: int, seconds: float) -> None:
        """One finished request: the latency window of its endpoint and its variant's figures."""
        self.latencies.setdefault(endpoint, deque(maxlen=20_000)).append(seconds)
        self.variants.stats.record(variant, endpoint, status, seconds)

    def latency_percentiles(self) -> dict[str, dict[str, float]]:
        out = {}
        for endpoint, values in list(self.latencies.items()):
            a = np.array(values) * 1000
            if len(a):
                p50, p95, p99 = np.percentile(a, [50, 95, 99])
                out[endpoint] = {"n": len(a), "p50_ms": round(p50, 3), "p95_ms": round(p95, 3), "p99_ms": round(p99, 3)}
        return out

    def check_k(self, k: int) -> None:
        if k > self.settings.max_k:
            raise BadRequestError("k", f"k={k} is above the maximum of {self.settings.max_k} (--max-k)")

    def stored_history(self, engine: Engine, user_id: str) -> UserHistory | None:
        """The user's history from the Redis feature store when the model's histories were pushed
        there (``shortlist features push``); ``None``: use the model's own copy."""
        return self.pushed.of(engine.version, user_id) if self.pushed is not None else None

    def full_history(self, engine: Engine, user_id: str, user: int | None, events: list[Event]) -> UserHistory:
        """The user's stored history followed by their online events (items the model knows)."""
        base = self.stored_history(engine, user_id) or engine.user_history(user)
        idx = [engine.item_index(e.item_id) for e in events]
        known = [(e, i) for e, i in zip(events, idx, strict=True) if i is not None and e.event in engine.event_weights]
        if len(known) < len(events):  # items or event types the (reloaded) model does not know
            logger.info("user %r: %d online event(s) the model cannot use left out", user_id, len(events) - len(known))
        items = np.array([i for _, i in known], dtype=np.int64)
        ts = np.array([e.timestamp for e, _ in known], dtype=np.int64)
        return engine.with_events(base, items, ts, [e.event for e, _ in known])

    def _observe(self, variant: str, engine: Engine, ranked: Answer) -> None:
        for stage, s in ranked.stages.items():
            self.metrics.stage_latency.labels(variant, stage).observe(s)
        self.metrics.candidates.labels(variant).observe(ranked.n_candidates)
        if ranked.features is not None and engine.drift is not None:
            # An evenly spaced sample of the request's rows (rank order is fusion order, so every
            # depth is represented) keeps drift accounting cheap.
            X = ranked.features
            engine.drift.observe(X[:: max(1, len(X) // DRIFT_ROWS_PER_REQUEST)])
        if ranked.fallback:
            for reason in ranked.fallback.split(";"):
                self.metrics.fallbacks.labels(variant, reason.split(":")[0]).inc()

    def _items_json(self, engine: Engine, ranked: Answer) -> list[dict[str, Any]]:
        ids = engine.item_ext[ranked.items]
        titles = engine.titles
        out = []
        for r, (item, iid, score, srcs) in enumerate(zip(ranked.items, ids, ranked.scores, ranked.sources, strict=True)):
            row: dict[str, Any] = {"item_id": iid, "title": None if titles is None else titles[item],
                                   "score": None if score != score else round(float(score), 6), "rank": r + 1,
                                   "sources": srcs}
            if ranked.contributions is not None:
                row["contributions"] = ([{"feature": f, "value": round(v, 6)} for f, v in ranked.contributions[r]]
                                        if r < len(ranked.contributions) else [])
            out.append(row)
        return out

    def _rules(self, req: RecommendRequest | SessionRequest) -> Any:
        return request_rules(req, max_items=self.settings.max_request_items, max_k=self.settings.max_k)

    # --- endpoints -------------------------------------------------------------------------------
    def recommend(self, req: RecommendRequest, variant: str) -> dict[str, Any]:
        """``req.user_id``'s list from ``variant``'s model (the route assigned it)."""
        t0 = time.perf_counter()
        self.check_k(req.k)
        rules = self._rules(req)
        engine = self.engine(variant)
        user_id = str(req.user_id)
        options = json.dumps([variant, req.k, cache_key(rules), req.explain])
        if req.use_cache:
            cached = self.cache.get(engine.version, user_id, options)
            if cached is not None:
                self.metrics.cache.labels(variant, "hit").inc()
                body = orjson.loads(cached)
                body["cache_hit"], body["latency_ms"] = True, round((time.perf_counter() - t0) * 1000, 3)
                return body
            self.metrics.cache.labels(variant, "miss").inc()
        ranked = self._answer(engine, user_id, req.k, compiled(engine, rules), req.explain)
        body = self._response(variant, engine, ranked, user_id)
        if req.use_cache and ranked.fallback is None:  # degraded answers are not cached
            self.cache.set(engine.version, user_id, options, dumps(body))
        body["latency_ms"] = round((time.perf_counter() - t0) * 1000, 3)
        return body

    def _answer(self, engine: Engine, user_id: str, k: int, rules: ItemRules | None, explain: bool) -> Answer:
        """A user's answer: from their history plus online events, their fitted history, or popularity."""
        user = engine.user_index(user_id)
        events, store_ok = self.store.events(user_id)
        reasons = [] if store_ok else ["feature_store_unavailable"]
        if events:
            hist = self.full_history(engine, user_id, user, events)
            if len(hist):
                ranked = engine.recommend_history(hist, k, user=user, rules=rules, explain=explain)
            else:
                ranked = self._popular(engine, k, rules, "no_known_items")
        elif user is not None:
            ranked = engine.recommend_user(user, k, rules=rules, explain=explain,
                                           history=self.stored_history(engine, user_id))
        else:
            ranked = self._popular(engine, k, rules, "unknown_user")
        if ranked.failed_sources:
            reasons.append("sources_failed:" + ",".join(ranked.failed_sources))
        if ranked.fallback:
            reasons.insert(0, ranked.fallback)
        ranked.fallback = ";".join(reasons) or None
        return ranked

    def _response(self, variant: str, engine: Engine, ranked: Answer, user_id: str | None) -> dict[str, Any]:
        """Record the request's metrics and drift rows; the JSON body (``latency_ms`` set by the caller)."""
        self._observe(variant, engine, ranked)
        return {"user_id": user_id, "items": self._items_json(engine, ranked), "latency_ms": 0.0, "cache_hit": False,
                "n_candidates": ranked.n_candidates, "fallback": ranked.fallback, "model_version": engine.version,
                "variant": variant}

    def _popular(self, engine: Engine, k: int, rules: ItemRules | None, reason: str) -> Answer:
        answer = engine.popular(k, rules=rules)
        answer.fallback = reason
        return answer

    def recommend_session(self, req: SessionRequest, variant: str) -> dict[str, Any]:
        t0 = time.perf_counter()
        self.check_k(req.k)
        check_list("items", req.items, self.settings.max_request_items)
        rules = self._rules(req)
        engine = self.engine(variant)
        item_rules = compiled(engine, rules)
        items = engine.item_indices([str(i) for i in req.items])
        if len(items):
            ts = engine.end_ts - np.arange(len(items))[::-1]  # oldest first, ending at the model's data end
            ranked = engine.recommend_history(UserHistory(items, ts), req.k, rules=item_rules, explain=req.explain)
            if ranked.failed_sources:
                ranked.fallback = "sources_failed:" + ",".join(ranked.failed_sources)
        else:
            ranked = self._popular(engine, req.k, item_rules, "no_known_items")
        body = self._response(variant, engine, ranked, None)
        body["latency_ms"] = round((time.perf_counter() - t0) * 1000, 3)
        return body

    def add_event(self, req: EventRequest, variant: str) -> dict[str, Any]:
        engine = self.engine(variant)
        item_id = str(req.item_id)
        if engine.item_index(item_id) is None:
            raise BadRequestError("item_id", f"item_id {item_id!r} is unknown to the model; it cannot be used "
                                             "until a model trained with it is loaded")
        event = (req.event or "view").strip().lower()  # logs' event names are lower-cased on loading too
        if event not in engine.event_weights:
            raise BadRequestError("event", f"unknown event {event!r}; the model's event weights name: "
                                           f"{', '.join(engine.event_weights)}" + ("" if req.event else " (pass one)"))
        ts = req.timestamp if req.timestamp is not None else int(time.time())
        user_id = str(req.user_id)
        n, durable = self.store.append(user_id, Event(item_id=item_id, timestamp=ts, event=event))
        self.cache.invalidate(user_id)
        return {"ok": True, "history_length": n, "degraded": [] if durable else ["redis"]}

    def reload(self, variant: str | None = None) -> dict[str, Any]:
        """Reload ``variant``'s model folder (``None``: every variant's, one after another), counting
        each outcome; the first failure stops and raises (the variants not reached keep theirs)."""
        if variant is not None:
            self.engine(variant)  # an unknown variant: 404
        names = self.variants.names if variant is None else (variant,)
        out: dict[str, Any] = {}
        for name in names:
            try:
                old, new = self.variants.holder(name).reload()
            except ReloadInProgressError:
                self.metrics.reloads.labels(name, "busy").inc()
                raise
            except Exception:
                self.metrics.reloads.labels(name, "failed").inc()
                raise
            self.metrics.reloads.labels(name, "ok").inc()
            if old != new:
                self.metrics.model_info.remove(name, old)
            self.metrics.model_info.labels(name, new).set(1)
            out[name] = {"reloaded": old != new, "previous_version": old, "model_version": new}
        body: dict[str, Any] = {"reloaded": any(v["reloaded"] for v in out.values()), "variants": out}
        if len(out) == 1:
            body.update(next(iter(out.values())))
        return body

    def ready(self) -> dict[str, Any]:
        degraded = []
        if self.redis is not None:
            up = self.redis.ping()
            self.metrics.redis_up.labels(ALL_VARIANTS).set(1 if up else 0)
            if not up:
                degraded.append("redis")
        if any(h.last_error for h in self.variants.holders.values()):
            degraded.append("model_reload")
        return {"ready": True, "degraded": degraded, "model_version": self.holder.current.version,
                "variants": {n: h.current.version for n, h in self.variants.holders.items()}}

    def refresh_gauges(self) -> None:
        for name, holder in self.variants.holders.items():
            engine = holder.current
            if engine.drift is not None:
                psi = engine.drift.psi()
                for feature, v in zip(engine.drift.names, psi, strict=True):
                    self.metrics.psi.labels(name, feature).set(float(v))
                self.metrics.drift.labels(name).set(1 if engine.drift.drifted(psi).any() else 0)
        if self.redis is not None:
            self.metrics.redis_up.labels(ALL_VARIANTS).set(1 if self.redis.up else 0)
