"""``ranker = "lightgbm-dask"``: the training rows stay on the workers, LightGBM's Dask ranker trains
there for the rounds early stopping chose on a gathered sample, and the model saves and loads as a
LightGBM model. Outside a cluster it is a ConfigError naming the fix."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("distributed")
pytest.importorskip("lightgbm.dask")

from distributed import LocalCluster

from shortlist.data.synthetic import make_synthetic
from shortlist.distributed import on_cluster
from shortlist.errors import ConfigError
from shortlist.pipeline.two_stage import TwoStageRecommender

OPTIONS = {"target": "days:7", "allow_repeats": True, "sources": ["repurchase", "itemknn", "covisit", "popular"],
           "shard_users": 60, "ranker_params": {"n_estimators": 60, "min_rounds": 5, "early_stopping_rounds": 10},
           "ranker_sample_rows": 3000}


@pytest.fixture(scope="module")
def scheduler():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        yield cluster.scheduler_address


@pytest.fixture(scope="module")
def data():
    return make_synthetic(n_users=600, n_items=150, n_interactions=15000, seed=3)


def test_outside_a_cluster_the_dask_ranker_is_a_config_error_naming_the_fix(data):
    with pytest.raises(ConfigError, match="--scheduler"):
        TwoStageRecommender(**{**OPTIONS, "ranker": "lightgbm-dask"}).fit(data.interactions)


def test_the_dask_ranker_trains_on_every_kept_row_with_the_sample_s_rounds(data, scheduler, tmp_path):
    one = TwoStageRecommender(**OPTIONS).fit(data.interactions)
    with on_cluster(scheduler):
        many = TwoStageRecommender(**{**OPTIONS, "ranker": "lightgbm-dask"}).fit(data.interactions)
    ranker = many.metrics_["ranker"]
    # every row of a group with a positive trains (one process holds some back to early-stop on)
    assert ranker["train_rows"] == one.metrics_["ranker"]["train_rows"] + one.metrics_["ranker"]["valid_rows"]
    assert ranker["dask_workers"] == 2 and ranker["valid_rows"] == 0
    sample = many.metrics_["rounds_sample"]
    assert 0 < sample["rows"] < ranker["train_rows"] and sample["shards"] >= 1
    assert many.ranker_ is not None and many.ranker_.booster_.current_iteration() == ranker["best_iteration"]
    assert many.metrics_["window_stats"] == one.metrics_["window_stats"]  # the same candidates and labels

    many.save(tmp_path / "m")
    loaded = TwoStageRecommender.load(tmp_path / "m")
    users = data.interactions.users.external(np.arange(50))
    assert loaded.recommend(users, 10).equals(many.recommend(users, 10))

    # the same kind of ranker as one process's: their top 10s mostly agree (misaligned rows or groups would not)
    expected = one.recommend(users, 10).group_by("user_id", maintain_order=True).agg("item_id")
    got = many.recommend(users, 10).group_by("user_id", maintain_order=True).agg("item_id")
    overlap = [len(set(a) & set(b)) / 10 for a, b in zip(expected["item_id"], got["item_id"], strict=True)]
    assert np.mean(overlap) >= 0.7


def test_fit_with_the_config_s_dask_ranker_on_the_cli(data, scheduler, cli, tmp_path):
    from shortlist.data.export import export_interactions

    export_interactions(data.interactions).write_parquet(tmp_path / "log.parquet")
    (tmp_path / "model.toml").write_text('[model]\ntarget = "days:7"\nallow_repeats = true\nranker = "lightgbm-dask"\n'
                                         'sources = ["repurchase", "itemknn", "popular"]\nshard_users = 100\n'
                                         'ranker_sample_rows = 2000\n[ranker]\nn_estimators = 20\nmin_rounds = 5\n')
    args = ["fit", "--interactions", str(tmp_path / "log.parquet"), "--config", str(tmp_path / "model.toml"),
            "--out", str(tmp_path / "m")]
    code, _, err = cli(args)
    assert code != 0 and "--scheduler" in err and not (tmp_path / "m").exists()
    code, _, err = cli([*args, "--scheduler", scheduler])
    assert code == 0, err
    model = TwoStageRecommender.load(tmp_path / "m")
    assert model.config.ranker == "lightgbm-dask" and model.metrics_["ranker"]["dask_workers"] == 2


def _times(shared: int, task: int) -> int:
    return shared * task


def _halved(result: int) -> int:
    return result // 2


def test_kept_results_of_a_lost_worker_come_back_equal_or_are_a_cluster_failure(scheduler):
    """The step's shared part is not held for kept results (it can be a worker's largest object): a
    lost worker's kept results are made again while the scheduler still has that part, and otherwise
    fetching them is an error the fit reports as DistributedError. Never different results."""
    from distributed import Client

    from shortlist.distributed.mapper import DaskMapper, cluster_failure
    from shortlist.pipeline.parallel import map_shards_kept, use_mapper

    with Client(scheduler) as client, use_mapper(DaskMapper(client, retries=0)):
        kept = list(map_shards_kept(_times, 3, [1, 2, 3, 4, 5, 6], _halved, step="times"))
        assert [s for _, s in kept] == [1, 3, 4, 6, 7, 9]
        futures = [f for f, _ in kept]
        assert client.gather(futures) == [3, 6, 9, 12, 15, 18]
        holders = {w for ws in client.who_has(futures).values() for w in ws}
        client.restart_workers(workers=sorted(holders)[:1])
        try:
            again = client.gather(futures)
        except Exception as lost:  # the shared part was already released: gone
            assert cluster_failure(lost)
        else:  # made again from the shared part the scheduler still held
            assert again == [3, 6, 9, 12, 15, 18]
