"""The sharded pipeline on a Dask cluster (``pip install 'shortlist[dask]'``).

The pipeline maps its shards of users through one helper (:func:`shortlist.pipeline.parallel.map_shards`);
inside :func:`on_cluster` that helper sends each shard to a Dask worker instead of running it here.
The code a shard runs is the same either way, so the results are too::

    from shortlist.distributed import on_cluster

    with on_cluster("local:2"):  # or "tcp://scheduler:8786"
        model.fit(interactions, items=items)

What runs where, and memory per worker: ``docs/distributed.md``.
"""

from shortlist.distributed.cluster import SchedulerSpec, on_cluster, parse_scheduler, require_dask

__all__ = ["SchedulerSpec", "on_cluster", "parse_scheduler", "require_dask"]
