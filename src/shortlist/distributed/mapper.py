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


class DaskMapper:
    """:class:`~shortlist.pipeline.parallel.ShardMapper` over a Dask client's workers."""

    def __init__(self, client: Client, *, retries: int) -> None:
        self.client, self.retries = client, retries

    def __call__(self, fn: Callable[[Any, Any], Any], shared: Any, tasks: Sequence[Any], *, step: str,
                 progress: Progress, n_jobs: int | None = None, keep: Callable[[Any], Any] | None = None) -> Iterator[Any]:
        """Results in task order, each fetched as soon as its task and every earlier one are done
        (``n_jobs`` is not used: the workers' own threads run the tasks). With ``keep``, a result
        stays on its worker: ``(future, keep(result))`` is yielded, ``keep`` run on that worker. The
        step's shared part is released once its shards are done (it can be the largest thing a worker
        holds), so a kept result whose worker is lost is made again only while the scheduler still has
        that part; after, fetching it raises a cancelled-future error, which callers report as a
        :class:`~shortlist.errors.DistributedError`."""
        import dask
        from distributed import as_completed

        if not len(tasks):
            return
        prefix = f"{re.sub(r'[^A-Za-z0-9]+', '-', step).strip('-')}-{uuid.uuid4().hex[:8]}"
        pending: dict[Any, Future] = {}
        try:
            [on_workers] = self.client.scatter([shared], broadcast=True, hash=False)
            # A task may carry its users' rows (tens of MB): inside the task, so the scheduler can run
            # it again on another worker if its worker is lost (scattered data would be lost with it).
            with dask.config.set({"distributed.admin.large-graph-warning-threshold": "1GB"}):
                futures = [self.client.submit(in_shard, fn, on_workers, task, key=f"{prefix}-{i}",
                                              retries=self.retries, pure=False) for i, task in enumerate(tasks)]
            kept = futures if keep is not None else []
            if keep is not None:
                futures = [self.client.submit(keep, f, key=f"{prefix}-{i}-kept", retries=self.retries, pure=False)
                           for i, f in enumerate(futures)]
            position = {f.key: i for i, f in enumerate(futures)}
            pending = {f.key: f for f in futures}
            del futures
            ready: dict[int, Any] = {}
            nxt = 0
            for future in as_completed(list(pending.values())):
                at = position[future.key]
                ready[at] = (kept[at], future.result()) if kept else future.result()
                del pending[future.key]  # the worker drops the result once no future refers to it
                progress(step, len(tasks) - len(pending), len(tasks))
                while nxt in ready:
                    yield ready.pop(nxt)
                    nxt += 1
        except Exception as e:
            if cluster_failure(e):
                raise DistributedError(step, e) from e
            raise
        finally:
            if pending:  # a step left early (an error, or its consumer stopped)
                self.client.cancel(list(pending.values()))


def cluster_failure(error: BaseException) -> bool:
    """Whether ``error`` is the cluster's (a worker lost too often, the scheduler gone), not a shard's own."""
    from concurrent.futures import CancelledError

    from distributed.comm.core import CommClosedError
    from distributed.scheduler import KilledWorker

    return isinstance(error, KilledWorker | CommClosedError | CancelledError)
