"""All of the pipeline's parallelism: independent tasks mapped over a few threads, and shards of
users mapped through the current shard mapper (in this process, or a cluster's workers)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from typing import Any, Protocol, TypeVar

from threadpoolctl import threadpool_limits

from shortlist.pipeline.progress import Progress, silent

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


class ShardMapper(Protocol):
    """Runs ``fn(shared, task)`` for each task and yields the results in task order, calling
    ``progress(step, done, len(tasks))`` as tasks finish. ``shared`` is read-only and the same for
    every task (a mapper on a cluster sends it to each worker once); ``fn`` is a module-level function."""

    def __call__(self, fn: Callable[[Any, Any], Any], shared: Any, tasks: Sequence[Any], *, step: str,
                 progress: Progress) -> Iterator[Any]: ...


def in_process(fn: Callable[[Any, Any], Any], shared: Any, tasks: Sequence[Any], *, step: str,
               progress: Progress) -> Iterator[Any]:
    """The default mapper: one task after another in this process."""
    for done, task in enumerate(tasks, 1):
        yield fn(shared, task)
        progress(step, done, len(tasks))


_MAPPER: ContextVar[ShardMapper] = ContextVar("shortlist_shard_mapper", default=in_process)


def map_shards(fn: Callable[[Any, T], R], shared: Any, tasks: Sequence[T], *, step: str,
               progress: Progress = silent) -> Iterator[R]:
    """``fn(shared, t)`` for each of ``tasks`` (shards of users), in task order, through the current
    mapper: this process by default, a Dask cluster inside :func:`shortlist.distributed.on_cluster`.
    A shard's result depends on the shard alone, so where it runs does not change it."""
    return _MAPPER.get()(fn, shared, tasks, step=step, progress=progress)


@contextlib.contextmanager
def use_mapper(mapper: ShardMapper) -> Iterator[ShardMapper]:
    """Map shards through ``mapper`` inside the block (in this thread and context)."""
    token = _MAPPER.set(mapper)
    try:
        yield mapper
    finally:
        _MAPPER.reset(token)


def user_shards(users: Sequence[T] | Any, size: int) -> list[Any]:
    """``users`` cut into consecutive shards of ``size`` (at least one shard, maybe empty)."""
    return [users[lo:lo + size] for lo in range(0, max(len(users), 1), size)]
