"""Prometheus metrics of one app instance (its own registry: two apps never share counters).

Every metric carries a ``variant`` label: the A/B variant a request was served by (``default`` when
one model is served), ``none`` for a request tied to no variant (health, metrics, a refused request),
and ``all`` for what belongs to the whole service (Redis)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
#: The ``variant`` label of a request served by no variant, and of a service-wide figure.
NO_VARIANT, ALL_VARIANTS = "none", "all"


class ServiceMetrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        v = "variant"
        self.request_latency = Histogram("shortlist_request_latency_seconds", "Request latency by endpoint",
                                         [v, "endpoint"], buckets=LATENCY_BUCKETS, registry=r)
        self.stage_latency = Histogram("shortlist_stage_latency_seconds", "Time per recommendation stage",
                                       [v, "stage"], buckets=LATENCY_BUCKETS, registry=r)
        self.cache = Counter("shortlist_cache", "Response cache lookups by result", [v, "result"], registry=r)
        self.fallbacks = Counter("shortlist_fallback", "Responses served by a fallback, by reason", [v, "reason"],
                                 registry=r)
        self.errors = Counter("shortlist_errors", "Requests that failed, by endpoint and status",
                              [v, "endpoint", "status"], registry=r)
        self.requests = Counter("shortlist_requests", "Requests by endpoint", [v, "endpoint"], registry=r)
        self.candidates = Histogram("shortlist_candidates_per_request", "Candidates scored per request", [v],
                                    buckets=(0, 10, 50, 100, 200, 300, 500, 1000), registry=r)
        self.psi = Gauge("shortlist_feature_psi", "Population stability index of a feature, serving vs reference",
                         [v, "feature"], registry=r)
        self.drift = Gauge("shortlist_drift_flag", "1 when any feature's PSI exceeds the threshold", [v], registry=r)
        self.redis_up = Gauge("shortlist_redis_up", "1 when Redis answers; 0 when it does not or none is configured",
                              [v], registry=r)
        self.model_info = Gauge("shortlist_model_info", "The loaded model (value 1)", [v, "version"], registry=r)
        self.reloads = Counter("shortlist_model_reloads", "Model reloads by result", [v, "result"], registry=r)
        self.redis_up.labels(ALL_VARIANTS).set(0)

    def render(self) -> bytes:
        return generate_latest(self.registry)
