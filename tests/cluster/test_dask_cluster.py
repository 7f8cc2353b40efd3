"""The sharded pipeline on a Dask LocalCluster (process workers, random ports): the same seed and data
give the same model and recommendations as one process; a lost worker's shard runs again; a step
the cluster cannot finish is a DistributedError naming it, with nothing written."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import polars as pl
import pytest

pytest.importorskip("distributed")

from distributed import LocalCluster

from shortlist.data.export import export_interactions
from shortlist.data.synthetic import make_synthetic
from shortlist.distributed import on_cluster
from shortlist.distributed.mapper import DaskMapper
from shortlist.errors import DistributedError
from shortlist.pipeline.parallel import map_shards, use_mapper
from shortlist.pipeline.two_stage import TwoStageRecommender

CONFIG = """
[model]
target = "days:7"
allow_repeats = true
sources = ["repurchase", "itemknn", "covisit", "als", "popular"]
shard_users = 60
[ranker]
n_estimators = 20
min_rounds = 5
[source_params.als]
factors = 8
iterations = 3
"""


@pytest.fixture(scope="module")
def scheduler():
    """One LocalCluster for the module (a worker's death is tolerated once per task)."""
    import dask

    with dask.config.set({"distributed.scheduler.allowed-failures": 1}), \
            LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        yield cluster.scheduler_address


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """A small log as a folder of two Parquet parts, and the config."""
    d = tmp_path_factory.mktemp("dask")
    ds = make_synthetic(n_users=240, n_items=120, n_interactions=5000, seed=3)
    frame = export_interactions(ds.interactions)
    (d / "log").mkdir()
    frame[: len(frame) // 2].write_parquet(d / "log" / "part-0.parquet")
    frame[len(frame) // 2:].write_parquet(d / "log" / "part-1.parquet")
    (d / "model.toml").write_text(CONFIG)
    return d


def test_fit_recommend_candidates_on_the_cluster_equal_one_process(data, scheduler, cli):
    fit = ["fit", "--interactions", str(data / "log"), "--config", str(data / "model.toml")]
    code, _, err = cli([*fit, "--out", str(data / "one")])
    assert code == 0, err
    code, _, err = cli([*fit, "--out", str(data / "many"), "--scheduler", scheduler])
    assert code == 0, err
    assert "dashboard" in err and "peak memory per worker" in err
    one, many = TwoStageRecommender.load(data / "one"), TwoStageRecommender.load(data / "many")
    assert one.metrics_["window_stats"] == many.metrics_["window_stats"]
    assert one.metrics_["ranker"]["train_rows"] == many.metrics_["ranker"]["train_rows"]

    code, _, err = cli(["recommend", "--model", str(data / "one"), "--all-users", "--out", str(data / "one.parquet")])
    assert code == 0, err
    code, _, err = cli(["recommend", "--model", str(data / "many"), "--all-users", "--out", str(data / "recs"),
                        "--scheduler", scheduler])
    assert code == 0, err
    manifest = json.loads((data / "recs" / "_manifest.json").read_text())
    assert len(manifest["parts"]) == 4  # 240 users, 60 a part
    expected = pl.read_parquet(data / "one.parquet")
    got = pl.concat([pl.read_parquet(data / "recs" / p["file"]) for p in manifest["parts"]])
    assert got.select("user_id", "item_id", "rank").equals(expected.select("user_id", "item_id", "rank"))
    np.testing.assert_allclose(got["score"].fill_null(0).to_numpy(), expected["score"].fill_null(0).to_numpy(), rtol=1e-5)

    pl.DataFrame({"user_id": expected["user_id"].unique(maintain_order=True)[:150]}).write_csv(data / "users.csv")
    args = ["candidates", "--model", str(data / "many"), "--users", str(data / "users.csv")]
    assert cli([*args, "--out", str(data / "c1.parquet")])[0] == 0
    assert cli([*args, "--out", str(data / "c2.parquet"), "--scheduler", scheduler])[0] == 0
    assert pl.read_parquet(data / "c1.parquet").equals(pl.read_parquet(data / "c2.parquet"))


def _double(shared: int, task: int) -> int:
    return shared * task


def _die_once(marker: str, task: int) -> int:
    """Kill the worker process running the first task of all (it leaves a marker), then answer."""
    if task == 2 and not os.path.exists(marker):
        Path(marker).touch()
        os._exit(1)
    return 2 * task


def _die(shared: object, task: int) -> int:
    os._exit(1)


def test_a_lost_worker_s_shard_runs_again(scheduler, tmp_path):
    from distributed import Client

    seen: list[tuple[int, int]] = []
    with Client(scheduler) as client, use_mapper(DaskMapper(client, retries=0)):
        assert list(map_shards(_double, 3, [1, 2, 3], step="double")) == [3, 6, 9]
        got = list(map_shards(_die_once, str(tmp_path / "died"), [1, 2, 3, 4], step="survive",
                              progress=lambda s, d, n: seen.append((d, n))))
    assert got == [2, 4, 6, 8]
    assert (tmp_path / "died").exists()
    assert seen[-1] == (4, 4)


def test_only_a_few_shards_are_cut_ahead_of_the_results(scheduler):
    """Shards are cut (their users' rows copied) as the workers take them, a few per worker thread
    ahead: a step over many shards does not hold every shard's rows at once."""
    from distributed import Client

    from shortlist.distributed.mapper import SHARDS_PER_THREAD
    from shortlist.pipeline.user_rows import Lazy

    cut: list[int] = []
    tasks = Lazy(lambda i: cut.append(i) or i, list(range(40)))
    with Client(scheduler) as client, use_mapper(DaskMapper(client, retries=0)):
        results = map_shards(_double, 2, tasks, step="ahead")
        assert next(results) == 0
        assert len(cut) <= SHARDS_PER_THREAD * 2 + 1  # two worker threads
        assert list(results) == [2 * i for i in range(1, 40)] and cut == list(range(40))


def test_a_step_the_cluster_cannot_finish_names_the_step_and_writes_nothing(scheduler, tmp_path):
    from distributed import Client

    from shortlist.cli._common import write_batches_atomic

    out = tmp_path / "out.parquet"
    with Client(scheduler) as client, use_mapper(DaskMapper(client, retries=0)), \
            pytest.raises(DistributedError, match="training rows of w1"):
        write_batches_atomic(map_shards(_die, None, [1, 2], step="training rows of w1"), out)
    assert list(tmp_path.iterdir()) == []


def test_evaluate_on_the_cluster_prints_the_same_metrics_as_one_process(data, scheduler, cli):
    args = ["evaluate", "--interactions", str(data / "log"), "--config", str(data / "model.toml"), "--protocol", "days:7",
            "--allow-repeats"]
    code, one, err = cli(args)
    assert code == 0, err
    code, many, err = cli([*args, "--scheduler", scheduler])
    assert code == 0, err
    assert "dashboard" in err

    def metrics(out: str) -> list[list[str]]:  # each model row's cells, the seconds (fit_s, rank_s) left out
        rows = [[c.strip() for c in line.split("│")[1:-1]] for line in out.splitlines()
                if line.startswith("│ ") and ("two_stage" in line or "baseline:" in line)]
        return [r[:-2] for r in rows]

    assert any(r[0] == "two_stage" for r in metrics(one)) and metrics(one) == metrics(many)



def _length(shared: np.ndarray, task: int) -> int:
    return len(shared) + task


def test_a_local_cluster_moves_data_past_its_scheduler(monkeypatch):
    """The local scheduler runs in the command process: a shared part or a result sent through it
    would be copied there, so they go straight between this process and the workers."""
    from distributed import Scheduler

    through: list[str] = []
    for handler in ("scatter", "gather"):
        original = getattr(Scheduler, handler)

        def spy(self, *args, _name=handler, _original=original, **kwargs):
            through.append(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(Scheduler, handler, spy)
    with on_cluster("local:1"):
        assert list(map_shards(_length, np.zeros(1000), [1, 2], step="lengths")) == [1001, 1002]
    assert through == []


@pytest.mark.parametrize("kind", ["user", "session", "transition"])
def test_co_occurrence_summed_over_partitions_on_the_cluster_equals_one_process(scheduler, monkeypatch, kind):
    """Each partition's groups stay on a worker and a block's partial counts are summed there, in the
    same order as in one process: the same graph, bit for bit."""
    from distributed import Client

    from shortlist.retrieval import cooccurrence
    from shortlist.retrieval.covisit import CoVisitation

    monkeypatch.setattr(cooccurrence, "ROWS_PER_PARTITION", 700)
    monkeypatch.setattr(cooccurrence, "PAIRS_PER_BLOCK", 3000)
    log = make_synthetic(n_users=240, n_items=120, n_interactions=5000, seed=3).interactions
    one = CoVisitation(kind=kind, neighbours=20).fit(log).sim_
    with Client(scheduler) as client, use_mapper(DaskMapper(client, retries=0)):
        many = CoVisitation(kind=kind, neighbours=20).fit(log).sim_
    for part in ("indptr", "indices", "data"):
        np.testing.assert_array_equal(getattr(many, part), getattr(one, part))


def _add(shared: int, task: tuple[int, list[int]]) -> int:
    return shared + task[0] + sum(task[1])


def _raise(shared: object, task: int) -> int:
    raise ValueError(f"broken shard {task}")


def test_pending_shards_feed_another_step_s_tasks_and_their_errors_reach_it(scheduler):
    """Futures submitted without waiting are resolved inside the tasks that take them; a pending
    shard's error ends the step that reads it."""
    from distributed import Client

    from shortlist.pipeline.parallel import map_shards_pending

    with Client(scheduler) as client, use_mapper(DaskMapper(client, retries=0)):
        pending = map_shards_pending(_double, 5, [1, 2, 3], step="pending")
        assert all(type(p).__name__ == "Future" for p in pending)
        assert list(map_shards(_add, 100, [(1, pending), (2, pending[:1])], step="sum")) == [100 + 1 + 30, 100 + 2 + 5]
        broken = map_shards_pending(_raise, None, [7], step="broken")
        with pytest.raises(ValueError, match="broken shard 7"):
            list(map_shards(_add, 0, [(0, broken)], step="reads broken"))
