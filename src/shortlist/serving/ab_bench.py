"""The A/B load run (``shortlist bench serve --variant A=DIR --variant B=DIR``): a bounded load over
several variants that checks what an A/B test must hold — no errors, every user always served by the
same variant (the one the bucketing hash names), and each variant's share of users and of requests
near its target."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shortlist.pipeline.artifacts import load_ids
from shortlist.serving.bucketing import assign
from shortlist.serving.http_bench import BenchResult, run_bench
from shortlist.serving.loadtest import running_server


@dataclass(frozen=True)
class ABResult:
    """What the A/B run saw: the load figures, the shares (target, of users, of requests) per
    variant, users seen in more than one variant or in another than their hash's, and answers
    that named no variant."""

    bench: BenchResult
    users: int
    target: dict[str, float]
    user_share: dict[str, float]
    request_share: dict[str, float]
    switched_users: int
    misassigned_users: int
    unnamed: int
    server: dict[str, Any] = field(default_factory=dict)

    @property
    def max_share_gap(self) -> float:
        """The largest distance, in percentage points, between a variant's share of users and its target."""
        return max(abs(self.user_share.get(n, 0.0) - t) for n, t in self.target.items()) * 100

    def as_dict(self) -> dict[str, Any]:
        return {**{k: getattr(self, k) for k in self.__dataclass_fields__ if k != "bench"},
                "bench": self.bench.as_dict(), "max_share_gap_pp": round(self.max_share_gap, 3)}


def ab_users(model_dir: Path, n_requests: int, *, seed: int = 0) -> list[str]:
    """The users a run asks for: the model's own users, shuffled, at most half as many as requests
    (so that every user is asked at least twice: stickiness is seen, not assumed)."""
    users = load_ids(Path(model_dir) / "users.parquet").to_list()
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(users))[: max(1, n_requests // 2)]
    return [users[i] for i in order]


def run_ab(base_url: str, users: Sequence[str], *, targets: dict[str, float], salt: str, n_requests: int,
           concurrency: int, k: int = 10, duration_cap_s: float = 300.0) -> ABResult:
    """``n_requests`` uncached ``/recommend`` requests cycling over ``users`` at ``concurrency``
    connections; each answer's ``variant`` is checked against the user's and the hash's."""
    seen: dict[str, set[str]] = {}
    per_request: dict[str, int] = dict.fromkeys(targets, 0)
    unnamed = 0

    def observe(i: int, status: int, body: dict[str, Any] | None) -> None:
        nonlocal unnamed
        variant = body.get("variant") if body else None
        if not isinstance(variant, str):
            unnamed += status == 200
            return
        seen.setdefault(users[i % len(users)], set()).add(variant)
        per_request[variant] = per_request.get(variant, 0) + 1

    bench = run_bench(base_url, users=list(users), n_requests=n_requests, concurrency=concurrency, k=k,
                      duration_cap_s=duration_cap_s, observe=observe)
    names, shares = tuple(targets), tuple(targets.values())
    by_user = {u: next(iter(v)) for u, v in seen.items() if len(v) == 1}
    counts = {n: sum(1 for v in by_user.values() if v == n) for n in names}
    answered = max(1, sum(per_request.values()))
    return ABResult(bench=bench, users=len(seen), target=dict(targets),
                    user_share={n: c / max(1, len(by_user)) for n, c in counts.items()},
                    request_share={n: c / answered for n, c in per_request.items()},
                    switched_users=sum(1 for v in seen.values() if len(v) > 1),
                    misassigned_users=sum(1 for u, v in by_user.items() if v != assign(u, names, shares, salt)),
                    unnamed=unnamed)


def serve_and_bench_ab(variants: Sequence[tuple[str, Path]], *, split: Sequence[float], salt: str,
                       n_requests: int = 10_000, concurrency: int = 16, k: int = 10, warmup: int = 200,
                       extra: Sequence[str] = (), console: Any = None) -> ABResult:
    """Start ``shortlist serve`` with the variants on a loopback port, run :func:`run_ab`, read
    ``GET /variants``, print the figures, stop the service."""
    from rich.console import Console

    from shortlist.serving.loadtest import get_json, loopback_target

    cmd = [sys.executable, "-m", "shortlist.cli", "serve", "--host", "{host}", "--port", "{port}",
           "--split", ",".join(f"{s:g}" for s in split), "--salt", salt, *extra]
    for name, directory in variants:
        cmd += ["--variant", f"{name}={directory}"]
    total = sum(split)
    targets = {name: s / total for (name, _), s in zip(variants, split, strict=True)}
    users = ab_users(variants[0][1], n_requests)
    with running_server(cmd) as url:
        if warmup:
            run_bench(url, users=users, n_requests=warmup, concurrency=4, k=k)
        result = run_ab(url, users, targets=targets, salt=salt, n_requests=n_requests, concurrency=concurrency, k=k)
        host, port, _ = loopback_target(url)
        server = get_json(host, port, "/variants")[1]
    result = ABResult(**{**{f: getattr(result, f) for f in result.__dataclass_fields__}, "server": server or {}})
    print_ab(result, console or Console())
    return result


def print_ab(r: ABResult, console: Any) -> None:
    from rich.table import Table

    b = r.bench
    console.print(f"A/B run: {b.n:,} requests, {b.concurrency} connections, {r.users:,} users; errors {b.errors}; "
                  f"p50 {b.p50_ms:.2f} ms, p99 {b.p99_ms:.2f} ms, {b.throughput_rps:,.0f} req/s")
    table = Table(title="variants")
    for col in ("variant", "target", "users", "requests", "server requests", "server p50 ms", "server p99 ms",
                "server errors"):
        table.add_column(col, justify="left" if col == "variant" else "right")
    server = {v["name"]: v for v in (r.server.get("variants") or [])}
    for name, target in r.target.items():
        s = server.get(name, {})
        lat = (s.get("latency") or {}).get("/recommend", {})
        table.add_row(name, f"{target:.2%}", f"{r.user_share.get(name, 0):.2%}", f"{r.request_share.get(name, 0):.2%}",
                      str(s.get("requests", "-")), str(lat.get("p50_ms", "-")), str(lat.get("p99_ms", "-")),
                      str(s.get("errors", "-")))
    console.print(table)
    console.print(f"users seen in two variants: {r.switched_users}; users not in their hash's variant: "
                  f"{r.misassigned_users}; answers without a variant: {r.unnamed}; largest gap to a target share "
                  f"of users: {r.max_share_gap:.2f} points")
    for sample in b.error_samples:
        console.print(f"error: {sample}")


__all__ = ["ABResult", "ab_users", "print_ab", "run_ab", "serve_and_bench_ab"]
