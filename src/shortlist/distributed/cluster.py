"""Where the shards run: a ``LocalCluster`` of worker processes, or an existing cluster's scheduler.

``local`` (one worker per core), ``local:N`` (N workers) or ``tcp://HOST:PORT`` / ``tls://HOST:PORT``
(a running ``dask scheduler``). A local cluster's workers have one thread each, random ports, and
the dashboard on a free port; data moves between this process and them directly, never through the
scheduler; the cluster is closed when the block ends. An existing cluster is only connected to,
never closed; whether data goes through its scheduler is Dask's setting
(``distributed.client.direct-to-workers``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shortlist.errors import ConfigError, DependencyMissingError
from shortlist.pipeline.parallel import use_mapper

if TYPE_CHECKING:
    from distributed import Client

logger = logging.getLogger(__name__)
_ADDRESS = re.compile(r"^(tcp|tls)://[^\s:/]+:\d{1,5}$")
#: Times a shard is run again after raising (a worker that dies is handled by Dask's own
#: ``distributed.scheduler.allowed-failures``: its shards move to the other workers).
DEFAULT_RETRIES = 2


@dataclass(frozen=True)
class SchedulerSpec:
    """A parsed ``--scheduler``: a local cluster of ``workers`` processes, or an ``address``."""

    workers: int | None = None
    address: str | None = None

    def __str__(self) -> str:
        return self.address or f"local:{self.workers}"


def parse_scheduler(text: str) -> SchedulerSpec:
    """``local``, ``local:N`` or ``tcp://HOST:PORT`` (``tls://`` too); anything else is a ConfigError."""
    value = text.strip()
    if value == "local":
        return SchedulerSpec(workers=os.cpu_count() or 1)
    if value.startswith("local:"):
        n = value.removeprefix("local:")
        if n.isdigit() and int(n) >= 1:
            return SchedulerSpec(workers=int(n))
    elif _ADDRESS.match(value):
        return SchedulerSpec(address=value)
    raise ConfigError(f"--scheduler {text!r}: expected local, local:N (N >= 1 worker processes) or "
                      "tcp://HOST:PORT (a running `dask scheduler`), e.g. --scheduler local:2")


def require_dask(what: str = "--scheduler") -> None:
    """Raise :class:`DependencyMissingError` naming the ``dask`` extra unless dask.distributed imports."""
    try:
        import distributed  # noqa: F401
    except ImportError as e:
        raise DependencyMissingError("dask[distributed]", "dask", what) from e


@contextlib.contextmanager
def on_cluster(scheduler: str | SchedulerSpec, *, worker_memory: str | None = None, retries: int = DEFAULT_RETRIES,
               echo: Callable[[str], None] = logger.info) -> Iterator[Client]:
    """Inside the block, the pipeline's shards run on the cluster's workers (see :mod:`shortlist.distributed`).
    ``worker_memory``: a local worker's memory limit (e.g. ``"4GB"``; None: Dask's share of the
    machine). ``echo`` hears the dashboard's address. Yields the Dask client."""
    require_dask()
    from shortlist.distributed.mapper import DaskMapper

    spec = parse_scheduler(scheduler) if isinstance(scheduler, str) else scheduler
    with _client(spec, worker_memory) as client:
        link = _dashboard(client)
        echo(f"Dask scheduler {client.scheduler_info()['address']} ({spec}), {len(client.scheduler_info()['workers'])} "
             f"workers; dashboard: {link or 'not available (pip install bokeh)'}")
        with use_mapper(DaskMapper(client, retries=retries)):
            yield client


@contextlib.contextmanager
def _client(spec: SchedulerSpec, worker_memory: str | None) -> Iterator[Client]:
    from distributed import Client, LocalCluster

    if spec.address is not None:
        try:
            client = Client(spec.address, timeout="30s")
        except OSError as e:
            raise ConfigError(f"--scheduler {spec.address}: no Dask scheduler answered ({e}); start one with "
                              "`dask scheduler` and workers with `dask worker ADDRESS`, or use --scheduler local:N") from e
        with client:
            yield client
        return
    cluster = LocalCluster(n_workers=spec.workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                           memory_limit=worker_memory or "auto", silence_logs=logging.WARNING)
    # A local cluster's scheduler runs in this process: data sent through it (Dask's default) would
    # be copied here on its way to a worker, so shared parts and results go straight to the workers.
    with cluster, Client(cluster, direct_to_workers=True) as client:
        yield client


def _dashboard(client: Client) -> str | None:
    try:
        import bokeh  # noqa: F401
    except ImportError:
        return None
    link: Any = client.dashboard_link
    return str(link) if link else None


def worker_peak_memory(client: Client) -> dict[str, int]:
    """Each worker process's peak resident bytes so far (:func:`peak_rss`), by worker address."""
    return dict(client.run(peak_rss))


def peak_rss() -> int:
    """This process's own peak resident bytes: Linux's ``VmHWM``, else ``ru_maxrss``. Not
    ``ru_maxrss`` on Linux: a process started by fork and exec (a local cluster's worker) reports
    there the larger of its own peak and its parent's peak when it was started."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource
    import sys

    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB elsewhere
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
