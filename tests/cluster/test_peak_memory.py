"""A worker's peak memory is its own: a process started by fork and exec (a local cluster's worker)
reports its parent's peak as its ``ru_maxrss``, which made every worker look as large as
the command's process when the cluster started."""

from __future__ import annotations

import multiprocessing
import resource
import sys

import numpy as np
import pytest

from shortlist.distributed.cluster import peak_rss

MIB = 2**20


def _own_and_inherited(queue) -> None:
    queue.put((peak_rss(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork and exec's ru_maxrss is Linux's")
def test_a_started_process_reports_its_own_peak_not_its_parents():
    held = np.ones(300 * MIB // 8)  # the parent's resident size when the child starts
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    child = ctx.Process(target=_own_and_inherited, args=(queue,))
    child.start()
    own, inherited = queue.get(timeout=60)
    child.join()
    assert held.sum() > 0 and inherited >= 300 * MIB  # the trap: ru_maxrss carries the parent's size
    assert own < 200 * MIB and own <= peak_rss()
