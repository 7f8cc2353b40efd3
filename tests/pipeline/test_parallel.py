"""The in-process shard mapper: results in task order, a bounded number of shards in flight, nested
maps run in turn, errors reach the caller."""

from __future__ import annotations

import threading
import time

import pytest

from shortlist.pipeline.parallel import map_shards, map_tasks


class Gauge:
    """Counts the shards running at once and the threads they ran on."""

    def __init__(self) -> None:
        self.lock, self.now, self.most, self.started, self.threads = threading.Lock(), 0, 0, 0, set()

    def __enter__(self) -> Gauge:
        with self.lock:
            self.now += 1
            self.started += 1
            self.most = max(self.most, self.now)
            self.threads.add(threading.get_ident())
        return self

    def __exit__(self, *exc: object) -> None:
        with self.lock:
            self.now -= 1


def slow_square(gauge: Gauge, x: int) -> int:
    with gauge:
        time.sleep(0.01 * (x % 3))  # later shards may finish first
        return x * x


def test_results_come_in_task_order_with_at_most_n_jobs_shards_running():
    gauge, seen = Gauge(), []
    out = list(map_shards(slow_square, gauge, list(range(12)), step="squares", n_jobs=3,
                          progress=lambda step, done, total: seen.append((step, done, total))))
    assert out == [x * x for x in range(12)]
    assert seen == [("squares", d, 12) for d in range(1, 13)]
    assert 1 < gauge.most <= 3 and len(gauge.threads) > 1


def test_shards_start_only_as_results_are_taken():
    """Memory holds ``n_jobs`` shards' work, not every shard's: a slow consumer holds the rest back."""
    gauge = Gauge()
    results = map_shards(slow_square, gauge, list(range(12)), step="s", n_jobs=2)
    assert next(results) == 0
    time.sleep(0.2)
    assert gauge.started <= 3  # the first two, and one started when the first was taken
    assert list(results) == [x * x for x in range(1, 12)]


def test_one_job_runs_on_the_calling_thread():
    gauge = Gauge()
    assert list(map_shards(slow_square, gauge, [1, 2, 3], step="s", n_jobs=1)) == [1, 4, 9]
    assert gauge.threads == {threading.get_ident()}


def nested(gauge: Gauge, x: int) -> list[int]:
    return list(map_shards(slow_square, gauge, [x, x + 1, x + 2], step="inner", n_jobs=4))


def test_shards_mapped_inside_a_shard_run_in_turn_on_its_thread():
    inner = Gauge()
    assert list(map_shards(nested, inner, [0, 10], step="outer", n_jobs=2)) == [[0, 1, 4], [100, 121, 144]]
    assert inner.most <= 2  # two outer shards at most, each mapping its own three in turn


def fails_on_three(_: None, x: int) -> int:
    if x == 3:
        raise ValueError("shard 3 failed")
    return x


def test_an_error_in_a_shard_reaches_the_caller_after_the_earlier_results():
    got = []
    with pytest.raises(ValueError, match="shard 3 failed"):
        for x in map_shards(fails_on_three, None, list(range(8)), step="s", n_jobs=2):
            got.append(x)
    assert got == [0, 1, 2]


def blas_threads(_: None, __: int) -> list[int]:
    from threadpoolctl import threadpool_info

    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


def test_shards_and_tasks_run_with_one_blas_thread_whatever_n_jobs():
    """A product's rounding must not depend on n_jobs, so BLAS runs one thread a call in every shard
    and task, an OpenMP build's too (FAISS's OpenBLAS: its limit is per thread) where installed."""
    import contextlib

    import numpy  # noqa: F401  (loads a BLAS)

    with contextlib.suppress(ImportError):
        import faiss  # noqa: F401

    for jobs in (1, 2):
        for threads in map_shards(blas_threads, None, [0, 1, 2], step="s", n_jobs=jobs):
            assert threads and set(threads) == {1}
        for threads in map_tasks(lambda t: blas_threads(None, t), [0, 1, 2], n_jobs=jobs):
            assert threads and set(threads) == {1}


def test_pending_shards_in_this_process_are_their_results_made_in_turn():
    from shortlist.pipeline.parallel import map_shards_pending

    gauge = Gauge()
    assert map_shards_pending(slow_square, gauge, [3, 1, 2], step="pending") == [9, 1, 4]
    assert gauge.most == 1 and gauge.threads == {threading.get_ident()}
