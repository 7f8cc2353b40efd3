"""``--scheduler``: run a command's sharded steps on a Dask cluster (the config's ``[distributed]`` table)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any

import typer

from shortlist.cli._common import console

Scheduler = Annotated[str | None, typer.Option(
    "--scheduler", help="Run the sharded steps on a Dask cluster: local, local:N (N worker processes) or "
                        "tcp://HOST:PORT (a running `dask scheduler`); default: the config's [distributed] "
                        "scheduler, else this process. Needs pip install 'shortlist[dask]' (docs/distributed.md).")]
ClusterConfig = Annotated[Path | None, typer.Option(
    "--config", help="TOML file; its [distributed] table (scheduler, worker_memory, retries) is read.")]


def scheduler_of(cfg: Mapping[str, Any], flag: str | None) -> str | None:
    """The scheduler a command uses: the flag, else the config's, else None (this process); checked
    (its form, and that the dask extra is installed), so commands call it before any work."""
    scheduler = flag or cfg["distributed"]["scheduler"] or None
    if scheduler is not None:
        from shortlist.distributed import parse_scheduler, require_dask

        parse_scheduler(scheduler)
        require_dask()
    return scheduler


@contextlib.contextmanager
def cluster(cfg: Mapping[str, Any], flag: str | None) -> Iterator[None]:
    """Inside the block the sharded steps run on the scheduler (if any): its dashboard's address is
    printed when it starts, each worker's peak memory when it ends."""
    scheduler = scheduler_of(cfg, flag)
    if scheduler is None:
        yield
        return
    from shortlist.distributed import on_cluster
    from shortlist.distributed.cluster import worker_peak_memory

    # Dask sets its own loggers to INFO; the command's log level (SHORTLIST_LOG) governs them too.
    logging.getLogger("distributed").setLevel(logging.getLogger().getEffectiveLevel())
    settings = cfg["distributed"]
    with on_cluster(scheduler, worker_memory=settings["worker_memory"] or None, retries=settings["retries"],
                    echo=lambda line: console.print(line, style="dim")) as client:
        yield
        peaks = worker_peak_memory(client)
        console.print("peak memory per worker: " + ", ".join(f"{a} {b / 2**30:.2f} GB" for a, b in sorted(peaks.items())),
                      style="dim")
