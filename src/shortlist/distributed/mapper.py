"""The shard mapper of a Dask cluster: the shared part sent to every worker once, one task a shard.

A shard that raises is run again up to ``retries`` times; a worker that dies has its shards moved
to the others by Dask (``distributed.scheduler.allowed-failures``). When that is spent, or the
scheduler goes away, the step fails with a :class:`~shortlist.errors.DistributedError` naming it;
nothing has been written by then, because outputs are renamed into place only once complete.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from shortlist.errors import DistributedError
from shortlist.pipeline.parallel import in_shard
from shortlist.pipeline.progress import Progress

if TYPE_CHECKING:
    from distributed import Client, Future


#: Shards out at a time per worker thread: enough to keep every thread busy while results come back.
SHARDS_PER_THREAD = 2


class DaskMapper:
    """:class:`~shortlist.pipeline.parallel.ShardMapper` over a Dask client's workers."""

    def __init__(self, client: Client, *, retries: int) -> None:
        self.client, self.retries = client, retries

    def __call__(self, fn: Callable[[Any, Any], Any], shared: Any, tasks: Sequence[Any], *, step: str,
                 progress: Progress, n_jobs: int | None = None, keep: Callable[[Any], Any] | None = None) -> Iterator[Any]:
        """Results in task order, each fetched as soon as its task and every earlier one are done
        (``n_jobs`` is not used: the workers' own threads run the tasks). A few shards per worker
        thread are out at a time, so this process cuts and holds those shards' rows and results, not
        every shard's. With ``keep``, a result stays on its worker: ``(future, keep(result))`` is
        yielded, ``keep`` run on that worker. The step's shared part is released once its shards are
        done (it can be the largest thing a worker holds), so a kept result whose worker is lost is
        made again only while the scheduler still has that part; after, fetching it raises a
        cancelled-future error, which callers report as a :class:`~shortlist.errors.DistributedError`."""
        from distributed import as_completed

        if not len(tasks):
            return
        out = _Outstanding(self.client, fn, tasks, keep, self.retries, step)
        try:
            [out.shared] = self.client.scatter([shared], broadcast=True, hash=False)
            done = as_completed()
            while out.room():
                done.add(out.submit_next())
            nxt = 0
            for future in done:
                out.finish(future)
                progress(step, out.finished, len(tasks))
                while nxt in out.ready:
                    yield out.ready.pop(nxt)
                    nxt += 1
                while out.room():
                    done.add(out.submit_next())
        except Exception as e:
            if cluster_failure(e):
                raise DistributedError(step, e) from e
            raise
        finally:
            if out.pending:  # a step left early (an error, or its consumer stopped)
                self.client.cancel(list(out.pending.values()))


    def submit(self, fn: Callable[[Any, Any], Any], shared: Any, tasks: Sequence[Any], *, step: str) -> list[Future]:
        """Futures of ``fn(shared, t)``, submitted without waiting (``shared`` goes with each task:
        keep it small); each runs again up to ``retries`` times."""
        prefix = _key_prefix(step)
        return [self.client.submit(in_shard, fn, shared, t, key=f"{prefix}-{i}", retries=self.retries, pure=False)
                for i, t in enumerate(tasks)]


def _key_prefix(step: str) -> str:
    """Unique task keys a step's tasks are named after (readable on the dashboard)."""
    return f"{re.sub(r'[^A-Za-z0-9]+', '-', step).strip('-')}-{uuid.uuid4().hex[:8]}"


class _Outstanding:
    """A step's shards on their way: submitted in task order while fewer than
    :data:`SHARDS_PER_THREAD` per worker thread are out and as few results wait for an earlier
    shard; results kept by position until yielded."""

    def __init__(self, client: Client, fn: Callable[[Any, Any], Any], tasks: Sequence[Any],
                 keep: Callable[[Any], Any] | None, retries: int, step: str) -> None:
        self.client, self.fn, self.tasks, self.keep, self.retries = client, fn, tasks, keep, retries
        self.prefix = _key_prefix(step)
        self.shared: Any = None
        self.submitted = self.finished = 0
        self.pending: dict[Any, Future] = {}
        self.position: dict[Any, int] = {}
        self.kept: dict[int, Future] = {}
        self.ready: dict[int, Any] = {}

    def room(self) -> bool:
        """Whether another shard may go out (the workers are counted each time: they may join late)."""
        if self.submitted >= len(self.tasks):
            return False
        limit = SHARDS_PER_THREAD * max(1, sum(self.client.nthreads().values()))
        return len(self.pending) < limit and len(self.ready) < limit

    def submit_next(self) -> Future:
        import dask

        i = self.submitted
        # A task carries its users' rows (tens of MB): inside the task, so the scheduler can run it
        # again on another worker if its worker is lost (scattered data would be lost with it).
        with dask.config.set({"distributed.admin.large-graph-warning-threshold": "1GB"}):
            future = self.client.submit(in_shard, self.fn, self.shared, self.tasks[i], key=f"{self.prefix}-{i}",
                                        retries=self.retries, pure=False)
        if self.keep is not None:
            self.kept[i] = future
            future = self.client.submit(self.keep, future, key=f"{self.prefix}-{i}-kept", retries=self.retries,
                                        pure=False)
        self.submitted += 1
        self.position[future.key], self.pending[future.key] = i, future
        return future

    def finish(self, future: Future) -> None:
        at = self.position.pop(future.key)
        self.ready[at] = (self.kept.pop(at), future.result()) if self.keep is not None else future.result()
        del self.pending[future.key]  # the worker drops the result once no future refers to it
        self.finished += 1


def cluster_failure(error: BaseException) -> bool:
    """Whether ``error`` is the cluster's (a worker lost too often, the scheduler gone), not a shard's own."""
    from concurrent.futures import CancelledError

    from distributed.comm.core import CommClosedError
    from distributed.scheduler import KilledWorker

    return isinstance(error, KilledWorker | CommClosedError | CancelledError)
