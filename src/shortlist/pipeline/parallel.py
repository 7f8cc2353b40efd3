"""All of the pipeline's parallelism: independent tasks mapped over a few threads."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from threadpoolctl import threadpool_limits

T = TypeVar("T")
R = TypeVar("R")


def default_jobs() -> int:
    return os.cpu_count() or 1


def map_tasks(fn: Callable[[T], R], tasks: Iterable[T], *, n_jobs: int | None = None) -> list[R]:
    """``[fn(t) for t in tasks]``, on up to ``n_jobs`` threads (None: one per core), results in task
    order. The work is numpy, scipy and polars, which release the GIL; BLAS runs one thread a
    call, with one job or many, so a product's rounding never depends on the number of jobs."""
    items = list(tasks)
    jobs = max(1, min(len(items), n_jobs or default_jobs()))
    with threadpool_limits(limits=1, user_api="blas"):
        if jobs == 1:
            return [fn(t) for t in items]
        with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="shortlist") as pool:
            return list(pool.map(fn, items))
