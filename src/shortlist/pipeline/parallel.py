"""All of the pipeline's parallelism: independent tasks mapped over a few threads, and shards of
users mapped through the current shard mapper (in this process, or a cluster's workers)."""

from __future__ import annotations

import contextlib
import contextvars
import os
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextvars import ContextVar
from functools import partial
from itertools import islice
from typing import Any, Protocol, TypeVar

from threadpoolctl import ThreadpoolController

from shortlist.pipeline.progress import Progress, silent

T = TypeVar("T")
R = TypeVar("R")
S = TypeVar("S")


def default_jobs() -> int:
    return os.cpu_count() or 1


_BLAS: tuple[int, ThreadpoolController] | None = None  # (modules loaded when made, the controller)


def one_blas_thread() -> contextlib.AbstractContextManager[Any]:
    """BLAS limited to one thread a call inside the block (process-wide). Finding the loaded BLAS
    libraries takes milliseconds, so it is done again only after modules were imported (a request
    that maps one shard pays microseconds, not that search)."""
    global _BLAS
    if _BLAS is None or _BLAS[0] != len(sys.modules):
        _BLAS = (len(sys.modules), ThreadpoolController())
    return _BLAS[1].limit(limits=1, user_api="blas")


def map_tasks(fn: Callable[[T], R], tasks: Iterable[T], *, n_jobs: int | None = None) -> list[R]:
    """``[fn(t) for t in tasks]``, on up to ``n_jobs`` threads (None: one per core), results in task
    order; shards a task maps go through the caller's shard mapper. The work is numpy, scipy and
    polars, which release the GIL; BLAS runs one thread a call, with one job or many, so a product's
    rounding never depends on the number of jobs."""
    items = list(tasks)
    jobs = max(1, min(len(items), n_jobs or default_jobs()))
    if jobs == 1:
        return [_one_blas_thread_call(fn, t) for t in items]
    with one_blas_thread(), ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="shortlist") as pool:
        # each task runs in a copy of this context, so shards it maps go through the current mapper
        futures = [pool.submit(contextvars.copy_context().run, _one_blas_thread_call, fn, t) for t in items]
        return [f.result() for f in futures]


def _one_blas_thread_call(fn: Callable[[T], R], task: T) -> R:
    """``fn(task)`` with BLAS at one thread, set on the thread that runs it: an OpenMP build's limit
    (e.g. FAISS's OpenBLAS) holds for the calling thread only. Callers that start threads hold the
    limit themselves too, so a process-wide one is never restored while another thread runs."""
    with one_blas_thread():
        return fn(task)


class ShardMapper(Protocol):
    """Runs ``fn(shared, task)`` for each task and yields the results in task order, calling
    ``progress(step, done, len(tasks))`` as tasks finish. ``shared`` is read-only and the same for
    every task (a mapper on a cluster sends it to each worker once); ``fn`` is a module-level function.
    ``n_jobs``: threads this process may use (None: one per core); a cluster's mapper uses its workers.
    ``keep`` (a module-level function): each result stays where it was made and ``(handle, keep(result))``
    is yielded instead, the handle being the result itself in this process or a cluster's future."""

    def __call__(self, fn: Callable[[Any, Any], Any], shared: Any, tasks: Sequence[Any], *, step: str,
                 progress: Progress, n_jobs: int | None = None,
                 keep: Callable[[Any], Any] | None = None) -> Iterator[Any]: ...


_INSIDE = threading.local()  # set while a thread runs a shard: shards mapped from inside it run in turn


def in_shard(fn: Callable[[Any, Any], R], shared: Any, task: Any) -> R:
    """``fn(shared, task)`` as a shard's work: BLAS at one thread a call on the thread that runs it,
    and any shards it maps itself run one after another there (no threads started inside threads,
    or inside a cluster's task)."""
    outer = getattr(_INSIDE, "active", False)
    _INSIDE.active = True
    try:
        return _one_blas_thread_call(partial(fn, shared), task)
    finally:
        _INSIDE.active = outer


def in_process(fn: Callable[[Any, Any], Any], shared: Any, tasks: Sequence[Any], *, step: str,
               progress: Progress, n_jobs: int | None = None, keep: Callable[[Any], Any] | None = None) -> Iterator[Any]:
    """The default mapper: this process, on up to ``n_jobs`` threads (None: one per core) with at most
    that many shards in flight, so memory holds ``n_jobs`` shards, not all of them. The work is numpy,
    scipy, polars and LightGBM, which release the GIL. BLAS runs one thread a call, with one job or
    many, so a shard's rounding never depends on ``n_jobs``. With ``keep``: ``(result, keep(result))``."""
    results = _in_process(fn, shared, tasks, step=step, progress=progress, n_jobs=n_jobs)
    return results if keep is None else ((r, keep(r)) for r in results)


def _in_process(fn: Callable[[Any, Any], Any], shared: Any, tasks: Sequence[Any], *, step: str,
                progress: Progress, n_jobs: int | None) -> Iterator[Any]:
    jobs = 1 if getattr(_INSIDE, "active", False) else max(1, min(len(tasks), n_jobs or default_jobs()))
    if jobs == 1:
        for done, task in enumerate(tasks, 1):
            yield in_shard(fn, shared, task)
            progress(step, done, len(tasks))
        return
    with one_blas_thread(), ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="shortlist-shard") as pool:
        queued = iter(tasks)
        running: deque[Future[Any]] = deque(pool.submit(in_shard, fn, shared, t) for t in islice(queued, jobs))
        for done in range(1, len(tasks) + 1):
            result = running.popleft().result()
            for task in queued:  # one more shard starts as one is handed out
                running.append(pool.submit(in_shard, fn, shared, task))
                break
            yield result
            progress(step, done, len(tasks))


_MAPPER: ContextVar[ShardMapper] = ContextVar("shortlist_shard_mapper", default=in_process)


def map_shards(fn: Callable[[Any, T], R], shared: Any, tasks: Sequence[T], *, step: str,
               progress: Progress = silent, n_jobs: int | None = None) -> Iterator[R]:
    """``fn(shared, t)`` for each of ``tasks`` (shards of users), in task order, through the current
    mapper: this process (on ``n_jobs`` threads) by default, a Dask cluster inside
    :func:`shortlist.distributed.on_cluster`. A shard's result depends on the shard alone, so where
    it runs does not change it."""
    return _MAPPER.get()(fn, shared, tasks, step=step, progress=progress, n_jobs=n_jobs)


def map_shards_kept(fn: Callable[[Any, T], R], shared: Any, tasks: Sequence[T], keep: Callable[[R], S], *, step: str,
                    progress: Progress = silent, n_jobs: int | None = None) -> Iterator[tuple[Any, S]]:
    """:func:`map_shards` whose results stay where they were made: ``(handle, keep(result))`` for
    each task, in task order; a handle is the result itself in this process, a Dask future (the
    result held by the worker that made it) on a cluster. ``keep``: a module-level function."""
    return _MAPPER.get()(fn, shared, tasks, step=step, progress=progress, n_jobs=n_jobs, keep=keep)


def map_shards_pending(fn: Callable[[Any, T], R], shared: Any, tasks: Sequence[T], *, step: str) -> list[Any]:
    """A handle of ``fn(shared, t)`` for each of ``tasks``, for another step's tasks to take as
    inputs: in this process the results themselves, made now one after another; on a cluster its
    futures, submitted and not waited for, so the caller goes on while they run where their inputs
    are. A failure shows where a handle is used. ``fn``: a module-level function."""
    submit = getattr(_MAPPER.get(), "submit", None)
    if submit is None:
        return [in_shard(fn, shared, t) for t in tasks]
    return list(submit(fn, shared, tasks, step=step))


def mapper_client() -> Any | None:
    """The Dask client the current mapper sends shards to (None: shards run in this process)."""
    return getattr(_MAPPER.get(), "client", None)


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
